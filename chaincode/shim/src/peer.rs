//! The peer-backed stub: runs on a transaction's worker thread and talks to the stream task
//! through a channel, blocking on each reply (so a transaction never has two requests in flight).

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use fabric_protos::{protos, queryresult};
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use crate::contract::Contract;
use crate::error::StubError;
use crate::identity::Creator;
use crate::keys::{KeyRange, check_key};
use crate::protocol::{
    Capabilities, Completion, Invocation, InvocationKind, Reply, Request, TxKey,
};
use crate::stub::{
    Cursor, Events, Identity, KeyModification, KeyValue, Page, Query, QueryIter, State, TxContext,
    TxInfo,
};

/// A worker's message to the stream task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a request and route the reply back.
    Request {
        key: TxKey,
        request: Request,
        reply: oneshot::Sender<Result<Reply, StubError>>,
    },
    /// The transaction is over.
    Complete { key: TxKey, completion: Completion },
}

/// A transaction's handle on the stream task.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    key: TxKey,
    commands: mpsc::UnboundedSender<Command>,
}

impl Link {
    pub(crate) fn new(key: TxKey, commands: mpsc::UnboundedSender<Command>) -> Self {
        Self { key, commands }
    }

    fn call(&self, request: Request) -> Result<Vec<u8>, StubError> {
        let name = request.name();
        let (reply, wait) = oneshot::channel();
        self.commands
            .send(Command::Request {
                key: self.key.clone(),
                request,
                reply,
            })
            .map_err(|_| StubError::Disconnected)?;
        match wait.blocking_recv() {
            Ok(Ok(Reply::Response(payload))) => Ok(payload),
            Ok(Ok(Reply::Error(message))) => Err(StubError::Peer {
                request: name,
                message,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StubError::Disconnected),
        }
    }

    fn complete(&self, completion: Completion) {
        // If the stream is gone the peer has given up on this transaction; nothing to tell.
        let _ = self.commands.send(Command::Complete {
            key: self.key.clone(),
            completion,
        });
    }
}

fn malformed(what: &'static str) -> impl Fn(prost::DecodeError) -> StubError {
    move |e| StubError::Malformed {
        what,
        detail: e.to_string(),
    }
}

/// The stub a contract sees when running under a real peer.
#[derive(Debug)]
pub(crate) struct PeerStub {
    tx: TxContext,
    caps: Capabilities,
    link: Link,
    /// Pending writes when the peer supports WRITE_BATCH_STATE (`None` = delete).
    batch: BTreeMap<String, Option<Vec<u8>>>,
    event: Option<(String, Vec<u8>)>,
    wrote: bool,
    paginated: Cell<bool>,
}

impl PeerStub {
    pub(crate) fn new(tx: TxContext, caps: Capabilities, link: Link) -> Self {
        Self {
            tx,
            caps,
            link,
            batch: BTreeMap::new(),
            event: None,
            wrote: false,
            paginated: Cell::new(false),
        }
    }

    /// Flush batched writes (segments of the advertised maximum, each awaiting its RESPONSE) and
    /// hand back the event.
    pub(crate) fn finish(mut self) -> Result<Option<(String, Vec<u8>)>, StubError> {
        if let Some(max) = self.caps.write_batch {
            let records: Vec<_> = std::mem::take(&mut self.batch).into_iter().collect();
            for chunk in records.chunks(max as usize) {
                self.link.call(Request::WriteBatch {
                    records: chunk.to_vec(),
                })?;
            }
        }
        Ok(self.event)
    }

    fn write(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), StubError> {
        check_key(key)?;
        if self.paginated.get() {
            return Err(StubError::WriteAfterPagination);
        }
        self.wrote = true;
        let value = value.filter(|v| !v.is_empty());
        if self.caps.write_batch.is_some() {
            self.batch.insert(key.to_owned(), value.map(<[u8]>::to_vec));
            return Ok(());
        }
        let request = match value {
            Some(v) => Request::PutState {
                key: key.to_owned(),
                value: v.to_vec(),
            },
            None => Request::DelState {
                key: key.to_owned(),
            },
        };
        self.link.call(request).map(drop)
    }

