//! A concentrator resends a batch whose transaction failed as a whole, and loses nothing: the
//! contract on the in-process ledger, behind a ledger that fails chosen `SubmitReadings` calls
//! either before they reach the contract (nothing stored) or after (stored, but the client never
//! heard: a lost commit status). With the contract's window shortened, an outage outlasts it and
//! the meters sign their held reports again; a meter's full store drops its oldest report.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::anyhow;
use bcami_api::Function;
use bcami_client::{Caller, Ledger, LedgerError, Outcome};
use bcami_sdk::store::ReportStore;
use meter_sim::embedded::Embedded;
use meter_sim::run::{RunConfig, resend_wait};
use meter_sim::stats::RunReport;

use common::{Folders, Script, Scripted};

/// How the n-th `SubmitReadings` call (from 1) fails, if it does.
#[derive(Clone, Copy)]
enum Fault {
    /// The peer was unreachable: the contract never ran.
    Before,
    /// The transaction committed, but its commit status was lost.
    After,
}

struct Flaky {
    faults: Vec<(u32, Fault)>,
    calls: AtomicU32,
}

impl Script for Flaky {
    async fn submit(
        &self,
        inner: &Embedded,
        role: Caller,
        function: Function,
        args: Vec<String>,
    ) -> Result<Outcome, LedgerError> {
        if function != Function::SubmitReadings {
            return inner.submit(role, function, args).await;
        }
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match self
            .faults
            .iter()
            .find(|(n, _)| *n == call)
            .map(|(_, f)| *f)
        {
            None => inner.submit(role, function, args).await,
            Some(Fault::Before) => {
                Err(anyhow!("endorse failed at gateway 127.0.0.1:1: Unavailable").into())
            }
            Some(Fault::After) => {
                let stored = inner.submit(role, function, args).await?;
                assert!(stored.is_ok(), "the faulted batch was refused: {stored:?}");
                Err(anyhow!("commit status not seen within the deadline").into())
            }
        }
    }
}

fn config(retries: Option<u32>) -> RunConfig {
    RunConfig {
        retries,
        ..common::config("RESEND", (4, 6, 3), (1, 6, 1), true)
    }
}

async fn run(faults: Vec<(u32, Fault)>, retries: Option<u32>) -> RunReport {
    run_with(faults, None, config(retries)).await.0
}

