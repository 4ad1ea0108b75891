//! meter-sim against the live network (run by `scripts/test.sh` after `network.sh deploy`):
//! meters → concentrators → Fabric → MDMS, with the `bcami` chaincode.
//!
//! The network's connection details come from `$BCAMI_RUN_DIR/network.json` (or
//! `$BCAMI_NETWORK_JSON`); without them every test fails saying so. Meter IDs are unique per test
//! run, so reruns on one network never collide; the network's one MDMS key is kept beside
//! `network.json` (`<run dir>/mdms`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bcami_api::RejectReason;
use bcami_client::{Fabric, Settings};
use bcami_e2e::NetworkEnv;
use bcami_sdk::IntervalLength;
use meter_sim::run::{RunConfig, Source};
use meter_sim::state::StateDir;
use meter_sim::stats::RunReport;

/// The network settings, or a panic that says how to run these tests.
fn settings() -> Settings {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            let env = NetworkEnv::load().map_err(|e| e.to_string())?;
            Ok(Settings {
                mdms_state: env.run_dir.join("mdms"),
                network: env.network,
                chaincode: "bcami".to_owned(),
            })
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn unique_prefix(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{label}-{nanos}")
}

fn config(source: Source, batch: usize, in_flight: usize, tamper: usize) -> RunConfig {
    RunConfig {
        batch,
        in_flight,
        tamper,
        ..RunConfig::new(source, "MDMS-1".parse().unwrap())
    }
}

fn synthetic(prefix: &str, meters: usize, intervals: usize) -> Source {
    Source::Synthetic {
        prefix: prefix.to_owned(),
        meters,
        intervals,
        interval: IntervalLength::HALF_HOUR,
        seed: 11,
        start_ms: 1_704_067_200_000, // 2024-01-01
    }
}

async fn run(state: &Path, config: &RunConfig) -> RunReport {
    let settings = settings();
    let fabric = Fabric::connect(&settings)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the network: {e:#}"));
    let state = StateDir::open(state).unwrap();
    let mdms_state = StateDir::open(&settings.mdms_state).unwrap();
    meter_sim::run::run(Arc::new(fabric), &state, &mdms_state, config)
        .await
        .unwrap_or_else(|e| panic!("meter-sim run failed: {e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_meters_round_trip_with_zero_mismatches_and_resume() {
    let state = tempfile::tempdir().unwrap();
    let config = config(synthetic(&unique_prefix("E2E-RT"), 100, 4), 100, 4, 0);
    let report = run(state.path(), &config).await;
    assert_eq!(report.mode, "fabric");
    assert_eq!(report.meters_registered, 100);
    assert_eq!(report.submitted, 400);
    assert_eq!(report.committed, 400, "rejected: {:?}", report.rejected);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.verified, Some(400));
    assert_eq!(report.mismatches, Some(0));

    // Resumed from the state folder: nobody registers again, the next intervals go out.
    let again = run(state.path(), &config).await;
    assert_eq!(again.meters_registered, 0);
    assert_eq!(again.committed, 400, "rejected: {:?}", again.rejected);
    assert_eq!(again.mismatches, Some(0));
    let sent = StateDir::open(state.path()).unwrap().sent().unwrap();
    assert_eq!(sent.len(), 800);
    let first_meter: Vec<u64> = sent
        .iter()
        .filter(|s| s.meter_id.ends_with("-000001"))
        .map(|s| s.report.interval_start.unix_millis())
        .collect();
    let mut sorted = first_meter.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 8, "eight distinct intervals: {first_meter:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_reading_is_rejected_by_reason_and_the_rest_of_its_batch_commits() {
    let state = tempfile::tempdir().unwrap();
    // 10 meters × 4 intervals in one lane, one batch of 40; one reading corrupted in flight.
    let config = config(synthetic(&unique_prefix("E2E-TAMPER"), 10, 4), 40, 1, 1);
    let report = run(state.path(), &config).await;
    assert_eq!(report.transactions, 1);
    assert_eq!(report.failed_transactions, 0);
    assert_eq!(report.submitted, 40);
    assert_eq!(report.committed, 39);
    assert_eq!(
        report.rejected.get(RejectReason::BadSignature.code()),
        Some(&1),
        "{:?}",
        report.rejected
    );
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.mismatches, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_the_shipped_london_csv() {
    let state = tempfile::tempdir().unwrap();
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../meter-sim/testdata/london-sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let replay = meter_sim::replay::parse(&text).unwrap();
    // The households are named by their LCLid; make them unique to this run.
    let prefix = unique_prefix("E2E");
    let replay = meter_sim::replay::Replay {
        households: replay
            .households
            .into_iter()
            .map(|(id, series)| (format!("{prefix}-{id}").parse().unwrap(), series))
            .collect(),
        ..replay
    };
    let config = config(
        Source::Replay {
            label: csv.display().to_string(),
            replay,
        },
        50,
        2,
        0,
    );
    let report = run(state.path(), &config).await;
    assert_eq!(report.meters, 3);
    assert_eq!(report.null_rows, 1);
    assert_eq!(report.committed, 143, "rejected: {:?}", report.rejected);
    assert_eq!(report.mismatches, Some(0));
    // The historical intervals came back from the MDMS inside the decrypted reports.
    let sent = StateDir::open(state.path()).unwrap().sent().unwrap();
    assert!(
        sent.iter()
            .any(|s| s.report.interval_start.unix_millis() == 1_350_000_000_000)
    );
}
