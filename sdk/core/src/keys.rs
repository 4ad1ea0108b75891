//! secp256k1 keys for meters and the MDMS, and the low-S signature form.
//!
//! Secret keys are made on the device from the caller's RNG (firmware has its own) or from
//! caller-supplied entropy; they never leave it. Public keys are always compressed SEC1 (33 bytes)
//! and are checked to be on the curve when parsed, so a value of these types is always usable.

use core::fmt;

use hkdf::Hkdf;
use k256::ecdsa::signature::{DigestSigner, DigestVerifier};
use k256::ecdsa::{Signature as EcdsaSignature, SigningKey, VerifyingKey};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::elliptic_curve::zeroize::Zeroize;
use k256::{FieldBytes, NonZeroScalar, PublicKey};
use rand_core::CryptoRngCore;
use sha2::Sha256;

use crate::error::{BuildError, DecodeError, Field, KeyError};

/// Minimum entropy accepted by the `from_entropy` constructors, in bytes.
pub const MIN_ENTROPY_LEN: usize = 32;

/// Draws before a generator gives up on an RNG. A healthy RNG needs a second draw with
/// probability about 2^-128, so reaching this means the RNG is broken (for example stuck at zero).
const MAX_DRAWS: usize = 16;

/// Domain label for turning caller entropy into a secret scalar (HKDF-SHA-256 `info` prefix).
pub(crate) const ENTROPY_LABEL: &[u8] = b"BC-AMI/1 secret key from entropy\0";

/// Draws a uniformly random non-zero scalar: 32 bytes from the RNG, read big-endian, rejected and
/// redrawn if zero or not below the group order. Documented in FORMAT.md so that test vectors can
/// be reproduced by other implementations.
pub(crate) fn random_scalar<R: CryptoRngCore + ?Sized>(
    rng: &mut R,
) -> Result<NonZeroScalar, KeyError> {
    let mut bytes = [0u8; 32];
    for _ in 0..MAX_DRAWS {
        rng.try_fill_bytes(&mut bytes).map_err(|_| KeyError::Rng)?;
        let scalar = scalar_from_bytes(&bytes);
        bytes.zeroize();
        if let Some(scalar) = scalar {
            return Ok(scalar);
        }
    }
    Err(KeyError::Rng)
}

/// Derives a non-zero scalar from at least 32 bytes of caller entropy:
/// `HKDF-SHA-256(salt = none, ikm = entropy, info = ENTROPY_LABEL || counter)`, 32 bytes,
/// counter = 0, 1, ... until the output is a valid scalar.
pub(crate) fn scalar_from_entropy(entropy: &[u8]) -> Result<NonZeroScalar, KeyError> {
    if entropy.len() < MIN_ENTROPY_LEN {
        return Err(KeyError::NotEnoughEntropy {
            provided: entropy.len(),
            needed: MIN_ENTROPY_LEN,
        });
    }
    let hkdf = Hkdf::<Sha256>::new(None, entropy);
    let mut okm = [0u8; 32];
    for counter in 0..MAX_DRAWS {
        // MAX_DRAWS is far below 256, so the counter fits in one byte.
        let counter = [counter as u8];
        hkdf.expand_multi_info(&[ENTROPY_LABEL, &counter], &mut okm)
            .map_err(|_| KeyError::Rng)?;
        let scalar = scalar_from_bytes(&okm);
        okm.zeroize();
        if let Some(scalar) = scalar {
            return Ok(scalar);
        }
    }
    Err(KeyError::Rng)
}

/// Domain label for the hedged ECIES ephemeral scalar (HKDF-SHA-256 `info` prefix).
pub(crate) const EPHEMERAL_LABEL: &[u8] = b"BC-AMI/1 ECIES ephemeral key\0";

/// The ECIES ephemeral scalar of one reading, hedged against a bad RNG:
/// `HKDF-SHA-256(salt = none, ikm = entropy || meter secret key, info = EPHEMERAL_LABEL ||
/// counter || header || plaintext)`, 32 bytes, counter = 0, 1, ... until the output is a valid
/// scalar.
///
/// With good entropy it is as random as the entropy. With repeated or guessable entropy it is
/// still secret (the meter key is in it) and still differs for every different header or report,
/// so an AES-GCM key and nonce are never reused for two different messages.
pub(crate) fn hedged_ephemeral(
    entropy: &[u8],
    meter_key: &SigningKey,
    header: &[u8],
    plaintext: &[u8],
) -> Result<NonZeroScalar, KeyError> {
    if entropy.len() < MIN_ENTROPY_LEN {
        return Err(KeyError::NotEnoughEntropy {
            provided: entropy.len(),
            needed: MIN_ENTROPY_LEN,
        });
    }
    let mut extract = hkdf::HkdfExtract::<Sha256>::new(None);
    extract.input_ikm(entropy);
    let mut secret: [u8; 32] = meter_key.to_bytes().into();
    extract.input_ikm(&secret);
    secret.zeroize();
    let (_, hkdf) = extract.finalize();
    let mut okm = [0u8; 32];
    for counter in 0..MAX_DRAWS {
        // MAX_DRAWS is far below 256, so the counter fits in one byte.
        let counter = [counter as u8];
        hkdf.expand_multi_info(&[EPHEMERAL_LABEL, &counter, header, plaintext], &mut okm)
            .map_err(|_| KeyError::Rng)?;
        let scalar = scalar_from_bytes(&okm);
        okm.zeroize();
        if let Some(scalar) = scalar {
            return Ok(scalar);
        }
    }
    Err(KeyError::Rng)
}

fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<NonZeroScalar> {
    Option::from(NonZeroScalar::from_repr(FieldBytes::from(*bytes)))
}

/// Parses a compressed SEC1 point, distinguishing a bad prefix from an x that is not on the curve.
pub(crate) fn parse_point(bytes: &[u8; 33], field: Field) -> Result<PublicKey, DecodeError> {
    match bytes[0] {
        0x02 | 0x03 => {
            PublicKey::from_sec1_bytes(bytes).map_err(|_| DecodeError::PointNotOnCurve { field })
        }
        prefix => Err(DecodeError::InvalidPointEncoding { field, prefix }),
    }
}

pub(crate) fn compress(key: &PublicKey) -> [u8; 33] {
    let mut out = [0u8; 33];
    out.copy_from_slice(key.to_encoded_point(true).as_bytes());
    out
}

/// An ECDSA signature `r || s` (64 bytes, big-endian) with `1 <= r, s < n` and `s <= n/2`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct LowSSignature(EcdsaSignature);

impl LowSSignature {
    pub(crate) const LEN: usize = 64;

    pub(crate) fn parse(bytes: &[u8; 64], field: Field) -> Result<Self, DecodeError> {
        let signature = EcdsaSignature::from_slice(bytes)
            .map_err(|_| DecodeError::InvalidSignatureScalar { field })?;
        // `normalize_s` returns `Some` exactly when s is in the upper half.
        if signature.normalize_s().is_some() {
            return Err(DecodeError::HighS { field });
        }
        Ok(LowSSignature(signature))
    }

    pub(crate) fn to_bytes(self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(&self.0.to_bytes());
        out
    }
}

impl fmt::Debug for LowSSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        for byte in self.to_bytes() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// Signs `digest` (a SHA-256 state already fed with the domain tag and message) with RFC 6979
/// deterministic nonces, returning the low-S form.
pub(crate) fn sign(key: &SigningKey, digest: Sha256) -> Result<LowSSignature, BuildError> {
    let signature: EcdsaSignature = key
        .try_sign_digest(digest)
        .map_err(|_| BuildError::Signing)?;
    Ok(LowSSignature(signature.normalize_s().unwrap_or(signature)))
}

pub(crate) fn verify(key: &VerifyingKey, digest: Sha256, signature: &LowSSignature) -> bool {
    key.verify_digest(digest, &signature.0).is_ok()
}

macro_rules! public_key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            key: PublicKey,
            bytes: [u8; 33],
        }

        impl $name {
            /// Length of the compressed SEC1 encoding.
            pub const LEN: usize = 33;

            /// Parses a compressed SEC1 point (33 bytes, prefix 0x02 or 0x03) and checks it is on
            /// secp256k1.
            pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
                let bytes: &[u8; 33] = bytes.try_into().map_err(|_| {
                    if bytes.len() < 33 {
                        DecodeError::Truncated { needed: 33, available: bytes.len() }
                    } else {
                        DecodeError::TrailingBytes { extra: bytes.len() - 33 }
                    }
                })?;
                Self::parse(bytes, Field::PublicKey)
            }

            pub(crate) fn parse(bytes: &[u8; 33], field: Field) -> Result<Self, DecodeError> {
                let key = parse_point(bytes, field)?;
                Ok(Self { key, bytes: *bytes })
            }

            pub(crate) fn from_key(key: PublicKey) -> Self {
                Self { bytes: compress(&key), key }
            }

            /// The compressed SEC1 encoding.
            pub const fn to_bytes(&self) -> [u8; 33] {
                self.bytes
            }

            #[allow(dead_code)] // not every key type verifies signatures
            pub(crate) fn verifying_key(&self) -> VerifyingKey {
                VerifyingKey::from(&self.key)
            }

            #[allow(dead_code)] // not every key type is used for ECDH
            pub(crate) fn point(&self) -> &PublicKey {
                &self.key
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for byte in self.bytes {
                    write!(f, "{byte:02x}")?;
                }
                f.write_str(")")
            }
        }
    };
}

public_key_type!(
    /// A meter's ECDSA public key: compressed SEC1 secp256k1, known to be on the curve.
    MeterPublicKey
);
public_key_type!(
    /// The MDMS's public key, to which meters encrypt usage reports (ECIES): compressed SEC1
    /// secp256k1, known to be on the curve.
    MdmsPublicKey
);
public_key_type!(
    /// The AMI head-end's ECDSA public key, with which it signs session handshakes (meters read
    /// it from the ledger): compressed SEC1 secp256k1, known to be on the curve.
    HeadEndPublicKey
);

