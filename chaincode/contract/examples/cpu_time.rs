//! On-CPU time of a 500-reading `SubmitReadings` batch through the whole contract (in-memory
//! ledger), with each verifier, from Linux schedstat — what one core really spends, unlike wall
//! clock on a shared machine. `cargo run -p bcami-contract --release --example cpu_time`.
//! Results are recorded in BENCHMARKS.md (`## Contract`).
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

#[path = "../benches/fixture/mod.rs"]
mod fixture;

use bcami_contract::{BcAmi, Verifier, VerifierKind};
use fabric_shim::Contract;
use fixture::{BATCH, ctx, fixture, who};

/// Nanoseconds this thread has been on a CPU (first field of /proc/thread-self/schedstat).
fn on_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    text.split_whitespace().next().unwrap().parse().unwrap()
}

fn main() {
    let f = fixture();
    const ROUNDS: usize = 5;
    const BATCHES: usize = 4;
    for (name, kind) in [
        ("libsecp256k1", VerifierKind::Libsecp256k1),
        ("k256", VerifierKind::K256),
    ] {
        let contract = BcAmi::new(kind);
        let mut best = u64::MAX;
        for _ in 0..ROUNDS {
            let start = on_cpu_ns();
            for i in 0..BATCHES {
                let mut stub = f.ledger.begin(ctx(
                    20_000 + i,
                    who("OperatorMSP", "client"),
                    bcami_api::Function::SubmitReadings.name(),
                    vec![f.batch_arg.clone()],
                ));
                let out = contract.invoke(&mut stub).expect("batch");
                assert!(out.starts_with(b"{\"accepted\":500,"));
            }
            best = best.min((on_cpu_ns() - start) / BATCHES as u64);
        }
        let per_reading_us = best as f64 / BATCH as f64 / 1000.0;
        println!(
            "{name:>12}: {:.1} ms on-CPU per 500-reading batch = {per_reading_us:.1} µs per reading = {:.0} readings/s per core",
            best as f64 / 1e6,
            1e6 / per_reading_us
        );
    }
    const VERIFIES: u64 = 2000;
    for (name, kind) in [
        ("libsecp256k1", VerifierKind::Libsecp256k1),
        ("k256", VerifierKind::K256),
    ] {
        let verifier = Verifier::new(kind);
        let key = verifier.prepare(&f.one_key).unwrap();
        let mut best = u64::MAX;
        for _ in 0..ROUNDS {
            let start = on_cpu_ns();
            for _ in 0..VERIFIES {
                assert!(verifier.verify(&key, std::hint::black_box(&f.one)));
            }
            best = best.min((on_cpu_ns() - start) / VERIFIES);
        }
        println!(
            "{name:>12}: {:.1} µs on-CPU per reading signature verification",
            best as f64 / 1000.0
        );
    }
}
