//! `run` over an explicit clock, RNG and observer (the contract on the in-process ledger): with a
//! fixed clock and a seeded RNG two runs make the same meters, MDMS and messages; the observer
//! hears the phases in order with exact counts, and the library prints nothing itself.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bcami_client::Caller;
use meter_sim::embedded::Embedded;
use meter_sim::observe::{Event, FixedClock, Phase, Recorder};
use meter_sim::run::{Env, RunConfig, run_with};
use meter_sim::stats::RunReport;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use common::Folders;

/// One run on a fresh embedded ledger with `clock`, an RNG seeded with `seed` and a recorder.
async fn recorded_run(
    config: &RunConfig,
    clock: FixedClock,
    seed: u64,
) -> (RunReport, Vec<Event>, Folders) {
    let folders = Folders::new();
    let recorder = Arc::new(Recorder::default());
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let env = Env {
        clock: Arc::new(clock),
        rng: &mut rng,
        observer: Arc::clone(&recorder) as _,
    };
    let ledger = Arc::new(Embedded::new());
    let report = run_with(ledger, &folders.state, &folders.mdms, config, env)
        .await
        .unwrap();
    (report, recorder.events(), folders)
}

/// Every file under `root`, by path relative to it, with its bytes.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_clock_and_a_seeded_rng_make_the_same_run_twice() {
    // One lane: the order in which meters sign (and draw from the lane's RNG) is the plan's.
    let config = common::config("SAME", (3, 4, 5), (1, 4, 1), true);
    let clock = FixedClock(common::now());
    let (first, first_events, first_dir) = recorded_run(&config, clock, 42).await;
    let (second, second_events, second_dir) = recorded_run(&config, clock, 42).await;
    assert_eq!(first.committed, 12);
    assert_eq!(second.committed, 12);
    assert_eq!(first_events, second_events);
    let first_files = files(first_dir.dir.path());
    assert!(
        first_files.keys().any(|name| name.starts_with("meters")),
        "{:?}",
        first_files.keys()
    );
    assert!(first_files.keys().any(|name| name.starts_with("mdms")));
    assert_eq!(first_files, files(second_dir.dir.path()));

    // Another seed: other keys.
    let (_, _, other_dir) = recorded_run(&config, clock, 43).await;
    assert_ne!(first_files, files(other_dir.dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_observer_hears_every_phase_in_order_with_exact_counts() {
    let config = common::config("EVENTS", (3, 4, 5), (1, 4, 1), true);
    let (report, events, _dir) = recorded_run(&config, FixedClock(common::now()), 7).await;
    assert_eq!(report.committed, 12);
    assert_eq!(report.transactions, 3);
    let registration = Phase::Registration;
    let mut expected = vec![
        Event::Provisioning { meters: 3 },
        Event::Registering {
            meters: 3,
            concentrators: 1,
        },
        Event::PhaseStarted {
            phase: registration,
            steps: 3,
        },
    ];
    expected.extend(std::iter::repeat_n(
        Event::Progressed {
            phase: registration,
        },
        3,
    ));
    expected.extend([
        Event::PhaseFinished {
            phase: registration,
        },
        Event::Sending {
            readings: 12,
            meters: 3,
            batch: 4,
            concentrators: 1,
            lanes: 1,
            tampered: None,
        },
        Event::PhaseStarted {
            phase: Phase::Readings,
            steps: 12,
        },
    ]);
    expected.extend(std::iter::repeat_n(
        Event::BatchCommitted {
            concentrator: Caller::Concentrator(0),
            readings: 4,
        },
        3,
    ));
    expected.extend([
        Event::PhaseFinished {
            phase: Phase::Readings,
        },
        Event::ReadingBack { meters: 3 },
        Event::PhaseStarted {
            phase: Phase::ReadBack,
            steps: 3,
        },
    ]);
    expected.extend(std::iter::repeat_n(
        Event::Progressed {
            phase: Phase::ReadBack,
        },
        3,
    ));
    expected.push(Event::PhaseFinished {
        phase: Phase::ReadBack,
    });
    assert_eq!(events, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_run_announces_its_targets_and_settles_every_reading() {
    let config = RunConfig {
        tamper: 2,
        ..common::config("TAMPER", (2, 3, 5), (1, 3, 1), true)
    };
    let (report, events, _dir) = recorded_run(&config, FixedClock(common::now()), 9).await;
    assert_eq!(report.committed, 4, "rejected: {:?}", report.rejected);
    assert!(events.contains(&Event::Sending {
        readings: 6,
        meters: 2,
        batch: 3,
        concentrators: 1,
        lanes: 1,
        tampered: Some(2),
    }));
    let settled: u64 = events
        .iter()
        .filter_map(|e| match e {
            Event::BatchCommitted { readings, .. } => Some(*readings),
            _ => None,
        })
        .sum();
    assert_eq!(settled, 6, "stored and refused readings are settled");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::CheckFailed { .. })),
        "the refused readings never reached the ledger: {events:?}"
    );
}
