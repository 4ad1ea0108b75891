//! `meter-sim anon`: anonymous readings (the DAA paper). `issue` is the Utility's issuer
//! service rolling the credential epoch; `run` enrols fresh meters (credential request relayed
//! by a concentrator, credential posted by the issuer) and has them report one anonymous reading
//! of the current period through the concentrators, a chosen share of them a second, different
//! one through another concentrator (malfunctioning meters), plus exact replays; it then holds
//! the ledger's aggregate against the true sum and the double reports caught against those
//! sent. `aggregates` prints a period's aggregate.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bcami_api::{
    AnonAggregate, AnonIssuerRecord, AnonRejectReason, AnonTraceArg, ErrorCode, Function,
};
use bcami_client::{AnonIssuer, AnonMeter, Caller, Client, Ledger, issuer_public_key};
use bcami_sdk::{Hid, MeterSecretKey, RegistrationRequest, Timestamp};
use rand_core::{OsRng, RngCore};
use serde::Serialize;

use crate::state::StateDir;

/// The period length set with the first issuer key, unless asked otherwise.
pub const DEFAULT_PERIOD_SECS: u32 = 1800;

/// What `anon run` does.
#[derive(Debug, Clone)]
pub struct AnonRunConfig {
    /// Fresh meters to enrol.
    pub meters: usize,
    /// Concentrators (their client identities round-robin).
    pub concentrators: usize,
    /// Share of meters that report twice in the period (0 to 1).
    pub double_share: f64,
    /// Accepted readings sent again, unchanged, through another concentrator.
    pub replays: usize,
    /// Readings per transaction.
    pub batch: usize,
}

fn now_ms() -> Result<u64> {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    u64::try_from(d.as_millis()).context("the clock is past the year 584 million")
}

fn issuer_path(state: &StateDir, epoch: u32) -> PathBuf {
    state
        .root()
        .join("anon")
        .join(format!("issuer-{epoch:010}.key"))
}

/// `anon issue`: a fresh issuer key for the next credential epoch, its secret saved in the
/// state folder before the ledger hears of it.
pub async fn issue<L: Ledger + ?Sized>(
    ledger: &L,
    state: &StateDir,
    period_secs: Option<u32>,
) -> Result<AnonIssuerRecord> {
    let client = Client::new(ledger);
    let (epoch, current_period) = match client.anon_issuer_key(Caller::Administrator, None).await {
        Ok(current) => (
            current
                .epoch
                .checked_add(1)
                .context("the credential epoch is at its maximum")?,
            Some(current.period_secs),
        ),
        Err(e) if e.code() == Some(ErrorCode::UnknownEpoch) => (1, None),
        Err(e) => return Err(e).context("reading the current issuer key"),
    };
    let period_secs = period_secs
        .or(current_period)
        .unwrap_or(DEFAULT_PERIOD_SECS);
    let issuer = loop {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        if let Ok(issuer) = AnonIssuer::from_bytes(&secret, epoch) {
            let path = issuer_path(state, epoch);
            std::fs::create_dir_all(path.parent().unwrap_or(state.root()))
                .with_context(|| format!("creating {}", path.display()))?;
            std::fs::write(&path, hex::encode(secret))
                .with_context(|| format!("writing {}", path.display()))?;
            break issuer;
        }
    };
    client
        .set_anon_issuer_key(Caller::Administrator, issuer.public_key(), period_secs)
        .await
        .context(Function::SetAnonIssuerKey.name())
}

fn load_issuer(state: &StateDir, epoch: u32) -> Result<AnonIssuer> {
    let path = issuer_path(state, epoch);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no issuer secret for epoch {epoch} at {} (run `meter-sim anon issue` with this state folder)",
            path.display()
        )
    })?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{} is not 64 hex digits", path.display()))?;
    AnonIssuer::from_bytes(&bytes, epoch).with_context(|| format!("{}", path.display()))
}

