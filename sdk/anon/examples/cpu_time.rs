//! Per-operation *on-CPU* time (from `/proc/thread-self/schedstat`, Linux only), a companion to
//! the criterion benchmarks for shared, loaded machines where wall time includes waiting for a
//! core. Run: `cargo run -p bcami-anon --release --features blst --example cpu_time`.

// Example set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;

use bcami_anon::{
    AnonReport, Backend, Blst, IssuerPublicKey, IssuerSecretKey, JoinRequest, KeyHolder,
    MeterCredential, Period, Presentation, ReportFlags, SoftwareKeyHolder, Zk, verify_batch,
};
use group::{Curve, Group};

/// Nanoseconds this thread has spent running on a CPU.
fn on_cpu_nanos() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat starts with on-CPU ns")
}

/// Best of `rounds` of `iterations` calls; `per` operations per call (a batch's size).
fn measure(name: &str, iterations: u32, rounds: u32, per: u32, mut op: impl FnMut(u32)) {
    op(0); // warm-up
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = on_cpu_nanos();
        for i in 0..iterations {
            op(i);
        }
        let per_op =
            (on_cpu_nanos() - start) as f64 / f64::from(iterations) / f64::from(per) / 1000.0;
        best = best.min(per_op);
    }
    println!(
        "{name:<52} {best:>9.1} µs on-CPU (best of {rounds} x {iterations}{})",
        if per > 1 {
            format!(", per reading of {per}")
        } else {
            String::new()
        }
    );
}

fn meter<B: Backend>(isk: &IssuerSecretKey<B>) -> (SoftwareKeyHolder<B>, MeterCredential<B>) {
    let mut holder = SoftwareKeyHolder::<B>::from_entropy(&[1; 32]).expect("entropy");
    let ipk = isk.public_key();
    let request =
        JoinRequest::build(&mut holder, ipk, [1; 32], [7; 32], &[1; 32]).expect("request");
    let cred = isk
        .issue(&request, &[7; 32])
        .expect("issue")
        .accept(ipk, &holder.commitment())
        .expect("credential");
    (holder, cred)
}

fn report(i: u32) -> AnonReport {
    AnonReport {
        period: Period::new(1_700_000_000_000 + u64::from(i) * 1_800_000, 1800).expect("period"),
        energy_wh: 400 + u64::from(i),
        flags: ReportFlags::NONE,
    }
}

fn entropy(i: u32) -> [u8; 64] {
    let mut e = [0u8; 64];
    e[..4].copy_from_slice(&i.to_le_bytes());
    e
}

fn run<B: Backend>(wire: &[Vec<u8>], key: &[u8]) {
    let name = B::NAME;
    let isk = IssuerSecretKey::<B>::from_bytes(&[5; 32], 1).expect("key");
    let (mut holder, cred) = meter(&isk);
    let ipk = IssuerPublicKey::<B>::decode(key).expect("key");
    let r = report(0);
    measure(
        &format!("[{name}] meter: build + encode one reading"),
        100,
        5,
        1,
        |i| {
            black_box(
                Presentation::build_from_entropy(
                    &mut holder,
                    &cred,
                    isk.public_key(),
                    &r,
                    &entropy(i),
                )
                .expect("build")
                .encode(),
            );
        },
    );
    measure(
        &format!("[{name}] verifier: decode + verify one"),
        100,
        5,
        1,
        |i| {
            let p = Presentation::<B>::decode(black_box(&wire[i as usize % wire.len()]))
                .expect("decode");
            p.verify(&ipk).expect("valid");
        },
    );
    measure(&format!("[{name}] verifier: decode only"), 100, 5, 1, |i| {
        black_box(
            Presentation::<B>::decode(black_box(&wire[i as usize % wire.len()])).expect("decode"),
        );
    });
    for n in [100usize, 1000] {
        let rounds = if n == 1000 { 2 } else { 3 };
        measure(
            &format!("[{name}] verifier: decode + verify_batch({n})"),
            1,
            rounds,
            n as u32,
            |_| {
                let batch: Vec<_> = wire[..n]
                    .iter()
                    .map(|w| Presentation::<B>::decode(w).expect("decode"))
                    .collect();
                assert!(verify_batch(&ipk, &batch).iter().all(Result::is_ok));
            },
        );
    }
    // Unit costs (the paper's Table 2 columns).
    let g1 = B::G1::generator() * B::scalar_from_be(&[3; 32]).expect("scalar");
    let g2 = B::G2::generator().to_affine();
    let s = B::scalar_from_be(&[7; 32]).expect("scalar");
    measure(&format!("[{name}] unit: pairing e(P, Q)"), 50, 5, 1, |_| {
        black_box(B::pairing(&black_box(g1).to_affine(), &g2));
    });
    measure(
        &format!("[{name}] unit: G1 scalar multiplication"),
        100,
        5,
        1,
        |_| {
            black_box(black_box(g1) * s);
        },
    );
    measure(
        &format!("[{name}] unit: G1 scalar multiplication (Backend::mul)"),
        100,
        5,
        1,
        |_| {
            black_box(B::mul(&black_box(g1), &s));
        },
    );
    measure(
        &format!("[{name}] unit: hash_to_curve G1"),
        100,
        5,
        1,
        |i| {
            black_box(B::hash_to_g1(&i.to_be_bytes(), b"BENCH"));
        },
    );
}

fn main() {
    let isk = IssuerSecretKey::<Blst>::from_bytes(&[5; 32], 1).expect("key");
    let (mut holder, cred) = meter(&isk);
    let wire: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            Presentation::build_from_entropy(
                &mut holder,
                &cred,
                isk.public_key(),
                &report(i),
                &entropy(i),
            )
            .expect("build")
            .encode()
        })
        .collect();
    println!("wire bytes per anonymous reading: {}", wire[0].len());
    let key = isk.public_key().encode();
    run::<Zk>(&wire, &key);
    run::<Blst>(&wire, &key);
}
