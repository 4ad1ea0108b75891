//! The contract: dispatch, role checks, and one handler per function. Handlers read and write
//! through the shim's capability traits only.

use std::collections::BTreeMap;

use bcami_api::{
    Call, Config, ConfigUpdate, Counts, Function, KeyHash, KeyVersionRecord, MdmsPresence,
    MdmsRecord, MdmsStatus, MeterCounts, MeterRecord, MeterStatus, MeterView, MetersPage,
    MetersQuery, Placement, ProvisionResponse, READINGS_EVENT, ReadingInput, ReadingsPage,
    ReadingsQuery, StoredReading,
};
use bcami_sdk::{Hid, KeyRotationRequest, RegistrationRequest};
use fabric_shim::{Contract, ContractError, Creator, KeyRange, Stub};
use serde::Serialize;

use crate::anon;
use crate::config::{describe_creator, holds};
use crate::error::Error;
use crate::readings::validate_batch;
use crate::service::{self, HeadEnd, Mdms};
use crate::state::{self, MDMS_KEY};
use crate::verify::{Verifier, VerifierKind};

/// The BC-AMI contract. Build it with [`contract`] (or [`BcAmi::new`] to pick the verifier).
#[derive(Debug)]
pub struct BcAmi {
    verifier: Verifier,
}

/// The contract as deployed: reading signatures checked with libsecp256k1.
pub fn contract() -> BcAmi {
    BcAmi::new(VerifierKind::Libsecp256k1)
}

impl BcAmi {
    /// The contract with the given reading-signature verifier.
    pub fn new(verifier: VerifierKind) -> Self {
        Self {
            verifier: Verifier::new(verifier),
        }
    }
}

impl Contract for BcAmi {
    fn invoke(&self, stub: &mut dyn Stub) -> Result<Vec<u8>, ContractError> {
        self.run(stub).map_err(ContractError::from)
    }
}

fn authorize(function: Function, config: &Config, creator: &Creator) -> Result<(), Error> {
    let roles = function.roles();
    if roles.iter().any(|r| holds(config, creator, *r)) {
        Ok(())
    } else {
        Err(Error::forbidden(
            function.name(),
            roles,
            config,
            describe_creator(creator),
        ))
    }
}

/// The transaction timestamp in Unix milliseconds (saturating; Fabric timestamps are far from
/// the limits).
pub(crate) fn tx_millis(stub: &dyn Stub) -> i64 {
    let ts = stub.tx().timestamp();
    let millis = i128::from(ts.seconds) * 1000 + i128::from(ts.nanos / 1_000_000);
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    state::to_json(value)
}

pub(crate) fn check_window(config: &Config, timestamp: u64, tx_millis: i64) -> Result<(), Error> {
    match config.window.place(timestamp, tx_millis) {
        Placement::Inside => Ok(()),
        Placement::Stale | Placement::Future => Err(Error::OutsideWindow {
            timestamp,
            tx_millis,
            earliest: i128::from(tx_millis) - i128::from(config.window.past_ms),
            latest: i128::from(tx_millis) + i128::from(config.window.future_ms),
        }),
    }
}

