//! A peer simulator for tests and benchmarks: drives [`crate::serve_stream`] over in-process
//! channels exactly as a Fabric peer would (handshake, TRANSACTION with a signed proposal,
//! answers to state, range, history and batch requests, simulation semantics).
//!
//! It also checks the shim: a second request from a transaction whose previous request is still
//! unanswered is recorded in [`InMemoryPeer::violations`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use fabric_protos::protos::chaincode_message::Type;
use fabric_protos::protos::{self, ChaincodeMessage};
use fabric_protos::{common, msp, queryresult};
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::contract::Contract;
use crate::driver::{StreamError, serve_stream};

/// The result of one simulated transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxResult {
    /// COMPLETED: status, message, payload, event name and payload.
    Completed {
        /// Response status.
        status: i32,
        /// Response message.
        message: String,
        /// Response payload.
        payload: Vec<u8>,
        /// Event `(name, payload)`.
        event: Option<(String, Vec<u8>)>,
    },
    /// ERROR with its text.
    Error(String),
}

/// What a simulated transaction is.
#[derive(Debug, Clone)]
pub struct TxSpec {
    /// Channel.
    pub channel: String,
    /// Transaction id.
    pub txid: String,
    /// Function name and arguments.
    pub args: Vec<Vec<u8>>,
    /// The creator's MSP id.
    pub msp_id: String,
    /// The creator's id bytes (a PEM certificate, or anything for a non-X.509 creator).
    pub id_bytes: Vec<u8>,
    /// Transaction timestamp (seconds).
    pub seconds: i64,
    /// Transient map.
    pub transient: BTreeMap<String, Vec<u8>>,
}

impl TxSpec {
    /// A transaction on channel `ch` calling `function` with string args.
    pub fn new(txid: &str, function: &str, args: &[&str]) -> Self {
        let mut all = vec![function.as_bytes().to_vec()];
        all.extend(args.iter().map(|a| a.as_bytes().to_vec()));
        Self {
            channel: "ch".into(),
            txid: txid.into(),
            args: all,
            msp_id: "Org1MSP".into(),
            id_bytes: b"not a certificate".to_vec(),
            seconds: 1_700_000_000,
            transient: BTreeMap::new(),
        }
    }

    /// The TRANSACTION message a peer would send for it.
    pub fn message(&self) -> ChaincodeMessage {
        let creator = msp::SerializedIdentity {
            mspid: self.msp_id.clone(),
            id_bytes: self.id_bytes.clone(),
        };
        let channel_header = common::ChannelHeader {
            r#type: common::HeaderType::EndorserTransaction as i32,
            timestamp: Some(prost_types::Timestamp {
                seconds: self.seconds,
                nanos: 5,
            }),
            channel_id: self.channel.clone(),
            tx_id: self.txid.clone(),
            ..Default::default()
        };
        let header = common::Header {
            channel_header: channel_header.encode_to_vec(),
            signature_header: common::SignatureHeader {
                creator: creator.encode_to_vec(),
                nonce: vec![7; 24],
            }
            .encode_to_vec(),
        };
        let input = protos::ChaincodeInput {
            args: self.args.clone(),
            ..Default::default()
        };
        let payload = protos::ChaincodeProposalPayload {
            input: Vec::new(),
            transient_map: self.transient.clone().into_iter().collect(),
        };
        let proposal = protos::Proposal {
            header: header.encode_to_vec(),
            payload: payload.encode_to_vec(),
            extension: Vec::new(),
        };
        ChaincodeMessage {
            r#type: Type::Transaction as i32,
            payload: input.encode_to_vec(),
            txid: self.txid.clone(),
            channel_id: self.channel.clone(),
            proposal: Some(protos::SignedProposal {
                proposal_bytes: proposal.encode_to_vec(),
                signature: vec![1],
            }),
            ..Default::default()
        }
    }
}

/// The simulator failed (the shim misbehaved or hung up).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The shim closed the stream.
    #[error("the chaincode closed the stream")]
    Closed,
    /// The shim sent something other than expected.
    #[error("unexpected message from the chaincode: {0}")]
    Unexpected(String),
}

