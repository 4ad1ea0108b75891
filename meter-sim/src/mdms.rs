//! The MDMS side: fetch committed readings, verify each signature against the meter's registered
//! key, decrypt with the MDMS key, and compare with what the meters say they sent. The checks
//! are pure; [`export`] is the async shell that fetches.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Result, anyhow, bail};
use bcami_sdk::{
    Hid, MdmsRegistrationRequest, MdmsSecretKey, MeterPublicKey, Timestamp, Transaction,
    UsageReport,
};
use rand_core::{CryptoRng, RngCore};
use serde::Serialize;

use crate::state::{MdmsLock, SentReading, StateDir, reading_csv};
use bcami_api::Request;
use bcami_client::{Caller, Client, Ledger};

/// A reading that verified and decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// The meter.
    pub hid: Hid,
    /// Header timestamp, Unix ms.
    pub timestamp_ms: u64,
    /// The decrypted report.
    pub report: UsageReport,
}

/// A committed reading the MDMS could not accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The meter (as queried).
    pub hid: String,
    /// The reading's timestamp, if it decoded.
    pub timestamp_ms: Option<u64>,
    /// What failed.
    pub reason: String,
}

/// Verifies one committed reading of meter `hid` against the meter's registered keys (current
/// and, after rotations, earlier ones) and decrypts it with the first of `mdms_keys` (the
/// MDMS's current key, then the keys it rotated away from) that opens it.
pub fn open(
    hid: Hid,
    meter_keys: &[MeterPublicKey],
    bytes: &[u8],
    mdms_keys: &[MdmsSecretKey],
) -> Result<Exported, Failure> {
    let fail = |timestamp_ms, reason: String| Failure {
        hid: hid.to_string(),
        timestamp_ms,
        reason,
    };
    let tx = Transaction::decode(bytes).map_err(|e| fail(None, format!("malformed: {e}")))?;
    let ts = tx.timestamp().unix_millis();
    if tx.hid() != hid {
        return Err(fail(
            Some(ts),
            format!("stored under {hid} but is from {}", tx.hid()),
        ));
    }
    if meter_keys.is_empty() {
        return Err(fail(Some(ts), "the meter has no registered key".into()));
    }
    let mut error = None;
    let verified = meter_keys.iter().any(|key| match tx.verify(key) {
        Ok(()) => true,
        Err(e) => {
            error = Some(e);
            false
        }
    });
    if !verified {
        let reason = error.map_or_else(|| "does not verify".to_owned(), |e| e.to_string());
        return Err(fail(Some(ts), format!("signature: {reason}")));
    }
    let report =
        decrypt_any(&tx, mdms_keys).map_err(|e| fail(Some(ts), format!("decrypt: {e}")))?;
    Ok(Exported {
        hid,
        timestamp_ms: ts,
        report,
    })
}

/// Decrypts `tx` with the first of `keys` that opens it; else the first key's error. A wrong key
/// fails AES-GCM's tag check, so trying each in turn is safe.
pub fn decrypt_any(tx: &Transaction, keys: &[MdmsSecretKey]) -> Result<UsageReport, String> {
    let mut first_error = None;
    keys.iter()
        .find_map(|key| match tx.decrypt(key) {
            Ok(report) => Some(report),
            Err(e) => {
                first_error.get_or_insert(e);
                None
            }
        })
        .ok_or_else(|| {
            first_error.map_or_else(|| "the MDMS holds no key".to_owned(), |e| e.to_string())
        })
}

/// How the export compares with the meters' own log of accepted readings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// Exported readings found in the log with exactly the same report.
    pub matched: u64,
    /// Exported readings found in the log with a different report.
    pub mismatched: Vec<String>,
    /// Logged as accepted, in the period, but not exported.
    pub missing: Vec<String>,
    /// Exported readings the log does not know (sent by another tool).
    pub unknown: u64,
}

/// Compares exported readings with the sent log, within `[from, to]`.
pub fn compare(exported: &[Exported], sent: &[SentReading], from: u64, to: u64) -> Comparison {
    let sent: HashMap<(Hid, u64), &SentReading> = sent
        .iter()
        .filter(|s| (from..=to).contains(&s.timestamp_ms))
        .map(|s| ((s.hid, s.timestamp_ms), s))
        .collect();
    let mut found = std::collections::HashSet::new();
    let mut comparison = Comparison::default();
    for e in exported {
        match sent.get(&(e.hid, e.timestamp_ms)) {
            Some(s) if s.report == e.report => comparison.matched += 1,
            Some(s) => comparison.mismatched.push(format!(
                "{} at {}: sent {:?}, ledger has {:?}",
                s.meter_id, e.timestamp_ms, s.report, e.report
            )),
            None => comparison.unknown += 1,
        }
        found.insert((e.hid, e.timestamp_ms));
    }
    let mut missing: Vec<&&SentReading> = sent
        .iter()
        .filter(|(k, _)| !found.contains(k))
        .map(|(_, s)| s)
        .collect();
    missing.sort_by_key(|s| (s.meter_id.clone(), s.timestamp_ms));
    comparison.missing = missing
        .into_iter()
        .map(|s| format!("{} at {}", s.meter_id, s.timestamp_ms))
        .collect();
    comparison
}

