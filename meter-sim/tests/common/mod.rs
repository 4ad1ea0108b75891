//! What the embedded-ledger tests of `run` share: the state folders, a synthetic source, the
//! clock, the contract's window, and a ledger that scripts what chosen calls do.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use bcami_api::{ConfigUpdate, Function, Window};
use bcami_client::{Caller, Client, Ledger, LedgerError, Outcome};
use bcami_sdk::{IntervalLength, Timestamp};
use meter_sim::embedded::Embedded;
use meter_sim::run::{RunConfig, Source};
use meter_sim::state::StateDir;

/// A temporary folder with the meters' state in `meters/` and the MDMS's in `mdms/`.
pub struct Folders {
    /// The folder (removed when dropped).
    pub dir: tempfile::TempDir,
    /// `meters/`.
    pub state: StateDir,
    /// `mdms/`.
    pub mdms: StateDir,
}

impl Folders {
    pub fn new() -> Folders {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("meters")).unwrap();
        let mdms = StateDir::open(&dir.path().join("mdms")).unwrap();
        Folders { dir, state, mdms }
    }
}

/// `meters` synthetic half-hourly households `<prefix>-00000N` of `intervals` intervals from
/// 2024-01-01, MDMS `MDMS-1`, with the other settings given.
pub fn config(
    prefix: &str,
    (meters, intervals, seed): (usize, usize, u64),
    (concentrators, batch, in_flight): (usize, usize, usize),
    fresh_ledger: bool,
) -> RunConfig {
    let source = Source::Synthetic {
        prefix: prefix.into(),
        meters,
        intervals,
        interval: IntervalLength::HALF_HOUR,
        seed,
        start_ms: 1_704_067_200_000,
    };
    RunConfig {
        concentrators,
        batch,
        in_flight,
        fresh_ledger,
        ..RunConfig::new(source, "MDMS-1".parse().unwrap())
    }
}

/// The system clock, as the contract's window sees it.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_unix_millis(u64::try_from(ms).unwrap())
}

/// Shortens the contract's window on `ledger` to `past_ms` into the past (a minute ahead), so
/// that an outage of a few seconds outlasts it.
pub async fn set_window<L: Ledger>(ledger: &L, past_ms: u64) {
    let update = ConfigUpdate {
        window: Some(Window {
            past_ms,
            future_ms: 60_000,
        }),
        ..ConfigUpdate::default()
    };
    Client::new(ledger)
        .configure(Caller::Administrator, &update)
        .await
        .unwrap();
}

/// What a [`Scripted`] ledger does with a submit: anything, given the embedded ledger behind it.
pub trait Script: Send + Sync + 'static {
    fn submit(
        &self,
        inner: &Embedded,
        role: Caller,
        function: Function,
        args: Vec<String>,
    ) -> impl Future<Output = Result<Outcome, LedgerError>> + Send;
}

/// The contract on the in-process ledger, its submits going through a [`Script`]; queries go
/// straight to it.
pub struct Scripted<S> {
    pub inner: Embedded,
    pub script: S,
}

impl<S: Script> Scripted<S> {
    pub fn new(script: S) -> Scripted<S> {
        Scripted {
            inner: Embedded::new(),
            script,
        }
    }
}

impl<S: Script> Ledger for Scripted<S> {
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
        self.script.submit(&self.inner, role, function, args).await
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
