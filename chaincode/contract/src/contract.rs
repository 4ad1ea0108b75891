//! The contract: dispatch, role checks, and one handler per function. Handlers read and write
//! through the shim's capability traits only.

use std::collections::BTreeMap;

use bcami_api::{
    Call, Config, ConfigUpdate, Counts, Function, KeyHash, KeyVersionRecord, MdmsPresence,
    MdmsRecord, MdmsStatus, MeterCounts, MeterRecord, MeterStatus, MeterView, MetersPage,
    MetersQuery, ProvisionResponse, READINGS_EVENT, ReadingInput, ReadingsPage, ReadingsQuery,
    StoredReading,
};
use bcami_sdk::{Hid, KeyRotationRequest, RegistrationRequest, Timestamp};
use fabric_shim::{Contract, ContractError, Creator, KeyRange, Stub};
use serde::Serialize;

use crate::anon;
use crate::config::{describe_creator, holds};
use crate::error::{Conflict, Error, Subject};
use crate::readings::validate_batch;
use crate::rules::{self, MeterProvision};
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

/// The transaction time. A time before 1970 (which Fabric does not make) reads as 1970.
pub(crate) fn tx_time(stub: &dyn Stub) -> Timestamp {
    let ts = stub.tx().timestamp();
    let millis = i128::from(ts.seconds) * 1000 + i128::from(ts.nanos / 1_000_000);
    Timestamp::from_unix_millis(u64::try_from(millis.max(0)).unwrap_or(u64::MAX))
}

pub(crate) fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    state::to_json(value)
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
                let now = tx_time(stub);
                anon::set_issuer_key(stub, now, &issuer_key, period_secs)
            }
            Call::RequestAnonCredential(req) => {
                let now = tx_time(stub);
                anon::request_credential(stub, &config, now, &req)
            }
            Call::PostAnonCredential { hid, credential } => {
                anon::post_credential(stub, hid, &credential)
            }
            Call::SubmitAnonReadings(inputs) => {
                let now = tx_time(stub);
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
                let now = tx_time(stub);
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
            tx_time(stub),
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
        if let Some(holder) = service::service_holding(stub, hid)? {
            return Err(Conflict::HidTaken {
                hid: *hid,
                holder,
                wanted: "a meter",
            }
            .into());
        }
    }
    let keys = meters
        .keys()
        .map(state::meter_key)
        .collect::<Result<Vec<_>, _>>()?;
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let existing = stub.states(&key_refs)?;
    let tx_id = stub.tx().tx_id().to_owned();
    let mut fresh = Vec::new();
    let mut bound = Vec::new();
    let mut unchanged = 0;
    for (((hid, wanted), key), value) in meters.iter().zip(&keys).zip(existing) {
        let record: Option<MeterRecord> = value.map(|v| state::parse(key, &v)).transpose()?;
        match rules::provision_meter(*hid, record.as_ref(), *wanted)? {
            MeterProvision::Fresh => fresh.push((key, rules::new_meter(*hid, *wanted, &tx_id))),
            MeterProvision::Unchanged => unchanged += 1,
            MeterProvision::Bind { registered } => {
                let (Some(mut record), Some(want)) = (record, *wanted) else {
                    return Err(Error::Internal("a binding without a record or hash".into()));
                };
                if registered {
                    let have = registered_key_hash(stub, hid)?;
                    rules::check_late_binding(Subject::Meter(*hid), have, want)?;
                }
                record.key_hash = Some(want);
                bound.push((key, record));
            }
        }
    }
    for (key, record) in fresh.iter().chain(&bound) {
        state::store(stub, key, record)?;
    }
    json(&ProvisionResponse {
        provisioned: fresh.iter().map(|(_, r)| r.hid.to_string()).collect(),
        bound: bound.iter().map(|(_, r)| r.hid.to_string()).collect(),
        unchanged,
    })
}

/// The hash of the key an active meter registered (version 1; later rotations do not matter).
fn registered_key_hash(stub: &dyn Stub, hid: &Hid) -> Result<KeyHash, Error> {
    let key = state::meter_key_version_key(hid, 1)?;
    let registered: KeyVersionRecord =
        state::load(stub, &key)?.ok_or_else(|| Error::CorruptState {
            key: key.escape_debug().to_string(),
            detail: format!("active meter {hid} has no key version 1"),
        })?;
    Ok(KeyHash::of_meter_key(&registered.public_key))
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
    let (key, record) = load_meter(stub, &req.hid())?;
    let record = rules::register_meter(record, req, config.window, tx_time(stub))?;
    bind_key(stub, &record, req.timestamp())?;
    state::store(stub, &key, &record)?;
    json(&record)
}

fn bind_key(stub: &mut dyn Stub, record: &MeterRecord, since: Timestamp) -> Result<(), Error> {
    let public_key = record
        .public_key
        .ok_or_else(|| Error::Internal("binding a meter without a key".into()))?;
    let version = KeyVersionRecord {
        version: record.key_version,
        public_key,
        since: since.unix_millis(),
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
    let (key, record) = load_meter(stub, &req.hid())?;
    let record = rules::rotate_meter(record, &key, req, config.window, tx_time(stub))?;
    bind_key(stub, &record, req.timestamp())?;
    state::store(stub, &key, &record)?;
    json(&record)
}

fn revoke(stub: &mut dyn Stub, hid: Hid) -> Result<Vec<u8>, Error> {
    let (key, record) = load_meter(stub, &hid)?;
    match rules::revoke_meter(record.clone(), tx_time(stub)) {
        Some(revoked) => {
            state::store(stub, &key, &revoked)?;
            json(&revoked)
        }
        None => json(&record),
    }
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
