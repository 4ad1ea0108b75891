//! Registration, MDMS and head-end key registration and key rotation: the key-binding messages.
//!
//! Each is `header || public key || signature(s)`, fixed length, and each signature is ECDSA
//! secp256k1 / SHA-256 (RFC 6979 nonces, low-S) over `domain tag || header || public key`.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::error::{BuildError, DecodeError, Field, VerifyError};
use crate::identity::{Hid, Timestamp};
use crate::keys::{
    HeadEndPublicKey, HeadEndSecretKey, LowSSignature, MdmsPublicKey, MdmsSecretKey,
    MeterPublicKey, MeterSecretKey, sign, verify,
};
use crate::wire::{Header, Reader};
use crate::{MessageKind, domain};

/// Bytes covered by the signatures: header and key.
const SIGNED_LEN: usize = Header::LEN + 33;

fn body(kind: MessageKind, header: &Header, key: &[u8; 33]) -> [u8; SIGNED_LEN] {
    let mut out = [0u8; SIGNED_LEN];
    out[..Header::LEN].copy_from_slice(&header.encode(kind));
    out[Header::LEN..].copy_from_slice(key);
    out
}

fn digest(tag: &[u8], body: &[u8; SIGNED_LEN]) -> Sha256 {
    Sha256::new().chain_update(tag).chain_update(body)
}

macro_rules! registration_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $tag:expr, $secret:ty, $public:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            header: Header,
            public_key: $public,
            signature: LowSSignature,
        }

        impl $name {
            /// Encoded length in bytes.
            pub const ENCODED_LEN: usize = SIGNED_LEN + LowSSignature::LEN;

            /// Builds the request for `hid` at `timestamp`, with a proof of possession of `key`.
            pub fn build(key: &$secret, hid: Hid, timestamp: Timestamp) -> Result<Self, BuildError> {
                let header = Header { hid, timestamp };
                let public_key = key.public_key();
                let body = body($kind, &header, &public_key.to_bytes());
                let signature = sign(key.signing_key(), digest($tag, &body))?;
                Ok(Self { header, public_key, signature })
            }

            /// Parses exactly one request. Checks the form (kind, version, lengths, point on the
            /// curve, low-S), not the signature: call [`Self::verify`].
            pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                let mut reader = Reader::new(bytes);
                let header = reader.header($kind)?;
                let public_key = <$public>::parse(&reader.array()?, Field::PublicKey)?;
                let signature = LowSSignature::parse(&reader.array()?, Field::Signature)?;
                reader.finish()?;
                Ok(Self { header, public_key, signature })
            }

            /// The wire form.
            pub fn encode(&self) -> Vec<u8> {
                let mut out = Vec::with_capacity(Self::ENCODED_LEN);
                out.extend_from_slice(&body($kind, &self.header, &self.public_key.to_bytes()));
                out.extend_from_slice(&self.signature.to_bytes());
                out
            }

            /// Checks the proof of possession: the request is signed by the key it registers.
            pub fn verify(&self) -> Result<(), VerifyError> {
                let body = body($kind, &self.header, &self.public_key.to_bytes());
                if verify(&self.public_key.verifying_key(), digest($tag, &body), &self.signature) {
                    Ok(())
                } else {
                    Err(VerifyError::ProofOfPossession)
                }
            }

            /// The hashed identity being registered.
            pub fn hid(&self) -> Hid {
                self.header.hid
            }

            /// When the request was made.
            pub fn timestamp(&self) -> Timestamp {
                self.header.timestamp
            }

            /// The key being registered.
            pub fn public_key(&self) -> &$public {
                &self.public_key
            }
        }
    };
}

registration_type!(
    /// A meter's registration (paper Phase 2): its HID, the public key it generated on the
    /// device, a timestamp, and a proof of possession of the key.
    RegistrationRequest,
    MessageKind::MeterRegistration,
    domain::METER_REGISTRATION,
    MeterSecretKey,
    MeterPublicKey
);

