//! The group credential: the member's MLS signature key bound to its HID by the Utility's group
//! authority (the paper's preloaded `PK_A`), and the identity provider that checks it.

use bcami_sdk::Hid;
use mls_rs::{
    CipherSuiteProvider, CryptoProvider, ExtensionList,
    identity::{Credential, CredentialType, CustomCredential, SigningIdentity},
    time::MlsTime,
};
use mls_rs_core::{
    crypto::{SignaturePublicKey, SignatureSecretKey},
    error::IntoAnyError,
    identity::{IdentityProvider, MemberValidationContext},
};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

use crate::{CIPHER_SUITE, GroupError};

/// The credential type, from the private-use range of RFC 9420 §17.1 (0xF000–0xFFFF).
pub const HID_CREDENTIAL_TYPE: CredentialType = CredentialType::new(0xF0B1);

/// Domain separation for the authority's signature.
const TBS_TAG: &[u8] = b"BC-AMI/1 group credential\0";

/// Length of an Ed25519 signature.
const SIGNATURE_LEN: usize = 64;

pub(crate) fn suite() -> Result<impl CipherSuiteProvider, GroupError> {
    RustCryptoProvider::new()
        .cipher_suite_provider(CIPHER_SUITE)
        .ok_or(GroupError::CipherSuite)
}

fn tbs(hid: &Hid, member_key: &SignaturePublicKey) -> Vec<u8> {
    let mut m = Vec::with_capacity(TBS_TAG.len() + Hid::LEN + member_key.len());
    m.extend_from_slice(TBS_TAG);
    m.extend_from_slice(hid.as_bytes());
    m.extend_from_slice(member_key);
    m
}

/// The Utility's group authority (an Ed25519 key). It signs credentials; members and the
/// observer hold only its public half.
pub struct GroupAuthority {
    secret: SignatureSecretKey,
    public: SignaturePublicKey,
}

impl GroupAuthority {
    /// A fresh authority key (from the crypto provider's RNG).
    pub fn generate() -> Result<Self, GroupError> {
        let (secret, public) = suite()?
            .signature_key_generate()
            .map_err(|_| GroupError::CipherSuite)?;
        Ok(Self { secret, public })
    }

    /// The authority from its stored secret (the 64 bytes of [`Self::to_secret_bytes`]).
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        let secret = SignatureSecretKey::new(bytes.to_vec());
        let public = suite()?
            .signature_key_derive_public(&secret)
            .map_err(|_| GroupError::InvalidCredential)?;
        Ok(Self { secret, public })
    }

    /// The secret to store (Ed25519 seed ‖ public key, 64 bytes): whoever holds it issues
    /// credentials, so it belongs in the Utility's key store.
    pub fn to_secret_bytes(&self) -> Vec<u8> {
        self.secret.as_bytes().to_vec()
    }

    /// The public key that members and the ledger are configured with.
    pub fn public_key(&self) -> AuthorityPublicKey {
        AuthorityPublicKey(self.public.clone())
    }

    /// Issues the credential binding `member_key` to `hid`.
    pub fn issue(
        &self,
        hid: Hid,
        member_key: &SignaturePublicKey,
    ) -> Result<HidCredential, GroupError> {
        let signature = suite()?
            .sign(&self.secret, &tbs(&hid, member_key))
            .map_err(|_| GroupError::InvalidCredential)?;
        Ok(HidCredential { hid, signature })
    }

    /// Issues the credential binding the 32-byte Ed25519 `member_key` to `hid` (the key as the
    /// ledger records it from the meter's request).
    pub fn issue_for_key(&self, hid: Hid, member_key: &[u8]) -> Result<HidCredential, GroupError> {
        self.issue(hid, &SignaturePublicKey::new(member_key.to_vec()))
    }
}

/// The group authority's public key (32 bytes, Ed25519).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityPublicKey(SignaturePublicKey);

impl AuthorityPublicKey {
    /// From the 32 bytes stored on the ledger or in firmware.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        if bytes.len() != 32 {
            return Err(GroupError::InvalidCredential);
        }
        Ok(Self(SignaturePublicKey::new(bytes.to_vec())))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A member's MLS signature key pair, generated on the device.
pub struct MemberKeys {
    pub(crate) secret: SignatureSecretKey,
    /// The public half, sent to the authority to be certified.
    pub public: SignaturePublicKey,
}

impl MemberKeys {
    /// A fresh Ed25519 key pair.
    pub fn generate() -> Result<Self, GroupError> {
        let (secret, public) = suite()?
            .signature_key_generate()
            .map_err(|_| GroupError::CipherSuite)?;
        Ok(Self { secret, public })
    }

    /// The public key's 32 bytes (what the meter's `GroupCredentialRequest` carries).
    pub fn public_bytes(&self) -> &[u8] {
        self.public.as_bytes()
    }
}

/// The HID and the authority's signature over (HID, member signature key). The key itself is the
/// MLS leaf's signature key, so it is not repeated here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HidCredential {
    /// The member's hashed identity.
    pub hid: Hid,
    signature: Vec<u8>,
}