/// Runs `config` behind the faults, with the contract's window set to `past_ms` if given;
/// returns the report and the state folders for a look at the stores.
async fn run_with(
    faults: Vec<(u32, Fault)>,
    past_ms: Option<u64>,
    config: RunConfig,
) -> (RunReport, Folders) {
    let folders = Folders::new();
    let ledger = Scripted::new(Flaky {
        faults,
        calls: AtomicU32::new(0),
    });
    if let Some(past_ms) = past_ms {
        common::set_window(&ledger, past_ms).await;
    }
    let report = meter_sim::run::run(Arc::new(ledger), &folders.state, &folders.mdms, &config)
        .await
        .unwrap();
    (report, folders)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_resent_and_every_reading_commits_once() {
    // 24 readings in 4 batches of 6: the 2nd call fails before the contract, the 4th after it
    // stored the batch (so the resend of that batch comes back `replayed`).
    let report = run(vec![(2, Fault::Before), (4, Fault::After)], None).await;
    assert_eq!(report.submitted, 24);
    assert_eq!(report.transactions, 4);
    assert_eq!(report.resent_transactions, 2);
    assert_eq!(report.failed_transactions, 0);
    assert_eq!(report.committed, 24, "rejected: {:?}", report.rejected);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    // The MDMS read everything back: each reading once, as sent.
    assert_eq!(report.verified, Some(24));
    assert_eq!(report.mismatches, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concentrator_that_gives_up_leaves_the_rest_pending_in_the_meters() {
    // --retries 0: the 2nd batch fails and the concentrator gives up for this run; the meters
    // keep measuring and hold everything unconfirmed.
    let report = run(vec![(2, Fault::Before)], Some(0)).await;
    assert_eq!(report.resent_transactions, 0);
    assert_eq!(report.failed_transactions, 1);
    assert_eq!(report.committed, 6);
    assert_eq!(report.measured, 24);
    assert_eq!(report.pending, 18);
    assert_eq!(report.lost, 0);
    assert!(report.incomplete());
    assert!(
        report.table().starts_with("INCOMPLETE: 0 readings lost"),
        "{}",
        report.table()
    );
    assert_eq!(report.mismatches, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_window_is_ridden_out_by_re_signing() {
    // The window is 1 s; the 2nd batch fails three times (1 + 2 + 4 s of backoff), so its
    // readings are stale when they finally reach the contract: their meters sign them again.
    let faults = vec![(2, Fault::Before), (3, Fault::Before), (4, Fault::Before)];
    let (report, _dir) = run_with(faults, Some(1_000), config(None)).await;
    assert_eq!(report.measured, 24);
    assert_eq!(report.committed, 24, "rejected: {:?}", report.rejected);
    assert!(report.resigned >= 6, "re-signed {}", report.resigned);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.submitted, 24 + report.resigned);
    assert_eq!((report.lost, report.pending), (0, 0));
    assert_eq!(report.verified, Some(24));
    assert_eq!(report.mismatches, Some(0));
    assert!(!report.incomplete());
    assert!(report.table().starts_with("complete"), "{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_confirmation_then_a_long_outage_is_exported_once() {
    // The 2nd batch commits but its status is lost; the resends fail until the window (1 s) has
    // passed, so the same bytes come back `stale` and the meters sign them again: the ledger
    // holds those 6 intervals twice, with identical reports, and the MDMS counts them once.
    let faults = vec![(2, Fault::After), (3, Fault::Before), (4, Fault::Before)];
    let (report, _dir) = run_with(faults, Some(1_000), config(None)).await;
    assert_eq!(report.committed, 24, "rejected: {:?}", report.rejected);
    assert!(report.resigned >= 6, "re-signed {}", report.resigned);
    assert_eq!(report.duplicates_suppressed, 6);
    assert_eq!(report.conflicts, 0);
    assert_eq!((report.lost, report.pending), (0, 0));
    assert_eq!(report.mismatches, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_drops_the_oldest_intervals_and_names_them() {
    // The meters measure at 1,000 readings/s while the ledger is away for 3 s; each keeps 2
    // reports. Whatever the concentrator had already signed still commits; the rest of the
    // oldest intervals are dropped, named, and lost; nothing else is.
    let mut small = config(None);
    small.rate = Some(1_000.0);
    small.store_capacity = 2;
    let faults = vec![(1, Fault::Before), (2, Fault::Before)];
    let (report, folders) = run_with(faults, None, small).await;
    assert_eq!(report.measured, 24);
    assert!(report.dropped > 0, "nothing dropped: {}", report.table());
    assert_eq!(report.committed + report.dropped, 24, "{}", report.table());
    assert_eq!(report.lost, report.dropped);
    assert_eq!(report.pending, 0);
    assert!(report.incomplete());
    assert_eq!(report.dropped_intervals.len() as u64, report.dropped);
    assert_eq!(report.mismatches, Some(0));
    // Each meter names its dropped intervals oldest first, and none of them is on the ledger.
    let state = &folders.state;
    let mut named = 0;
    for meter in state.meters().unwrap() {
        assert!(meter.dropped.is_sorted(), "{:?}", meter.dropped);
        assert!(meter.store.is_empty());
        named += meter.dropped.len() as u64;
    }
    assert_eq!(named, report.dropped);

    // The next run (a fresh ledger, a normal store) reports only its own drops: none.
    let again = meter_sim::run::run(
        Arc::new(Embedded::new()),
        state,
        &folders.mdms,
        &config(None),
    )
    .await
    .unwrap();
    assert_eq!(again.measured, 24);
    assert_eq!((again.dropped, again.lost, again.pending), (0, 0, 0));
    assert!(!again.incomplete(), "{}", again.table());
    let kept: u64 = state
        .meters()
        .unwrap()
        .iter()
        .map(|m| m.dropped.len() as u64)
        .sum();
    assert_eq!(
        kept, report.dropped,
        "the state files keep what was dropped"
    );
}

#[test]
fn resend_waits_back_off_to_fifteen_seconds() {
    let secs: Vec<u64> = (1..=7).map(|n| resend_wait(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 15, 15, 15]);
}
