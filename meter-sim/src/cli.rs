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
    /// Provision and register meters, send their readings through concentrators, report.
    Run(RunCli),
    /// The MDMS: export verified, decrypted readings.
    #[command(subcommand)]
    Mdms(MdmsCli),
    /// Offline message building for the `peer` CLI: prints one hex or base64 string.
    #[command(subcommand)]
    Tx(TxCli),
    /// The AMI head-end: register its key on the ledger, serve authenticated sessions over TCP,
    /// and have simulated meters (registered on the ledger) open sessions, send sealed readings
    /// and receive sealed commands. Exit code 3 if a session that should work failed, or one
    /// that should be refused was not.
    Headend(HeadEndCli),
    /// Anonymous readings (the DAA paper): the issuer service, meters reporting anonymously,
    /// per-period aggregates.
    #[command(subcommand)]
    Anon(AnonCli),
    /// Group keys (MLS, RFC 9420) with the ledger as Delivery Service: the head-end and fresh
    /// meters run a script of steps (create, add, remove, revoke, update, send) in one group;
    /// every multicast must be decrypted by exactly the current members (else exit code 3).
    Group(GroupCli),
    /// The contract's interface as bcami-api owns it (functions with their roles, per-reading
    /// rejection codes, limits) as JSON, keyed by constant names such as SUBMIT_READINGS and
    /// REPLAYED: scripts read names from it instead of spelling them.
    Api,
}

#[derive(Debug, Args)]
struct GroupCli {
    /// Run the contract on an in-process ledger, no Fabric.
    #[arg(long)]
    embedded: bool,
    #[command(flatten)]
    network: NetworkCli,
    /// Fresh meters to enroll (provisioned, registered, credential, key package).
    #[arg(long, default_value_t = 5)]
    meters: usize,
    /// The group's id (1 to 32 bytes; default: made from the time).
    #[arg(long)]
    group_id: Option<String>,
    /// The group authority's secret (made if missing). Default: group-authority.key in the
    /// state folder.
    #[arg(long, value_name = "FILE")]
    authority: Option<PathBuf>,
    /// Steps: create, add, add:1,2, remove:1, revoke:1, update, update:1, send:TEXT.
    #[arg(required = true, value_name = "STEP")]
    steps: Vec<crate::group::Step>,
}

