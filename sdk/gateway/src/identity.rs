//! Who signs: an X.509 identity (MSP id + PEM certificate) and a [`Signer`]: ECDSA P-256
//! (SHA-256 digest in, DER low-S signature out), Ed25519 (message in, 64 bytes out), or any key
//! held elsewhere.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use fabric_protos::msp::SerializedIdentity;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePrivateKey;
use prost::Message;
use sha2::{Digest, Sha256};

/// A SHA-256 digest: the only thing a [`Signer`] is ever asked to sign.
pub type Digest32 = [u8; 32];

/// SHA-256 of `bytes`, as Fabric MSPs hash every message before signing it.
pub fn sha256(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

/// Why an identity or a key could not be loaded from disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `signcerts/` holds no `.pem` certificate.
    #[error("no PEM certificate in {0}")]
    NoCertificate(PathBuf),
    /// The certificate is not a parseable PEM X.509 certificate.
    #[error("{path} is not a PEM X.509 certificate: {reason}")]
    BadCertificate {
        /// The certificate file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// No file in `keystore/` is a P-256 private key matching the certificate.
    #[error(
        "no P-256 private key in {dir} matches the certificate's public key ({tried} file(s) tried)"
    )]
    NoMatchingKey {
        /// The keystore folder.
        dir: PathBuf,
        /// How many files were examined.
        tried: usize,
    },
    /// The key is not a PKCS#8 (or SEC1) PEM P-256 private key.
    #[error("not a PKCS#8 or SEC1 PEM P-256 private key")]
    BadKey,
    /// The MSP id is empty.
    #[error("the MSP id is empty")]
    EmptyMspId,
}

/// Signing failed. Deliberately opaque: it says nothing about the key.
#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// What signs for the client: the whole contract between the client and whatever holds the
/// key: an in-memory key ([`P256Signer`], [`Ed25519Signer`]), an HSM through PKCS#11, a cloud
/// KMS, a signing service or a separate process (see `examples/process_signer.rs`, which hands
/// each digest to `openssl pkeyutl`). It is the official clients' `Sign` function, as a trait.
///
/// The client calls [`Signer::sign_message`] with the exact bytes that go on the wire (a
/// proposal, a prepared transaction's payload, a commit-status or events request, a Deliver
/// seek payload). By default that hashes them with SHA-256 and calls [`Signer::sign`], which is
/// what ECDSA identities need: implement only `sign`. A scheme that hashes by itself (Ed25519,
/// the official clients' `hash.NONE`) overrides `sign_message` instead.
///
/// An ECDSA signature must be ASN.1 DER `SEQUENCE { r, s }` with a low S value (S ≤ n/2):
/// Fabric peers reject high-S signatures, and an HSM usually does not normalize them, so a
/// signer over one must (the example shows how). The signer may block (it runs on the calling
/// task); it must be `Send + Sync` because a [`Gateway`](crate::Gateway) is shared between
/// tasks. Its errors reach the caller as [`Error::Sign`](crate::Error::Sign) naming the stage.
///
/// ```
/// use fabric_gateway_client::{Digest32, SignError, Signer};
///
/// /// A key held by someone else, reached through a function.
/// struct Remote(fn(&Digest32) -> Option<Vec<u8>>);
///
/// impl Signer for Remote {
///     fn sign(&self, digest: &Digest32) -> Result<Vec<u8>, SignError> {
///         (self.0)(digest).ok_or_else(|| SignError("the key holder refused".into()))
///     }
/// }
/// # let _ = Remote(|_| None).sign(&[0; 32]).unwrap_err();
/// ```
pub trait Signer: Send + Sync {
    /// Signs a SHA-256 digest.
    ///
    /// # Errors
    /// [`SignError`] when the key holder refuses or fails.
    fn sign(&self, digest: &Digest32) -> Result<Vec<u8>, SignError>;

    /// Signs a message: by default `sign(SHA-256(message))`.
    ///
    /// # Errors
    /// [`SignError`] when the key holder refuses or fails.
    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign(&sha256(message))
    }
}

