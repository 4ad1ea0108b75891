//! The state folder: meter and MDMS keys, what was registered, and what each meter sent, so a
//! run can be resumed and the MDMS export can be checked against what the meters really sent.
//!
//! Layout (format version 1; every file is plain text):
//! ```text
//! STATE/
//!   mdms.json            the MDMS identity, its ECIES secret key, the keys it retired
//!                        (to read readings made for them) and a rotation in progress
//!   meters/<ID>.json     one meter: identity, device secret key, register, flags, its store
//!                        of unconfirmed interval reports and the intervals it dropped
//!   sent.csv             append-only log of every reading a meter handed to a concentrator
//! ```
//! The JSON files are converted once into domain types ([`Meter`], [`Mdms`]) that cannot hold a
//! key that does not match its public key or an HID that does not match its ID. Secret keys are
//! stored in clear (this is a simulator: the "device" is this folder), with mode 0600.

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use bcami_sdk::store::ReportStore;
use bcami_sdk::{Hid, MdmsPublicKey, MdmsSecretKey, MeterSecretKey, Timestamp, UsageReport};
use serde::{Deserialize, Serialize};

/// Version of the JSON files written here.
const STATE_VERSION: u32 = 1;

/// A meter or MDMS identifier as the utility knows it (its SHA-256 is the HID). Restricted to
/// characters that are safe as a file name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    /// `SHA-256(ID)`.
    pub fn hid(&self) -> Hid {
        Hid::from_meter_id(self.0.as_bytes())
    }
}

impl FromStr for DeviceId {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 64 {
            bail!("ID {s:?} must be 1 to 64 characters long");
        }
        if s.starts_with('.') {
            bail!("ID {s:?} must not start with '.'");
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            bail!("ID {s:?} contains {bad:?}; allowed are A-Z a-z 0-9 . _ -");
        }
        Ok(DeviceId(s.to_owned()))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// On-disk form of a meter (`meters/<ID>.json`).
#[derive(Debug, Serialize, Deserialize)]
struct MeterFile {
    version: u32,
    meter_id: String,
    hid: String,
    secret_key: String,
    public_key: String,
    #[serde(default)]
    provisioned: bool,
    #[serde(default)]
    registered: bool,
    #[serde(default)]
    cumulative_wh: u64,
    #[serde(default)]
    last_timestamp_ms: u64,
    #[serde(default)]
    next_interval_ms: Option<u64>,
    /// The reports not yet confirmed on the ledger, oldest first (the meter's store).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unconfirmed: Vec<StoredReport>,
    /// Starts (Unix ms) of the intervals the store dropped on overflow, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dropped_intervals: Vec<u64>,
}

/// On-disk form of one held report.
#[derive(Debug, Serialize, Deserialize)]
struct StoredReport {
    interval_start_ms: u64,
    interval_s: u32,
    energy_wh: u64,
    cumulative_wh: u64,
    quality: u16,
}

impl StoredReport {
    fn of(r: &UsageReport) -> StoredReport {
        StoredReport {
            interval_start_ms: r.interval_start.unix_millis(),
            interval_s: r.interval_length.seconds(),
            energy_wh: r.energy.0,
            cumulative_wh: r.cumulative_register.0,
            quality: r.quality.bits(),
        }
    }

    fn report(&self) -> Result<UsageReport> {
        Ok(UsageReport {
            interval_start: Timestamp::from_unix_millis(self.interval_start_ms),
            interval_length: bcami_sdk::IntervalLength::from_seconds(self.interval_s)
                .ok_or_else(|| anyhow!("unconfirmed report with interval_s 0"))?,
            energy: bcami_sdk::WattHours(self.energy_wh),
            cumulative_register: bcami_sdk::WattHours(self.cumulative_wh),
            quality: bcami_sdk::QualityFlags::from_bits(self.quality)
                .map_err(|e| anyhow!("unconfirmed report quality: {e}"))?,
        })
    }
}

/// Reports a meter keeps by default: 10 days of half-hourly intervals (`--meter-store`).
pub const DEFAULT_STORE_CAPACITY: usize = 480;

/// The simulated meter's store of unconfirmed interval reports ([`ReportStore`]): held in memory,
/// saved with the meter's file.
#[derive(Clone, Debug)]
pub struct PendingStore {
    reports: VecDeque<UsageReport>,
    capacity: usize,
}

impl PendingStore {
    /// An empty store of `capacity` reports.
    pub fn new(capacity: usize) -> PendingStore {
        PendingStore {
            reports: VecDeque::new(),
            capacity,
        }
    }

