//! An established session: AES-256-GCM per direction, nonces from direction and sequence number.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use alloc::vec::Vec;

use crate::MessageKind;
use crate::error::SessionError;
use crate::identity::Hid;
use crate::wire::Reader;

/// Which side of a session this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The meter: seals with the meter → head-end key.
    Meter,
    /// The head-end: seals with the head-end → meter key.
    HeadEnd,
}

impl Role {
    /// The first nonce byte of messages this side seals.
    const fn direction(self) -> u8 {
        match self {
            Role::Meter => 0x01,
            Role::HeadEnd => 0x02,
        }
    }

    const fn peer(self) -> Role {
        match self {
            Role::Meter => Role::HeadEnd,
            Role::HeadEnd => Role::Meter,
        }
    }
}

/// Bytes of a sealed message before the ciphertext: kind, version, sequence number.
const HEADER_LEN: usize = 2 + 8;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;

/// A mutually authenticated session between one meter and the head-end.
///
/// [`Session::seal`] numbers messages 0, 1, 2, … per direction; [`Session::open`] accepts a
/// sequence number only above the last one it opened, so a replayed or reordered message is
/// refused. Gaps are allowed (a lost message does not stall the session). Secret keys stay inside
/// the AES key schedule; `Debug` prints none of them.
pub struct Session {
    role: Role,
    seal_cipher: Aes256Gcm,
    open_cipher: Aes256Gcm,
    next_seal: u64,
    next_open: u64,
    id: [u8; 32],
    meter: Hid,
    head_end: Hid,
    meter_key_version: Option<u64>,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("meter", &self.meter)
            .field("head_end", &self.head_end)
            .field("next_seal", &self.next_seal)
            .field("next_open", &self.next_open)
            .finish_non_exhaustive()
    }
}

/// What [`super::KeySchedule`] hands to a new session.
pub(crate) struct SessionParts<'a> {
    pub(crate) role: Role,
    pub(crate) meter_to_head_end: &'a [u8; 32],
    pub(crate) head_end_to_meter: &'a [u8; 32],
    pub(crate) id: [u8; 32],
    pub(crate) meter: Hid,
    pub(crate) head_end: Hid,
    pub(crate) meter_key_version: Option<u64>,
}

impl Session {
    /// Bytes sealing adds to a plaintext: kind, version, sequence number (10) and tag (16).
    pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

    pub(crate) fn new(parts: SessionParts<'_>) -> Session {
        let (seal, open) = match parts.role {
            Role::Meter => (parts.meter_to_head_end, parts.head_end_to_meter),
            Role::HeadEnd => (parts.head_end_to_meter, parts.meter_to_head_end),
        };
        Session {
            role: parts.role,
            seal_cipher: Aes256Gcm::new(seal.into()),
            open_cipher: Aes256Gcm::new(open.into()),
            next_seal: 0,
            next_open: 0,
            id: parts.id,
            meter: parts.meter,
            head_end: parts.head_end,
            meter_key_version: parts.meter_key_version,
        }
    }

