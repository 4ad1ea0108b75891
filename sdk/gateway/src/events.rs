//! Chaincode events: a resumable stream and the [`Checkpoint`] that makes it resumable.

use std::collections::VecDeque;
use std::fs;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use fabric_protos::gateway::ChaincodeEventsResponse;
use fabric_protos::gateway::gateway_client::GatewayClient;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::error::{Error, Stage, StageError};
use crate::wire::StartAt;

/// One chaincode event from a committed, valid transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeEvent {
    /// The block holding the transaction.
    pub block_number: u64,
    /// The transaction that emitted the event.
    pub transaction_id: String,
    /// The chaincode that emitted it.
    pub chaincode_name: String,
    /// The event name chosen by the chaincode.
    pub event_name: String,
    /// The event payload.
    pub payload: Vec<u8>,
}

/// Why a checkpoint file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing the file.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a checkpoint.
    #[error("checkpoint file {path} is not a checkpoint: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
}

/// How far an event consumer got: the last block, and the last transaction within it, whose
/// event was fully processed. Resuming from a checkpoint delivers every later event exactly
/// once: nothing processed is seen again, nothing unprocessed is skipped.
///
/// Record an event with [`Checkpoint::record`] only after processing it; persist with
/// [`Checkpoint::save`] (atomic: write then rename) and restore with [`Checkpoint::load`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Block to resume from (`None`: nothing processed yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    block_number: Option<u64>,
    /// Last processed transaction in `block_number` (`None`: resume at the block's start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transaction_id: Option<String>,
}

impl Checkpoint {
    /// A checkpoint that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The block to resume from, if any event or block was recorded.
    pub fn block_number(&self) -> Option<u64> {
        self.block_number
    }

    /// The last processed transaction within [`Self::block_number`].
    pub fn transaction_id(&self) -> Option<&str> {
        self.transaction_id.as_deref()
    }

    /// Marks `event` (and everything before it) as processed.
    pub fn record(&mut self, event: &ChaincodeEvent) {
        self.block_number = Some(event.block_number);
        self.transaction_id = Some(event.transaction_id.clone());
    }

    /// Marks block `block_number` as completely processed: resume at the next block.
    pub fn record_block(&mut self, block_number: u64) {
        self.block_number = Some(block_number.saturating_add(1));
        self.transaction_id = None;
    }

    /// Where a stream resumes, or `None` if nothing was recorded.
    pub fn start_at(&self) -> Option<StartAt> {
        let block = self.block_number?;
        Some(match &self.transaction_id {
            Some(tx) => StartAt::After {
                block,
                after_transaction: tx.clone(),
            },
            None => StartAt::Block(block),
        })
    }

    /// Reads a checkpoint saved by [`Self::save`]; a missing file gives `Ok(None)`.
    ///
    /// # Errors
    /// [`CheckpointError`] when the file exists but cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Option<Self>, CheckpointError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CheckpointError::Format {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    }

    /// Writes the checkpoint as a small JSON file, atomically (a temporary file renamed over
    /// `path`), so a crash never leaves a torn checkpoint.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec(self).map_err(|e| CheckpointError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut file = fs::File::create(&tmp).map_err(io)?;
        file.write_all(&json).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(io)
    }
}

/// Drops events a resumed stream has already delivered. The gateway filters by
/// `after_transaction_id` itself; this repeats the rule on the client so that resuming is exact
/// even against a gateway that could not locate the transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResumeFilter {
    /// `(block, transaction)` still to be passed, if resuming mid-block.
    pending: Option<(u64, String)>,
    /// Blocks below this were fully processed.
    min_block: u64,
}

impl ResumeFilter {
    pub(crate) fn new(start: &StartAt) -> Self {
        match start {
            StartAt::NextCommit => Self::default(),
            StartAt::Block(block) => Self {
                pending: None,
                min_block: *block,
            },
            StartAt::After {
                block,
                after_transaction,
            } => Self {
                pending: Some((*block, after_transaction.clone())),
                min_block: *block,
            },
        }
    }

    /// The events of one block (in order) that are new to the consumer. In the checkpoint's
    /// block, everything up to and including the checkpoint's transaction is dropped if the
    /// server sent it; a server that honoured `after_transaction_id` already left it out.
    pub(crate) fn admit_block(
        &mut self,
        block_number: u64,
        mut events: Vec<ChaincodeEvent>,
    ) -> Vec<ChaincodeEvent> {
        if block_number < self.min_block {
            return Vec::new();
        }
        if let Some((block, tx)) = self.pending.take() {
            if block_number == block {
                if let Some(pos) = events.iter().position(|e| e.transaction_id == tx) {
                    return events.split_off(pos + 1);
                }
            }
        }
        events
    }
}

type Opening = Pin<
    Box<
        dyn Future<
                Output = Result<
                    tonic::Response<tonic::Streaming<ChaincodeEventsResponse>>,
                    tonic::Status,
                >,
            > + Send,
    >,
