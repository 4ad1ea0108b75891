//! `meter-sim run`: the async shell that drives meters → concentrators → ledger → MDMS over any
//! [`Ledger`]. Decisions (what to send, in which lane and batch) come from the pure core in
//! `workload`; this module builds the messages at send time, submits them and counts.
//!
//! Timestamps: every message's header timestamp is the moment the meter signs it for its
//! concentrator (strictly increasing per meter), because the contract checks it against the
//! transaction's own timestamp (a few minutes' window) and against replay. A reading that waited
//! out the window (an outage) is signed again from the meter's store with a new timestamp. The metering interval
//! — synthetic or historical (`--replay`) — travels inside the encrypted report as its
//! `interval_start`, which the contract never sees. So 2012 data replays fine today, and the MDMS
//! gets the original interval back after decryption.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bcami_api::RejectReason;
use bcami_sdk::store::ReportStore;
use bcami_sdk::{
    Hid, IntervalLength, MdmsPublicKey, MdmsRegistrationRequest, MeterPublicKey, QualityFlags,
    Timestamp, UsageReport, WattHours,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRngCore, OsRng, SeedableRng};
use tokio::task::JoinSet;

use crate::mdms;
use crate::observe::{Clock, Event, Observer, Phase, Silent, SystemClock};
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

impl Source {
    /// The metering interval (a replay's is half an hour).
    fn interval(&self) -> IntervalLength {
        match self {
            Source::Synthetic { interval, .. } => *interval,
            Source::Replay { .. } => IntervalLength::HALF_HOUR,
        }
    }
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
    /// Failed attempts in a row after which a concentrator gives up for this run (its meters
    /// keep what it held); `None`: never, it resends after a bounded backoff ([`resend_wait`])
    /// for as long as the ledger is away.
    pub retries: Option<u32>,
    /// Unconfirmed reports each meter's store holds (`--meter-store`).
    pub store_capacity: usize,
    /// A simulated cut of one concentrator's link to the ledger (`--link-down`).
    pub link_down: Option<LinkDown>,
    /// How often the meters re-read the MDMS key from the ledger during the run, so that a key
    /// rotated meanwhile (`mdms rotate-key`) is used from the next batch on; `None`: never.
    pub mdms_key_refresh: Option<Duration>,
    /// Where the meters' code runs (native, or wasm with a memory cap and fuel).
    pub meter_runtime: RuntimeConfig,
}

/// One reading to measure: its interval, and the register after it.
#[derive(Clone, Copy, Debug)]
struct Planned {
    interval: Interval,
    cumulative_wh: u64,
}

/// One reading of a meter in the plan.
#[derive(Clone, Copy, Debug)]
enum Item {
    /// Held unconfirmed in the meter's store since an earlier run (interval start, Unix ms).
    Held(u64),
    /// To be measured in this run.
    Measure(Planned),
}

/// The MDMS key the meters encrypt to, and when it was last read from the ledger.
struct MdmsKeyView {
    key: MdmsPublicKey,
    checked: Instant,
    changes: u64,
}

struct Shared {
    meters: Vec<Mutex<Meter>>,
    planned: Vec<Vec<Item>>,
    interval: IntervalLength,
    mdms_key: Mutex<MdmsKeyView>,
    mdms_key_refresh: Option<Duration>,
    sent_log: Mutex<()>,
    save_lock: Mutex<()>,
    state: StateDir,
    rate: Option<(Instant, f64)>,
    scheduled: Mutex<u64>,
    runtime: MeterRuntime,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
}

/// What a run takes from outside: the wall clock that stamps the meters' messages, the
/// randomness of keys and encryption (each concentrator lane draws from a ChaCha20 generator
/// seeded from it), and who hears what happens.
pub struct Env<'a> {
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// The randomness.
    pub rng: &'a mut (dyn CryptoRngCore + Send),
    /// Who hears the run's events.
    pub observer: Arc<dyn Observer>,
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
    measured: u64,
    resigned: u64,
    refused: u64,
    error: Option<String>,
    accepted: Vec<SentReading>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere already failed the run; the data is still whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The IDs `<prefix>-000001` … `<prefix>-<count>`.
pub(crate) fn meter_ids(prefix: &str, count: usize) -> Result<Vec<DeviceId>> {
    (1..=count)
        .map(|i| {
            format!("{prefix}-{i:06}")
                .parse()
                .map_err(|e| usage(format!("{e:#}")))
        })
        .collect()
}

/// The meters named `ids`, each from the state folder or made with a fresh key (by `runtime`,
/// where the meters' code runs, from `rng`). With `fresh_ledger` every one is treated as
/// unknown to the ledger.
pub(crate) fn load_meters(
    state: &StateDir,
    ids: &[DeviceId],
    fresh_ledger: bool,
    runtime: &MeterRuntime,
    rng: &mut dyn CryptoRngCore,
) -> Result<Vec<Meter>> {
    ids.iter()
        .enumerate()
        .map(|(index, id)| {
            let mut meter = match state.meter(id)? {
                Some(m) => m,
                None => Meter::new(
                    id.clone(),
                    runtime
                        .keygen(index, rng)
                        .with_context(|| format!("key generation of {id}"))?,
                ),
            };
            if fresh_ledger {
                meter.provisioned = false;
                meter.registered = false;
            }
            Ok(meter)
        })
        .collect()
}

/// Provisions, as the administrator and bound to their keys, the meters not provisioned yet,
/// and marks them so; the caller saves them.
pub(crate) async fn provision_new_meters<L: Ledger + ?Sized>(
    client: &Client<'_, L>,
    meters: &mut [Meter],
    observer: &dyn Observer,
) -> Result<()> {
    let unprovisioned: Vec<(Hid, MeterPublicKey)> = meters
        .iter()
        .filter(|m| !m.provisioned)
        .map(|m| (m.hid, m.key.public_key()))
        .collect();
    if unprovisioned.is_empty() {
        return Ok(());
    }
    observer.event(Event::Provisioning {
        meters: unprovisioned.len(),
    });
    client.provision_bound_meters(&unprovisioned).await?;
    for m in meters {
        m.provisioned = true;
    }
    Ok(())
}