#[derive(Debug, Args)]
struct HeadEndCli {
    /// Run the contract on an in-process ledger, no Fabric (also what happens when no network
    /// is up).
    #[arg(long)]
    embedded: bool,
    #[command(flatten)]
    network: NetworkCli,
    /// The head-end's ID (its key lives in headend.json beside the MDMS's key).
    #[arg(long, default_value = "AHE-1")]
    head_end_id: String,
    /// Number of simulated meters.
    #[arg(long, default_value_t = 50)]
    meters: usize,
    /// Meters are named <PREFIX>-000001, … (shared with `meter-sim run`'s state folder).
    #[arg(long, default_value = "SES")]
    meter_prefix: String,
    /// Sealed readings each meter sends; the head-end answers each with a sealed command.
    #[arg(long, default_value_t = 3)]
    messages: usize,
    /// Revoke the first N meters on the ledger first: their handshakes must be refused.
    #[arg(long, default_value_t = 0)]
    revoke: usize,
    /// Add N meters the ledger does not know: their handshakes must be refused.
    #[arg(long, default_value_t = 0)]
    unknown: usize,
    /// Rotate the head-end's key on the ledger (as the administrator) before serving.
    #[arg(long)]
    rotate_key: bool,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum AnonCli {
    /// The Utility's issuer service: roll the credential epoch (a fresh issuer key, its secret
    /// kept in <state>/anon/).
    Issue {
        #[command(flatten)]
        network: NetworkCli,
        /// Period length in seconds, for the network's first key (it never changes after).
        #[arg(long)]
        period_secs: Option<u32>,
        /// Print the issuer record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enrol fresh meters and have each report the current period anonymously through the
    /// concentrators, a share of them twice; check the ledger's aggregate against the true sum.
    /// Exit code 3 if they differ or a double report was missed.
    Run {
        #[command(flatten)]
        network: NetworkCli,
        /// Run on an in-process ledger (issues the first key itself).
        #[arg(long)]
        embedded: bool,
        /// Meters.
        #[arg(long, default_value_t = 20)]
        meters: usize,
        /// Concentrators.
        #[arg(long, default_value_t = 2)]
        concentrators: usize,
        /// Share of meters that report a second, different reading (0 to 1).
        #[arg(long, default_value_t = 0.1)]
        double_share: f64,
        /// Accepted readings sent again, unchanged, through another concentrator.
        #[arg(long, default_value_t = 2)]
        replays: usize,
        /// Readings per transaction (at most 500).
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A table of per-period aggregates.
    Aggregates {
        #[command(flatten)]
        network: NetworkCli,
        /// Period starts (Unix ms); default: the last --last periods.
        #[arg(long = "period-start", value_name = "MS")]
        periods: Vec<u64>,
        /// How many recent periods, without --period-start.
        #[arg(long, default_value_t = 4)]
        last: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct NetworkCli {
    /// The network's connection file (written by `scripts/network.sh up`); meter-sim reads the
    /// `network.json` written beside it.
    /// Default: $BCAMI_RUN_DIR/network.env, else <repo>/run/network.env.
    #[arg(long, value_name = "FILE")]
    network_env: Option<PathBuf>,
    /// Chaincode name.
    #[arg(long, default_value = "bcami")]
    chaincode: String,
    /// Folder of the network's one MDMS key (default: mdms/ beside network.env, so everyone
    /// using the network shares it; the contract accepts one MDMS key per network).
    #[arg(long, value_name = "DIR")]
    mdms_state: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunCli {
    /// Run the contract on an in-process ledger, no Fabric (also what happens when no network
    /// is up). Its state lives in <state>/embedded.
    #[arg(long)]
    embedded: bool,
    #[command(flatten)]
    network: NetworkCli,
    /// Number of simulated meters (ignored with --replay: one meter per household).
    #[arg(long, default_value_t = 200)]
    meters: usize,
    /// Simulated meters are named <PREFIX>-000001, <PREFIX>-000002, …
    #[arg(long, default_value = "SIM")]
    meter_prefix: String,
    /// Number of data concentrators, K (they share the network's client identities
    /// round-robin when K exceeds them).
    #[arg(long, default_value_t = 2)]
    concentrators: usize,
    /// Days of readings per meter (synthetic; fractions allowed).
    #[arg(long, default_value_t = 1.0)]
    days: f64,
    /// Metering interval: 30m, 15m, 1h, 900s or seconds.
    #[arg(long, default_value = "30m")]
    interval: String,
    /// Readings per transaction (at most 1,000).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Most readings sent per second (default: as fast as they commit).
    #[arg(long)]
    rate: Option<f64>,
    /// Transactions in flight at once (default: 4 per concentrator). Each has its own meters.
    #[arg(long)]
    in_flight: Option<usize>,
    /// Failed attempts in a row after which a concentrator gives up for this run (its meters
    /// keep what it held, the next run sends it, and this run exits non-zero). By default it
    /// never gives up: a batch whose transaction failed as a whole (peer or orderers
    /// unreachable, commit not seen) is resent after 1, 2, 4, 8, 15, 15… s for as long as the
    /// ledger is away. Readings an earlier attempt stored come back `replayed` and count as
    /// committed; readings that waited longer than the contract's window are re-signed.
    #[arg(long)]
    retries: Option<u32>,
    /// Unconfirmed interval reports each meter keeps (480: 10 days of half-hours). A full
    /// store drops its oldest report, and the run names every interval dropped.
    #[arg(long, default_value_t = crate::state::DEFAULT_STORE_CAPACITY, value_name = "REPORTS")]
    meter_store: usize,
    /// Fault injection: cut concentrator C's link to the ledger AFTER seconds into the
    /// readings phase, for FOR seconds (its meters keep measuring). Format C:AFTER:FOR.
    #[arg(long, value_name = "C:AFTER:FOR")]
    link_down: Option<String>,
    /// Seconds between the meters' re-reads of the MDMS key from the ledger, so a key rotated
    /// during the run (`mdms rotate-key`) is used from the next batch on. 0: never.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    mdms_key_refresh: u64,
    /// Seed of the synthetic household profiles.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First metering day (UTC, YYYY-MM-DD) for meters that have sent nothing yet; a resumed
    /// run continues where each meter stopped.
    #[arg(long, default_value = "2024-01-01")]
    start: String,
    /// Replay a "Smart Meters in London" half-hourly CSV (LCLid,tstp,energy(kWh/hh)).
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// A misbehaving concentrator: flip one bit in one reading of each of the first N batches.
    #[arg(long, default_value_t = 0)]
    tamper: usize,
    /// MDMS ID.
    #[arg(long, default_value = "MDMS-1")]
    mdms_id: String,
    /// Skip reading everything back as the MDMS at the end.
    #[arg(long)]
    no_verify: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
    /// Where the meters' code runs: `native` (bcami-sdk in this process) or `wasm` (the meter
    /// module under wasmtime, one instance per meter with --meter-memory and --meter-fuel).
    /// `wasm` needs meter-sim built with the cargo feature `wasm`
    /// (`cargo build -p meter-sim --features wasm`).
    #[arg(long, value_enum, default_value_t = MeterRuntimeCli::Native)]
    meter_runtime: MeterRuntimeCli,
    /// Linear-memory cap of each wasm meter: bytes, or with a KiB/MiB suffix (whole 64 KiB
    /// pages count).
    #[arg(long, default_value = "64KiB", value_name = "SIZE")]
    meter_memory: String,
    /// Fuel (wasm instructions) each wasm meter operation may use.
    #[arg(long, default_value_t = crate::runtime::DEFAULT_METER_FUEL)]
    meter_fuel: u64,
    /// The meter module (default: meter-wasm/bcami_sdk_wasm.wasm in meter-sim's target
    /// directory, where scripts/build-meter-wasm.sh writes it).
    #[arg(long, value_name = "FILE")]
    meter_module: Option<PathBuf>,
}

/// `--meter-runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MeterRuntimeCli {
    /// bcami-sdk linked into meter-sim.
    Native,
    /// The meter module under wasmtime.
    Wasm,
}

/// `65536`, `64KiB`, `1MiB` → bytes.
fn parse_size(text: &str) -> Result<usize> {
    let text = text.trim();
    let (number, unit) = if let Some(n) = text.strip_suffix("KiB") {
        (n, 1024)
    } else if let Some(n) = text.strip_suffix("MiB") {
        (n, 1024 * 1024)
    } else {
        (text, 1)
    };
    number
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            usage(format!(
                "--meter-memory {text:?}: expected a positive size in bytes, KiB or MiB"
            ))
        })
}

fn meter_runtime(args: &RunCli) -> Result<crate::runtime::RuntimeConfig> {
    let memory_bytes = parse_size(&args.meter_memory)?;
    if args.meter_fuel == 0 {
        return Err(usage("--meter-fuel must be positive"));
    }
    Ok(match args.meter_runtime {
        MeterRuntimeCli::Native => crate::runtime::RuntimeConfig::Native,
        #[cfg(not(feature = "wasm"))]
        MeterRuntimeCli::Wasm => {
            let _ = memory_bytes;
            return Err(usage(crate::runtime::NO_WASM));
        }
        #[cfg(feature = "wasm")]
        MeterRuntimeCli::Wasm => crate::runtime::RuntimeConfig::Wasm {
            module: match &args.meter_module {
                Some(path) => path.clone(),
                None => crate::runtime::RuntimeConfig::default_module().ok_or_else(|| {
                    usage("cannot locate meter-sim's target directory; pass --meter-module")
                })?,
            },
            limits: bcami_wasm_host::Limits {
                memory_bytes,
                fuel_per_operation: args.meter_fuel,
            },
        },
    })
}

#[derive(Debug, Subcommand)]
enum MdmsCli {
    /// Fetch committed readings, verify each signature against the registered key, decrypt,
    /// write CSV, and compare with what the meters in the state folder sent.
    Export(ExportCli),
    /// Replace the MDMS encryption key (e.g. after a leak), submitted as the administrator.
    /// The new key is saved (pending) before the ledger hears of it; the old one is kept as
    /// retired, so readings made for it still decrypt. A call interrupted mid-way is resumed
    /// by the next one.
    RotateKey(RotateKeyCli),
}

#[derive(Debug, Args)]
struct RotateKeyCli {
    #[command(flatten)]
    network: NetworkCli,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ExportCli {
    #[command(flatten)]
    network: NetworkCli,
    /// From this reading timestamp (Unix ms, or UTC "YYYY-MM-DD[ HH:MM:SS]"), inclusive.
    #[arg(long, default_value = "0")]
    from: String,
    /// To this reading timestamp (same forms), inclusive. Default: an hour from now.
    #[arg(long)]
    to: Option<String>,
    /// Output CSV.
    #[arg(long, default_value = "readings.csv", value_name = "FILE")]
    out: PathBuf,
    /// Only meters in the state folder (default: every meter on the ledger).
    #[arg(long)]
    state_meters_only: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
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
        Command::Run(args) => {
            let config = run_config(&args)?;
            let network = network_choice(&args.network, args.embedded)?;
            let runtime = runtime()?;
            runtime.block_on(crate::commands::run(config, network, &cli.state, args.json))
        }
        Command::Mdms(MdmsCli::Export(args)) => {
            let config = export_config(&args)?;
            let network = fabric_only(&args.network, "mdms export")?;
            let runtime = runtime()?;
            runtime.block_on(crate::commands::export(config, network, &cli.state))
        }
        Command::Mdms(MdmsCli::RotateKey(args)) => {
            let network = fabric_only(&args.network, "mdms rotate-key")?;
            let runtime = runtime()?;
            runtime.block_on(crate::commands::rotate_mdms_key(network, now()?, args.json))
        }
        Command::Headend(args) => {
            let config = headend_config(&args)?;
            let network = network_choice(&args.network, args.embedded)?;
            let runtime = runtime()?;
            runtime.block_on(crate::commands::headend(
                config, network, &cli.state, args.json,
            ))
        }
        Command::Anon(command) => anon(command, &cli.state),
        Command::Group(args) => {
            let network = network_choice(&args.network, args.embedded)?;
            let authority = args
                .authority
                .clone()
                .unwrap_or_else(|| cli.state.join("group-authority.key"));
            let group_id = args
                .group_id
                .clone()
                .unwrap_or_else(|| format!("nan-{}", now_ms_text()));
            let runtime = runtime()?;
            runtime.block_on(crate::commands::group(
                network,
                &cli.state,
                &authority,
                group_id.as_bytes(),
                args.meters,
                &args.steps,
            ))
        }
        Command::Api => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::contract_api::table())?
            );
            Ok(ExitCode::from(EXIT_OK))
        }
        Command::Tx(command) => {
            let command = tx_command(command)?;
            let state = StateDir::open(&cli.state)?;
            let out = tx::execute(&state, command, now()?)?;
            println!("{out}");
            Ok(ExitCode::from(EXIT_OK))
        }
    }
}

