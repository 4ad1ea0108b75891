//! The frame of a meter's signed credential request (anonymous, group): the BC-AMI header, a
//! fixed-size payload that is opaque here, and the meter's low-S signature over both under the
//! request's own domain. This module owns that layout, its parse and its check; the request
//! types only name their kind, domain and payload.

use alloc::vec::Vec;
use core::marker::PhantomData;

use sha2::{Digest, Sha256};

use crate::MessageKind;
use crate::error::{BuildError, DecodeError, Field};
use crate::identity::{Hid, Timestamp};
use crate::keys::{LowSSignature, MeterPublicKey, MeterSecretKey, sign, verify};
use crate::wire::{Header, Reader};

/// What sets one signed request apart from another: its message kind and signature domain.
pub(crate) trait RequestKind {
    const KIND: MessageKind;
    const DOMAIN: &'static [u8];
}

/// Header, payload and signature of a request of kind `K` with an `N`-byte payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SignedRequest<K, const N: usize> {
    header: Header,
    payload: [u8; N],
    signature: LowSSignature,
    kind: PhantomData<K>,
}

impl<K: RequestKind, const N: usize> SignedRequest<K, N> {
    /// Encoded length in bytes.
    pub(crate) const ENCODED_LEN: usize = Header::LEN + N + LowSSignature::LEN;

    /// Signs `payload` for `hid` at `timestamp` with the meter's key.
    pub(crate) fn build(
        key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
        payload: &[u8; N],
    ) -> Result<Self, BuildError> {
        let header = Header { hid, timestamp };
        let signature = sign(key.signing_key(), digest::<K>(&header, payload))?;
        Ok(SignedRequest {
            header,
            payload: *payload,
            signature,
            kind: PhantomData,
        })
    }

    /// Parses exactly one request (form only; [`Self::verify`] checks the signature).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let header = reader.header(K::KIND)?;
        let payload = reader.array()?;
        let signature = LowSSignature::parse(&reader.array()?, Field::Signature)?;
        reader.finish()?;
        Ok(SignedRequest {
            header,
            payload,
            signature,
            kind: PhantomData,
        })
    }

    /// The wire form: header, payload, signature.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.extend_from_slice(&self.header.encode(K::KIND));
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&self.signature.to_bytes());
        out
    }

    /// Whether the signature is the meter's, under its registered key.
    pub(crate) fn is_signed_by(&self, meter_key: &MeterPublicKey) -> bool {
        verify(
            &meter_key.verifying_key(),
            digest::<K>(&self.header, &self.payload),
            &self.signature,
        )
    }

    pub(crate) fn hid(&self) -> Hid {
        self.header.hid
    }

    pub(crate) fn timestamp(&self) -> Timestamp {
        self.header.timestamp
    }

    pub(crate) fn payload(&self) -> &[u8; N] {
        &self.payload
    }
}

/// The signed digest: the domain, then the header and payload as they appear on the wire.
fn digest<K: RequestKind>(header: &Header, payload: &[u8]) -> Sha256 {
    Sha256::new()
        .chain_update(K::DOMAIN)
        .chain_update(header.encode(K::KIND))
        .chain_update(payload)
}
