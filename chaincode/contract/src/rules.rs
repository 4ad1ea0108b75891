//! The rules of the state-changing handlers, as pure functions over the records (as
//! [`crate::validate_batch`] is for readings): what a call does to a record, or why it is
//! refused. The handlers (`contract.rs`, `service.rs`) read the records, call these and write
//! what they return; no ledger and no clock here (the transaction time comes in as `now`).

use bcami_api::{
    KeyHash, MeterRecord, MeterStatus, ServiceKey, ServiceKeyVersionRecord, ServiceRecord,
    ServiceStatus, Window,
};
use bcami_sdk::{Hid, KeyRotationRequest, RegistrationRequest, Timestamp};

use crate::error::{Conflict, Error, Subject};
use crate::service::Registration;

/// The message timestamp must lie in the window around the transaction time.
pub(crate) fn check_window(
    window: Window,
    timestamp: Timestamp,
    now: Timestamp,
) -> Result<(), Error> {
    if window.admits(timestamp, now) {
        return Ok(());
    }
    let now_ms = i128::from(now.unix_millis());
    Err(Error::OutsideWindow {
        timestamp,
        now,
        earliest: now_ms - i128::from(window.past_ms),
        latest: now_ms + i128::from(window.future_ms),
    })
}

/// A registration for a subject with a bound key must carry that key.
pub(crate) fn check_bound_key(
    subject: Subject,
    bound: Option<KeyHash>,
    offered: KeyHash,
) -> Result<(), Error> {
    match bound {
        Some(bound) if bound != offered => Err(Error::KeyNotProvisioned {
            subject,
            bound,
            offered,
        }),
        _ => Ok(()),
    }
}

/// A binding added to a subject that registered without one (trust on first use) must name the
/// key it registered. A mismatch is the trace of a hijacked registration, or of a wrong hash;
/// either way the administrator must look, so it is refused.
pub(crate) fn check_late_binding(
    subject: Subject,
    registered: KeyHash,
    want: KeyHash,
) -> Result<(), Conflict> {
    if registered == want {
        Ok(())
    } else {
        Err(Conflict::RegisteredOtherKey {
            subject,
            have: registered,
            want,
        })
    }
}

/// What provisioning does to one meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MeterProvision {
    /// Not on the ledger: a new record.
    Fresh,
    /// Already there as asked (a plain HID never removes a binding; the same binding again is a
    /// no-op).
    Unchanged,
    /// A binding is added. If the meter has registered, the key it registered (version 1) must
    /// have the hash: see [`check_late_binding`].
    Bind {
        /// The meter has registered, so its version-1 key must be checked.
        registered: bool,
    },
}

/// Provisioning `hid` (bound to `wanted`, if given) when the ledger holds `existing`.
pub(crate) fn provision_meter(
    hid: Hid,
    existing: Option<&MeterRecord>,
    wanted: Option<KeyHash>,
) -> Result<MeterProvision, Conflict> {
    let Some(record) = existing else {
        return Ok(MeterProvision::Fresh);
    };
    if record.status == MeterStatus::Revoked {
        return Err(Conflict::Revoked(hid));
    }
    match (record.key_hash, wanted) {
        (_, None) => Ok(MeterProvision::Unchanged),
        (Some(have), Some(want)) if have == want => Ok(MeterProvision::Unchanged),
        (Some(have), Some(_)) => Err(Conflict::BindingFixed {
            subject: Subject::Meter(hid),
            have,
        }),
        (None, Some(_)) => Ok(MeterProvision::Bind {
            registered: record.status == MeterStatus::Active,
        }),
    }
}

/// The record of a meter provisioned in transaction `tx_id`.
pub(crate) fn new_meter(hid: Hid, key_hash: Option<KeyHash>, tx_id: &str) -> MeterRecord {
    MeterRecord {
        hid,
        status: MeterStatus::Provisioned,
        public_key: None,
        key_hash,
        key_version: 0,
        last_timestamp: None,
        readings: 0,
        provisioned_tx: tx_id.to_owned(),
        revoked_at: None,
    }
}