    /// A different capacity; if fewer than held, the oldest are dropped and returned.
    pub fn set_capacity(&mut self, capacity: usize) -> Vec<UsageReport> {
        self.capacity = capacity;
        let excess = self.reports.len().saturating_sub(capacity);
        self.reports.drain(..excess).collect()
    }

    /// The held reports, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &UsageReport> {
        self.reports.iter()
    }
}

impl ReportStore for PendingStore {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn len(&self) -> usize {
        self.reports.len()
    }

    fn get(&self, index: usize) -> Option<UsageReport> {
        self.reports.get(index).copied()
    }

    fn push_newest(&mut self, report: UsageReport) {
        self.reports.push_back(report);
    }

    fn remove(&mut self, index: usize) -> Option<UsageReport> {
        self.reports.remove(index)
    }
}

/// A meter: its identity, its device key and what the simulator remembers about it.
#[derive(Clone, Debug)]
pub struct Meter {
    /// The meter's ID.
    pub id: DeviceId,
    /// `SHA-256(id)`.
    pub hid: Hid,
    /// The device key (made on "the meter", never leaves the state folder).
    pub key: MeterSecretKey,
    /// The administrator provisioned the HID (as far as this folder knows).
    pub provisioned: bool,
    /// The registration committed.
    pub registered: bool,
    /// The cumulative import register, Wh.
    pub cumulative_wh: u64,
    /// Timestamp of the last message this meter built; the next must be later.
    pub last_timestamp_ms: u64,
    /// Start of the first interval not yet measured (a resumed run continues here).
    pub next_interval_ms: Option<u64>,
    /// Interval reports measured and not yet confirmed on the ledger.
    pub store: PendingStore,
    /// Starts (Unix ms) of the intervals the store dropped on overflow, oldest first: lost.
    pub dropped: Vec<u64>,
}

impl Meter {
    /// A fresh meter with a new key.
    pub fn new(id: DeviceId, key: MeterSecretKey) -> Meter {
        Meter {
            hid: id.hid(),
            id,
            key,
            provisioned: false,
            registered: false,
            cumulative_wh: 0,
            last_timestamp_ms: 0,
            next_interval_ms: None,
            store: PendingStore::new(DEFAULT_STORE_CAPACITY),
            dropped: Vec::new(),
        }
    }

    /// The meter measured an interval: keep its report until confirmed. A full store drops its
    /// oldest report, which is remembered in [`Meter::dropped`] and returned.
    pub fn measure(&mut self, report: UsageReport) -> Option<UsageReport> {
        let dropped = self.store.record(report);
        self.dropped
            .extend(dropped.iter().map(|r| r.interval_start.unix_millis()));
        dropped
    }

    /// The next timestamp for a message sent at `now`: `now`, or 1 ms after the previous one if
    /// that is later (the contract requires strictly increasing timestamps per meter).
    pub fn next_timestamp(&mut self, now: Timestamp) -> Timestamp {
        next_after(&mut self.last_timestamp_ms, now)
    }

    fn to_json(&self) -> Result<String> {
        let file = MeterFile {
            version: STATE_VERSION,
            meter_id: self.id.0.clone(),
            hid: self.hid.to_string(),
            secret_key: hex::encode(self.key.to_bytes()),
            public_key: hex::encode(self.key.public_key().to_bytes()),
            provisioned: self.provisioned,
            registered: self.registered,
            cumulative_wh: self.cumulative_wh,
            last_timestamp_ms: self.last_timestamp_ms,
            next_interval_ms: self.next_interval_ms,
            unconfirmed: self.store.iter().map(StoredReport::of).collect(),
            dropped_intervals: self.dropped.clone(),
        };
        Ok(serde_json::to_string_pretty(&file)? + "\n")
    }

    fn from_json(text: &str) -> Result<Meter> {
        let file: MeterFile = serde_json::from_str(text)?;
        let (id, hid) = checked_identity(file.version, &file.meter_id, &file.hid, "meter")?;
        let key = MeterSecretKey::from_bytes(&hex32(&file.secret_key, "secret_key")?)
            .map_err(|e| anyhow!("secret_key: {e}"))?;
        if hex::encode(key.public_key().to_bytes()) != file.public_key {
            bail!("public_key does not match secret_key");
        }
        let mut store = PendingStore::new(DEFAULT_STORE_CAPACITY.max(file.unconfirmed.len()));
        for held in &file.unconfirmed {
            store.push_newest(held.report()?);
        }
        Ok(Meter {
            id,
            hid,
            key,
            provisioned: file.provisioned,
            registered: file.registered,
            cumulative_wh: file.cumulative_wh,
            last_timestamp_ms: file.last_timestamp_ms,
            next_interval_ms: file.next_interval_ms,
            store,
            dropped: file.dropped_intervals,
        })
    }
}