/// Runs the whole pipeline on the system clock and the OS RNG, telling nobody what happens;
/// returns the report. See [`run_with`].
pub async fn run<L: Ledger>(
    ledger: Arc<L>,
    state: &StateDir,
    mdms_state: &StateDir,
    cfg: &RunConfig,
) -> Result<RunReport> {
    let env = Env {
        clock: Arc::new(SystemClock),
        rng: &mut OsRng,
        observer: Arc::new(Silent),
    };
    run_with(ledger, state, mdms_state, cfg, env).await
}

/// Runs the whole pipeline over `env`'s clock, RNG and observer; returns the report. Meter
/// devices live in `state`; the MDMS (one per network: the contract accepts a single MDMS key)
/// lives in `mdms_state`.
pub async fn run_with<L: Ledger>(
    ledger: Arc<L>,
    state: &StateDir,
    mdms_state: &StateDir,
    cfg: &RunConfig,
    env: Env<'_>,
) -> Result<RunReport> {
    let interval = cfg.source.interval();
    let (clock, rng, observer) = (env.clock, env.rng, env.observer);

    // --- identities (made on the "devices", kept in the state folder) ---
    // The MDMS folder is shared by everyone using the network; it is read and written under its
    // lock, in `prepare_mdms`. This early look only refuses a folder of another MDMS before any
    // work is done.
    configured_mdms(mdms_state, cfg)?;
    let ids: Vec<DeviceId> = match &cfg.source {
        Source::Synthetic { prefix, meters, .. } => meter_ids(prefix, *meters)?,
        Source::Replay { replay, .. } => replay.households.keys().cloned().collect(),
    };
    let runtime = MeterRuntime::new(&cfg.meter_runtime, &ids)?;
    let mut meters = load_meters(state, &ids, cfg.fresh_ledger, &runtime, &mut *rng)?;

    // --- phase 1: provision (administrator) ---
    provision_new_meters(&Client::new(&*ledger), &mut meters, &*observer).await?;
    for m in &meters {
        state.save_meter(m)?;
    }

    // --- phase 2: the MDMS (provisioned and registered if new), then the meters' keys ---
    let outside = Outside {
        clock: &*clock,
        observer: &*observer,
    };
    let (mdms, mdms_key) = prepare_mdms(&*ledger, mdms_state, cfg, &mut *rng, outside).await?;

    let k = cfg.concentrators.max(1);
    let phase = Registration {
        state,
        runtime: &runtime,
        concentrators: k,
        outside,
    };
    let registered = registration_phase(&ledger, &phase, &mut meters).await?;

    // --- phase 3: readings ---
    let dropped_earlier = apply_store_capacity(&mut meters, cfg.store_capacity);
    let planned = plan_items(&meters, &cfg.source, interval);
    announce_held(&planned, &*observer);
    let (plan, tamper) = plan_lanes(&planned, cfg, k, &*observer);

    let run_start_ms = clock.now()?.unix_millis();
    let started = Instant::now();
    let shared = Arc::new(Shared::new(
        meters,
        planned,
        interval,
        mdms_key,
        cfg,
        state,
        runtime,
        (Arc::clone(&clock), Arc::clone(&observer)),
    ));
    let lanes = Lanes {
        plan,
        tamper,
        concentrators: k,
        delivery: Delivery::new(cfg),
    };
    let mut lanes = spawn_lanes(&ledger, &shared, lanes, &mut *rng)?;
    let mut report = new_report(&*ledger, cfg, interval, ids.len(), &registered, k);
    let LaneTotals {
        latencies,
        accepted,
        errors: lane_errors,
    } = collect_lanes(&mut lanes, &mut report, &*observer).await?;
    record_timing(&mut report, started, latencies);
    settle_meters(&shared, state, &dropped_earlier, &mut report)?;
    for error in &lane_errors {
        observer.event(Event::GaveUp {
            error: error.into(),
        });
    }

    // --- phase 4: the MDMS reads everything back ---
    if cfg.verify {
        let back = ReadBack {
            mdms: &mdms,
            mdms_state,
            from_ms: run_start_ms,
            outside,
        };
        read_back(&*ledger, &shared, &back, &accepted, &mut report).await?;
    }
    if report.transactions > 0
        && report.failed_transactions == report.transactions
        && let Some(error) = lane_errors.first()
    {
        bail!("every transaction failed; first: {error}");
    }
    Ok(report)
}

/// The clock and the observer, for the phases that run before and after the lanes.
#[derive(Clone, Copy)]
struct Outside<'a> {
    clock: &'a dyn Clock,
    observer: &'a dyn Observer,
}

/// What the meters' registration phase works with.
struct Registration<'a> {
    state: &'a StateDir,
    runtime: &'a MeterRuntime,
    concentrators: usize,
    outside: Outside<'a>,
}

/// Phase 2, the meters' part: registers those not yet registered, saves them, says which failed.
/// Fails if no meter is registered at all (there would be nothing to send).
async fn registration_phase<L: Ledger>(
    ledger: &Arc<L>,
    phase: &Registration<'_>,
    meters: &mut [Meter],
) -> Result<Registered> {
    let registered = register_meters(ledger, phase, meters).await?;
    if registered.newly > 0 {
        for m in meters.iter() {
            phase.state.save_meter(m)?;
        }
    }
    if !registered.failures.is_empty() {
        phase.outside.observer.event(Event::MetersFailed {
            failures: registered.failures.clone(),
        });
    }
    if meters.iter().all(|m| !m.registered) {
        bail!("no meter could register; nothing to send");
    }
    Ok(registered)
}

