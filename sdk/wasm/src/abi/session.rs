//! The meter's side of the head-end session (`bcami_sdk::session`): start the handshake, finish
//! it with the head-end's response, then seal and open records.
//!
//! The handshake state and the established session live in the module, in one [`MeterSession`]
//! (the wasm module keeps one in static memory: one session per instance, as a meter has one
//! head-end). The ephemeral secret and the session keys never cross the ABI; the host passes the
//! meter's secret key in, as for the other operations.

pub use bcami_sdk::session::Session;
use bcami_sdk::session::{
    HeadEndIdentity, MeterHandshake, SessionConfirm, SessionInit, SessionResponse,
};
use bcami_sdk::{HandshakeError, HeadEndPublicKey, SessionError};

use super::{
    ENTROPY_LEN, HID_LEN, IO_LEN, Input, PUBLIC_KEY_LEN, SECRET_KEY_LEN, Status, TIMESTAMP_LEN,
    emit,
};

/// `session_start` input: meter secret key, meter HID, head-end id, head-end public key,
/// timestamp, entropy. Output: the `SessionInit` to send.
pub const SESSION_START_INPUT_LEN: usize =
    SECRET_KEY_LEN + HID_LEN + HID_LEN + PUBLIC_KEY_LEN + TIMESTAMP_LEN + ENTROPY_LEN;
/// `session_finish` input: meter secret key, the head-end's `SessionResponse`. Output: the
/// `SessionConfirm` to send, then the session id (32 bytes).
pub const SESSION_FINISH_INPUT_LEN: usize = SECRET_KEY_LEN + SessionResponse::ENCODED_LEN;
/// `session_finish` output length.
pub const SESSION_FINISH_OUTPUT_LEN: usize = SessionConfirm::ENCODED_LEN + SESSION_ID_LEN;
/// A session id: the hash of the whole handshake transcript.
pub const SESSION_ID_LEN: usize = 32;
/// `session_seal` / `session_open` input header: the associated data's length, then the body's
/// (plaintext or sealed record), each u16 big-endian; the associated data follows at
/// [`RECORD_LENGTHS_LEN`], the body right after it.
pub const RECORD_LENGTHS_LEN: usize = 4;
/// The longest plaintext `session_seal` takes: its sealed record must fit the buffer.
pub const MAX_SEAL_PLAINTEXT: usize = IO_LEN - Session::OVERHEAD;

const _: () = assert!(SESSION_START_INPUT_LEN <= IO_LEN);
const _: () = assert!(SESSION_FINISH_INPUT_LEN <= IO_LEN);
const _: () = assert!(SESSION_FINISH_OUTPUT_LEN <= IO_LEN);
const _: () = assert!(SessionInit::ENCODED_LEN <= IO_LEN);
// A signed reading (a `Transaction`) and the head-end connection's associated data fit one record.
const _: () = assert!(
    RECORD_LENGTHS_LEN
        + 32
        + bcami_sdk::UsageReport::ENCODED_LEN
        + bcami_sdk::Transaction::OVERHEAD
        + Session::OVERHEAD
        <= IO_LEN
);

/// Where the meter is in its session with the head-end.
// Not boxed: the module's heap is reset before every operation, so the state must be a plain
// value in static memory; its size is the largest variant's either way.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Default)]
pub enum MeterSession {
    /// No handshake and no session (at start, after `session_end`, after a failed finish).
    #[default]
    Idle,
    /// `SessionInit` sent, waiting for the head-end's response.
    AwaitingResponse(MeterHandshake),
    /// The session is up.
    Established(Session),
}

impl MeterSession {
    /// No session.
    pub const fn new() -> MeterSession {
        MeterSession::Idle
    }
}

/// Starts a handshake (`MeterHandshake::start_from_entropy`); abandons any handshake or session
/// this meter had.
pub fn start(io: &mut [u8; IO_LEN], state: &mut MeterSession) -> Result<usize, Status> {
    let mut input = Input(&io[..SESSION_START_INPUT_LEN]);
    let key = input.secret_key()?;
    let hid = input.hid();
    let head_end = HeadEndIdentity {
        id: input.hid(),
        public_key: HeadEndPublicKey::from_sec1_bytes(&input.take::<PUBLIC_KEY_LEN>())
            .map_err(|_| Status::HeadEndKey)?,
    };
    let now = input.timestamp();
    let entropy = input.take::<ENTROPY_LEN>();
    *state = MeterSession::Idle;
    let (handshake, init) = MeterHandshake::start_from_entropy(&entropy, &key, hid, head_end, now)
        .map_err(handshake_status)?;
    *state = MeterSession::AwaitingResponse(handshake);
    Ok(emit(io, &[&init.encode()]))
}