impl BcAmi {
    fn run(&self, stub: &mut dyn Stub) -> Result<Vec<u8>, Error> {
        let name = stub.tx().function();
        let function = Function::from_name(name).ok_or_else(|| Error::UnknownFunction {
            name: name.chars().take(80).collect(),
            known: Function::known(),
        })?;
        let config = state::config(stub)?;
        authorize(function, &config, stub.creator())?;
        let call = Call::parse(function, stub.tx().args())?;
        match call {
            Call::Configure(update) => configure(stub, &config, update),
            Call::GetConfig => json(&config),
            Call::ProvisionMeters(meters) => provision_meters(stub, &meters),
            Call::ProvisionMdms { hid, key_hash } => {
                service::provision::<Mdms>(stub, hid, key_hash)
            }
            Call::RegisterMeter(req) => register_meter(stub, &config, &req),
            Call::RegisterMdmsKey(req) => service::register::<Mdms>(stub, &config, &req),
            Call::RotateMeterKey(req) => rotate(stub, &config, &req),
            Call::RotateMdmsKey(req) => service::rotate::<Mdms>(stub, &config, &req),
            Call::RevokeMeter(hid) => revoke(stub, hid),
            Call::SubmitReadings(inputs) => self.submit(stub, &config, inputs),
            Call::GetMeter(hid) => get_meter(stub, hid),
            Call::GetMdmsKey => service::view::<Mdms>(stub),
            Call::GetReadings(q) => get_readings(stub, &q),
            Call::ListMeters(q) => list_meters(stub, &q),
            Call::GetCounts => counts(stub),
            // The AMI head-end: the MDMS's rules (crate::service).
            Call::ProvisionHeadEnd { hid, key_hash } => {
                service::provision::<HeadEnd>(stub, hid, key_hash)
            }
            Call::RegisterHeadEndKey(req) => service::register::<HeadEnd>(stub, &config, &req),
            Call::GetHeadEnd => service::view::<HeadEnd>(stub),
            Call::RotateHeadEndKey(req) => service::rotate::<HeadEnd>(stub, &config, &req),
            // Anonymous readings (issue 15).
            Call::SetAnonIssuerKey {
                issuer_key,
                period_secs,
            } => {
                let now = tx_millis(stub);
                anon::set_issuer_key(stub, now, &issuer_key, period_secs)
            }
            Call::RequestAnonCredential(req) => {
                let now = tx_millis(stub);
                anon::request_credential(stub, &config, now, &req)
            }
            Call::PostAnonCredential { hid, credential } => {
                anon::post_credential(stub, hid, &credential)
            }
            Call::SubmitAnonReadings(inputs) => {
                let now = tx_millis(stub);
                anon::submit(stub, &config, now, inputs)
            }
            Call::GetAnonIssuerKey(epoch) => anon::get_issuer_key(stub, epoch),
            Call::GetAnonCredential(q) => anon::get_credential(stub, &q),
            Call::GetAnonAggregate(q) => anon::aggregate(stub, q.period_start),
            Call::GetAnonDoubleReports(q) => anon::double_reports(stub, q.period_start),
            Call::RecordAnonTrace {
                period_start,
                pseudonym,
                hid,
                cleared,
            } => {
                let now = tx_millis(stub);
                anon::record_trace(stub, now, period_start, &pseudonym, hid, cleared)
            }
            // Group keys (issue 13).
            Call::Group(call) => crate::group::run(stub, &config, call),
        }
    }

    fn submit(
        &self,
        stub: &mut dyn Stub,
        config: &Config,
        inputs: Vec<ReadingInput>,
    ) -> Result<Vec<u8>, Error> {
        // Every distinct meter once, in order of first appearance, in one GET_STATE_MULTIPLE.
        let mut hids: Vec<Hid> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for input in &inputs {
            if let ReadingInput::Decoded(tx) = input {
                if seen.insert(tx.hid()) {
                    hids.push(tx.hid());
                }
            }
        }
        let keys = hids
            .iter()
            .map(state::meter_key)
            .collect::<Result<Vec<_>, _>>()?;
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values = stub.states(&key_refs)?;
        let mut meters = BTreeMap::new();
        for ((hid, key), value) in hids.iter().zip(&keys).zip(values) {
            let record = value.map(|v| state::parse(key, &v)).transpose()?;
            meters.insert(*hid, record);
        }
        let outcome = validate_batch(
            inputs,
            &meters,
            tx_millis(stub),
            config.window,
            &self.verifier,
        );
        for (hid, record) in &outcome.meters {
            state::store(stub, &state::meter_key(hid)?, record)?;
        }
        for reading in &outcome.accepted {
            stub.put_state(
                &state::reading_key(&reading.hid, reading.timestamp)?,
                &reading.bytes,
            )?;
        }
        stub.set_event(READINGS_EVENT, &json(&outcome.event())?)?;
        json(&outcome.response())
    }
}