/// Applies the store capacity (a smaller one drops the oldest held readings) and returns how
/// many intervals each meter had dropped before this run: the state file keeps every interval
/// a meter ever dropped, and the run reports its own.
fn apply_store_capacity(meters: &mut [Meter], capacity: usize) -> Vec<usize> {
    let dropped_earlier = meters.iter().map(|m| m.dropped.len()).collect();
    for meter in meters {
        let dropped = meter.store.set_capacity(capacity);
        meter
            .dropped
            .extend(dropped.iter().map(|r| r.interval_start.unix_millis()));
    }
    dropped_earlier
}

/// Splits the planned readings into concentrator lanes of batches, picks the readings to
/// tamper with, and says so. Returns the lanes and the targets.
fn plan_lanes(
    planned: &[Vec<Item>],
    cfg: &RunConfig,
    k: usize,
    observer: &dyn Observer,
) -> (LaneBatches, TamperTargets) {
    let lengths: Vec<usize> = planned.iter().map(Vec::len).collect();
    let total: usize = lengths.iter().sum();
    let plan = workload::plan(
        &lengths,
        cfg.in_flight.max(1),
        cfg.batch.clamp(1, bcami_api::MAX_BATCH),
    );
    let tamper = workload::tamper_targets(&plan, cfg.tamper);
    observer.event(Event::Sending {
        readings: total,
        meters: lengths.iter().filter(|&&n| n > 0).count(),
        batch: cfg.batch,
        concentrators: k,
        lanes: plan.len(),
        tampered: (cfg.tamper > 0).then_some(tamper.len()),
    });
    (plan, tamper)
}

impl Shared {
    /// What the lanes share for a run: the meters, their plans, the MDMS key as of now, the
    /// clock and the observer.
    #[allow(clippy::too_many_arguments)]
    fn new(
        meters: Vec<Meter>,
        planned: Vec<Vec<Item>>,
        interval: IntervalLength,
        mdms_key: MdmsPublicKey,
        cfg: &RunConfig,
        state: &StateDir,
        runtime: MeterRuntime,
        (clock, observer): (Arc<dyn Clock>, Arc<dyn Observer>),
    ) -> Self {
        Shared {
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
            save_lock: Mutex::new(()),
            state: state.clone(),
            rate: cfg.rate.map(|r| (Instant::now(), r)),
            scheduled: Mutex::new(0),
            runtime,
            clock,
            observer,
        }
    }
}

impl Shared {
    /// Tells the observer that `readings` readings of a batch of `role` are settled.
    fn settled(&self, role: Caller, readings: u64) {
        self.observer.event(Event::BatchCommitted {
            concentrator: role,
            readings,
        });
    }
}

/// Says how many readings the meters still hold from an earlier run (they go first).
fn announce_held(planned: &[Vec<Item>], observer: &dyn Observer) {
    let held = planned
        .iter()
        .flatten()
        .filter(|i| matches!(i, Item::Held(_)))
        .count();
    if held > 0 {
        observer.event(Event::Held { readings: held });
    }
}

/// Each lane's batches of slots (see [`workload::plan`]).
type LaneBatches = Vec<Vec<Vec<Slot>>>;
/// `(lane, batch, position)` of each reading to tamper with.
type TamperTargets = Vec<(usize, usize, usize)>;

/// The concentrator lanes to start: each lane's batches, the readings to tamper with.
struct Lanes {
    plan: LaneBatches,
    tamper: TamperTargets,
    concentrators: usize,
    delivery: Delivery,
}

/// Starts the readings phase: one task per lane; lane `i` submits as concentrator `i mod k`.
/// Each lane's meters draw their randomness from a ChaCha20 generator seeded from `rng`.
fn spawn_lanes<L: Ledger>(
    ledger: &Arc<L>,
    shared: &Arc<Shared>,
    lanes: Lanes,
    rng: &mut dyn CryptoRngCore,
) -> Result<JoinSet<LaneResult>> {
    let total: usize = lanes.plan.iter().flatten().map(Vec::len).sum();
    shared.observer.event(Event::PhaseStarted {
        phase: Phase::Readings,
        steps: total as u64,
    });
    let mut set = JoinSet::new();
    for (lane_index, batches) in lanes.plan.into_iter().enumerate() {
        let shared = Arc::clone(shared);
        let ledger = Arc::clone(ledger);
        let mut lane_rng = ChaCha20Rng::from_rng(&mut *rng)
            .map_err(|e| anyhow!("seeding lane {lane_index}'s RNG: {e}"))?;
        let tampered: Vec<(usize, usize)> = lanes
            .tamper
            .iter()
            .filter(|(l, _, _)| *l == lane_index)
            .map(|&(_, b, p)| (b, p))
            .collect();
        let role = Caller::Concentrator(lane_index % lanes.concentrators);
        let delivery = lanes.delivery.clone();
        set.spawn(async move {
            let lane = Lane {
                role,
                tampered: &tampered,
                delivery: &delivery,
            };
            run_lane(&*ledger, &shared, &lane, batches, &mut lane_rng).await
        });
    }
    Ok(set)
}

/// The report's header: what ran, on what, with which meters.
fn new_report<L: Ledger>(
    ledger: &L,
    cfg: &RunConfig,
    interval: IntervalLength,
    meters: usize,
    registered: &Registered,
    k: usize,
) -> RunReport {
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
        meters,
        meters_registered: registered.newly - registered.failures.len(),
        meters_unregistered: registered.failures.len(),
        concentrators: k,
        identities: ledger.concentrator_identities().min(k),
        batch: cfg.batch,
        ..RunReport::default()
    };
    if let Source::Replay { replay, .. } = &cfg.source {
        report.null_rows = replay.null_rows;
        report.bad_rows = replay.bad_rows.len();
    }
    report
}

/// What registering the meters did: how many tried, and why those that failed did.
struct Registered {
    newly: usize,
    failures: Vec<String>,
}