/// One (meter, interval) the ledger holds with different values: never resolved silently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The meter.
    pub hid: String,
    /// The interval's start, Unix ms.
    pub interval_start_ms: u64,
    /// Each distinct value: `(header timestamp ms, energy Wh, register Wh, quality bits)`.
    pub values: Vec<(u64, u64, u64, u16)>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} interval {}: CONFLICT, {} different values (timestamp, Wh, register, quality): {:?}",
            self.hid,
            self.interval_start_ms,
            self.values.len(),
            self.values
        )
    }
}

/// The export counted by (meter, interval).
#[derive(Clone, Debug, Default)]
pub struct Deduplicated {
    /// One reading per (meter, interval): the earliest committed; for a conflict, the earliest
    /// of each distinct value (so a conflict shows as several rows of one interval).
    pub readings: Vec<Exported>,
    /// Readings of an interval already exported with the identical report (a reading committed
    /// before an outage whose confirmation was lost, then re-signed and committed again).
    pub duplicates: u64,
    /// Intervals with two or more different reports.
    pub conflicts: Vec<Conflict>,
}

/// Counts each (meter, interval) once. Identical repeats are suppressed and counted; different
/// reports of one interval are kept, every one, and listed as conflicts.
pub fn deduplicate(readings: &[Exported]) -> Deduplicated {
    let mut by_interval: BTreeMap<(Hid, u64), Vec<&Exported>> = BTreeMap::new();
    for r in readings {
        by_interval
            .entry((r.hid, r.report.interval_start.unix_millis()))
            .or_default()
            .push(r);
    }
    let mut out = Deduplicated::default();
    for ((hid, start), mut copies) in by_interval {
        copies.sort_by_key(|r| r.timestamp_ms);
        let mut distinct: Vec<&Exported> = Vec::new();
        for copy in copies {
            if distinct.iter().any(|d| d.report == copy.report) {
                out.duplicates += 1;
            } else {
                distinct.push(copy);
            }
        }
        if distinct.len() > 1 {
            out.conflicts.push(Conflict {
                hid: hid.to_string(),
                interval_start_ms: start,
                values: distinct
                    .iter()
                    .map(|d| {
                        (
                            d.timestamp_ms,
                            d.report.energy.0,
                            d.report.cumulative_register.0,
                            d.report.quality.bits(),
                        )
                    })
                    .collect(),
            });
        }
        out.readings.extend(distinct.into_iter().cloned());
    }
    out
}

/// A run of intervals a meter has no reading for, between two it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The meter.
    pub hid: String,
    /// Start of the first missing interval, Unix ms.
    pub from_ms: u64,
    /// Number of missing intervals.
    pub intervals: u64,
}

/// The gaps in each meter's exported intervals (readings of one meter with the same interval
/// length, in any order): missing intervals are shown as missing, never filled in.
pub fn gaps(readings: &[Exported]) -> Vec<Gap> {
    let mut starts: BTreeMap<Hid, Vec<(u64, u64)>> = BTreeMap::new();
    for r in readings {
        starts.entry(r.hid).or_default().push((
            r.report.interval_start.unix_millis(),
            u64::from(r.report.interval_length.seconds()) * 1000,
        ));
    }
    let mut out = Vec::new();
    for (hid, mut list) in starts {
        list.sort_unstable();
        list.dedup();
        for pair in list.windows(2) {
            let ((a, len), (b, _)) = (pair[0], pair[1]);
            if b > a + len {
                out.push(Gap {
                    hid: hid.to_string(),
                    from_ms: a + len,
                    intervals: (b - a) / len - 1,
                });
            }
        }
    }
    out
}

/// Everything fetched for a period.
#[derive(Clone, Debug, Default)]
pub struct Export {
    /// Meters queried.
    pub meters: usize,
    /// Verified, decrypted readings, by meter then time.
    pub readings: Vec<Exported>,
    /// Readings that failed.
    pub failures: Vec<Failure>,
}