>;

type Opened = Result<tonic::Response<tonic::Streaming<ChaincodeEventsResponse>>, tonic::Status>;

enum StreamState {
    /// The call runs as its own task, started when the stream was opened.
    Started(tokio::task::JoinHandle<Opened>),
    /// Outside a Tokio runtime: the call is made on the first poll.
    Opening(Opening),
    Open(Box<tonic::Streaming<ChaincodeEventsResponse>>),
    Done,
}

/// Starts the call at once: the request is on its way when the stream is handed to the caller,
/// so a stream opened at [`StartAt::NextCommit`] sees the commits of transactions submitted
/// after it was opened (the official clients do the same). Tonic resolves the call only when
/// the response headers arrive, which Fabric's gateway sends with the first matching block,
/// so the call runs as its own task rather than waiting for the consumer's first poll.
fn start_call(opening: Opening) -> StreamState {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => StreamState::Started(runtime.spawn(opening)),
        Err(_) => StreamState::Opening(opening),
    }
}

/// A live stream of chaincode events, in block order: read it with [`next`](Self::next), or use
/// it as a [`Stream`] (e.g. with `tokio_stream::StreamExt`). Dropping it cancels the server
/// stream.
pub struct ChaincodeEventStream {
    state: StreamState,
    endpoint: String,
    filter: ResumeFilter,
    buffered: VecDeque<ChaincodeEvent>,
}

impl std::fmt::Debug for ChaincodeEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeEventStream")
            .field("endpoint", &self.endpoint)
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

impl ChaincodeEventStream {
    pub(crate) fn new(
        mut client: GatewayClient<Channel>,
        request: fabric_protos::gateway::SignedChaincodeEventsRequest,
        endpoint: String,
        start: &StartAt,
    ) -> Self {
        Self {
            state: start_call(Box::pin(
                async move { client.chaincode_events(request).await },
            )),
            endpoint,
            filter: ResumeFilter::new(start),
            buffered: VecDeque::new(),
        }
    }

    fn fail(&mut self, status: &tonic::Status) -> Error {
        self.state = StreamState::Done;
        Error::ChaincodeEvents(StageError::from_status(
            Stage::ChaincodeEvents,
            None,
            &self.endpoint,
            status,
        ))
    }

    /// The next event, waiting for new blocks as needed; `None` once the stream has ended
    /// (after the server closes it, or after an error was returned).
    ///
    /// # Errors
    /// [`Error::ChaincodeEvents`] when the stream cannot be opened or fails.
    pub async fn next(&mut self) -> Option<Result<ChaincodeEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<ChaincodeEvent, Error>>> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            let response = match &mut self.state {
                StreamState::Done => return Poll::Ready(None),
                StreamState::Started(task) => match Pin::new(task).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Ok(response))) => {
                        self.state = StreamState::Open(Box::new(response.into_inner()));
                        continue;
                    }
                    Poll::Ready(Ok(Err(status))) => {
                        return Poll::Ready(Some(Err(self.fail(&status))));
                    }
                    Poll::Ready(Err(join)) => {
                        let status = tonic::Status::cancelled(format!(
                            "the task opening the stream ended: {join}"
                        ));
                        return Poll::Ready(Some(Err(self.fail(&status))));
                    }
                },
                StreamState::Opening(opening) => match opening.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(response)) => {
                        self.state = StreamState::Open(Box::new(response.into_inner()));
                        continue;
                    }
                    Poll::Ready(Err(status)) => return Poll::Ready(Some(Err(self.fail(&status)))),
                },
                StreamState::Open(stream) => match Pin::new(stream).poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(response))) => response,
                    Poll::Ready(None) => {
                        self.state = StreamState::Done;
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(Err(status))) => {
                        return Poll::Ready(Some(Err(self.fail(&status))));
                    }
                },
            };
            let (block_number, events) = block_events(response);
            self.buffered
                .extend(self.filter.admit_block(block_number, events));
        }
    }
}

impl Drop for ChaincodeEventStream {
    fn drop(&mut self) {
        // Dropping the stream cancels the server stream, also while it is still opening.
        if let StreamState::Started(task) = &self.state {
            task.abort();
        }
    }
}

impl Stream for ChaincodeEventStream {
    type Item = Result<ChaincodeEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is Unpin, so the stream is too.
        self.get_mut().poll_event(cx)
    }
}

