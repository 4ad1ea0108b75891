//! The MDMS as a library: fetch committed readings, verify each against the meter's registered
//! keys, decrypt with the MDMS keyring, compare with what the meters say they sent, count each
//! (meter, interval) once (duplicates, conflicts, gaps of store-and-forward), write CSV, and
//! rotate the MDMS key. Everything but [`export`] and [`rotate_key`] (which call the ledger) is
//! pure; where the keys are kept is the caller's ([`MdmsKeys`]).

use std::collections::{BTreeMap, HashMap};

use bcami_api::Request;
use bcami_sdk::{
    Hid, MdmsPublicKey, MdmsRegistrationRequest, MdmsSecretKey, MeterPublicKey, Timestamp,
    Transaction, UsageReport,
};
use rand_core::{CryptoRng, RngCore};
use serde::Serialize;

use crate::{Caller, Client, Error, Ledger};

/// Why an MDMS step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MdmsError {
    /// A ledger call failed.
    #[error(transparent)]
    Ledger(#[from] Error),
    /// The keys could not be saved (the caller's store).
    #[error("saving the MDMS keys: {0}")]
    Save(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A new key could not be made.
    #[error("MDMS key: {0}")]
    Key(String),
    /// The ledger has no MDMS key to rotate.
    #[error("the ledger has no MDMS key: register one before rotating it")]
    NoLedgerKey,
    /// The ledger names a key these keys do not hold.
    #[error(
        "the ledger's MDMS key {ledger_key} is not the one held here; rotate with the keys that hold the registered key"
    )]
    NotOurs {
        /// The ledger's key, hex.
        ledger_key: String,
    },
    /// The ledger refused the rotation; the new key stays pending and the next call retries it.
    #[error(
        "RotateMdmsKey: {rejection}; the new key stays pending and the next rotation retries it"
    )]
    Refused {
        /// The contract's answer.
        rejection: String,
    },
}

impl PartialEq for MdmsError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// A line of the readings CSV that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CsvError(String);

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

/// One line of `sent.csv`: a reading a meter built and handed to a concentrator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentReading {
    /// The meter's HID.
    pub hid: Hid,
    /// The meter's ID.
    pub meter_id: String,
    /// The transaction timestamp (header), Unix ms.
    pub timestamp_ms: u64,
    /// What the meter encrypted.
    pub report: UsageReport,
}

/// Header line of `sent.csv` (also of the MDMS export, which has the same columns).
pub const READING_CSV_HEADER: &str =
    "hid,meter_id,timestamp_ms,interval_start_ms,interval_s,energy_wh,cumulative_wh,quality";

impl SentReading {
    /// One CSV line, without the newline.
    pub fn to_csv(&self) -> String {
        reading_csv(&self.hid, &self.meter_id, self.timestamp_ms, &self.report)
    }

    /// Parses a line written by [`SentReading::to_csv`].
    pub fn from_csv(line: &str) -> Result<SentReading, CsvError> {
        let fields: Vec<&str> = line.split(',').collect();
        let [hid, meter_id, ts, start, len, energy, cumulative, quality] = fields[..] else {
            return Err(CsvError(format!(
                "expected 8 fields, found {}",
                fields.len()
            )));
        };
        let num = |name: &str, v: &str| -> Result<u64, CsvError> {
            v.parse::<u64>()
                .map_err(|e| CsvError(format!("{name} {v:?} is not a whole number: {e}")))
        };
        let interval = u32::try_from(num("interval_s", len)?)
            .ok()
            .and_then(bcami_sdk::IntervalLength::from_seconds)
            .ok_or_else(|| CsvError(format!("interval_s {len:?} is out of range")))?;
        let quality = u16::try_from(num("quality", quality)?)
            .map_err(|_| CsvError(format!("quality {quality:?} is out of range")))
            .and_then(|q| {
                bcami_sdk::QualityFlags::from_bits(q).map_err(|e| CsvError(format!("quality: {e}")))
            })?;
        Ok(SentReading {
            hid: hid
                .parse()
                .map_err(|_| CsvError(format!("hid {hid:?} is not 64 hex digits")))?,
            meter_id: meter_id.to_owned(),
            timestamp_ms: num("timestamp_ms", ts)?,
            report: UsageReport {
                interval_start: Timestamp::from_unix_millis(num("interval_start_ms", start)?),
                interval_length: interval,
                energy: bcami_sdk::WattHours(num("energy_wh", energy)?),
                cumulative_register: bcami_sdk::WattHours(num("cumulative_wh", cumulative)?),
                quality,
            },
        })
    }
}