impl HidCredential {
    /// Encoded: HID (32 bytes) ‖ Ed25519 signature (64 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Hid::LEN + SIGNATURE_LEN);
        v.extend_from_slice(self.hid.as_bytes());
        v.extend_from_slice(&self.signature);
        v
    }

    /// Decodes the 96 bytes; the signature is checked by [`HidIdentityProvider`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        if bytes.len() != Hid::LEN + SIGNATURE_LEN {
            return Err(GroupError::InvalidCredential);
        }
        let mut hid = [0u8; 32];
        hid.copy_from_slice(&bytes[..Hid::LEN]);
        Ok(Self {
            hid: Hid::from_bytes(hid),
            signature: bytes[Hid::LEN..].to_vec(),
        })
    }

    /// Decodes `bytes` and checks that they are the authority's credential binding
    /// `member_key` (32 bytes, Ed25519) to `hid`: what the ledger checks before it records an
    /// issued credential.
    pub fn verify_bytes(
        bytes: &[u8],
        hid: &Hid,
        member_key: &[u8],
        authority: &AuthorityPublicKey,
    ) -> Result<Self, GroupError> {
        let cred = Self::from_bytes(bytes)?;
        if cred.hid != *hid || member_key.len() != 32 {
            return Err(GroupError::InvalidCredential);
        }
        suite()?
            .verify(
                &authority.0,
                &cred.signature,
                &tbs(hid, &SignaturePublicKey::new(member_key.to_vec())),
            )
            .map_err(|_| GroupError::InvalidCredential)?;
        Ok(cred)
    }

    /// As an MLS credential.
    pub fn to_mls(&self) -> Credential {
        Credential::Custom(CustomCredential::new(HID_CREDENTIAL_TYPE, self.to_bytes()))
    }

    /// The HID credential inside an MLS signing identity, with the authority signature checked.
    pub fn verify(
        identity: &SigningIdentity,
        authority: &AuthorityPublicKey,
    ) -> Result<Self, GroupError> {
        let Credential::Custom(custom) = &identity.credential else {
            return Err(GroupError::InvalidCredential);
        };
        if custom.credential_type != HID_CREDENTIAL_TYPE {
            return Err(GroupError::InvalidCredential);
        }
        let cred = Self::from_bytes(&custom.data)?;
        suite()?
            .verify(
                &authority.0,
                &cred.signature,
                &tbs(&cred.hid, &identity.signature_key),
            )
            .map_err(|_| GroupError::InvalidCredential)?;
        Ok(cred)
    }
}

/// The HID of a signing identity whose credential was already validated by MLS (no signature
/// check; for rosters of a group state that passed [`HidIdentityProvider`]).
pub(crate) fn hid_of(identity: &SigningIdentity) -> Result<Hid, GroupError> {
    match &identity.credential {
        Credential::Custom(c) if c.credential_type == HID_CREDENTIAL_TYPE => {
            Ok(HidCredential::from_bytes(&c.data)?.hid)
        }
        _ => Err(GroupError::InvalidCredential),
    }
}

/// Validates members' credentials against the authority key: used by members and by the
/// observer alike, so both accept exactly the same leaves.
#[derive(Clone, Debug)]
pub struct HidIdentityProvider {
    authority: AuthorityPublicKey,
}

impl HidIdentityProvider {
    /// Trusts credentials signed by `authority`.
    pub fn new(authority: AuthorityPublicKey) -> Self {
        Self { authority }
    }
}

/// The identity provider's error (opaque on purpose, see [`GroupError::InvalidCredential`]).
#[derive(Debug, thiserror::Error)]
#[error("invalid group credential")]
pub struct CredentialError;

impl IntoAnyError for CredentialError {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(Box::new(self))
    }
}

impl IdentityProvider for HidIdentityProvider {
    type Error = CredentialError;

    fn validate_member(
        &self,
        signing_identity: &SigningIdentity,
        _timestamp: Option<MlsTime>,
        _context: MemberValidationContext<'_>,
    ) -> Result<(), Self::Error> {
        HidCredential::verify(signing_identity, &self.authority)
            .map(|_| ())
            .map_err(|_| CredentialError)
    }

    fn validate_external_sender(
        &self,
        _signing_identity: &SigningIdentity,
        _timestamp: Option<MlsTime>,
        _extensions: Option<&ExtensionList>,
    ) -> Result<(), Self::Error> {
        // No external senders: an administrator's removal is a ledger record the observer checks.
        Err(CredentialError)
    }

    fn identity(
        &self,
        signing_identity: &SigningIdentity,
        _extensions: &ExtensionList,
    ) -> Result<Vec<u8>, Self::Error> {
        hid_of(signing_identity)
            .map(|h| h.as_bytes().to_vec())
            .map_err(|_| CredentialError)
    }

    fn valid_successor(
        &self,
        predecessor: &SigningIdentity,
        successor: &SigningIdentity,
        _extensions: &ExtensionList,
    ) -> Result<bool, Self::Error> {
        // A leaf may change its key (a new credential), never its HID.
        let a = hid_of(predecessor).map_err(|_| CredentialError)?;
        let b = HidCredential::verify(successor, &self.authority).map_err(|_| CredentialError)?;
        Ok(a == b.hid)
    }

    fn supported_types(&self) -> Vec<CredentialType> {
        vec![HID_CREDENTIAL_TYPE]
    }
}
