//! The peer ↔ chaincode protocol as a sans-I/O state machine: [`Session::receive`] takes a
//! message from the peer and returns what to do; [`Session::request`] and [`Session::complete`]
//! turn a transaction's needs into messages for the peer. No I/O, no clock, no threads.
//!
//! Phases: `Registering` (REGISTER sent) → `Established` (REGISTERED) → `Ready` (READY, with the
//! peer's capabilities). KEEPALIVE is echoed in every phase; any other message that does not fit
//! the phase is fatal, as in Fabric.

use std::collections::HashMap;
use std::fmt;

use fabric_protos::protos::chaincode_message::Type;
use fabric_protos::protos::{
    self, ChaincodeAdditionalParams, ChaincodeEvent, ChaincodeId, ChaincodeMessage,
};
use prost::Message;

/// The Go shim's floor for advertised batch sizes.
const MIN_BATCH: u32 = 100;

/// Identifies one transaction on a stream. The same txid may appear on different channels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey {
    /// The channel id.
    pub channel: String,
    /// The transaction id.
    pub txid: String,
}

impl fmt::Display for TxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.channel, self.txid)
    }
}

/// What the peer advertised in READY (Fabric 3.1+); both `None` for an empty READY (2.5/3.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// WRITE_BATCH_STATE allowed, with at most this many records per message.
    pub write_batch: Option<u32>,
    /// GET_STATE_MULTIPLE allowed, with at most this many keys per message.
    pub get_multiple: Option<u32>,
}

impl Capabilities {
    fn from_ready_payload(payload: &[u8]) -> Result<Self, ProtocolError> {
        if payload.is_empty() {
            return Ok(Self::default());
        }
        let p =
            ChaincodeAdditionalParams::decode(payload).map_err(|e| ProtocolError::Malformed {
                what: "READY payload",
                detail: e.to_string(),
            })?;
        Ok(Self {
            write_batch: p
                .use_write_batch
                .then_some(p.max_size_write_batch.max(MIN_BATCH)),
            get_multiple: p
                .use_get_multiple_keys
                .then_some(p.max_size_get_multiple_keys.max(MIN_BATCH)),
        })
    }
}

/// The protocol phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// REGISTER sent, waiting for REGISTERED.
    Registering,
    /// REGISTERED received, waiting for READY.
    Established,
    /// READY received: transactions may run.
    Ready(Capabilities),
}

/// A protocol failure. [`Session::receive`] errors are fatal for the stream; request/complete
/// errors concern one transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A message type the current phase does not allow.
    #[error("unexpected {message} in phase {phase:?}")]
    Unexpected {
        /// The phase we were in.
        phase: Phase,
        /// The message type's name.
        message: &'static str,
    },
    /// A message type number that Fabric does not define.
    #[error("unknown message type {0}")]
    UnknownType(i32),
    /// The peer refused the registration.
    #[error("the peer refused registration: {0}")]
    Rejected(String),
    /// A payload that does not decode.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What failed to decode.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// A request or completion before READY.
    #[error("the stream is not ready")]
    NotReady,
    /// A request or completion for a transaction the peer did not start (or already completed).
    #[error("no active transaction {0}")]
    UnknownTransaction(TxKey),
    /// A second request while one is outstanding for the same transaction.
    #[error("transaction {0} already has a request outstanding")]
    RequestOutstanding(TxKey),
    /// A request kind the peer did not advertise (WRITE_BATCH_STATE / GET_STATE_MULTIPLE).
    #[error("the peer did not advertise {0}")]
    NotAdvertised(&'static str),
}

/// Whether INIT or TRANSACTION started the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationKind {
    /// `INIT` (the definition requires init and `is_init` was set).
    Init,
    /// `TRANSACTION`.
    Transaction,
}

/// A transaction the peer asked us to run (still wire-level; decoded by the worker).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Its key.
    pub key: TxKey,
    /// INIT or TRANSACTION.
    pub kind: InvocationKind,
    /// A serialized `ChaincodeInput`.
    pub input: Vec<u8>,
    /// The client's signed proposal.
    pub proposal: Option<protos::SignedProposal>,
}

/// The peer's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// RESPONSE with its payload.
    Response(Vec<u8>),
    /// ERROR with its text.
    Error(String),
}

/// What the caller must do after [`Session::receive`].
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this message to the peer.
    Send(ChaincodeMessage),
    /// The handshake finished; these are the peer's capabilities.
    Ready(Capabilities),
    /// Run this transaction.
    Start(Invocation),
    /// Hand this reply to the transaction waiting on `key`.
    Deliver {
        /// Which transaction.
        key: TxKey,
        /// The reply.
        reply: Reply,
    },
    /// A RESPONSE/ERROR nobody waits for (e.g. a transaction the shim already finished); log it.
    Stray {
        /// Whose it claimed to be.
        key: TxKey,
        /// RESPONSE or ERROR.
        message: &'static str,
    },
}