/// On-disk form of the MDMS (`mdms.json`).
#[derive(Debug, Serialize, Deserialize)]
struct MdmsFile {
    version: u32,
    mdms_id: String,
    hid: String,
    #[serde(flatten)]
    key: KeyPairFile,
    #[serde(default)]
    provisioned: bool,
    #[serde(default)]
    registered: bool,
    #[serde(default)]
    last_timestamp_ms: u64,
    /// Keys replaced by `mdms rotate-key`, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retired_keys: Vec<KeyPairFile>,
    /// A key made for a rotation that has not been seen on the ledger yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_key: Option<KeyPairFile>,
}

/// An MDMS key pair on disk.
#[derive(Debug, Serialize, Deserialize)]
struct KeyPairFile {
    secret_key: String,
    public_key: String,
}

impl KeyPairFile {
    fn of(key: &MdmsSecretKey) -> KeyPairFile {
        KeyPairFile {
            secret_key: hex::encode(key.to_bytes()),
            public_key: hex::encode(key.public_key().to_bytes()),
        }
    }

    /// The key, checked against its public key; errors name it as `what`.
    fn key(&self, what: &str) -> Result<MdmsSecretKey> {
        let bytes = hex32(&self.secret_key, "secret_key").with_context(|| what.to_owned())?;
        let key =
            MdmsSecretKey::from_bytes(&bytes).map_err(|e| anyhow!("{what}: secret_key: {e}"))?;
        if hex::encode(key.public_key().to_bytes()) != self.public_key {
            bail!("{what}: public_key does not match secret_key");
        }
        Ok(key)
    }
}

/// The MDMS: its identity and ECIES key.
#[derive(Clone, Debug)]
pub struct Mdms {
    /// The MDMS ID.
    pub id: DeviceId,
    /// `SHA-256(id)`.
    pub hid: Hid,
    /// The decryption key.
    pub key: MdmsSecretKey,
    /// The administrator provisioned the HID (as far as this folder knows).
    pub provisioned: bool,
    /// The key registration committed.
    pub registered: bool,
    /// Timestamp of the last message the MDMS built.
    pub last_timestamp_ms: u64,
    /// Keys it used before (`mdms rotate-key`), newest first: readings made for them stay on
    /// the ledger encrypted to them.
    pub retired: Vec<MdmsSecretKey>,
    /// The next key, saved before the rotation is submitted so that a crash cannot leave the
    /// ledger naming a key nobody holds.
    pub pending: Option<MdmsSecretKey>,
}

impl Mdms {
    /// A fresh MDMS identity.
    pub fn new(id: DeviceId, key: MdmsSecretKey) -> Mdms {
        Mdms {
            hid: id.hid(),
            id,
            key,
            provisioned: false,
            registered: false,
            last_timestamp_ms: 0,
            retired: Vec::new(),
            pending: None,
        }
    }

    /// Every secret key a committed reading may have been encrypted to: the current key first,
    /// then a pending one, then the retired ones, newest first.
    pub fn keyring(&self) -> Vec<MdmsSecretKey> {
        std::iter::once(&self.key)
            .chain(&self.pending)
            .chain(&self.retired)
            .cloned()
            .collect()
    }

    /// The pending key becomes the current one; the current one is retired. False if none was
    /// pending.
    pub fn promote_pending(&mut self) -> bool {
        match self.pending.take() {
            Some(next) => {
                let old = std::mem::replace(&mut self.key, next);
                self.retired.insert(0, old);
                true
            }
            None => false,
        }
    }

    /// The public key meters encrypt to.
    pub fn public_key(&self) -> MdmsPublicKey {
        self.key.public_key()
    }

    /// Like [`Meter::next_timestamp`].
    pub fn next_timestamp(&mut self, now: Timestamp) -> Timestamp {
        next_after(&mut self.last_timestamp_ms, now)
    }