impl<S: Signer + ?Sized> Signer for std::sync::Arc<S> {
    fn sign(&self, digest: &Digest32) -> Result<Vec<u8>, SignError> {
        (**self).sign(digest)
    }
    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        (**self).sign_message(message)
    }
}

impl<S: Signer + ?Sized> Signer for Box<S> {
    fn sign(&self, digest: &Digest32) -> Result<Vec<u8>, SignError> {
        (**self).sign(digest)
    }
    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        (**self).sign_message(message)
    }
}

/// An in-memory Ed25519 key (RFC 8032), for MSPs whose identities are Ed25519 certificates
/// (Fabric 3). Ed25519 hashes internally, so the client hands it the whole message (the
/// official clients' `hash.NONE`); the signature is the raw 64 bytes.
#[derive(Clone)]
pub struct Ed25519Signer {
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signer").finish_non_exhaustive()
    }
}

impl Ed25519Signer {
    /// Wraps a signing key.
    pub fn new(key: ed25519_dalek::SigningKey) -> Self {
        Self { key }
    }

    /// A key from its 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::new(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// Parses a PKCS#8 PEM private key (`BEGIN PRIVATE KEY`, as `openssl genpkey -algorithm
    /// ed25519` and Fabric 3's cryptogen write it).
    ///
    /// # Errors
    /// [`IdentityError::BadKey`] if it is not an Ed25519 PKCS#8 key.
    pub fn from_pem(pem: &str) -> Result<Self, IdentityError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(Self::new)
            .map_err(|_| IdentityError::BadKey)
    }

    /// The public half.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }
}

impl Signer for Ed25519Signer {
    /// Signs the 32 digest bytes as the message. The client never calls this for an
    /// `Ed25519Signer` (it calls [`Signer::sign_message`]); it is there for offline flows that
    /// only have a digest.
    fn sign(&self, digest: &Digest32) -> Result<Vec<u8>, SignError> {
        self.sign_message(digest)
    }

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        use ed25519_dalek::Signer as _;
        Ok(self.key.sign(message).to_bytes().to_vec())
    }
}

/// An in-memory ECDSA P-256 key: RFC 6979 deterministic signatures, normalized to low S,
/// DER-encoded.
#[derive(Clone)]
pub struct P256Signer {
    key: SigningKey,
}

impl fmt::Debug for P256Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P256Signer").finish_non_exhaustive()
    }
}

impl P256Signer {
    /// Wraps a signing key.
    pub fn new(key: SigningKey) -> Self {
        Self { key }
    }

    /// Parses a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what Fabric's cryptogen and CAs
    /// write) or SEC1 (`BEGIN EC PRIVATE KEY`).
    ///
    /// # Errors
    /// [`IdentityError::BadKey`] if it is neither, or not on P-256.
    pub fn from_pem(pem: &str) -> Result<Self, IdentityError> {
        SigningKey::from_pkcs8_pem(pem)
            .or_else(|_| {
                p256::SecretKey::from_sec1_pem(pem).map(|secret| SigningKey::from(&secret))
            })
            .map(Self::new)
            .map_err(|_| IdentityError::BadKey)
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }
}

impl Signer for P256Signer {
    fn sign(&self, digest: &Digest32) -> Result<Vec<u8>, SignError> {
        let signature: Signature = self
            .key
            .sign_prehash(digest)
            .map_err(|e| SignError(e.to_string()))?;
        let signature = signature.normalize_s().unwrap_or(signature);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// The client's X.509 identity as Fabric sees it: an MSP id and a PEM certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    msp_id: String,
    certificate_pem: Vec<u8>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("msp_id", &self.msp_id)
            .field("certificate_pem_len", &self.certificate_pem.len())
            .finish()
    }
}

impl Identity {
    /// An identity from an MSP id and the certificate's PEM bytes (used as-is on the wire).
    ///
    /// # Errors
    /// [`IdentityError::EmptyMspId`] for an empty MSP id.
    pub fn new(
        msp_id: impl Into<String>,
        certificate_pem: impl Into<Vec<u8>>,
    ) -> Result<Self, IdentityError> {
        let msp_id = msp_id.into();
        if msp_id.is_empty() {
            return Err(IdentityError::EmptyMspId);
        }
        Ok(Self {
            msp_id,
            certificate_pem: certificate_pem.into(),
        })
    }

