//! Criterion benchmarks for the meter ↔ head-end session: each side of a handshake, and sealing.
//! Results are recorded in BENCHMARKS.md (`## Meter ↔ head-end sessions`).
//!
//! Both sides draw from RNGs that replay the same bytes on every iteration, so each iteration does
//! the full work of a real handshake (fresh scalar multiplications, ECDH, signatures) while the
//! other side's message, computed once, stays valid.

// Benchmark set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;

use bcami_sdk::rand_core::{CryptoRng, Error, RngCore};
use bcami_sdk::session::{
    HeadEnd, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus, SessionConfirm, SessionInit,
    SessionResponse,
};
use bcami_sdk::{HeadEndSecretKey, Hid, MeterSecretKey, Timestamp};
use criterion::{Criterion, black_box, criterion_group, criterion_main};

/// Replays 48 fixed bytes (scalar, nonce) for each handshake step.
struct Fixed([u8; 48], usize);
impl RngCore for Fixed {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0[self.1 % 48];
            self.1 += 1;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Fixed {}

fn benches(c: &mut Criterion) {
    let meter_key = MeterSecretKey::from_entropy(&[1; 32]).expect("entropy");
    let hid = Hid::from_meter_id("SM-BENCH");
    let head_end = HeadEnd::new(
        Hid::from_meter_id("AHE-BENCH"),
        HeadEndSecretKey::from_entropy(&[2; 32]).expect("entropy"),
        HeadEndPolicy::default(),
    );
    let directory = BTreeMap::from([(
        hid,
        MeterRecord {
            public_key: meter_key.public_key(),
            key_version: 1,
            status: MeterStatus::Active,
        },
    )]);
    let now = Timestamp::from_unix_millis(1_700_000_000_000);
    let meter_rng = || Fixed([0x3c; 48], 0);
    let head_end_rng = || Fixed([0x5d; 48], 0);

    let (meter, init) =
        MeterHandshake::start(&mut meter_rng(), hid, head_end.identity(), now).expect("start");
    let (pending, response) = head_end
        .respond(&mut head_end_rng(), &init, &directory, now)
        .expect("respond");
    let (mut meter_session, confirm) = meter.finish(&meter_key, &response).expect("finish");
    let mut head_end_session = pending.finish(&confirm, &directory).expect("finish");
    let (init_wire, response_wire, confirm_wire) =
        (init.encode(), response.encode(), confirm.encode());

    c.bench_function(
        "session/meter side: start + decode response + finish + encode",
        |b| {
            b.iter(|| {
                let (meter, init) =
                    MeterHandshake::start(&mut meter_rng(), hid, head_end.identity(), now)
                        .expect("start");
                black_box(init.encode());
                let response = SessionResponse::decode(black_box(&response_wire)).expect("decode");
                let (session, confirm) = meter.finish(&meter_key, &response).expect("finish");
                black_box((session, confirm.encode()))
            })
        },
    );
    c.bench_function(
        "session/head-end side: decode init + respond + decode confirm + finish",
        |b| {
            b.iter(|| {
                let init = SessionInit::decode(black_box(&init_wire)).expect("decode");
                let (pending, response) = head_end
                    .respond(&mut head_end_rng(), &init, &directory, now)
                    .expect("respond");
                black_box(response.encode());
                let confirm = SessionConfirm::decode(black_box(&confirm_wire)).expect("decode");
                black_box(pending.finish(&confirm, &directory).expect("finish"))
            })
        },
    );
    c.bench_function("session/seal + open 64 bytes", |b| {
        let payload = [0x42u8; 64];
        b.iter(|| {
            let sealed = meter_session.seal(b"", black_box(&payload)).expect("seal");
            black_box(head_end_session.open(b"", &sealed).expect("open"))
        })
    });
}

// criterion_group! generates an undocumented function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(name = session; config = Criterion::default(); targets = benches);
}
criterion_main!(group::session);