type Key = (String, String);

/// An in-process Fabric peer simulator.
pub struct InMemoryPeer {
    to_chaincode: mpsc::Sender<Result<ChaincodeMessage, tonic::Status>>,
    from_chaincode: mpsc::Receiver<Result<ChaincodeMessage, tonic::Status>>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<(), StreamError>>,
    /// Committed state.
    pub state: BTreeMap<String, Vec<u8>>,
    /// Per key, newest first: (txid, value, is_delete).
    pub history: HashMap<String, Vec<(String, Vec<u8>, bool)>>,
    /// How many messages of each type the chaincode sent.
    pub counts: BTreeMap<&'static str, usize>,
    /// Descriptions of protocol violations seen (e.g. two outstanding requests for one tx).
    pub violations: Vec<String>,
    /// Range batch size (Fabric: 100).
    pub batch_size: usize,
    pending_writes: HashMap<Key, BTreeMap<String, Option<Vec<u8>>>>,
    iterators: HashMap<String, VecDeque<Vec<u8>>>,
    next_iterator: u64,
}

impl std::fmt::Debug for InMemoryPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryPeer")
            .field("keys", &self.state.len())
            .finish_non_exhaustive()
    }
}

fn kind(msg: &ChaincodeMessage) -> &'static str {
    Type::try_from(msg.r#type).map_or("UNKNOWN", |t| t.as_str_name())
}

impl InMemoryPeer {
    /// Start the shim on in-process channels without any handshake (for raw protocol tests).
    pub fn start_raw(chaincode_id: &str, contract: Arc<dyn Contract>) -> Self {
        let (to_chaincode, inbound) = mpsc::channel(4096);
        let (outbound, from_chaincode) = mpsc::channel(4096);
        let (shutdown, stop) = watch::channel(false);
        let id = chaincode_id.to_owned();
        let task = tokio::spawn(async move {
            serve_stream(&id, contract, ReceiverStream::new(inbound), outbound, stop).await
        });
        Self {
            to_chaincode,
            from_chaincode,
            shutdown,
            task,
            state: BTreeMap::new(),
            history: HashMap::new(),
            counts: BTreeMap::new(),
            violations: Vec::new(),
            batch_size: 100,
            pending_writes: HashMap::new(),
            iterators: HashMap::new(),
            next_iterator: 0,
        }
    }