/// `RegisterMeter`: the provisioned meter proves possession of its first key.
pub(crate) fn register_meter(
    mut record: MeterRecord,
    req: &RegistrationRequest,
    window: Window,
    now: Timestamp,
) -> Result<MeterRecord, Error> {
    let hid = req.hid();
    match record.status {
        MeterStatus::Revoked => return Err(Error::Revoked(hid)),
        MeterStatus::Active => return Err(Error::AlreadyRegistered(Subject::Meter(hid))),
        MeterStatus::Provisioned => {}
    }
    check_bound_key(
        Subject::Meter(hid),
        record.key_hash,
        KeyHash::of_meter_key(req.public_key()),
    )?;
    check_window(window, req.timestamp(), now)?;
    req.verify().map_err(Error::Signature)?;
    record.status = MeterStatus::Active;
    record.public_key = Some(*req.public_key());
    record.key_version = 1;
    record.last_timestamp = Some(req.timestamp().unix_millis());
    Ok(record)
}

/// `RotateMeterKey`: the active meter replaces its key, signing with the current one; the
/// request must be newer than the meter's last accepted message. `key` names the record in
/// errors.
pub(crate) fn rotate_meter(
    mut record: MeterRecord,
    key: &str,
    req: &KeyRotationRequest,
    window: Window,
    now: Timestamp,
) -> Result<MeterRecord, Error> {
    let hid = req.hid();
    match record.status {
        MeterStatus::Revoked => return Err(Error::Revoked(hid)),
        MeterStatus::Provisioned => return Err(Error::NotRegistered(hid)),
        MeterStatus::Active => {}
    }
    let timestamp = req.timestamp();
    check_window(window, timestamp, now)?;
    if let Some(last) = record.last_timestamp.map(Timestamp::from_unix_millis) {
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
    record.last_timestamp = Some(timestamp.unix_millis());
    Ok(record)
}

/// `RevokeMeter`: the revoked record, or `None` if the meter is revoked already (revoking
/// again changes nothing, not even the time).
pub(crate) fn revoke_meter(mut record: MeterRecord, now: Timestamp) -> Option<MeterRecord> {
    if record.status == MeterStatus::Revoked {
        return None;
    }
    record.status = MeterStatus::Revoked;
    record.revoked_at = Some(unix_millis_i64(now));
    Some(record)
}

/// A time as the records' signed milliseconds (saturating; far from the limit).
pub(crate) fn unix_millis_i64(t: Timestamp) -> i64 {
    i64::try_from(t.unix_millis()).unwrap_or(i64::MAX)
}

/// What provisioning does to a service already on the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServiceProvision<K: ServiceKey> {
    /// Not provisioned yet: the new record, once no meter and no other service holds the HID.
    Fresh(ServiceRecord<K>),
    /// Already there as asked: nothing to write.
    Unchanged(ServiceRecord<K>),
    /// A binding is added: write this record.
    Bound(ServiceRecord<K>),
}

/// Provisioning the service `hid` (bound to `wanted`, if given) when the ledger holds
/// `existing`. The same rules as for meters: a plain HID or the same binding is a no-op, a
/// binding may be added (if the key registered has that hash), never changed.
pub(crate) fn provision_service<K: ServiceKey>(
    existing: Option<ServiceRecord<K>>,
    hid: Hid,
    wanted: Option<KeyHash>,
) -> Result<ServiceProvision<K>, Conflict> {
    let holder = K::HOLDER;
    let Some(mut record) = existing else {
        return Ok(ServiceProvision::Fresh(ServiceRecord {
            hid,
            status: ServiceStatus::Provisioned,
            public_key: None,
            key_hash: wanted,
            registered_at: None,
            key_version: 0,
            key_since: None,
        }));
    };
    if record.hid != hid {
        return Err(Conflict::OneService {
            holder,
            existing: record.hid,
        });
    }
    let subject = Subject::Service { holder, hid };
    match (record.key_hash, wanted) {
        (_, None) => Ok(ServiceProvision::Unchanged(record)),
        (Some(have), Some(want)) if have == want => Ok(ServiceProvision::Unchanged(record)),
        (Some(have), Some(_)) => Err(Conflict::BindingFixed { subject, have }),
        (None, Some(want)) => {
            if let Some(registered) = &record.public_key {
                check_late_binding(subject, KeyHash::of_service_key(registered), want)?;
            }
            record.key_hash = Some(want);
            Ok(ServiceProvision::Bound(record))
        }
    }
}

/// `RegisterMdmsKey`, `RegisterHeadEndKey`: the provisioned service proves possession of its
/// first key.
pub(crate) fn register_service<R: Registration>(
    mut record: ServiceRecord<R::Key>,
    req: &R,
    window: Window,
    now: Timestamp,
) -> Result<ServiceRecord<R::Key>, Error> {
    let subject = Subject::Service {
        holder: R::Key::HOLDER,
        hid: record.hid,
    };
    if record.status == ServiceStatus::Registered {
        return Err(Error::AlreadyRegistered(subject));
    }
    check_bound_key(
        subject,
        record.key_hash,
        KeyHash::of_service_key(req.public_key()),
    )?;
    let timestamp = req.timestamp();
    check_window(window, timestamp, now)?;
    req.verify().map_err(Error::Signature)?;
    record.status = ServiceStatus::Registered;
    record.public_key = Some(*req.public_key());
    record.registered_at = Some(timestamp.unix_millis());
    record.key_version = 1;
    record.key_since = Some(timestamp.unix_millis());
    Ok(record)
}

