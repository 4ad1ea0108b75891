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
