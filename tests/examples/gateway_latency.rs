//! Round-trip latency of the Gateway client against the live network: `evaluate` and
//! submit-to-commit (endorse → submit → commit status), one call at a time, on the conformance
//! chaincode. Needs the network's variables (source `$BCAMI_RUN_DIR/network.env`) and
//! `conformance` deployed.
//!
//! usage: cargo run --release -p bcami-e2e --example gateway_latency -- [ROUNDS]
//!
//! Exit codes: 0 ok; 1 on any failure.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bcami_e2e::{NetworkEnv, User};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap_or(1);
    println!(
        "{what:<18} n={:<4} mean={:>8.2} ms  p50={:>8.2} ms  p95={:>8.2} ms  p99={:>8.2} ms",
        samples.len(),
        mean.as_secs_f64() * 1e3,
        percentile(&samples, 50.0).as_secs_f64() * 1e3,
        percentile(&samples, 95.0).as_secs_f64() * 1e3,
        percentile(&samples, 99.0).as_secs_f64() * 1e3,
    );
}

async fn run(rounds: usize) -> Result<(), Box<dyn std::error::Error>> {
    let env = NetworkEnv::load()?;
    let contract = env
        .utility
        .gateway(User::Client1)
        .await?
        .network(env.channel.clone())
        .contract("conformance");
    let key = format!("latency-{}", std::process::id());
    contract.submit("put", [key.as_str(), "0"]).await?; // warm-up, and the key exists

    let mut evaluate = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        contract.evaluate("get", [key.as_str()]).await?;
        evaluate.push(t.elapsed());
    }
    let mut submit = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t = Instant::now();
        contract.submit("put", [key.clone(), i.to_string()]).await?;
        submit.push(t.elapsed());
    }
    report("evaluate", evaluate);
    report("submit-to-commit", submit);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    match run(rounds).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway_latency: {e}");
            ExitCode::FAILURE
        }
    }
}