/// A reading as one CSV line (columns of [`READING_CSV_HEADER`]).
pub fn reading_csv(hid: &Hid, meter_id: &str, timestamp_ms: u64, report: &UsageReport) -> String {
    format!(
        "{hid},{meter_id},{timestamp_ms},{},{},{},{},{}",
        report.interval_start.unix_millis(),
        report.interval_length.seconds(),
        report.energy.0,
        report.cumulative_register.0,
        report.quality.bits()
    )
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

/// Fetches, verifies and decrypts every committed reading of `hids` in `[from, to]`;
/// `done` is called after each meter (for a progress display).
pub async fn export<L: Ledger + ?Sized>(
    ledger: &L,
    hids: &[Hid],
    from: u64,
    to: u64,
    mdms_keys: &[MdmsSecretKey],
    mut done: impl FnMut(),
) -> Result<Export, Error> {
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
        done();
    }
    Ok(out)
}

/// The MDMS key on the ledger, if one is registered.
pub async fn ledger_key<L: Ledger + ?Sized>(ledger: &L) -> Result<Option<MdmsPublicKey>, Error> {
    Ok(Client::new(ledger)
        .current_mdms_key(Caller::Mdms)
        .await?
        .map(|(key, _)| key))
}

/// Where the MDMS keeps its keys, as the rotation needs them. The caller saves them (after
/// [`MdmsKeys::set_pending`], before the ledger hears of the new key, and after the rotation).
pub trait MdmsKeys {
    /// The MDMS's HID.
    fn hid(&self) -> Hid;
    /// The key meters encrypt to now.
    fn current(&self) -> &MdmsSecretKey;
    /// A key made for a rotation that has not completed.
    fn pending(&self) -> Option<&MdmsSecretKey>;
    /// Keep `key` as pending.
    fn set_pending(&mut self, key: MdmsSecretKey);
    /// The pending key becomes the current one; the current one is retired (kept to read the
    /// readings made for it).
    fn promote_pending(&mut self);
    /// How many retired keys are kept.
    fn retired(&self) -> usize;
    /// A timestamp for the next message, strictly after the last one built.
    fn next_timestamp(&mut self, now: Timestamp) -> Timestamp;
}

/// The ledger's key must be the current or the pending one of `keys`.
pub fn check_ledger_key(keys: &impl MdmsKeys, on_ledger: MdmsPublicKey) -> Result<(), MdmsError> {
    let pending = keys.pending().map(MdmsSecretKey::public_key);
    if on_ledger == keys.current().public_key() || Some(on_ledger) == pending {
        Ok(())
    } else {
        Err(MdmsError::NotOurs {
            ledger_key: hex::encode(on_ledger.to_bytes()),
        })
    }
}

