//! Readings validated per second: a 500-reading `SubmitReadings` batch (500 meters, one reading
//! each) through the whole contract against the in-memory ledger, with each verifier; and one
//! signature check alone. Results are recorded in BENCHMARKS.md (`## Contract`).

// Benchmark set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_contract::{BcAmi, Verifier, VerifierKind};
use bcami_sdk::{
    Hid, IntervalLength, MdmsSecretKey, MeterSecretKey, QualityFlags, RegistrationRequest,
    Timestamp, Transaction, UsageReport, WattHours,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fabric_shim::memory::MemoryLedger;
use fabric_shim::{Contract, Creator, TxContext, X509Identity};

const BATCH: usize = 500;
const T0_MS: u64 = 1_700_000_000_000;

fn who(msp: &str, ou: &str) -> Creator {
    Creator::new(
        msp,
        X509Identity::from_parts("CN=bench", "CN=ca", &[ou], &[]),
    )
}

fn ctx(n: usize, creator: Creator, function: &str, args: Vec<Vec<u8>>) -> TxContext {
    TxContext::new(
        "ami",
        &format!("tx{n}"),
        fabric_shim::Timestamp {
            seconds: i64::try_from(T0_MS / 1000).unwrap(),
            nanos: 0,
        },
        function,
        args,
        creator,
    )
}

struct Fixture {
    ledger: MemoryLedger,
    batch_arg: Vec<u8>,
    one: Transaction,
    one_key: bcami_sdk::MeterPublicKey,
}

fn fixture() -> Fixture {
    let ledger = MemoryLedger::new();
    let setup = BcAmi::new(VerifierKind::K256);
    let mdms = MdmsSecretKey::from_entropy(&[2; 32]).unwrap();
    let meters: Vec<(Hid, MeterSecretKey)> = (0..BATCH)
        .map(|i| {
            let mut entropy = [7u8; 32];
            entropy[..8].copy_from_slice(&(i as u64).to_be_bytes());
            (
                Hid::from_meter_id(format!("SM-{i:06}")),
                MeterSecretKey::from_entropy(&entropy).unwrap(),
            )
        })
        .collect();
    let hids: Vec<String> = meters.iter().map(|(h, _)| h.to_string()).collect();
    let provision = serde_json::json!({ "meters": hids }).to_string();
    let out = ledger.invoke(
        &setup,
        ctx(
            0,
            who("UtilityMSP", "admin"),
            "ProvisionMeters",
            vec![provision.into_bytes()],
        ),
    );
    out.result.expect("provisioning");
    for (i, (hid, key)) in meters.iter().enumerate() {
        let reg =
            RegistrationRequest::build(key, *hid, Timestamp::from_unix_millis(T0_MS - 10_000))
                .unwrap();
        let out = ledger.invoke(
            &setup,
            ctx(
                i + 1,
                who("OperatorMSP", "client"),
                "RegisterMeter",
                vec![STANDARD.encode(reg.encode()).into_bytes()],
            ),
        );
        out.result.expect("registration");
    }
    let report = UsageReport {
        interval_start: Timestamp::from_unix_millis(T0_MS - 1_800_000),
        interval_length: IntervalLength::HALF_HOUR,
        energy: WattHours(412),
        cumulative_register: WattHours(12_345_678),
        quality: QualityFlags::NONE,
    };
    let readings: Vec<Transaction> = meters
        .iter()
        .enumerate()
        .map(|(i, (hid, key))| {
            let mut entropy = [9u8; 32];
            entropy[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Transaction::build_from_entropy(
                &entropy,
                key,
                *hid,
                Timestamp::from_unix_millis(T0_MS - 1_000),
                &report,
                &mdms.public_key(),
            )
            .unwrap()
        })
        .collect();
    let encoded: Vec<String> = readings
        .iter()
        .map(|t| STANDARD.encode(t.encode()))
        .collect();
    Fixture {
        ledger,
        batch_arg: serde_json::to_vec(&encoded).unwrap(),
        one: readings[0].clone(),
        one_key: meters[0].1.public_key(),
    }
}

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
            "SubmitReadings",
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
                    "SubmitReadings",
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