macro_rules! secret_key_type {
    ($(#[$doc:meta])* $name:ident, $public:ident) => {
        $(#[$doc])*
        ///
        /// `Debug` does not print the key. The scalar is wiped from memory on drop.
        #[derive(Clone)]
        pub struct $name {
            signing: SigningKey,
        }

        impl $name {
            /// Generates a key from the caller's cryptographic RNG. Fails only if the RNG fails
            /// or is stuck.
            pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Result<Self, KeyError> {
                Ok(Self::from_scalar(random_scalar(rng)?))
            }

            /// Derives a key from at least 32 bytes of caller entropy (for firmware whose RNG is
            /// not a `rand_core` type, and for the C ABI). The derivation is documented in
            /// FORMAT.md; the same entropy always gives the same key.
            pub fn from_entropy(entropy: &[u8]) -> Result<Self, KeyError> {
                Ok(Self::from_scalar(scalar_from_entropy(entropy)?))
            }

            /// Loads a stored key: 32 bytes big-endian, non-zero and below the group order.
            pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
                scalar_from_bytes(bytes).map(Self::from_scalar).ok_or(KeyError::InvalidSecretKey)
            }

            /// The 32-byte big-endian scalar, for storage in the device's secure element or flash.
            /// The caller is responsible for wiping the copy.
            pub fn to_bytes(&self) -> [u8; 32] {
                self.signing.to_bytes().into()
            }

            /// The matching public key.
            pub fn public_key(&self) -> $public {
                $public::from_key(PublicKey::from(self.signing.verifying_key()))
            }

            fn from_scalar(scalar: NonZeroScalar) -> Self {
                Self { signing: SigningKey::from(scalar) }
            }

            pub(crate) fn signing_key(&self) -> &SigningKey {
                &self.signing
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(<secret>)", stringify!($name))
            }
        }
    };
}

secret_key_type!(
    /// A meter's ECDSA signing key, generated on the meter.
    MeterSecretKey,
    MeterPublicKey
);
secret_key_type!(
    /// The MDMS's secret key: decrypts usage reports (ECIES) and signs the MDMS key registration.
    MdmsSecretKey,
    MdmsPublicKey
);

secret_key_type!(
    /// The AMI head-end's signing key: it signs the head-end's half of every session handshake.
    HeadEndSecretKey,
    HeadEndPublicKey
);

impl MdmsSecretKey {
    pub(crate) fn scalar(&self) -> NonZeroScalar {
        *self.signing.as_nonzero_scalar()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_bytes_are_range_checked() {
        assert_eq!(
            MeterSecretKey::from_bytes(&[0; 32]).err(),
            Some(KeyError::InvalidSecretKey)
        );
        assert_eq!(
            MeterSecretKey::from_bytes(&[0xff; 32]).err(),
            Some(KeyError::InvalidSecretKey)
        );
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = MeterSecretKey::from_bytes(&one).unwrap();
        assert_eq!(key.to_bytes(), one);
        // 1·G, SEC 2 §2.4.1.
        let g = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        let mut text = alloc::string::String::new();
        for b in key.public_key().to_bytes() {
            text.push_str(&alloc::format!("{b:02x}"));
        }
        assert_eq!(text, g);
    }

    #[test]
    fn entropy_must_be_long_enough_and_is_deterministic() {
        assert_eq!(
            MeterSecretKey::from_entropy(&[7; 31]).err(),
            Some(KeyError::NotEnoughEntropy {
                provided: 31,
                needed: 32
            })
        );
        let a = MeterSecretKey::from_entropy(&[7; 32])
            .map_err(|_| ())
            .unwrap();
        let b = MeterSecretKey::from_entropy(&[7; 32])
            .map_err(|_| ())
            .unwrap();
        let c = MeterSecretKey::from_entropy(&[8; 32])
            .map_err(|_| ())
            .unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_ne!(a.public_key(), c.public_key());
    }

    struct Stuck;
    impl rand_core::RngCore for Stuck {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            dest.fill(0);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for Stuck {}

    #[test]
    fn a_stuck_rng_is_reported_not_looped_on() {
        assert_eq!(
            MeterSecretKey::generate(&mut Stuck).err(),
            Some(KeyError::Rng)
        );
    }

    #[test]
    fn public_key_parsing_names_the_failure() {
        let mut bytes = [0u8; 33];
        bytes[0] = 0x04;
        assert_eq!(
            MeterPublicKey::from_sec1_bytes(&bytes),
            Err(DecodeError::InvalidPointEncoding {
                field: Field::PublicKey,
                prefix: 4
            })
        );
        // x = 5: 5^3 + 7 = 132 is not a square mod p, so no point has this x.
        bytes[0] = 0x02;
        bytes[32] = 5;
        assert_eq!(
            MeterPublicKey::from_sec1_bytes(&bytes),
            Err(DecodeError::PointNotOnCurve {
                field: Field::PublicKey
            })
        );
        assert_eq!(
            MeterPublicKey::from_sec1_bytes(&bytes[..32]),
            Err(DecodeError::Truncated {
                needed: 33,
                available: 32
            })
        );
    }
}
