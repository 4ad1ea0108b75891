//! `meter-sim run`: the async shell that drives meters → concentrators → ledger → MDMS over any
//! [`Ledger`]. Decisions (what to send, in which lane and batch) come from the pure core in
//! `workload`; this module builds the messages at send time, submits them and counts.
//!
//! Timestamps: every message's header timestamp is the moment the meter hands it to its
//! concentrator (strictly increasing per meter), because the contract checks it against the
//! transaction's own timestamp (a few minutes' window) and against replay. The metering interval
//! — synthetic or historical (`--replay`) — travels inside the encrypted report as its
//! `interval_start`, which the contract never sees. So 2012 data replays fine today, and the MDMS
//! gets the original interval back after decryption.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bcami_api::RejectReason;
use bcami_sdk::{
    Hid, IntervalLength, MdmsPublicKey, MdmsRegistrationRequest, MeterPublicKey, QualityFlags,
    Timestamp, UsageReport, WattHours,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand_core::OsRng;
use tokio::task::JoinSet;

use crate::cli::now;
use crate::mdms;
use crate::profile::Household;
use crate::replay::{Interval, Replay};
use crate::runtime::{MeterRuntime, RuntimeConfig};
use crate::state::{DeviceId, Mdms, Meter, SentReading, StateDir};
use crate::stats::{Latency, RunReport};
use crate::usage;
use crate::workload::{self, Slot};
use bcami_api::Request;
use bcami_client::{Caller, Client, Ledger, Rejection};

/// Registrations in flight at once (each touches only its own meter).
const REGISTRATION_CONCURRENCY: usize = 32;
/// A lane gives up after this many consecutive failed transactions.
const MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// Where readings come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Synthetic households.
    Synthetic {
        /// Meter IDs are `<prefix>-000001`, … .
        prefix: String,
        /// Number of meters.
        meters: usize,
        /// Intervals per meter.
        intervals: usize,
        /// Interval length.
        interval: IntervalLength,
        /// Seed of the profiles.
        seed: u64,
        /// First interval start (Unix ms) for meters that have sent nothing yet.
        start_ms: u64,
    },
    /// A London-format CSV.
    Replay {
        /// The file, for the report.
        label: String,
        /// Parsed rows.
        replay: Replay,
    },
}

/// A validated `run` configuration.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Readings source.
    pub source: Source,
    /// Number of concentrators, K.
    pub concentrators: usize,
    /// Readings per transaction.
    pub batch: usize,
    /// Transactions in flight at once (lanes).
    pub in_flight: usize,
    /// Upper bound on readings sent per second.
    pub rate: Option<f64>,
    /// Corrupt one reading in each of the first N batches (a misbehaving concentrator).
    pub tamper: usize,
    /// The MDMS identity.
    pub mdms_id: DeviceId,
    /// Read everything back as the MDMS at the end and compare.
    pub verify: bool,
    /// The ledger starts empty (embedded): forget what the state folder says was registered.
    pub fresh_ledger: bool,
    /// Draw progress bars (only on a terminal).
    pub progress: bool,
    /// Times a concentrator resends a batch whose transaction failed (see [`resend_wait`]).
    pub retries: u32,
    /// How often the meters re-read the MDMS key from the ledger during the run, so that a key
    /// rotated meanwhile (`mdms rotate-key`) is used from the next batch on; `None`: never.
    pub mdms_key_refresh: Option<Duration>,
    /// Where the meters' code runs (native, or wasm with a memory cap and fuel).
    pub meter_runtime: RuntimeConfig,
}

