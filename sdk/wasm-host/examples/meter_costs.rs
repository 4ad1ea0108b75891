//! Figures for BENCHMARKS.md: each meter operation in the wasm module under wasmtime (fuel,
//! stack, heap, linear memory, time) next to the same operation in native bcami-sdk, and the
//! cost of compiling the module and of instantiating one meter.
//!
//! `cargo run --release -p bcami-wasm-host --example meter_costs [-- MODULE [ITERATIONS]]`
//! (MODULE defaults to target/meter-wasm/bcami_sdk_wasm.wasm; build it with
//! scripts/build-meter-wasm.sh).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use bcami_sdk::{
    Hid, IntervalLength, KeyRotationRequest, MdmsSecretKey, MeterSecretKey, QualityFlags,
    RegistrationRequest, Timestamp, Transaction, UsageReport, WattHours,
};
use bcami_wasm_host::{Cost, Limits, MeterModule, WasmMeter};

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
        .unwrap_or_else(|| PathBuf::from("target/meter-wasm/bcami_sdk_wasm.wasm"));
    let iterations: u32 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(200);
    let bytes = std::fs::read(&module_path)
        .with_context(|| format!("reading {}", module_path.display()))?;

    let started = Instant::now();
    let module = MeterModule::from_bytes(&bytes)?;
    let compile = started.elapsed();
    let started = Instant::now();
    let mut meter = WasmMeter::new(&module, Limits::default())?;
    let instantiate = started.elapsed();
    println!(
        "module {} bytes, sha256 {}; compile (Cranelift) {:.1} ms, instantiate {:.1} µs",
        module.size(),
        module.sha256_hex(),
        compile.as_secs_f64() * 1e3,
        instantiate.as_secs_f64() * 1e6
    );

    let key = MeterSecretKey::from_entropy(&[1; 32])?;
    let mdms = MdmsSecretKey::from_entropy(&[2; 32])?.public_key();
    let hid = Hid::from_meter_id("SM-0001");
    let t = Timestamp::from_unix_millis(1_700_000_001_800);
    let report = UsageReport {
        interval_start: Timestamp::from_unix_millis(1_700_000_000_000),
        interval_length: IntervalLength::HALF_HOUR,
        energy: WattHours(412),
        cumulative_register: WattHours(12_345_678),
        quality: QualityFlags::NONE,
    };

    println!(
        "{:<13} {:>11} {:>8} {:>7} {:>7} {:>9} {:>8} {:>11} {:>11} {:>6}",
        "operation",
        "fuel",
        "stack B",
        "heap B",
        "data B",
        "used B",
        "memory B",
        "wasm µs",
        "native µs",
        "ratio"
    );
    let row = |name: &str, cost: Cost, wasm_s: f64, native_s: f64| {
        println!(
            "{:<13} {:>11} {:>8} {:>7} {:>7} {:>9} {:>8} {:>11.1} {:>11.1} {:>6.2}",
            name,
            cost.fuel,
            cost.stack_bytes,
            cost.heap_bytes,
            cost.data_bytes,
            cost.used_bytes(),
            cost.memory_bytes,
            wasm_s * 1e6,
            native_s * 1e6,
            wasm_s / native_s
        );
    };
    // On-CPU time of this thread (the machine is shared: wall time includes waiting for a core),
    // best of 5 rounds.
    let time = |f: &mut dyn FnMut()| {
        f(); // warm-up
        let mut best = f64::MAX;
        for _ in 0..5 {
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
            .unwrap_or_default()
    });
    let native_s = time(&mut || {
        black_box(
            MeterSecretKey::from_entropy(black_box(&[9; 32]))
                .map(|k| k.public_key())
                .ok(),
        );
    });
    row("keygen", cost, wasm_s, native_s);

    let wasm_s = time(&mut || {
        cost = meter
            .registration(&key, hid, t)
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let native_s = time(&mut || {
        black_box(
            RegistrationRequest::build(&key, hid, t)
                .map(|r| r.encode())
                .ok(),
        );
    });
    row("registration", cost, wasm_s, native_s);

    let wasm_s = time(&mut || {
        cost = meter
            .reading(&[3; 32], &key, hid, t, &report, &mdms)
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let native_s = time(&mut || {
        black_box(
            Transaction::build_from_entropy(&[3; 32], &key, hid, t, &report, &mdms)
                .map(|r| r.encode())
                .ok(),
        );
    });
    row("reading", cost, wasm_s, native_s);

    let new_key = MeterSecretKey::from_entropy(&[4; 32])?;
    let wasm_s = time(&mut || {
        cost = meter
            .rotation(&key, &[4; 32], hid, t)
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let native_s = time(&mut || {
        black_box(
            KeyRotationRequest::build(&key, &new_key, hid, t)
                .map(|r| r.encode())
                .ok(),
        );
    });
    row("rotation", cost, wasm_s, native_s);
    println!(
        "(on-CPU, best of 5 rounds of {iterations} after one warm-up; native = bcami-sdk with its default `std` \
         feature, whose precomputed base-point tables the no_std module does not have)"
    );
    Ok(())
}
