//! An in-memory ledger and stub with Fabric's semantics, for unit-testing contracts without a
//! peer: reads see only committed state (never the transaction's own writes), an empty value is
//! a delete, ranges are sorted, pagination uses bookmarks and is read-only, history appears after
//! commit (newest first), and a failed transaction commits nothing.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::contract::Contract;
use crate::error::{ContractError, StubError};
use crate::identity::Creator;
use crate::keys::{KeyRange, check_key};
use crate::stub::{
    Cursor, Events, Identity, KeyModification, KeyValue, Page, Query, QueryIter, State, Timestamp,
    TxContext, TxInfo,
};

#[derive(Debug, Default)]
struct Ledger {
    state: BTreeMap<String, Vec<u8>>,
    /// Per key, oldest first.
    history: HashMap<String, Vec<KeyModification>>,
    events: Vec<(String, String, Vec<u8>)>,
}

/// A shared in-memory world state. Cloning shares the same ledger.
#[derive(Debug, Clone, Default)]
pub struct MemoryLedger {
    inner: Arc<Mutex<Ledger>>,
}

/// What [`MemoryLedger::invoke`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The contract's result.
    pub result: Result<Vec<u8>, ContractError>,
    /// The event the transaction set, if it committed.
    pub event: Option<(String, Vec<u8>)>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // A poisoned lock only means another test thread panicked mid-update; the maps are
        // still structurally valid, so keep going.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Start a transaction.
    pub fn begin(&self, tx: TxContext) -> MemoryStub {
        MemoryStub {
            ledger: self.clone(),
            tx,
            writes: BTreeMap::new(),
            event: None,
            paginated: Cell::new(false),
        }
    }

    /// Run `contract` in a transaction and commit its writes if it succeeds (as a valid
    /// transaction would).
    pub fn invoke(&self, contract: &dyn Contract, tx: TxContext) -> Outcome {
        let mut stub = self.begin(tx);
        let result = contract.invoke(&mut stub);
        let event = if result.is_ok() { stub.commit() } else { None };
        Outcome { result, event }
    }

    /// The committed value of `key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().state.get(key).cloned()
    }

    /// Write committed state directly (test setup).
    pub fn seed(&self, key: &str, value: &[u8]) {
        self.lock().state.insert(key.to_owned(), value.to_vec());
    }

    /// Every event committed so far: (tx id, name, payload).
    pub fn events(&self) -> Vec<(String, String, Vec<u8>)> {
        self.lock().events.clone()
    }
}

/// One transaction against a [`MemoryLedger`].
#[derive(Debug)]
pub struct MemoryStub {
    ledger: MemoryLedger,
    tx: TxContext,
    /// Pending writes: `None` = delete.
    writes: BTreeMap<String, Option<Vec<u8>>>,
    event: Option<(String, Vec<u8>)>,
    paginated: Cell<bool>,
}

impl MemoryStub {
    /// The writes this transaction would commit (`None` = delete), in key order.
    pub fn pending_writes(&self) -> &BTreeMap<String, Option<Vec<u8>>> {
        &self.writes
    }

    /// Apply the writes to the ledger (with history) and publish the event. Returns the event.
    pub fn commit(self) -> Option<(String, Vec<u8>)> {
        let mut ledger = self.ledger.lock();
        for (key, value) in &self.writes {
            let modification = KeyModification {
                tx_id: self.tx.tx_id.clone(),
                value: value.clone().unwrap_or_default(),
                timestamp: Some(self.tx.timestamp),
                is_delete: value.is_none(),
            };
            ledger
                .history
                .entry(key.clone())
                .or_default()
                .push(modification);
            match value {
                Some(v) => ledger.state.insert(key.clone(), v.clone()),
                None => ledger.state.remove(key),
            };
        }
        if let Some((name, payload)) = &self.event {
            ledger
                .events
                .push((self.tx.tx_id.clone(), name.clone(), payload.clone()));
        }
        self.event
    }

    fn write(&mut self, key: &str, value: Option<Vec<u8>>) -> Result<(), StubError> {
        check_key(key)?;
        if self.paginated.get() {
            return Err(StubError::WriteAfterPagination);
        }
        self.writes.insert(key.to_owned(), value);
        Ok(())
    }
}

impl State for MemoryStub {
    fn state(&self, key: &str) -> Result<Option<Vec<u8>>, StubError> {
        check_key(key)?;
        Ok(self.ledger.get(key))
    }

