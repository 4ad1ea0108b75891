//! Block events and filtered-block events: the gateway peer's `Deliver` service, as the official
//! clients' `Network.BlockEvents` / `Network.FilteredBlockEvents` use it.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use fabric_protos::common::{self, Envelope, Payload};
use fabric_protos::protos::deliver_client::DeliverClient;
use fabric_protos::protos::{self as pb, DeliverResponse, deliver_response};
use futures_core::Stream;
use prost::Message;
use tonic::transport::Channel;

use crate::error::{Error, Stage, StageError, ValidationCode};
use crate::events::ChaincodeEvent;

/// Index of the per-transaction validation codes in `BlockMetadata.metadata`
/// (`common.BlockMetadataIndex.TRANSACTIONS_FILTER`).
const TRANSACTIONS_FILTER: usize = 2;

/// One committed block, as the peer's ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The block number.
    pub number: u64,
    /// The header's hash of the previous block.
    pub previous_hash: Vec<u8>,
    /// The header's hash of this block's data.
    pub data_hash: Vec<u8>,
    /// The block's transactions, in order.
    pub transactions: Vec<BlockTransaction>,
    bytes: Vec<u8>,
}

impl Block {
    /// The serialized `common.Block` exactly as received, for decoding with any Fabric protobuf
    /// library (what the official clients hand out).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// One transaction of a [`Block`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockTransaction {
    /// The transaction id from its channel header (empty for some config transactions).
    pub transaction_id: String,
    /// The `common.HeaderType` of the transaction (3: endorser transaction, 1: config).
    pub header_type: i32,
    /// How the committing peer validated it.
    pub validation_code: ValidationCode,
    /// The serialized `common.Envelope`.
    pub envelope: Vec<u8>,
}

/// One committed block with only what an application usually needs: transaction ids,
/// validation codes and chaincode events (no read/write sets, no endorsements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilteredBlock {
    /// The block number.
    pub number: u64,
    /// The block's transactions, in order.
    pub transactions: Vec<FilteredTransaction>,
}

/// One transaction of a [`FilteredBlock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilteredTransaction {
    /// The transaction id.
    pub transaction_id: String,
    /// The `common.HeaderType` of the transaction.
    pub header_type: i32,
    /// How the committing peer validated it.
    pub validation_code: ValidationCode,
    /// The chaincode events it emitted (the peer sends names only, no payloads, in filtered
    /// blocks; `payload` is then empty).
    pub chaincode_events: Vec<ChaincodeEvent>,
}

type Opened = Result<tonic::Response<tonic::Streaming<DeliverResponse>>, tonic::Status>;
type Opening = Pin<Box<dyn Future<Output = Opened> + Send>>;

enum State {
    Started(tokio::task::JoinHandle<Opened>),
    Opening(Opening),
    Open(Box<tonic::Streaming<DeliverResponse>>),
    Done,
}

/// One request message, then the send side closes: the peer keeps streaming until the stop
/// position (the end of time) and only then reads again.
struct OneRequest(Option<Envelope>);

impl Stream for OneRequest {
    type Item = Envelope;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Envelope>> {
        Poll::Ready(self.get_mut().0.take())
    }
}

/// The `Deliver` stream shared by both event kinds; `T` is what one response decodes to.
struct DeliverStream {
    state: State,
    endpoint: String,
}

impl Drop for DeliverStream {
    fn drop(&mut self) {
        if let State::Started(task) = &self.state {
            task.abort();
        }
    }
}

