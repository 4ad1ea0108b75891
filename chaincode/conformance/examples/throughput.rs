//! Committed invocations per second on the live network for a one-write transaction: submits
//! TOTAL `put` transactions of the conformance fixture through the Utility peer's Gateway,
//! CONCURRENCY at a time, each waiting for its VALID commit.
//!
//! usage (network.env sourced, fixture deployed as `conformance`):
//!   cargo run --release -p fabric-shim-conformance --example throughput -- TOTAL CONCURRENCY
#![allow(missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fabric_gateway_client::{Gateway, load_msp};
use tokio::sync::Semaphore;

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set; source network.env"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total: usize = args
        .first()
        .map_or(Ok(500), |a| a.parse())
        .context("TOTAL")?;
    let concurrency: usize = args
        .get(1)
        .map_or(Ok(50), |a| a.parse())
        .context("CONCURRENCY")?;
    let creds = load_msp(
        Path::new(&var("BCAMI_UTILITY_MSP_CLIENT1")?),
        &var("BCAMI_UTILITY_MSPID")?,
    )?;
    let gateway = Gateway::builder(var("BCAMI_UTILITY_PEER_ADDRESS")?, creds.identity)
        .signer(creds.signer)
        .tls_ca_file(Path::new(&var("BCAMI_UTILITY_PEER_TLS_CA")?))?
        .connect()
        .await?;
    let contract = gateway
        .network(var("BCAMI_CHANNEL")?)
        .contract("conformance");
    contract
        .submit("put", ["throughput-warmup", "x"])
        .await
        .context("warm-up submit")?;

    let run = std::process::id();
    let permits = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let contract = contract.clone();
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let key = format!("tp{run}-{i:06}");
            let result = contract.submit("put", [key.as_str(), "value"]).await;
            drop(permit);
            result.map(|_| t0.elapsed())
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(total);
    let mut failures = 0;
    for t in tasks {
        match t.await? {
            Ok(l) => latencies.push(l),
            Err(e) => {
                failures += 1;
                eprintln!("failed: {e}");
            }
        }
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: usize| {
        latencies
            .get(latencies.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "committed {} of {total} in {:.1} s: {:.1} invocations/s (concurrency {concurrency}); latency p50 {:?} p95 {:?} p99 {:?}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(50),
        pct(95),
        pct(99)
    );
    if failures > 0 {
        bail!("{failures} transactions failed");
    }
    Ok(())
}