/// The result of `anon run`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonRunReport {
    /// The credential epoch.
    pub epoch: u32,
    /// The period, Unix ms.
    pub period_start: u64,
    /// Meters enrolled.
    pub meters: usize,
    /// Meters that reported twice.
    pub double_reporting_meters: usize,
    /// Readings sent (first readings, second readings, replays).
    pub sent: usize,
    /// Counted by the contract.
    pub accepted: usize,
    /// Rejected as double reports.
    pub double_reports_caught: usize,
    /// Rejected as replays.
    pub replays_caught: usize,
    /// Rejected for any other reason.
    pub other_rejections: usize,
    /// The true sum of the meters' first readings, Wh.
    pub true_sum_wh: u64,
    /// What this run added to the ledger's aggregate of the period, Wh.
    pub ledger_sum_wh: u64,
    /// What this run added to the ledger's count of the period.
    pub ledger_count: u64,
    /// Seconds spent enrolling (provision, register, request, issue).
    pub enrol_secs: f64,
    /// Seconds spent submitting readings.
    pub report_secs: f64,
    /// Double-reported pseudonyms traced (every meter asked for a proof that it is not theirs).
    pub traced: usize,
    /// Traces that named exactly one meter, a double-reporting one, with every other meter's
    /// proof verified; each recorded on the ledger (`RecordAnonTrace`), the meter revoked.
    pub traced_correctly: usize,
    /// Seconds spent tracing.
    pub trace_secs: f64,
    /// The period's aggregate after the run.
    pub aggregate: AnonAggregate,
}

impl AnonRunReport {
    /// Whether the ledger agrees with what was sent.
    pub fn consistent(&self) -> bool {
        self.ledger_sum_wh == self.true_sum_wh
            && self.ledger_count == self.meters as u64
            && self.double_reports_caught == self.double_reporting_meters
            && self.other_rejections == 0
            && self.traced_correctly == self.double_reporting_meters
    }

    /// A human table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "anonymous readings, epoch {}, period starting {} (Unix ms)",
            self.epoch, self.period_start
        );
        let rows: [(&str, String); 13] = [
            ("meters enrolled", self.meters.to_string()),
            (
                "double-reporting meters",
                self.double_reporting_meters.to_string(),
            ),
            ("readings sent", self.sent.to_string()),
            ("counted", self.accepted.to_string()),
            (
                "double reports caught",
                self.double_reports_caught.to_string(),
            ),
            ("replays caught", self.replays_caught.to_string()),
            ("other rejections", self.other_rejections.to_string()),
            ("true sum (Wh)", self.true_sum_wh.to_string()),
            ("ledger sum, this run (Wh)", self.ledger_sum_wh.to_string()),
            ("traced", self.traced.to_string()),
            (
                "named the culprit, revoked",
                self.traced_correctly.to_string(),
            ),
            ("enrolment (s)", format!("{:.1}", self.enrol_secs)),
            (
                "reporting (s, readings/s)",
                format!(
                    "{:.1}, {:.0}",
                    self.report_secs,
                    self.sent as f64 / self.report_secs.max(1e-9)
                ),
            ),
        ];
        for (name, value) in rows {
            let _ = writeln!(out, "  {name:<28} {value:>14}");
        }
        out.push_str(&aggregate_table(std::slice::from_ref(&self.aggregate)));
        let _ = writeln!(
            out,
            "{}",
            if self.consistent() {
                "OK: the aggregate is the true sum and every double report was caught"
            } else {
                "MISMATCH: the ledger does not agree with what the meters sent"
            }
        );
        out
    }
}

/// A per-period table of aggregates.
pub fn aggregate_table(aggregates: &[AnonAggregate]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>15}  {:>8}  {:>12}  {:>14}  concentrators (count / Wh)",
        "period start", "count", "sum (Wh)", "double reports"
    );
    for a in aggregates {
        let per: Vec<String> = a
            .concentrators
            .iter()
            .map(|c| format!("{}: {} / {}", c.concentrator, c.count, c.sum_wh))
            .collect();
        let _ = writeln!(
            out,
            "{:>15}  {:>8}  {:>12}  {:>14}  {}",
            a.period_start,
            a.count,
            a.sum_wh,
            a.double_reports,
            per.join("; ")
        );
    }
    out
}

