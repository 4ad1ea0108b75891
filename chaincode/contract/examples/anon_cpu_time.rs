//! On-CPU time of `SubmitAnonReadings` through the whole contract (in-memory ledger): one
//! reading per transaction, and 500 per transaction (batch verification), each reading a
//! different meter's first of the period. Linux schedstat, best of several rounds.
//! `cargo run -p bcami-contract --release --example anon_cpu_time`. Results: BENCHMARKS.md
//! (`## Anonymous readings in the contract`).
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_anon::{
    AnonReport, Blst, IssuerSecretKey, JoinRequest, KeyHolder, Period, Presentation, ReportFlags,
    SoftwareKeyHolder,
};
use bcami_api::Function;
use bcami_contract::contract;
use fabric_shim::memory::MemoryLedger;
use fabric_shim::{Contract, Creator, Timestamp, TxContext, X509Identity};

const BATCH: usize = 500;
const PERIOD_SECS: u32 = 1800;
const NOW_MS: u64 = 1_700_001_000_000;

fn on_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    text.split_whitespace().next().unwrap().parse().unwrap()
}

fn who(msp: &str, ou: &str) -> Creator {
    Creator::new(
        msp,
        X509Identity::from_parts(&format!("CN={ou}@{msp}"), "CN=ca", &[ou], &[]),
    )
}

fn ctx(n: u64, creator: Creator, function: Function, args: Vec<Vec<u8>>) -> TxContext {
    TxContext::new(
        "ami",
        &format!("tx{n}"),
        Timestamp {
            seconds: i64::try_from(NOW_MS / 1000).unwrap(),
            nanos: 0,
        },
        function.name(),
        args,
        creator,
    )
}

fn main() {
    let contract = contract();
    let ledger = MemoryLedger::new();
    let issuer = IssuerSecretKey::<Blst>::from_bytes(&[5; 32], 1).unwrap();
    let arg = serde_json::json!({
        "issuerKey": STANDARD.encode(issuer.public_key().encode()),
        "periodSecs": PERIOD_SECS,
    })
    .to_string();
    let out = ledger.invoke(
        &contract,
        ctx(
            1,
            who("UtilityMSP", "admin"),
            Function::SetAnonIssuerKey,
            vec![arg.into_bytes()],
        ),
    );
    out.result.expect("issuer key");
    let period_ms = u64::from(PERIOD_SECS) * 1000;
    let period = Period::new(NOW_MS / period_ms * period_ms, PERIOD_SECS).unwrap();
    eprintln!("building {BATCH} credentials and readings…");
    let readings: Vec<String> = (0..BATCH)
        .map(|i| {
            let mut entropy = [7u8; 32];
            entropy[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let mut holder = SoftwareKeyHolder::<Blst>::from_entropy(&entropy).unwrap();
            let join =
                JoinRequest::build(&mut holder, issuer.public_key(), [1; 32], [2; 32], &entropy)
                    .unwrap();
            let credential = issuer
                .issue(&join, &[2; 32])
                .unwrap()
                .accept(issuer.public_key(), &holder.commitment())
                .unwrap();
            let report = AnonReport {
                period,
                energy_wh: 100 + i as u64,
                flags: ReportFlags::NONE,
            };
            let mut e64 = [9u8; 64];
            e64[..32].copy_from_slice(&entropy);
            STANDARD.encode(
                Presentation::build_from_entropy(
                    &mut holder,
                    &credential,
                    issuer.public_key(),
                    &report,
                    &e64,
                )
                .unwrap()
                .encode(),
            )
        })
        .collect();
    let dc = who("OperatorMSP", "client");
    let mut n = 100;
    for (name, size, rounds) in [
        ("1 per transaction", 1usize, 5),
        ("500 per transaction", BATCH, 3),
    ] {
        let mut best = u64::MAX;
        for _ in 0..rounds {
            let mut spent = 0;
            let mut count = 0;
            for chunk in readings
                .chunks(size)
                .take(BATCH / size.max(1))
                .take(if size == 1 { 50 } else { 1 })
            {
                n += 1;
                let arg = serde_json::to_string(chunk).unwrap().into_bytes();
                // A fresh stub over the committed state: every reading is a first (nothing is
                // committed between rounds).
                let mut stub =
                    ledger.begin(ctx(n, dc.clone(), Function::SubmitAnonReadings, vec![arg]));
                let start = on_cpu_ns();
                let out = contract.invoke(&mut stub).expect("batch");
                spent += on_cpu_ns() - start;
                count += chunk.len();
                assert!(
                    out.starts_with(format!("{{\"accepted\":{},", chunk.len()).as_bytes()),
                    "{}",
                    String::from_utf8_lossy(&out)
                );
            }
            best = best.min(spent / count as u64);
        }
        println!(
            "{name:>20}: {:.3} ms on-CPU per reading = {:.0} verified anonymous readings/s per core",
            best as f64 / 1e6,
            1e9 / best as f64
        );
    }
}
