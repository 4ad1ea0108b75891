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

use crate::contract::{json, tx_time};
use crate::error::{Conflict, Error};
use crate::rules::{self, ServiceProvision};
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

/// `ProvisionMdms`, `ProvisionHeadEnd`: the rules are [`rules::provision_service`]; a new
/// service's HID must not be a meter's or the other service's.
pub(crate) fn provision<S: Service>(
    stub: &mut dyn Stub,
    hid: Hid,
    wanted: Option<KeyHash>,
) -> Result<Vec<u8>, Error> {
    let existing = state::load::<ServiceRecord<S::Key>>(stub, S::RECORD)?;
    let record = match rules::provision_service(existing, hid, wanted)? {
        ServiceProvision::Unchanged(record) => return json(&record),
        ServiceProvision::Bound(record) => record,
        ServiceProvision::Fresh(record) => {
            let taken_by = if stub.state(&state::meter_key(&hid)?)?.is_some() {
                Some("a meter")
            } else {
                service_holding(stub, &hid)?
            };
            if let Some(taker) = taken_by {
                return Err(Conflict::HidTaken {
                    hid,
                    holder: taker,
                    wanted: holder::<S>(),
                }
                .into());
            }
            record
        }
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

/// `RegisterMdmsKey`, `RegisterHeadEndKey`: the rules are [`rules::register_service`].
pub(crate) fn register<S: Service>(
    stub: &mut dyn Stub,
    config: &Config,
    req: &S::Request,
) -> Result<Vec<u8>, Error> {
    let record = load_as::<S>(stub, req.hid())?;
    let record = rules::register_service(record, req, config.window, tx_time(stub))?;
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
    let record = load_as::<S>(stub, req.hid())?;
    let held = if record.status == ServiceStatus::Registered {
        keys::<S>(stub, &record)?
    } else {
        Vec::new()
    };
    let rotation = rules::rotate_service(
        record,
        &held,
        req,
        config.window,
        tx_time(stub),
        S::not_registered,
    )?;
    if let Some(version_1) = &rotation.backfill {
        bind_key::<S>(stub, version_1)?;
    }
    bind_key::<S>(stub, &rotation.record)?;
    state::store(stub, S::RECORD, &rotation.record)?;
    json(&rotation.record)
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
