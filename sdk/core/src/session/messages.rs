//! The three handshake messages: fixed length, canonical, decoded strictly through [`Reader`].

use alloc::vec::Vec;

use k256::PublicKey;

use crate::MessageKind;
use crate::error::{DecodeError, Field};
use crate::identity::{Hid, Timestamp};
use crate::keys::{LowSSignature, compress, parse_point};
use crate::wire::{Header, Reader};

/// Length of the handshake nonces.
pub const NONCE_LEN: usize = 16;
/// Length of the key-confirmation MACs (HMAC-SHA-256).
pub const MAC_LEN: usize = 32;

/// An ephemeral handshake point, on the curve, with its compressed encoding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ephemeral {
    pub(crate) point: PublicKey,
    pub(crate) bytes: [u8; 33],
}

impl Ephemeral {
    pub(crate) fn from_point(point: PublicKey) -> Self {
        Ephemeral {
            bytes: compress(&point),
            point,
        }
    }

    fn parse(bytes: [u8; 33]) -> Result<Self, DecodeError> {
        Ok(Ephemeral {
            point: parse_point(&bytes, Field::EphemeralKey)?,
            bytes,
        })
    }
}

impl core::fmt::Debug for Ephemeral {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ephemeral(")?;
        for byte in self.bytes {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// Message 1, meter → head-end: `header(kind 0x05, HID, timestamp) || X || N_M` (91 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInit {
    pub(crate) header: Header,
    pub(crate) ephemeral: Ephemeral,
    pub(crate) nonce: [u8; NONCE_LEN],
}

impl SessionInit {
    /// Encoded length in bytes.
    pub const ENCODED_LEN: usize = Header::LEN + 33 + NONCE_LEN;

    /// Parses exactly one message: kind, version, length, ephemeral point on the curve.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let header = reader.header(MessageKind::SessionInit)?;
        let ephemeral = Ephemeral::parse(reader.array()?)?;
        let nonce = reader.array()?;
        reader.finish()?;
        Ok(SessionInit {
            header,
            ephemeral,
            nonce,
        })
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.extend_from_slice(&self.header.encode(MessageKind::SessionInit));
        out.extend_from_slice(&self.ephemeral.bytes);
        out.extend_from_slice(&self.nonce);
        out
    }

    /// The meter this request claims to come from (not yet authenticated).
    pub fn hid(&self) -> Hid {
        self.header.hid
    }

    /// The meter's clock when it started the handshake.
    pub fn timestamp(&self) -> Timestamp {
        self.header.timestamp
    }
}

/// Message 2, head-end → meter:
/// `kind 0x06 || version || head-end id || Y || N_A || signature || MAC` (179 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionResponse {
    pub(crate) head_end: Hid,
    pub(crate) ephemeral: Ephemeral,
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) signature: LowSSignature,
    pub(crate) mac: [u8; MAC_LEN],
}

impl SessionResponse {
    /// Bytes before the signature: the part of the response inside the first transcript hash.
    pub(crate) const BODY_LEN: usize = 2 + Hid::LEN + 33 + NONCE_LEN;
    /// Encoded length in bytes.
    pub const ENCODED_LEN: usize = Self::BODY_LEN + LowSSignature::LEN + MAC_LEN;

    pub(crate) fn body(&self) -> [u8; Self::BODY_LEN] {
        Self::body_of(&self.head_end, &self.ephemeral, &self.nonce)
    }

    pub(crate) fn body_of(
        head_end: &Hid,
        ephemeral: &Ephemeral,
        nonce: &[u8; NONCE_LEN],
    ) -> [u8; Self::BODY_LEN] {
        let mut out = [0u8; Self::BODY_LEN];
        out[0] = MessageKind::SessionResponse as u8;
        out[1] = crate::FORMAT_VERSION;
        out[2..34].copy_from_slice(head_end.as_bytes());
        out[34..67].copy_from_slice(&ephemeral.bytes);
        out[67..].copy_from_slice(nonce);
        out
    }

    /// Parses exactly one message: kind, version, length, point on the curve, low-S signature.
    /// The signature and MAC are checked by [`super::MeterHandshake::finish`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        reader.kind_and_version(MessageKind::SessionResponse)?;
        let head_end = Hid::from_bytes(reader.array()?);
        let ephemeral = Ephemeral::parse(reader.array()?)?;
        let nonce = reader.array()?;
        let signature = LowSSignature::parse(&reader.array()?, Field::Signature)?;
        let mac = reader.array()?;
        reader.finish()?;
        Ok(SessionResponse {
            head_end,
            ephemeral,
            nonce,
            signature,
            mac,
        })
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.extend_from_slice(&self.body());
        out.extend_from_slice(&self.signature.to_bytes());
        out.extend_from_slice(&self.mac);
        out
    }

    /// The head-end this response claims to come from (not yet authenticated).
    pub fn head_end(&self) -> Hid {
        self.head_end
    }
}

/// Message 3, meter → head-end: `kind 0x07 || version || signature || MAC` (98 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfirm {
    pub(crate) signature: LowSSignature,
    pub(crate) mac: [u8; MAC_LEN],
}

impl SessionConfirm {
    /// Encoded length in bytes.
    pub const ENCODED_LEN: usize = 2 + LowSSignature::LEN + MAC_LEN;

    /// Parses exactly one message: kind, version, length, low-S signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        reader.kind_and_version(MessageKind::SessionConfirm)?;
        let signature = LowSSignature::parse(&reader.array()?, Field::Signature)?;
        let mac = reader.array()?;
        reader.finish()?;
        Ok(SessionConfirm { signature, mac })
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.push(MessageKind::SessionConfirm as u8);
        out.push(crate::FORMAT_VERSION);
        out.extend_from_slice(&self.signature.to_bytes());
        out.extend_from_slice(&self.mac);
        out
    }
}
