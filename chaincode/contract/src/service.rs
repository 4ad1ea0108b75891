//! The services the ledger knows by one HID and one current key: the MDMS (its encryption key)
//! and the AMI head-end (its session-signing key). One set of rules for both, written once:
//! the administrator provisions the service (optionally bound to a key hash), the service
//! registers its key with a proof of possession, anyone reads it with its key history, and the
//! administrator rotates the key (a request made with the new key, newer than the one that bound
//! the current key; a key once held never returns).

use bcami_api::{
    Config, KeyHash, ServiceKey, ServiceKeyVersionRecord, ServiceRecord, ServiceStatus, ServiceView,
};
use bcami_sdk::{
    HeadEndPublicKey, HeadEndRegistrationRequest, Hid, MdmsPublicKey, MdmsRegistrationRequest,
    Timestamp, VerifyError,
};
use fabric_shim::{KeyRange, Stub};

use crate::contract::{check_bound_key, check_window, json, tx_millis};
use crate::error::Error;
use crate::state;

/// A registration request of a service's key: the SDK's `…RegistrationRequest` types.
pub(crate) trait Registration {
    /// The key it registers.
    type Key: ServiceKey;
    fn hid(&self) -> Hid;
    fn timestamp(&self) -> Timestamp;
    fn public_key(&self) -> &Self::Key;
    fn verify(&self) -> Result<(), VerifyError>;
}

macro_rules! registration {
    ($request:ty, $key:ty) => {
        impl Registration for $request {
            type Key = $key;
            fn hid(&self) -> Hid {
                <$request>::hid(self)
            }
            fn timestamp(&self) -> Timestamp {
                <$request>::timestamp(self)
            }
            fn public_key(&self) -> &$key {
                <$request>::public_key(self)
            }
            fn verify(&self) -> Result<(), VerifyError> {
                <$request>::verify(self)
            }
        }
    };
}

registration!(MdmsRegistrationRequest, MdmsPublicKey);
registration!(HeadEndRegistrationRequest, HeadEndPublicKey);

/// One service: where it lives in the world state and how its errors read.
pub(crate) trait Service {
    /// Its key type.
    type Key: ServiceKey;
    /// Its registration request.
    type Request: Registration<Key = Self::Key>;
    /// The simple key of its record.
    const RECORD: &'static str;
    /// The object type of its key versions: `TYPE~VERSION`.
    const VERSIONS: &'static str;
    /// No such service is provisioned, or it has another HID.
    fn unknown(detail: String) -> Error;
    /// The service has no key yet.
    fn not_registered() -> Error;
}

/// The MDMS: `mdms`, `mdmskey~VERSION`.
pub(crate) enum Mdms {}

impl Service for Mdms {
    type Key = MdmsPublicKey;
    type Request = MdmsRegistrationRequest;
    const RECORD: &'static str = state::MDMS_KEY;
    const VERSIONS: &'static str = state::MDMS_KEY_VERSION;
    fn unknown(detail: String) -> Error {
        Error::UnknownMdms(detail)
    }
    fn not_registered() -> Error {
        Error::MdmsNotRegistered
    }
}

/// The AMI head-end: `headend`, `headendkey~VERSION`.
pub(crate) enum HeadEnd {}

impl Service for HeadEnd {
    type Key = HeadEndPublicKey;
    type Request = HeadEndRegistrationRequest;
    const RECORD: &'static str = state::HEAD_END_KEY;
    const VERSIONS: &'static str = state::HEAD_END_KEY_VERSION;
    fn unknown(detail: String) -> Error {
        Error::UnknownHeadEnd(detail)
    }
    fn not_registered() -> Error {
        Error::HeadEndNotRegistered
    }
}

fn holder<S: Service>() -> &'static str {
    <S::Key as ServiceKey>::HOLDER
}

/// Which service, if any, holds `hid`: no HID is both a meter's and a service's, or two
/// services'.
pub(crate) fn service_holding(stub: &dyn Stub, hid: &Hid) -> Result<Option<&'static str>, Error> {
    if state::load::<ServiceRecord<MdmsPublicKey>>(stub, Mdms::RECORD)?
        .is_some_and(|r| r.hid == *hid)
    {
        return Ok(Some(holder::<Mdms>()));
    }
    if state::load::<ServiceRecord<HeadEndPublicKey>>(stub, HeadEnd::RECORD)?
        .is_some_and(|r| r.hid == *hid)
    {
        return Ok(Some(holder::<HeadEnd>()));
    }
    Ok(None)
}