fn headend_config(args: &HeadEndCli) -> Result<crate::headend::HeadEndConfig> {
    if args.meters == 0 && args.unknown == 0 {
        return Err(usage("--meters or --unknown must be at least 1"));
    }
    if args.revoke > args.meters {
        return Err(usage("--revoke cannot exceed --meters"));
    }
    Ok(crate::headend::HeadEndConfig {
        head_end_id: device_id(&args.head_end_id)?,
        meters: args.meters,
        meter_prefix: args.meter_prefix.clone(),
        messages: args.messages,
        revoke: args.revoke,
        unknown: args.unknown,
        rotate_key: args.rotate_key,
        listen: args.listen,
        fresh_ledger: false,
    })
}

fn anon(command: AnonCli, state: &std::path::Path) -> Result<ExitCode> {
    use crate::anon::{AnonCommand, AnonRunConfig};
    let (network, embedded, json, command) = match command {
        AnonCli::Issue {
            network,
            period_secs,
            json,
        } => (network, false, json, AnonCommand::Issue { period_secs }),
        AnonCli::Run {
            network,
            embedded,
            meters,
            concentrators,
            double_share,
            replays,
            batch,
            json,
        } => {
            if !(0.0..=1.0).contains(&double_share) {
                return Err(usage("--double-share must be between 0 and 1"));
            }
            if meters == 0
                || concentrators == 0
                || !(1..=bcami_api::MAX_ANON_BATCH).contains(&batch)
            {
                return Err(usage(format!(
                    "--meters and --concentrators must be at least 1, --batch 1 to {}",
                    bcami_api::MAX_ANON_BATCH
                )));
            }
            (
                network,
                embedded,
                json,
                AnonCommand::Run(AnonRunConfig {
                    meters,
                    concentrators,
                    double_share,
                    replays,
                    batch,
                }),
            )
        }
        AnonCli::Aggregates {
            network,
            periods,
            last,
            json,
        } => (
            network,
            false,
            json,
            AnonCommand::Aggregates { periods, last },
        ),
    };
    execute_anon(&network, embedded, json, &command, state)
}