/// The key to rotate to: the pending one if a rotation was started, else a new one, kept as
/// pending (the caller saves `keys` before the ledger hears of it).
pub fn prepare_rotation(
    keys: &mut impl MdmsKeys,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<MdmsSecretKey, MdmsError> {
    if let Some(pending) = keys.pending() {
        return Ok(pending.clone());
    }
    let key = MdmsSecretKey::generate(rng).map_err(|e| MdmsError::Key(e.to_string()))?;
    keys.set_pending(key.clone());
    Ok(key)
}

/// The MDMS rotates its encryption key, as the administrator submits it (`RotateMdmsKey`): a new
/// key is made and saved (`save`) as pending BEFORE the ledger hears of it, so a crash or a lost
/// commit status never leaves the ledger naming a key nobody holds; a later call resumes it.
/// Once the ledger names the new key, the old one is kept as retired (readings already made for
/// it stay readable) and meters encrypt to the new one from their next run.
pub async fn rotate_key<L, K, E>(
    ledger: &L,
    keys: &mut K,
    mut save: impl FnMut(&K) -> Result<(), E>,
    now: Timestamp,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Rotation, MdmsError>
where
    L: Ledger + ?Sized,
    K: MdmsKeys,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut save = |keys: &K| save(keys).map_err(|e| MdmsError::Save(e.into()));
    let on_ledger = ledger_key(ledger).await?.ok_or(MdmsError::NoLedgerKey)?;
    check_ledger_key(keys, on_ledger)?;
    let old = keys.current().public_key();
    let resumed = keys.pending().is_some();
    let next = prepare_rotation(keys, rng)?;
    if !resumed {
        save(keys)?;
    }
    // An earlier call's transaction may have committed after its caller gave up on it.
    if on_ledger != next.public_key() {
        let ts = keys.next_timestamp(now);
        save(keys)?;
        let request = MdmsRegistrationRequest::build(&next, keys.hid(), ts)
            .map_err(|e| MdmsError::Key(format!("MDMS key request: {e}")))?;
        let request = request.encode();
        let outcome = Client::new(ledger)
            .outcome(Caller::Administrator, &Request::RotateMdmsKey(&request))
            .await?;
        if let Err(rejection) = outcome
            && ledger_key(ledger).await? != Some(next.public_key())
        {
            return Err(MdmsError::Refused {
                rejection: rejection.to_string(),
            });
        }
    }
    keys.promote_pending();
    save(keys)?;
    let key_version = Client::new(ledger)
        .current_mdms_key(Caller::Mdms)
        .await?
        .map(|(_, version)| version)
        .ok_or(MdmsError::NoLedgerKey)?;
    Ok(Rotation {
        old_public_key: hex::encode(old.to_bytes()),
        new_public_key: hex::encode(keys.current().public_key().to_bytes()),
        key_version,
        retired_keys: keys.retired(),
        resumed,
    })
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

/// The export as CSV (header + one line per reading); `names` maps HIDs to meter IDs.
pub fn to_csv(readings: &[Exported], names: &BTreeMap<Hid, String>) -> String {
    let mut text = String::from(READING_CSV_HEADER);
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
    use std::collections::BTreeMap;

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
        assert_eq!(lines[0], READING_CSV_HEADER);
        assert_eq!(lines[1], format!("{hid},SM-1,7,0,1800,5,5,0"));
    }

    #[test]
    fn sent_csv_round_trips_and_rejects_garbage() {
        let sent = SentReading {
            hid: Hid::from_meter_id("SM-1"),
            meter_id: "SM-1".into(),
            timestamp_ms: 1_700_000_000_123,
            report: UsageReport {
                interval_start: Timestamp::from_unix_millis(1_349_999_999_000),
                interval_length: IntervalLength::HALF_HOUR,
                energy: WattHours(412),
                cumulative_register: WattHours(9_999),
                quality: QualityFlags::ESTIMATED,
            },
        };
        assert_eq!(SentReading::from_csv(&sent.to_csv()).unwrap(), sent);
        assert!(SentReading::from_csv("a,b").is_err());
        let bad_quality = sent.to_csv().rsplit_once(',').unwrap().0.to_owned() + ",64";
        assert!(SentReading::from_csv(&bad_quality).is_err());
    }

    #[test]
    fn a_rotation_saves_the_new_key_before_the_ledger_hears_of_it() {
        let key = |n: u8| MdmsSecretKey::from_entropy(&[n; 32]).unwrap();
        let mut keys = Keys {
            current: key(1),
            pending: None,
            retired: 0,
        };
        let mut rng = Fixed(7);
        let next = prepare_rotation(&mut keys, &mut rng).unwrap();
        assert_eq!(
            keys.pending.as_ref().map(MdmsSecretKey::public_key),
            Some(next.public_key())
        );
        // A second call resumes the pending key instead of making another.
        let again = prepare_rotation(&mut keys, &mut rng).unwrap();
        assert_eq!(again.public_key(), next.public_key());
        assert_eq!(check_ledger_key(&keys, key(1).public_key()), Ok(()));
        assert_eq!(check_ledger_key(&keys, next.public_key()), Ok(()));
        assert!(matches!(
            check_ledger_key(&keys, key(9).public_key()),
            Err(MdmsError::NotOurs { .. })
        ));
    }

    struct Keys {
        current: MdmsSecretKey,
        pending: Option<MdmsSecretKey>,
        retired: usize,
    }

    impl MdmsKeys for Keys {
        fn hid(&self) -> Hid {
            Hid::from_meter_id("MDMS-1")
        }
        fn current(&self) -> &MdmsSecretKey {
            &self.current
        }
        fn pending(&self) -> Option<&MdmsSecretKey> {
            self.pending.as_ref()
        }
        fn set_pending(&mut self, key: MdmsSecretKey) {
            self.pending = Some(key);
        }
        fn promote_pending(&mut self) {
            if let Some(next) = self.pending.take() {
                self.current = next;
                self.retired += 1;
            }
        }
        fn retired(&self) -> usize {
            self.retired
        }
        fn next_timestamp(&mut self, now: Timestamp) -> Timestamp {
            now
        }
    }

    /// A deterministic byte source for the test (not random: the key it makes is known).
    struct Fixed(u8);

    impl rand_core::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            self.0 = self.0.wrapping_add(1);
            dest.fill(self.0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl rand_core::CryptoRng for Fixed {}
}
