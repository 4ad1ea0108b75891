//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/<target>/seed-*`) on stable, with the
//! same property each fuzz target checks: no panic, and accepted input re-encodes to itself.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bcami_anon::{Credential, IssuerPublicKey, JoinRequest, NonEqualityProof, Presentation, Zk};

fn replay(target: &str, check: impl Fn(&[u8]) -> bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut accepted = 0;
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        seen += 1;
        if check(&bytes) {
            accepted += 1;
        }
    }
    // Each corpus holds at least one valid seed, which must be accepted, and rejected ones.
    assert!(
        accepted >= 1 && seen > accepted,
        "{target}: {seen} inputs, {accepted} accepted"
    );
}

#[test]
fn presentation_corpus() {
    replay("decode_presentation", |b| {
        Presentation::<Zk>::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn join_request_corpus() {
    replay("decode_join_request", |b| {
        JoinRequest::<Zk>::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn credential_corpus() {
    replay("decode_credential", |b| {
        Credential::<Zk>::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn issuer_key_corpus() {
    replay("decode_issuer_key", |b| {
        IssuerPublicKey::<Zk>::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn trace_proof_corpus() {
    replay("decode_trace_proof", |b| {
        NonEqualityProof::<Zk>::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}
