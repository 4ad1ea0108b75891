//! The meter's operations on one fixed I/O buffer: inputs at fixed offsets, the output written
//! from offset 0, the output length or a [`Status`] returned. Pure and safe; the wasm exports
//! (`crate::wasm`) and the Cortex-M4 image only hand this module their buffer.
//!
//! Integers are big-endian, as on the wire. Every layout is a constant below, so a host can
//! write inputs without parsing anything.

use bcami_sdk::{
    Hid, KeyRotationRequest, MdmsPublicKey, MeterSecretKey, RegistrationRequest, Timestamp,
    Transaction, UsageReport,
};

mod session;

pub use session::{
    MAX_SEAL_PLAINTEXT, MeterSession, RECORD_LENGTHS_LEN, SESSION_FINISH_INPUT_LEN,
    SESSION_FINISH_OUTPUT_LEN, SESSION_ID_LEN, SESSION_START_INPUT_LEN, end as session_end,
    finish as session_finish, open as session_open, seal as session_seal, start as session_start,
};

/// Size of the I/O buffer: the largest input or output. A head-end session record carrying a
/// signed reading (about 230 bytes with the connection's associated data) sets it; the other
/// operations need at most 211 bytes (`session_finish`'s input).
pub const IO_LEN: usize = 512;
/// Bytes of caller entropy an operation takes.
pub const ENTROPY_LEN: usize = 32;
/// A meter secret key (big-endian scalar).
pub const SECRET_KEY_LEN: usize = 32;
/// A compressed SEC1 public key.
pub const PUBLIC_KEY_LEN: usize = 33;
/// A hashed identity.
pub const HID_LEN: usize = 32;
/// A timestamp: u64 milliseconds since the Unix epoch, big-endian.
pub const TIMESTAMP_LEN: usize = 8;

/// `keygen` input: entropy. Output: secret key, then public key.
pub const KEYGEN_INPUT_LEN: usize = ENTROPY_LEN;
/// `keygen` output length.
pub const KEYGEN_OUTPUT_LEN: usize = SECRET_KEY_LEN + PUBLIC_KEY_LEN;
/// `registration` input: secret key, HID, timestamp. Output: the registration request.
pub const REGISTRATION_INPUT_LEN: usize = SECRET_KEY_LEN + HID_LEN + TIMESTAMP_LEN;
/// `reading` input: secret key, HID, timestamp, encoded usage report, MDMS public key, entropy.
/// Output: the reading transaction.
pub const READING_INPUT_LEN: usize = SECRET_KEY_LEN
    + HID_LEN
    + TIMESTAMP_LEN
    + UsageReport::ENCODED_LEN
    + PUBLIC_KEY_LEN
    + ENTROPY_LEN;
/// `rotation` input: current secret key, entropy for the new key, HID, timestamp. Output: the new
/// secret key, then the key-rotation request.
pub const ROTATION_INPUT_LEN: usize = SECRET_KEY_LEN + ENTROPY_LEN + HID_LEN + TIMESTAMP_LEN;

const _: () = assert!(READING_INPUT_LEN <= IO_LEN);
const _: () = assert!(ROTATION_INPUT_LEN <= IO_LEN);
const _: () = assert!(UsageReport::ENCODED_LEN + Transaction::OVERHEAD <= IO_LEN);
const _: () = assert!(SECRET_KEY_LEN + KeyRotationRequest::ENCODED_LEN <= IO_LEN);

