//! The stub API contracts code against: small capability traits, implemented by the peer-backed
//! stub and by [`crate::memory::MemoryStub`].
//!
//! Reads take `&self` and writes `&mut self`. Every call is synchronous and blocks until the peer
//! answers; the shim keeps at most one request of a transaction in flight, as Fabric requires.

use std::collections::BTreeMap;

use crate::error::StubError;
use crate::identity::Creator;
use crate::keys::KeyRange;

/// A ledger timestamp (the transaction's, taken from the client's proposal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second, 0..1e9.
    pub nanos: u32,
}

/// One key and its committed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The committed value (never empty: empty means deleted in Fabric).
    pub value: Vec<u8>,
}

/// One committed version of a key, from its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyModification {
    /// The transaction that wrote it.
    pub tx_id: String,
    /// The value written (empty for a delete).
    pub value: Vec<u8>,
    /// That transaction's timestamp.
    pub timestamp: Option<Timestamp>,
    /// Whether the transaction deleted the key.
    pub is_delete: bool,
}

/// One page of a paginated query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The records of this page.
    pub records: Vec<T>,
    /// Pass back to get the next page; empty when there is none.
    pub bookmark: String,
    /// How many records the peer fetched.
    pub fetched: u32,
}

/// A source of query results, advanced one record at a time.
pub trait Cursor<T>: Send {
    /// The next record, `None` when exhausted.
    fn advance(&mut self) -> Option<Result<T, StubError>>;
    /// Release the iterator at the peer before it is exhausted.
    fn close(&mut self) -> Result<(), StubError>;
}

/// An iterator over range or history results. Batches are fetched lazily (`QUERY_STATE_NEXT`).
/// Dropping it early is fine: the peer releases open iterators when the transaction ends; call
/// [`QueryIter::close`] to release it sooner.
pub struct QueryIter<T> {
    cursor: Box<dyn Cursor<T>>,
}

impl<T> QueryIter<T> {
    /// Wrap a cursor.
    pub fn new(cursor: Box<dyn Cursor<T>>) -> Self {
        Self { cursor }
    }
    /// Release the iterator at the peer now.
    pub fn close(mut self) -> Result<(), StubError> {
        self.cursor.close()
    }
}

impl<T> Iterator for QueryIter<T> {
    type Item = Result<T, StubError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.advance()
    }
}

impl<T> std::fmt::Debug for QueryIter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueryIter")
    }
}

/// Public world state: read, write, delete.
pub trait State {
    /// The committed value of `key`, `None` if absent. Never sees this transaction's own writes.
    fn state(&self, key: &str) -> Result<Option<Vec<u8>>, StubError>;
    /// Several keys at once (one `GET_STATE_MULTIPLE` per chunk when the peer supports it), in
    /// the order asked.
    fn states(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StubError>;
    /// Write `value` to `key`. An empty value is a delete, as in Fabric.
    fn put_state(&mut self, key: &str, value: &[u8]) -> Result<(), StubError>;
    /// Delete `key`.
    fn delete_state(&mut self, key: &str) -> Result<(), StubError>;
}

/// Range, paginated range and history queries.
pub trait Query {
    /// All committed keys in `range`, in key order.
    fn range(&self, range: &KeyRange) -> Result<QueryIter<KeyValue>, StubError>;
    /// One page of `range`: at most `page_size` records from `bookmark` (or the range start when
    /// empty). Allowed only in read-only transactions.
    fn range_page(
        &self,
        range: &KeyRange,
        page_size: u32,
        bookmark: &str,
    ) -> Result<Page<KeyValue>, StubError>;
    /// Every committed version of `key`, newest first.
    fn history(&self, key: &str) -> Result<QueryIter<KeyModification>, StubError>;
}

/// Chaincode events.
pub trait Events {
    /// Set the transaction's event (one per transaction; a later call replaces it). It is
    /// published only if the transaction commits as valid.
    fn set_event(&mut self, name: &str, payload: &[u8]) -> Result<(), StubError>;
}

/// Facts about the transaction being executed.
pub trait TxInfo {
    /// The transaction's context.
    fn tx(&self) -> &TxContext;
}

/// Who created the transaction.
pub trait Identity {
    /// The creator.
    fn creator(&self) -> &Creator;
}

/// Everything a contract can use. Write helpers against the smallest trait they need
/// (`fn f(s: &(impl State + ?Sized))`); `&mut dyn Stub` satisfies them all.
pub trait Stub: State + Query + Events + TxInfo + Identity {}

impl<T: State + Query + Events + TxInfo + Identity + ?Sized> Stub for T {}

/// The transaction's identifying facts and input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxContext {
    pub(crate) channel_id: String,
    pub(crate) tx_id: String,
    pub(crate) timestamp: Timestamp,
    pub(crate) function: String,
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) transient: BTreeMap<String, Vec<u8>>,
    pub(crate) is_init: bool,
    pub(crate) creator: Creator,
}

impl TxContext {
    /// A context for in-memory tests.
    pub fn new(
        channel_id: &str,
        tx_id: &str,
        timestamp: Timestamp,
        function: &str,
        args: Vec<Vec<u8>>,
        creator: Creator,
    ) -> Self {
        Self {
            channel_id: channel_id.to_owned(),
            tx_id: tx_id.to_owned(),
            timestamp,
            function: function.to_owned(),
            args,
            transient: BTreeMap::new(),
            is_init: false,
            creator,
        }
    }
    /// Add transient data (builder style).
    pub fn with_transient(mut self, key: &str, value: Vec<u8>) -> Self {
        self.transient.insert(key.to_owned(), value);
        self
    }
    /// The channel.
    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }
    /// The transaction id.
    pub fn tx_id(&self) -> &str {
        &self.tx_id
    }
    /// The transaction timestamp from the proposal (the same on every endorser).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
    /// The function name (`args[0]` of the chaincode input).
    pub fn function(&self) -> &str {
        &self.function
    }
    /// The arguments after the function name.
    pub fn args(&self) -> &[Vec<u8>] {
        &self.args
    }
    /// The transient map of the proposal (never written to the ledger).
    pub fn transient(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.transient
    }
    /// Whether this is an `INIT` invocation.
    pub fn is_init(&self) -> bool {
        self.is_init
    }
    /// The creator.
    pub fn creator(&self) -> &Creator {
        &self.creator
    }
}
