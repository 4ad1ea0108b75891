//! The command line: clap structures, converted once into validated commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bcami_sdk::{IntervalLength, MdmsPublicKey, QualityFlags, Timestamp, WattHours};
use clap::{Args, Parser, Subcommand};

use crate::state::{DeviceId, StateDir};
use crate::tx::{self, ReadingArgs, TxCommand};
use crate::{EXIT_OK, usage};

/// Simulated and replayed smart meters, data concentrators and the MDMS export for BC-AMI.
///
/// Exit codes: 0 success; 1 failure (I/O, network, ledger); 2 bad command line or input;
/// 3 verification failed (a committed reading did not verify or decrypt to what was sent).
#[derive(Debug, Parser)]
#[command(name = "meter-sim", version, about, long_about = None)]
pub struct Cli {
    /// State folder: meter and MDMS keys, registrations, the log of sent readings.
    #[arg(long, global = true, default_value = ".state", value_name = "DIR")]
    state: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offline message building for the `peer` CLI: prints one hex or base64 string.
    #[command(subcommand)]
    Tx(TxCli),
}

#[derive(Debug, Subcommand)]
enum TxCli {
    /// Print the HID (SHA-256 of the ID) in hex.
    Hid {
        /// Meter or MDMS ID.
        #[arg(long, visible_alias = "mdms-id")]
        meter_id: String,
    },
    /// Generate a meter's device key in the state folder (keeps an existing one); prints the
    /// public key in hex.
    Keygen {
        /// Meter ID.
        #[arg(long)]
        meter_id: String,
    },
    /// Build a meter registration request (base64) with the stored key.
    Register(StampedMeter),
    /// Build a key rotation request (base64) and switch the stored key to the new one.
    Rotate(StampedMeter),
    /// Generate the MDMS key in the state folder (keeps an existing one); prints the public key.
    MdmsKeygen {
        /// MDMS ID.
        #[arg(long, default_value = "MDMS-1")]
        mdms_id: String,
    },
    /// Build the MDMS key registration request (base64).
    MdmsRegister {
        /// MDMS ID.
        #[arg(long, default_value = "MDMS-1")]
        mdms_id: String,
        /// Timestamp, Unix milliseconds (default: now).
        #[arg(long)]
        timestamp_ms: Option<u64>,
    },
    /// Build one reading transaction (base64), encrypted to the MDMS and signed by the meter.
    Reading(ReadingCli),
    /// Decrypt a reading (base64) with the state folder's MDMS key; prints JSON.
    Decrypt {
        /// The reading transaction, base64.
        #[arg(long)]
        reading: String,
    },
}

#[derive(Debug, Args)]
struct StampedMeter {
    /// Meter ID.
    #[arg(long)]
    meter_id: String,
    /// Timestamp, Unix milliseconds (default: now, or 1 ms after the meter's last message).
    #[arg(long)]
    timestamp_ms: Option<u64>,
}

#[derive(Debug, Args)]
struct ReadingCli {
    /// Meter ID.
    #[arg(long)]
    meter_id: String,
    /// Transaction timestamp, Unix milliseconds (default: now).
    #[arg(long)]
    timestamp_ms: Option<u64>,
    /// Energy imported in the interval, Wh.
    #[arg(long)]
    energy_wh: u64,
    /// Interval start, Unix milliseconds (default: the interval that ended before the timestamp).
    #[arg(long)]
    interval_start_ms: Option<u64>,
    /// Interval length in seconds.
    #[arg(long, default_value_t = 1800)]
    interval_s: u32,
    /// Cumulative register at the interval end, Wh (default: stored register + energy).
    #[arg(long)]
    cumulative_wh: Option<u64>,
    /// Quality flag bits (1 estimated, 2 outage, 4 clock adjusted, 8 tamper).
    #[arg(long, default_value_t = 0)]
    quality: u16,
    /// Encrypt to this MDMS public key (66 hex digits) instead of the state folder's.
    #[arg(long, value_name = "HEX")]
    mdms_public_key: Option<String>,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Tx(command) => {
            let command = tx_command(command)?;
            let state = StateDir::open(&cli.state)?;
            let out = tx::execute(&state, command, now()?)?;
            println!("{out}");
            Ok(ExitCode::from(EXIT_OK))
        }
    }
}

fn tx_command(command: TxCli) -> Result<TxCommand> {
    let ts = |ms: Option<u64>| ms.map(Timestamp::from_unix_millis);
    Ok(match command {
        TxCli::Hid { meter_id } => TxCommand::Hid {
            id: device_id(&meter_id)?,
        },
        TxCli::Keygen { meter_id } => TxCommand::Keygen {
            meter: device_id(&meter_id)?,
        },
        TxCli::Register(m) => TxCommand::Register {
            meter: device_id(&m.meter_id)?,
            timestamp: ts(m.timestamp_ms),
        },
        TxCli::Rotate(m) => TxCommand::Rotate {
            meter: device_id(&m.meter_id)?,
            timestamp: ts(m.timestamp_ms),
        },
        TxCli::MdmsKeygen { mdms_id } => TxCommand::MdmsKeygen {
            mdms: device_id(&mdms_id)?,
        },
        TxCli::MdmsRegister {
            mdms_id,
            timestamp_ms,
        } => TxCommand::MdmsRegister {
            mdms: device_id(&mdms_id)?,
            timestamp: ts(timestamp_ms),
        },
        TxCli::Reading(r) => TxCommand::Reading(ReadingArgs {
            meter: device_id(&r.meter_id)?,
            timestamp: ts(r.timestamp_ms),
            energy: WattHours(r.energy_wh),
            interval_start: ts(r.interval_start_ms),
            interval: IntervalLength::from_seconds(r.interval_s)
                .ok_or_else(|| usage("--interval-s must be at least 1"))?,
            cumulative: r.cumulative_wh.map(WattHours),
            quality: QualityFlags::from_bits(r.quality)
                .map_err(|e| usage(format!("--quality: {e}")))?,
            mdms_public_key: r
                .mdms_public_key
                .map(|text| {
                    let bytes = hex::decode(text.trim())
                        .map_err(|e| usage(format!("--mdms-public-key is not hex: {e}")))?;
                    MdmsPublicKey::from_sec1_bytes(&bytes)
                        .map_err(|e| usage(format!("--mdms-public-key: {e}")))
                })
                .transpose()?,
        }),
        TxCli::Decrypt { reading } => TxCommand::Decrypt {
            reading: BASE64
                .decode(reading.trim())
                .map_err(|e| usage(format!("--reading is not base64: {e}")))?,
        },
    })
}

fn device_id(text: &str) -> Result<DeviceId> {
    text.parse::<DeviceId>().map_err(|e| usage(e.to_string()))
}

/// The wall clock as a ledger timestamp.
pub fn now() -> Result<Timestamp> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    Ok(Timestamp::from_unix_millis(
        u64::try_from(since.as_millis()).context("the system clock is out of range")?,
    ))
}