    fn nonce(role: Role, sequence: u64) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[0] = role.direction();
        nonce[4..].copy_from_slice(&sequence.to_be_bytes());
        nonce
    }

    /// Encrypts and authenticates `plaintext` for the peer, binding `aad` (which is not sent;
    /// the peer must pass the same bytes to [`Session::open`]). Output:
    /// `kind 0x08 || version || sequence number (u64 BE) || ciphertext || tag`.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        let sequence = self.next_seal;
        // Sequence number u64::MAX is never used, so `next_seal` never wraps and a nonce never
        // repeats.
        let next = sequence
            .checked_add(1)
            .ok_or(SessionError::SequenceExhausted)?;
        let mut out = Vec::with_capacity(Self::OVERHEAD + plaintext.len());
        out.push(MessageKind::SessionRecord as u8);
        out.push(crate::FORMAT_VERSION);
        out.extend_from_slice(&sequence.to_be_bytes());
        out.extend_from_slice(plaintext);
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let tag = self
            .seal_cipher
            .encrypt_in_place_detached(
                Nonce::from_slice(&Self::nonce(self.role, sequence)),
                &associated_data(header, aad),
                body,
            )
            // AES-GCM refuses only plaintexts over 2^36 bytes.
            .map_err(|_| SessionError::Aead)?;
        out.extend_from_slice(&tag);
        self.next_seal = next;
        Ok(out)
    }

    /// Checks and decrypts a message sealed by the peer with the same `aad`. Refuses a sequence
    /// number not above the last one opened ([`SessionError::Replayed`]) before any decryption;
    /// a message that fails authentication does not move the window.
    pub fn open(&mut self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SessionError> {
        let mut reader = Reader::new(sealed);
        reader.kind_and_version(MessageKind::SessionRecord)?;
        let sequence = u64::from_be_bytes(reader.array()?);
        let rest = sealed.len() - HEADER_LEN;
        let body_len = rest
            .checked_sub(TAG_LEN)
            .ok_or(crate::error::DecodeError::Truncated {
                needed: Self::OVERHEAD,
                available: sealed.len(),
            })?;
        if sequence < self.next_open {
            return Err(SessionError::Replayed {
                sequence,
                expected: self.next_open,
            });
        }
        let next = sequence
            .checked_add(1)
            .ok_or(SessionError::SequenceExhausted)?;
        let body = reader.slice(body_len)?;
        let tag = Tag::from_slice(reader.slice(TAG_LEN)?);
        reader.finish()?;
        let mut plaintext = Vec::from(body);
        self.open_cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&Self::nonce(self.role.peer(), sequence)),
                &associated_data(&sealed[..HEADER_LEN], aad),
                &mut plaintext,
                tag,
            )
            .map_err(|_| SessionError::Aead)?;
        self.next_open = next;
        Ok(plaintext)
    }

    /// This side of the session.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The session identifier: the hash of the whole handshake transcript (the same on both
    /// sides; for logs and for binding application messages to this session).
    pub fn id(&self) -> &[u8; 32] {
        &self.id
    }

    /// The authenticated meter.
    pub fn meter(&self) -> Hid {
        self.meter
    }

    /// The authenticated head-end.
    pub fn head_end(&self) -> Hid {
        self.head_end
    }

    /// On the head-end: the meter's registered key version the handshake was authenticated with
    /// (so the caller can end the session when the ledger rotates or revokes that key). `None`
    /// on the meter.
    pub fn meter_key_version(&self) -> Option<u64> {
        self.meter_key_version
    }

    /// The sequence number the next [`Session::seal`] will use.
    pub fn next_seal_sequence(&self) -> u64 {
        self.next_seal
    }
}

/// `record header (kind, version, sequence) || caller aad`: the header is authenticated too.
fn associated_data(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + aad.len());
    out.extend_from_slice(header);
    out.extend_from_slice(aad);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Session, Session) {
        let parts = |role| SessionParts {
            role,
            meter_to_head_end: &[1; 32],
            head_end_to_meter: &[2; 32],
            id: [3; 32],
            meter: Hid::from_bytes([4; 32]),
            head_end: Hid::from_bytes([5; 32]),
            meter_key_version: None,
        };
        (
            Session::new(parts(Role::Meter)),
            Session::new(parts(Role::HeadEnd)),
        )
    }

    #[test]
    fn the_last_sequence_number_is_sealed_once_then_the_session_is_exhausted() {
        let (mut meter, mut head_end) = pair();
        meter.next_seal = u64::MAX - 1;
        let last = meter.seal(b"", b"last").unwrap();
        assert_eq!(last[2..10], (u64::MAX - 1).to_be_bytes());
        assert_eq!(
            meter.seal(b"", b"more"),
            Err(SessionError::SequenceExhausted)
        );
        assert_eq!(meter.next_seal_sequence(), u64::MAX);
        assert_eq!(head_end.open(b"", &last).unwrap(), b"last");
        // Nothing can follow it: a record claiming u64::MAX is refused before decryption.
        let mut after = last.clone();
        after[2..10].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            head_end.open(b"", &after),
            Err(SessionError::SequenceExhausted)
        );
    }

    #[test]
    fn directions_use_different_keys_and_nonces() {
        let (mut meter, mut head_end) = pair();
        let up = meter.seal(b"", b"same").unwrap();
        let down = head_end.seal(b"", b"same").unwrap();
        // Same plaintext, same sequence number 0: different ciphertexts.
        assert_eq!(up[..10], down[..10]);
        assert_ne!(up[10..], down[10..]);
        assert_eq!(meter.open(b"", &up), Err(SessionError::Aead));
        assert_eq!(meter.open(b"", &down).unwrap(), b"same");
    }
}
