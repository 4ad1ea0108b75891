#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod anon_request;
mod ecies;
mod error;
mod group_request;
mod identity;
mod keys;
mod messages;
mod report;
pub mod session;
mod signed_request;
pub mod store;
mod transaction;
mod wire;

use core::fmt;

pub use anon_request::{ANON_JOIN_REQUEST_LEN, AnonCredentialRequest};
pub use error::{
    BuildError, DecodeError, DecryptError, Error, Field, HandshakeError, KeyError, SessionError,
    VerifyError,
};
pub use group_request::{GROUP_SIGNATURE_KEY_LEN, GroupCredentialRequest};
pub use identity::{Hid, ParseHidError, Timestamp};
pub use keys::{
    HeadEndPublicKey, HeadEndSecretKey, MIN_ENTROPY_LEN, MdmsPublicKey, MdmsSecretKey,
    MeterPublicKey, MeterSecretKey,
};
pub use messages::{
    HeadEndRegistrationRequest, KeyRotationRequest, MdmsRegistrationRequest, RegistrationRequest,
};
pub use rand_core;
pub use report::{IntervalLength, QualityFlags, UsageReport, WattHours};
pub use transaction::Transaction;

/// The format version every message of this build writes and accepts (byte 1 of each message).
pub const FORMAT_VERSION: u8 = 1;

/// The first byte of every message: what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum MessageKind {
    /// [`RegistrationRequest`].
    MeterRegistration = 0x01,
    /// [`Transaction`].
    Reading = 0x02,
    /// [`KeyRotationRequest`].
    KeyRotation = 0x03,
    /// [`MdmsRegistrationRequest`].
    MdmsRegistration = 0x04,
    /// [`session::SessionInit`], meter → head-end.
    SessionInit = 0x05,
    /// [`session::SessionResponse`], head-end → meter.
    SessionResponse = 0x06,
    /// [`session::SessionConfirm`], meter → head-end.
    SessionConfirm = 0x07,
    /// A message sealed with [`session::Session::seal`], either direction.
    SessionRecord = 0x08,
    /// [`HeadEndRegistrationRequest`].
    HeadEndRegistration = 0x09,
    /// [`AnonCredentialRequest`], meter → ledger.
    AnonCredentialRequest = 0x0A,
    /// [`GroupCredentialRequest`], meter → ledger.
    GroupCredentialRequest = 0x0B,
}

impl MessageKind {
    /// The kind named by a first byte, if any.
    pub const fn from_byte(byte: u8) -> Option<MessageKind> {
        match byte {
            0x01 => Some(MessageKind::MeterRegistration),
            0x02 => Some(MessageKind::Reading),
            0x03 => Some(MessageKind::KeyRotation),
            0x04 => Some(MessageKind::MdmsRegistration),
            0x05 => Some(MessageKind::SessionInit),
            0x06 => Some(MessageKind::SessionResponse),
            0x07 => Some(MessageKind::SessionConfirm),
            0x08 => Some(MessageKind::SessionRecord),
            0x09 => Some(MessageKind::HeadEndRegistration),
            0x0A => Some(MessageKind::AnonCredentialRequest),
            0x0B => Some(MessageKind::GroupCredentialRequest),
            _ => None,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::MeterRegistration => "meter registration",
            MessageKind::Reading => "reading",
            MessageKind::KeyRotation => "key rotation",
            MessageKind::MdmsRegistration => "MDMS registration",
            MessageKind::SessionInit => "session init",
            MessageKind::SessionResponse => "session response",
            MessageKind::SessionConfirm => "session confirm",
            MessageKind::SessionRecord => "session record",
            MessageKind::HeadEndRegistration => "head-end key registration",
            MessageKind::AnonCredentialRequest => "anonymous credential request",
            MessageKind::GroupCredentialRequest => "group credential request",
        })
    }
}

/// Domain tags: the prefix of every signed message and KDF input, so that no signature or key made
/// for one purpose is valid for another. ASCII, NUL-terminated (so none is a prefix of another),
/// versioned. Changing one is a format version change.
pub mod domain {
    /// Meter registration proof of possession.
    pub const METER_REGISTRATION: &[u8] = b"BC-AMI/1 meter registration\0";
    /// MDMS key registration proof of possession.
    pub const MDMS_REGISTRATION: &[u8] = b"BC-AMI/1 MDMS key registration\0";
    /// Head-end key registration proof of possession.
    pub const HEAD_END_REGISTRATION: &[u8] = b"BC-AMI/1 head-end key registration\0";
    /// Reading transaction signature.
    pub const READING: &[u8] = b"BC-AMI/1 reading\0";
    /// Key rotation, signature by the current key.
    pub const ROTATION_CURRENT_KEY: &[u8] = b"BC-AMI/1 key rotation by current key\0";
    /// Key rotation, proof of possession by the new key.
    pub const ROTATION_NEW_KEY: &[u8] = b"BC-AMI/1 key rotation by new key\0";
    /// Anonymous-credential request, signature by the meter's registered key.
    pub const ANON_CREDENTIAL_REQUEST: &[u8] = b"BC-AMI/1 anon credential request\0";
    /// Group-credential request, signature by the meter's registered key.
    pub const GROUP_CREDENTIAL_REQUEST: &[u8] = b"BC-AMI/1 group credential request\0";
    /// HKDF `info` of the ECIES key schedule.
    pub const ECIES: &[u8] = crate::ecies::ECIES_LABEL;
    /// HKDF `info` prefix of the hedged ECIES ephemeral scalar.
    pub const ECIES_EPHEMERAL: &[u8] = crate::keys::EPHEMERAL_LABEL;
    /// HKDF `info` prefix of a secret key derived from caller entropy.
    pub const SECRET_KEY_FROM_ENTROPY: &[u8] = crate::keys::ENTROPY_LABEL;
    /// Session handshake: prefix of the transcript hash.
    pub const SESSION_TRANSCRIPT: &[u8] = b"BC-AMI/1 session transcript\0";
    /// Session handshake: HKDF `info` of the key schedule (confirmation key, two traffic keys).
    pub const SESSION_KEYS: &[u8] = b"BC-AMI/1 session keys HKDF-SHA-256 AES-256-GCM\0";
    /// Session handshake: the head-end's signature over the transcript.
    pub const SESSION_HEAD_END_SIGNATURE: &[u8] = b"BC-AMI/1 session head-end signature\0";
    /// Session handshake: the head-end's key-confirmation MAC.
    pub const SESSION_HEAD_END_MAC: &[u8] = b"BC-AMI/1 session head-end MAC\0";
    /// Session handshake: the meter's signature over the transcript.
    pub const SESSION_METER_SIGNATURE: &[u8] = b"BC-AMI/1 session meter signature\0";
    /// Session handshake: the meter's key-confirmation MAC.
    pub const SESSION_METER_MAC: &[u8] = b"BC-AMI/1 session meter MAC\0";
    /// HKDF `info` prefix of a handshake ephemeral key and nonce derived from caller entropy.
    pub const SESSION_EPHEMERAL: &[u8] = b"BC-AMI/1 session ephemeral key\0";
}
