//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/<target>/seed-*`) on stable, with the
//! same property each fuzz target checks: no panic, and accepted input re-encodes to itself.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bcami_sdk::{
    KeyRotationRequest, MdmsRegistrationRequest, RegistrationRequest, Transaction, UsageReport,
};

fn replay(target: &str, check: impl Fn(&[u8]) -> bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut accepted = 0;
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        seen += 1;
        if check(&bytes) {
            accepted += 1;
        }
    }
    // Each corpus holds at least the valid seed, which must be accepted.
    assert!(
        seen >= 1 && accepted >= 1,
        "{target}: {seen} inputs, {accepted} accepted"
    );
}

#[test]
fn transaction_corpus() {
    replay("decode_transaction", |b| {
        Transaction::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn registration_corpus() {
    replay("decode_registration", |b| {
        RegistrationRequest::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn mdms_registration_corpus() {
    replay("decode_mdms_registration", |b| {
        MdmsRegistrationRequest::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn key_rotation_corpus() {
    replay("decode_key_rotation", |b| {
        KeyRotationRequest::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn usage_report_corpus() {
    replay("decode_usage_report", |b| {
        UsageReport::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn decrypt_transaction_corpus() {
    let mdms = bcami_sdk::MdmsSecretKey::from_bytes(
        &hex::decode("3b1c5a7d9e2f4a6b8c0d1e3f5a7b9c2d4e6f8a0b1c3d5e7f9a2b4c6d8e0f1a3b")
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    replay("decrypt_transaction", |b| {
        Transaction::decode(b)
            .ok()
            .and_then(|tx| tx.decrypt(&mdms).ok())
            .map(|report| assert_eq!(UsageReport::decode(&report.encode()), Ok(report)))
            .is_some()
    });
}