/// Phase 2: the meters not yet registered send their registration requests (made by the meter
/// runtime) through the `k` concentrators, a bounded number at a time.
async fn register_meters<L: Ledger>(
    ledger: &Arc<L>,
    phase: &Registration<'_>,
    meters: &mut [Meter],
) -> Result<Registered> {
    let (runtime, k, observer) = (phase.runtime, phase.concentrators, phase.outside.observer);
    let to_register: Vec<usize> = (0..meters.len())
        .filter(|&i| !meters[i].registered)
        .collect();
    let mut failures = Vec::new();
    if to_register.is_empty() {
        return Ok(Registered { newly: 0, failures });
    }
    observer.event(Event::Registering {
        meters: to_register.len(),
        concentrators: k,
    });
    observer.event(Event::PhaseStarted {
        phase: Phase::Registration,
        steps: to_register.len() as u64,
    });
    let semaphore = Arc::new(tokio::sync::Semaphore::new(REGISTRATION_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for &i in &to_register {
        let meter = &mut meters[i];
        let ts = meter.next_timestamp(phase.outside.clock.now()?);
        let request = match runtime.registration(i, &meter.key, meter.hid, ts) {
            Ok(request) => request.encode(),
            Err(e) => {
                failures.push(format!("{}: {e:#}", meter.id));
                continue;
            }
        };
        let (hid, public) = (meter.hid, meter.key.public_key());
        let ledger = Arc::clone(ledger);
        let permit = Arc::clone(&semaphore).acquire_owned().await?;
        tasks.spawn(async move {
            let _permit = permit;
            let client = Client::new(&*ledger);
            let failure = match client
                .outcome(
                    Caller::Concentrator(i % k),
                    &Request::RegisterMeter(&request),
                )
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
                Some(reason) => match client.meter_keys(Caller::Mdms, hid).await {
                    Ok(Some(info)) if info.public_key == Some(public) => Ok(()),
                    _ => Err(reason),
                },
            };
            (i, result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.context("a registration task failed")?;
        observer.event(Event::Progressed {
            phase: Phase::Registration,
        });
        match result {
            Ok(()) => meters[i].registered = true,
            Err(reason) => failures.push(format!("{}: {reason}", meters[i].id)),
        }
    }
    observer.event(Event::PhaseFinished {
        phase: Phase::Registration,
    });
    Ok(Registered {
        newly: to_register.len(),
        failures,
    })
}

/// Phase 3's plan, per meter: what it still holds from an earlier run (re-signed, first), then
/// the intervals it measures now, each with the register after it. Unregistered meters send
/// nothing. Pure: no clock, no ledger.
fn plan_items(meters: &[Meter], source: &Source, interval: IntervalLength) -> Vec<Vec<Item>> {
    meters
        .iter()
        .enumerate()
        .map(|(index, meter)| {
            if !meter.registered {
                return Vec::new();
            }
            let intervals = match source {
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
            let mut items: Vec<Item> = meter
                .store
                .iter()
                .map(|r| Item::Held(r.interval_start.unix_millis()))
                .collect();
            let mut register = meter.cumulative_wh;
            items.extend(intervals.into_iter().map(|interval| {
                register = register.saturating_add(interval.energy_wh);
                Item::Measure(Planned {
                    interval,
                    cumulative_wh: register,
                })
            }));
            items
        })
        .collect()
}

/// The run's duration, throughput and submit latencies.
fn record_timing(report: &mut RunReport, started: Instant, latencies: Vec<Duration>) {
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.readings_per_s = if report.elapsed_s > 0.0 {
        report.committed as f64 / report.elapsed_s
    } else {
        0.0
    };
    report.latency = Latency::from_samples(latencies);
}

/// What the concentrator lanes gathered beyond the report's counts.
struct LaneTotals {
    latencies: Vec<Duration>,
    accepted: Vec<SentReading>,
    errors: Vec<String>,
}

/// Waits for every lane and adds its counts to `report`; the readings phase ends.
async fn collect_lanes(
    lanes: &mut JoinSet<LaneResult>,
    report: &mut RunReport,
    observer: &dyn Observer,
) -> Result<LaneTotals> {
    let mut totals = LaneTotals {
        latencies: Vec::new(),
        accepted: Vec::new(),
        errors: Vec::new(),
    };
    while let Some(joined) = lanes.join_next().await {
        let lane = joined.context("a concentrator lane failed")?;
        report.submitted += lane.submitted;
        report.committed += lane.committed;
        report.transactions += lane.transactions;
        report.failed_transactions += lane.failed;
        report.resent_transactions += lane.resent;
        report.measured += lane.measured;
        report.resigned += lane.resigned;
        report.refused += lane.refused;
        for (reason, count) in lane.rejected {
            *report.rejected.entry(reason).or_default() += count;
        }
        totals.latencies.extend(lane.latencies);
        totals.accepted.extend(lane.accepted);
        totals.errors.extend(lane.error);
    }
    observer.event(Event::PhaseFinished {
        phase: Phase::Readings,
    });
    Ok(totals)
}

/// After the lanes: saves every meter and counts what it still holds and what it dropped in
/// this run (the state file keeps every interval a meter ever dropped: `dropped_earlier`), what
/// is lost, how often the MDMS key changed, and the meter runtime's figures.
fn settle_meters(
    shared: &Shared,
    state: &StateDir,
    dropped_earlier: &[usize],
    report: &mut RunReport,
) -> Result<()> {
    report.mdms_key_changes = lock(&shared.mdms_key).changes;
    report.meter_runtime = shared.runtime.report();
    for (meter, &earlier) in shared.meters.iter().zip(dropped_earlier) {
        let meter = lock(meter);
        state.save_meter(&meter)?;
        report.pending += meter.store.len() as u64;
        let dropped_now = meter.dropped.get(earlier..).unwrap_or_default();
        report.dropped += dropped_now.len() as u64;
        for &start in dropped_now {
            if report.dropped_intervals.len() < 100 {
                report.dropped_intervals.push(format!(
                    "{} {}",
                    meter.id,
                    crate::civil::format_datetime_ms(start)
                ));
            }
        }
    }
    report.lost = report.dropped + report.refused;
    Ok(())
}

/// Who reads back, and from when.
struct ReadBack<'a> {
    mdms: &'a Mdms,
    mdms_state: &'a StateDir,
    from_ms: u64,
    outside: Outside<'a>,
}

/// Phase 4: the MDMS exports every meter's readings since the run began, verifies and decrypts
/// them, and compares them with what the ledger accepted; the counts go into `report`.
async fn read_back<L: Ledger>(
    ledger: &L,
    shared: &Shared,
    back: &ReadBack<'_>,
    accepted: &[SentReading],
    report: &mut RunReport,
) -> Result<()> {
    let hids: Vec<Hid> = shared.meters.iter().map(|m| lock(m).hid).collect();
    let observer = back.outside.observer;
    observer.event(Event::ReadingBack { meters: hids.len() });
    observer.event(Event::PhaseStarted {
        phase: Phase::ReadBack,
        steps: hids.len() as u64,
    });
    let to = back.outside.clock.now()?.unix_millis() + 3_600_000;
    // The key may have been rotated during the run: the folder then holds the new key, and
    // this run's keys are among its retired ones.
    let mut keyring = back.mdms.keyring();
    if let Some(now_held) = back.mdms_state.mdms()? {
        keyring.extend(now_held.keyring());
    }
    let tick = || {
        observer.event(Event::Progressed {
            phase: Phase::ReadBack,
        });
    };
    let export =
        bcami_client::mdms::export(ledger, &hids, back.from_ms, to, &keyring, tick).await?;
    observer.event(Event::PhaseFinished {
        phase: Phase::ReadBack,
    });
    let comparison = mdms::compare(&export.readings, accepted, back.from_ms, to);
    for line in export
        .failures
        .iter()
        .map(|f| format!("{} at {:?}: {}", f.hid, f.timestamp_ms, f.reason))
        .chain(comparison.mismatched.iter().cloned())
        .chain(comparison.missing.iter().map(|m| format!("{m}: missing")))
        .take(20)
    {
        observer.event(Event::CheckFailed { problem: line });
    }
    let unique = mdms::deduplicate(&export.readings);
    for conflict in unique.conflicts.iter().take(20) {
        observer.event(Event::CheckFailed {
            problem: conflict.to_string(),
        });
    }
    report.duplicates_suppressed = unique.duplicates;
    report.conflicts = unique.conflicts.len() as u64;
    report.verified = Some(comparison.matched);
    report.mismatches = Some(
        (export.failures.len()
            + comparison.mismatched.len()
            + comparison.missing.len()
            + unique.conflicts.len()) as u64,
    );
    Ok(())
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
    rng: &mut dyn CryptoRngCore,
    outside: Outside<'_>,
) -> Result<(Mdms, MdmsPublicKey)> {
    let _lock = mdms::lock_folder(mdms_state).await?;
    let mut mdms = match configured_mdms(mdms_state, cfg)? {
        Some(m) => m,
        None => Mdms::new(
            cfg.mdms_id.clone(),
            bcami_sdk::MdmsSecretKey::generate(rng).map_err(|e| anyhow!("{e}"))?,
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
        let ts = mdms.next_timestamp(outside.clock.now()?);
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
        outside.observer.event(Event::RotationCompleted {
            folder: mdms_state.root().to_path_buf(),
        });
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
    /// read-back on, no progress bars, resends for as long as the ledger is away, 480 reports
    /// per meter store, native meters.
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
            retries: None,
            store_capacity: crate::state::DEFAULT_STORE_CAPACITY,
            link_down: None,
            mdms_key_refresh: Some(Duration::from_secs(60)),
            meter_runtime: RuntimeConfig::Native,
        }
    }
}

/// How long a concentrator waits before its `attempt`-th resend of a batch whose transaction
/// failed: 1, 2, 4, 8, then 15 s for as long as the ledger stays away (bounded, never given up).
pub fn resend_wait(attempt: u32) -> Duration {
    Duration::from_secs((1u64 << attempt.saturating_sub(1).min(4)).min(15))
}

/// How a concentrator delivers (the same for every lane).
#[derive(Clone, Debug)]
struct Delivery {
    retries: Option<u32>,
    batch: usize,
    /// Meters measure at `--rate` whether or not the ledger is reachable; unpaced, they measure
    /// only as fast as their readings are delivered.
    paced: bool,
    link_down: Option<LinkDown>,
    started: Instant,
}

impl Delivery {
    /// As `cfg` says, starting now.
    fn new(cfg: &RunConfig) -> Delivery {
        Delivery {
            retries: cfg.retries,
            batch: cfg.batch.clamp(1, bcami_api::MAX_BATCH),
            paced: cfg.rate.is_some(),
            link_down: cfg.link_down,
            started: Instant::now(),
        }
    }

    /// The simulated WAN link of concentrator `concentrator` is down now.
    fn link_is_down(&self, concentrator: usize) -> bool {
        self.link_down.is_some_and(|cut| {
            let elapsed = self.started.elapsed();
            cut.concentrator == concentrator
                && elapsed >= cut.after
                && elapsed < cut.after + cut.lasts
        })
    }
}

/// `--link-down C:AFTER:FOR`: concentrator `C`'s link to the ledger is cut for `FOR` seconds,
/// `AFTER` seconds into the readings phase; its meters keep measuring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkDown {
    /// The concentrator (0-based).
    pub concentrator: usize,
    /// When the cut starts, from the start of the readings phase.
    pub after: Duration,
    /// How long it lasts.
    pub lasts: Duration,
}

/// One reading a lane delivers: meter `m`'s report of the interval starting at `start_ms`,
/// held in the meter's store until confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Work {
    m: usize,
    start_ms: u64,
    /// The ledger found a copy signed earlier in this run stale: the meter signs it again.
    again: bool,
}

/// A batch signed by its meters and not yet confirmed or refused.
struct Signed {
    work: Vec<Work>,
    readings: Vec<Vec<u8>>,
    sent: Vec<SentReading>,
    /// Resends of these very bytes so far.
    resends: u32,
}

/// One concentrator lane: its meters measure (paced by `--rate`) into their stores and hand the
/// intervals to the concentrator, which delivers them in order. A transaction that fails as a
/// whole is resent, with the same bytes, after a bounded backoff, for as long as the ledger is
/// away (unless `--retries` caps it); readings the contract finds stale or future (they waited
/// longer than its window) are signed again by their meters with a fresh header timestamp and
/// sent again. Each committed reading is confirmed to its meter, which forgets it.
async fn run_lane<L: Ledger>(
    ledger: &L,
    shared: &Shared,
    lane: &Lane<'_>,
    batches: Vec<Vec<Slot>>,
    rng: &mut ChaCha20Rng,
) -> LaneResult {
    let (tx, rx) = if lane.delivery.paced {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Handoff::Unbounded(tx), Intake::Unbounded(rx))
    } else {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        (Handoff::Bounded(tx), Intake::Bounded(rx))
    };
    let (measured, mut result) = tokio::join!(
        measure_lane(shared, batches, tx),
        deliver_lane(ledger, shared, lane, rx, rng)
    );
    match measured {
        Ok(count) => result.measured = count,
        Err(e) => {
            result.error.get_or_insert(format!("{e:#}"));
        }
    }
    result
}

/// Who a lane delivers as, which of its readings it tampers with, and how it delivers.
struct Lane<'a> {
    role: Caller,
    tampered: &'a [(usize, usize)],
    delivery: &'a Delivery,
}

