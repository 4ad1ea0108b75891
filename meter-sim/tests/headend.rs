//! Black-box tests of `meter-sim headend` on the embedded ledger: the head-end registers and
//! rotates its key, registered meters get sessions and commands, revoked and unknown meters are
//! refused, and bad options are usage errors.

// The whole file is test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meter-sim"))
        .arg("--state")
        .arg(state)
        .arg("headend")
        .args(args)
        // No network: make sure a developer's running network is not picked up.
        .env("BCAMI_RUN_DIR", state.join("no-network"))
        .output()
        .expect("meter-sim runs")
}

#[test]
fn sessions_for_registered_meters_and_refusals_for_revoked_and_unknown_ones() {
    let state = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "--embedded",
            "--meters",
            "6",
            "--messages",
            "2",
            "--revoke",
            "2",
            "--unknown",
            "1",
            "--rotate-key",
            "--json",
        ],
        state.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mode"], "embedded");
    assert_eq!(report["head_end_key_version"], 2, "{report}");
    assert_eq!(report["meters"], 7);
    assert_eq!(report["directory"], 6);
    assert_eq!(report["established"], 4);
    assert_eq!(report["commands"], 8);
    assert_eq!(report["refused"]["revoked"], 2, "{report}");
    assert_eq!(report["refused"]["unknown_meter"], 1, "{report}");
    assert_eq!(report["refused_expected"], 3);
    // The head-end's key stays in its folder (beside the MDMS's) for the next run.
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(state.path().join("embedded").join("headend.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["headEndId"], "AHE-1");
    assert!(file.get("pendingSecretKey").is_none(), "{file}");
}

#[test]
fn bad_options_are_usage_errors() {
    let state = tempfile::tempdir().unwrap();
    for args in [
        &["--embedded", "--meters", "2", "--revoke", "3"][..],
        &["--embedded", "--meters", "0"][..],
        &["--embedded", "--head-end-id", "bad id"][..],
    ] {
        let out = run(args, state.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