fn bar(enabled: bool, len: u64, message: &'static str) -> ProgressBar {
    let target = if enabled {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    let style = ProgressStyle::with_template(
        "{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// One reading to send: which meter, its interval, and the register after it.
#[derive(Clone, Copy, Debug)]
struct Planned {
    interval: Interval,
    cumulative_wh: u64,
}

/// The MDMS key the meters encrypt to, and when it was last read from the ledger.
struct MdmsKeyView {
    key: MdmsPublicKey,
    checked: Instant,
    changes: u64,
}

struct Shared {
    meters: Vec<Mutex<Meter>>,
    planned: Vec<Vec<Planned>>,
    interval: IntervalLength,
    mdms_key: Mutex<MdmsKeyView>,
    mdms_key_refresh: Option<Duration>,
    sent_log: Mutex<()>,
    state: StateDir,
    rate: Option<(Instant, f64)>,
    scheduled: Mutex<u64>,
    runtime: MeterRuntime,
}

#[derive(Default)]
struct LaneResult {
    committed: u64,
    submitted: u64,
    rejected: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
    transactions: u64,
    failed: u64,
    resent: u64,
    error: Option<String>,
    accepted: Vec<SentReading>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere already failed the run; the data is still whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the whole pipeline; returns the report. Meter devices live in `state`; the MDMS (one per
/// network: the contract accepts a single MDMS key) lives in `mdms_state`.
pub async fn run<L: Ledger>(
    ledger: Arc<L>,
    state: &StateDir,
    mdms_state: &StateDir,
    cfg: &RunConfig,
) -> Result<RunReport> {
    let interval = match &cfg.source {
        Source::Synthetic { interval, .. } => *interval,
        Source::Replay { .. } => IntervalLength::HALF_HOUR,
    };

    // --- identities (made on the "devices", kept in the state folder) ---
    // The MDMS folder is shared by everyone using the network; it is read and written under its
    // lock, in `prepare_mdms`. This early look only refuses a folder of another MDMS before any
    // work is done.
    configured_mdms(mdms_state, cfg)?;
    let ids: Vec<DeviceId> = match &cfg.source {
        Source::Synthetic { prefix, meters, .. } => (1..=*meters)
            .map(|i| {
                format!("{prefix}-{i:06}")
                    .parse()
                    .map_err(|e| usage(format!("{e:#}")))
            })
            .collect::<Result<_>>()?,
        Source::Replay { replay, .. } => replay.households.keys().cloned().collect(),
    };
    let runtime = MeterRuntime::new(&cfg.meter_runtime, &ids)?;
    let mut meters = Vec::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        let meter = match state.meter(id)? {
            Some(m) => m,
            None => Meter::new(
                id.clone(),
                runtime
                    .keygen(index)
                    .with_context(|| format!("key generation of {id}"))?,
            ),
        };
        meters.push(meter);
    }
    if cfg.fresh_ledger {
        for m in &mut meters {
            m.provisioned = false;
            m.registered = false;
        }
    }

    // --- phase 1: provision (administrator) ---
    let unprovisioned: Vec<(Hid, MeterPublicKey)> = meters
        .iter()
        .filter(|m| !m.provisioned)
        .map(|m| (m.hid, m.key.public_key()))
        .collect();
    if !unprovisioned.is_empty() {
        eprintln!(
            "provisioning {} meters as the administrator",
            unprovisioned.len()
        );
        Client::new(&*ledger)
            .provision_bound_meters(&unprovisioned)
            .await?;
        for m in &mut meters {
            m.provisioned = true;
        }
    }
    for m in &meters {
        state.save_meter(m)?;
    }

    // --- phase 2: the MDMS (provisioned and registered if new), then the meters' keys ---
    let (mdms, mdms_key) = prepare_mdms(&*ledger, mdms_state, cfg).await?;

    let k = cfg.concentrators.max(1);
    let to_register: Vec<usize> = (0..meters.len())
        .filter(|&i| !meters[i].registered)
        .collect();
    let newly_registered = to_register.len();
    let mut registration_failures = Vec::new();
    if !to_register.is_empty() {
        eprintln!(
            "registering {} meters through {k} concentrators",
            to_register.len()
        );
        let progress = bar(cfg.progress, to_register.len() as u64, "registering");
        let semaphore = Arc::new(tokio::sync::Semaphore::new(REGISTRATION_CONCURRENCY));
        let mut tasks = JoinSet::new();
        for &i in &to_register {
            let meter = &mut meters[i];
            let ts = meter.next_timestamp(now()?);
            let request = match runtime.registration(i, &meter.key, meter.hid, ts) {
                Ok(request) => request.encode(),
                Err(e) => {
                    registration_failures.push(format!("{}: {e:#}", meter.id));
                    continue;
                }
            };
            let (hid, public) = (meter.hid, meter.key.public_key());
            let ledger = Arc::clone(&ledger);
            let permit = Arc::clone(&semaphore).acquire_owned().await?;
            let progress = progress.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let role = Caller::Concentrator(i % k);
                let failure = match Client::new(&*ledger)
                    .outcome(role, &Request::RegisterMeter(&request))
                    .await
                {
                    Ok(Ok(_)) => None,
                    Ok(Err(rejection)) => Some(rejection.to_string()),
                    Err(e) => Some(format!("{e:#}")),
                };
                // Registered before (a resumed run whose state was not saved), or committed
                // although the client saw an error (e.g. a retried submit the orderers had
                // already processed): fine if the ledger holds this very key.
                let result = match failure {
                    None => Ok(()),
                    Some(reason) => match Client::new(&*ledger).meter_keys(Caller::Mdms, hid).await
                    {
                        Ok(Some(info)) if info.public_key == Some(public) => Ok(()),
                        _ => Err(reason),
                    },
                };
                progress.inc(1);
                (i, result)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.context("a registration task failed")?;
            match result {
                Ok(()) => meters[i].registered = true,
                Err(reason) => registration_failures.push(format!("{}: {reason}", meters[i].id)),
            }
        }
        progress.finish_and_clear();
        for m in &meters {
            state.save_meter(m)?;
        }
    }
    if !registration_failures.is_empty() {
        eprintln!(
            "{} meters failed to register and send nothing:",
            registration_failures.len()
        );
        for failure in registration_failures.iter().take(10) {
            eprintln!("  {failure}");
        }
    }
    if meters.iter().all(|m| !m.registered) {
        bail!("no meter could register; nothing to send");
    }

    // --- phase 3: readings ---
    let planned: Vec<Vec<Planned>> = meters
        .iter()
        .enumerate()
        .map(|(index, meter)| {
            if !meter.registered {
                return Vec::new();
            }
            let intervals = match &cfg.source {
                Source::Synthetic {
                    intervals,
                    seed,
                    start_ms,
                    ..
                } => {
                    let household = Household::new(*seed, index as u64);
                    let from = meter.next_interval_ms.unwrap_or(*start_ms);
                    workload::synthetic_intervals(&household, from, *intervals, interval.seconds())
                }
                Source::Replay { replay, .. } => replay
                    .households
                    .get(&meter.id)
                    .map(|series| {
                        series
                            .iter()
                            .filter(|i| meter.next_interval_ms.is_none_or(|n| i.start_ms >= n))
                            .copied()
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            let mut register = meter.cumulative_wh;
            intervals
                .into_iter()
                .map(|interval| {
                    register = register.saturating_add(interval.energy_wh);
                    Planned {
                        interval,
                        cumulative_wh: register,
                    }
                })
                .collect()
        })
        .collect();
    let lengths: Vec<usize> = planned.iter().map(Vec::len).collect();
    let total: usize = lengths.iter().sum();
    let plan = workload::plan(
        &lengths,
        cfg.in_flight.max(1),
        cfg.batch.clamp(1, bcami_api::MAX_BATCH),
    );
    let tamper = workload::tamper_targets(&plan, cfg.tamper);
    eprintln!(
        "sending {total} readings from {} meters in batches of {} through {k} concentrators ({} lanes){}",
        lengths.iter().filter(|&&n| n > 0).count(),
        cfg.batch,
        plan.len(),
        if cfg.tamper > 0 {
            format!("; tampering with {} readings", tamper.len())
        } else {
            String::new()
        }
    );

    let run_start_ms = now()?.unix_millis();
    let started = Instant::now();
    let shared = Arc::new(Shared {
        meters: meters.into_iter().map(Mutex::new).collect(),
        planned,
        interval,
        mdms_key: Mutex::new(MdmsKeyView {
            key: mdms_key,
            checked: Instant::now(),
            changes: 0,
        }),
        mdms_key_refresh: cfg.mdms_key_refresh,
        sent_log: Mutex::new(()),
        state: state.clone(),
        rate: cfg.rate.map(|r| (Instant::now(), r)),
        scheduled: Mutex::new(0),
        runtime,
    });
    let progress = bar(cfg.progress, total as u64, "readings");
    let retries = cfg.retries;
    let mut lanes = JoinSet::new();
    for (lane_index, batches) in plan.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let ledger = Arc::clone(&ledger);
        let progress = progress.clone();
        let tampered: Vec<(usize, usize)> = tamper
            .iter()
            .filter(|(l, _, _)| *l == lane_index)
            .map(|&(_, b, p)| (b, p))
            .collect();
        let role = Caller::Concentrator(lane_index % k);
        lanes.spawn(async move {
            run_lane(
                &*ledger, &shared, role, batches, &tampered, &progress, retries,
            )
            .await
        });
    }
    let mut report = RunReport {
        mode: ledger.mode().to_owned(),
        source: match &cfg.source {
            Source::Synthetic {
                seed, intervals, ..
            } => format!(
                "synthetic households, seed {seed}, {intervals} intervals of {} s per meter",
                interval.seconds()
            ),
            Source::Replay { label, .. } => format!("replay of {label}"),
        },
        meters: ids.len(),
        meters_registered: newly_registered - registration_failures.len(),
        meters_unregistered: registration_failures.len(),
        concentrators: k,
        identities: ledger.concentrator_identities().min(k),
        batch: cfg.batch,
        ..RunReport::default()
    };
    if let Source::Replay { replay, .. } = &cfg.source {
        report.null_rows = replay.null_rows;
        report.bad_rows = replay.bad_rows.len();
    }
    let mut latencies = Vec::new();
    let mut accepted = Vec::new();
    let mut lane_errors = Vec::new();
    while let Some(joined) = lanes.join_next().await {
        let lane = joined.context("a concentrator lane failed")?;
        report.submitted += lane.submitted;
        report.committed += lane.committed;
        report.transactions += lane.transactions;
        report.failed_transactions += lane.failed;
        report.resent_transactions += lane.resent;
        for (reason, count) in lane.rejected {
            *report.rejected.entry(reason).or_default() += count;
        }
        latencies.extend(lane.latencies);
        accepted.extend(lane.accepted);
        lane_errors.extend(lane.error);
    }
    progress.finish_and_clear();
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.readings_per_s = if report.elapsed_s > 0.0 {
        report.committed as f64 / report.elapsed_s
    } else {
        0.0
    };
    report.latency = Latency::from_samples(latencies);
    report.mdms_key_changes = lock(&shared.mdms_key).changes;
    report.meter_runtime = shared.runtime.report();
    for meter in &shared.meters {
        state.save_meter(&lock(meter))?;
    }
    for error in &lane_errors {
        eprintln!("a concentrator stopped: {error}");
    }

    // --- phase 4: the MDMS reads everything back ---
    if cfg.verify {
        let hids: Vec<Hid> = shared.meters.iter().map(|m| lock(m).hid).collect();
        eprintln!("reading back {} meters as the MDMS", hids.len());
        let progress = bar(cfg.progress, hids.len() as u64, "MDMS export");
        let to = now()?.unix_millis() + 3_600_000;
        // The key may have been rotated during the run: the folder then holds the new key, and
        // this run's keys are among its retired ones.
        let mut keyring = mdms.keyring();
        if let Some(now_held) = mdms_state.mdms()? {
            keyring.extend(now_held.keyring());
        }
        let export = mdms::export(&*ledger, &hids, run_start_ms, to, &keyring, &progress).await?;
        progress.finish_and_clear();
        let comparison = mdms::compare(&export.readings, &accepted, run_start_ms, to);
        for line in export
            .failures
            .iter()
            .map(|f| format!("{} at {:?}: {}", f.hid, f.timestamp_ms, f.reason))
            .chain(comparison.mismatched.iter().cloned())
            .chain(comparison.missing.iter().map(|m| format!("{m}: missing")))
            .take(20)
        {
            eprintln!("MDMS check failed: {line}");
        }
        report.verified = Some(comparison.matched);
        report.mismatches = Some(
            (export.failures.len() + comparison.mismatched.len() + comparison.missing.len()) as u64,
        );
    }
    if report.transactions > 0
        && report.failed_transactions == report.transactions
        && let Some(error) = lane_errors.first()
    {
        bail!("every transaction failed; first: {error}");
    }
    Ok(report)
}

/// The MDMS in `mdms_state`, if any; an MDMS other than the configured one is refused.
fn configured_mdms(mdms_state: &StateDir, cfg: &RunConfig) -> Result<Option<Mdms>> {
    match mdms_state.mdms()? {
        Some(m) if m.id != cfg.mdms_id => Err(usage(format!(
            "{} holds MDMS {}, not {}",
            mdms_state.root().display(),
            m.id,
            cfg.mdms_id
        ))),
        held => Ok(held),
    }
}

/// The MDMS side of phases 1 and 2, under the MDMS folder's lock (another meter-sim may be
/// running on the same network, or rotating its key): load or make the MDMS, provision and
/// register it if this ledger does not know it, complete a rotation found pending, and check
/// that the ledger names its key. Returns it and the key meters encrypt to.
async fn prepare_mdms<L: Ledger>(
    ledger: &L,
    mdms_state: &StateDir,
    cfg: &RunConfig,
) -> Result<(Mdms, MdmsPublicKey)> {
    let _lock = mdms::lock_folder(mdms_state).await?;
    let mut mdms = match configured_mdms(mdms_state, cfg)? {
        Some(m) => m,
        None => Mdms::new(
            cfg.mdms_id.clone(),
            bcami_sdk::MdmsSecretKey::generate(&mut OsRng).map_err(|e| anyhow!("{e}"))?,
        ),
    };
    if cfg.fresh_ledger {
        mdms.provisioned = false;
        mdms.registered = false;
    }
    if !mdms.provisioned {
        Client::new(ledger)
            .provision_bound_mdms(mdms.hid, &mdms.key.public_key())
            .await?;
        mdms.provisioned = true;
    }
    mdms_state.save_mdms(&mdms)?;
    if !mdms.registered {
        let ts = mdms.next_timestamp(now()?);
        let request = MdmsRegistrationRequest::build(&mdms.key, mdms.hid, ts)
            .map_err(|e| anyhow!("MDMS registration: {e}"))?;
        let request = request.encode();
        match Client::new(ledger)
            .outcome(Caller::Mdms, &Request::RegisterMdmsKey(&request))
            .await?
        {
            Ok(_) => {}
            Err(rejection) => {
                if mdms_key(ledger).await? != Some(mdms.public_key()) {
                    bail!("RegisterMdmsKey: {rejection}");
                }
            }
        }
        mdms.registered = true;
        mdms_state.save_mdms(&mdms)?;
    }
    let on_ledger = mdms_key(ledger).await?;
    // A rotation whose commit status was lost: the ledger names the key saved as pending.
    if on_ledger.is_some() && on_ledger == mdms.pending.as_ref().map(|k| k.public_key()) {
        mdms.promote_pending();
        mdms_state.save_mdms(&mdms)?;
        eprintln!(
            "completed the MDMS key rotation found pending in {}",
            mdms_state.root().display()
        );
    }
    match on_ledger {
        Some(key) if key == mdms.public_key() => Ok((mdms, key)),
        Some(_) => bail!(
            "the ledger's MDMS key is not the one in {}/mdms.json; pass --mdms-state with the \
             folder that registered it (the contract accepts one MDMS key per network)",
            mdms_state.root().display()
        ),
        None => bail!("the ledger has no MDMS key after registration"),
    }
}

impl RunConfig {
    /// `source` and the MDMS `mdms_id` with the CLI's defaults: 2 concentrators, batches of
    /// 100, 4 transactions in flight per concentrator, no rate cap, no tampering, the MDMS
    /// read-back on, no progress bars, 6 resends, native meters.
    pub fn new(source: Source, mdms_id: DeviceId) -> RunConfig {
        RunConfig {
            source,
            concentrators: 2,
            batch: 100,
            in_flight: 8,
            rate: None,
            tamper: 0,
            mdms_id,
            verify: true,
            fresh_ledger: false,
            progress: false,
            retries: 6,
            mdms_key_refresh: Some(Duration::from_secs(60)),
            meter_runtime: RuntimeConfig::Native,
        }
    }
}

/// How long a concentrator waits before resending a failed batch the `attempt`-th time: 1, 2,
/// 4, 8, then 15 s, so the default retries span a peer restart (~30 s until its gossip is back).
pub fn resend_wait(attempt: u32) -> Duration {
    Duration::from_secs((1u64 << attempt.saturating_sub(1).min(4)).min(15))
}

/// Sends one batch; a transaction that fails as a whole (a node unreachable, the commit not
/// seen) is resent with the same readings up to `retries` times. Resending is safe: a reading is
/// stored once by HID + timestamp, so if an earlier attempt did commit, the contract answers
/// `replayed` for its readings. Returns the outcome and how many resends it took.
async fn submit_with_resends<L: Ledger>(
    ledger: &L,
    role: Caller,
    readings: &[Vec<u8>],
    retries: u32,
) -> (
    anyhow::Result<Result<Vec<Option<RejectReason>>, Rejection>>,
    u32,
) {
    let mut resends = 0;
    loop {
        let outcome = submit_readings(ledger, role, readings).await;
        match &outcome {
            Err(e) if resends < retries => {
                resends += 1;
                let wait = resend_wait(resends);
                eprintln!(
                    "{role}: transaction failed; resending the same {} readings in {} s (resend {resends} of {retries}): {e:#}",
                    readings.len(),
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
            }
            _ => return (outcome, resends),
        }
    }
}

async fn run_lane<L: Ledger>(
    ledger: &L,
    shared: &Shared,
    role: Caller,
    batches: Vec<Vec<Slot>>,
    tampered: &[(usize, usize)],
    progress: &ProgressBar,
    retries: u32,
) -> LaneResult {
    let mut result = LaneResult::default();
    let mut consecutive_failures = 0;
    for (batch_index, batch) in batches.into_iter().enumerate() {
        pace(shared, batch.len()).await;
        refresh_mdms_key(ledger, shared).await;
        let (mut readings, sent) = match tokio::task::block_in_place(|| build_batch(shared, &batch))
        {
            Ok(built) => built,
            Err(e) => {
                result.error = Some(format!("{e:#}"));
                break;
            }
        };
        for &(_, position) in tampered.iter().filter(|(b, _)| *b == batch_index) {
            if let Some(reading) = readings.get_mut(position) {
                // Flip one bit of the AES-GCM ciphertext (after the 42-byte header, the 2-byte length
                // and the 33-byte ephemeral key):
                // still a well-formed reading, but its signature no longer verifies.
                if let Some(byte) = reading.get_mut(80) {
                    *byte ^= 0x01;
                }
            }
        }
        if readings.is_empty() {
            // Every meter of the batch has stopped (wasm runtime; see the report): nothing to send.
            progress.inc(batch.len() as u64);
            continue;
        }
        let count = readings.len() as u64;
        result.submitted += count;
        result.transactions += 1;
        let started = Instant::now();
        let (outcome, resends) = submit_with_resends(ledger, role, &readings, retries).await;
        result.resent += u64::from(resends);
        let latency = started.elapsed();
        match outcome {
            Ok(Ok(results)) => {
                consecutive_failures = 0;
                result.latencies.push(latency);
                let mut accepted = Vec::new();
                for (r, s) in results.iter().zip(sent) {
                    // After a resend, `replayed` means an earlier attempt of this very batch
                    // committed the reading: this lane alone sends its meters' readings, in
                    // timestamp order, and this batch holds the newest. The MDMS read-back
                    // checks it.
                    match r {
                        None => accepted.push(s),
                        Some(RejectReason::Replayed) if resends > 0 => accepted.push(s),
                        Some(reason) => {
                            *result.rejected.entry(reason.code().to_owned()).or_default() += 1;
                        }
                    }
                }
                result.committed += accepted.len() as u64;
                if let Err(e) = append_sent(shared, &accepted) {
                    result.error = Some(format!("{e:#}"));
                    break;
                }
                result.accepted.extend(accepted);
            }
            Ok(Err(rejection)) => {
                consecutive_failures = 0;
                result.failed += 1;
                *result
                    .rejected
                    .entry(format!("batch refused: {}", rejection.message))
                    .or_default() += count;
            }
            Err(e) => {
                consecutive_failures += 1;
                result.failed += 1;
                *result
                    .rejected
                    .entry("transaction failed".into())
                    .or_default() += count;
                let message = format!("{role}: {e:#}");
                if consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
                    result.error = Some(message);
                    progress.inc(count);
                    break;
                }
                eprintln!("{message}");
            }
        }
        progress.inc(count);
    }
    result
}

/// Re-reads the MDMS key from the ledger once per refresh period (whichever lane comes first):
/// meters must stop encrypting to a key the administrator has rotated away from, e.g. because it
/// leaked. A failed read keeps the key in use; the next period tries again.
async fn refresh_mdms_key<L: Ledger>(ledger: &L, shared: &Shared) {
    let Some(period) = shared.mdms_key_refresh else {
        return;
    };
    {
        let mut view = lock(&shared.mdms_key);
        if view.checked.elapsed() < period {
            return;
        }
        view.checked = Instant::now();
    }
    if let Ok(Some(key)) = mdms_key(ledger).await {
        let mut view = lock(&shared.mdms_key);
        if view.key != key {
            eprintln!(
                "the ledger's MDMS key changed (rotated to {}); meters encrypt to it from now on",
                hex::encode(key.to_bytes())
            );
            view.key = key;
            view.changes += 1;
        }
    }
}

/// Waits until sending `count` more readings keeps the run under `--rate`.
async fn pace(shared: &Shared, count: usize) {
    let Some((start, rate)) = shared.rate else {
        return;
    };
    let due = {
        let mut scheduled = lock(&shared.scheduled);
        let due = Duration::from_secs_f64(*scheduled as f64 / rate);
        *scheduled += count as u64;
        due
    };
    tokio::time::sleep_until((start + due).into()).await;
}

/// The meters of one batch build their readings now: timestamp, encrypt, sign.
fn build_batch(shared: &Shared, batch: &[Slot]) -> Result<(Vec<Vec<u8>>, Vec<SentReading>)> {
    let mut readings = Vec::with_capacity(batch.len());
    let mut sent = Vec::with_capacity(batch.len());
    let mdms_key = lock(&shared.mdms_key).key;
    for &(m, i) in batch {
        let planned = shared.planned[m][i];
        let mut meter = lock(&shared.meters[m]);
        let timestamp = meter.next_timestamp(now()?);
        let report = UsageReport {
            interval_start: Timestamp::from_unix_millis(planned.interval.start_ms),
            interval_length: shared.interval,
            energy: WattHours(planned.interval.energy_wh),
            cumulative_register: WattHours(planned.cumulative_wh),
            quality: QualityFlags::NONE,
        };
        let Some(tx) = shared
            .runtime
            .reading(m, &meter.key, meter.hid, timestamp, &report, &mdms_key)
            .map_err(|e| anyhow!("reading of {}: {e:#}", meter.id))?
        else {
            // This meter's wasm instance failed: its error is in the report's runtime section.
            continue;
        };
        meter.cumulative_wh = planned.cumulative_wh;
        meter.next_interval_ms =
            Some(planned.interval.start_ms + u64::from(shared.interval.seconds()) * 1000);
        readings.push(tx.encode());
        sent.push(SentReading {
            hid: meter.hid,
            meter_id: meter.id.to_string(),
            timestamp_ms: timestamp.unix_millis(),
            report,
        });
    }
    Ok((readings, sent))
}

fn append_sent(shared: &Shared, accepted: &[SentReading]) -> Result<()> {
    if accepted.is_empty() {
        return Ok(());
    }
    let _guard = lock(&shared.sent_log);
    shared.state.append_sent(accepted)
}

/// Submits a batch: per reading, `None` if stored, else why not; or the contract's refusal of
/// the whole batch. Failures to reach the contract (and answers that do not describe the batch)
/// are the outer error, which the caller may retry.
async fn submit_readings<L: Ledger>(
    ledger: &L,
    caller: Caller,
    readings: &[Vec<u8>],
) -> anyhow::Result<Result<Vec<Option<RejectReason>>, Rejection>> {
    match Client::new(ledger).submit_readings(caller, readings).await {
        Ok(reasons) => Ok(Ok(reasons)),
        Err(bcami_client::Error::Refused { rejection, .. }) => Ok(Err(rejection)),
        Err(e) => Err(e.into()),
    }
}

/// The MDMS key on the ledger, if one is registered.
pub(crate) async fn mdms_key<L: Ledger + ?Sized>(
    ledger: &L,
) -> Result<Option<bcami_sdk::MdmsPublicKey>, bcami_client::Error> {
    Ok(Client::new(ledger)
        .current_mdms_key(Caller::Mdms)
        .await?
        .map(|(key, _)| key))
}