/// A request a transaction makes of the peer (domain form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// GET_STATE.
    GetState {
        /// Key.
        key: String,
    },
    /// GET_STATE_MULTIPLE (only if advertised).
    GetStateMultiple {
        /// Keys.
        keys: Vec<String>,
    },
    /// PUT_STATE.
    PutState {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
    },
    /// DEL_STATE.
    DelState {
        /// Key.
        key: String,
    },
    /// WRITE_BATCH_STATE (only if advertised): `None` values are deletes.
    WriteBatch {
        /// The records.
        records: Vec<(String, Option<Vec<u8>>)>,
    },
    /// GET_STATE_BY_RANGE, optionally paginated.
    Range {
        /// Inclusive start.
        start: String,
        /// Exclusive end (empty = unbounded).
        end: String,
        /// `(page_size, bookmark)` for a paginated query.
        page: Option<(u32, String)>,
    },
    /// GET_HISTORY_FOR_KEY.
    History {
        /// Key.
        key: String,
    },
    /// QUERY_STATE_NEXT.
    QueryNext {
        /// Iterator id.
        id: String,
    },
    /// QUERY_STATE_CLOSE.
    QueryClose {
        /// Iterator id.
        id: String,
    },
}

impl Request {
    /// The Fabric message type name, for errors.
    pub fn name(&self) -> &'static str {
        self.message_type().as_str_name()
    }

    fn message_type(&self) -> Type {
        match self {
            Self::GetState { .. } => Type::GetState,
            Self::GetStateMultiple { .. } => Type::GetStateMultiple,
            Self::PutState { .. } => Type::PutState,
            Self::DelState { .. } => Type::DelState,
            Self::WriteBatch { .. } => Type::WriteBatchState,
            Self::Range { .. } => Type::GetStateByRange,
            Self::History { .. } => Type::GetHistoryForKey,
            Self::QueryNext { .. } => Type::QueryStateNext,
            Self::QueryClose { .. } => Type::QueryStateClose,
        }
    }

    fn payload(self) -> Vec<u8> {
        match self {
            Self::GetState { key } => protos::GetState {
                key,
                collection: String::new(),
            }
            .encode_to_vec(),
            Self::GetStateMultiple { keys } => protos::GetStateMultiple {
                keys,
                collection: String::new(),
            }
            .encode_to_vec(),
            Self::PutState { key, value } => protos::PutState {
                key,
                value,
                collection: String::new(),
            }
            .encode_to_vec(),
            Self::DelState { key } => protos::DelState {
                key,
                collection: String::new(),
            }
            .encode_to_vec(),
            Self::WriteBatch { records } => protos::WriteBatchState {
                rec: records
                    .into_iter()
                    .map(|(key, value)| {
                        let r#type = if value.is_some() {
                            protos::write_record::Type::PutState
                        } else {
                            protos::write_record::Type::DelState
                        };
                        protos::WriteRecord {
                            key,
                            value: value.unwrap_or_default(),
                            r#type: r#type as i32,
                            ..Default::default()
                        }
                    })
                    .collect(),
            }
            .encode_to_vec(),
            Self::Range { start, end, page } => protos::GetStateByRange {
                start_key: start,
                end_key: end,
                collection: String::new(),
                metadata: page
                    .map(|(page_size, bookmark)| {
                        protos::QueryMetadata {
                            page_size: i32::try_from(page_size).unwrap_or(i32::MAX),
                            bookmark,
                        }
                        .encode_to_vec()
                    })
                    .unwrap_or_default(),
            }
            .encode_to_vec(),
            Self::History { key } => protos::GetHistoryForKey { key }.encode_to_vec(),
            Self::QueryNext { id } => protos::QueryStateNext { id }.encode_to_vec(),
            Self::QueryClose { id } => protos::QueryStateClose { id }.encode_to_vec(),
        }
    }
}

/// How a transaction ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// COMPLETED with a Response (status < 400 endorsable) and an optional event.
    Completed {
        /// Status (200 on success, the contract error's status otherwise).
        status: i32,
        /// Message (empty on success).
        message: String,
        /// Payload.
        payload: Vec<u8>,
        /// `(name, payload)` of the event.
        event: Option<(String, Vec<u8>)>,
    },
    /// ERROR with this text (the peer reports a 500).
    Failed(String),
}

#[derive(Debug, Default)]
struct Slot {
    outstanding: bool,
}

/// One stream's protocol state.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    active: HashMap<TxKey, Slot>,
}

fn message(r#type: Type, key: Option<&TxKey>, payload: Vec<u8>) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: r#type as i32,
        payload,
        txid: key.map(|k| k.txid.clone()).unwrap_or_default(),
        channel_id: key.map(|k| k.channel.clone()).unwrap_or_default(),
        ..Default::default()
    }
}

