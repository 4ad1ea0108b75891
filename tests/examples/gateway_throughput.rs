//! One-write invocations per second through the Gateway client against the live network:
//! `put KEY VALUE` (one state write, endorsed by both orgs, ordered, committed VALID) submitted
//! by CONCURRENCY tasks over one connection, TOTAL transactions in all, each with its own key.
//! Every chaincode in the side-by-side of BENCHMARKS.md has this `put`: the Rust shim's
//! `conformance`, Fabric's Go shim (`fabric-network/build/kvcc`) and Fabric's Node shim
//! (`tests/interop/chaincode`). `tests/interop/bench/throughput.js` is the same load from
//! Fabric's official Node client.
//!
//! usage: cargo run --release -p bcami-e2e --example gateway_throughput -- CHAINCODE [TOTAL] [CONCURRENCY]
//! (network.env sourced). Prints `CHAINCODE client=rust total=… concurrency=… seconds=… tps=…`.
//!
//! Exit codes: 0 ok; 1 on any failure (every transaction must commit VALID).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bcami_e2e::{NetworkEnv, User};

async fn run(chaincode: &str, total: usize, concurrency: usize) -> Result<(), String> {
    let env = NetworkEnv::load().map_err(|e| e.to_string())?;
    let contract = env
        .utility
        .gateway(User::Client1)
        .await
        .map_err(|e| e.to_string())?
        .network(env.channel.clone())
        .contract(chaincode);
    let run = format!("tput-{}-{}", std::process::id(), chaincode);
    // Warm-up: the connection, and the chaincode's first transaction.
    contract
        .submit("put", [format!("{run}-warm"), "0".into()])
        .await
        .map_err(|e| e.to_string())?;

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (contract, next, run) = (contract.clone(), next.clone(), run.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), String>(());
                }
                contract
                    .submit("put", [format!("{run}-{i}"), i.to_string()])
                    .await
                    .map_err(|e| format!("transaction {i}: {e}"))?;
            }
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{chaincode} client=rust total={total} concurrency={concurrency} seconds={seconds:.2} tps={:.1}",
        total as f64 / seconds
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(chaincode) = args.next() else {
        eprintln!("usage: gateway_throughput CHAINCODE [TOTAL] [CONCURRENCY]");
        return ExitCode::FAILURE;
    };
    let total = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let concurrency = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    match run(&chaincode, total, concurrency.max(1)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway_throughput: {e}");
            ExitCode::FAILURE
        }
    }
}
