//! Readings validated per second: a 500-reading `SubmitReadings` batch (500 meters, one reading
//! each) through the whole contract against the in-memory ledger, with each verifier; and one
//! signature check alone. Results are recorded in BENCHMARKS.md (`## Contract`).

// Benchmark set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

mod fixture;

use std::hint::black_box;

use bcami_contract::{BcAmi, Verifier, VerifierKind};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fabric_shim::Contract;
use fixture::{BATCH, ctx, fixture, who};

fn benches(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("contract");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, kind) in [
        ("libsecp256k1", VerifierKind::Libsecp256k1),
        ("k256", VerifierKind::K256),
    ] {
        let contract = BcAmi::new(kind);
        // Sanity: every reading is accepted (checked once, outside the timing).
        let mut stub = f.ledger.begin(ctx(
            9999,
            who("OperatorMSP", "client"),
            bcami_api::Function::SubmitReadings.name(),
            vec![f.batch_arg.clone()],
        ));
        let out = contract.invoke(&mut stub).expect("batch");
        let response: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(response["accepted"], BATCH, "{name}");

        group.bench_function(format!("SubmitReadings 500-reading batch/{name}"), |b| {
            b.iter(|| {
                // A transaction that is never committed: every iteration sees the same ledger.
                let mut stub = f.ledger.begin(ctx(
                    10_000,
                    who("OperatorMSP", "client"),
                    bcami_api::Function::SubmitReadings.name(),
                    vec![f.batch_arg.clone()],
                ));
                black_box(contract.invoke(&mut stub).expect("batch"))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("verify one reading signature");
    group.sample_size(20);
    for (name, kind) in [
        ("libsecp256k1", VerifierKind::Libsecp256k1),
        ("k256", VerifierKind::K256),
    ] {
        let verifier = Verifier::new(kind);
        let key = verifier.prepare(&f.one_key).unwrap();
        assert!(verifier.verify(&key, &f.one));
        group.bench_function(name, |b| {
            b.iter(|| black_box(verifier.verify(&key, black_box(&f.one))))
        });
    }
    group.finish();
}

criterion_group!(contract_benches, benches);
criterion_main!(contract_benches);
