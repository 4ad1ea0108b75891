//! Meter ↔ head-end handshakes: on-CPU time per side (Linux schedstat) and how many handshakes
//! per second the head-end completes on 1 and on 2 threads.
//! Run: `cargo run -p bcami-sdk --release --example session_throughput [HANDSHAKES]`.
//!
//! Set-up (not timed): `HANDSHAKES` handshakes over 1,000 distinct meters, run once in full to
//! record each meter's SessionInit and SessionConfirm. The RNGs are seeded per handshake, so when
//! the timed head-end answers handshake `i` again with the same seed it produces the same response
//! and the recorded confirmation is valid: the timed loop is exactly the head-end's real work
//! (decode, directory lookup, ephemeral key, ECDH, HKDF, sign, MAC; then decode, MAC, verify).

// Example set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use bcami_sdk::rand_core::{CryptoRng, Error, RngCore};
use bcami_sdk::session::{
    HeadEnd, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus, SessionConfirm, SessionInit,
    SessionResponse,
};
use bcami_sdk::{HeadEndSecretKey, Hid, MeterSecretKey, Timestamp};
use sha2::{Digest, Sha256};

/// SHA-256 in counter mode from a seed.
struct SeededRng([u8; 32], u64);
impl SeededRng {
    fn new(side: u8, index: usize) -> Self {
        let seed = Sha256::new()
            .chain_update([side])
            .chain_update(index.to_be_bytes())
            .finalize();
        SeededRng(seed.into(), 0)
    }
}
impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            self.1 += 1;
            let block = Sha256::new()
                .chain_update(self.0)
                .chain_update(self.1.to_be_bytes())
                .finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for SeededRng {}

/// Nanoseconds this thread has spent running on a CPU.
fn on_cpu_nanos() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat starts with on-CPU ns")
}

const METERS: usize = 1000;
const METER_SIDE: u8 = 1;
const HEAD_END_SIDE: u8 = 2;

struct Recorded {
    meter: usize,
    init: Vec<u8>,
    response: Vec<u8>,
    confirm: Vec<u8>,
}

fn main() {
    let handshakes: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("HANDSHAKES is a number"))
        .unwrap_or(6000);
    let now = Timestamp::from_unix_millis(1_700_000_000_000);
    let head_end = HeadEnd::new(
        Hid::from_meter_id("AHE-BENCH"),
        HeadEndSecretKey::from_entropy(&[2; 32]).expect("entropy"),
        HeadEndPolicy::default(),
    );
    let meters: Vec<(Hid, MeterSecretKey)> = (0..METERS)
        .map(|i| {
            let mut entropy = [0u8; 32];
            entropy[..8].copy_from_slice(&(i as u64).to_be_bytes());
            (
                Hid::from_meter_id(format!("SM-{i:06}")),
                MeterSecretKey::from_entropy(&entropy).expect("entropy"),
            )
        })
        .collect();
    let directory: BTreeMap<Hid, MeterRecord> = meters
        .iter()
        .map(|(hid, key)| {
            (
                *hid,
                MeterRecord {
                    public_key: key.public_key(),
                    key_version: 1,
                    status: MeterStatus::Active,
                },
            )
        })
        .collect();

    println!("recording {handshakes} handshakes over {METERS} meters (not timed)...");
    let recorded: Vec<Recorded> = (0..handshakes)
        .map(|i| {
            let (hid, key) = &meters[i % METERS];
            let (meter, init) = MeterHandshake::start(
                &mut SeededRng::new(METER_SIDE, i),
                *hid,
                head_end.identity(),
                now,
            )
            .expect("start");
            let (pending, response) = head_end
                .respond(
                    &mut SeededRng::new(HEAD_END_SIDE, i),
                    &init,
                    &directory,
                    now,
                )
                .expect("respond");
            let (_, confirm) = meter.finish(key, &response).expect("finish");
            pending.finish(&confirm, &directory).expect("finish");
            Recorded {
                meter: i % METERS,
                init: init.encode(),
                response: response.encode(),
                confirm: confirm.encode(),
            }
        })
        .collect();

    // Meter side, on-CPU per handshake (one thread).
    let mut best_meter = f64::MAX;
    for _ in 0..3 {
        let start = on_cpu_nanos();
        for (i, r) in recorded.iter().enumerate() {
            let (hid, key) = &meters[r.meter];
            let (meter, init) = MeterHandshake::start(
                &mut SeededRng::new(METER_SIDE, i),
                *hid,
                head_end.identity(),
                now,
            )
            .expect("start");
            black_box(init.encode());
            let response = SessionResponse::decode(&r.response).expect("decode");
            let (session, confirm) = meter.finish(key, &response).expect("finish");
            assert_eq!(confirm.encode(), r.confirm);
            black_box(session);
        }
        let per = (on_cpu_nanos() - start) as f64 / recorded.len() as f64 / 1000.0;
        best_meter = best_meter.min(per);
    }
    println!("meter side per handshake:    {best_meter:>7.1} µs on-CPU (best of 3 x {handshakes})");

    // Head-end side on 1 and 2 threads.
    let head_end_work = |indices: &[usize]| -> u64 {
        let start = on_cpu_nanos();
        for &i in indices {
            let r = &recorded[i];
            let init = SessionInit::decode(&r.init).expect("decode");
            let (pending, response) = head_end
                .respond(
                    &mut SeededRng::new(HEAD_END_SIDE, i),
                    &init,
                    &directory,
                    now,
                )
                .expect("respond");
            black_box(response.encode());
            let confirm = SessionConfirm::decode(&r.confirm).expect("decode");
            black_box(pending.finish(&confirm, &directory).expect("finish"));
        }
        on_cpu_nanos() - start
    };
    for threads in [1usize, 2] {
        let mut best_rate = 0f64;
        let mut cpu_per = f64::MAX;
        for _ in 0..3 {
            let wall = Instant::now();
            let cpu: u64 = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|t| {
                        let indices: Vec<usize> = (t..handshakes).step_by(threads).collect();
                        let work = &head_end_work;
                        scope.spawn(move || work(&indices))
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().expect("worker")).sum()
            });
            let rate = handshakes as f64 / wall.elapsed().as_secs_f64();
            best_rate = best_rate.max(rate);
            cpu_per = cpu_per.min(cpu as f64 / handshakes as f64 / 1000.0);
        }
        println!(
            "head-end, {threads} thread(s):         {cpu_per:>7.1} µs on-CPU per handshake, {best_rate:>7.0} handshakes/s wall (best of 3 x {handshakes})"
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
}