/// Runs an `anon` command on the network (or, for `anon run --embedded`, in process) and prints
/// what it says.
fn execute_anon(
    network: &NetworkCli,
    embedded: bool,
    json: bool,
    command: &crate::anon::AnonCommand,
    state: &std::path::Path,
) -> Result<ExitCode> {
    let runtime = runtime()?;
    let (text, consistent) = runtime.block_on(async {
        match network_choice(network, embedded)? {
            Network::Embedded { reason } => {
                if !embedded {
                    return Err(usage(format!(
                        "{}; only `anon run --embedded` runs without a network",
                        reason.unwrap_or_default()
                    )));
                }
                let state = StateDir::open(&state.join("embedded"))?;
                let ledger = crate::embedded::Embedded::new();
                crate::anon::execute(&ledger, &state, command, true, json).await
            }
            Network::Fabric(settings) => {
                let state = StateDir::open(state)?;
                let fabric = bcami_client::Fabric::connect(&settings).await?;
                crate::anon::execute(&fabric, &state, command, false, json).await
            }
        }
    })?;
    print!("{text}");
    if json {
        println!();
    }
    Ok(ExitCode::from(if consistent {
        EXIT_OK
    } else {
        crate::EXIT_VERIFICATION
    }))
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

fn now_ms_text() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string()
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Which ledger to use.
#[derive(Debug)]
pub enum Network {
    /// The contract in-process; `reason` says why when it was not asked for.
    Embedded {
        /// Why the embedded ledger is used although `--embedded` was not given.
        reason: Option<String>,
    },
    /// A Fabric network.
    Fabric(Box<bcami_client::Settings>),
}

/// The network for a command that cannot run embedded.
fn fabric_only(args: &NetworkCli, command: &str) -> Result<bcami_client::Settings> {
    match network_choice(args, false)? {
        Network::Fabric(settings) => Ok(*settings),
        Network::Embedded { reason } => Err(usage(format!(
            "{}; {command} needs a network (the embedded ledger lives only inside \
             `meter-sim run --embedded`, which checks its own readings)",
            reason.unwrap_or_default()
        ))),
    }
}

fn network_choice(args: &NetworkCli, embedded: bool) -> Result<Network> {
    if embedded {
        return Ok(Network::Embedded { reason: None });
    }
    let path = match &args.network_env {
        Some(path) => path.clone(),
        None => match std::env::var_os("BCAMI_RUN_DIR") {
            Some(dir) => PathBuf::from(dir).join("network.env"),
            None => repo_root().join("run").join("network.env"),
        },
    };
    if !path.exists() {
        return Ok(Network::Embedded {
            reason: Some(format!(
                "no network is up ({} does not exist; start one with scripts/network.sh up)",
                path.display()
            )),
        });
    }
    // `network.sh up` writes the same details for programs as network.json beside it.
    let json = path.with_file_name(bcami_client::Network::FILE);
    let mut settings =
        bcami_client::Settings::load(&json, &args.chaincode).map_err(|e| usage(format!("{e}")))?;
    if let Some(dir) = &args.mdms_state {
        settings.mdms_state = dir.clone();
    }
    Ok(Network::Fabric(Box::new(settings)))
}

/// The repository root: where this binary was built from, else the current directory.
fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match manifest.parent() {
        Some(root) if root.join("Cargo.toml").exists() => root.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `--replay PATH`: the file's households; bad rows are named (the first 20) and skipped.
fn replay_source(path: &std::path::Path) -> Result<crate::run::Source> {
    use crate::run::Source;
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read --replay {}: {e}", path.display())))?;
    let replay = crate::replay::parse(&text)
        .map_err(|e| usage(format!("--replay {}: {e}", path.display())))?;
    for bad in replay.bad_rows.iter().take(20) {
        eprintln!("{}: skipped {bad}", path.display());
    }
    if replay.bad_rows.len() > 20 {
        eprintln!(
            "{}: … and {} more bad rows",
            path.display(),
            replay.bad_rows.len() - 20
        );
    }
    if replay.intervals() == 0 {
        return Err(usage(format!(
            "--replay {}: no usable rows ({} Null, {} bad)",
            path.display(),
            replay.null_rows,
            replay.bad_rows.len()
        )));
    }
    Ok(Source::Replay {
        label: path.display().to_string(),
        replay,
    })
}

/// `--meters`, `--days`, `--start`: synthetic meters.
fn synthetic_source(
    args: &RunCli,
    interval: bcami_sdk::IntervalLength,
) -> Result<crate::run::Source> {
    use crate::run::Source;
    if args.meters == 0 {
        return Err(usage("--meters must be at least 1"));
    }
    if !(args.days.is_finite() && args.days > 0.0) {
        return Err(usage("--days must be a positive number"));
    }
    let intervals = (args.days * 86_400.0 / f64::from(interval.seconds())).round();
    if !(1.0..=1e7).contains(&intervals) {
        return Err(usage(format!(
            "--days {} with --interval {} gives {intervals} intervals; need 1 to 10^7",
            args.days, args.interval
        )));
    }
    let start_ms = crate::civil::parse_datetime_ms(&format!("{} 00:00:00", args.start))
        .map_err(|e| usage(format!("--start: {e}")))?;
    Ok(Source::Synthetic {
        prefix: args.meter_prefix.clone(),
        meters: args.meters,
        // Checked to be in 1..=10^7 above.
        intervals: intervals as usize,
        interval,
        seed: args.seed,
        start_ms,
    })
}

fn run_config(args: &RunCli) -> Result<crate::run::RunConfig> {
    use crate::run::RunConfig;
    if args.concentrators == 0 {
        return Err(usage("--concentrators must be at least 1"));
    }
    if args.batch == 0 || args.batch > bcami_api::MAX_BATCH {
        return Err(usage(format!(
            "--batch must be 1 to {} (the contract's limit)",
            bcami_api::MAX_BATCH
        )));
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(usage(
            "--rate must be a positive number of readings per second",
        ));
    }
    if args.in_flight == Some(0) {
        return Err(usage("--in-flight must be at least 1"));
    }
    let interval = parse_interval(&args.interval)?;
    let source = match &args.replay {
        Some(path) => replay_source(path)?,
        None => synthetic_source(args, interval)?,
    };
    Ok(RunConfig {
        source,
        concentrators: args.concentrators,
        batch: args.batch,
        in_flight: args.in_flight.unwrap_or(4 * args.concentrators),
        rate: args.rate,
        tamper: args.tamper,
        mdms_id: device_id(&args.mdms_id)?,
        verify: !args.no_verify,
        fresh_ledger: false,
        progress: !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        retries: args.retries,
        store_capacity: args.meter_store,
        link_down: args
            .link_down
            .as_deref()
            .map(|text| parse_link_down(text, args.concentrators))
            .transpose()?,
        mdms_key_refresh: (args.mdms_key_refresh > 0)
            .then(|| std::time::Duration::from_secs(args.mdms_key_refresh)),
        meter_runtime: meter_runtime(args)?,
    })
}

/// `C:AFTER:FOR` (seconds) → a link cut of concentrator C.
fn parse_link_down(text: &str, concentrators: usize) -> Result<crate::run::LinkDown> {
    let bad = || {
        usage(format!(
            "--link-down {text:?}: expected C:AFTER:FOR, e.g. 1:20:60"
        ))
    };
    let parts: Vec<&str> = text.split(':').collect();
    let [c, after, lasts] = parts[..] else {
        return Err(bad());
    };
    let concentrator: usize = c.trim().parse().map_err(|_| bad())?;
    if concentrator >= concentrators {
        return Err(usage(format!(
            "--link-down: concentrator {concentrator} does not exist (0 to {})",
            concentrators - 1
        )));
    }
    let secs = |v: &str| v.trim().parse::<u64>().map_err(|_| bad());
    Ok(crate::run::LinkDown {
        concentrator,
        after: std::time::Duration::from_secs(secs(after)?),
        lasts: std::time::Duration::from_secs(secs(lasts)?),
    })
}

/// `30m`, `1h`, `900s`, `900` → an interval length.
fn parse_interval(text: &str) -> Result<IntervalLength> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1),
        Some((i, 'm')) => (&text[..i], 60),
        Some((i, 'h')) => (&text[..i], 3600),
        _ => (text, 1),
    };
    number
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .and_then(IntervalLength::from_seconds)
        .ok_or_else(|| {
            usage(format!(
                "--interval {text:?}: expected e.g. 30m, 15m, 1h or 900s"
            ))
        })
}