/// `ProvisionMdms`, `ProvisionHeadEnd`. Provisioning the same HID again is a no-op; a binding can
/// be added to a service provisioned without one (if the key it registered has that hash), never
/// changed.
pub(crate) fn provision<S: Service>(
    stub: &mut dyn Stub,
    hid: Hid,
    wanted: Option<KeyHash>,
) -> Result<Vec<u8>, Error> {
    let who = holder::<S>();
    if let Some(mut existing) = state::load::<ServiceRecord<S::Key>>(stub, S::RECORD)? {
        if existing.hid != hid {
            return Err(Error::ProvisionConflict(format!(
                "{who} is already provisioned as {}; only one is supported",
                existing.hid
            )));
        }
        // The same rules as for meters: a plain HID or the same binding is a no-op.
        match (existing.key_hash, wanted) {
            (_, None) => return json(&existing),
            (Some(have), Some(want)) if have == want => return json(&existing),
            (Some(have), Some(_)) => {
                return Err(Error::ProvisionConflict(format!(
                    "{who} {hid} is already bound to the key with hash {have}; a binding cannot be changed"
                )));
            }
            (None, Some(want)) => {
                if let Some(registered) = &existing.public_key {
                    let have = KeyHash::of_service_key(registered);
                    if have != want {
                        return Err(Error::ProvisionConflict(format!(
                            "{who} {hid} registered without a bound key, and the key it registered has hash {have}, not {want}"
                        )));
                    }
                }
                existing.key_hash = Some(want);
                state::store(stub, S::RECORD, &existing)?;
                return json(&existing);
            }
        }
    }
    if stub.state(&state::meter_key(&hid)?)?.is_some() {
        return Err(Error::ProvisionConflict(format!(
            "HID {hid} is a meter's, not {who}'s"
        )));
    }
    if let Some(other) = service_holding(stub, &hid)? {
        return Err(Error::ProvisionConflict(format!(
            "HID {hid} is {other}'s, not {who}'s"
        )));
    }
    let record = ServiceRecord::<S::Key> {
        hid,
        status: ServiceStatus::Provisioned,
        public_key: None,
        key_hash: wanted,
        registered_at: None,
        key_version: 0,
        key_since: None,
    };
    state::store(stub, S::RECORD, &record)?;
    json(&record)
}

fn load<S: Service>(stub: &dyn Stub) -> Result<ServiceRecord<S::Key>, Error> {
    state::load(stub, S::RECORD)?
        .ok_or_else(|| S::unknown(format!("{} is not provisioned", holder::<S>())))
}

/// The record, if `hid` is the provisioned service's.
fn load_as<S: Service>(stub: &dyn Stub, hid: Hid) -> Result<ServiceRecord<S::Key>, Error> {
    let record = load::<S>(stub)?;
    if record.hid != hid {
        return Err(S::unknown(format!(
            "HID {hid} is not {} ({})",
            holder::<S>(),
            record.hid
        )));
    }
    Ok(record)
}

/// `RegisterMdmsKey`, `RegisterHeadEndKey`.
pub(crate) fn register<S: Service>(
    stub: &mut dyn Stub,
    config: &Config,
    req: &S::Request,
) -> Result<Vec<u8>, Error> {
    let who = holder::<S>();
    let mut record = load_as::<S>(stub, req.hid())?;
    if record.status == ServiceStatus::Registered {
        return Err(Error::AlreadyRegistered(format!("{who} {}", record.hid)));
    }
    check_bound_key(
        &format!("{who} {}", record.hid),
        record.key_hash,
        KeyHash::of_service_key(req.public_key()),
    )?;
    let timestamp = req.timestamp().unix_millis();
    check_window(config, timestamp, tx_millis(stub))?;
    req.verify().map_err(Error::Signature)?;
    record.status = ServiceStatus::Registered;
    record.public_key = Some(*req.public_key());
    record.registered_at = Some(timestamp);
    record.key_version = 1;
    record.key_since = Some(timestamp);
    bind_key::<S>(stub, &record)?;
    state::store(stub, S::RECORD, &record)?;
    json(&record)
}