    fn to_json(&self) -> Result<String> {
        let file = MdmsFile {
            version: STATE_VERSION,
            mdms_id: self.id.0.clone(),
            hid: self.hid.to_string(),
            key: KeyPairFile::of(&self.key),
            provisioned: self.provisioned,
            registered: self.registered,
            last_timestamp_ms: self.last_timestamp_ms,
            retired_keys: self.retired.iter().map(KeyPairFile::of).collect(),
            pending_key: self.pending.as_ref().map(KeyPairFile::of),
        };
        Ok(serde_json::to_string_pretty(&file)? + "\n")
    }

    fn from_json(text: &str) -> Result<Mdms> {
        let file: MdmsFile = serde_json::from_str(text)?;
        let (id, hid) = checked_identity(file.version, &file.mdms_id, &file.hid, "MDMS")?;
        let key = file.key.key("the MDMS key")?;
        let retired = file
            .retired_keys
            .iter()
            .enumerate()
            .map(|(i, k)| k.key(&format!("retired_keys[{i}]")))
            .collect::<Result<_>>()?;
        let pending = file
            .pending_key
            .as_ref()
            .map(|k| k.key("pending_key"))
            .transpose()?;
        Ok(Mdms {
            id,
            hid,
            key,
            provisioned: file.provisioned,
            registered: file.registered,
            last_timestamp_ms: file.last_timestamp_ms,
            retired,
            pending,
        })
    }
}

/// Holds the MDMS folder's lock until dropped.
#[derive(Debug)]
pub struct MdmsLock {
    _file: fs::File,
}

/// `now`, or 1 ms after `last` if that is later; records it in `last`.
fn next_after(last: &mut u64, now: Timestamp) -> Timestamp {
    let millis = now.unix_millis().max(last.saturating_add(1));
    *last = millis;
    Timestamp::from_unix_millis(millis)
}

/// The state-file version, the device ID and its HID, checked against each other.
fn checked_identity(version: u32, id: &str, hid: &str, what: &str) -> Result<(DeviceId, Hid)> {
    if version != STATE_VERSION {
        bail!("unsupported state version {version}");
    }
    let id: DeviceId = id.parse()?;
    let hid: Hid = hid
        .parse()
        .map_err(|_| anyhow!("hid is not 64 hex digits"))?;
    if hid != id.hid() {
        bail!("hid {hid} is not SHA-256 of {what} ID {id}");
    }
    Ok((id, hid))
}

