//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/<target>/seed-*`) on stable, with the
//! same property each fuzz target checks: no panic, and accepted input re-encodes to itself.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bcami_sdk::{
    HeadEndRegistrationRequest, KeyRotationRequest, MdmsRegistrationRequest, RegistrationRequest,
    Transaction, UsageReport,
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
fn head_end_registration_corpus() {
    replay("decode_head_end_registration", |b| {
        HeadEndRegistrationRequest::decode(b)
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

#[test]
fn session_init_corpus() {
    replay("decode_session_init", |b| {
        bcami_sdk::session::SessionInit::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn session_response_corpus() {
    replay("decode_session_response", |b| {
        bcami_sdk::session::SessionResponse::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

#[test]
fn session_confirm_corpus() {
    replay("decode_session_confirm", |b| {
        bcami_sdk::session::SessionConfirm::decode(b)
            .map(|m| assert_eq!(m.encode(), b))
            .is_ok()
    });
}

/// The head-end's side of the test-vector session (as the fuzz target builds it), fresh for each
/// input so that the sequence window starts at 0.
fn vector_session() -> bcami_sdk::session::Session {
    use bcami_sdk::rand_core::{CryptoRng, Error, RngCore};
    use bcami_sdk::session::{HeadEnd, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus};
    use bcami_sdk::{HeadEndSecretKey, Hid, MeterSecretKey, Timestamp};

    struct Replay(Vec<u8>);
    impl RngCore for Replay {
        fn next_u32(&mut self) -> u32 {
            unreachable!()
        }
        fn next_u64(&mut self) -> u64 {
            unreachable!()
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            let rest = self.0.split_off(dest.len());
            dest.copy_from_slice(&self.0);
            self.0 = rest;
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Replay {}

    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/v1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let inputs = &v["session"]["inputs"];
    let bytes = |name: &str| hex::decode(inputs[name].as_str().unwrap()).unwrap();
    let meter_key =
        MeterSecretKey::from_bytes(&bytes("meter_secret_key").try_into().unwrap()).unwrap();
    let head_end = HeadEnd::new(
        Hid::from_meter_id(inputs["head_end_id"].as_str().unwrap()),
        HeadEndSecretKey::from_bytes(&bytes("head_end_secret_key").try_into().unwrap()).unwrap(),
        HeadEndPolicy::default(),
    );
    let hid = Hid::from_meter_id(inputs["meter_id"].as_str().unwrap());
    let directory = std::collections::BTreeMap::from([(
        hid,
        MeterRecord {
            public_key: meter_key.public_key(),
            key_version: 1,
            status: MeterStatus::Active,
        },
    )]);
    let now = Timestamp::from_unix_millis(inputs["timestamp_ms"].as_u64().unwrap());
    let (meter, init) = MeterHandshake::start(
        &mut Replay(bytes("meter_rng_output")),
        hid,
        head_end.identity(),
        now,
    )
    .unwrap();
    let (pending, response) = head_end
        .respond(
            &mut Replay(bytes("head_end_rng_output")),
            &init,
            &directory,
            now,
        )
        .unwrap();
    let (_, confirm) = meter.finish(&meter_key, &response).unwrap();
    pending.finish(&confirm, &directory).unwrap()
}

#[test]
fn open_session_record_corpus() {
    replay("open_session_record", |b| {
        vector_session()
            .open(b"BC-AMI example aad", b)
            .map(|plaintext| assert_eq!(plaintext, b"meter status: ok"))
            .is_ok()
    });
}