    /// Start the shim and complete the handshake; `ready` is the READY payload (None = empty,
    /// like Fabric 2.5/3.0).
    pub async fn connect(
        contract: Arc<dyn Contract>,
        ready: Option<protos::ChaincodeAdditionalParams>,
    ) -> Result<Self, PeerError> {
        let mut peer = Self::start_raw("cc:0123", contract);
        let register = peer.recv().await.ok_or(PeerError::Closed)?;
        if register.r#type != Type::Register as i32 {
            return Err(PeerError::Unexpected(kind(&register).into()));
        }
        peer.send(ChaincodeMessage {
            r#type: Type::Registered as i32,
            ..Default::default()
        })
        .await?;
        let payload = ready.map(|r| r.encode_to_vec()).unwrap_or_default();
        peer.send(ChaincodeMessage {
            r#type: Type::Ready as i32,
            payload,
            ..Default::default()
        })
        .await?;
        Ok(peer)
    }

    /// Send a raw message to the chaincode.
    pub async fn send(&self, msg: ChaincodeMessage) -> Result<(), PeerError> {
        self.to_chaincode
            .send(Ok(msg))
            .await
            .map_err(|_| PeerError::Closed)
    }

    /// Receive the chaincode's next message (`None` once it closed the stream).
    pub async fn recv(&mut self) -> Option<ChaincodeMessage> {
        let msg = self.from_chaincode.recv().await?.ok()?;
        *self.counts.entry(kind(&msg)).or_default() += 1;
        Some(msg)
    }

    /// Ask the shim to drain and stop, then wait for its stream task.
    pub async fn shut_down(self) -> Result<(), StreamError> {
        let _ = self.shutdown.send(true);
        drop(self.to_chaincode);
        self.task.await.unwrap_or(Err(StreamError::PeerGone))
    }

    /// Close the peer's side of the stream and wait for the shim's stream task to end.
    pub async fn hang_up(self) -> Result<(), StreamError> {
        drop(self.to_chaincode);
        self.task.await.unwrap_or(Err(StreamError::PeerGone))
    }

    /// Run one transaction to completion.
    pub async fn invoke(&mut self, tx: TxSpec) -> Result<TxResult, PeerError> {
        let mut results = self.invoke_all(vec![tx]).await?;
        results.pop().map(|(_, r)| r).ok_or(PeerError::Closed)
    }

    /// Start every transaction at once and serve them concurrently until all complete.
    /// Replies are withheld until everything the shim sent so far has been read, so two
    /// outstanding requests of one transaction would be seen (and recorded as a violation).
    pub async fn invoke_all(
        &mut self,
        txs: Vec<TxSpec>,
    ) -> Result<Vec<(String, TxResult)>, PeerError> {
        let mut open: HashSet<Key> = HashSet::new();
        for tx in &txs {
            open.insert((tx.channel.clone(), tx.txid.clone()));
            self.pending_writes
                .insert((tx.channel.clone(), tx.txid.clone()), BTreeMap::new());
            self.send(tx.message()).await?;
        }
        let mut done = Vec::new();
        while !open.is_empty() {
            let first = self.recv().await.ok_or(PeerError::Closed)?;
            let mut batch = vec![first];
            while let Ok(Ok(m)) = self.from_chaincode.try_recv() {
                *self.counts.entry(kind(&m)).or_default() += 1;
                batch.push(m);
            }
            let mut seen: HashSet<Key> = HashSet::new();
            for msg in batch {
                let key = (msg.channel_id.clone(), msg.txid.clone());
                match Type::try_from(msg.r#type) {
                    Ok(Type::Completed) => {
                        open.remove(&key);
                        let r = protos::Response::decode(msg.payload.as_slice())
                            .map_err(|e| PeerError::Unexpected(e.to_string()))?;
                        let writes = self.pending_writes.remove(&key).unwrap_or_default();
                        if r.status < 400 {
                            self.commit(&key.1, writes);
                        }
                        let event = msg.chaincode_event.map(|e| (e.event_name, e.payload));
                        done.push((
                            key.1,
                            TxResult::Completed {
                                status: r.status,
                                message: r.message,
                                payload: r.payload,
                                event,
                            },
                        ));
                    }
                    Ok(Type::Error) => {
                        open.remove(&key);
                        self.pending_writes.remove(&key);
                        done.push((
                            key.1,
                            TxResult::Error(String::from_utf8_lossy(&msg.payload).into_owned()),
                        ));
                    }
                    Ok(Type::Keepalive) => {}
                    _ => {
                        if !seen.insert(key.clone()) {
                            self.violations
                                .push(format!("two outstanding requests for {}/{}", key.0, key.1));
                        }
                        let reply = self.answer(&key, &msg);
                        self.send(reply).await?;
                    }
                }
            }
        }
        Ok(done)
    }

    fn commit(&mut self, txid: &str, writes: BTreeMap<String, Option<Vec<u8>>>) {
        for (k, v) in writes {
            let h = self.history.entry(k.clone()).or_default();
            h.insert(
                0,
                (txid.to_owned(), v.clone().unwrap_or_default(), v.is_none()),
            );
            match v {
                Some(v) => self.state.insert(k, v),
                None => self.state.remove(&k),
            };
        }
    }

    fn write(&mut self, key: &Key, k: String, v: Vec<u8>) {
        let value = (!v.is_empty()).then_some(v);
        self.pending_writes
            .entry(key.clone())
            .or_default()
            .insert(k, value);
    }

    fn query_response(&mut self, mut items: VecDeque<Vec<u8>>) -> protos::QueryResponse {
        let take = items.len().min(self.batch_size);
        let results = items
            .drain(..take)
            .map(|b| protos::QueryResultBytes { result_bytes: b })
            .collect();
        let has_more = !items.is_empty();
        let id = format!("it{}", self.next_iterator);
        self.next_iterator += 1;
        if has_more {
            self.iterators.insert(id.clone(), items);
        }
        protos::QueryResponse {
            results,
            has_more,
            id,
            metadata: Vec::new(),
        }
    }

    fn answer(&mut self, key: &Key, msg: &ChaincodeMessage) -> ChaincodeMessage {
        let reply = |ty: Type, payload: Vec<u8>| ChaincodeMessage {
            r#type: ty as i32,
            payload,
            txid: key.1.clone(),
            channel_id: key.0.clone(),
            ..Default::default()
        };
        let bad = |what: &str| {
            reply(
                Type::Error,
                format!("{what}: malformed request").into_bytes(),
            )
        };
        match Type::try_from(msg.r#type) {
            Ok(Type::GetState) => match protos::GetState::decode(msg.payload.as_slice()) {
                Ok(g) => reply(
                    Type::Response,
                    self.state.get(&g.key).cloned().unwrap_or_default(),
                ),
                Err(_) => bad("GET_STATE"),
            },
            Ok(Type::GetStateMultiple) => {
                match protos::GetStateMultiple::decode(msg.payload.as_slice()) {
                    Ok(g) => {
                        let values = g
                            .keys
                            .iter()
                            .map(|k| self.state.get(k).cloned().unwrap_or_default())
                            .collect();
                        reply(
                            Type::Response,
                            protos::GetStateMultipleResult { values }.encode_to_vec(),
                        )
                    }
                    Err(_) => bad("GET_STATE_MULTIPLE"),
                }
            }
            Ok(Type::PutState) => match protos::PutState::decode(msg.payload.as_slice()) {
                Ok(p) => {
                    self.write(key, p.key, p.value);
                    reply(Type::Response, Vec::new())
                }
                Err(_) => bad("PUT_STATE"),
            },
            Ok(Type::DelState) => match protos::DelState::decode(msg.payload.as_slice()) {
                Ok(d) => {
                    self.write(key, d.key, Vec::new());
                    reply(Type::Response, Vec::new())
                }
                Err(_) => bad("DEL_STATE"),
            },
            Ok(Type::WriteBatchState) => {
                match protos::WriteBatchState::decode(msg.payload.as_slice()) {
                    Ok(b) => {
                        for r in b.rec {
                            let value = if r.r#type == protos::write_record::Type::DelState as i32 {
                                Vec::new()
                            } else {
                                r.value
                            };
                            self.write(key, r.key, value);
                        }
                        reply(Type::Response, Vec::new())
                    }
                    Err(_) => bad("WRITE_BATCH_STATE"),
                }
            }
            Ok(Type::GetStateByRange) => {
                match protos::GetStateByRange::decode(msg.payload.as_slice()) {
                    Ok(r) => {
                        let meta = protos::QueryMetadata::decode(r.metadata.as_slice())
                            .unwrap_or_default();
                        let start = if meta.bookmark.is_empty() {
                            r.start_key
                        } else {
                            meta.bookmark
                        };
                        let in_range = self
                            .state
                            .range(start..)
                            .take_while(|(k, _)| r.end_key.is_empty() || **k < r.end_key)
                            .map(|(k, v)| queryresult::Kv {
                                namespace: "cc".into(),
                                key: k.clone(),
                                value: v.clone(),
                            });
                        if meta.page_size > 0 {
                            let mut all: Vec<_> = in_range.collect();
                            let size = usize::try_from(meta.page_size).unwrap_or(0).min(all.len());
                            let rest = all.split_off(size);
                            let response = protos::QueryResponse {
                                results: all
                                    .iter()
                                    .map(|kv| protos::QueryResultBytes {
                                        result_bytes: kv.encode_to_vec(),
                                    })
                                    .collect(),
                                has_more: false,
                                id: String::new(),
                                metadata: protos::QueryResponseMetadata {
                                    fetched_records_count: i32::try_from(size).unwrap_or(0),
                                    bookmark: rest
                                        .first()
                                        .map(|kv| kv.key.clone())
                                        .unwrap_or_default(),
                                }
                                .encode_to_vec(),
                            };
                            reply(Type::Response, response.encode_to_vec())
                        } else {
                            let items = in_range.map(|kv| kv.encode_to_vec()).collect();
                            let response = self.query_response(items);
                            reply(Type::Response, response.encode_to_vec())
                        }
                    }
                    Err(_) => bad("GET_STATE_BY_RANGE"),
                }
            }
            Ok(Type::QueryStateNext) => {
                match protos::QueryStateNext::decode(msg.payload.as_slice()) {
                    Ok(n) => match self.iterators.remove(&n.id) {
                        Some(items) => {
                            let mut response = self.query_response(items);
                            if response.has_more {
                                // Keep the caller's id for the remaining items.
                                if let Some(rest) = self.iterators.remove(&response.id) {
                                    self.iterators.insert(n.id.clone(), rest);
                                }
                            }
                            response.id = n.id;
                            reply(Type::Response, response.encode_to_vec())
                        }
                        None => reply(Type::Error, b"query iterator not found".to_vec()),
                    },
                    Err(_) => bad("QUERY_STATE_NEXT"),
                }
            }
            Ok(Type::QueryStateClose) => {
                match protos::QueryStateClose::decode(msg.payload.as_slice()) {
                    Ok(c) => {
                        self.iterators.remove(&c.id);
                        reply(
                            Type::Response,
                            protos::QueryResponse {
                                id: c.id,
                                ..Default::default()
                            }
                            .encode_to_vec(),
                        )
                    }
                    Err(_) => bad("QUERY_STATE_CLOSE"),
                }
            }
            Ok(Type::GetHistoryForKey) => {
                match protos::GetHistoryForKey::decode(msg.payload.as_slice()) {
                    Ok(h) => {
                        let items = self
                            .history
                            .get(&h.key)
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(tx_id, value, is_delete)| {
                                queryresult::KeyModification {
                                    tx_id,
                                    value,
                                    timestamp: Some(prost_types::Timestamp {
                                        seconds: 1,
                                        nanos: 0,
                                    }),
                                    is_delete,
                                }
                                .encode_to_vec()
                            })
                            .collect();
                        let response = self.query_response(items);
                        reply(Type::Response, response.encode_to_vec())
                    }
                    Err(_) => bad("GET_HISTORY_FOR_KEY"),
                }
            }
            _ => reply(
                Type::Error,
                format!("unsupported request {}", kind(msg)).into_bytes(),
            ),
        }
    }
}

