//! `run` and `mdms export`: choose the ledger, call the engine, print the report, pick the exit
//! code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use bcami_sdk::{Hid, Timestamp};
use indicatif::{ProgressBar, ProgressDrawTarget};
use rand_core::OsRng;
use serde::Serialize;

use crate::civil::format_datetime_ms;
use crate::cli::Network;
use crate::embedded::Embedded;
use crate::mdms::{self, Comparison, Failure};
use crate::observe::{SystemClock, Terminal};
use crate::run::{self, RunConfig};
use crate::state::StateDir;
use crate::{EXIT_INCOMPLETE, EXIT_OK, EXIT_VERIFICATION, usage};
use bcami_client::{Client, Fabric, Settings};

/// `meter-sim run`.
pub async fn run(
    mut config: RunConfig,
    network: Network,
    state_root: &Path,
    json: bool,
) -> Result<ExitCode> {
    let mut rng = OsRng;
    let report = match network {
        Network::Embedded { reason } => {
            if let Some(reason) = reason {
                eprintln!("{reason}: running embedded (the contract on an in-process ledger)");
            } else {
                eprintln!("running embedded (the contract on an in-process ledger, no Fabric)");
            }
            // The in-process ledger starts empty every time: keep its devices apart from the
            // ones registered on a real network.
            let state = StateDir::open(&state_root.join("embedded"))?;
            config.fresh_ledger = true;
            let env = terminal(&config, &mut rng);
            run::run_with(Arc::new(Embedded::new()), &state, &state, &config, env).await?
        }
        Network::Fabric(settings) => {
            let state = StateDir::open(state_root)?;
            let mdms_state = StateDir::open(&settings.mdms_state)?;
            // A network brought up again has fresh crypto material and an empty ledger: the
            // meters' registrations in the state folder belong to the old one.
            let network_id = settings.network.id()?;
            if let Some(previous) = state.network()?
                && previous != network_id
            {
                eprintln!(
                    "{} was used with another network instance; provisioning and registering its meters again",
                    state.root().display()
                );
                config.fresh_ledger = true;
            }
            state.set_network(&network_id)?;
            let fabric = Fabric::connect(&settings).await?;
            eprintln!(
                "running against Fabric channel {} chaincode {} at {}",
                settings.network.channel,
                settings.chaincode,
                fabric.endpoints()
            );
            eprintln!("MDMS key in {}", mdms_state.root().display());
            let env = terminal(&config, &mut rng);
            run::run_with(Arc::new(fabric), &state, &mdms_state, &config, env).await?
        }
    };
    if json {
        // The verdict first, also when the report goes to a machine.
        eprintln!("{}", report.headline());
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::from(if report.mismatches.unwrap_or(0) > 0 {
        EXIT_VERIFICATION
    } else if report.incomplete() {
        EXIT_INCOMPLETE
    } else {
        EXIT_OK
    }))
}

/// The CLI's side of a run: the system clock, `rng`, and messages (and bars with `--progress`
/// on a terminal) on stderr.
fn terminal<'a>(config: &RunConfig, rng: &'a mut OsRng) -> run::Env<'a> {
    run::Env {
        clock: Arc::new(SystemClock),
        rng,
        observer: Arc::new(Terminal::new(config.progress)),
    }
}

