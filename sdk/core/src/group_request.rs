//! A meter's request for a group credential (`bcami-group`), as the ledger receives it: the
//! meter's MLS signature public key (Ed25519) wrapped in the BC-AMI header and signed with the
//! meter's registered key, so that the group authority certifies only keys that an active,
//! registered meter asked for.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::MessageKind;
use crate::domain;
use crate::error::{BuildError, DecodeError, Field, VerifyError};
use crate::identity::{Hid, Timestamp};
use crate::keys::{LowSSignature, MeterPublicKey, MeterSecretKey, sign, verify};
use crate::wire::{Header, Reader};

/// Length of the MLS signature public key (Ed25519, cipher suite 1).
pub const GROUP_SIGNATURE_KEY_LEN: usize = 32;

const SIGNED_LEN: usize = Header::LEN + GROUP_SIGNATURE_KEY_LEN;

/// A meter's group-credential request: header, the MLS signature public key, and the meter's
/// signature over both under [`domain::GROUP_CREDENTIAL_REQUEST`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCredentialRequest {
    header: Header,
    signature_key: [u8; GROUP_SIGNATURE_KEY_LEN],
    signature: LowSSignature,
}

impl GroupCredentialRequest {
    /// Encoded length in bytes.
    pub const ENCODED_LEN: usize = SIGNED_LEN + LowSSignature::LEN;

    /// Wraps `signature_key` (the meter's MLS Ed25519 public key) for `hid` at `timestamp`,
    /// signed with the meter's key.
    pub fn build(
        key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
        signature_key: &[u8; GROUP_SIGNATURE_KEY_LEN],
    ) -> Result<Self, BuildError> {
        let header = Header { hid, timestamp };
        let body = body(&header, signature_key);
        let signature = sign(key.signing_key(), digest(&body))?;
        Ok(GroupCredentialRequest {
            header,
            signature_key: *signature_key,
            signature,
        })
    }

    /// Parses exactly one request (form only; call [`Self::verify`] for the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let header = reader.header(MessageKind::GroupCredentialRequest)?;
        let signature_key = reader.array()?;
        let signature = LowSSignature::parse(&reader.array()?, Field::Signature)?;
        reader.finish()?;
        Ok(GroupCredentialRequest {
            header,
            signature_key,
            signature,
        })
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.extend_from_slice(&body(&self.header, &self.signature_key));
        out.extend_from_slice(&self.signature.to_bytes());
        out
    }

    /// Checks the signature under the meter's registered key.
    pub fn verify(&self, meter_key: &MeterPublicKey) -> Result<(), VerifyError> {
        let body = body(&self.header, &self.signature_key);
        if verify(&meter_key.verifying_key(), digest(&body), &self.signature) {
            Ok(())
        } else {
            Err(VerifyError::CredentialRequestSignature)
        }
    }

    /// The meter's hashed identity.
    pub fn hid(&self) -> Hid {
        self.header.hid
    }

    /// When the request was made.
    pub fn timestamp(&self) -> Timestamp {
        self.header.timestamp
    }

    /// The MLS signature public key to be certified.
    pub fn signature_key(&self) -> &[u8; GROUP_SIGNATURE_KEY_LEN] {
        &self.signature_key
    }
}

fn body(header: &Header, signature_key: &[u8; GROUP_SIGNATURE_KEY_LEN]) -> [u8; SIGNED_LEN] {
    let mut out = [0u8; SIGNED_LEN];
    out[..Header::LEN].copy_from_slice(&header.encode(MessageKind::GroupCredentialRequest));
    out[Header::LEN..].copy_from_slice(signature_key);
    out
}

fn digest(body: &[u8; SIGNED_LEN]) -> Sha256 {
    Sha256::new()
        .chain_update(domain::GROUP_CREDENTIAL_REQUEST)
        .chain_update(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_every_flipped_bit_is_refused() {
        let key = MeterSecretKey::from_bytes(&[7; 32]).unwrap();
        let hid = Hid::from_meter_id("SM-1");
        let mls_key = [0x5a; GROUP_SIGNATURE_KEY_LEN];
        let request =
            GroupCredentialRequest::build(&key, hid, Timestamp::from_unix_millis(5), &mls_key)
                .unwrap();
        let bytes = request.encode();
        assert_eq!(bytes.len(), GroupCredentialRequest::ENCODED_LEN);
        let decoded = GroupCredentialRequest::decode(&bytes).unwrap();
        assert_eq!(decoded, request);
        assert_eq!(decoded.verify(&key.public_key()), Ok(()));
        assert_eq!(decoded.signature_key(), &mls_key);
        let other = MeterSecretKey::from_bytes(&[8; 32]).unwrap();
        assert_eq!(
            decoded.verify(&other.public_key()),
            Err(VerifyError::CredentialRequestSignature)
        );
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(d) = GroupCredentialRequest::decode(&flipped) {
                assert!(d.verify(&key.public_key()).is_err(), "bit {bit}");
            }
        }
        assert!(GroupCredentialRequest::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