impl DeliverStream {
    /// Starts the call now (see `ChaincodeEventStream`: the request is on its way when the
    /// stream is handed out, so `NextCommit` means the next commit after opening).
    fn new(channel: Channel, envelope: Envelope, endpoint: String, filtered: bool) -> Self {
        let opening: Opening = Box::pin(async move {
            let mut client = DeliverClient::new(channel)
                .max_decoding_message_size(100 * 1024 * 1024)
                .max_encoding_message_size(100 * 1024 * 1024);
            let request = OneRequest(Some(envelope));
            if filtered {
                client.deliver_filtered(request).await
            } else {
                client.deliver(request).await
            }
        });
        let state = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => State::Started(runtime.spawn(opening)),
            Err(_) => State::Opening(opening),
        };
        Self { state, endpoint }
    }

    fn fail(&mut self, status: &tonic::Status) -> Error {
        self.state = State::Done;
        Error::BlockEvents(StageError::from_status(
            Stage::BlockEvents,
            None,
            &self.endpoint,
            status,
        ))
    }

    fn malformed(&mut self, reason: String) -> Error {
        self.state = State::Done;
        Error::Malformed {
            stage: Stage::BlockEvents,
            transaction_id: String::new(),
            reason,
        }
    }

    /// The next block-carrying response; `None` after the peer's SUCCESS status or an error.
    fn poll_response(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<deliver_response::Type, Error>>> {
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(None),
                State::Started(task) => match Pin::new(task).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Ok(response))) => {
                        self.state = State::Open(Box::new(response.into_inner()));
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
                State::Opening(opening) => match opening.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(response)) => {
                        self.state = State::Open(Box::new(response.into_inner()));
                    }
                    Poll::Ready(Err(status)) => return Poll::Ready(Some(Err(self.fail(&status)))),
                },
                State::Open(stream) => {
                    let response = match Pin::new(stream).poll_next(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(None) => {
                            self.state = State::Done;
                            return Poll::Ready(None);
                        }
                        Poll::Ready(Some(Err(status))) => {
                            return Poll::Ready(Some(Err(self.fail(&status))));
                        }
                        Poll::Ready(Some(Ok(response))) => response,
                    };
                    return Poll::Ready(match response.r#type {
                        Some(deliver_response::Type::Status(code)) => {
                            if code == common::Status::Success as i32 {
                                self.state = State::Done;
                                None
                            } else {
                                let status = status_of(code);
                                Some(Err(self.fail(&status)))
                            }
                        }
                        Some(other) => Some(Ok(other)),
                        None => Some(Err(self.malformed("empty deliver response".into()))),
                    });
                }
            }
        }
    }
}

/// The gRPC status that stands for a Deliver status code the peer ended the stream with.
fn status_of(code: i32) -> tonic::Status {
    let name = common::Status::try_from(code)
        .map_or_else(|_| format!("status {code}"), |s| s.as_str_name().to_owned());
    let message = format!("the peer ended the deliver stream with {name}");
    match common::Status::try_from(code) {
        Ok(common::Status::Forbidden) => tonic::Status::permission_denied(message),
        Ok(common::Status::NotFound) => tonic::Status::not_found(message),
        Ok(common::Status::BadRequest) => tonic::Status::invalid_argument(message),
        Ok(common::Status::ServiceUnavailable) => tonic::Status::unavailable(message),
        _ => tonic::Status::unknown(message),
    }
}

/// Decodes a `common.Block` into a [`Block`].
///
/// # Errors
/// A description of the first part that does not decode.
pub(crate) fn decode_block(block: common::Block) -> Result<Block, String> {
    let bytes = block.encode_to_vec();
    let header = block.header.ok_or("block without a header")?;
    let data = block.data.map(|d| d.data).unwrap_or_default();
    let filter = block
        .metadata
        .and_then(|m| m.metadata.into_iter().nth(TRANSACTIONS_FILTER))
        .unwrap_or_default();
    let mut transactions = Vec::with_capacity(data.len());
    for (index, envelope) in data.into_iter().enumerate() {
        let channel_header = channel_header(&envelope)
            .map_err(|what| format!("block {}: transaction {index}: {what}", header.number))?;
        // A block not yet validated has no filter entry: NOT_VALIDATED.
        let code = filter.get(index).map_or(254, |c| i32::from(*c));
        transactions.push(BlockTransaction {
            transaction_id: channel_header.tx_id,
            header_type: channel_header.r#type,
            validation_code: ValidationCode::from(code),
            envelope,
        });
    }
    Ok(Block {
        number: header.number,
        previous_hash: header.previous_hash,
        data_hash: header.data_hash,
        transactions,
        bytes,
    })
}

fn channel_header(envelope: &[u8]) -> Result<common::ChannelHeader, &'static str> {
    let envelope = Envelope::decode(envelope).map_err(|_| "envelope does not decode")?;
    let payload = Payload::decode(envelope.payload.as_slice())
        .map_err(|_| "envelope payload does not decode")?;
    let header = payload.header.ok_or("payload without a header")?;
    common::ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|_| "channel header does not decode")
}