/// Unix ms, or a UTC date (and time).
fn parse_time(flag: &str, text: &str) -> Result<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| usage(format!("{flag} {text:?} is too large")));
    }
    let full = if text.len() == 10 {
        format!("{text} 00:00:00")
    } else {
        text.to_owned()
    };
    crate::civil::parse_datetime_ms(&full).map_err(|e| {
        usage(format!(
            "{flag}: {e}; use Unix milliseconds or YYYY-MM-DD[ HH:MM:SS]"
        ))
    })
}

fn export_config(args: &ExportCli) -> Result<crate::commands::ExportConfig> {
    let from = parse_time("--from", &args.from)?;
    let to = match &args.to {
        Some(text) => parse_time("--to", text)?,
        None => now()?.unix_millis() + 3_600_000,
    };
    if from > to {
        return Err(usage(format!("--from {from} is after --to {to}")));
    }
    Ok(crate::commands::ExportConfig {
        from,
        to,
        out: args.out.clone(),
        state_meters_only: args.state_meters_only,
        json: args.json,
        progress: !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_times_parse() {
        assert_eq!(parse_interval("30m").unwrap().seconds(), 1800);
        assert_eq!(parse_interval("1h").unwrap().seconds(), 3600);
        assert_eq!(parse_interval("900s").unwrap().seconds(), 900);
        assert_eq!(parse_interval("900").unwrap().seconds(), 900);
        for bad in ["", "0m", "m", "-5m", "1.5h", "99999999h"] {
            assert!(parse_interval(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_time("--from", "1234").unwrap(), 1234);
        assert_eq!(parse_time("--from", "1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_time("--from", "1970-01-01 00:00:01").unwrap(), 1000);
        assert!(parse_time("--from", "yesterday").is_err());
    }

    fn run_args(extra: &[&str]) -> RunCli {
        let mut argv = vec!["meter-sim", "run"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(run) => run,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn meter_runtime_wasm_needs_the_feature() {
        let native = meter_runtime(&run_args(&[])).unwrap();
        assert_eq!(native, crate::runtime::RuntimeConfig::Native);
        let wasm = meter_runtime(&run_args(&[
            "--meter-runtime",
            "wasm",
            "--meter-module",
            "/m.wasm",
            "--meter-memory",
            "128KiB",
        ]));
        #[cfg(feature = "wasm")]
        assert_eq!(
            wasm.unwrap(),
            crate::runtime::RuntimeConfig::Wasm {
                module: "/m.wasm".into(),
                limits: bcami_wasm_host::Limits {
                    memory_bytes: 128 * 1024,
                    fuel_per_operation: crate::runtime::DEFAULT_METER_FUEL,
                },
            }
        );
        #[cfg(not(feature = "wasm"))]
        assert!(
            format!("{:#}", wasm.unwrap_err()).contains("cargo feature `wasm`"),
            "the error names the feature"
        );
        for bad in ["0", "x", "1GiB", "0KiB"] {
            assert!(meter_runtime(&run_args(&["--meter-memory", bad])).is_err());
        }
    }
}
