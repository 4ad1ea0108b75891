//! Group keys (issue 13): the channel as the MLS Delivery Service and membership policy.
//!
//! The MLS checks are `bcami-group`'s observer (I/O-free, no clock): this module reads what it
//! needs from the world state, passes the transaction time in, and writes the outcome. Exactly
//! one commit per epoch: a commit for another epoch is refused (`stale_epoch`), and every commit
//! reads and rewrites `group~ID`, so of two concurrent commits for one epoch the second fails
//! MVCC validation at commit time.
//!
//! State (see the README's *State layout*): `groupauthority`, `groupcred~HID`,
//! `groupkp~HID~REF` (published, unused key packages; deleted when used), `group~ID` (the epoch
//! key), `groupstate~ID` (the public group state: ratchet tree and context, the paper's PKT),
//! `groupcommit~ID~EPOCH`, `groupwelcome~ID~EPOCH`, `groupjoin~ID~HID` (→ the epoch of the
//! member's Welcome), `groupmember~HID~ID` (which groups a HID is in) and
//! `groupremoval~ID~HID` (an administrator's approval).

use std::cell::RefCell;
use std::collections::BTreeMap;

use bcami_api::{
    Config, GroupAuthorityRecord, GroupCall, GroupCommitRecord, GroupCommitResponse,
    GroupCommitsPage, GroupCredentialRecord, GroupId, GroupMemberView, GroupRecord,
    GroupRemovalRecord, GroupWelcomeRecord, HeadEndRecord, KeyPackageRecord, MAX_GROUP_MEMBERS,
    MeterRecord, MeterStatus, PublishedKeyPackages, ServiceStatus, to_hex,
};
use bcami_group::{
    AuthorityPublicKey, GroupError, HidCredential, MembershipPolicy, Observer, Timestamp,
    welcome_key_package_refs,
};
use bcami_sdk::{GroupCredentialRequest, Hid};
use fabric_shim::{KeyRange, Stub, composite_key};

use crate::error::{Conflict, Error};
use crate::state;

/// Simple key of the group authority record.
pub const GROUP_AUTHORITY_KEY: &str = "groupauthority";
/// Object type of credential records: `groupcred~HID`.
pub const GROUP_CREDENTIAL: &str = "groupcred";
/// Object type of published key packages: `groupkp~HID~REF` (REF in hex).
pub const GROUP_KEY_PACKAGE: &str = "groupkp";
/// Object type of group records: `group~ID` (hex).
pub const GROUP: &str = "group";
/// Object type of group states: `groupstate~ID`.
pub const GROUP_STATE: &str = "groupstate";
/// Object type of accepted commits: `groupcommit~ID~EPOCH` (20 digits).
pub const GROUP_COMMIT: &str = "groupcommit";
/// Object type of Welcomes: `groupwelcome~ID~EPOCH` (the epoch the joiners start at).
pub const GROUP_WELCOME: &str = "groupwelcome";
/// Object type of a member's Welcome pointer: `groupjoin~ID~HID`.
pub const GROUP_JOIN: &str = "groupjoin";
/// Object type of the membership index: `groupmember~HID~ID`.
pub const GROUP_MEMBER: &str = "groupmember";
/// Object type of approved removals: `groupremoval~ID~HID`.
pub const GROUP_REMOVAL: &str = "groupremoval";

fn key(object: &str, attrs: &[&str]) -> Result<String, Error> {
    Ok(composite_key(object, attrs)?)
}

fn epoch_part(epoch: u64) -> String {
    format!("{epoch:020}")
}

/// `group~ID`.
pub fn group_key(id: &GroupId) -> Result<String, Error> {
    key(GROUP, &[&id.to_string()])
}

/// `groupstate~ID`.
pub fn state_key(id: &GroupId) -> Result<String, Error> {
    key(GROUP_STATE, &[&id.to_string()])
}

