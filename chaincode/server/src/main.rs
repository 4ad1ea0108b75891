//! The BC-AMI chaincode-as-a-service server: glue between the environment, the shim's CCaaS
//! server and the BC-AMI contract.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM/Ctrl-C); 1 on a configuration or serving error.
#![forbid(unsafe_code)]

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
            eprintln!("bcami-chaincode: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().context("invalid chaincode server configuration")?;
    let contract: Arc<dyn fabric_shim::Contract> = Arc::new(bcami_contract::contract());
    serve(config, contract, shutdown_signal())
        .await
        .context("chaincode server failed")
}