    /// The MSP id, e.g. `UtilityMSP`.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The PEM certificate bytes.
    pub fn certificate_pem(&self) -> &[u8] {
        &self.certificate_pem
    }

    /// The serialized `msp.SerializedIdentity`: the `creator` of every proposal and the
    /// `identity` of commit-status and event requests.
    pub fn creator(&self) -> Vec<u8> {
        SerializedIdentity {
            mspid: self.msp_id.clone(),
            id_bytes: self.certificate_pem.clone(),
        }
        .encode_to_vec()
    }
}

/// An identity and its key, loaded from an MSP folder.
#[derive(Debug, Clone)]
pub struct MspCredentials {
    /// The X.509 identity.
    pub identity: Identity,
    /// The matching private key.
    pub signer: MspSigner,
}

/// The private key of an MSP identity, of whichever algorithm its certificate names: ECDSA
/// P-256 (every Fabric release) or Ed25519 (Fabric 3; cryptogen's `PublicKeyAlgorithm: ed25519`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MspSigner {
    /// ECDSA P-256.
    P256(P256Signer),
    /// Ed25519.
    Ed25519(Ed25519Signer),
}

impl MspSigner {
    /// Parses a PEM private key of either algorithm.
    ///
    /// # Errors
    /// [`IdentityError::BadKey`] if it is neither a P-256 nor an Ed25519 key.
    pub fn from_pem(pem: &str) -> Result<Self, IdentityError> {
        P256Signer::from_pem(pem)
            .map(MspSigner::P256)
            .or_else(|_| Ed25519Signer::from_pem(pem).map(MspSigner::Ed25519))
    }

    /// Whether this is the key of a certificate whose `subjectPublicKey` bits are `public`
    /// (an uncompressed SEC1 point for P-256, the 32 raw bytes for Ed25519).
    fn matches(&self, public: &[u8]) -> bool {
        match self {
            MspSigner::P256(key) => {
                key.verifying_key().to_encoded_point(false).as_bytes() == public
            }
            MspSigner::Ed25519(key) => key.verifying_key().as_bytes() == public,
        }
    }
}

impl Signer for MspSigner {
    fn sign(&self, digest: &Digest32) -> Result<Vec<u8>, SignError> {
        match self {
            MspSigner::P256(key) => key.sign(digest),
            MspSigner::Ed25519(key) => key.sign(digest),
        }
    }

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match self {
            MspSigner::P256(key) => key.sign_message(message),
            MspSigner::Ed25519(key) => key.sign_message(message),
        }
    }
}

/// Loads `signcerts/*.pem` and the private key in `keystore/` (whatever the key file is called)
/// from a Fabric MSP folder. When the keystore holds several files, the one whose public key
/// matches the certificate is chosen.
///
/// # Errors
/// [`IdentityError`] naming the file or folder at fault.
pub fn load_msp(msp_dir: &Path, msp_id: &str) -> Result<MspCredentials, IdentityError> {
    let cert_path = first_pem(&msp_dir.join("signcerts"))?;
    let cert_pem = fs::read(&cert_path).map_err(|source| IdentityError::Read {
        path: cert_path.clone(),
        source,
    })?;
    let cert_key = certificate_public_key(&cert_path, &cert_pem)?;
    let identity = Identity::new(msp_id, cert_pem)?;

    let keystore = msp_dir.join("keystore");
    let mut tried = 0;
    for path in sorted_files(&keystore)? {
        tried += 1;
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(signer) = MspSigner::from_pem(&text) else {
            continue;
        };
        if signer.matches(&cert_key) {
            return Ok(MspCredentials { identity, signer });
        }
    }
    Err(IdentityError::NoMatchingKey {
        dir: keystore,
        tried,
    })
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>, IdentityError> {
    let read_err = |source| IdentityError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn first_pem(dir: &Path) -> Result<PathBuf, IdentityError> {
    sorted_files(dir)?
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "pem"))
        .ok_or_else(|| IdentityError::NoCertificate(dir.to_path_buf()))
}