fn commit_key(id: &GroupId, epoch: u64) -> Result<String, Error> {
    key(GROUP_COMMIT, &[&id.to_string(), &epoch_part(epoch)])
}

fn welcome_key(id: &GroupId, epoch: u64) -> Result<String, Error> {
    key(GROUP_WELCOME, &[&id.to_string(), &epoch_part(epoch)])
}

fn join_key(id: &GroupId, hid: &Hid) -> Result<String, Error> {
    key(GROUP_JOIN, &[&id.to_string(), &hid.to_string()])
}

fn member_key(hid: &Hid, id: &GroupId) -> Result<String, Error> {
    key(GROUP_MEMBER, &[&hid.to_string(), &id.to_string()])
}

fn removal_key(id: &GroupId, hid: &Hid) -> Result<String, Error> {
    key(GROUP_REMOVAL, &[&id.to_string(), &hid.to_string()])
}

fn credential_key(hid: &Hid) -> Result<String, Error> {
    key(GROUP_CREDENTIAL, &[&hid.to_string()])
}

/// `groupkp~HID~REF`.
pub fn key_package_key(hid: &Hid, key_package_ref: &[u8]) -> Result<String, Error> {
    key(
        GROUP_KEY_PACKAGE,
        &[&hid.to_string(), &to_hex(key_package_ref)],
    )
}

/// The transaction time in whole seconds, for the observer (key-package lifetimes).
fn tx_seconds(stub: &dyn Stub) -> Timestamp {
    u64::try_from(stub.tx().timestamp().seconds).unwrap_or(0)
}

/// How the contract answers a `bcami-group` refusal: the epoch race, the membership policy, or a
/// message that does not parse or verify.
pub fn refusal(e: GroupError) -> Error {
    match e {
        GroupError::StaleEpoch { current, got } => Error::StaleEpoch { current, got },
        GroupError::UnauthorizedAdd(_)
        | GroupError::KeyPackageNotPublished(_)
        | GroupError::UnauthorizedRemove(_)
        | GroupError::RevokedMemberNotRemoved(_)
        | GroupError::GroupTooLarge { .. }
        | GroupError::ProposalNotAllowed
        | GroupError::ExternalCommit => Error::GroupPolicy(e.to_string()),
        other => Error::GroupMessage(other.to_string()),
    }
}

/// Whether a HID may be added to a group (and publish key packages): an active meter, or the
/// registered head-end. Pure: the caller reads the records.
pub fn may_join(hid: &Hid, meter: Option<&MeterRecord>, head_end: Option<&HeadEndRecord>) -> bool {
    match meter {
        Some(m) => m.status == MeterStatus::Active,
        None => head_end.is_some_and(|h| h.hid == *hid && h.status == ServiceStatus::Registered),
    }
}

/// A Welcome must be for exactly the key packages the commit added (both sorted), and there is
/// one exactly when the commit adds someone. Pure.
pub fn check_welcome(added: &[Vec<u8>], welcome_refs: Option<&[Vec<u8>]>) -> Result<(), Error> {
    match (added.is_empty(), welcome_refs) {
        (true, None) => Ok(()),
        (true, Some(_)) => Err(Error::GroupMessage(
            "a Welcome was given for a commit that adds nobody".into(),
        )),
        (false, None) => Err(Error::GroupMessage(
            "the commit adds members: its Welcome is required".into(),
        )),
        (false, Some(refs)) if refs == added => Ok(()),
        (false, Some(_)) => Err(Error::GroupMessage(
            "the Welcome is not for exactly the key packages the commit adds".into(),
        )),
    }
}

/// The world state as the observer's [`MembershipPolicy`]: each record read once (cached); the
/// first ledger error is kept and returned after the observer ran (the trait answers `bool`).
struct LedgerPolicy<'a> {
    stub: &'a dyn Stub,
    group: Option<&'a GroupId>,
    head_end: Option<HeadEndRecord>,
    meters: RefCell<BTreeMap<Hid, Option<MeterRecord>>>,
    error: RefCell<Option<Error>>,
}

