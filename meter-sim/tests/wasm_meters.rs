//! `--meter-runtime wasm` on the embedded ledger: every key, registration and reading comes from
//! a wasm instance, the MDMS reads them all back, and a meter out of fuel stops alone with its
//! error in the report while the run completes. After an outage longer than the contract's
//! window, the readings the meters sign again (store-and-forward) come from their instances too.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use bcami_api::Function;
use bcami_client::{Caller, Ledger, LedgerError, Outcome};
use bcami_wasm_host::{Limits, MeterModule, PAGE};
use meter_sim::embedded::Embedded;
use meter_sim::run::RunConfig;
use meter_sim::runtime::RuntimeConfig;

use common::{Folders, Script, Scripted};

/// The module, built once per test binary into this build's target directory.
fn module() -> &'static PathBuf {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap();
        MeterModule::build(&repo, target).unwrap();
        MeterModule::built_path(target)
    })
}

fn config(prefix: &str, limits: Limits) -> RunConfig {
    RunConfig {
        meter_runtime: RuntimeConfig::Wasm {
            module: module().clone(),
            limits,
        },
        ..common::config(prefix, (3, 4, 3), (2, 6, 2), true)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_meters_register_and_send_readings_the_mdms_reads_back() {
    let Folders {
        dir: _dir,
        state,
        mdms: mdms_state,
    } = Folders::new();
    let ledger = Arc::new(Embedded::new());
    let report = meter_sim::run::run(
        ledger,
        &state,
        &mdms_state,
        &config("WASM", Limits::default()),
    )
    .await
    .unwrap();
    assert_eq!(report.meters_registered, 3);
    assert_eq!(report.committed, 12);
    assert_eq!(report.verified, Some(12));
    assert_eq!(report.mismatches, Some(0));
    let runtime = report
        .meter_runtime
        .expect("the wasm section of the report");
    assert!(
        runtime.failed_meters.is_empty(),
        "{:?}",
        runtime.failed_meters
    );
    assert_eq!(runtime.operations["keygen"].count, 3);
    assert_eq!(runtime.operations["registration"].count, 3);
    let reading = &runtime.operations["reading"];
    assert_eq!(reading.count, 12);
    assert!(reading.fuel_min > 0 && reading.fuel_min <= reading.fuel_max);
    assert_eq!(reading.memory_bytes, PAGE);
    assert!(reading.used_bytes <= PAGE && reading.heap_bytes > 0 && reading.stack_bytes > 0);
    let table = meter_sim::stats::RunReport {
        meter_runtime: Some(runtime),
        ..Default::default()
    }
    .table();
    assert!(
        table.lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words == ["meters", "stopped", "0"]
        }),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meter_out_of_fuel_stops_alone_with_a_clear_error() {
    let Folders {
        dir: _dir,
        state,
        mdms: mdms_state,
    } = Folders::new();
    let ledger = Arc::new(Embedded::new());
    // Enough for keygen and registration (2.3 M and 5.7 M fuel, BENCHMARKS.md), not a reading
    // (10.7 M): the meters register, then each stops at its first reading.
    let limits = Limits {
        fuel_per_operation: 8_000_000,
        ..Limits::default()
    };
    let report = meter_sim::run::run(ledger, &state, &mdms_state, &config("FUEL", limits))
        .await
        .unwrap();
    assert_eq!(report.meters_registered, 3);
    assert_eq!(report.committed, 0);
    assert_eq!(report.mismatches, Some(0));
    let runtime = report.meter_runtime.unwrap();
    assert_eq!(
        runtime.failed_meters.len(),
        3,
        "{:?}",
        runtime.failed_meters
    );
    for (id, error) in &runtime.failed_meters {
        assert!(id.starts_with("FUEL-"), "{id}");
        assert_eq!(
            error,
            "meter ran out of fuel: the budget is 8000000 per operation"
        );
    }
}

/// The embedded ledger, with `SubmitReadings` calls 2 to 4 failing before the contract runs (an
/// unreachable peer).
struct Outage {
    calls: AtomicU32,
}

impl Script for Outage {
    async fn submit(
        &self,
        inner: &Embedded,
        role: Caller,
        function: Function,
        args: Vec<String>,
    ) -> Result<Outcome, LedgerError> {
        if function == Function::SubmitReadings
            && (2..=4).contains(&(self.calls.fetch_add(1, Ordering::SeqCst) + 1))
        {
            return Err(
                anyhow::anyhow!("endorse failed at gateway 127.0.0.1:1: Unavailable").into(),
            );
        }
        inner.submit(role, function, args).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_signed_again_after_an_outage_come_from_the_wasm_instances() {
    let Folders {
        dir: _dir,
        state,
        mdms: mdms_state,
    } = Folders::new();
    let ledger = Scripted::new(Outage {
        calls: AtomicU32::new(0),
    });
    // A 1 s window: the 2nd batch fails three times (1 + 2 + 4 s of backoff), so its readings
    // are stale when they reach the contract and their meters sign them again.
    common::set_window(&ledger, 1_000).await;
    let config = RunConfig {
        concentrators: 1,
        in_flight: 1,
        ..config("RESIGN", Limits::default())
    };
    let report = meter_sim::run::run(Arc::new(ledger), &state, &mdms_state, &config)
        .await
        .unwrap();
    assert_eq!(report.committed, 12, "rejected: {:?}", report.rejected);
    assert!(report.resigned >= 6, "re-signed {}", report.resigned);
    assert_eq!((report.lost, report.pending), (0, 0));
    assert_eq!(report.verified, Some(12));
    assert_eq!(report.mismatches, Some(0));
    let runtime = report.meter_runtime.unwrap();
    assert!(
        runtime.failed_meters.is_empty(),
        "{:?}",
        runtime.failed_meters
    );
    assert_eq!(runtime.operations["reading"].count, 12);
    assert_eq!(
        runtime.operations[meter_sim::runtime::RESIGNED].count,
        report.resigned
    );
    assert_eq!(report.submitted, 12 + report.resigned);
}
