//! Criterion benchmarks of anonymous readings: the meter's build (pure-Rust `bls12_381`, as on a
//! meter), and verification single and in batches of 100 and 1,000 on both backends.
//! Results are recorded in BENCHMARKS.md (`## Anonymous readings`).
//! Run: `cargo bench -p bcami-anon --features blst`.

// Benchmark set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};

use bcami_anon::{
    AnonReport, Backend, Blst, Credential, IssuerPublicKey, IssuerSecretKey, JoinRequest,
    KeyHolder, MeterCredential, Period, Presentation, ReportFlags, SoftwareKeyHolder, Zk,
    verify_batch,
};

struct Meter<B: Backend> {
    holder: SoftwareKeyHolder<B>,
    cred: MeterCredential<B>,
}

fn meter<B: Backend>(isk: &IssuerSecretKey<B>, seed: u8) -> Meter<B> {
    let mut holder = SoftwareKeyHolder::<B>::from_entropy(&[seed; 32]).expect("entropy");
    let ipk = isk.public_key();
    let request = JoinRequest::build(&mut holder, ipk, [seed; 32], [7; 32], &[seed; 32])
        .expect("join request");
    let cred: Credential<B> = isk.issue(&request, &[7; 32]).expect("issue");
    let cred = cred.accept(ipk, &holder.commitment()).expect("credential");
    Meter { holder, cred }
}

fn report(i: u64) -> AnonReport {
    AnonReport {
        period: Period::new(1_700_000_000_000 + i * 1_800_000, 1800).expect("period"),
        energy_wh: 400 + i,
        flags: ReportFlags::NONE,
    }
}

fn readings(n: u64) -> (Vec<Vec<u8>>, Vec<u8>) {
    let isk = IssuerSecretKey::<Blst>::from_bytes(&[5; 32], 1).expect("key");
    let mut m = meter(&isk, 1);
    let wire = (0..n)
        .map(|i| {
            let entropy = [(i % 251) as u8; 64];
            Presentation::build_from_entropy(
                &mut m.holder,
                &m.cred,
                isk.public_key(),
                &report(i),
                &entropy,
            )
            .expect("build")
            .encode()
        })
        .collect();
    (wire, isk.public_key().encode())
}

fn verify_benches<B: Backend>(c: &mut Criterion, wire: &[Vec<u8>], key: &[u8]) {
    let ipk = IssuerPublicKey::<B>::decode(key).expect("key");
    let mut group = c.benchmark_group(format!("anon verify {}", B::NAME));
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode + verify one", |b| {
        b.iter(|| {
            Presentation::<B>::decode(black_box(&wire[0]))
                .expect("decode")
                .verify(&ipk)
                .expect("valid")
        })
    });
    for n in [100usize, 1000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("decode + verify_batch", n), &n, |b, &n| {
            b.iter(|| {
                let batch: Vec<_> = wire[..n]
                    .iter()
                    .map(|w| Presentation::<B>::decode(w).expect("decode"))
                    .collect();
                let results = verify_batch(&ipk, &batch);
                assert!(results.iter().all(Result::is_ok));
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let isk = IssuerSecretKey::<Zk>::from_bytes(&[5; 32], 1).expect("key");
    let ipk = isk.public_key();
    let mut m = meter(&isk, 1);
    let mut group = c.benchmark_group("anon meter bls12_381");
    group.sample_size(20);
    let r = report(0);
    let mut i = 0u8;
    group.bench_function("build one anonymous reading", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            Presentation::build_from_entropy(&mut m.holder, &m.cred, ipk, black_box(&r), &[i; 64])
                .expect("build")
        })
    });
    group.finish();
    let isk_b = IssuerSecretKey::<Blst>::from_bytes(&[5; 32], 1).expect("key");
    let mut mb = meter(&isk_b, 1);
    let mut group = c.benchmark_group("anon meter blst");
    group.sample_size(20);
    group.bench_function("build one anonymous reading", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            Presentation::build_from_entropy(
                &mut mb.holder,
                &mb.cred,
                isk_b.public_key(),
                black_box(&r),
                &[i; 64],
            )
            .expect("build")
        })
    });
    group.finish();

    let (wire, key) = readings(1000);
    println!("wire bytes per anonymous reading: {}", wire[0].len());
    verify_benches::<Blst>(c, &wire, &key);
    verify_benches::<Zk>(c, &wire, &key);
}

criterion_group!(anon, benches);
criterion_main!(anon);