fn hex32(text: &str, field: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(text).with_context(|| format!("{field} is not hex"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow!("{field} is {} bytes, expected 32", b.len()))
}

pub use bcami_client::mdms::{READING_CSV_HEADER, SentReading, reading_csv};

/// The state folder on disk.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (creating if needed) the folder.
    pub fn open(root: &Path) -> Result<StateDir> {
        fs::create_dir_all(root.join("meters"))
            .with_context(|| format!("cannot create state folder {}", root.display()))?;
        Ok(StateDir {
            root: root.to_owned(),
        })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn meter_path(&self, id: &DeviceId) -> PathBuf {
        self.root.join("meters").join(format!("{id}.json"))
    }

    fn mdms_path(&self) -> PathBuf {
        self.root.join("mdms.json")
    }

    /// Which network this folder's registrations belong to (see [`StateDir::set_network`]).
    pub fn network(&self) -> Result<Option<String>> {
        let path = self.root.join("network.id");
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Records which network the registrations belong to: a network that was torn down and
    /// brought up again has an empty ledger, and everything must be provisioned again.
    pub fn set_network(&self, id: &str) -> Result<()> {
        let path = self.root.join("network.id");
        fs::write(&path, format!("{id}\n"))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Path of the sent-readings log.
    pub fn sent_path(&self) -> PathBuf {
        self.root.join("sent.csv")
    }

    /// The meter, if this folder has it.
    pub fn meter(&self, id: &DeviceId) -> Result<Option<Meter>> {
        let path = self.meter_path(id);
        match fs::read_to_string(&path) {
            Ok(text) => Meter::from_json(&text)
                .map(Some)
                .with_context(|| format!("corrupt meter file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Every meter in the folder, sorted by ID.
    pub fn meters(&self) -> Result<Vec<Meter>> {
        let dir = self.root.join("meters");
        let mut meters = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                meters.push(
                    Meter::from_json(&text)
                        .with_context(|| format!("corrupt meter file {}", path.display()))?,
                );
            }
        }
        meters.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(meters)
    }

    /// Stores the meter (atomically: temp file + rename).
    pub fn save_meter(&self, meter: &Meter) -> Result<()> {
        write_private(&self.meter_path(&meter.id), &meter.to_json()?)
    }

    /// The MDMS, if this folder has it.
    pub fn mdms(&self) -> Result<Option<Mdms>> {
        let path = self.mdms_path();
        match fs::read_to_string(&path) {
            Ok(text) => Mdms::from_json(&text)
                .map(Some)
                .with_context(|| format!("corrupt MDMS file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Stores the MDMS.
    pub fn save_mdms(&self, mdms: &Mdms) -> Result<()> {
        write_private(&self.mdms_path(), &mdms.to_json()?)
    }

    /// The MDMS folder's lock (`mdms.lock`, an advisory lock the OS releases when the holder
    /// exits), if no other process holds it. Whoever loads, changes and saves `mdms.json` holds
    /// it, so a run and a key rotation on one network never overwrite each other's key.
    pub fn try_lock_mdms(&self) -> Result<Option<MdmsLock>> {
        let path = self.root.join("mdms.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(MdmsLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// Appends readings to `sent.csv` (writing the header first if the file is new).
    pub fn append_sent(&self, readings: &[SentReading]) -> Result<()> {
        let path = self.sent_path();
        let new = !path.exists();
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut text = String::new();
        if new {
            text.push_str(READING_CSV_HEADER);
            text.push('\n');
        }
        for reading in readings {
            text.push_str(&reading.to_csv());
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Every reading in `sent.csv` (empty if there is none).
    pub fn sent(&self) -> Result<Vec<SentReading>> {
        let path = self.sent_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.is_empty() && *line != READING_CSV_HEADER)
            .map(|(n, line)| {
                SentReading::from_csv(line).with_context(|| format!("{}:{}", path.display(), n + 1))
            })
            .collect()
    }
}

pub(crate) fn write_private(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bcami_sdk::{IntervalLength, QualityFlags, WattHours};

    fn meter() -> Meter {
        let mut meter = Meter::new(
            "SM-1".parse().unwrap(),
            MeterSecretKey::from_entropy(&[7; 32]).unwrap(),
        );
        meter.registered = true;
        meter.cumulative_wh = 1234;
        meter.last_timestamp_ms = 99;
        meter.next_interval_ms = Some(1_800_000);
        meter
    }

    #[test]
    fn device_ids_are_file_name_safe() {
        for good in ["SM-1", "MAC000002", "a.b_c-d", &"x".repeat(64)] {
            assert!(good.parse::<DeviceId>().is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "ü", &"x".repeat(65), ".."] {
            assert!(bad.parse::<DeviceId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn meter_json_round_trips() {
        let m = meter();
        let back = Meter::from_json(&m.to_json().unwrap()).unwrap();
        assert_eq!(back.id, m.id);
        assert_eq!(back.hid, m.hid);
        assert_eq!(back.key.to_bytes(), m.key.to_bytes());
        assert!(back.registered && !back.provisioned);
        assert_eq!(back.cumulative_wh, 1234);
        assert_eq!(back.last_timestamp_ms, 99);
        assert_eq!(back.next_interval_ms, Some(1_800_000));
    }

    #[test]
    fn the_store_survives_a_restart_and_remembers_what_it_dropped() {
        let report = |start: u64| UsageReport {
            interval_start: Timestamp::from_unix_millis(start),
            interval_length: IntervalLength::HALF_HOUR,
            energy: WattHours(start / 1000),
            cumulative_register: WattHours(start),
            quality: QualityFlags::ESTIMATED,
        };
        let mut m = meter();
        m.store.set_capacity(2);
        assert_eq!(m.measure(report(1_000)), None);
        assert_eq!(m.measure(report(2_000)), None);
        assert_eq!(m.measure(report(3_000)), Some(report(1_000)));
        assert_eq!(m.measure(report(4_000)), Some(report(2_000)));
        assert!(m.store.confirm(Timestamp::from_unix_millis(4_000)));
        let back = Meter::from_json(&m.to_json().unwrap()).unwrap();
        assert_eq!(
            back.store.iter().copied().collect::<Vec<_>>(),
            [report(3_000)]
        );
        assert_eq!(back.dropped, [1_000, 2_000], "oldest first");
        // A smaller store on the next run drops (and names) the oldest it held.
        let mut back = back;
        assert_eq!(back.store.set_capacity(0), [report(3_000)]);
    }

    #[test]
    fn meter_json_rejects_a_key_that_is_not_its_own() {
        let text = meter().to_json().unwrap();
        let other = hex::encode(
            MeterSecretKey::from_entropy(&[8; 32])
                .unwrap()
                .public_key()
                .to_bytes(),
        );
        let mine = hex::encode(meter().key.public_key().to_bytes());
        let err = Meter::from_json(&text.replace(&mine, &other)).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        let err = Meter::from_json(&text.replace("SM-1", "SM-2")).unwrap_err();
        assert!(err.to_string().contains("not SHA-256"), "{err}");
    }

    #[test]
    fn timestamps_strictly_increase() {
        let mut m = meter();
        assert_eq!(
            m.next_timestamp(Timestamp::from_unix_millis(50))
                .unix_millis(),
            100
        );
        assert_eq!(
            m.next_timestamp(Timestamp::from_unix_millis(50))
                .unix_millis(),
            101
        );
        assert_eq!(
            m.next_timestamp(Timestamp::from_unix_millis(500))
                .unix_millis(),
            500
        );
    }

    #[test]
    fn mdms_json_keeps_retired_and_pending_keys_through_a_rotation() {
        let key = |n: u8| MdmsSecretKey::from_entropy(&[n; 32]).unwrap();
        let mut mdms = Mdms::new("MDMS-1".parse().unwrap(), key(1));
        let plain = mdms.to_json().unwrap();
        assert!(
            !plain.contains("retired_keys") && !plain.contains("pending_key"),
            "{plain}"
        );
        assert!(!mdms.promote_pending());
        mdms.pending = Some(key(2));
        let during = Mdms::from_json(&mdms.to_json().unwrap()).unwrap();
        assert_eq!(during.public_key(), key(1).public_key());
        let ring: Vec<_> = during.keyring().iter().map(|k| k.public_key()).collect();
        assert_eq!(ring, [key(1).public_key(), key(2).public_key()]);

        assert!(mdms.promote_pending());
        mdms.pending = Some(key(3));
        assert!(mdms.promote_pending());
        let after = Mdms::from_json(&mdms.to_json().unwrap()).unwrap();
        assert_eq!(after.public_key(), key(3).public_key());
        assert!(after.pending.is_none());
        let ring: Vec<_> = after.keyring().iter().map(|k| k.public_key()).collect();
        assert_eq!(
            ring,
            [
                key(3).public_key(),
                key(2).public_key(),
                key(1).public_key()
            ]
        );

        // A retired key that does not match its public key is refused, naming which one.
        let text = mdms.to_json().unwrap().replace(
            &hex::encode(key(1).public_key().to_bytes()),
            &hex::encode(key(4).public_key().to_bytes()),
        );
        let err = Mdms::from_json(&text).unwrap_err();
        assert!(err.to_string().contains("retired_keys[1]"), "{err:#}");
    }

    #[test]
    fn the_mdms_folder_lock_is_held_by_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let held = state
            .try_lock_mdms()
            .unwrap()
            .expect("a free lock is taken");
        assert!(
            state.try_lock_mdms().unwrap().is_none(),
            "a held lock is refused"
        );
        drop(held);
        assert!(
            state.try_lock_mdms().unwrap().is_some(),
            "a released lock is free again"
        );
    }

    #[test]
    fn folder_stores_meters_mdms_and_sent_log() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert!(state.meter(&"SM-1".parse().unwrap()).unwrap().is_none());
        state.save_meter(&meter()).unwrap();
        let loaded = state.meter(&"SM-1".parse().unwrap()).unwrap().unwrap();
        assert_eq!(loaded.cumulative_wh, 1234);
        assert_eq!(state.meters().unwrap().len(), 1);
        let mdms = Mdms::new(
            "MDMS-1".parse().unwrap(),
            MdmsSecretKey::from_entropy(&[9; 32]).unwrap(),
        );
        state.save_mdms(&mdms).unwrap();
        assert_eq!(
            state.mdms().unwrap().unwrap().public_key(),
            mdms.public_key()
        );
        assert!(state.sent().unwrap().is_empty());
        let one = SentReading {
            hid: loaded.hid,
            meter_id: "SM-1".into(),
            timestamp_ms: 5,
            report: UsageReport {
                interval_start: Timestamp::from_unix_millis(0),
                interval_length: IntervalLength::HALF_HOUR,
                energy: WattHours(1),
                cumulative_register: WattHours(1),
                quality: QualityFlags::NONE,
            },
        };
        state.append_sent(std::slice::from_ref(&one)).unwrap();
        state.append_sent(std::slice::from_ref(&one)).unwrap();
        assert_eq!(state.sent().unwrap(), vec![one.clone(), one]);
    }
}