/// `meter-sim headend`: the ledger as for `run`, then the head-end and its meters.
pub async fn headend(
    mut config: crate::headend::HeadEndConfig,
    network: Network,
    state_root: &Path,
    json: bool,
) -> Result<ExitCode> {
    let report = match network {
        Network::Embedded { reason } => {
            match reason {
                Some(reason) => {
                    eprintln!("{reason}: running embedded (the contract on an in-process ledger)")
                }
                None => eprintln!("running embedded (the contract on an in-process ledger)"),
            }
            let state = StateDir::open(&state_root.join("embedded"))?;
            config.fresh_ledger = true;
            let ledger = Arc::new(Embedded::new());
            crate::headend::run(ledger, &state, &state, &config).await?
        }
        Network::Fabric(settings) => {
            let state = StateDir::open(state_root)?;
            let service_state = StateDir::open(&settings.mdms_state)?;
            let network_id = settings.network.id()?;
            if state
                .network()?
                .is_some_and(|previous| previous != network_id)
            {
                config.fresh_ledger = true;
            }
            state.set_network(&network_id)?;
            let fabric = Fabric::connect(&settings).await?;
            crate::headend::run(Arc::new(fabric), &state, &service_state, &config).await?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::from(if report.as_expected(&config) {
        EXIT_OK
    } else {
        EXIT_VERIFICATION
    }))
}

/// `meter-sim group`: a script of group steps on the embedded ledger or a network.
pub async fn group(
    network: Network,
    state_root: &Path,
    authority: &Path,
    group_id: &[u8],
    meters: usize,
    steps: &[crate::group::Step],
) -> Result<ExitCode> {
    let authority = crate::group::load_or_make_authority(authority)?;
    let head_end_id: crate::state::DeviceId = "AHE-1".parse()?;
    let ok = match network {
        Network::Embedded { reason } => {
            if let Some(reason) = reason {
                eprintln!("{reason}: running embedded (the contract on an in-process ledger)");
            }
            let state = StateDir::open(&state_root.join("embedded"))?;
            let mut keys = crate::headend::HeadEndKeys::load_or_create(&state, &head_end_id)?;
            let ledger = Embedded::new();
            crate::group::script(&ledger, authority, group_id, &mut keys, meters, steps).await?
        }
        Network::Fabric(settings) => {
            // The network's head-end keys live beside the MDMS's, as for `meter-sim headend`.
            let service_state = StateDir::open(&settings.mdms_state)?;
            let mut keys =
                crate::headend::HeadEndKeys::load_or_create(&service_state, &head_end_id)?;
            let fabric = Fabric::connect(&settings).await?;
            crate::group::script(&fabric, authority, group_id, &mut keys, meters, steps).await?
        }
    };
    Ok(ExitCode::from(if ok { EXIT_OK } else { EXIT_VERIFICATION }))
}

/// A validated `mdms export`.
#[derive(Debug)]
pub struct ExportConfig {
    /// First timestamp, Unix ms.
    pub from: u64,
    /// Last timestamp, Unix ms.
    pub to: u64,
    /// Output CSV.
    pub out: PathBuf,
    /// Only the state folder's meters.
    pub state_meters_only: bool,
    /// JSON summary.
    pub json: bool,
    /// Progress bars.
    pub progress: bool,
}

#[derive(Serialize)]
struct ExportSummary {
    from_ms: u64,
    to_ms: u64,
    meters: usize,
    /// Rows written: one per (meter, interval), every value of a conflict.
    exported: usize,
    duplicates_suppressed: u64,
    conflicts: Vec<mdms::Conflict>,
    /// Intervals with no reading between two that have one (e.g. dropped from a full meter
    /// store): shown as gaps, never filled in.
    gaps: Vec<mdms::Gap>,
    out: String,
    failed: Vec<Failure>,
    sent_log: Option<Comparison>,
}

impl ExportSummary {
    /// Readings that failed, conflicts, and disagreements with the sent log: each one fails the
    /// export.
    fn problems(&self) -> usize {
        self.failed.len()
            + self.conflicts.len()
            + self
                .sent_log
                .as_ref()
                .map_or(0, |c| c.mismatched.len() + c.missing.len())
    }
}

/// A bar of `len` steps on stderr, or a hidden one.
fn progress_bar(visible: bool, len: usize) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    ProgressBar::with_draw_target(Some(len as u64), target)
}

