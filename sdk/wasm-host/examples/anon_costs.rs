//! Figures for BENCHMARKS.md: each operation of the anonymous meter module under wasmtime (fuel,
//! stack, heap, linear memory, time) next to the same operation in native bcami-anon (Zk
//! backend, the same pure-Rust code), and the cost of compiling the module.
//!
//! `cargo run --release -p bcami-wasm-host --example anon_costs [-- MODULE [ITERATIONS]]`
//! (MODULE defaults to target/meter-wasm/bcami_sdk_wasm_anon.wasm; build it with
//! `scripts/build-meter-wasm.sh anon`).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use bcami_anon::{
    AnonReport, IssuerSecretKey, JoinRequest, KeyHolder, Period, Presentation, ReportFlags,
    SoftwareKeyHolder, Zk,
};
use bcami_wasm_host::{AnonModule, Cost, Limits, PAGE, WasmAnonMeter};

/// Nanoseconds this thread has spent on a CPU (Linux schedstat).
fn on_cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let module_path = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/meter-wasm/bcami_sdk_wasm_anon.wasm"));
    let iterations: u32 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(5);
    let bytes = std::fs::read(&module_path)
        .with_context(|| format!("reading {}", module_path.display()))?;

    let started = Instant::now();
    let module = AnonModule::from_bytes(&bytes)?;
    let compile = started.elapsed();
    // Generous limits: this measures what the operations need.
    let limits = Limits {
        memory_bytes: 16 * PAGE,
        fuel_per_operation: 50_000_000_000,
    };
    let mut meter = WasmAnonMeter::new(&module, limits)?;
    println!(
        "module {} bytes, sha256 {}; compile (Cranelift) {:.1} ms",
        module.size(),
        module.sha256_hex(),
        compile.as_secs_f64() * 1e3,
    );

    let issuer = IssuerSecretKey::<Zk>::from_bytes(&[0x42; 32], 1)?;
    let ipk = issuer.public_key();
    let (hid, nonce) = ([1; 32], [2; 32]);
    let report = AnonReport {
        period: Period::new(1_700_000_000_000, 900).context("period")?,
        energy_wh: 412,
        flags: ReportFlags::NONE,
    };

    println!(
        "{:<13} {:>13} {:>8} {:>7} {:>7} {:>9} {:>8} {:>11} {:>11} {:>6}",
        "operation",
        "fuel",
        "stack B",
        "heap B",
        "data B",
        "used B",
        "memory B",
        "wasm ms",
        "native ms",
        "ratio"
    );
    let row = |name: &str, cost: Cost, wasm_s: f64, native_s: f64| {
        println!(
            "{:<13} {:>13} {:>8} {:>7} {:>7} {:>9} {:>8} {:>11.2} {:>11.2} {:>6.2}",
            name,
            cost.fuel,
            cost.stack_bytes,
            cost.heap_bytes,
            cost.data_bytes,
            cost.used_bytes(),
            cost.memory_bytes,
            wasm_s * 1e3,
            native_s * 1e3,
            wasm_s / native_s
        );
    };
    // On-CPU time of this thread, best of 3 rounds after one warm-up.
    let time = |f: &mut dyn FnMut()| {
        f();
        let mut best = f64::MAX;
        for _ in 0..3 {
            let started = on_cpu_nanos();
            for _ in 0..iterations {
                f();
            }
            let per_op = (on_cpu_nanos() - started) as f64 * 1e-9 / f64::from(iterations);
            best = best.min(per_op);
        }
        best
    };

    let mut cost = Cost::default();
    let wasm_s = time(&mut || {
        cost = meter
            .keygen(black_box(&[9; 32]))
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let native_s = time(&mut || {
        black_box(
            SoftwareKeyHolder::<Zk>::from_entropy(black_box(&[9; 32]))
                .map(|h| h.commitment())
                .ok(),
        );
    });
    row("keygen", cost, wasm_s, native_s);

    let mut native = SoftwareKeyHolder::<Zk>::from_entropy(&[9; 32])?;
    let wasm_s = time(&mut || {
        cost = meter
            .join(ipk, &hid, &nonce, &[3; 32])
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let native_s = time(&mut || {
        // What the module does: decode the issuer key, build the request.
        let ipk = bcami_anon::IssuerPublicKey::<Zk>::decode(&ipk.encode()).ok();
        black_box(
            ipk.and_then(|ipk| JoinRequest::build(&mut native, &ipk, hid, nonce, &[3; 32]).ok()),
        );
    });
    row("join", cost, wasm_s, native_s);

    let join = JoinRequest::build(&mut native, ipk, hid, nonce, &[3; 32])?;
    let credential = issuer.issue(&join, &nonce)?;
    let wasm_s = time(&mut || {
        cost = meter
            .accept(ipk, &credential)
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let native_s = time(&mut || {
        // What the module does: decode the issuer key, check the credential.
        let ipk = bcami_anon::IssuerPublicKey::<Zk>::decode(&ipk.encode()).ok();
        black_box(ipk.and_then(|ipk| credential.accept(&ipk, &native.commitment()).ok()));
    });
    row("accept", cost, wasm_s, native_s);
    let kept = meter.kept_heap()?;

    let checked = credential.accept(ipk, &native.commitment())?;
    let wasm_s = time(&mut || {
        cost = meter
            .present(&report, &[5; 64])
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let native_s = time(&mut || {
        black_box(
            Presentation::build_from_entropy(&mut native, &checked, ipk, &report, &[5; 64]).ok(),
        );
    });
    row("present", cost, wasm_s, native_s);
    println!(
        "heap kept between operations (the credential's issuer key): {kept} B; on-CPU, best of 3 \
         rounds of {iterations} after one warm-up; native = bcami-anon's Zk backend with std"
    );
    Ok(())
}
