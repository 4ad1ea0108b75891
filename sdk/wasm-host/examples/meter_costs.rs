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
use bcami_sdk::session::{HeadEnd, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus};
use bcami_sdk::{HeadEndSecretKey, rand_core};
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

    session_rows(&mut meter, &key, hid, t, iterations, &time, &row)?;
    println!(
        "(on-CPU, best of 5 rounds of {iterations} after one warm-up; native = bcami-sdk with its default `std` \
         feature, whose precomputed base-point tables the no_std module does not have)"
    );
    Ok(())
}

/// The head-end's randomness in these figures (splitmix64; not the meter's side, which takes
/// entropy).
struct Rng(u64);

impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for Rng {}

/// The meter's side of the head-end session: start, finish (timed as start + finish, minus
/// start), and sealing and opening a 200-byte record (about a signed reading) with the head-end
/// connection's associated data.
fn session_rows(
    meter: &mut WasmMeter,
    key: &MeterSecretKey,
    hid: Hid,
    t: Timestamp,
    iterations: u32,
    time: &dyn Fn(&mut dyn FnMut()) -> f64,
    row: &dyn Fn(&str, Cost, f64, f64),
) -> Result<()> {
    const AAD: &[u8] = b"BC-AMI/1 head-end connection\0";
    let head_end = HeadEnd::new(
        Hid::from_meter_id("AHE-1"),
        HeadEndSecretKey::from_entropy(&[5; 32])?,
        HeadEndPolicy::default(),
    );
    let identity = head_end.identity();
    let directory = std::collections::BTreeMap::from([(
        hid,
        MeterRecord {
            public_key: key.public_key(),
            key_version: 1,
            status: MeterStatus::Active,
        },
    )]);
    let init = meter.session_start(&[6; 32], key, hid, &identity, t)?.value;
    let (pending, response) = head_end.respond(&mut Rng(1), &init, &directory, t)?;

    let mut start_cost = Cost::default();
    let start_wasm = time(&mut || {
        start_cost = meter
            .session_start(black_box(&[6; 32]), key, hid, &identity, t)
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let start_native = time(&mut || {
        black_box(
            MeterHandshake::start_from_entropy(black_box(&[6; 32]), key, hid, identity, t).ok(),
        );
    });
    row("session start", start_cost, start_wasm, start_native);

    let mut finish_cost = Cost::default();
    let pair_wasm = time(&mut || {
        let started = meter.session_start(&[6; 32], key, hid, &identity, t);
        finish_cost = started
            .and_then(|_| meter.session_finish(key, &response))
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let pair_native = time(&mut || {
        let started = MeterHandshake::start_from_entropy(&[6; 32], key, hid, identity, t);
        black_box(
            started
                .ok()
                .map(|(handshake, _)| handshake.finish(key, &response).ok()),
        );
    });
    row(
        "session finish",
        finish_cost,
        pair_wasm - start_wasm,
        pair_native - start_native,
    );

    // The session both meters (wasm and native) now hold: the same keys, from the same entropy
    // and response.
    meter.session_start(&[6; 32], key, hid, &identity, t)?;
    let confirm = meter.session_finish(key, &response)?.value.confirm;
    let mut head_end_session = pending.finish(&confirm, &directory)?;
    let (native, _) = MeterHandshake::start_from_entropy(&[6; 32], key, hid, identity, t)?;
    let (mut native_session, _) = native.finish(key, &response)?;
    let record = [0x5a; 200];
    let mut seal_cost = Cost::default();
    let seal_wasm = time(&mut || {
        seal_cost = meter
            .session_seal(AAD, black_box(&record))
            .map(|m| m.cost)
            .unwrap_or_default();
    });
    let seal_native = time(&mut || {
        black_box(native_session.seal(AAD, black_box(&record)).ok());
    });
    row("session seal", seal_cost, seal_wasm, seal_native);

    // Each record opens once: seal enough for the warm-up and the five rounds.
    let records = (0..6 * iterations)
        .map(|_| head_end_session.seal(AAD, &record))
        .collect::<Result<Vec<_>, _>>()?;
    let mut open_cost = Cost::default();
    let mut next = records.iter();
    let open_wasm = time(&mut || {
        if let Some(sealed) = next.next() {
            open_cost = meter
                .session_open(AAD, sealed)
                .map(|m| m.cost)
                .unwrap_or_default();
        }
    });
    let mut next = records.iter();
    let open_native = time(&mut || {
        if let Some(sealed) = next.next() {
            black_box(native_session.open(AAD, sealed).ok());
        }
    });
    row("session open", open_cost, open_wasm, open_native);
    Ok(())
}