/// Why an operation produced nothing. The wasm exports return `-(code)`; codes are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
#[non_exhaustive]
pub enum Status {
    /// The entropy gave no key (never in practice: HKDF retries).
    Entropy = 1,
    /// The secret key bytes are not a valid secp256k1 scalar.
    SecretKey = 2,
    /// The MDMS public key is not a point on the curve.
    MdmsKey = 3,
    /// The usage report does not decode.
    Report = 4,
    /// Signing failed.
    Build = 5,
    /// The head-end's SessionResponse does not decode (length, kind, version, point, signature
    /// encoding). The handshake still waits for a response.
    Response = 6,
    /// The SessionResponse's MAC or signature does not verify under the head-end's registered
    /// key: not the head-end, or altered. The handshake is over; start again.
    Authentication = 7,
    /// The SessionResponse names another head-end than the one the handshake was started with.
    /// The handshake is over; start again.
    UnexpectedHeadEnd = 8,
    /// The head-end public key given to `session_start` is not a point on the curve.
    HeadEndKey = 9,
    /// The operation does not fit the session's state: `session_finish` without a handshake
    /// waiting, `session_seal`/`session_open` without an established session.
    SessionState = 10,
    /// A record operation's lengths do not fit the I/O buffer, or the plaintext is longer than
    /// [`MAX_SEAL_PLAINTEXT`].
    RecordTooLong = 11,
    /// The record does not open: malformed, altered, from another session or direction, or
    /// another associated data. Deliberately says nothing more. The session stays up.
    Record = 12,
    /// The record's sequence number is not above the last one opened (a replay or reordering).
    /// The session stays up.
    Replayed = 13,
    /// This direction's sequence numbers are used up: start a new session.
    SequenceExhausted = 14,
}

impl Status {
    /// The status for a negative return value of an export, if it is one.
    pub const fn from_return(value: i32) -> Option<Status> {
        match value {
            -1 => Some(Status::Entropy),
            -2 => Some(Status::SecretKey),
            -3 => Some(Status::MdmsKey),
            -4 => Some(Status::Report),
            -5 => Some(Status::Build),
            -6 => Some(Status::Response),
            -7 => Some(Status::Authentication),
            -8 => Some(Status::UnexpectedHeadEnd),
            -9 => Some(Status::HeadEndKey),
            -10 => Some(Status::SessionState),
            -11 => Some(Status::RecordTooLong),
            -12 => Some(Status::Record),
            -13 => Some(Status::Replayed),
            -14 => Some(Status::SequenceExhausted),
            _ => None,
        }
    }

    /// The value an export returns for this status.
    pub const fn to_return(self) -> i32 {
        -(self as i32)
    }
}

/// Splits fixed-size fields off the front of the input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        out
    }

    fn secret_key(&mut self) -> Result<MeterSecretKey, Status> {
        MeterSecretKey::from_bytes(&self.take::<SECRET_KEY_LEN>()).map_err(|_| Status::SecretKey)
    }

    fn hid(&mut self) -> Hid {
        Hid::from_bytes(self.take::<HID_LEN>())
    }

    fn timestamp(&mut self) -> Timestamp {
        Timestamp::from_bytes(self.take::<TIMESTAMP_LEN>())
    }
}