/// Fetches, verifies and decrypts every committed reading of `hids` in `[from, to]`.
pub async fn export<L: Ledger>(
    ledger: &L,
    hids: &[Hid],
    from: u64,
    to: u64,
    mdms_keys: &[MdmsSecretKey],
    progress: &indicatif::ProgressBar,
) -> Result<Export> {
    let mut out = Export {
        meters: hids.len(),
        ..Export::default()
    };
    for &hid in hids {
        let keys = match Client::new(ledger).meter_keys(Caller::Mdms, hid).await? {
            Some(info) if !info.keys.is_empty() => info.keys,
            Some(info) => info.public_key.into_iter().collect(),
            None => Vec::new(),
        };
        for bytes in Client::new(ledger).readings(hid, from, to).await? {
            match open(hid, &keys, &bytes, mdms_keys) {
                Ok(reading) => out.readings.push(reading),
                Err(failure) => out.failures.push(failure),
            }
        }
        progress.inc(1);
    }
    Ok(out)
}

/// Waits for the MDMS folder's lock (see [`StateDir::try_lock_mdms`]), saying so once if
/// another meter-sim holds it for more than a second.
pub async fn lock_folder(mdms_state: &StateDir) -> Result<MdmsLock> {
    let mut waited = std::time::Duration::ZERO;
    let step = std::time::Duration::from_millis(50);
    loop {
        if let Some(lock) = mdms_state.try_lock_mdms()? {
            return Ok(lock);
        }
        if waited == std::time::Duration::from_secs(1) {
            eprintln!(
                "waiting for {}: another meter-sim is using the MDMS folder",
                mdms_state.root().display()
            );
        }
        tokio::time::sleep(step).await;
        waited += step;
    }
}

/// What `rotate_key` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// The key meters encrypted to before, hex.
    pub old_public_key: String,
    /// The key meters encrypt to from now on, hex.
    pub new_public_key: String,
    /// The key's version on the ledger.
    pub key_version: u32,
    /// Keys the MDMS keeps for readings made for them (retired), after this rotation.
    pub retired_keys: usize,
    /// The rotation was started by an earlier call (its key was already saved) and completed now.
    pub resumed: bool,
}

/// The MDMS rotates its encryption key, as the administrator submits it (`RotateMdmsKey`): a new
/// key is made and saved in `mdms_state` as pending BEFORE the ledger hears of it, so a crash or
/// a lost commit status never leaves the ledger naming a key nobody holds; a later call resumes
/// it. Once the ledger names the new key, the old one is kept as retired (readings already made
/// for it stay readable) and meters encrypt to the new one from their next run.
pub async fn rotate_key<L: Ledger, R: RngCore + CryptoRng>(
    ledger: &L,
    mdms_state: &StateDir,
    now: Timestamp,
    rng: &mut R,
) -> Result<Rotation> {
    let _lock = lock_folder(mdms_state).await?;
    let mut mdms = mdms_state.mdms()?.ok_or_else(|| {
        crate::usage(format!(
            "no MDMS key in {}; register one first (`meter-sim run`)",
            mdms_state.root().display()
        ))
    })?;
    let on_ledger = crate::run::mdms_key(ledger)
        .await?
        .ok_or_else(|| anyhow!("the ledger has no MDMS key: register one before rotating it"))?;
    let old = mdms.public_key();
    let resumed = mdms.pending.is_some();
    let pending_public = mdms.pending.as_ref().map(MdmsSecretKey::public_key);
    if on_ledger != old && Some(on_ledger) != pending_public {
        bail!(
            "the ledger's MDMS key {} is not this folder's ({}); rotate from the folder that \
             holds the registered key",
            hex::encode(on_ledger.to_bytes()),
            mdms_state.root().display()
        );
    }
    let next = match &mdms.pending {
        Some(pending) => pending.clone(),
        None => {
            let key = MdmsSecretKey::generate(rng).map_err(|e| anyhow!("{e}"))?;
            mdms.pending = Some(key.clone());
            mdms_state.save_mdms(&mdms)?;
            key
        }
    };
    // An earlier call's transaction may have committed after its caller gave up on it.
    if on_ledger != next.public_key() {
        let ts = mdms.next_timestamp(now);
        mdms_state.save_mdms(&mdms)?;
        let request = MdmsRegistrationRequest::build(&next, mdms.hid, ts)
            .map_err(|e| anyhow!("MDMS key request: {e}"))?;
        let request = request.encode();
        let outcome = Client::new(ledger)
            .outcome(Caller::Administrator, &Request::RotateMdmsKey(&request))
            .await?;
        if let Err(rejection) = outcome
            && crate::run::mdms_key(ledger).await? != Some(next.public_key())
        {
            bail!(
                "RotateMdmsKey: {rejection}; the new key stays pending in {} and the next \
                     `mdms rotate-key` retries it",
                mdms_state.root().display()
            );
        }
    }
    mdms.promote_pending();
    mdms_state.save_mdms(&mdms)?;
    let key_version = Client::new(ledger)
        .current_mdms_key(Caller::Mdms)
        .await?
        .map(|(_, version)| version)
        .ok_or_else(|| anyhow!("the ledger has no MDMS key"))?;
    Ok(Rotation {
        old_public_key: hex::encode(old.to_bytes()),
        new_public_key: hex::encode(mdms.public_key().to_bytes()),
        key_version,
        retired_keys: mdms.retired.len(),
        resumed,
    })
}