/// The meters hand the concentrator each measured batch whole, so that the concentrator never
/// sends part of a batch because it looked while the batch was still being handed over.
enum Handoff {
    Bounded(tokio::sync::mpsc::Sender<Vec<Work>>),
    Unbounded(tokio::sync::mpsc::UnboundedSender<Vec<Work>>),
}

enum Intake {
    Bounded(tokio::sync::mpsc::Receiver<Vec<Work>>),
    Unbounded(tokio::sync::mpsc::UnboundedReceiver<Vec<Work>>),
}

impl Intake {
    async fn recv(&mut self) -> Option<Vec<Work>> {
        match self {
            Intake::Bounded(rx) => rx.recv().await,
            Intake::Unbounded(rx) => rx.recv().await,
        }
    }

    fn try_recv(&mut self) -> Option<Vec<Work>> {
        match self {
            Intake::Bounded(rx) => rx.try_recv().ok(),
            Intake::Unbounded(rx) => rx.try_recv().ok(),
        }
    }
}

/// The meters of a lane measure their intervals into their stores (saved at once) and hand
/// them to the concentrator. Returns how many intervals were measured.
async fn measure_lane(shared: &Shared, batches: Vec<Vec<Slot>>, handoff: Handoff) -> Result<u64> {
    let mut measured = 0;
    let mut saver = Saver::default();
    for batch in batches {
        pace(shared, batch.len()).await;
        let mut work = Vec::with_capacity(batch.len());
        for &(m, i) in &batch {
            let mut meter = lock(&shared.meters[m]);
            match shared.planned[m][i] {
                Item::Held(start_ms) => work.push(Work {
                    m,
                    start_ms,
                    again: false,
                }),
                Item::Measure(planned) => {
                    let report = UsageReport {
                        interval_start: Timestamp::from_unix_millis(planned.interval.start_ms),
                        interval_length: shared.interval,
                        energy: WattHours(planned.interval.energy_wh),
                        cumulative_register: WattHours(planned.cumulative_wh),
                        quality: QualityFlags::NONE,
                    };
                    if let Some(dropped) = meter.measure(report) {
                        shared.observer.event(Event::StoreFull {
                            meter: meter.id.to_string(),
                            capacity: meter.store.capacity(),
                            dropped_ms: dropped.interval_start.unix_millis(),
                        });
                    }
                    meter.cumulative_wh = planned.cumulative_wh;
                    meter.next_interval_ms = Some(
                        planned.interval.start_ms + u64::from(shared.interval.seconds()) * 1000,
                    );
                    measured += 1;
                    work.push(Work {
                        m,
                        start_ms: planned.interval.start_ms,
                        again: false,
                    });
                }
            }
            saver.touch(m);
        }
        saver.save_if_due(shared)?;
        if !work.is_empty() {
            // The concentrator gave up for this run (`--retries`): the meters keep measuring
            // into their stores; the next run delivers what they hold.
            let _ = match &handoff {
                Handoff::Bounded(tx) => tx.send(work).await.map_err(drop),
                Handoff::Unbounded(tx) => tx.send(work).map_err(drop),
            };
        }
    }
    saver.save(shared)?;
    Ok(measured)
}