    fn states(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StubError> {
        keys.iter().map(|k| self.state(k)).collect()
    }

    fn put_state(&mut self, key: &str, value: &[u8]) -> Result<(), StubError> {
        let value = (!value.is_empty()).then(|| value.to_vec());
        self.write(key, value)
    }

    fn delete_state(&mut self, key: &str) -> Result<(), StubError> {
        self.write(key, None)
    }
}

struct VecCursor<T>(std::vec::IntoIter<T>);

impl<T: Send> Cursor<T> for VecCursor<T> {
    fn advance(&mut self) -> Option<Result<T, StubError>> {
        self.0.next().map(Ok)
    }
    fn close(&mut self) -> Result<(), StubError> {
        Ok(())
    }
}

impl Query for MemoryStub {
    fn range(&self, range: &KeyRange) -> Result<QueryIter<KeyValue>, StubError> {
        let ledger = self.ledger.lock();
        let records: Vec<KeyValue> = ledger
            .state
            .range(range.start().to_owned()..)
            .take_while(|(k, _)| range.contains(k))
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        Ok(QueryIter::new(Box::new(VecCursor(records.into_iter()))))
    }

    fn range_page(
        &self,
        range: &KeyRange,
        page_size: u32,
        bookmark: &str,
    ) -> Result<Page<KeyValue>, StubError> {
        if !self.writes.is_empty() {
            return Err(StubError::PaginationAfterWrite);
        }
        self.paginated.set(true);
        let start = if bookmark.is_empty() {
            range.start()
        } else {
            bookmark
        };
        let ledger = self.ledger.lock();
        let mut matching = ledger
            .state
            .range(start.to_owned()..)
            .take_while(|(k, _)| range.contains(k))
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            });
        let limit = if page_size == 0 {
            usize::MAX
        } else {
            page_size as usize
        };
        let records: Vec<KeyValue> = matching.by_ref().take(limit).collect();
        let bookmark = matching.next().map(|kv| kv.key).unwrap_or_default();
        let fetched = u32::try_from(records.len()).unwrap_or(u32::MAX);
        Ok(Page {
            records,
            bookmark,
            fetched,
        })
    }

    fn history(&self, key: &str) -> Result<QueryIter<KeyModification>, StubError> {
        check_key(key)?;
        let ledger = self.ledger.lock();
        let mut versions = ledger.history.get(key).cloned().unwrap_or_default();
        versions.reverse();
        Ok(QueryIter::new(Box::new(VecCursor(versions.into_iter()))))
    }
}

impl Events for MemoryStub {
    fn set_event(&mut self, name: &str, payload: &[u8]) -> Result<(), StubError> {
        self.event = Some(crate::error::checked_event(name, payload)?);
        Ok(())
    }
}

impl TxInfo for MemoryStub {
    fn tx(&self) -> &TxContext {
        &self.tx
    }
}

impl Identity for MemoryStub {
    fn creator(&self) -> &Creator {
        &self.tx.creator
    }
}