/// A service's key rotation: the records to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceRotation<K: ServiceKey> {
    /// A record registered before key versions existed keeps its key as version 1: this is that
    /// version's record, to be bound before the new one.
    pub(crate) backfill: Option<ServiceRecord<K>>,
    /// The record with the new key.
    pub(crate) record: ServiceRecord<K>,
}

/// `RotateMdmsKey`, `RotateHeadEndKey`: the request is made with the NEW key (its proof of
/// possession), newer than the request that bound the current key; `held` is every key the
/// service has held, and none of them may return.
pub(crate) fn rotate_service<R: Registration>(
    mut record: ServiceRecord<R::Key>,
    held: &[ServiceKeyVersionRecord<R::Key>],
    req: &R,
    window: Window,
    now: Timestamp,
    not_registered: impl FnOnce() -> Error,
) -> Result<ServiceRotation<R::Key>, Error> {
    let holder = R::Key::HOLDER;
    if record.status != ServiceStatus::Registered {
        return Err(not_registered());
    }
    let timestamp = req.timestamp();
    check_window(window, timestamp, now)?;
    if let Some(last) = record.current_key_since().map(Timestamp::from_unix_millis) {
        if timestamp <= last {
            return Err(Error::ServiceReplayed {
                holder,
                timestamp,
                last,
            });
        }
    }
    req.verify().map_err(Error::Signature)?;
    let current_version = record.current_key_version();
    if let Some(reused) = held.iter().find(|h| h.public_key == *req.public_key()) {
        return Err(Error::KeyReused {
            holder,
            version: reused.version,
            status: if reused.version == current_version {
                "holds now"
            } else {
                "held before"
            },
        });
    }
    let mut backfill = None;
    if record.key_version == 0 {
        record.key_version = current_version;
        record.key_since = record.current_key_since();
        backfill = Some(record.clone());
    }
    record.key_version = current_version
        .checked_add(1)
        .ok_or_else(|| Error::Internal(format!("key version overflow of {holder}")))?;
    record.public_key = Some(*req.public_key());
    record.key_since = Some(timestamp.unix_millis());
    // A binding made at provisioning named the old key; the administrator has now named this one.
    if record.key_hash.is_some() {
        record.key_hash = Some(KeyHash::of_service_key(req.public_key()));
    }
    Ok(ServiceRotation { backfill, record })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bcami_api::MdmsRecord;
    use bcami_sdk::{MdmsRegistrationRequest, MdmsSecretKey, MeterSecretKey};

    const WINDOW: Window = Window {
        past_ms: 300_000,
        future_ms: 60_000,
    };
    const NOW: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);

    fn at(offset: i64) -> Timestamp {
        Timestamp::from_unix_millis(NOW.unix_millis().saturating_add_signed(offset))
    }

    fn meter_key(seed: u8) -> MeterSecretKey {
        MeterSecretKey::from_entropy(&[seed; 32]).unwrap()
    }

    fn hid() -> Hid {
        Hid::from_meter_id("SM-1")
    }

    fn registered(seed: u8, at: Timestamp) -> (MeterRecord, RegistrationRequest) {
        let req = RegistrationRequest::build(&meter_key(seed), hid(), at).unwrap();
        let record = register_meter(new_meter(hid(), None, "tx"), &req, WINDOW, NOW).unwrap();
        (record, req)
    }

    #[test]
    fn provisioning_a_meter_adds_bindings_but_never_changes_or_revives() {
        let a = KeyHash::of_meter_key(&meter_key(1).public_key());
        let b = KeyHash::of_meter_key(&meter_key(2).public_key());
        assert_eq!(
            provision_meter(hid(), None, Some(a)),
            Ok(MeterProvision::Fresh)
        );
        let fresh = new_meter(hid(), None, "tx");
        assert_eq!(
            provision_meter(hid(), Some(&fresh), None),
            Ok(MeterProvision::Unchanged)
        );
        assert_eq!(
            provision_meter(hid(), Some(&fresh), Some(a)),
            Ok(MeterProvision::Bind { registered: false })
        );
        let (active, _) = registered(1, NOW);
        assert_eq!(
            provision_meter(hid(), Some(&active), Some(a)),
            Ok(MeterProvision::Bind { registered: true })
        );
        let bound = new_meter(hid(), Some(a), "tx");
        assert_eq!(
            provision_meter(hid(), Some(&bound), Some(a)),
            Ok(MeterProvision::Unchanged)
        );
        assert_eq!(
            provision_meter(hid(), Some(&bound), None),
            Ok(MeterProvision::Unchanged)
        );
        let e = provision_meter(hid(), Some(&bound), Some(b)).unwrap_err();
        assert_eq!(
            e,
            Conflict::BindingFixed {
                subject: Subject::Meter(hid()),
                have: a
            }
        );
        assert!(e.to_string().ends_with("(nothing was provisioned)"), "{e}");
        let revoked = revoke_meter(fresh, NOW).unwrap();
        assert_eq!(
            provision_meter(hid(), Some(&revoked), None),
            Err(Conflict::Revoked(hid()))
        );
    }

    #[test]
    fn a_late_binding_must_name_the_registered_key() {
        let a = KeyHash::of_meter_key(&meter_key(1).public_key());
        let b = KeyHash::of_meter_key(&meter_key(2).public_key());
        let subject = Subject::Meter(hid());
        assert_eq!(check_late_binding(subject, a, a), Ok(()));
        let e = check_late_binding(subject, a, b).unwrap_err();
        assert!(e.to_string().contains("revoke it"), "{e}");
    }

    #[test]
    fn registration_checks_state_binding_window_and_signature() {
        let (record, req) = registered(1, at(-1_000));
        assert_eq!(record.status, MeterStatus::Active);
        assert_eq!(record.key_version, 1);
        assert_eq!(record.last_timestamp, Some(at(-1_000).unix_millis()));
        assert_eq!(
            register_meter(record.clone(), &req, WINDOW, NOW),
            Err(Error::AlreadyRegistered(Subject::Meter(hid())))
        );
        let other = KeyHash::of_meter_key(&meter_key(2).public_key());
        let bound = new_meter(hid(), Some(other), "tx");
        assert!(matches!(
            register_meter(bound, &req, WINDOW, NOW),
            Err(Error::KeyNotProvisioned { bound, .. }) if bound == other
        ));
        let late = RegistrationRequest::build(&meter_key(1), hid(), at(60_001)).unwrap();
        assert!(matches!(
            register_meter(new_meter(hid(), None, "tx"), &late, WINDOW, NOW),
            Err(Error::OutsideWindow { timestamp, now, .. }) if timestamp == at(60_001) && now == NOW
        ));
        let stale = RegistrationRequest::build(&meter_key(1), hid(), at(-300_001)).unwrap();
        assert!(register_meter(new_meter(hid(), None, "tx"), &stale, WINDOW, NOW).is_err());
        let revoked = revoke_meter(new_meter(hid(), None, "tx"), NOW).unwrap();
        assert_eq!(
            register_meter(revoked, &req, WINDOW, NOW),
            Err(Error::Revoked(hid()))
        );
    }

    #[test]
    fn rotation_needs_a_newer_request_signed_by_the_current_key_and_a_new_key() {
        let (record, _) = registered(1, at(-2_000));
        let rotate = |current: u8, new: u8, t: Timestamp| {
            let req =
                KeyRotationRequest::build(&meter_key(current), &meter_key(new), hid(), t).unwrap();
            rotate_meter(record.clone(), "meter", &req, WINDOW, NOW)
        };
        let rotated = rotate(1, 2, at(-1_000)).unwrap();
        assert_eq!(rotated.key_version, 2);
        assert_eq!(rotated.public_key, Some(meter_key(2).public_key()));
        assert_eq!(rotated.last_timestamp, Some(at(-1_000).unix_millis()));
        assert!(matches!(
            rotate(1, 2, at(-2_000)),
            Err(Error::Replayed { last, .. }) if last == at(-2_000)
        ));
        assert!(matches!(rotate(3, 2, at(-1_000)), Err(Error::Signature(_))));
        assert_eq!(rotate(1, 1, at(-1_000)), Err(Error::SameKey(hid())));
        let fresh = new_meter(hid(), None, "tx");
        let req =
            KeyRotationRequest::build(&meter_key(1), &meter_key(2), hid(), at(-1_000)).unwrap();
        assert_eq!(
            rotate_meter(fresh, "meter", &req, WINDOW, NOW),
            Err(Error::NotRegistered(hid()))
        );
    }

    #[test]
    fn revoking_twice_keeps_the_first_time() {
        let revoked = revoke_meter(new_meter(hid(), None, "tx"), NOW).unwrap();
        assert_eq!(revoked.revoked_at, Some(unix_millis_i64(NOW)));
        assert_eq!(revoke_meter(revoked, at(5)), None);
    }

    fn mdms_key(seed: u8) -> MdmsSecretKey {
        MdmsSecretKey::from_entropy(&[seed; 32]).unwrap()
    }

    fn mdms_request(seed: u8, t: Timestamp) -> MdmsRegistrationRequest {
        MdmsRegistrationRequest::build(&mdms_key(seed), Hid::from_meter_id("MDMS"), t).unwrap()
    }

    fn fresh_mdms(key_hash: Option<KeyHash>) -> MdmsRecord {
        match provision_service(None, Hid::from_meter_id("MDMS"), key_hash) {
            Ok(ServiceProvision::Fresh(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_service_is_provisioned_once_and_its_binding_never_changes() {
        let mdms = Hid::from_meter_id("MDMS");
        let a = KeyHash::of_service_key(&mdms_key(1).public_key());
        let b = KeyHash::of_service_key(&mdms_key(2).public_key());
        let record = fresh_mdms(None);
        assert_eq!(record.status, ServiceStatus::Provisioned);
        assert_eq!(
            provision_service(Some(record.clone()), hid(), None),
            Err(Conflict::OneService {
                holder: "the MDMS",
                existing: mdms
            })
        );
        assert!(matches!(
            provision_service(Some(record.clone()), mdms, None),
            Ok(ServiceProvision::Unchanged(_))
        ));
        let registered =
            register_service(record.clone(), &mdms_request(1, NOW), WINDOW, NOW).unwrap();
        assert!(matches!(
            provision_service(Some(registered.clone()), mdms, Some(b)),
            Err(Conflict::RegisteredOtherKey { have, want, .. }) if have == a && want == b
        ));
        let Ok(ServiceProvision::Bound(bound)) = provision_service(Some(registered), mdms, Some(a))
        else {
            panic!("binding the registered key's hash is allowed");
        };
        assert_eq!(bound.key_hash, Some(a));
        assert!(matches!(
            provision_service(Some(bound), mdms, Some(b)),
            Err(Conflict::BindingFixed { have, .. }) if have == a
        ));
    }

    #[test]
    fn a_service_rotation_is_newer_and_never_brings_a_key_back() {
        let a = KeyHash::of_service_key(&mdms_key(1).public_key());
        let record = register_service(
            fresh_mdms(Some(a)),
            &mdms_request(1, at(-2_000)),
            WINDOW,
            NOW,
        )
        .unwrap();
        assert_eq!(record.key_version, 1);
        let held = [ServiceKeyVersionRecord {
            version: 1,
            public_key: mdms_key(1).public_key(),
            since: at(-2_000).unix_millis(),
            tx_id: "tx".into(),
        }];
        let unregistered = || Error::MdmsNotRegistered;
        let rotation = rotate_service(
            record.clone(),
            &held,
            &mdms_request(2, at(-1_000)),
            WINDOW,
            NOW,
            unregistered,
        )
        .unwrap();
        assert_eq!(rotation.backfill, None);
        assert_eq!(rotation.record.key_version, 2);
        assert_eq!(
            rotation.record.key_hash,
            Some(KeyHash::of_service_key(&mdms_key(2).public_key()))
        );
        assert!(matches!(
            rotate_service(
                record.clone(),
                &held,
                &mdms_request(2, at(-2_000)),
                WINDOW,
                NOW,
                unregistered
            ),
            Err(Error::ServiceReplayed { .. })
        ));
        assert!(matches!(
            rotate_service(
                record.clone(),
                &held,
                &mdms_request(1, at(-1_000)),
                WINDOW,
                NOW,
                unregistered
            ),
            Err(Error::KeyReused {
                version: 1,
                status: "holds now",
                ..
            })
        ));
        assert_eq!(
            rotate_service(
                fresh_mdms(None),
                &[],
                &mdms_request(2, NOW),
                WINDOW,
                NOW,
                unregistered
            ),
            Err(Error::MdmsNotRegistered)
        );
        assert_eq!(
            register_service(record, &mdms_request(2, NOW), WINDOW, NOW),
            Err(Error::AlreadyRegistered(Subject::Service {
                holder: "the MDMS",
                hid: Hid::from_meter_id("MDMS")
            }))
        );
    }
}