/// How often a lane saves the meters it touched (their stores, registers, timestamps) to the
/// state folder. Each save writes a consistent snapshot of each meter; after a crash the next
/// run continues from it: intervals measured since are measured again (the profiles are
/// deterministic), reports confirmed since are sent again (the MDMS counts them once). Saving
/// after every batch halved the embedded demo's throughput (RELIABILITY.md §6).
const SAVE_PERIOD: Duration = Duration::from_secs(1);

/// The meters a lane changed since it last saved them.
struct Saver {
    touched: std::collections::BTreeSet<usize>,
    saved: Instant,
}

impl Default for Saver {
    fn default() -> Self {
        Saver {
            touched: std::collections::BTreeSet::new(),
            saved: Instant::now(),
        }
    }
}

impl Saver {
    fn touch(&mut self, m: usize) {
        self.touched.insert(m);
    }

    fn save_if_due(&mut self, shared: &Shared) -> Result<()> {
        if self.saved.elapsed() >= SAVE_PERIOD {
            self.save(shared)?;
        }
        Ok(())
    }

    fn save(&mut self, shared: &Shared) -> Result<()> {
        let touched = std::mem::take(&mut self.touched);
        self.saved = Instant::now();
        tokio::task::block_in_place(|| {
            // One writer per meter file at a time (both sides of a lane save the same meters).
            let _guard = lock(&shared.save_lock);
            for m in touched {
                let meter = lock(&shared.meters[m]).clone();
                shared.state.save_meter(&meter)?;
            }
            Ok(())
        })
    }
}

