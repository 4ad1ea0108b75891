//! Black-box tests of the `meter-sim` binary: exit codes, messages, the embedded round trip and
//! replay of the shipped test data.

// The whole file is test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bcami_api::RejectReason;
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meter-sim"))
}

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn run(args: &[&str], state: &Path) -> Output {
    bin()
        .arg("--state")
        .arg(state)
        .args(args)
        // No network: make sure a developer's running network is not picked up.
        .env("BCAMI_RUN_DIR", state.join("no-network"))
        .output()
        .expect("meter-sim runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status.code(),
        stderr(output)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is the JSON report")
}

#[test]
fn embedded_round_trip_commits_everything_with_zero_mismatches() {
    let state = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--embedded",
            "--meters",
            "6",
            "--days",
            "0.25",
            "--batch",
            "10",
            "--concentrators",
            "3",
            "--json",
        ],
        state.path(),
    );
    let report = json(&out);
    assert_eq!(report["mode"], "embedded");
    // 6 meters × 12 half-hours
    assert_eq!(report["submitted"], 72);
    assert_eq!(report["committed"], 72);
    assert_eq!(report["rejected"], serde_json::json!({}));
    assert_eq!(report["verified"], 72);
    assert_eq!(report["mismatches"], 0);
    // 3 concentrators share the 2 client identities, and the report says so.
    assert_eq!(report["concentrators"], 3);
    assert_eq!(report["identities"], 2);
    assert!(report["latency"]["samples"].as_u64().unwrap() > 0);
    // What the meters sent is logged for the MDMS check.
    let sent = std::fs::read_to_string(state.path().join("embedded/sent.csv")).unwrap();
    assert_eq!(sent.lines().count(), 1 + 72);
}

#[test]
fn human_table_by_default() {
    let state = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--embedded",
            "--meters",
            "2",
            "--days",
            "0.0625",
            "--batch",
            "5",
        ],
        state.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    for row in [
        "submitted",
        "committed",
        "rejected",
        "readings/s",
        "latency p50/p95/p99",
        "mismatches",
    ] {
        assert!(table.contains(row), "no {row:?} row in\n{table}");
    }
}

#[test]
fn without_a_network_it_says_so_and_runs_embedded() {
    let state = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("--state")
        .arg(state.path())
        .args([
            "run",
            "--meters",
            "2",
            "--days",
            "0.0625",
            "--json",
            "--network-env",
        ])
        .arg(state.path().join("absent/network.env"))
        .output()
        .unwrap();
    let report = json(&out);
    assert_eq!(report["mode"], "embedded");
    assert_eq!(report["committed"], 6);
    let err = stderr(&out);
    assert!(err.contains("no network is up"), "{err}");
    assert!(err.contains("running embedded"), "{err}");
}

#[test]
fn a_tampered_reading_is_rejected_by_reason_and_the_rest_of_its_batch_commits() {
    let state = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--embedded",
            "--meters",
            "4",
            "--days",
            "0.125",
            "--batch",
            "24",
            "--in-flight",
            "1",
            "--tamper",
            "1",
            "--json",
        ],
        state.path(),
    );
    // The refused reading is lost: the run says so first and exits 4.
    assert_eq!(out.status.code(), Some(4), "stderr:\n{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "INCOMPLETE: 1 readings lost (0 dropped from full meter stores, 1 refused), 0 pending"
        ),
        "{}",
        stderr(&out)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    assert_eq!(report["lost"], 1);
    // One lane, one batch of 4 meters × 6 half-hours, one reading corrupted in flight.
    assert_eq!(report["transactions"], 1);
    assert_eq!(report["submitted"], 24);
    assert_eq!(report["committed"], 23);
    assert_eq!(
        report["rejected"],
        serde_json::json!({ RejectReason::BadSignature.code(): 1 })
    );
    assert_eq!(report["mismatches"], 0);
}

#[test]
fn replays_the_shipped_london_csv() {
    let state = tempfile::tempdir().unwrap();
    let csv = testdata("london-sample.csv");
    let out = run(
        &[
            "run",
            "--embedded",
            "--replay",
            csv.to_str().unwrap(),
            "--batch",
            "50",
            "--json",
        ],
        state.path(),
    );
    let report = json(&out);
    // 3 households × 48 half-hours, one of them Null.
    assert_eq!(report["meters"], 3);
    assert_eq!(report["null_rows"], 1);
    assert_eq!(report["bad_rows"], 0);
    assert_eq!(report["committed"], 143);
    assert_eq!(report["mismatches"], 0);
    // The historical interval travels inside the report: 2012-10-12 00:00 UTC is the first.
    let sent = std::fs::read_to_string(state.path().join("embedded/sent.csv")).unwrap();
    let first: Vec<&str> = sent
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f[1] == "MAC000002" && f[3] == "1350000000000")
        .expect("MAC000002's first interval was sent");
    assert_eq!(first[4], "1800");
    assert_eq!(first[5], "75", "0.075 kWh = 75 Wh");
}