/// A convenience for tests: a context with a fixed channel, an id, a timestamp and a creator.
pub fn test_context(
    tx_id: &str,
    seconds: i64,
    creator: Creator,
    function: &str,
    args: &[&str],
) -> TxContext {
    TxContext::new(
        "memory",
        tx_id,
        Timestamp { seconds, nanos: 0 },
        function,
        args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        creator,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Router;
    use crate::identity::X509Identity;
    use crate::keys::composite_key;

    fn creator() -> Creator {
        Creator::new(
            "Org1MSP",
            X509Identity::from_parts("CN=u", "CN=ca", &["client"], &[]),
        )
    }

    fn ctx(n: u32, f: &str, args: &[&str]) -> TxContext {
        test_context(&format!("tx{n}"), i64::from(n), creator(), f, args)
    }

    #[test]
    fn reads_do_not_see_own_writes_and_empty_value_deletes() {
        let ledger = MemoryLedger::new();
        ledger.seed("a", b"1");
        let mut stub = ledger.begin(ctx(1, "f", &[]));
        stub.put_state("a", b"2").unwrap();
        stub.put_state("b", b"x").unwrap();
        assert_eq!(stub.state("a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(stub.state("b").unwrap(), None);
        stub.put_state("a", b"").unwrap();
        stub.commit();
        assert_eq!(ledger.get("a"), None);
        assert_eq!(ledger.get("b"), Some(b"x".to_vec()));
    }

    #[test]
    fn empty_key_is_rejected() {
        let ledger = MemoryLedger::new();
        let mut stub = ledger.begin(ctx(1, "f", &[]));
        assert!(matches!(
            stub.put_state("", b"x"),
            Err(StubError::InvalidKey { .. })
        ));
    }

    #[test]
    fn ranges_sorted_and_exclusive_end() {
        let ledger = MemoryLedger::new();
        for k in ["c", "a", "b", "d"] {
            ledger.seed(k, k.as_bytes());
        }
        ledger.seed(&composite_key("t", &["x"]).unwrap(), b"z");
        let stub = ledger.begin(ctx(1, "f", &[]));
        let keys: Vec<String> = stub
            .range(&KeyRange::new("", "d").unwrap())
            .unwrap()
            .map(|r| r.unwrap().key)
            .collect();
        assert_eq!(keys, vec!["a", "b", "c"]);
        let comp: Vec<_> = stub.range(&KeyRange::all_composite()).unwrap().collect();
        assert_eq!(comp.len(), 1);
    }

    #[test]
    fn pagination_with_bookmarks_is_read_only() {
        let ledger = MemoryLedger::new();
        for i in 0..5 {
            ledger.seed(&format!("k{i}"), b"v");
        }
        let mut stub = ledger.begin(ctx(1, "f", &[]));
        let range = KeyRange::new("k", "l").unwrap();
        let p1 = stub.range_page(&range, 2, "").unwrap();
        assert_eq!(p1.records.len(), 2);
        assert_eq!(p1.bookmark, "k2");
        let p2 = stub.range_page(&range, 2, &p1.bookmark).unwrap();
        assert_eq!(p2.records[0].key, "k2");
        let p3 = stub.range_page(&range, 2, &p2.bookmark).unwrap();
        assert_eq!(p3.records.len(), 1);
        assert_eq!(p3.bookmark, "");
        assert_eq!(
            stub.put_state("x", b"1"),
            Err(StubError::WriteAfterPagination)
        );

        let mut writer = ledger.begin(ctx(2, "f", &[]));
        writer.put_state("x", b"1").unwrap();
        assert_eq!(
            writer.range_page(&range, 2, ""),
            Err(StubError::PaginationAfterWrite)
        );
    }

    #[test]
    fn history_newest_first_after_commit() {
        let ledger = MemoryLedger::new();
        for (n, v) in [(1, "a"), (2, "b"), (3, "")] {
            let mut s = ledger.begin(ctx(n, "f", &[]));
            s.put_state("k", v.as_bytes()).unwrap();
            let before: Vec<_> = s.history("k").unwrap().collect();
            assert_eq!(
                before.len(),
                (n - 1) as usize,
                "pending write must not be in history"
            );
            s.commit();
        }
        let s = ledger.begin(ctx(4, "f", &[]));
        let h: Vec<KeyModification> = s.history("k").unwrap().map(Result::unwrap).collect();
        assert_eq!(
            h.iter().map(|m| m.tx_id.as_str()).collect::<Vec<_>>(),
            ["tx3", "tx2", "tx1"]
        );
        assert!(h[0].is_delete);
        assert_eq!(h[1].value, b"b");
        assert_eq!(
            h[2].timestamp,
            Some(Timestamp {
                seconds: 1,
                nanos: 0
            })
        );
    }

    #[test]
    fn failed_invoke_commits_nothing_and_event_only_on_success() {
        let router = Router::new()
            .route("ok", |s, a| {
                s.put_state(a.str(0)?, b"v")?;
                s.set_event("done", b"p")?;
                Ok(b"fine".to_vec())
            })
            .route("fail", |s, _| {
                s.put_state("never", b"v")?;
                s.set_event("nope", b"")?;
                Err(ContractError::conflict("already there"))
            });
        let ledger = MemoryLedger::new();
        let ok = ledger.invoke(&router, ctx(1, "ok", &["k"]));
        assert_eq!(ok.result, Ok(b"fine".to_vec()));
        assert_eq!(ok.event, Some(("done".into(), b"p".to_vec())));
        let bad = ledger.invoke(&router, ctx(2, "fail", &[]));
        assert_eq!(bad.result.unwrap_err().status().code(), 409);
        assert_eq!(bad.event, None);
        assert_eq!(ledger.get("never"), None);
        assert_eq!(ledger.events().len(), 1);
        let unknown = ledger.invoke(&router, ctx(3, "nope", &[]));
        let err = unknown.result.unwrap_err();
        assert_eq!(err.status().code(), 400);
        assert!(err.message().contains("fail, ok"));
    }
}