/// The concentrator side of a lane (see [`run_lane`]).
async fn deliver_lane<L: Ledger>(
    ledger: &L,
    shared: &Shared,
    lane: &Lane<'_>,
    mut intake: Intake,
    rng: &mut ChaCha20Rng,
) -> LaneResult {
    let (role, delivery) = (lane.role, lane.delivery);
    let mut result = LaneResult::default();
    let mut queue: std::collections::VecDeque<Work> = std::collections::VecDeque::new();
    let mut current: Option<Signed> = None;
    let mut batch_index = 0;
    let mut failures_in_row = 0u32;
    let mut outage: Option<Instant> = None;
    let mut saver = Saver::default();
    loop {
        if current.is_none() {
            if !fill_queue(&mut intake, &mut queue, delivery.batch).await {
                break;
            }
            refresh_mdms_key(ledger, shared).await;
            let take = queue.len().min(delivery.batch);
            let work: Vec<Work> = queue.drain(..take).collect();
            match tokio::task::block_in_place(|| sign_batch(shared, work, rng)) {
                Ok(Some(mut signed)) => {
                    tamper(&mut signed, lane.tampered, batch_index);
                    batch_index += 1;
                    current = Some(signed);
                }
                Ok(None) => continue,
                Err(e) => {
                    result.error = Some(format!("{e:#}"));
                    break;
                }
            }
        }
        let Some(signed) = current.as_mut() else {
            continue;
        };
        let count = signed.readings.len() as u64;
        let started = Instant::now();
        let outcome = attempt(ledger, role, delivery, signed, &mut result).await;
        match outcome {
            Ok(Ok(results)) => {
                failures_in_row = 0;
                announce_back(shared, role, outage.take());
                result.latencies.push(started.elapsed());
                let Some(signed) = current.take() else {
                    continue;
                };
                let outcome = settle(shared, &signed, &results, &mut queue);
                let done = outcome.accepted.len() as u64 + outcome.refused;
                if let Err(e) = record_committed(shared, &signed, outcome, &mut saver, &mut result)
                {
                    result.error = Some(format!("{e:#}"));
                    break;
                }
                shared.settled(role, done);
            }
            Ok(Err(rejection)) => {
                failures_in_row = 0;
                result.batch_refused(&rejection, count);
                current = None;
            }
            Err(e) => {
                failures_in_row += 1;
                let since = *outage.get_or_insert(started);
                if delivery.retries.is_some_and(|max| failures_in_row > max) {
                    result.failed += 1;
                    result.error = Some(format!("{role}: {e:#}"));
                    break;
                }
                let pending = Pending {
                    intake: &mut intake,
                    queue: &mut queue,
                };
                back_off(shared, role, pending, signed, (failures_in_row, since), &e).await;
                result.resent += 1;
            }
        }
    }
    if let Err(e) = saver.save(shared) {
        result.error.get_or_insert(format!("{e:#}"));
    }
    result
}

impl LaneResult {
    /// The contract refused a batch as a whole (nothing in it is wrong in time): its reports
    /// stay in the meters' stores, pending, and the run says so.
    fn batch_refused(&mut self, rejection: &Rejection, count: u64) {
        self.failed += 1;
        *self
            .rejected
            .entry(format!("batch refused: {}", rejection.message))
            .or_default() += count;
    }
}

/// One submit of a signed batch (a first one is counted as submitted; a resend is counted by
/// the caller). A concentrator whose link is down (`--link-down`) fails as a network would.
async fn attempt<L: Ledger>(
    ledger: &L,
    role: Caller,
    delivery: &Delivery,
    signed: &Signed,
    result: &mut LaneResult,
) -> Result<std::result::Result<Vec<Option<RejectReason>>, Rejection>> {
    if signed.resends == 0 {
        // A resend is counted in `resent`; re-signed readings are new transactions.
        result.submitted += signed.readings.len() as u64;
        result.transactions += 1;
    }
    let concentrator = match role {
        Caller::Concentrator(c) => c,
        _ => 0,
    };
    if delivery.link_is_down(concentrator) {
        return Err(anyhow!(
            "the link to the ledger is down (simulated with --link-down)"
        ));
    }
    submit_readings(ledger, role, &signed.readings).await
}

/// Says that the ledger answers again, after an outage that began at `since`.
fn announce_back(shared: &Shared, role: Caller, since: Option<Instant>) {
    if let Some(since) = since {
        shared.observer.event(Event::LedgerBack {
            concentrator: role,
            after_s: since.elapsed().as_secs(),
        });
    }
}

/// What a lane holds while the ledger is unreachable.
struct Pending<'a> {
    intake: &'a mut Intake,
    queue: &'a mut std::collections::VecDeque<Work>,
}

/// After a failed submit: says how long the ledger has been unreachable and how much is
/// pending (what the meters handed over meanwhile included), then waits before the resend.
async fn back_off(
    shared: &Shared,
    role: Caller,
    pending: Pending<'_>,
    signed: &mut Signed,
    (failures_in_row, since): (u32, Instant),
    error: &anyhow::Error,
) {
    let wait = resend_wait(failures_in_row);
    while let Some(w) = pending.intake.try_recv() {
        pending.queue.extend(w);
    }
    let count = pending.queue.len() + signed.work.len();
    shared.observer.event(Event::Retry {
        concentrator: role,
        unreachable_s: since.elapsed().as_secs(),
        pending: count,
        wait_s: wait.as_secs(),
        error: format!("{error:#}"),
    });
    signed.resends += 1;
    tokio::time::sleep(wait).await;
}