/// The export as CSV (header + one line per reading); `names` maps HIDs to meter IDs.
pub fn to_csv(readings: &[Exported], names: &BTreeMap<Hid, String>) -> String {
    let mut text = String::from(crate::state::READING_CSV_HEADER);
    text.push('\n');
    for r in readings {
        let name = names.get(&r.hid).map_or("", String::as_str);
        text.push_str(&reading_csv(&r.hid, name, r.timestamp_ms, &r.report));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use bcami_sdk::{IntervalLength, MeterSecretKey, QualityFlags, Timestamp, WattHours};

    fn report(wh: u64) -> UsageReport {
        UsageReport {
            interval_start: Timestamp::from_unix_millis(0),
            interval_length: IntervalLength::HALF_HOUR,
            energy: WattHours(wh),
            cumulative_register: WattHours(wh),
            quality: QualityFlags::NONE,
        }
    }

    fn reading(meter: &MeterSecretKey, mdms: &MdmsSecretKey, ts: u64, wh: u64) -> Vec<u8> {
        Transaction::build_from_entropy(
            &[ts as u8; 32],
            meter,
            Hid::from_meter_id("SM-1"),
            Timestamp::from_unix_millis(ts),
            &report(wh),
            &mdms.public_key(),
        )
        .unwrap()
        .encode()
    }

    #[test]
    fn open_verifies_then_decrypts_and_names_each_failure() {
        let meter = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
        let other = MeterSecretKey::from_entropy(&[2; 32]).unwrap();
        let mdms = MdmsSecretKey::from_entropy(&[3; 32]).unwrap();
        let hid = Hid::from_meter_id("SM-1");
        let bytes = reading(&meter, &mdms, 10, 42);
        let ring = [mdms.clone()];
        let ok = open(hid, &[meter.public_key()], &bytes, &ring).unwrap();
        // After a rotation the old key still verifies old readings.
        let rotated = open(
            hid,
            &[meter.public_key(), other.public_key()],
            &bytes,
            &ring,
        )
        .unwrap();
        assert_eq!(rotated, ok);
        assert_eq!((ok.timestamp_ms, ok.report), (10, report(42)));

        let err = open(hid, &[other.public_key()], &bytes, &ring).unwrap_err();
        assert!(err.reason.starts_with("signature"), "{err:?}");
        let err = open(hid, &[], &bytes, &ring).unwrap_err();
        assert!(err.reason.contains("no registered key"));
        let err = open(
            Hid::from_meter_id("SM-2"),
            &[meter.public_key()],
            &bytes,
            &ring,
        )
        .unwrap_err();
        assert!(err.reason.contains("stored under"));
        let mut tampered = bytes.clone();
        tampered[80] ^= 1; // inside the AES-GCM ciphertext
        let err = open(hid, &[meter.public_key()], &tampered, &ring).unwrap_err();
        assert!(err.reason.starts_with("signature"), "{err:?}");
        let wrong_mdms = MdmsSecretKey::from_entropy(&[4; 32]).unwrap();
        let err = open(
            hid,
            &[meter.public_key()],
            &bytes,
            std::slice::from_ref(&wrong_mdms),
        )
        .unwrap_err();
        assert!(err.reason.starts_with("decrypt"), "{err:?}");
        let err = open(hid, &[meter.public_key()], &bytes, &[]).unwrap_err();
        assert!(err.reason.contains("holds no key"), "{err:?}");
        // After an MDMS key rotation: the new key first, the retired one still opens old readings.
        let both = open(
            hid,
            &[meter.public_key()],
            &bytes,
            &[wrong_mdms, mdms.clone()],
        )
        .unwrap();
        assert_eq!(both, ok);
        assert!(
            open(hid, &[], &bytes[1..], &ring)
                .unwrap_err()
                .reason
                .starts_with("malformed")
        );
    }

    #[test]
    fn compare_finds_matches_mismatches_missing_and_unknown() {
        let hid = Hid::from_meter_id("SM-1");
        let sent = |ts, wh| SentReading {
            hid,
            meter_id: "SM-1".into(),
            timestamp_ms: ts,
            report: report(wh),
        };
        let got = |ts, wh| Exported {
            hid,
            timestamp_ms: ts,
            report: report(wh),
        };
        let log = vec![sent(1, 10), sent(2, 20), sent(3, 30), sent(99, 1)];
        let c = compare(&[got(1, 10), got(2, 21), got(4, 40)], &log, 0, 50);
        assert_eq!(c.matched, 1);
        assert_eq!(c.mismatched.len(), 1);
        assert!(c.mismatched[0].contains("SM-1 at 2"));
        assert_eq!(c.missing, vec!["SM-1 at 3".to_owned()]);
        assert_eq!(c.unknown, 1);
    }

    fn at(hid: Hid, ts: u64, start: u64, wh: u64) -> Exported {
        let mut report = report(wh);
        report.interval_start = Timestamp::from_unix_millis(start);
        Exported {
            hid,
            timestamp_ms: ts,
            report,
        }
    }

    #[test]
    fn deduplicate_counts_an_interval_once_and_flags_a_conflict() {
        let a = Hid::from_meter_id("SM-1");
        let b = Hid::from_meter_id("SM-2");
        let h = 1_800_000;
        let readings = [
            // SM-1 interval 0: committed before the outage, then re-signed and committed again.
            at(a, 20, 0, 5),
            at(a, 10, 0, 5),
            // SM-1 interval 1: once.
            at(a, 11, h, 6),
            // SM-2 interval 0: two different values, and one of them twice.
            at(b, 30, 0, 7),
            at(b, 31, 0, 8),
            at(b, 32, 0, 7),
        ];
        let d = deduplicate(&readings);
        assert_eq!(d.duplicates, 2);
        assert_eq!(d.conflicts.len(), 1);
        let c = &d.conflicts[0];
        assert_eq!(
            (c.hid.as_str(), c.interval_start_ms),
            (b.to_string().as_str(), 0)
        );
        assert_eq!(c.values, [(30, 7, 7, 0), (31, 8, 8, 0)]);
        assert!(c.to_string().contains("CONFLICT"));
        // The earliest copy is kept; both values of the conflict stay in the export.
        let kept: Vec<(Hid, u64)> = d.readings.iter().map(|r| (r.hid, r.timestamp_ms)).collect();
        assert_eq!(kept.len(), 4);
        assert!(kept.contains(&(a, 10)) && kept.contains(&(a, 11)));
        assert!(kept.contains(&(b, 30)) && kept.contains(&(b, 31)));
        assert!(!kept.contains(&(a, 20)));
        let nothing = deduplicate(&[]);
        assert_eq!((nothing.duplicates, nothing.conflicts.len()), (0, 0));
    }

    #[test]
    fn gaps_show_missing_intervals_as_missing() {
        let a = Hid::from_meter_id("SM-1");
        let b = Hid::from_meter_id("SM-2");
        let h = 1_800_000;
        // SM-1 has intervals 0, 1, 4, 5, 7 (2 and 3 dropped, then 6); SM-2 none missing.
        let readings: Vec<Exported> = [0, 5, 1, 4, 7]
            .iter()
            .map(|&i| at(a, i, i * h, 1))
            .chain([at(b, 1, 0, 1), at(b, 2, h, 1), at(b, 3, h, 1)])
            .collect();
        assert_eq!(
            gaps(&readings),
            [
                Gap {
                    hid: a.to_string(),
                    from_ms: 2 * h,
                    intervals: 2
                },
                Gap {
                    hid: a.to_string(),
                    from_ms: 6 * h,
                    intervals: 1
                }
            ]
        );
    }

    #[test]
    fn csv_names_known_meters() {
        let hid = Hid::from_meter_id("SM-1");
        let names = BTreeMap::from([(hid, "SM-1".to_owned())]);
        let csv = to_csv(
            &[Exported {
                hid,
                timestamp_ms: 7,
                report: report(5),
            }],
            &names,
        );
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], crate::state::READING_CSV_HEADER);
        assert_eq!(lines[1], format!("{hid},SM-1,7,0,1800,5,5,0"));
    }
}