fn configure(stub: &mut dyn Stub, config: &Config, update: ConfigUpdate) -> Result<Vec<u8>, Error> {
    let new = config.updated(update);
    state::store(stub, state::CONFIG_KEY, &new)?;
    json(&new)
}

fn provision_meters(
    stub: &mut dyn Stub,
    meters: &BTreeMap<Hid, Option<KeyHash>>,
) -> Result<Vec<u8>, Error> {
    for hid in meters.keys() {
        if let Some(service) = service::service_holding(stub, hid)? {
            return Err(Error::ProvisionConflict(format!(
                "HID {hid} is {service}'s, not a meter's"
            )));
        }
    }
    let keys = meters
        .keys()
        .map(state::meter_key)
        .collect::<Result<Vec<_>, _>>()?;
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let existing = stub.states(&key_refs)?;
    let mut fresh = Vec::new();
    let mut bound = Vec::new();
    let mut unchanged = 0;
    for (((hid, wanted), key), value) in meters.iter().zip(&keys).zip(existing) {
        let Some(bytes) = value else {
            fresh.push((hid, key, *wanted));
            continue;
        };
        let mut record: MeterRecord = state::parse(key, &bytes)?;
        if record.status == MeterStatus::Revoked {
            return Err(Error::ProvisionConflict(format!(
                "meter {hid} is revoked; a revoked HID cannot be provisioned again (nothing was provisioned)"
            )));
        }
        match (record.key_hash, *wanted) {
            // A plain HID never removes a binding; the same binding again is a no-op.
            (_, None) => unchanged += 1,
            (Some(have), Some(want)) if have == want => unchanged += 1,
            (Some(have), Some(_)) => {
                return Err(Error::ProvisionConflict(format!(
                    "meter {hid} is already bound to the key with hash {have}; a binding cannot be changed (nothing was provisioned)"
                )));
            }
            (None, Some(want)) => {
                if record.status == MeterStatus::Active {
                    check_registered_key(stub, hid, want)?;
                }
                record.key_hash = Some(want);
                bound.push((key, record));
            }
        }
    }
    let tx_id = stub.tx().tx_id().to_owned();
    for (hid, key, key_hash) in &fresh {
        let record = MeterRecord {
            hid: **hid,
            status: MeterStatus::Provisioned,
            public_key: None,
            key_hash: *key_hash,
            key_version: 0,
            last_timestamp: None,
            readings: 0,
            provisioned_tx: tx_id.clone(),
            revoked_at: None,
        };
        state::store(stub, key, &record)?;
    }
    for (key, record) in &bound {
        state::store(stub, key, record)?;
    }
    json(&ProvisionResponse {
        provisioned: fresh.iter().map(|(h, _, _)| h.to_string()).collect(),
        bound: bound.iter().map(|(_, r)| r.hid.to_string()).collect(),
        unchanged,
    })
}

/// Binding a key hash to a meter that registered without one (trust on first use): allowed only
/// if the key it registered (version 1; later rotations do not matter) has that hash. A mismatch
/// is the trace of a hijacked registration, or of a wrong hash; either way the administrator
/// must look, so it is refused.
fn check_registered_key(stub: &dyn Stub, hid: &Hid, want: KeyHash) -> Result<(), Error> {
    let key = state::meter_key_version_key(hid, 1)?;
    let registered: KeyVersionRecord =
        state::load(stub, &key)?.ok_or_else(|| Error::CorruptState {
            key: key.escape_debug().to_string(),
            detail: format!("active meter {hid} has no key version 1"),
        })?;
    let have = KeyHash::of_meter_key(&registered.public_key);
    if have == want {
        Ok(())
    } else {
        Err(Error::ProvisionConflict(format!(
            "meter {hid} registered without a bound key, and the key it registered has hash {have}, not {want}; if that registration was not the meter's, revoke it (nothing was provisioned)"
        )))
    }
}

