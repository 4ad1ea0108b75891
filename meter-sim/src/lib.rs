//! Simulated and replayed smart meters, data concentrators and MDMS export for BC-AMI: the
//! engine behind the `meter-sim` binary, public so that end-to-end tests can drive it in-process.
//!
//! Exit codes of the binary: 0 success; 1 failure (I/O, network, ledger); 2 bad command line or
//! input; 3 verification failed (a committed reading did not verify or decrypt to what the meter
//! sent).

#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

pub mod anon;
mod civil;
mod cli;
mod commands;
mod contract_api;
pub mod embedded;
pub mod group;
pub mod headend;
pub mod mdms;
pub mod observe;
mod profile;
pub mod replay;
pub mod run;
pub mod runtime;
pub mod state;
pub mod stats;
mod tx;
mod workload;

use std::fmt;
use std::process::ExitCode;

use clap::Parser as _;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the work failed (I/O, network, ledger).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad command line or bad input (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: verification failed.
pub const EXIT_VERIFICATION: u8 = 3;
/// Exit code: `run` ended with readings lost (dropped from a full meter store, refused) or still
/// pending in the meters' stores; the summary's first line says how many.
pub const EXIT_INCOMPLETE: u8 = 4;

/// An error caused by what the user asked for (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// The binary: parse the command line, run it, print any error with its whole context chain,
/// and map it to an exit code.
pub fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("meter-sim: error: {err:#}");
            if err.chain().any(|e| e.is::<UsageError>()) {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}