/// Checks the head-end's response and confirms (`MeterHandshake::finish`). The handshake is used
/// up either way, as in the SDK: after a refused response the meter starts again.
pub fn finish(io: &mut [u8; IO_LEN], state: &mut MeterSession) -> Result<usize, Status> {
    let MeterSession::AwaitingResponse(_) = state else {
        return Err(Status::SessionState);
    };
    let mut input = Input(&io[..SESSION_FINISH_INPUT_LEN]);
    let key = input.secret_key()?;
    let response = SessionResponse::decode(&input.take::<{ SessionResponse::ENCODED_LEN }>())
        .map_err(|_| Status::Response)?;
    let MeterSession::AwaitingResponse(handshake) = core::mem::take(state) else {
        return Err(Status::SessionState);
    };
    let (session, confirm) = handshake
        .finish(&key, &response)
        .map_err(handshake_status)?;
    let id = *session.id();
    *state = MeterSession::Established(session);
    Ok(emit(io, &[&confirm.encode(), &id]))
}

/// Seals a record for the head-end: input `aad length, plaintext length, aad, plaintext`.
pub fn seal(io: &mut [u8; IO_LEN], state: &mut MeterSession) -> Result<usize, Status> {
    let session = established(state)?;
    let (aad, plaintext) = record_input(io)?;
    if plaintext.len() > MAX_SEAL_PLAINTEXT {
        return Err(Status::RecordTooLong);
    }
    let sealed = session.seal(aad, plaintext).map_err(session_status)?;
    Ok(emit(io, &[&sealed]))
}

/// Opens a record from the head-end: input `aad length, record length, aad, record`; output the
/// plaintext.
pub fn open(io: &mut [u8; IO_LEN], state: &mut MeterSession) -> Result<usize, Status> {
    let session = established(state)?;
    let (aad, sealed) = record_input(io)?;
    let plaintext = session.open(aad, sealed).map_err(session_status)?;
    Ok(emit(io, &[&plaintext]))
}

/// Ends the session or handshake (its keys are dropped). Output: nothing.
pub fn end(_io: &mut [u8; IO_LEN], state: &mut MeterSession) -> Result<usize, Status> {
    *state = MeterSession::Idle;
    Ok(0)
}

fn established(state: &mut MeterSession) -> Result<&mut Session, Status> {
    match state {
        MeterSession::Established(session) => Ok(session),
        _ => Err(Status::SessionState),
    }
}

/// The associated data and the body of a record operation, after checking that the lengths the
/// host wrote fit the buffer.
fn record_input(io: &[u8; IO_LEN]) -> Result<(&[u8], &[u8]), Status> {
    let aad_len = usize::from(u16::from_be_bytes([io[0], io[1]]));
    let body_len = usize::from(u16::from_be_bytes([io[2], io[3]]));
    // Both are at most 65,535, so the sum cannot overflow.
    if RECORD_LENGTHS_LEN + aad_len + body_len > IO_LEN {
        return Err(Status::RecordTooLong);
    }
    let (aad, rest) = io[RECORD_LENGTHS_LEN..].split_at(aad_len);
    Ok((aad, &rest[..body_len]))
}

fn handshake_status(error: HandshakeError) -> Status {
    match error {
        HandshakeError::Authentication => Status::Authentication,
        HandshakeError::UnexpectedHeadEnd => Status::UnexpectedHeadEnd,
        HandshakeError::Key(_) => Status::Entropy,
        // Signing; the others are the head-end's refusals, which a meter never returns.
        _ => Status::Build,
    }
}

