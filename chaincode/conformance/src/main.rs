//! Conformance fixture: a chaincode-as-a-service that exposes every `fabric-shim` stub call as a
//! function callable from the peer CLI with plain string arguments. Results are JSON text.
//!
//! Exit codes: 0 after a clean shutdown; 1 on a configuration or serving error.
#![forbid(unsafe_code)]

mod functions;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use fabric_shim::server::{ServerConfig, serve, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr; RUST_LOG filters (default `info`); colours only on a terminal.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("fabric-shim-conformance: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().context("invalid chaincode server configuration")?;
    serve(config, Arc::new(functions::router()), shutdown_signal())
        .await
        .context("chaincode server failed")
}