/// `anon aggregates`.
pub async fn aggregates<L: Ledger + ?Sized>(
    ledger: &L,
    periods: &[u64],
) -> Result<Vec<AnonAggregate>> {
    let client = Client::new(ledger);
    let mut out = Vec::with_capacity(periods.len());
    for p in periods {
        out.push(
            client
                .anon_aggregate(Caller::Mdms, *p)
                .await
                .with_context(|| format!("GetAnonAggregate {p}"))?,
        );
    }
    Ok(out)
}

/// The last `count` periods up to now, for the ledger's period length.
pub async fn recent_periods<L: Ledger + ?Sized>(ledger: &L, count: u64) -> Result<Vec<u64>> {
    let record = Client::new(ledger)
        .anon_issuer_key(Caller::Mdms, None)
        .await
        .context(Function::GetAnonIssuerKey.name())?;
    let length = u64::from(record.period_secs) * 1000;
    let current = now_ms()? / length * length;
    Ok((0..count)
        .rev()
        .map(|i| current.saturating_sub(i * length))
        .collect())
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// `anon run`: enrol fresh meters, have them report (some twice, some replayed), then trace
/// the double reports.
pub async fn run<L: Ledger + ?Sized>(
    ledger: &L,
    state: &StateDir,
    config: &AnonRunConfig,
) -> Result<AnonRunReport> {
    if config.meters == 0 || config.concentrators == 0 || config.batch == 0 {
        bail!("meters, concentrators and batch must be at least 1");
    }
    let client = Client::new(ledger);
    let record = client
        .anon_issuer_key(Caller::Administrator, None)
        .await
        .with_context(|| {
            format!(
                "{} (run `meter-sim anon issue` first)",
                Function::GetAnonIssuerKey.name()
            )
        })?;
    let issuer = load_issuer(state, record.epoch)?;
    let ipk = issuer_public_key(&record)?;
    if ipk != *issuer.public_key() {
        bail!(
            "the issuer secret in the state folder is not the key of epoch {} on the ledger",
            record.epoch
        );
    }
    let started = Instant::now();
    let mut meters = enrol(&client, &issuer, &record, config).await?;
    let enrol_secs = started.elapsed().as_secs_f64();

    let period_ms = u64::from(record.period_secs) * 1000;
    let period_start = now_ms()? / period_ms * period_ms;
    let before = client.anon_aggregate(Caller::Mdms, period_start).await?;
    let reported = report(&client, &mut meters, &record, period_start, config).await?;
    let aggregate = client.anon_aggregate(Caller::Mdms, period_start).await?;

    let started = Instant::now();
    let (traced, traced_correctly) =
        trace(&client, &issuer, &meters, &record, period_start, &reported).await?;
    let trace_secs = started.elapsed().as_secs_f64();
    let outcome = &reported.outcome;
    Ok(AnonRunReport {
        epoch: record.epoch,
        period_start,
        meters: config.meters,
        double_reporting_meters: reported.doubles,
        sent: reported.sent,
        accepted: outcome.accepted,
        double_reports_caught: outcome.double_reports,
        replays_caught: outcome.replays,
        other_rejections: outcome.other,
        true_sum_wh: reported.true_sum_wh,
        ledger_sum_wh: aggregate.sum_wh - before.sum_wh,
        ledger_count: aggregate.count - before.count,
        enrol_secs,
        report_secs: reported.secs,
        traced,
        traced_correctly,
        trace_secs,
        aggregate,
    })
}

fn concentrator(config: &AnonRunConfig, i: usize) -> Caller {
    Caller::Concentrator(i % config.concentrators)
}

/// Enrol `config.meters` fresh meters: provision with bound keys, register, request, issue,
/// post, accept.
async fn enrol<L: Ledger + ?Sized>(
    client: &Client<'_, L>,
    issuer: &AnonIssuer,
    record: &AnonIssuerRecord,
    config: &AnonRunConfig,
) -> Result<Vec<AnonMeter>> {
    let ipk = issuer.public_key();
    let dc = |i: usize| concentrator(config, i);
    let run_id = now_ms()?;
    let mut keys = Vec::with_capacity(config.meters);
    for i in 0..config.meters {
        let key = loop {
            if let Ok(k) = MeterSecretKey::from_bytes(&random()) {
                break k;
            }
        };
        keys.push((Hid::from_meter_id(format!("ANON-{run_id}-{i:06}")), key));
    }
    let bound: Vec<_> = keys.iter().map(|(h, k)| (*h, k.public_key())).collect();
    client
        .provision_bound_meters(&bound)
        .await
        .context(Function::ProvisionMeters.name())?;
    let mut meters = Vec::with_capacity(config.meters);
    for (i, (hid, key)) in keys.iter().enumerate() {
        let now = Timestamp::from_unix_millis(now_ms()?);
        let registration = RegistrationRequest::build(key, *hid, now)?.encode();
        client
            .register_meter(dc(i), &registration)
            .await
            .with_context(|| format!("{} {hid}", Function::RegisterMeter.name()))?;
        let mut meter = AnonMeter::new(*hid, &random::<32>())?;
        let request = meter.credential_request(ipk, &record.tx_id, key, now, &random())?;
        let requested = client
            .request_anon_credential(dc(i), &request)
            .await
            .with_context(|| format!("{} {hid}", Function::RequestAnonCredential.name()))?;
        let credential = issuer.issue(&requested, &record.tx_id)?;
        let posted = client
            .post_anon_credential(Caller::Administrator, *hid, &credential)
            .await
            .with_context(|| format!("{} {hid}", Function::PostAnonCredential.name()))?;
        meter.accept(ipk, &posted)?;
        meters.push(meter);
    }
    Ok(meters)
}

/// What the report phase sent.
struct Reported {
    /// Meters that reported twice.
    doubles: usize,
    /// The random order the double reporters were taken from (the first `doubles`).
    order: Vec<usize>,
    /// The sum of the first readings, Wh.
    true_sum_wh: u64,
    /// The second round (double reports and replays), as sent.
    second_readings: Vec<Vec<u8>>,
    /// Readings sent.
    sent: usize,
    /// How the ledger answered.
    outcome: BatchTally,
    /// Time spent sending, s.
    secs: f64,
}

/// One reading per meter; the first ⌈share·n⌉ meters (in a random order) again, and
/// `config.replays` first readings replayed.
async fn report<L: Ledger + ?Sized>(
    client: &Client<'_, L>,
    meters: &mut [AnonMeter],
    record: &AnonIssuerRecord,
    period_start: u64,
    config: &AnonRunConfig,
) -> Result<Reported> {
    let dc = |i: usize| concentrator(config, i);
    let doubles = ((config.double_share.clamp(0.0, 1.0) * config.meters as f64).ceil() as usize)
        .min(config.meters);
    let mut order: Vec<usize> = (0..config.meters).collect();
    for i in (1..order.len()).rev() {
        let j = (OsRng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let energy = || 50 + OsRng.next_u64() % 1_500;
    // (concentrator, reading, energy counted if first)
    let mut first: Vec<(usize, Vec<u8>, u64)> = Vec::new();
    let mut second: Vec<(usize, Vec<u8>, u64)> = Vec::new();
    for (i, meter) in meters.iter_mut().enumerate() {
        let e = energy();
        first.push((
            i,
            meter.reading(period_start, record.period_secs, e, &random())?,
            e,
        ));
    }
    for &i in order.iter().take(doubles) {
        let e = energy();
        second.push((
            i + 1,
            meters[i].reading(period_start, record.period_secs, e, &random())?,
            e,
        ));
    }
    for k in 0..config.replays.min(first.len()) {
        let (c, bytes, e) = first[order[k % first.len()]].clone();
        second.push((c + 1, bytes, e));
    }
    let true_sum_wh: u64 = first.iter().map(|(_, _, e)| e).sum();
    let second_readings: Vec<Vec<u8>> = second.iter().map(|(_, b, _)| b.clone()).collect();
    let sent = first.len() + second.len();
    let mut outcome = BatchTally::default();
    let started = Instant::now();
    for round in [first, second] {
        for c in 0..config.concentrators {
            let mine: Vec<Vec<u8>> = round
                .iter()
                .filter(|(i, _, _)| i % config.concentrators == c)
                .map(|(_, b, _)| b.clone())
                .collect();
            for chunk in mine.chunks(config.batch) {
                let reasons = client
                    .submit_anon_readings(dc(c), chunk)
                    .await
                    .context(Function::SubmitAnonReadings.name())?;
                outcome.add(&reasons);
            }
        }
    }
    Ok(Reported {
        secs: started.elapsed().as_secs_f64(),
        doubles,
        order,
        true_sum_wh,
        second_readings,
        sent,
        outcome,
    })
}

/// For each pseudonym this run double-reported, every meter proves it is not its own; the one
/// that cannot is named and revoked. Returns the pseudonyms traced and how many named a meter
/// that did report twice.
async fn trace<L: Ledger + ?Sized>(
    client: &Client<'_, L>,
    issuer: &AnonIssuer,
    meters: &[AnonMeter],
    record: &AnonIssuerRecord,
    period_start: u64,
    reported: &Reported,
) -> Result<(usize, usize)> {
    let (second_readings, order, doubles) =
        (&reported.second_readings, &reported.order, reported.doubles);
    let ours: std::collections::BTreeSet<String> = second_readings
        .iter()
        .map(|b| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b))
        .collect();
    let mut suspects: Vec<[u8; 48]> = Vec::new();
    for d in client
        .anon_double_reports(Caller::Administrator, period_start)
        .await?
    {
        if !ours.contains(&d.reading) {
            continue;
        }
        let k: [u8; 48] = bcami_api::from_hex(&d.pseudonym)
            .with_context(|| format!("pseudonym {} is not 96 hex digits", d.pseudonym))?;
        if !suspects.contains(&k) {
            suspects.push(k);
        }
    }
    let double_reporters: std::collections::BTreeSet<usize> =
        order.iter().take(doubles).copied().collect();
    let mut traced_correctly = 0;
    for k in &suspects {
        let mut culprits = Vec::new();
        for (i, meter) in meters.iter().enumerate() {
            match meter.prove_not_mine(period_start, record.period_secs, k, &random())? {
                Some(proof) => {
                    let joined = client
                        .anon_credential(Caller::Administrator, meter.hid(), record.epoch)
                        .await?;
                    issuer
                        .check_not_mine(&joined, period_start, record.period_secs, k, &proof)
                        .with_context(|| format!("meter {}'s tracing proof", meter.hid()))?;
                }
                None => culprits.push(i),
            }
        }
        if let [culprit] = culprits[..] {
            client
                .record_anon_trace(
                    Caller::Administrator,
                    &AnonTraceArg {
                        period_start,
                        pseudonym: bcami_api::to_hex(k),
                        hid: meters[culprit].hid(),
                        cleared: (meters.len() - 1) as u64,
                    },
                )
                .await
                .context(Function::RecordAnonTrace.name())?;
            if double_reporters.contains(&culprit) {
                traced_correctly += 1;
            }
        }
    }
    Ok((suspects.len(), traced_correctly))
}

#[derive(Debug, Default)]
struct BatchTally {
    accepted: usize,
    double_reports: usize,
    replays: usize,
    other: usize,
}

impl BatchTally {
    fn add(&mut self, reasons: &[Option<AnonRejectReason>]) {
        for r in reasons {
            match r {
                None => self.accepted += 1,
                Some(AnonRejectReason::DoubleReport) => self.double_reports += 1,
                Some(AnonRejectReason::Replayed) => self.replays += 1,
                Some(_) => self.other += 1,
            }
        }
    }
}

/// What `meter-sim anon …` asks for, validated.
#[derive(Debug, Clone)]
pub enum AnonCommand {
    /// `anon issue`.
    Issue {
        /// The period length for the first key (later keys keep the ledger's).
        period_secs: Option<u32>,
    },
    /// `anon run`.
    Run(AnonRunConfig),
    /// `anon aggregates`: these periods, or the last `last` ones.
    Aggregates {
        /// Periods by start, Unix ms.
        periods: Vec<u64>,
        /// Else the last this many periods.
        last: u64,
    },
}

/// Runs `command` on `ledger`; the text (or JSON) to print, and whether the ledger agreed with
/// what was sent (`anon run`).
pub async fn execute<L: Ledger + ?Sized>(
    ledger: &L,
    state: &StateDir,
    command: &AnonCommand,
    embedded: bool,
    json: bool,
) -> Result<(String, bool)> {
    match command {
        AnonCommand::Issue { period_secs } => {
            let record = issue(ledger, state, *period_secs).await?;
            Ok((
                if json {
                    serde_json::to_string_pretty(&record)?
                } else {
                    format!(
                        "issuer key set: epoch {}, period {} s, transaction {}; secret in {}\n",
                        record.epoch,
                        record.period_secs,
                        record.tx_id,
                        issuer_path(state, record.epoch).display()
                    )
                },
                true,
            ))
        }
        AnonCommand::Run(config) => {
            if embedded {
                // The in-process ledger starts empty: the issuer service sets the first key.
                issue(ledger, state, None).await?;
            }
            let report = run(ledger, state, config).await?;
            let ok = report.consistent();
            Ok((
                if json {
                    serde_json::to_string_pretty(&report)?
                } else {
                    report.table()
                },
                ok,
            ))
        }
        AnonCommand::Aggregates { periods, last } => {
            let periods = if periods.is_empty() {
                recent_periods(ledger, *last).await?
            } else {
                periods.clone()
            };
            let aggregates = aggregates(ledger, &periods).await?;
            Ok((
                if json {
                    serde_json::to_string_pretty(&aggregates)?
                } else {
                    aggregate_table(&aggregates)
                },
                true,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::embedded::Embedded;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_run_catches_every_double_report_and_sums_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let ledger = Embedded::new();
        let config = AnonRunConfig {
            meters: 8,
            concentrators: 2,
            double_share: 0.25,
            replays: 3,
            batch: 3,
        };
        let command = AnonCommand::Run(config);
        let (text, ok) = execute(&ledger, &state, &command, true, false)
            .await
            .unwrap();
        assert!(ok, "{text}");
        assert!(text.contains("double reports caught"), "{text}");
        let report = run(
            &ledger,
            &state,
            &AnonRunConfig {
                meters: 4,
                concentrators: 3,
                double_share: 1.0,
                replays: 4,
                batch: 500,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (
                report.accepted,
                report.double_reports_caught,
                report.replays_caught,
                report.other_rejections
            ),
            (4, 4, 4, 0)
        );
        assert_eq!(report.ledger_sum_wh, report.true_sum_wh);
        assert_eq!((report.traced, report.traced_correctly), (4, 4));
        assert!(report.consistent());
        // A second issuer key rolls the epoch; the run uses it.
        let next = issue(&ledger, &state, None).await.unwrap();
        assert_eq!(next.epoch, 2);
        let aggregates = aggregates(&ledger, &[report.period_start]).await.unwrap();
        assert_eq!(aggregates[0], report.aggregate);
    }
}
