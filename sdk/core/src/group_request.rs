//! A meter's request for a group credential (`bcami-group`), as the ledger receives it: the
//! meter's MLS signature public key (Ed25519) wrapped in the BC-AMI header and signed with the
//! meter's registered key, so that the group authority certifies only keys that an active,
//! registered meter asked for.

use alloc::vec::Vec;

use crate::error::{BuildError, DecodeError, VerifyError};
use crate::identity::{Hid, Timestamp};
use crate::keys::{MeterPublicKey, MeterSecretKey};
use crate::signed_request::{RequestKind, SignedRequest};
use crate::{MessageKind, domain};

/// Length of the MLS signature public key (Ed25519, cipher suite 1).
pub const GROUP_SIGNATURE_KEY_LEN: usize = 32;

/// The kind and signature domain of a group-credential request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupRequest {}

impl RequestKind for GroupRequest {
    const KIND: MessageKind = MessageKind::GroupCredentialRequest;
    const DOMAIN: &'static [u8] = domain::GROUP_CREDENTIAL_REQUEST;
}

/// A meter's group-credential request: header, the MLS signature public key, and the meter's
/// signature over both under [`domain::GROUP_CREDENTIAL_REQUEST`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCredentialRequest(SignedRequest<GroupRequest, GROUP_SIGNATURE_KEY_LEN>);

impl GroupCredentialRequest {
    /// Encoded length in bytes.
    pub const ENCODED_LEN: usize =
        SignedRequest::<GroupRequest, GROUP_SIGNATURE_KEY_LEN>::ENCODED_LEN;

    /// Wraps `signature_key` (the meter's MLS Ed25519 public key) for `hid` at `timestamp`,
    /// signed with the meter's key.
    pub fn build(
        key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
        signature_key: &[u8; GROUP_SIGNATURE_KEY_LEN],
    ) -> Result<Self, BuildError> {
        SignedRequest::build(key, hid, timestamp, signature_key).map(GroupCredentialRequest)
    }

    /// Parses exactly one request (form only; call [`Self::verify`] for the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        SignedRequest::decode(bytes).map(GroupCredentialRequest)
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// Checks the signature under the meter's registered key.
    pub fn verify(&self, meter_key: &MeterPublicKey) -> Result<(), VerifyError> {
        if self.0.is_signed_by(meter_key) {
            Ok(())
        } else {
            Err(VerifyError::CredentialRequestSignature)
        }
    }

    /// The meter's hashed identity.
    pub fn hid(&self) -> Hid {
        self.0.hid()
    }

    /// When the request was made.
    pub fn timestamp(&self) -> Timestamp {
        self.0.timestamp()
    }

    /// The MLS signature public key to be certified.
    pub fn signature_key(&self) -> &[u8; GROUP_SIGNATURE_KEY_LEN] {
        self.0.payload()
    }
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