/// `meter-sim mdms export`.
pub async fn export(
    config: ExportConfig,
    settings: Settings,
    state_root: &Path,
) -> Result<ExitCode> {
    let state = StateDir::open(state_root)?;
    let mdms_state = StateDir::open(&settings.mdms_state)?;
    let mdms = mdms_state.mdms()?.ok_or_else(|| {
        usage(format!(
            "no MDMS key in {}; it is made by `meter-sim run` (or `meter-sim tx mdms-keygen --state {}`)",
            mdms_state.root().display(),
            mdms_state.root().display()
        ))
    })?;
    let fabric = Fabric::connect(&settings).await?;
    let known = state.meters()?;
    let names: BTreeMap<Hid, String> = known.iter().map(|m| (m.hid, m.id.to_string())).collect();
    let hids: Vec<Hid> = if config.state_meters_only {
        known.iter().map(|m| m.hid).collect()
    } else {
        Client::new(&fabric).meter_hids().await?
    };
    eprintln!(
        "exporting {} meters' readings from {} to {} UTC as the MDMS",
        hids.len(),
        format_datetime_ms(config.from),
        format_datetime_ms(config.to)
    );
    let progress = progress_bar(config.progress, hids.len());
    let export = mdms::export(
        &fabric,
        &hids,
        config.from,
        config.to,
        &mdms.keyring(),
        &progress,
    )
    .await?;
    progress.finish_and_clear();
    // Each (meter, interval) once; a conflict keeps every value and fails the export.
    let unique = mdms::deduplicate(&export.readings);
    let gaps = mdms::gaps(&unique.readings);
    std::fs::write(&config.out, mdms::to_csv(&unique.readings, &names))
        .with_context(|| format!("cannot write {}", config.out.display()))?;
    let sent = state.sent()?;
    let comparison =
        (!sent.is_empty()).then(|| mdms::compare(&export.readings, &sent, config.from, config.to));
    let summary = ExportSummary {
        from_ms: config.from,
        to_ms: config.to,
        meters: export.meters,
        exported: unique.readings.len(),
        duplicates_suppressed: unique.duplicates,
        conflicts: unique.conflicts,
        gaps,
        out: config.out.display().to_string(),
        failed: export.failures,
        sent_log: comparison,
    };
    let bad = summary.problems();
    if config.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", export_table(&summary));
    }
    Ok(ExitCode::from(if bad > 0 {
        EXIT_VERIFICATION
    } else {
        EXIT_OK
    }))
}

/// `meter-sim mdms rotate-key`.
pub async fn rotate_mdms_key(settings: Settings, now: Timestamp, json: bool) -> Result<ExitCode> {
    let mdms_state = StateDir::open(&settings.mdms_state)?;
    let fabric = Fabric::connect(&settings).await?;
    let rotation = mdms::rotate_key(&fabric, &mdms_state, now, &mut OsRng).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rotation)?);
    } else {
        println!(
            "MDMS key rotated{}: version {}\n  old (retired, kept to read older readings)  {}\n  new (meters encrypt to it from their next run)  {}\n  retired keys kept in {}: {}",
            if rotation.resumed {
                " (resumed an earlier attempt)"
            } else {
                ""
            },
            rotation.key_version,
            rotation.old_public_key,
            rotation.new_public_key,
            mdms_state.root().display(),
            rotation.retired_keys
        );
    }
    Ok(ExitCode::from(EXIT_OK))
}

fn export_table(s: &ExportSummary) -> String {
    let mut out = String::new();
    for c in &s.conflicts {
        out.push_str(&format!("{c}\n"));
    }
    out.push_str(&format!(
        "meters            {}\nexported          {} -> {} (one row per meter and interval)\nduplicates        {} suppressed (the same value committed twice)\nconflicts         {}\ngaps              {}\nfailed            {}\n",
        s.meters,
        s.exported,
        s.out,
        s.duplicates_suppressed,
        s.conflicts.len(),
        s.gaps.len(),
        s.failed.len()
    ));
    for g in s.gaps.iter().take(50) {
        out.push_str(&format!(
            "  gap: {} from {} UTC, {} intervals missing\n",
            g.hid,
            format_datetime_ms(g.from_ms),
            g.intervals
        ));
    }
    for f in s.failed.iter().take(50) {
        out.push_str(&format!(
            "  {} at {}: {}\n",
            f.hid,
            f.timestamp_ms.map_or("?".into(), |t| t.to_string()),
            f.reason
        ));
    }
    match &s.sent_log {
        Some(c) => {
            out.push_str(&format!(
                "matched sent log  {}\nmismatches        {}\nmissing           {}\nnot in sent log   {}\n",
                c.matched,
                c.mismatched.len(),
                c.missing.len(),
                c.unknown
            ));
            for line in c.mismatched.iter().chain(c.missing.iter()).take(50) {
                out.push_str(&format!("  {line}\n"));
            }
        }
        None => out.push_str("sent log          none in the state folder (nothing to compare)\n"),
    }
    out
}