#[test]
fn replay_reports_bad_rows_by_line_and_sends_the_good_ones() {
    let state = tempfile::tempdir().unwrap();
    let csv = testdata("london-bad-rows.csv");
    let out = run(
        &[
            "run",
            "--embedded",
            "--replay",
            csv.to_str().unwrap(),
            "--json",
        ],
        state.path(),
    );
    let report = json(&out);
    assert_eq!(report["committed"], 2);
    assert_eq!(report["null_rows"], 1);
    assert_eq!(report["bad_rows"], 4);
    let err = stderr(&out);
    for line in [
        "line 4:",
        "line 5:",
        "line 6:",
        "line 7: duplicate of line 2",
    ] {
        assert!(err.contains(line), "no {line:?} in\n{err}");
    }
}

#[test]
fn the_same_seed_gives_the_same_readings() {
    let energies = |seed: &str| {
        let state = tempfile::tempdir().unwrap();
        let out = run(
            &[
                "run",
                "--embedded",
                "--meters",
                "2",
                "--days",
                "0.125",
                "--seed",
                seed,
                "--json",
            ],
            state.path(),
        );
        json(&out);
        let sent = std::fs::read_to_string(state.path().join("embedded/sent.csv")).unwrap();
        let mut rows: Vec<String> = sent
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{},{},{}", f[1], f[3], f[5])
            })
            .collect();
        rows.sort();
        rows
    };
    let a = energies("7");
    assert_eq!(a.len(), 12);
    assert_eq!(a, energies("7"));
    assert_ne!(a, energies("8"));
}

#[test]
fn bad_command_lines_exit_2_and_say_what_is_wrong() {
    let state = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--embedded", "--batch", "0"], "--batch"),
        (&["run", "--embedded", "--batch", "1001"], "--batch"),
        (&["run", "--embedded", "--meters", "0"], "--meters"),
        (&["run", "--embedded", "--interval", "5x"], "--interval"),
        (&["run", "--embedded", "--days=-1"], "--days"),
        (&["run", "--embedded", "--start", "2024-02-30"], "--start"),
        (
            &["run", "--embedded", "--replay", "/nonexistent.csv"],
            "/nonexistent.csv",
        ),
        (&["run", "--embedded", "--no-such-flag"], "--no-such-flag"),
        (&["tx", "hid", "--meter-id", "a/b"], "'/'"),
        (
            &["tx", "register", "--meter-id", "SM-1"],
            "tx keygen --meter-id SM-1",
        ),
        (&["tx", "decrypt", "--reading", "!!"], "base64"),
        (&["mdms", "export", "--from", "yesterday"], "--from"),
    ];
    for (args, needle) in cases {
        let out = run(args, state.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_replay_file_without_a_header_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let csv = state.path().join("no-header.csv");
    std::fs::write(&csv, "MAC1,2012-10-12 00:30:00,0.1\n").unwrap();
    let out = run(
        &["run", "--embedded", "--replay", csv.to_str().unwrap()],
        state.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("LCLid"), "{}", stderr(&out));
}

#[test]
fn mdms_export_needs_a_network() {
    let state = tempfile::tempdir().unwrap();
    let out = run(&["mdms", "export", "--out", "x.csv"], state.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no network is up"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn offline_tx_commands_build_messages_the_mdms_can_open() {
    let state = tempfile::tempdir().unwrap();
    let text = |args: &[&str]| {
        let out = run(args, state.path());
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let hid = text(&["tx", "hid", "--meter-id", "SM-1"]);
    assert_eq!(hid.len(), 64);
    let public = text(&["tx", "keygen", "--meter-id", "SM-1"]);
    assert_eq!(public.len(), 66);
    assert_eq!(
        text(&["tx", "keygen", "--meter-id", "SM-1"]),
        public,
        "keygen keeps the key"
    );
    let mdms = text(&["tx", "mdms-keygen"]);
    assert_eq!(mdms.len(), 66);
    let registration = text(&[
        "tx",
        "register",
        "--meter-id",
        "SM-1",
        "--timestamp-ms",
        "1700000000000",
    ]);
    assert!(!registration.is_empty());
    assert!(!text(&["tx", "mdms-register"]).is_empty());
    let reading = text(&[
        "tx",
        "reading",
        "--meter-id",
        "SM-1",
        "--energy-wh",
        "412",
        "--timestamp-ms",
        "1700000001000",
        "--interval-start-ms",
        "1699998000000",
    ]);
    let opened: Value =
        serde_json::from_str(&text(&["tx", "decrypt", "--reading", &reading])).unwrap();
    assert_eq!(opened["hid"], hid.as_str());
    assert_eq!(opened["timestamp_ms"], 1_700_000_001_000u64);
    assert_eq!(opened["interval_start_ms"], 1_699_998_000_000u64);
    assert_eq!(opened["energy_wh"], 412);
    // Encrypting to another MDMS key: this MDMS cannot open it.
    let other = tempfile::tempdir().unwrap();
    let other_key = String::from_utf8(run(&["tx", "mdms-keygen"], other.path()).stdout).unwrap();
    let foreign = text(&[
        "tx",
        "reading",
        "--meter-id",
        "SM-1",
        "--energy-wh",
        "1",
        "--mdms-public-key",
        other_key.trim(),
    ]);
    let out = run(&["tx", "decrypt", "--reading", &foreign], state.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot decrypt"), "{}", stderr(&out));
}