registration_type!(
    /// The MDMS's registration of its ECIES public key, with a proof of possession made with the
    /// same key (under its own domain tag, so it can never be mistaken for any other signature).
    MdmsRegistrationRequest,
    MessageKind::MdmsRegistration,
    domain::MDMS_REGISTRATION,
    MdmsSecretKey,
    MdmsPublicKey
);

registration_type!(
    /// The AMI head-end's registration of its session-signing key (and, made with the new key,
    /// its rotation by the administrator), with a proof of possession under its own domain tag.
    HeadEndRegistrationRequest,
    MessageKind::HeadEndRegistration,
    domain::HEAD_END_REGISTRATION,
    HeadEndSecretKey,
    HeadEndPublicKey
);

/// A meter replacing its key (a fresh key per session): signed by the current key, with a proof
/// of possession of the new one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRotationRequest {
    header: Header,
    new_public_key: MeterPublicKey,
    current_key_signature: LowSSignature,
    new_key_signature: LowSSignature,
}

impl KeyRotationRequest {
    /// Encoded length in bytes.
    pub const ENCODED_LEN: usize = SIGNED_LEN + 2 * LowSSignature::LEN;

    /// Builds the request: `current` authorises the change, `new` proves possession.
    pub fn build(
        current: &MeterSecretKey,
        new: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
    ) -> Result<Self, BuildError> {
        let header = Header { hid, timestamp };
        let new_public_key = new.public_key();
        let body = body(
            MessageKind::KeyRotation,
            &header,
            &new_public_key.to_bytes(),
        );
        Ok(KeyRotationRequest {
            header,
            new_public_key,
            current_key_signature: sign(
                current.signing_key(),
                digest(domain::ROTATION_CURRENT_KEY, &body),
            )?,
            new_key_signature: sign(new.signing_key(), digest(domain::ROTATION_NEW_KEY, &body))?,
        })
    }

    /// Parses exactly one request (form only; call [`Self::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let header = reader.header(MessageKind::KeyRotation)?;
        let new_public_key = MeterPublicKey::parse(&reader.array()?, Field::NewPublicKey)?;
        let current_key_signature =
            LowSSignature::parse(&reader.array()?, Field::CurrentKeySignature)?;
        let new_key_signature = LowSSignature::parse(&reader.array()?, Field::NewKeySignature)?;
        reader.finish()?;
        Ok(KeyRotationRequest {
            header,
            new_public_key,
            current_key_signature,
            new_key_signature,
        })
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.extend_from_slice(&self.body());
        out.extend_from_slice(&self.current_key_signature.to_bytes());
        out.extend_from_slice(&self.new_key_signature.to_bytes());
        out
    }

    /// Checks both signatures: by `current` (the key the ledger holds for this HID) and by the
    /// new key.
    pub fn verify(&self, current: &MeterPublicKey) -> Result<(), VerifyError> {
        let body = self.body();
        if !verify(
            &current.verifying_key(),
            digest(domain::ROTATION_CURRENT_KEY, &body),
            &self.current_key_signature,
        ) {
            return Err(VerifyError::CurrentKeySignature);
        }
        if !verify(
            &self.new_public_key.verifying_key(),
            digest(domain::ROTATION_NEW_KEY, &body),
            &self.new_key_signature,
        ) {
            return Err(VerifyError::NewKeySignature);
        }
        Ok(())
    }

    /// The meter's hashed identity.
    pub fn hid(&self) -> Hid {
        self.header.hid
    }

    /// When the request was made.
    pub fn timestamp(&self) -> Timestamp {
        self.header.timestamp
    }

    /// The key that replaces the current one.
    pub fn new_public_key(&self) -> &MeterPublicKey {
        &self.new_public_key
    }

    fn body(&self) -> [u8; SIGNED_LEN] {
        body(
            MessageKind::KeyRotation,
            &self.header,
            &self.new_public_key.to_bytes(),
        )
    }
}