/// Fuzzing entry point (also replayed by a unit test): feed arbitrary bytes to the protocol core
/// as a sequence of frames `[len: u8][ChaincodeMessage bytes]`. Every decodable message goes to
/// [`crate::protocol::Session::receive`]; started transactions decode their context and make a
/// request; delivered replies complete them; a fatal error starts a new session. Must never
/// panic. Returns how many messages the session accepted.
pub fn dispatch_frames(data: &[u8]) -> usize {
    use crate::protocol::{Action, Completion, Request, Session};
    let (mut session, _) = Session::new("fuzz:0");
    let mut rest = data;
    let mut accepted = 0;
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        let Ok(msg) = ChaincodeMessage::decode(frame) else {
            continue;
        };
        match session.receive(msg) {
            Ok(actions) => {
                accepted += 1;
                for action in actions {
                    match action {
                        Action::Start(invocation) => {
                            let _ = crate::stub::TxContext::from_invocation(&invocation);
                            let _ = session
                                .request(&invocation.key, Request::GetState { key: "k".into() });
                        }
                        Action::Deliver { key, .. } => {
                            let _ = session.complete(&key, Completion::Failed("done".into()));
                        }
                        Action::Send(_) | Action::Ready(_) | Action::Stray { .. } => {}
                    }
                }
            }
            Err(_) => session = Session::new("fuzz:0").0,
        }
    }
    accepted
}
