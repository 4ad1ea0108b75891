//! One connection's protocol state, on each side: a pure, synchronous state machine over whole
//! messages (frames already removed). The network shell feeds it what arrives and sends what it
//! returns; the RNG, the clock and the meter directory come in as arguments.

use bcami_sdk::rand_core::CryptoRngCore;
use bcami_sdk::session::{
    HeadEnd, HeadEndHandshake, HeadEndIdentity, MeterDirectory, MeterHandshake, MeterStatus,
    Session, SessionConfirm, SessionInit, SessionResponse,
};
use bcami_sdk::{DecodeError, HandshakeError, Hid, MeterSecretKey, SessionError, Timestamp};

/// Associated data of every sealed message on a head-end connection (not sent).
const AAD: &[u8] = b"BC-AMI/1 head-end connection\0";

/// Why a connection ends. Every error closes the connection: its state machine refuses
/// everything afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// A handshake message was malformed.
    #[error("malformed handshake message: {0}")]
    Decode(#[from] DecodeError),
    /// The handshake was refused (directory, clock or authentication).
    #[error("handshake refused: {0}")]
    Handshake(#[from] HandshakeError),
    /// A sealed message was malformed, replayed, reordered or altered.
    #[error("sealed message refused: {0}")]
    Session(#[from] SessionError),
    /// The meter's key was revoked or rotated on the ledger after the session was established.
    #[error("the meter's key is no longer the registered, active one")]
    KeyNoLongerValid,
    /// A sealed message was offered before the handshake finished.
    #[error("session not established yet")]
    NotEstablished,
    /// The connection already failed or finished.
    #[error("connection closed")]
    Closed,
}

/// What the head-end must do after a message from the meter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadEndEvent {
    /// Send this SessionResponse to the meter.
    Respond(Vec<u8>),
    /// The meter is authenticated: the session is up.
    Established {
        /// The meter.
        meter: Hid,
        /// The registered key version it authenticated with.
        key_version: u64,
    },
    /// An application message from the meter (opened).
    Message(Vec<u8>),
}

enum HeadEndState {
    AwaitingInit,
    AwaitingConfirm(Box<HeadEndHandshake>),
    Established(Box<Session>),
    Closed,
}

/// The head-end's side of one meter connection.
pub struct HeadEndConnection {
    state: HeadEndState,
}

impl Default for HeadEndConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for HeadEndConnection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match &self.state {
            HeadEndState::AwaitingInit => "awaiting init",
            HeadEndState::AwaitingConfirm(_) => "awaiting confirm",
            HeadEndState::Established(_) => "established",
            HeadEndState::Closed => "closed",
        };
        f.debug_struct("HeadEndConnection")
            .field("state", &state)
            .field("meter", &self.meter())
            .finish()
    }
}

/// The session is still backed by the same active key version in the directory.
fn still_valid<D: MeterDirectory + ?Sized>(session: &Session, directory: &D) -> bool {
    directory.meter(&session.meter()).is_some_and(|record| {
        record.status == MeterStatus::Active
            && Some(record.key_version) == session.meter_key_version()
    })
}

impl HeadEndConnection {
    /// A new connection, waiting for the meter's SessionInit.
    pub fn new() -> Self {
        HeadEndConnection {
            state: HeadEndState::AwaitingInit,
        }
    }

    /// The meter, once authenticated.
    pub fn meter(&self) -> Option<Hid> {
        match &self.state {
            HeadEndState::Established(session) => Some(session.meter()),
            _ => None,
        }
    }

    /// Handles one message from the meter at the head-end's time `now`.
    pub fn receive<R: CryptoRngCore + ?Sized, D: MeterDirectory + ?Sized>(
        &mut self,
        head_end: &HeadEnd,
        message: &[u8],
        rng: &mut R,
        directory: &D,
        now: Timestamp,
    ) -> Result<HeadEndEvent, ConnectionError> {
        let state = core::mem::replace(&mut self.state, HeadEndState::Closed);
        let (next, event) = match state {
            HeadEndState::AwaitingInit => {
                let init = SessionInit::decode(message)?;
                let (pending, response) = head_end.respond(rng, &init, directory, now)?;
                (
                    HeadEndState::AwaitingConfirm(Box::new(pending)),
                    HeadEndEvent::Respond(response.encode()),
                )
            }
            HeadEndState::AwaitingConfirm(pending) => {
                let confirm = SessionConfirm::decode(message)?;
                let session = pending.finish(&confirm, directory)?;
                let event = HeadEndEvent::Established {
                    meter: session.meter(),
                    key_version: session.meter_key_version().unwrap_or_default(),
                };
                (HeadEndState::Established(Box::new(session)), event)
            }
            HeadEndState::Established(mut session) => {
                if !still_valid(&session, directory) {
                    return Err(ConnectionError::KeyNoLongerValid);
                }
                let plaintext = session.open(AAD, message)?;
                (
                    HeadEndState::Established(session),
                    HeadEndEvent::Message(plaintext),
                )
            }
            HeadEndState::Closed => return Err(ConnectionError::Closed),
        };
        self.state = next;
        Ok(event)
    }

    /// Seals a command for the meter. Refused (and the connection closed) if the meter's key was
    /// revoked or rotated since the handshake.
    pub fn seal<D: MeterDirectory + ?Sized>(
        &mut self,
        plaintext: &[u8],
        directory: &D,
    ) -> Result<Vec<u8>, ConnectionError> {
        let HeadEndState::Established(session) = &mut self.state else {
            return Err(match self.state {
                HeadEndState::Closed => ConnectionError::Closed,
                _ => ConnectionError::NotEstablished,
            });
        };
        if !still_valid(session, directory) {
            self.state = HeadEndState::Closed;
            return Err(ConnectionError::KeyNoLongerValid);
        }
        match session.seal(AAD, plaintext) {
            Ok(sealed) => Ok(sealed),
            Err(error) => {
                self.state = HeadEndState::Closed;
                Err(error.into())
            }
        }
    }
}

