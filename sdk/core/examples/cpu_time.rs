//! Per-operation *on-CPU* time (from `/proc/thread-self/schedstat`, Linux only), a companion to the
//! criterion wall-clock benchmarks for shared, loaded machines where wall time includes waiting
//! for a core. Run: `cargo run -p bcami-sdk --release --example cpu_time`.

// Example set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use bcami_sdk::{
    Hid, IntervalLength, KeyRotationRequest, MdmsSecretKey, MeterPublicKey, MeterSecretKey,
    QualityFlags, RegistrationRequest, Timestamp, Transaction, UsageReport, WattHours,
};

/// Nanoseconds this thread has spent running on a CPU.
fn on_cpu_nanos() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat starts with on-CPU ns")
}

fn measure(name: &str, iterations: u32, mut op: impl FnMut(u32)) {
    for i in 0..iterations / 10 {
        op(i); // warm-up
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = on_cpu_nanos();
        for i in 0..iterations {
            op(i);
        }
        let per_op = (on_cpu_nanos() - start) as f64 / f64::from(iterations) / 1000.0;
        best = best.min(per_op);
    }
    println!("{name:<40} {best:>8.1} µs on-CPU (best of 5 x {iterations})");
}

fn main() {
    let meter = MeterSecretKey::from_entropy(&[1; 32]).expect("entropy");
    let mdms = MdmsSecretKey::from_entropy(&[2; 32]).expect("entropy");
    let mdms_public = mdms.public_key();
    let meter_public = meter.public_key();
    let hid = Hid::from_meter_id("SM-BENCH");
    let report = UsageReport {
        interval_start: Timestamp::from_unix_millis(1_700_000_000_000),
        interval_length: IntervalLength::HALF_HOUR,
        energy: WattHours(412),
        cumulative_register: WattHours(12_345_678),
        quality: QualityFlags::NONE,
    };
    let timestamp = Timestamp::from_unix_millis(1_700_000_001_800);
    let build = |i: u32| {
        let mut entropy = [0u8; 32];
        entropy[..4].copy_from_slice(&i.to_le_bytes());
        Transaction::build_from_entropy(&entropy, &meter, hid, timestamp, &report, &mdms_public)
            .expect("build")
    };
    let wire = build(0).encode();
    let tx = Transaction::decode(&wire).expect("decode");
    let key_bytes = meter_public.to_bytes();

    measure("reading build+encode", 2000, |i| {
        black_box(build(i).encode());
    });
    measure("reading decode+verify", 2000, |_| {
        let tx = Transaction::decode(black_box(&wire)).expect("decode");
        tx.verify(&meter_public).expect("verify");
    });
    measure("reading decode", 2000, |_| {
        black_box(Transaction::decode(black_box(&wire)).expect("decode"));
    });
    measure("reading decrypt (MDMS)", 2000, |_| {
        black_box(tx.decrypt(&mdms).expect("decrypt"));
    });
    let registration = RegistrationRequest::build(&meter, hid, timestamp)
        .expect("build")
        .encode();
    measure("registration decode+verify", 2000, |_| {
        let request = RegistrationRequest::decode(black_box(&registration)).expect("decode");
        request.verify().expect("verify");
    });
    let new_meter = MeterSecretKey::from_entropy(&[3; 32]).expect("entropy");
    let rotation = KeyRotationRequest::build(&meter, &new_meter, hid, timestamp)
        .expect("build")
        .encode();
    measure("key rotation decode+verify (2 signatures)", 2000, |_| {
        let request = KeyRotationRequest::decode(black_box(&rotation)).expect("decode");
        request.verify(&meter_public).expect("verify");
    });
    measure("meter public key parse", 2000, |_| {
        black_box(MeterPublicKey::from_sec1_bytes(black_box(&key_bytes)).expect("key"));
    });
}
