//! A meter's request for an anonymous credential, as the ledger receives it: the `bcami-anon`
//! join request (opaque here) wrapped in the BC-AMI header and signed with the meter's
//! registered key, so that only a registered, active meter obtains a credential.

use alloc::vec::Vec;

use crate::error::{BuildError, DecodeError, VerifyError};
use crate::identity::{Hid, Timestamp};
use crate::keys::{MeterPublicKey, MeterSecretKey};
use crate::signed_request::{RequestKind, SignedRequest};
use crate::{MessageKind, domain};

/// Length of the wrapped `bcami-anon` join request (its kind `0x22`, version 1).
pub const ANON_JOIN_REQUEST_LEN: usize = 182;

/// The kind and signature domain of a anonymous-credential request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AnonRequest {}

impl RequestKind for AnonRequest {
    const KIND: MessageKind = MessageKind::AnonCredentialRequest;
    const DOMAIN: &'static [u8] = domain::ANON_CREDENTIAL_REQUEST;
}

/// A meter's anonymous-credential request: header, the `bcami-anon` join request, and the
/// meter's signature over both under [`domain::ANON_CREDENTIAL_REQUEST`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnonCredentialRequest(SignedRequest<AnonRequest, ANON_JOIN_REQUEST_LEN>);

impl AnonCredentialRequest {
    /// Encoded length in bytes.
    pub const ENCODED_LEN: usize = SignedRequest::<AnonRequest, ANON_JOIN_REQUEST_LEN>::ENCODED_LEN;

    /// Wraps `join_request` (an encoded `bcami-anon` join request) for `hid` at `timestamp`,
    /// signed with the meter's key.
    pub fn build(
        key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
        join_request: &[u8; ANON_JOIN_REQUEST_LEN],
    ) -> Result<Self, BuildError> {
        SignedRequest::build(key, hid, timestamp, join_request).map(AnonCredentialRequest)
    }

    /// Parses exactly one request (form only: the join request inside is opaque here; call
    /// [`Self::verify`] for the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        SignedRequest::decode(bytes).map(AnonCredentialRequest)
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

    /// The wrapped `bcami-anon` join request.
    pub fn join_request(&self) -> &[u8; ANON_JOIN_REQUEST_LEN] {
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
        let mut join = [0u8; ANON_JOIN_REQUEST_LEN];
        join[0] = 0x22;
        join[1] = 1;
        join[100] = 0xaa;
        let request =
            AnonCredentialRequest::build(&key, hid, Timestamp::from_unix_millis(5), &join).unwrap();
        let bytes = request.encode();
        assert_eq!(bytes.len(), AnonCredentialRequest::ENCODED_LEN);
        let decoded = AnonCredentialRequest::decode(&bytes).unwrap();
        assert_eq!(decoded, request);
        assert_eq!(decoded.verify(&key.public_key()), Ok(()));
        assert_eq!(decoded.join_request(), &join);
        let other = MeterSecretKey::from_bytes(&[8; 32]).unwrap();
        assert_eq!(
            decoded.verify(&other.public_key()),
            Err(VerifyError::CredentialRequestSignature)
        );
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(d) = AnonCredentialRequest::decode(&flipped) {
                assert!(d.verify(&key.public_key()).is_err(), "bit {bit}");
            }
        }
        assert!(AnonCredentialRequest::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