    fn query(&self, request: Request) -> Result<protos::QueryResponse, StubError> {
        let bytes = self.link.call(request)?;
        protos::QueryResponse::decode(bytes.as_slice()).map_err(malformed("QueryResponse"))
    }
}

impl State for PeerStub {
    fn state(&self, key: &str) -> Result<Option<Vec<u8>>, StubError> {
        check_key(key)?;
        let value = self.link.call(Request::GetState {
            key: key.to_owned(),
        })?;
        Ok((!value.is_empty()).then_some(value))
    }

    fn states(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StubError> {
        for k in keys {
            check_key(k)?;
        }
        let Some(max) = self.caps.get_multiple else {
            return keys.iter().map(|k| self.state(k)).collect();
        };
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(max as usize) {
            let keys = chunk.iter().map(|k| (*k).to_owned()).collect();
            let bytes = self.link.call(Request::GetStateMultiple { keys })?;
            let result = protos::GetStateMultipleResult::decode(bytes.as_slice())
                .map_err(malformed("GetStateMultipleResult"))?;
            if result.values.len() != chunk.len() {
                return Err(StubError::Malformed {
                    what: "GetStateMultipleResult",
                    detail: format!("{} values for {} keys", result.values.len(), chunk.len()),
                });
            }
            out.extend(
                result
                    .values
                    .into_iter()
                    .map(|v| (!v.is_empty()).then_some(v)),
            );
        }
        Ok(out)
    }

    fn put_state(&mut self, key: &str, value: &[u8]) -> Result<(), StubError> {
        self.write(key, Some(value))
    }

    fn delete_state(&mut self, key: &str) -> Result<(), StubError> {
        self.write(key, None)
    }
}

/// Iterates a peer-side query, fetching batches with QUERY_STATE_NEXT.
struct PeerCursor<T> {
    link: Link,
    buffer: VecDeque<Vec<u8>>,
    id: String,
    has_more: bool,
    decode: fn(&[u8]) -> Result<T, StubError>,
}

impl<T> PeerCursor<T> {
    fn new(
        link: Link,
        response: protos::QueryResponse,
        decode: fn(&[u8]) -> Result<T, StubError>,
    ) -> Self {
        Self {
            link,
            buffer: response
                .results
                .into_iter()
                .map(|r| r.result_bytes)
                .collect(),
            id: response.id,
            has_more: response.has_more,
            decode,
        }
    }
}

impl<T: Send> Cursor<T> for PeerCursor<T> {
    fn advance(&mut self) -> Option<Result<T, StubError>> {
        loop {
            if let Some(bytes) = self.buffer.pop_front() {
                return Some((self.decode)(&bytes));
            }
            if !self.has_more {
                return None;
            }
            let next = self
                .link
                .call(Request::QueryNext {
                    id: self.id.clone(),
                })
                .and_then(|b| {
                    protos::QueryResponse::decode(b.as_slice()).map_err(malformed("QueryResponse"))
                });
            match next {
                Ok(response) => {
                    self.has_more = response.has_more;
                    self.buffer
                        .extend(response.results.into_iter().map(|r| r.result_bytes));
                }
                Err(e) => {
                    self.has_more = false;
                    return Some(Err(e));
                }
            }
        }
    }

    fn close(&mut self) -> Result<(), StubError> {
        self.buffer.clear();
        if std::mem::take(&mut self.has_more) {
            self.link.call(Request::QueryClose {
                id: self.id.clone(),
            })?;
        }
        Ok(())
    }
}

fn decode_kv(bytes: &[u8]) -> Result<KeyValue, StubError> {
    let kv = queryresult::Kv::decode(bytes).map_err(malformed("KV"))?;
    Ok(KeyValue {
        key: kv.key,
        value: kv.value,
    })
}

fn decode_modification(bytes: &[u8]) -> Result<KeyModification, StubError> {
    let m = queryresult::KeyModification::decode(bytes).map_err(malformed("KeyModification"))?;
    let timestamp = match m.timestamp {
        Some(t) => Some(crate::context::timestamp(t).ok_or(StubError::Malformed {
            what: "KeyModification",
            detail: "timestamp out of range".into(),
        })?),
        None => None,
    };
    Ok(KeyModification {
        tx_id: m.tx_id,
        value: m.value,
        timestamp,
        is_delete: m.is_delete,
    })
}

impl Query for PeerStub {
    fn range(&self, range: &KeyRange) -> Result<QueryIter<KeyValue>, StubError> {
        let response = self.query(Request::Range {
            start: range.start().to_owned(),
            end: range.end().to_owned(),
            page: None,
        })?;
        Ok(QueryIter::new(Box::new(PeerCursor::new(
            self.link.clone(),
            response,
            decode_kv,
        ))))
    }