/// Every key the service has held, version 1 first. An MDMS record registered before key
/// versions existed has no `mdmskey~1`; its current key is added from the record.
pub(crate) fn keys<S: Service>(
    stub: &dyn Stub,
    record: &ServiceRecord<S::Key>,
) -> Result<Vec<ServiceKeyVersionRecord<S::Key>>, Error> {
    let range = KeyRange::composite_prefix(S::VERSIONS, &[])?;
    let mut keys = Vec::new();
    for kv in stub.range(&range)? {
        let kv = kv?;
        keys.push(state::parse::<ServiceKeyVersionRecord<S::Key>>(
            &kv.key, &kv.value,
        )?);
    }
    if let (Some(public_key), true) = (record.public_key, keys.is_empty()) {
        keys.push(ServiceKeyVersionRecord {
            version: record.current_key_version(),
            public_key,
            since: record.current_key_since().unwrap_or(0),
            tx_id: String::new(),
        });
    }
    Ok(keys)
}

fn bind_key<S: Service>(stub: &mut dyn Stub, record: &ServiceRecord<S::Key>) -> Result<(), Error> {
    let (Some(public_key), Some(since)) = (record.public_key, record.key_since) else {
        return Err(Error::Internal(format!(
            "binding a key of {} without a key",
            holder::<S>()
        )));
    };
    let version = ServiceKeyVersionRecord {
        version: record.key_version,
        public_key,
        since,
        tx_id: stub.tx().tx_id().to_owned(),
    };
    state::store(
        stub,
        &state::version_key(S::VERSIONS, record.key_version)?,
        &version,
    )
}

/// `RotateMdmsKey`, `RotateHeadEndKey`: the administrator replaces the service's key, e.g. after
/// a leak. The request is a registration request made with the NEW key (its proof of
/// possession), newer than the request that bound the current key. What the old key did stays
/// valid for its period (readings encrypted to the old MDMS key; sessions are short-lived and
/// the head-end's next handshake signs with the new key); the history says which key was
/// current when.
pub(crate) fn rotate<S: Service>(
    stub: &mut dyn Stub,
    config: &Config,
    req: &S::Request,
) -> Result<Vec<u8>, Error> {
    let who = holder::<S>();
    let mut record = load_as::<S>(stub, req.hid())?;
    if record.status != ServiceStatus::Registered {
        return Err(S::not_registered());
    }
    let timestamp = req.timestamp().unix_millis();
    check_window(config, timestamp, tx_millis(stub))?;
    if let Some(last) = record.current_key_since() {
        if timestamp <= last {
            return Err(Error::ServiceReplayed {
                holder: who,
                timestamp,
                last,
            });
        }
    }
    req.verify().map_err(Error::Signature)?;
    let current_version = record.current_key_version();
    for held in keys::<S>(stub, &record)? {
        if held.public_key == *req.public_key() {
            return Err(Error::KeyReused {
                holder: who,
                version: held.version,
                status: if held.version == current_version {
                    "holds now"
                } else {
                    "held before"
                },
            });
        }
    }
    if record.key_version == 0 {
        // Registered before key versions existed: keep version 1 in the history.
        record.key_version = current_version;
        record.key_since = record.current_key_since();
        bind_key::<S>(stub, &record)?;
    }
    record.key_version = current_version
        .checked_add(1)
        .ok_or_else(|| Error::Internal(format!("key version overflow of {who}")))?;
    record.public_key = Some(*req.public_key());
    record.key_since = Some(timestamp);
    // A binding made at provisioning named the old key; the administrator has now named this one.
    if record.key_hash.is_some() {
        record.key_hash = Some(KeyHash::of_service_key(req.public_key()));
    }
    bind_key::<S>(stub, &record)?;
    state::store(stub, S::RECORD, &record)?;
    json(&record)
}

/// `GetMdmsKey`, `GetHeadEnd`: the record and every key the service has held.
pub(crate) fn view<S: Service>(stub: &dyn Stub) -> Result<Vec<u8>, Error> {
    let record = load::<S>(stub)?;
    if record.status != ServiceStatus::Registered {
        return Err(S::not_registered());
    }
    let keys = keys::<S>(stub, &record)?;
    json(&ServiceView { record, keys })
}