impl Session {
    /// Start a session for the package id `chaincode_id`; send the returned REGISTER first.
    pub fn new(chaincode_id: &str) -> (Self, ChaincodeMessage) {
        let register = message(
            Type::Register,
            None,
            ChaincodeId {
                name: chaincode_id.to_owned(),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        (
            Self {
                phase: Phase::Registering,
                active: HashMap::new(),
            },
            register,
        )
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// How many transactions are running.
    pub fn active_transactions(&self) -> usize {
        self.active.len()
    }

    /// Handle one message from the peer. An `Err` is fatal: send [`Session::fatal_message`] and
    /// close the stream.
    pub fn receive(&mut self, msg: ChaincodeMessage) -> Result<Vec<Action>, ProtocolError> {
        let ty = Type::try_from(msg.r#type).map_err(|_| ProtocolError::UnknownType(msg.r#type))?;
        if ty == Type::Keepalive {
            return Ok(vec![Action::Send(msg)]);
        }
        let unexpected = |phase| ProtocolError::Unexpected {
            phase,
            message: ty.as_str_name(),
        };
        match (self.phase, ty) {
            (Phase::Registering, Type::Registered) => {
                self.phase = Phase::Established;
                Ok(Vec::new())
            }
            (Phase::Registering | Phase::Established, Type::Error) => Err(ProtocolError::Rejected(
                String::from_utf8_lossy(&msg.payload).into_owned(),
            )),
            (Phase::Established, Type::Ready) => {
                let caps = Capabilities::from_ready_payload(&msg.payload)?;
                self.phase = Phase::Ready(caps);
                Ok(vec![Action::Ready(caps)])
            }
            (Phase::Ready(_), Type::Transaction | Type::Init) => {
                let key = TxKey {
                    channel: msg.channel_id,
                    txid: msg.txid,
                };
                if self.active.contains_key(&key) {
                    let text = format!("duplicate transaction {key}: it is already running");
                    return Ok(vec![Action::Send(message(
                        Type::Error,
                        Some(&key),
                        text.into_bytes(),
                    ))]);
                }
                self.active.insert(key.clone(), Slot::default());
                let kind = if ty == Type::Init {
                    InvocationKind::Init
                } else {
                    InvocationKind::Transaction
                };
                Ok(vec![Action::Start(Invocation {
                    key,
                    kind,
                    input: msg.payload,
                    proposal: msg.proposal,
                })])
            }
            (Phase::Ready(_), Type::Response | Type::Error) => {
                let key = TxKey {
                    channel: msg.channel_id,
                    txid: msg.txid,
                };
                match self.active.get_mut(&key) {
                    Some(slot) if slot.outstanding => {
                        slot.outstanding = false;
                        let reply = if ty == Type::Response {
                            Reply::Response(msg.payload)
                        } else {
                            Reply::Error(String::from_utf8_lossy(&msg.payload).into_owned())
                        };
                        Ok(vec![Action::Deliver { key, reply }])
                    }
                    _ => Ok(vec![Action::Stray {
                        key,
                        message: ty.as_str_name(),
                    }]),
                }
            }
            (phase, _) => Err(unexpected(phase)),
        }
    }

    /// Turn a transaction's request into a message, enforcing one outstanding request per
    /// transaction and the peer's advertised capabilities.
    pub fn request(
        &mut self,
        key: &TxKey,
        request: Request,
    ) -> Result<ChaincodeMessage, ProtocolError> {
        let Phase::Ready(caps) = self.phase else {
            return Err(ProtocolError::NotReady);
        };
        match &request {
            Request::WriteBatch { .. } if caps.write_batch.is_none() => {
                return Err(ProtocolError::NotAdvertised("WRITE_BATCH_STATE"));
            }
            Request::GetStateMultiple { .. } if caps.get_multiple.is_none() => {
                return Err(ProtocolError::NotAdvertised("GET_STATE_MULTIPLE"));
            }
            _ => {}
        }
        let slot = self
            .active
            .get_mut(key)
            .ok_or_else(|| ProtocolError::UnknownTransaction(key.clone()))?;
        if slot.outstanding {
            return Err(ProtocolError::RequestOutstanding(key.clone()));
        }
        slot.outstanding = true;
        let ty = request.message_type();
        Ok(message(ty, Some(key), request.payload()))
    }

    /// Finish a transaction: the returned COMPLETED/ERROR goes to the peer.
    pub fn complete(
        &mut self,
        key: &TxKey,
        completion: Completion,
    ) -> Result<ChaincodeMessage, ProtocolError> {
        if !matches!(self.phase, Phase::Ready(_)) {
            return Err(ProtocolError::NotReady);
        }
        self.active
            .remove(key)
            .ok_or_else(|| ProtocolError::UnknownTransaction(key.clone()))?;
        Ok(match completion {
            Completion::Completed {
                status,
                message: text,
                payload,
                event,
            } => {
                let mut msg = message(
                    Type::Completed,
                    Some(key),
                    protos::Response {
                        status,
                        message: text,
                        payload,
                    }
                    .encode_to_vec(),
                );
                msg.chaincode_event = event.map(|(event_name, payload)| ChaincodeEvent {
                    event_name,
                    payload,
                    ..Default::default()
                });
                msg
            }
            Completion::Failed(text) => message(Type::Error, Some(key), text.into_bytes()),
        })
    }

    /// The ERROR to send before closing the stream after a fatal error.
    pub fn fatal_message(error: &ProtocolError) -> ChaincodeMessage {
        message(Type::Error, None, error.to_string().into_bytes())
    }
}