    fn range_page(
        &self,
        range: &KeyRange,
        page_size: u32,
        bookmark: &str,
    ) -> Result<Page<KeyValue>, StubError> {
        if self.wrote {
            return Err(StubError::PaginationAfterWrite);
        }
        self.paginated.set(true);
        let response = self.query(Request::Range {
            start: range.start().to_owned(),
            end: range.end().to_owned(),
            page: Some((page_size, bookmark.to_owned())),
        })?;
        let meta = protos::QueryResponseMetadata::decode(response.metadata.as_slice())
            .map_err(malformed("QueryResponseMetadata"))?;
        let records = response
            .results
            .iter()
            .map(|r| decode_kv(&r.result_bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            records,
            bookmark: meta.bookmark,
            fetched: u32::try_from(meta.fetched_records_count).unwrap_or(0),
        })
    }

    fn history(&self, key: &str) -> Result<QueryIter<KeyModification>, StubError> {
        check_key(key)?;
        let response = self.query(Request::History {
            key: key.to_owned(),
        })?;
        Ok(QueryIter::new(Box::new(PeerCursor::new(
            self.link.clone(),
            response,
            decode_modification,
        ))))
    }
}

impl Events for PeerStub {
    fn set_event(&mut self, name: &str, payload: &[u8]) -> Result<(), StubError> {
        self.event = Some(crate::error::checked_event(name, payload)?);
        Ok(())
    }
}

impl TxInfo for PeerStub {
    fn tx(&self) -> &TxContext {
        &self.tx
    }
}

impl Identity for PeerStub {
    fn creator(&self) -> &Creator {
        &self.tx.creator
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload")
}

/// Run one transaction to completion on the current (blocking) thread.
pub(crate) fn run_transaction(
    contract: &Arc<dyn Contract>,
    invocation: Invocation,
    caps: Capabilities,
    link: Link,
) {
    let completion = match TxContext::from_invocation(&invocation) {
        Err(e) => {
            tracing::warn!(tx = %invocation.key, error = %e, "malformed transaction");
            Completion::Failed(format!("malformed transaction: {e}"))
        }
        Ok(tx) => {
            let function = tx.function().to_owned();
            let mut stub = PeerStub::new(tx, caps, link.clone());
            let outcome = catch_unwind(AssertUnwindSafe(|| contract.invoke(&mut stub)));
            let completion = match outcome {
                Ok(Ok(payload)) => match stub.finish() {
                    Ok(event) => Completion::Completed {
                        status: 200,
                        message: String::new(),
                        payload,
                        event,
                    },
                    Err(e) => Completion::Completed {
                        status: 500,
                        message: format!("flushing writes failed: {e}"),
                        payload: Vec::new(),
                        event: None,
                    },
                },
                Ok(Err(error)) => Completion::Completed {
                    status: i32::from(error.status().code()),
                    message: error.message().to_owned(),
                    payload: Vec::new(),
                    event: None,
                },
                Err(panic) => {
                    let text = panic_text(panic.as_ref());
                    tracing::error!(tx = %invocation.key, function, panic = text, "transaction panicked");
                    Completion::Completed {
                        status: 500,
                        message: format!("chaincode panicked: {text}"),
                        payload: Vec::new(),
                        event: None,
                    }
                }
            };
            match completion {
                // Fabric's Go shim reports a failed Init (status >= 500) with ERROR.
                Completion::Completed {
                    status, message, ..
                } if invocation.kind == InvocationKind::Init && status >= 500 => {
                    Completion::Failed(message)
                }
                c => c,
            }
        }
    };
    link.complete(completion);
}