/// A registration for a HID with a bound key must carry that key.
pub(crate) fn check_bound_key(
    who: &str,
    bound: Option<KeyHash>,
    offered: KeyHash,
) -> Result<(), Error> {
    match bound {
        Some(bound) if bound != offered => Err(Error::KeyNotProvisioned(format!(
            "{who} was provisioned for the key with hash {bound}; this registration carries a key with hash {offered}"
        ))),
        _ => Ok(()),
    }
}

fn load_meter(stub: &dyn Stub, hid: &Hid) -> Result<(String, MeterRecord), Error> {
    let key = state::meter_key(hid)?;
    let record = state::load(stub, &key)?.ok_or(Error::UnknownMeter(*hid))?;
    Ok((key, record))
}

fn register_meter(
    stub: &mut dyn Stub,
    config: &Config,
    req: &RegistrationRequest,
) -> Result<Vec<u8>, Error> {
    let hid = req.hid();
    let (key, mut record) = load_meter(stub, &hid)?;
    match record.status {
        MeterStatus::Revoked => return Err(Error::Revoked(hid)),
        MeterStatus::Active => return Err(Error::AlreadyRegistered(format!("meter {hid}"))),
        MeterStatus::Provisioned => {}
    }
    check_bound_key(
        &format!("meter {hid}"),
        record.key_hash,
        KeyHash::of_meter_key(req.public_key()),
    )?;
    let timestamp = req.timestamp().unix_millis();
    check_window(config, timestamp, tx_millis(stub))?;
    req.verify().map_err(Error::Signature)?;
    record.status = MeterStatus::Active;
    record.public_key = Some(*req.public_key());
    record.key_version = 1;
    record.last_timestamp = Some(timestamp);
    bind_key(stub, &record, timestamp)?;
    state::store(stub, &key, &record)?;
    json(&record)
}

fn bind_key(stub: &mut dyn Stub, record: &MeterRecord, since: u64) -> Result<(), Error> {
    let public_key = record
        .public_key
        .ok_or_else(|| Error::Internal("binding a meter without a key".into()))?;
    let version = KeyVersionRecord {
        version: record.key_version,
        public_key,
        since,
        tx_id: stub.tx().tx_id().to_owned(),
    };
    state::store(
        stub,
        &state::meter_key_version_key(&record.hid, record.key_version)?,
        &version,
    )
}

fn rotate(
    stub: &mut dyn Stub,
    config: &Config,
    req: &KeyRotationRequest,
) -> Result<Vec<u8>, Error> {
    let hid = req.hid();
    let (key, mut record) = load_meter(stub, &hid)?;
    match record.status {
        MeterStatus::Revoked => return Err(Error::Revoked(hid)),
        MeterStatus::Provisioned => return Err(Error::NotRegistered(hid)),
        MeterStatus::Active => {}
    }
    let timestamp = req.timestamp().unix_millis();
    check_window(config, timestamp, tx_millis(stub))?;
    if let Some(last) = record.last_timestamp {
        if timestamp <= last {
            return Err(Error::Replayed {
                hid,
                timestamp,
                last,
            });
        }
    }
    let current = record.public_key.ok_or_else(|| Error::CorruptState {
        key: key.escape_debug().to_string(),
        detail: "active meter without a key".into(),
    })?;
    req.verify(&current).map_err(Error::Signature)?;
    if *req.new_public_key() == current {
        return Err(Error::SameKey(hid));
    }
    record.public_key = Some(*req.new_public_key());
    record.key_version = record
        .key_version
        .checked_add(1)
        .ok_or_else(|| Error::Internal("key version overflow".into()))?;
    record.last_timestamp = Some(timestamp);
    bind_key(stub, &record, timestamp)?;
    state::store(stub, &key, &record)?;
    json(&record)
}