/// Converts a `protos.FilteredBlock` into a [`FilteredBlock`].
pub(crate) fn decode_filtered(block: pb::FilteredBlock) -> FilteredBlock {
    let number = block.number;
    let transactions = block
        .filtered_transactions
        .into_iter()
        .map(|tx| {
            let chaincode_events = match tx.data {
                Some(pb::filtered_transaction::Data::TransactionActions(actions)) => actions
                    .chaincode_actions
                    .into_iter()
                    .filter_map(|a| a.chaincode_event)
                    .map(|e| ChaincodeEvent {
                        block_number: number,
                        transaction_id: tx.txid.clone(),
                        chaincode_name: e.chaincode_id,
                        event_name: e.event_name,
                        payload: e.payload,
                    })
                    .collect(),
                None => Vec::new(),
            };
            FilteredTransaction {
                transaction_id: tx.txid,
                header_type: tx.r#type,
                validation_code: ValidationCode::from(tx.tx_validation_code),
                chaincode_events,
            }
        })
        .collect();
    FilteredBlock {
        number,
        transactions,
    }
}

/// What a Deliver stream hands out: full blocks ([`Blocks`]) or filtered blocks
/// ([`FilteredBlocks`]). Sealed: the peer's Deliver service has exactly these two kinds.
pub trait DeliverKind: sealed::Sealed {
    /// The decoded item.
    type Item;
    /// The stream's name, for `Debug`.
    #[doc(hidden)]
    const NAME: &'static str;
    /// Whether the stream is `DeliverFiltered` rather than `Deliver`.
    #[doc(hidden)]
    const FILTERED: bool;
    /// Decodes one deliver response; the reason if it is not this kind's item.
    #[doc(hidden)]
    fn decode(response: deliver_response::Type) -> Result<Self::Item, String>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Blocks {}
    impl Sealed for super::FilteredBlocks {}
}

/// Full blocks, as the peer's ledger holds them ([`Block`]).
#[derive(Debug)]
pub enum Blocks {}

/// Filtered blocks: transaction ids, validation codes, chaincode event names ([`FilteredBlock`]).
#[derive(Debug)]
pub enum FilteredBlocks {}

impl DeliverKind for Blocks {
    type Item = Block;
    const NAME: &'static str = "BlockEventStream";
    const FILTERED: bool = false;
    fn decode(response: deliver_response::Type) -> Result<Block, String> {
        match response {
            deliver_response::Type::Block(block) => decode_block(block),
            _ => Err("expected a block, got another deliver response".into()),
        }
    }
}

impl DeliverKind for FilteredBlocks {
    type Item = FilteredBlock;
    const NAME: &'static str = "FilteredBlockEventStream";
    const FILTERED: bool = true;
    fn decode(response: deliver_response::Type) -> Result<FilteredBlock, String> {
        match response {
            deliver_response::Type::FilteredBlock(block) => Ok(decode_filtered(block)),
            _ => Err("expected a filtered block, got another deliver response".into()),
        }
    }
}

/// A live stream of committed blocks of kind `K`, in order: read it with [`next`](Self::next)
/// or use it as a [`Stream`]. Dropping it cancels the server stream.
pub struct DeliverEvents<K: DeliverKind> {
    inner: DeliverStream,
    kind: PhantomData<fn() -> K>,
}

/// A live stream of committed [`Block`]s (the official clients' `BlockEvents`).
pub type BlockEventStream = DeliverEvents<Blocks>;

/// A live stream of committed [`FilteredBlock`]s (the official clients' `FilteredBlockEvents`).
pub type FilteredBlockEventStream = DeliverEvents<FilteredBlocks>;