fn session_status(error: SessionError) -> Status {
    match error {
        SessionError::Replayed { .. } => Status::Replayed,
        SessionError::SequenceExhausted => Status::SequenceExhausted,
        // A malformed record or one that fails authentication: deliberately one status.
        _ => Status::Record,
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failing unwrap is a failing test.
    #![allow(clippy::unwrap_used)]

    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;

    use bcami_sdk::session::{HeadEnd, HeadEndPolicy, MeterRecord, MeterStatus};
    use bcami_sdk::{HeadEndSecretKey, Hid, MeterSecretKey, Timestamp};

    use super::*;

    /// A deterministic generator for the head-end's side (splitmix64).
    struct Rng(u64);
    impl bcami_sdk::rand_core::RngCore for Rng {
        fn next_u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(8) {
                chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), bcami_sdk::rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl bcami_sdk::rand_core::CryptoRng for Rng {}

    struct Fixture {
        key: MeterSecretKey,
        hid: Hid,
        head_end: HeadEnd,
        directory: BTreeMap<Hid, MeterRecord>,
        now: Timestamp,
    }

    fn fixture() -> Fixture {
        let key = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
        let hid = Hid::from_meter_id("SM-1");
        let mut directory = BTreeMap::new();
        directory.insert(
            hid,
            MeterRecord {
                public_key: key.public_key(),
                key_version: 1,
                status: MeterStatus::Active,
            },
        );
        Fixture {
            key,
            hid,
            head_end: HeadEnd::new(
                Hid::from_meter_id("AHE-1"),
                HeadEndSecretKey::from_entropy(&[2; 32]).unwrap(),
                HeadEndPolicy::default(),
            ),
            directory,
            now: Timestamp::from_unix_millis(1_700_000_000_000),
        }
    }

    fn buffer(parts: &[&[u8]]) -> [u8; IO_LEN] {
        let mut io = [0u8; IO_LEN];
        emit(&mut io, parts);
        io
    }

    fn start_input(f: &Fixture) -> [u8; IO_LEN] {
        let identity = f.head_end.identity();
        buffer(&[
            &f.key.to_bytes(),
            f.hid.as_bytes(),
            identity.id.as_bytes(),
            &identity.public_key.to_bytes(),
            &f.now.to_bytes(),
            &[3; 32],
        ])
    }

    fn record_input(aad: &[u8], body: &[u8]) -> [u8; IO_LEN] {
        let aad_len = u16::try_from(aad.len()).unwrap().to_be_bytes();
        let body_len = u16::try_from(body.len()).unwrap().to_be_bytes();
        buffer(&[&aad_len, &body_len, aad, body])
    }

    #[test]
    fn a_handshake_through_the_buffer_is_the_sdks_and_records_flow_both_ways() {
        let f = fixture();
        let mut state = MeterSession::new();
        let mut io = start_input(&f);
        let len = start(&mut io, &mut state).unwrap();
        let (native, native_init) = MeterHandshake::start_from_entropy(
            &[3; 32],
            &f.key,
            f.hid,
            f.head_end.identity(),
            f.now,
        )
        .unwrap();
        assert_eq!(&io[..len], &native_init.encode()[..]);

        let init = SessionInit::decode(&io[..len]).unwrap();
        let (pending, response) = f
            .head_end
            .respond(&mut Rng(7), &init, &f.directory, f.now)
            .unwrap();
        let mut io = buffer(&[&f.key.to_bytes(), &response.encode()]);
        let len = finish(&mut io, &mut state).unwrap();
        assert_eq!(len, SESSION_FINISH_OUTPUT_LEN);
        let (mut native_session, native_confirm) = native.finish(&f.key, &response).unwrap();
        assert_eq!(
            &io[..SessionConfirm::ENCODED_LEN],
            &native_confirm.encode()[..]
        );
        assert_eq!(&io[SessionConfirm::ENCODED_LEN..len], native_session.id());
        let confirm = SessionConfirm::decode(&io[..SessionConfirm::ENCODED_LEN]).unwrap();
        let mut head_end = pending.finish(&confirm, &f.directory).unwrap();

        let mut io = record_input(b"aad", b"reading 1");
        let len = seal(&mut io, &mut state).unwrap();
        let sealed = io[..len].to_vec();
        assert_eq!(sealed, native_session.seal(b"aad", b"reading 1").unwrap());
        assert_eq!(head_end.open(b"aad", &sealed).unwrap(), b"reading 1");

        let command = head_end.seal(b"aad", b"command").unwrap();
        let mut io = record_input(b"aad", &command);
        let len = open(&mut io, &mut state).unwrap();
        assert_eq!(&io[..len], b"command");
        // The same record again is a replay; the session stays up.
        let mut io = record_input(b"aad", &command);
        assert_eq!(open(&mut io, &mut state), Err(Status::Replayed));
        let mut io = record_input(b"aad", b"");
        assert!(seal(&mut io, &mut state).is_ok());
    }

    #[test]
    fn a_tampered_response_ends_the_handshake_and_a_bad_record_does_not_open() {
        let f = fixture();
        let mut state = MeterSession::new();
        let mut io = start_input(&f);
        let len = start(&mut io, &mut state).unwrap();
        let init = SessionInit::decode(&io[..len]).unwrap();
        let (_, response) = f
            .head_end
            .respond(&mut Rng(7), &init, &f.directory, f.now)
            .unwrap();
        let mut tampered = response.encode();
        // The last byte of the MAC.
        *tampered.last_mut().unwrap() ^= 1;
        // A response that does not decode leaves the handshake waiting.
        let mut io = buffer(&[&f.key.to_bytes(), &[0; SessionResponse::ENCODED_LEN]]);
        assert_eq!(finish(&mut io, &mut state), Err(Status::Response));
        let mut io = buffer(&[&f.key.to_bytes(), &tampered]);
        assert_eq!(finish(&mut io, &mut state), Err(Status::Authentication));
        // The handshake is used up: the genuine response now finds no handshake.
        let mut io = buffer(&[&f.key.to_bytes(), &response.encode()]);
        assert_eq!(finish(&mut io, &mut state), Err(Status::SessionState));
        assert!(matches!(state, MeterSession::Idle));

        // Again, to an established session; a record that was altered does not open.
        let mut io = start_input(&f);
        let len = start(&mut io, &mut state).unwrap();
        let init = SessionInit::decode(&io[..len]).unwrap();
        let (pending, response) = f
            .head_end
            .respond(&mut Rng(8), &init, &f.directory, f.now)
            .unwrap();
        let mut io = buffer(&[&f.key.to_bytes(), &response.encode()]);
        let len = finish(&mut io, &mut state).unwrap();
        let confirm = SessionConfirm::decode(&io[..len - SESSION_ID_LEN]).unwrap();
        let mut head_end = pending.finish(&confirm, &f.directory).unwrap();
        let mut command = head_end.seal(b"", b"command").unwrap();
        let last = command.len() - 1;
        command[last] ^= 1;
        let mut io = record_input(b"", &command);
        assert_eq!(open(&mut io, &mut state), Err(Status::Record));
        let mut io = record_input(b"other aad", &head_end.seal(b"", b"x").unwrap());
        assert_eq!(open(&mut io, &mut state), Err(Status::Record));
        let mut io = record_input(b"", &[0x08]);
        assert_eq!(open(&mut io, &mut state), Err(Status::Record));
    }

    #[test]
    fn calls_in_the_wrong_state_and_lengths_over_the_buffer_are_refused() {
        let f = fixture();
        let mut state = MeterSession::new();
        let mut io = record_input(b"", b"early");
        assert_eq!(seal(&mut io, &mut state), Err(Status::SessionState));
        assert_eq!(open(&mut io, &mut state), Err(Status::SessionState));
        let mut io = buffer(&[&f.key.to_bytes()]);
        assert_eq!(finish(&mut io, &mut state), Err(Status::SessionState));

        let mut io = start_input(&f);
        start(&mut io, &mut state).unwrap();
        let mut io = record_input(b"", b"before the response");
        assert_eq!(seal(&mut io, &mut state), Err(Status::SessionState));
        let mut io = buffer(&[]);
        assert_eq!(end(&mut io, &mut state), Ok(0));
        assert!(matches!(state, MeterSession::Idle));

        // A head-end key off the curve (x = 0) is refused before anything else changes.
        let mut io = start_input(&f);
        let at = SECRET_KEY_LEN + 2 * HID_LEN;
        io[at..at + PUBLIC_KEY_LEN].copy_from_slice(&{
            let mut point = [0u8; 33];
            point[0] = 0x02;
            point
        });
        assert_eq!(start(&mut io, &mut state), Err(Status::HeadEndKey));

        // Lengths: the header claims more than the buffer holds; a plaintext too long to seal.
        let mut state = established(&f);
        let mut io = buffer(&[&[0xff, 0xff, 0xff, 0xff]]);
        assert_eq!(seal(&mut io, &mut state), Err(Status::RecordTooLong));
        assert_eq!(open(&mut io, &mut state), Err(Status::RecordTooLong));
        let longest = Vec::from([7u8; MAX_SEAL_PLAINTEXT]);
        let mut io = record_input(b"", &longest);
        assert_eq!(seal(&mut io, &mut state), Ok(IO_LEN));
        let mut io = record_input(b"", &[7u8; MAX_SEAL_PLAINTEXT + 1]);
        assert_eq!(seal(&mut io, &mut state), Err(Status::RecordTooLong));
        let mut io = record_input(&[1; 10], &[7u8; IO_LEN - RECORD_LENGTHS_LEN - 10]);
        assert_eq!(open(&mut io, &mut state), Err(Status::Record));
    }

    fn established(f: &Fixture) -> MeterSession {
        let mut state = MeterSession::new();
        let mut io = start_input(f);
        let len = start(&mut io, &mut state).unwrap();
        let init = SessionInit::decode(&io[..len]).unwrap();
        let (_, response) = f
            .head_end
            .respond(&mut Rng(9), &init, &f.directory, f.now)
            .unwrap();
        let mut io = buffer(&[&f.key.to_bytes(), &response.encode()]);
        finish(&mut io, &mut state).unwrap();
        state
    }
}