/// The events of one `ChaincodeEventsResponse` (one block), with their block number.
pub(crate) fn block_events(
    response: fabric_protos::gateway::ChaincodeEventsResponse,
) -> (u64, Vec<ChaincodeEvent>) {
    let block_number = response.block_number;
    let events = response
        .events
        .into_iter()
        .map(|event| ChaincodeEvent {
            block_number,
            transaction_id: event.tx_id,
            chaincode_name: event.chaincode_id,
            event_name: event.event_name,
            payload: event.payload,
        })
        .collect();
    (block_number, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(block: u64, tx: &str) -> ChaincodeEvent {
        ChaincodeEvent {
            block_number: block,
            transaction_id: tx.into(),
            chaincode_name: "cc".into(),
            event_name: "e".into(),
            payload: Vec::new(),
        }
    }

    /// A ledger's worth of event blocks: 5..=7, several transactions each.
    fn ledger() -> Vec<(u64, Vec<ChaincodeEvent>)> {
        vec![
            (5, vec![event(5, "a"), event(5, "b"), event(5, "c")]),
            (6, vec![event(6, "d")]),
            (7, vec![event(7, "e"), event(7, "f")]),
        ]
    }

    /// What a server sends for `start`: from the start block on, and, if `honours_after`,
    /// without the events up to and including the `after_transaction`.
    fn serve(start: &StartAt, honours_after: bool) -> Vec<(u64, Vec<ChaincodeEvent>)> {
        let (from, after) = match start {
            StartAt::NextCommit => (u64::MAX, None),
            StartAt::Block(b) => (*b, None),
            StartAt::After {
                block,
                after_transaction,
            } => (*block, honours_after.then_some(after_transaction.clone())),
        };
        let mut passed = after.is_none();
        ledger()
            .into_iter()
            .filter(|(b, _)| *b >= from)
            .map(|(b, events)| {
                let kept = events
                    .into_iter()
                    .filter(|e| {
                        if passed {
                            return true;
                        }
                        passed = Some(&e.transaction_id) == after.as_ref();
                        false
                    })
                    .collect::<Vec<_>>();
                (b, kept)
            })
            .filter(|(_, events)| !events.is_empty())
            .collect()
    }

    /// Everything a consumer that stops after `stop_after` events and resumes from its
    /// (serialized) checkpoint sees.
    fn consume_with_restart(stop_after: usize, honours_after: bool) -> Vec<String> {
        let start = StartAt::Block(5);
        let mut seen = Vec::new();
        let mut cp = Checkpoint::new();
        let mut first = ResumeFilter::new(&start);
        let delivered = serve(&start, honours_after)
            .into_iter()
            .flat_map(|(b, events)| first.admit_block(b, events));
        for e in delivered.take(stop_after) {
            seen.push(e.transaction_id.clone());
            cp.record(&e);
        }
        let json = serde_json::to_string(&cp).expect("serialize");
        let cp: Checkpoint = serde_json::from_str(&json).expect("deserialize");
        let start = cp.start_at().unwrap_or(start);
        let mut second = ResumeFilter::new(&start);
        for (b, events) in serve(&start, honours_after) {
            seen.extend(
                second
                    .admit_block(b, events)
                    .into_iter()
                    .map(|e| e.transaction_id),
            );
        }
        seen
    }

    #[test]
    fn resuming_at_any_point_sees_every_event_exactly_once() {
        let all: Vec<String> = ledger()
            .into_iter()
            .flat_map(|(_, events)| events)
            .map(|e| e.transaction_id)
            .collect();
        for honours_after in [true, false] {
            for stop in 0..=all.len() {
                assert_eq!(
                    consume_with_restart(stop, honours_after),
                    all,
                    "stopped after {stop}, server honours after_transaction_id: {honours_after}"
                );
            }
        }
    }

    #[test]
    fn record_block_resumes_at_the_next_block() {
        let mut cp = Checkpoint::new();
        assert_eq!(cp.start_at(), None);
        cp.record(&event(5, "c"));
        cp.record_block(5);
        assert_eq!(cp.start_at(), Some(StartAt::Block(6)));
        let mut f = ResumeFilter::new(&StartAt::Block(6));
        assert!(f.admit_block(5, vec![event(5, "c")]).is_empty());
        assert_eq!(f.admit_block(6, vec![event(6, "d")]).len(), 1);
    }

    #[test]
    fn checkpoint_after_transaction_requests_that_transaction() {
        let mut cp = Checkpoint::new();
        cp.record(&event(9, "tx9"));
        assert_eq!(
            cp.start_at(),
            Some(StartAt::After {
                block: 9,
                after_transaction: "tx9".into()
            })
        );
    }

    #[test]
    fn unknown_transaction_does_not_swallow_events() {
        let mut f = ResumeFilter::new(&StartAt::After {
            block: 5,
            after_transaction: "zz".into(),
        });
        assert_eq!(f.admit_block(5, vec![event(5, "a")]).len(), 1);
        assert_eq!(f.admit_block(6, vec![event(6, "d")]).len(), 1);
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = std::env::temp_dir().join(format!("gw-cp-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("cp.json");
        assert_eq!(Checkpoint::load(&path).expect("load"), None);
        let mut cp = Checkpoint::new();
        cp.record(&event(42, "abc"));
        cp.save(&path).expect("save");
        assert_eq!(Checkpoint::load(&path).expect("load"), Some(cp));
        fs::write(&path, "not json").expect("write");
        assert!(matches!(
            Checkpoint::load(&path),
            Err(CheckpointError::Format { .. })
        ));
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