/// The uncompressed SEC1 point of the certificate's subject public key.
fn certificate_public_key(path: &Path, pem: &[u8]) -> Result<Vec<u8>, IdentityError> {
    let bad = |reason: String| IdentityError::BadCertificate {
        path: path.to_path_buf(),
        reason,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| bad(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| bad(e.to_string()))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::elliptic_curve::scalar::IsHigh;

    fn signer() -> P256Signer {
        // A fixed scalar: deterministic test key.
        let key = SigningKey::from_slice(&[7u8; 32]).expect("valid scalar");
        P256Signer::new(key)
    }

    #[test]
    fn signatures_are_der_low_s_and_verify() {
        let signer = signer();
        for i in 0u8..64 {
            let digest = sha256(&[i]);
            let der = signer.sign(&digest).expect("sign");
            let sig = Signature::from_der(&der).expect("DER");
            assert!(!bool::from(sig.s().is_high()), "high S for message {i}");
            signer
                .verifying_key()
                .verify_prehash(&digest, &sig)
                .expect("verifies");
        }
    }

    #[test]
    fn signature_of_another_digest_does_not_verify() {
        let signer = signer();
        let der = signer.sign(&sha256(b"a")).expect("sign");
        let sig = Signature::from_der(&der).expect("DER");
        assert!(
            signer
                .verifying_key()
                .verify_prehash(&sha256(b"b"), &sig)
                .is_err()
        );
    }

    #[test]
    fn creator_is_a_serialized_identity() {
        let id =
            Identity::new("UtilityMSP", b"-----BEGIN CERTIFICATE-----\n".to_vec()).expect("id");
        let decoded = SerializedIdentity::decode(id.creator().as_slice()).expect("decode");
        assert_eq!(decoded.mspid, "UtilityMSP");
        assert_eq!(decoded.id_bytes, id.certificate_pem());
    }

    #[test]
    fn empty_msp_id_is_rejected() {
        assert!(matches!(
            Identity::new("", Vec::new()),
            Err(IdentityError::EmptyMspId)
        ));
    }

    /// RFC 8032 §7.1, TEST 1 and TEST 2: the secret keys, and the signatures of the empty message
    /// and of the one byte 0x72.
    #[test]
    fn ed25519_signatures_match_rfc_8032_and_verify() {
        use ed25519_dalek::Verifier as _;
        let cases: [(&str, &[u8], &str); 2] = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                b"",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                &[0x72],
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (seed, message, expected) in cases {
            let seed: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
            let signer = Ed25519Signer::from_seed(&seed);
            let signature = signer.sign_message(message).expect("sign");
            assert_eq!(hex::encode(&signature), expected);
            let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
            signer
                .verifying_key()
                .verify(message, &signature)
                .expect("verifies");
            assert!(signer.verifying_key().verify(b"other", &signature).is_err());
        }
    }

    #[test]
    fn ed25519_pkcs8_pem_loads_and_p256_pem_does_not() {
        // RFC 8410 §10.3: an Ed25519 private key in PKCS#8.
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let signer = Ed25519Signer::from_pem(pem).expect("Ed25519 PKCS#8");
        assert_eq!(signer.sign_message(b"m").unwrap().len(), 64);
        assert!(matches!(
            Ed25519Signer::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            ),
            Err(IdentityError::BadKey)
        ));
    }

    #[test]
    fn the_default_sign_message_is_sign_of_the_sha256_digest() {
        let signer = signer();
        let by_message = signer.sign_message(b"abc").unwrap();
        let by_digest = signer.sign(&sha256(b"abc")).unwrap();
        // RFC 6979: deterministic, so equal.
        assert_eq!(by_message, by_digest);
    }

    #[test]
    fn garbage_key_is_rejected() {
        assert!(matches!(
            P256Signer::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(IdentityError::BadKey)
        ));
    }
}