impl<K: DeliverKind> std::fmt::Debug for DeliverEvents<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(K::NAME)
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl<K: DeliverKind> DeliverEvents<K> {
    pub(crate) fn new(channel: Channel, envelope: Envelope, endpoint: String) -> Self {
        Self {
            inner: DeliverStream::new(channel, envelope, endpoint, K::FILTERED),
            kind: PhantomData,
        }
    }

    /// The next block, waiting for it to be committed; `None` once the stream has ended.
    ///
    /// # Errors
    /// [`Error::BlockEvents`] when the peer refuses or the stream fails; [`Error::Malformed`]
    /// when a block does not decode or is not of this stream's kind.
    pub async fn next(&mut self) -> Option<Result<K::Item, Error>> {
        std::future::poll_fn(|cx| self.poll_block(cx)).await
    }

    fn poll_block(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<K::Item, Error>>> {
        Poll::Ready(match std::task::ready!(self.inner.poll_response(cx)) {
            None => None,
            Some(Err(e)) => Some(Err(e)),
            Some(Ok(response)) => {
                Some(K::decode(response).map_err(|reason| self.inner.malformed(reason)))
            }
        })
    }
}

impl<K: DeliverKind> Stream for DeliverEvents<K> {
    type Item = Result<K::Item, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_block(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::common::{BlockData, BlockHeader, BlockMetadata, ChannelHeader, Header};

    fn envelope(tx_id: &str, header_type: i32) -> Vec<u8> {
        Envelope {
            payload: Payload {
                header: Some(Header {
                    channel_header: ChannelHeader {
                        r#type: header_type,
                        tx_id: tx_id.into(),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                    signature_header: Vec::new(),
                }),
                data: Vec::new(),
            }
            .encode_to_vec(),
            signature: Vec::new(),
        }
        .encode_to_vec()
    }

    #[test]
    fn block_transactions_get_ids_and_validation_codes_from_the_filter() {
        let block = common::Block {
            header: Some(BlockHeader {
                number: 9,
                previous_hash: vec![1],
                data_hash: vec![2],
            }),
            data: Some(BlockData {
                data: vec![envelope("a", 3), envelope("b", 3)],
            }),
            metadata: Some(BlockMetadata {
                metadata: vec![Vec::new(), Vec::new(), vec![0, 11]],
            }),
        };
        let decoded = decode_block(block.clone()).unwrap();
        assert_eq!(decoded.number, 9);
        assert_eq!(decoded.bytes(), block.encode_to_vec());
        let ids: Vec<_> = decoded
            .transactions
            .iter()
            .map(|t| (t.transaction_id.as_str(), t.validation_code))
            .collect();
        assert_eq!(
            ids,
            [
                ("a", ValidationCode::VALID),
                ("b", ValidationCode::MVCC_READ_CONFLICT)
            ]
        );
    }

    #[test]
    fn a_block_with_a_garbage_transaction_is_malformed_not_a_panic() {
        let block = common::Block {
            header: Some(BlockHeader::default()),
            data: Some(BlockData {
                data: vec![vec![0xff, 0xff, 0xff]],
            }),
            metadata: None,
        };
        let err = decode_block(block).unwrap_err();
        assert!(err.contains("transaction 0"), "{err}");
        assert!(decode_block(common::Block::default()).is_err());
    }

    #[test]
    fn filtered_blocks_carry_their_chaincode_events() {
        let block = pb::FilteredBlock {
            channel_id: "ami".into(),
            number: 4,
            filtered_transactions: vec![pb::FilteredTransaction {
                txid: "t1".into(),
                r#type: 3,
                tx_validation_code: 0,
                data: Some(pb::filtered_transaction::Data::TransactionActions(
                    pb::FilteredTransactionActions {
                        chaincode_actions: vec![pb::FilteredChaincodeAction {
                            chaincode_event: Some(pb::ChaincodeEvent {
                                chaincode_id: "cc".into(),
                                tx_id: "t1".into(),
                                event_name: "E".into(),
                                payload: Vec::new(),
                            }),
                        }],
                    },
                )),
            }],
        };
        let decoded = decode_filtered(block);
        assert_eq!(decoded.number, 4);
        let tx = &decoded.transactions[0];
        assert_eq!(tx.transaction_id, "t1");
        assert_eq!(tx.validation_code, ValidationCode::VALID);
        assert_eq!(tx.chaincode_events[0].event_name, "E");
        assert_eq!(tx.chaincode_events[0].block_number, 4);
    }

    #[test]
    fn deliver_statuses_map_to_grpc_codes() {
        assert_eq!(status_of(403).code(), tonic::Code::PermissionDenied);
        assert_eq!(status_of(404).code(), tonic::Code::NotFound);
        assert_eq!(status_of(503).code(), tonic::Code::Unavailable);
        assert!(status_of(403).message().contains("FORBIDDEN"));
        assert!(status_of(7).message().contains("status 7"));
    }
}
