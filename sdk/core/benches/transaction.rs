//! Criterion benchmarks for the meter's and the contract's per-reading work.
//! Results are recorded in BENCHMARKS.md (`## Meter SDK`).

// Benchmark set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};

use bcami_sdk::{
    Hid, IntervalLength, MdmsSecretKey, MeterSecretKey, QualityFlags, Timestamp, Transaction,
    UsageReport, WattHours,
};

struct Fixture {
    meter: MeterSecretKey,
    mdms: MdmsSecretKey,
    hid: Hid,
    report: UsageReport,
}

fn fixture() -> Fixture {
    Fixture {
        meter: MeterSecretKey::from_entropy(&[1; 32]).expect("32 bytes of entropy is enough"),
        mdms: MdmsSecretKey::from_entropy(&[2; 32]).expect("32 bytes of entropy is enough"),
        hid: Hid::from_meter_id("SM-BENCH"),
        report: UsageReport {
            interval_start: Timestamp::from_unix_millis(1_700_000_000_000),
            interval_length: IntervalLength::HALF_HOUR,
            energy: WattHours(412),
            cumulative_register: WattHours(12_345_678),
            quality: QualityFlags::NONE,
        },
    }
}

fn build(f: &Fixture, entropy: &[u8; 32]) -> Transaction {
    Transaction::build_from_entropy(
        entropy,
        &f.meter,
        f.hid,
        Timestamp::from_unix_millis(1_700_000_001_800),
        &f.report,
        &f.mdms.public_key(),
    )
    .expect("building with valid keys succeeds")
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let mdms_public = f.mdms.public_key();
    let meter_public = f.meter.public_key();

    c.bench_function("reading/build+encode (encrypt, hash, sign)", |b| {
        let mut counter = 0u64;
        b.iter(|| {
            // Fresh entropy each time, as firmware must supply.
            counter += 1;
            let mut entropy = [0u8; 32];
            entropy[..8].copy_from_slice(&counter.to_le_bytes());
            let tx = Transaction::build_from_entropy(
                &entropy,
                &f.meter,
                f.hid,
                Timestamp::from_unix_millis(1_700_000_001_800),
                &f.report,
                &mdms_public,
            )
            .expect("building with valid keys succeeds");
            black_box(tx.encode())
        })
    });

    let wire = build(&f, &[3; 32]).encode();
    c.bench_function("reading/decode+verify (contract)", |b| {
        b.iter(|| {
            let tx = Transaction::decode(black_box(&wire)).expect("valid transaction");
            tx.verify(&meter_public).expect("valid signature");
        })
    });
    c.bench_function("reading/decode only", |b| {
        b.iter(|| Transaction::decode(black_box(&wire)).expect("valid transaction"))
    });
    let tx = Transaction::decode(&wire).expect("valid transaction");
    c.bench_function("reading/decrypt (MDMS)", |b| {
        b.iter(|| tx.decrypt(black_box(&f.mdms)).expect("decrypts"))
    });
    c.bench_function(
        "meter public key parse (contract reads key from state)",
        |b| {
            let bytes = meter_public.to_bytes();
            b.iter(|| {
                bcami_sdk::MeterPublicKey::from_sec1_bytes(black_box(&bytes)).expect("valid key")
            })
        },
    );
}

// criterion_group! generates an undocumented function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(name = sdk; config = Criterion::default(); targets = benches);
}
criterion_main!(group::sdk);
