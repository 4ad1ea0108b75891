//! A concentrator resends a batch whose transaction failed as a whole, and loses nothing: the
//! contract on the in-process ledger, behind a ledger that fails chosen `SubmitReadings` calls
//! either before they reach the contract (nothing stored) or after (stored, but the client never
//! heard: a lost commit status).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bcami_api::Function;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Result, anyhow};
use bcami_client::{Caller, Ledger, LedgerError, Outcome};
use bcami_sdk::IntervalLength;
use meter_sim::embedded::Embedded;
use meter_sim::run::{RunConfig, Source, resend_wait};
use meter_sim::state::StateDir;
use meter_sim::stats::RunReport;

/// How the n-th `SubmitReadings` call (from 1) fails, if it does.
#[derive(Clone, Copy)]
enum Fault {
    /// The peer was unreachable: the contract never ran.
    Before,
    /// The transaction committed, but its commit status was lost.
    After,
}

struct Flaky {
    inner: Embedded,
    faults: Vec<(u32, Fault)>,
    calls: AtomicU32,
}

impl Ledger for Flaky {
    fn mode(&self) -> &'static str {
        self.inner.mode()
    }

    fn concentrator_identities(&self) -> usize {
        self.inner.concentrator_identities()
    }

    async fn submit(
        &self,
        role: Caller,
        function: Function,
        args: Vec<String>,
    ) -> Result<Outcome, LedgerError> {
        if function != Function::SubmitReadings {
            return self.inner.submit(role, function, args).await;
        }
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match self
            .faults
            .iter()
            .find(|(n, _)| *n == call)
            .map(|(_, f)| *f)
        {
            None => self.inner.submit(role, function, args).await,
            Some(Fault::Before) => {
                Err(anyhow!("endorse failed at gateway 127.0.0.1:1: Unavailable").into())
            }
            Some(Fault::After) => {
                let stored = self.inner.submit(role, function, args).await?;
                assert!(stored.is_ok(), "the faulted batch was refused: {stored:?}");
                Err(anyhow!("commit status not seen within the deadline").into())
            }
        }
    }

    async fn evaluate(
        &self,
        role: Caller,
        function: Function,
        args: Vec<String>,
    ) -> Result<Outcome, LedgerError> {
        self.inner.evaluate(role, function, args).await
    }
}

fn config(retries: u32) -> RunConfig {
    let source = Source::Synthetic {
        prefix: "RESEND".into(),
        meters: 4,
        intervals: 6,
        interval: IntervalLength::HALF_HOUR,
        seed: 3,
        start_ms: 1_704_067_200_000,
    };
    RunConfig {
        concentrators: 1,
        batch: 6,
        in_flight: 1,
        fresh_ledger: true,
        retries,
        ..RunConfig::new(source, "MDMS-1".parse().unwrap())
    }
}

async fn run(faults: Vec<(u32, Fault)>, retries: u32) -> RunReport {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(&dir.path().join("meters")).unwrap();
    let mdms = StateDir::open(&dir.path().join("mdms")).unwrap();
    let ledger = Flaky {
        inner: Embedded::new(),
        faults,
        calls: AtomicU32::new(0),
    };
    meter_sim::run::run(Arc::new(ledger), &state, &mdms, &config(retries))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_resent_and_every_reading_commits_once() {
    // 24 readings in 4 batches of 6: the 2nd call fails before the contract, the 4th after it
    // stored the batch (so the resend of that batch comes back `replayed`).
    let report = run(vec![(2, Fault::Before), (4, Fault::After)], 6).await;
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
async fn without_resends_the_failure_is_reported_and_nothing_else_is_lost() {
    let report = run(vec![(2, Fault::Before)], 0).await;
    assert_eq!(report.resent_transactions, 0);
    assert_eq!(report.failed_transactions, 1);
    assert_eq!(report.committed, 18);
    assert_eq!(report.rejected.get("transaction failed"), Some(&6));
    assert_eq!(report.mismatches, Some(0));
}

#[test]
fn resend_waits_back_off_to_fifteen_seconds() {
    let secs: Vec<u64> = (1..=7).map(|n| resend_wait(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 15, 15, 15]);
}