fn revoke(stub: &mut dyn Stub, hid: Hid) -> Result<Vec<u8>, Error> {
    let (key, mut record) = load_meter(stub, &hid)?;
    if record.status != MeterStatus::Revoked {
        record.status = MeterStatus::Revoked;
        record.revoked_at = Some(tx_millis(stub));
        state::store(stub, &key, &record)?;
    }
    json(&record)
}

fn get_meter(stub: &mut dyn Stub, hid: Hid) -> Result<Vec<u8>, Error> {
    let (_, meter) = load_meter(stub, &hid)?;
    let range = KeyRange::composite_prefix(state::METER_KEY, &[&hid.to_string()])?;
    let mut keys = Vec::new();
    for kv in stub.range(&range)? {
        let kv = kv?;
        keys.push(state::parse::<KeyVersionRecord>(&kv.key, &kv.value)?);
    }
    json(&MeterView { meter, keys })
}

fn get_readings(stub: &mut dyn Stub, q: &ReadingsQuery) -> Result<Vec<u8>, Error> {
    load_meter(stub, &q.hid)?;
    let range = state::readings_of(&q.hid)?;
    // The bookmark of a range page is the key to start from (in the peer and in the stub).
    let start = if q.start == 0 {
        String::new()
    } else {
        state::reading_key(&q.hid, q.start)?
    };
    let page = stub.range_page(&range, q.page_size, &start)?;
    let mut readings = Vec::with_capacity(page.records.len());
    let mut bookmark = String::new();
    let mut ended = false;
    for kv in &page.records {
        let timestamp = state::reading_timestamp(&kv.key)?;
        if q.to.is_some_and(|to| timestamp >= to) {
            ended = true;
            break;
        }
        readings.push(StoredReading {
            timestamp,
            reading: base64_encode(&kv.value),
        });
    }
    if !ended && !page.bookmark.is_empty() {
        let next = state::reading_timestamp(&page.bookmark)?;
        if q.to.is_none_or(|to| next < to) {
            bookmark = next.to_string();
        }
    }
    json(&ReadingsPage {
        hid: q.hid.to_string(),
        readings,
        bookmark,
    })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn list_meters(stub: &mut dyn Stub, q: &MetersQuery) -> Result<Vec<u8>, Error> {
    let range = KeyRange::composite_prefix(state::METER, &[])?;
    let start = match &q.start {
        Some(hid) => state::meter_key(hid)?,
        None => String::new(),
    };
    let page = stub.range_page(&range, q.page_size, &start)?;
    let meters = page
        .records
        .iter()
        .map(|kv| state::parse(&kv.key, &kv.value))
        .collect::<Result<Vec<MeterRecord>, _>>()?;
    let bookmark = if page.bookmark.is_empty() {
        String::new()
    } else {
        state::meter_hid(&page.bookmark)?.to_string()
    };
    json(&MetersPage { meters, bookmark })
}

fn counts(stub: &mut dyn Stub) -> Result<Vec<u8>, Error> {
    let range = KeyRange::composite_prefix(state::METER, &[])?;
    let mut meters = MeterCounts::default();
    let mut readings = 0u64;
    for kv in stub.range(&range)? {
        let kv = kv?;
        let record: MeterRecord = state::parse(&kv.key, &kv.value)?;
        match record.status {
            MeterStatus::Provisioned => meters.provisioned += 1,
            MeterStatus::Active => meters.active += 1,
            MeterStatus::Revoked => meters.revoked += 1,
        }
        meters.total += 1;
        readings = readings.saturating_add(record.readings);
    }
    let mdms = match state::load::<MdmsRecord>(stub, MDMS_KEY)? {
        None => MdmsPresence::None,
        Some(m) if m.status == MdmsStatus::Registered => MdmsPresence::Registered,
        Some(_) => MdmsPresence::Provisioned,
    };
    json(&Counts {
        meters,
        readings,
        mdms,
    })
}