/// Waits for work if the queue is empty, then tops it up to `batch` with what the meters have
/// handed over meanwhile. False once the meters are done and nothing is queued.
async fn fill_queue(
    intake: &mut Intake,
    queue: &mut std::collections::VecDeque<Work>,
    batch: usize,
) -> bool {
    if queue.is_empty() {
        match intake.recv().await {
            Some(w) => queue.extend(w),
            None => return false,
        }
    }
    while queue.len() < batch {
        match intake.try_recv() {
            Some(w) => queue.extend(w),
            None => break,
        }
    }
    true
}

/// `--tamper`: flips one bit of the AES-GCM ciphertext of the chosen readings of batch
/// `batch_index` (after the 42-byte header, the 2-byte length and the 33-byte ephemeral key):
/// still a well-formed reading, but its signature no longer verifies.
fn tamper(signed: &mut Signed, tampered: &[(usize, usize)], batch_index: usize) {
    for &(_, position) in tampered.iter().filter(|(b, _)| *b == batch_index) {
        if let Some(byte) = signed
            .readings
            .get_mut(position)
            .and_then(|reading| reading.get_mut(80))
        {
            *byte ^= 0x01;
        }
    }
}

/// Counts a committed batch's outcome into the lane's result, saves the touched meters when
/// due and appends the accepted readings to the sent log.
fn record_committed(
    shared: &Shared,
    signed: &Signed,
    outcome: Settled,
    saver: &mut Saver,
    result: &mut LaneResult,
) -> Result<()> {
    result.committed += outcome.accepted.len() as u64;
    result.resigned += outcome.resign;
    result.refused += outcome.refused;
    for (reason, n) in outcome.rejected {
        *result.rejected.entry(reason).or_default() += n;
    }
    for w in &signed.work {
        saver.touch(w.m);
    }
    saver.save_if_due(shared)?;
    append_sent(shared, &outcome.accepted)?;
    result.accepted.extend(outcome.accepted);
    Ok(())
}

/// What one committed batch means for its readings.
#[derive(Default)]
struct Settled {
    accepted: Vec<SentReading>,
    /// Readings the contract found outside its window: their meters sign them again.
    resign: u64,
    /// Readings refused for good (their meters forget them): lost.
    refused: u64,
    rejected: BTreeMap<String, u64>,
}

/// Confirms to the meters what committed, requeues (at the front, in order) what went stale for
/// re-signing, and tells the meters what was refused for good.
fn settle(
    shared: &Shared,
    signed: &Signed,
    results: &[Option<RejectReason>],
    queue: &mut std::collections::VecDeque<Work>,
) -> Settled {
    let mut out = Settled::default();
    let mut again = Vec::new();
    for ((r, work), sent) in results.iter().zip(&signed.work).zip(&signed.sent) {
        let mut meter = lock(&shared.meters[work.m]);
        let start = Timestamp::from_unix_millis(work.start_ms);
        match r {
            // After a resend, `replayed` means an earlier attempt of these very bytes committed:
            // this lane alone sends its meters' readings, in timestamp order.
            None => {
                confirm(&mut meter, work.start_ms);
                out.accepted.push(sent.clone());
            }
            Some(RejectReason::Replayed) if signed.resends > 0 => {
                confirm(&mut meter, work.start_ms);
                out.accepted.push(sent.clone());
            }
            Some(RejectReason::Stale | RejectReason::Future) => {
                out.resign += 1;
                again.push(Work {
                    again: true,
                    ..*work
                });
            }
            Some(reason) => {
                meter.store.confirm(start);
                out.refused += 1;
                *out.rejected.entry(reason.code().to_owned()).or_default() += 1;
            }
        }
    }
    for work in again.into_iter().rev() {
        queue.push_front(work);
    }
    out
}

/// The ledger holds the meter's reading of the interval starting at `start_ms`: the meter
/// forgets its report. If its store had dropped it meanwhile (the concentrator still held this
/// signed copy), the interval is not lost after all.
fn confirm(meter: &mut Meter, start_ms: u64) {
    if !meter.store.confirm(Timestamp::from_unix_millis(start_ms))
        && let Some(i) = meter.dropped.iter().position(|&d| d == start_ms)
    {
        meter.dropped.remove(i);
    }
}

/// The meters of a batch sign their held reports now: a fresh header timestamp, the report
/// unchanged. Intervals a meter no longer holds (dropped on overflow) are skipped; `None` if
/// none is left.
fn sign_batch(shared: &Shared, work: Vec<Work>, rng: &mut ChaCha20Rng) -> Result<Option<Signed>> {
    let mut signed = Signed {
        work: Vec::with_capacity(work.len()),
        readings: Vec::with_capacity(work.len()),
        sent: Vec::with_capacity(work.len()),
        resends: 0,
    };
    let mdms_key = lock(&shared.mdms_key).key;
    for w in work {
        let mut meter = lock(&shared.meters[w.m]);
        let start = Timestamp::from_unix_millis(w.start_ms);
        let Some(report) = meter.store.find(start) else {
            continue;
        };
        let timestamp = meter.next_timestamp(shared.clock.now()?);
        let tx = match shared.runtime.resign(
            w.m,
            &meter.store,
            start,
            w.again,
            &meter.key,
            meter.hid,
            timestamp,
            &mdms_key,
            &mut *rng,
        ) {
            Ok(Some(tx)) => tx,
            // Not held any more, or this meter's wasm instance failed (its error is in the
            // report's runtime section and it signs nothing more).
            Ok(None) => continue,
            Err(e) => bail!("reading of {}: {e:#}", meter.id),
        };
        signed.readings.push(tx.encode());
        signed.sent.push(SentReading {
            hid: meter.hid,
            meter_id: meter.id.to_string(),
            timestamp_ms: timestamp.unix_millis(),
            report,
        });
        signed.work.push(w);
    }
    Ok((!signed.work.is_empty()).then_some(signed))
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
            shared.observer.event(Event::MdmsKeyChanged {
                key: hex::encode(key.to_bytes()),
            });
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
