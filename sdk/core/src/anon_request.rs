//! A meter's request for an anonymous credential, as the ledger receives it: the `bcami-anon`
//! join request (opaque here) wrapped in the BC-AMI header and signed with the meter's
//! registered key, so that only a registered, active meter obtains a credential.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::MessageKind;
use crate::domain;
use crate::error::{BuildError, DecodeError, Field, VerifyError};
use crate::identity::{Hid, Timestamp};
use crate::keys::{LowSSignature, MeterPublicKey, MeterSecretKey, sign, verify};
use crate::wire::{Header, Reader};

/// Length of the wrapped `bcami-anon` join request (its kind `0x22`, version 1).
pub const ANON_JOIN_REQUEST_LEN: usize = 182;

const SIGNED_LEN: usize = Header::LEN + ANON_JOIN_REQUEST_LEN;

/// A meter's anonymous-credential request: header, the `bcami-anon` join request, and the
/// meter's signature over both under [`domain::ANON_CREDENTIAL_REQUEST`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnonCredentialRequest {
    header: Header,
    join_request: [u8; ANON_JOIN_REQUEST_LEN],
    signature: LowSSignature,
}

impl AnonCredentialRequest {
    /// Encoded length in bytes.
    pub const ENCODED_LEN: usize = SIGNED_LEN + LowSSignature::LEN;

    /// Wraps `join_request` (an encoded `bcami-anon` join request) for `hid` at `timestamp`,
    /// signed with the meter's key.
    pub fn build(
        key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
        join_request: &[u8; ANON_JOIN_REQUEST_LEN],
    ) -> Result<Self, BuildError> {
        let header = Header { hid, timestamp };
        let body = body(&header, join_request);
        let signature = sign(key.signing_key(), digest(&body))?;
        Ok(AnonCredentialRequest {
            header,
            join_request: *join_request,
            signature,
        })
    }

    /// Parses exactly one request (form only: the join request inside is opaque here; call
    /// [`Self::verify`] for the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let header = reader.header(MessageKind::AnonCredentialRequest)?;
        let join_request = reader.array()?;
        let signature = LowSSignature::parse(&reader.array()?, Field::Signature)?;
        reader.finish()?;
        Ok(AnonCredentialRequest {
            header,
            join_request,
            signature,
        })
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.extend_from_slice(&body(&self.header, &self.join_request));
        out.extend_from_slice(&self.signature.to_bytes());
        out
    }

    /// Checks the signature under the meter's registered key.
    pub fn verify(&self, meter_key: &MeterPublicKey) -> Result<(), VerifyError> {
        let body = body(&self.header, &self.join_request);
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

    /// The wrapped `bcami-anon` join request.
    pub fn join_request(&self) -> &[u8; ANON_JOIN_REQUEST_LEN] {
        &self.join_request
    }
}

fn body(header: &Header, join_request: &[u8; ANON_JOIN_REQUEST_LEN]) -> [u8; SIGNED_LEN] {
    let mut out = [0u8; SIGNED_LEN];
    out[..Header::LEN].copy_from_slice(&header.encode(MessageKind::AnonCredentialRequest));
    out[Header::LEN..].copy_from_slice(join_request);
    out
}

fn digest(body: &[u8; SIGNED_LEN]) -> Sha256 {
    Sha256::new()
        .chain_update(domain::ANON_CREDENTIAL_REQUEST)
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