/// What the meter must do after a message from the head-end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeterEvent {
    /// The head-end is authenticated: send this SessionConfirm; the session is up.
    Confirm(Vec<u8>),
    /// A command from the head-end (opened).
    Message(Vec<u8>),
}

enum MeterState {
    AwaitingResponse(Box<MeterHandshake>),
    Established(Box<Session>),
    Closed,
}

/// The meter's side of its connection to the head-end.
pub struct MeterConnection {
    state: MeterState,
}

impl core::fmt::Debug for MeterConnection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match &self.state {
            MeterState::AwaitingResponse(_) => "awaiting response",
            MeterState::Established(_) => "established",
            MeterState::Closed => "closed",
        };
        f.debug_struct("MeterConnection")
            .field("state", &state)
            .finish()
    }
}

impl MeterConnection {
    /// Starts the handshake; returns the connection and the SessionInit to send.
    pub fn start<R: CryptoRngCore + ?Sized>(
        rng: &mut R,
        hid: Hid,
        head_end: HeadEndIdentity,
        now: Timestamp,
    ) -> Result<(MeterConnection, Vec<u8>), ConnectionError> {
        let (handshake, init) = MeterHandshake::start(rng, hid, head_end, now)?;
        Ok((
            MeterConnection {
                state: MeterState::AwaitingResponse(Box::new(handshake)),
            },
            init.encode(),
        ))
    }

    /// Handles one message from the head-end.
    pub fn receive(
        &mut self,
        meter_key: &MeterSecretKey,
        message: &[u8],
    ) -> Result<MeterEvent, ConnectionError> {
        let state = core::mem::replace(&mut self.state, MeterState::Closed);
        let (next, event) = match state {
            MeterState::AwaitingResponse(handshake) => {
                let response = SessionResponse::decode(message)?;
                let (session, confirm) = handshake.finish(meter_key, &response)?;
                (
                    MeterState::Established(Box::new(session)),
                    MeterEvent::Confirm(confirm.encode()),
                )
            }
            MeterState::Established(mut session) => {
                let plaintext = session.open(AAD, message)?;
                (
                    MeterState::Established(session),
                    MeterEvent::Message(plaintext),
                )
            }
            MeterState::Closed => return Err(ConnectionError::Closed),
        };
        self.state = next;
        Ok(event)
    }

    /// Seals a message (a reading, an acknowledgement) for the head-end.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ConnectionError> {
        match &mut self.state {
            MeterState::Established(session) => Ok(session.seal(AAD, plaintext)?),
            MeterState::AwaitingResponse(_) => Err(ConnectionError::NotEstablished),
            MeterState::Closed => Err(ConnectionError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bcami_sdk::HeadEndSecretKey;
    use bcami_sdk::session::{HeadEndPolicy, MeterRecord};

    use super::*;

    /// splitmix64: deterministic test randomness.
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

    #[test]
    fn states_advance_once_and_a_failure_closes_for_good() {
        let key = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
        let hid = Hid::from_meter_id("SM-1");
        let head_end = HeadEnd::new(
            Hid::from_meter_id("AHE"),
            HeadEndSecretKey::from_entropy(&[2; 32]).unwrap(),
            HeadEndPolicy::default(),
        );
        let directory = BTreeMap::from([(
            hid,
            MeterRecord {
                public_key: key.public_key(),
                key_version: 7,
                status: MeterStatus::Active,
            },
        )]);
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let mut rng = Rng(1);

        let (mut meter, init) =
            MeterConnection::start(&mut rng, hid, head_end.identity(), now).unwrap();
        assert_eq!(meter.seal(b"early"), Err(ConnectionError::NotEstablished));
        let mut server = HeadEndConnection::new();
        assert_eq!(
            server.seal(b"early", &directory),
            Err(ConnectionError::NotEstablished)
        );
        let HeadEndEvent::Respond(response) = server
            .receive(&head_end, &init, &mut rng, &directory, now)
            .unwrap()
        else {
            panic!("expected a response");
        };
        let MeterEvent::Confirm(confirm) = meter.receive(&key, &response).unwrap() else {
            panic!("expected a confirmation");
        };
        assert_eq!(
            server
                .receive(&head_end, &confirm, &mut rng, &directory, now)
                .unwrap(),
            HeadEndEvent::Established {
                meter: hid,
                key_version: 7
            }
        );
        let up = meter.seal(b"reading").unwrap();
        assert_eq!(
            server
                .receive(&head_end, &up, &mut rng, &directory, now)
                .unwrap(),
            HeadEndEvent::Message(b"reading".to_vec())
        );
        // The same message again: refused, and the connection is closed for good.
        assert!(matches!(
            server.receive(&head_end, &up, &mut rng, &directory, now),
            Err(ConnectionError::Session(SessionError::Replayed { .. }))
        ));
        let next = meter.seal(b"next").unwrap();
        assert_eq!(
            server.receive(&head_end, &next, &mut rng, &directory, now),
            Err(ConnectionError::Closed)
        );
        // A SessionInit where a SessionConfirm is due is malformed for that state.
        let mut fresh = HeadEndConnection::new();
        fresh
            .receive(&head_end, &init, &mut rng, &directory, now)
            .unwrap();
        assert!(matches!(
            fresh.receive(&head_end, &init, &mut rng, &directory, now),
            Err(ConnectionError::Decode(DecodeError::UnexpectedKind { .. }))
        ));
    }
}