impl<'a> LedgerPolicy<'a> {
    fn new(stub: &'a dyn Stub, group: Option<&'a GroupId>) -> Result<Self, Error> {
        Ok(Self {
            stub,
            group,
            head_end: state::load(stub, state::HEAD_END_KEY)?,
            meters: RefCell::new(BTreeMap::new()),
            error: RefCell::new(None),
        })
    }

    fn keep<T>(&self, r: Result<T, Error>, default: T) -> T {
        r.unwrap_or_else(|e| {
            self.error.borrow_mut().get_or_insert(e);
            default
        })
    }

    fn meter(&self, hid: &Hid) -> Option<MeterRecord> {
        if let Some(m) = self.meters.borrow().get(hid) {
            return m.clone();
        }
        let loaded = state::meter_key(hid).and_then(|k| state::load(self.stub, &k));
        let m = self.keep(loaded, None);
        self.meters.borrow_mut().insert(*hid, m.clone());
        m
    }

    fn exists(&self, key: Result<String, Error>) -> bool {
        let found = key.and_then(|k| Ok(self.stub.state(&k)?.is_some()));
        self.keep(found, false)
    }

    fn finish(self) -> Result<(), Error> {
        match self.error.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl MembershipPolicy for LedgerPolicy<'_> {
    fn is_active(&self, hid: &Hid) -> bool {
        may_join(hid, self.meter(hid).as_ref(), self.head_end.as_ref())
    }

    fn is_revoked(&self, hid: &Hid) -> bool {
        self.meter(hid)
            .is_some_and(|m| m.status == MeterStatus::Revoked)
    }

    fn key_package_published(&self, hid: &Hid, key_package_ref: &[u8]) -> bool {
        self.exists(key_package_key(hid, key_package_ref))
    }

    fn removal_approved(&self, hid: &Hid) -> bool {
        match self.group {
            Some(g) => self.exists(removal_key(g, hid)),
            None => false,
        }
    }
}

fn authority(stub: &dyn Stub) -> Result<(GroupAuthorityRecord, AuthorityPublicKey), Error> {
    let record: GroupAuthorityRecord =
        state::load(stub, GROUP_AUTHORITY_KEY)?.ok_or(Error::NoGroupAuthority)?;
    let bytes = state::unb64(&record.authority_key, GROUP_AUTHORITY_KEY)?;
    let key = AuthorityPublicKey::from_bytes(&bytes).map_err(|e| Error::CorruptState {
        key: GROUP_AUTHORITY_KEY.into(),
        detail: e.to_string(),
    })?;
    Ok((record, key))
}

fn observer(stub: &dyn Stub) -> Result<Observer, Error> {
    Ok(Observer::new(authority(stub)?.1, MAX_GROUP_MEMBERS))
}

fn load_group(stub: &dyn Stub, id: &GroupId) -> Result<GroupRecord, Error> {
    state::load(stub, &group_key(id)?)?.ok_or_else(|| Error::UnknownGroup(format!("no group {id}")))
}

/// Runs one group call.
pub(crate) fn run(stub: &mut dyn Stub, config: &Config, call: GroupCall) -> Result<Vec<u8>, Error> {
    match call {
        GroupCall::SetGroupAuthority(key) => set_authority(stub, &key),
        GroupCall::RequestGroupCredential(req) => request_credential(stub, config, &req),
        GroupCall::IssueGroupCredential {
            hid,
            signature_key,
            credential,
        } => issue_credential(stub, hid, &signature_key, &credential),
        GroupCall::PublishKeyPackages(packages) => publish(stub, &packages),
        GroupCall::CreateGroup(group_info) => create(stub, &group_info),
        GroupCall::SubmitGroupCommit {
            group_id,
            commit,
            welcome,
        } => submit_commit(stub, &group_id, &commit, welcome.as_deref()),
        GroupCall::ProposeGroupRemoval { group_id, hid } => propose_removal(stub, &group_id, hid),
        GroupCall::GetGroupAuthority => state::to_json(&authority(stub)?.0),
        GroupCall::GetGroupCredential(hid) => get_credential(stub, hid),
        GroupCall::GetKeyPackage(hid) => get_key_package(stub, hid),
        GroupCall::GetGroup(id) => state::to_json(&load_group(stub, &id)?),
        GroupCall::GetGroupCommits {
            group_id,
            from_epoch,
            page_size,
        } => get_commits(stub, &group_id, from_epoch, page_size),
        GroupCall::GetGroupWelcome { group_id, hid } => get_welcome(stub, &group_id, hid),
    }
}

/// `SetGroupAuthority`: set once (every credential and group depends on it); the same key again
/// is a no-op.
fn set_authority(stub: &mut dyn Stub, key: &[u8; 32]) -> Result<Vec<u8>, Error> {
    let encoded = state::b64(key);
    if let Some(have) = state::load::<GroupAuthorityRecord>(stub, GROUP_AUTHORITY_KEY)? {
        if have.authority_key == encoded {
            return state::to_json(&have);
        }
        return Err(Error::ProvisionConflict(Conflict::GroupAuthoritySet));
    }
    let record = GroupAuthorityRecord {
        authority_key: encoded,
        max_members: u32::try_from(MAX_GROUP_MEMBERS).unwrap_or(u32::MAX),
        tx_id: stub.tx().tx_id().to_owned(),
    };
    state::store(stub, GROUP_AUTHORITY_KEY, &record)?;
    state::to_json(&record)
}

/// `RequestGroupCredential`: an active meter, signed with its registered key, inside the window.
/// A request for another key replaces the record (the meter re-keyed; the authority issues again).
fn request_credential(
    stub: &mut dyn Stub,
    config: &Config,
    req: &GroupCredentialRequest,
) -> Result<Vec<u8>, Error> {
    let hid = req.hid();
    let meter: MeterRecord =
        state::load(stub, &state::meter_key(&hid)?)?.ok_or(Error::UnknownMeter(hid))?;
    let public_key = match (meter.status, meter.public_key) {
        (MeterStatus::Revoked, _) => return Err(Error::Revoked(hid)),
        (MeterStatus::Active, Some(k)) => k,
        _ => return Err(Error::NotRegistered(hid)),
    };
    crate::rules::check_window(
        config.window,
        req.timestamp(),
        crate::contract::tx_time(stub),
    )?;
    req.verify(&public_key).map_err(Error::Signature)?;
    let key = credential_key(&hid)?;
    let encoded = state::b64(req.signature_key());
    if let Some(have) = state::load::<GroupCredentialRecord>(stub, &key)? {
        if have.signature_key == encoded {
            return state::to_json(&have);
        }
    }
    let record = GroupCredentialRecord {
        hid,
        signature_key: encoded,
        request_tx: Some(stub.tx().tx_id().to_owned()),
        credential: None,
        credential_tx: None,
    };
    state::store(stub, &key, &record)?;
    state::to_json(&record)
}

/// `IssueGroupCredential`: the authority's credential for a meter's requested key, or for the
/// head-end's key (the Utility's own system: no request).
fn issue_credential(
    stub: &mut dyn Stub,
    hid: Hid,
    signature_key: &[u8; 32],
    credential: &[u8; 96],
) -> Result<Vec<u8>, Error> {
    let (_, authority) = authority(stub)?;
    let key = credential_key(&hid)?;
    let existing: Option<GroupCredentialRecord> = state::load(stub, &key)?;
    let encoded_key = state::b64(signature_key);
    let meter: Option<MeterRecord> = state::load(stub, &state::meter_key(&hid)?)?;
    let request_tx = match &meter {
        Some(m) => {
            if m.status == MeterStatus::Revoked {
                return Err(Error::Revoked(hid));
            }
            match &existing {
                Some(r) if r.signature_key == encoded_key => r.request_tx.clone(),
                _ => {
                    return Err(Error::NotRequested(format!(
                        "meter {hid} has not requested a group credential for this key"
                    )));
                }
            }
        }
        None => {
            let head_end: Option<HeadEndRecord> = state::load(stub, state::HEAD_END_KEY)?;
            if !may_join(&hid, None, head_end.as_ref()) {
                return Err(Error::UnknownMeter(hid));
            }
            None
        }
    };
    HidCredential::verify_bytes(credential, &hid, signature_key, &authority).map_err(|_| {
        Error::GroupMessage(format!(
            "the credential is not the group authority's for {hid} and this key"
        ))
    })?;
    let encoded = state::b64(credential);
    if let Some(r) = &existing {
        if r.signature_key == encoded_key && r.credential.as_deref() == Some(encoded.as_str()) {
            return state::to_json(r);
        }
    }
    let record = GroupCredentialRecord {
        hid,
        signature_key: encoded_key,
        request_tx,
        credential: Some(encoded),
        credential_tx: Some(stub.tx().tx_id().to_owned()),
    };
    state::store(stub, &key, &record)?;
    state::to_json(&record)
}

/// `PublishKeyPackages`: each one of suite 1, with an authority-issued credential, of a HID that
/// may join. The same key package again is a no-op.
fn publish(stub: &mut dyn Stub, packages: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    let observer = observer(stub)?;
    let head_end: Option<HeadEndRecord> = state::load(stub, state::HEAD_END_KEY)?;
    let mut published = Vec::with_capacity(packages.len());
    for package in packages {
        let (hid, r) = observer.check_key_package(package).map_err(refusal)?;
        let meter: Option<MeterRecord> = state::load(stub, &state::meter_key(&hid)?)?;
        if meter
            .as_ref()
            .is_some_and(|m| m.status == MeterStatus::Revoked)
        {
            return Err(Error::Revoked(hid));
        }
        if !may_join(&hid, meter.as_ref(), head_end.as_ref()) {
            return Err(Error::GroupPolicy(format!(
                "{hid} is not an active meter nor the head-end: it may not publish key packages"
            )));
        }
        let key = key_package_key(&hid, &r)?;
        if stub.state(&key)?.is_none() {
            let record = KeyPackageRecord {
                hid,
                key_package_ref: to_hex(&r),
                key_package: state::b64(package),
                tx_id: stub.tx().tx_id().to_owned(),
            };
            state::store(stub, &key, &record)?;
        }
        published.push(to_hex(&r));
    }
    state::to_json(&PublishedKeyPackages { published })
}

/// `CreateGroup`: from the creator's GroupInfo; the creator is its only member and may join.
fn create(stub: &mut dyn Stub, group_info: &[u8]) -> Result<Vec<u8>, Error> {
    let observer = observer(stub)?;
    let now = tx_seconds(stub);
    let policy = LedgerPolicy::new(stub, None)?;
    let observed = observer.create(group_info, now, &policy);
    policy.finish()?;
    let observed = observed.map_err(refusal)?;
    let id = GroupId::new(&observed.group_id).ok_or_else(|| {
        Error::GroupMessage(format!(
            "a group id is 1 to {} bytes, this one is {}",
            bcami_api::MAX_GROUP_ID_LEN,
            observed.group_id.len()
        ))
    })?;
    let gkey = group_key(&id)?;
    if stub.state(&gkey)?.is_some() {
        return Err(Error::GroupExists(id.to_string()));
    }
    let creator = *observed
        .members
        .first()
        .ok_or_else(|| Error::Internal("a new group without members".into()))?;
    let tx_id = stub.tx().tx_id().to_owned();
    let record = GroupRecord {
        group_id: id.clone(),
        epoch: observed.epoch,
        members: observed.members.clone(),
        creator,
        state_bytes: observed.state.len() as u64,
        created_tx: tx_id.clone(),
        last_tx: tx_id,
    };
    stub.put_state(&state_key(&id)?, &observed.state)?;
    stub.put_state(&member_key(&creator, &id)?, b"1")?;
    state::store(stub, &gkey, &record)?;
    state::to_json(&record)
}

/// `SubmitGroupCommit`: the one commit of the group's current epoch.
fn submit_commit(
    stub: &mut dyn Stub,
    id: &GroupId,
    commit: &[u8],
    welcome: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    let observer = observer(stub)?;
    let gkey = group_key(id)?;
    // Read (and below rewrite) the epoch key: two commits of one epoch conflict on it.
    let mut group = load_group(stub, id)?;
    let skey = state_key(id)?;
    let stored = stub.state(&skey)?.ok_or_else(|| Error::CorruptState {
        key: skey.escape_debug().to_string(),
        detail: "group without state".into(),
    })?;
    let now = tx_seconds(stub);
    let policy = LedgerPolicy::new(stub, Some(id))?;
    let report = observer.validate_commit(&stored, commit, now, &policy);
    policy.finish()?;
    let report = report.map_err(refusal)?;
    let mut added_refs: Vec<Vec<u8>> = report
        .added
        .iter()
        .map(|a| a.key_package_ref.clone())
        .collect();
    added_refs.sort();
    let welcome_refs = welcome
        .map(welcome_key_package_refs)
        .transpose()
        .map_err(refusal)?;
    check_welcome(&added_refs, welcome_refs.as_deref())?;

    let tx_id = stub.tx().tx_id().to_owned();
    let made_for = group.epoch;
    for a in &report.added {
        stub.delete_state(&key_package_key(&a.hid, &a.key_package_ref)?)?;
        stub.put_state(&member_key(&a.hid, id)?, b"1")?;
        stub.put_state(&join_key(id, &a.hid)?, report.epoch.to_string().as_bytes())?;
    }
    for hid in &report.removed {
        stub.delete_state(&member_key(hid, id)?)?;
        stub.delete_state(&removal_key(id, hid)?)?;
    }
    if let Some(w) = welcome {
        stub.put_state(&welcome_key(id, report.epoch)?, w)?;
    }
    let record = GroupCommitRecord {
        epoch: made_for,
        commit: state::b64(commit),
        committer: report.committer,
        added: report.added.iter().map(|a| a.hid).collect(),
        removed: report.removed.clone(),
        tx_id: tx_id.clone(),
    };
    state::store(stub, &commit_key(id, made_for)?, &record)?;
    stub.put_state(&skey, &report.state)?;
    group.epoch = report.epoch;
    group.members = report.members.clone();
    group.state_bytes = report.state.len() as u64;
    group.last_tx = tx_id;
    state::store(stub, &gkey, &group)?;
    state::to_json(&GroupCommitResponse {
        group_id: id.clone(),
        epoch: report.epoch,
        added: record.added,
        removed: report.removed,
        members: report.members,
        state_bytes: group.state_bytes,
    })
}

/// `ProposeGroupRemoval`: the administrator approves removing a member; the next commit may.
fn propose_removal(stub: &mut dyn Stub, id: &GroupId, hid: Hid) -> Result<Vec<u8>, Error> {
    let group = load_group(stub, id)?;
    if !group.members.contains(&hid) {
        return Err(Error::GroupPolicy(format!(
            "{hid} is not a member of group {id}"
        )));
    }
    let record = GroupRemovalRecord {
        group_id: id.clone(),
        hid,
        tx_id: stub.tx().tx_id().to_owned(),
    };
    state::store(stub, &removal_key(id, &hid)?, &record)?;
    state::to_json(&record)
}

fn get_credential(stub: &dyn Stub, hid: Hid) -> Result<Vec<u8>, Error> {
    let credential: GroupCredentialRecord = state::load(stub, &credential_key(&hid)?)?
        .ok_or_else(|| Error::NotRequested(format!("{hid} has no group credential record")))?;
    let range = KeyRange::composite_prefix(GROUP_MEMBER, &[&hid.to_string()])?;
    let mut groups = Vec::new();
    for kv in stub.range(&range)? {
        let kv = kv?;
        let (_, attrs) = fabric_shim::split_composite_key(&kv.key)?;
        let id = attrs
            .get(1)
            .and_then(|t| GroupId::from_hex(t))
            .ok_or_else(|| Error::CorruptState {
                key: kv.key.escape_debug().to_string(),
                detail: "not a membership key".into(),
            })?;
        groups.push(id);
    }
    state::to_json(&GroupMemberView { credential, groups })
}

fn get_key_package(stub: &dyn Stub, hid: Hid) -> Result<Vec<u8>, Error> {
    let range = KeyRange::composite_prefix(GROUP_KEY_PACKAGE, &[&hid.to_string()])?;
    let page = stub.range_page(&range, 1, "")?;
    let kv = page.records.first().ok_or_else(|| {
        Error::NotRequested(format!("{hid} has no published, unused key package"))
    })?;
    let record: KeyPackageRecord = state::parse(&kv.key, &kv.value)?;
    state::to_json(&record)
}

fn get_commits(
    stub: &dyn Stub,
    id: &GroupId,
    from_epoch: u64,
    page_size: u32,
) -> Result<Vec<u8>, Error> {
    let group = load_group(stub, id)?;
    let range = KeyRange::composite_prefix(GROUP_COMMIT, &[&id.to_string()])?;
    let start = commit_key(id, from_epoch)?;
    let page = stub.range_page(&range, page_size, &start)?;
    let commits = page
        .records
        .iter()
        .map(|kv| state::parse(&kv.key, &kv.value))
        .collect::<Result<Vec<GroupCommitRecord>, _>>()?;
    state::to_json(&GroupCommitsPage {
        group_id: id.clone(),
        commits,
        epoch: group.epoch,
    })
}

fn get_welcome(stub: &dyn Stub, id: &GroupId, hid: Hid) -> Result<Vec<u8>, Error> {
    let jkey = join_key(id, &hid)?;
    let epoch: u64 = match stub.state(&jkey)? {
        None => {
            return Err(Error::NotRequested(format!(
                "no Welcome for {hid} in group {id}"
            )));
        }
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| Error::CorruptState {
                key: jkey.escape_debug().to_string(),
                detail: "not an epoch".into(),
            })?,
    };
    let wkey = welcome_key(id, epoch)?;
    let welcome = stub.state(&wkey)?.ok_or_else(|| Error::CorruptState {
        key: wkey.escape_debug().to_string(),
        detail: "missing Welcome".into(),
    })?;
    state::to_json(&GroupWelcomeRecord {
        group_id: id.clone(),
        hid,
        epoch,
        welcome: state::b64(&welcome),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_must_match_the_adds() {
        let a = vec![vec![1u8], vec![2]];
        assert!(check_welcome(&[], None).is_ok());
        assert!(check_welcome(&a, Some(&a)).is_ok());
        assert!(check_welcome(&a, None).is_err());
        assert!(check_welcome(&[], Some(&a)).is_err());
        assert!(check_welcome(&a, Some(&a[..1])).is_err());
    }

    #[test]
    fn refusals_keep_their_kind() {
        let hid = Hid::from_meter_id("SM-1");
        assert!(matches!(
            refusal(GroupError::StaleEpoch { current: 3, got: 2 }),
            Error::StaleEpoch { current: 3, got: 2 }
        ));
        for e in [
            GroupError::UnauthorizedAdd(hid),
            GroupError::KeyPackageNotPublished(hid),
            GroupError::UnauthorizedRemove(hid),
            GroupError::RevokedMemberNotRemoved(hid),
        ] {
            assert!(matches!(refusal(e), Error::GroupPolicy(_)));
        }
        assert!(matches!(
            refusal(GroupError::NotPublic),
            Error::GroupMessage(_)
        ));
    }
}