/// Copies `parts` to the front of `io`; returns the total length.
fn emit(io: &mut [u8; IO_LEN], parts: &[&[u8]]) -> usize {
    let mut at = 0;
    for part in parts {
        io[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    at
}

/// A new meter key from caller entropy.
pub fn keygen(io: &mut [u8; IO_LEN]) -> Result<usize, Status> {
    let key = MeterSecretKey::from_entropy(&io[..KEYGEN_INPUT_LEN]).map_err(|_| Status::Entropy)?;
    let public = key.public_key().to_bytes();
    Ok(emit(io, &[&key.to_bytes(), &public]))
}

/// The registration request (proof of possession) of a meter key.
pub fn registration(io: &mut [u8; IO_LEN]) -> Result<usize, Status> {
    let mut input = Input(&io[..REGISTRATION_INPUT_LEN]);
    let key = input.secret_key()?;
    let hid = input.hid();
    let timestamp = input.timestamp();
    let request = RegistrationRequest::build(&key, hid, timestamp).map_err(|_| Status::Build)?;
    Ok(emit(io, &[&request.encode()]))
}

/// One reading: the usage report encrypted to the MDMS and signed.
pub fn reading(io: &mut [u8; IO_LEN]) -> Result<usize, Status> {
    let mut input = Input(&io[..READING_INPUT_LEN]);
    let key = input.secret_key()?;
    let hid = input.hid();
    let timestamp = input.timestamp();
    let report = UsageReport::decode(&input.take::<{ UsageReport::ENCODED_LEN }>())
        .map_err(|_| Status::Report)?;
    let mdms = MdmsPublicKey::from_sec1_bytes(&input.take::<PUBLIC_KEY_LEN>())
        .map_err(|_| Status::MdmsKey)?;
    let entropy = input.take::<ENTROPY_LEN>();
    let reading = Transaction::build_from_entropy(&entropy, &key, hid, timestamp, &report, &mdms)
        .map_err(|_| Status::Build)?;
    Ok(emit(io, &[&reading.encode()]))
}

/// A key rotation: a new key from caller entropy, authorised by the current one.
pub fn rotation(io: &mut [u8; IO_LEN]) -> Result<usize, Status> {
    let mut input = Input(&io[..ROTATION_INPUT_LEN]);
    let current = input.secret_key()?;
    let new =
        MeterSecretKey::from_entropy(&input.take::<ENTROPY_LEN>()).map_err(|_| Status::Entropy)?;
    let hid = input.hid();
    let timestamp = input.timestamp();
    let request =
        KeyRotationRequest::build(&current, &new, hid, timestamp).map_err(|_| Status::Build)?;
    Ok(emit(io, &[&new.to_bytes(), &request.encode()]))
}

#[cfg(test)]
mod tests {
    // Test code: a failing unwrap is a failing test.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use bcami_sdk::{IntervalLength, MdmsSecretKey, QualityFlags, WattHours};

    fn io(parts: &[&[u8]]) -> [u8; IO_LEN] {
        let mut io = [0u8; IO_LEN];
        emit(&mut io, parts);
        io
    }

    #[test]
    fn a_reading_through_the_buffer_is_the_sdks_reading() {
        let key = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
        let mdms = MdmsSecretKey::from_entropy(&[2; 32]).unwrap().public_key();
        let hid = Hid::from_meter_id("SM-1");
        let t = Timestamp::from_unix_millis(1_700_000_000_000);
        let report = UsageReport {
            interval_start: t,
            interval_length: IntervalLength::HALF_HOUR,
            energy: WattHours(7),
            cumulative_register: WattHours(70),
            quality: QualityFlags::NONE,
        };
        let mut buffer = io(&[
            &key.to_bytes(),
            hid.as_bytes(),
            &t.to_bytes(),
            &report.encode(),
            &mdms.to_bytes(),
            &[3; 32],
        ]);
        let len = reading(&mut buffer).unwrap();
        let native = Transaction::build_from_entropy(&[3; 32], &key, hid, t, &report, &mdms)
            .unwrap()
            .encode();
        assert_eq!(&buffer[..len], &native[..]);
    }

    #[test]
    fn statuses_round_trip_and_nothing_else_is_a_status() {
        for status in [
            Status::Entropy,
            Status::SecretKey,
            Status::MdmsKey,
            Status::Report,
            Status::Build,
            Status::Response,
            Status::Authentication,
            Status::UnexpectedHeadEnd,
            Status::HeadEndKey,
            Status::SessionState,
            Status::RecordTooLong,
            Status::Record,
            Status::Replayed,
            Status::SequenceExhausted,
        ] {
            assert!(status.to_return() < 0);
            assert_eq!(Status::from_return(status.to_return()), Some(status));
        }
        assert_eq!(Status::from_return(0), None);
        assert_eq!(Status::from_return(-15), None);
        assert_eq!(Status::from_return(188), None);
    }

    #[test]
    fn a_zero_secret_key_is_refused() {
        let mut buffer = io(&[&[0; 32], &[0; 32], &[0; 8]]);
        assert_eq!(registration(&mut buffer), Err(Status::SecretKey));
    }
}
