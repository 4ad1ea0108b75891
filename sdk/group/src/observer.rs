//! The delivery-service observer: pure, I/O-free checks a contract can run deterministically.
//!
//! The ledger stores the group's public state (an mls-rs `ExternalSnapshot`: the ratchet tree,
//! i.e. the paper's public key table, plus the group context). For each submitted commit the
//! contract calls [`validate_commit`] with the stored state, the epoch it read, the transaction
//! time and a [`MembershipPolicy`] answering from the world state; on success it writes the new
//! state back. No clock and no randomness are used.

use std::collections::BTreeMap;

use bcami_sdk::Hid;
use mls_rs::{
    MlsMessage,
    external_client::{
        ExternalClient, ExternalReceivedMessage, ExternalSnapshot, builder::MlsConfig,
    },
    group::{CommitEffect, ProposalSender, Sender, proposal::Proposal},
    mls_rules::DefaultMlsRules,
};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

use crate::{
    AuthorityPublicKey, GroupError, HidIdentityProvider, Timestamp,
    credential::{hid_of, suite},
    member::{rules, time},
};

/// What the ledger knows about membership; the contract answers from its world state.
pub trait MembershipPolicy {
    /// The HID is a provisioned, active meter (or the head-end) and may be added.
    fn is_active(&self, hid: &Hid) -> bool;
    /// The HID was revoked: it must leave every group by the next commit.
    fn is_revoked(&self, hid: &Hid) -> bool;
    /// This key package (by its RFC 9420 KeyPackageRef) was published for `hid` and not used.
    fn key_package_published(&self, hid: &Hid, key_package_ref: &[u8]) -> bool;
    /// An administrator stored a removal proposal for `hid`.
    fn removal_approved(&self, hid: &Hid) -> bool;
}

/// An added member as the ledger must record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    /// The new member.
    pub hid: Hid,
    /// The key package it was added with: the contract deletes it (one-time use).
    pub key_package_ref: Vec<u8>,
}

/// The outcome of an accepted commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitReport {
    /// The group's new epoch.
    pub epoch: u64,
    /// Who committed.
    pub committer: Hid,
    /// Added members.
    pub added: Vec<Added>,
    /// Removed members.
    pub removed: Vec<Hid>,
    /// Members after the commit, in leaf order.
    pub members: Vec<Hid>,
    /// The new group state to store (replaces the old one).
    pub state: Vec<u8>,
}

/// The group as the ledger first records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedGroup {
    /// The MLS group id.
    pub group_id: Vec<u8>,
    /// Its epoch.
    pub epoch: u64,
    /// Its members.
    pub members: Vec<Hid>,
    /// The group state to store.
    pub state: Vec<u8>,
}

/// The observer: configured with the authority key and a group-size cap.
#[derive(Clone, Debug)]
pub struct Observer {
    authority: AuthorityPublicKey,
    max_members: usize,
}

fn client(authority: &AuthorityPublicKey) -> ExternalClient<impl MlsConfig> {
    ExternalClient::builder()
        .crypto_provider(RustCryptoProvider::new())
        .identity_provider(HidIdentityProvider::new(authority.clone()))
        .mls_rules(rules_for_observer())
        .build()
}

fn rules_for_observer() -> DefaultMlsRules {
    rules()
}

fn members_of<'a>(
    it: impl Iterator<Item = mls_rs::group::Member> + 'a,
) -> Result<BTreeMap<u32, Hid>, GroupError> {
    it.map(|m| Ok((m.index, hid_of(&m.signing_identity)?)))
        .collect()
}

impl Observer {
    /// An observer trusting `authority`'s credentials, for groups of at most `max_members`.
    pub fn new(authority: AuthorityPublicKey, max_members: usize) -> Self {
        Self {
            authority,
            max_members,
        }
    }

    /// Records a new group from its creator's GroupInfo (with the ratchet tree). The creator must
    /// be the group's only member and active.
    pub fn create(
        &self,
        group_info: &[u8],
        now: Timestamp,
        policy: &dyn MembershipPolicy,
    ) -> Result<ObservedGroup, GroupError> {
        let msg = MlsMessage::from_bytes(group_info)?;
        if msg.clone().into_group_info().is_none() {
            return Err(GroupError::WrongMessageKind {
                expected: "group info",
            });
        }
        let group = client(&self.authority).observe_group(msg, None, Some(time(now)))?;
        let members = members_of(group.roster().members_iter())?;
        if members.len() != 1 {
            return Err(GroupError::State(
                "a new group must have its creator as its only member",
            ));
        }
        for hid in members.values() {
            if !policy.is_active(hid) {
                return Err(GroupError::UnauthorizedAdd(*hid));
            }
        }
        Ok(ObservedGroup {
            group_id: group.group_context().group_id.clone(),
            epoch: group.group_context().epoch,
            members: members.into_values().collect(),
            state: group.snapshot().to_bytes()?,
        })
    }

    /// Checks a key package before the ledger publishes it: an MLS KeyPackage of cipher suite 1
    /// whose credential the authority issued. Returns its HID and its KeyPackageRef (the ledger
    /// key under which it is stored and later consumed).
    pub fn check_key_package(&self, key_package: &[u8]) -> Result<(Hid, Vec<u8>), GroupError> {
        let msg = MlsMessage::from_bytes(key_package)?;
        let kp = msg.into_key_package().ok_or(GroupError::WrongMessageKind {
            expected: "key package",
        })?;
        let hid = crate::HidCredential::verify(kp.signing_identity(), &self.authority)?.hid;
        let r = kp.to_reference(&suite()?)?.to_vec();
        Ok((hid, r))
    }

    /// Stores a proposal (a member's request to leave) in the group state; the next commit may
    /// include it by reference. Returns the new state.
    pub fn observe_proposal(
        &self,
        state: &[u8],
        proposal: &[u8],
        now: Timestamp,
    ) -> Result<Vec<u8>, GroupError> {
        let msg = MlsMessage::from_bytes(proposal)?;
        if msg.wire_format() != mls_rs::WireFormat::PublicMessage {
            return Err(GroupError::NotPublic);
        }
        let mut group = client(&self.authority).load_group(ExternalSnapshot::from_bytes(state)?)?;
        match group.process_incoming_message_with_time(msg, time(now))? {
            ExternalReceivedMessage::Proposal(p) => {
                // Only self-removals are accepted by reference.
                match (&p.proposal, p.sender) {
                    (Proposal::Remove(r), ProposalSender::Member(s)) if r.to_remove() == s => {}
                    _ => return Err(GroupError::ProposalNotAllowed),
                }
            }
            _ => {
                return Err(GroupError::WrongMessageKind {
                    expected: "proposal",
                });
            }
        }
        Ok(group.snapshot().to_bytes()?)
    }

    /// Validates a commit for the group's current epoch against the stored state and the policy.
    /// On success the caller stores [`CommitReport::state`]; on error nothing changes.
    pub fn validate_commit(
        &self,
        state: &[u8],
        commit: &[u8],
        now: Timestamp,
        policy: &dyn MembershipPolicy,
    ) -> Result<CommitReport, GroupError> {
        let msg = MlsMessage::from_bytes(commit)?;
        if msg.wire_format() != mls_rs::WireFormat::PublicMessage {
            return Err(GroupError::NotPublic);
        }
        let snapshot = ExternalSnapshot::from_bytes(state)?;
        let current = snapshot.context().epoch;
        match msg.epoch() {
            Some(e) if e == current => {}
            Some(e) => return Err(GroupError::StaleEpoch { current, got: e }),
            None => return Err(GroupError::WrongMessageKind { expected: "commit" }),
        }
        let mut group = client(&self.authority).load_group(snapshot)?;
        let before = members_of(group.roster().members_iter())?;
        let desc = match group.process_incoming_message_with_time(msg, time(now))? {
            ExternalReceivedMessage::Commit(c) => c,
            _ => return Err(GroupError::WrongMessageKind { expected: "commit" }),
        };
        if desc.is_external {
            return Err(GroupError::ExternalCommit);
        }
        let committer = *before
            .get(&desc.committer)
            .ok_or(GroupError::ExternalCommit)?;
        let new_epoch = match desc.effect {
            CommitEffect::NewEpoch(e) => e,
            CommitEffect::Removed { new_epoch, .. } => new_epoch,
            CommitEffect::ReInit(_) => return Err(GroupError::ProposalNotAllowed),
        };
        let cs = suite()?;
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for p in &new_epoch.applied_proposals {
            match &p.proposal {
                Proposal::Add(add) => {
                    let kp = add.key_package();
                    let hid =
                        crate::HidCredential::verify(kp.signing_identity(), &self.authority)?.hid;
                    if !policy.is_active(&hid) || policy.is_revoked(&hid) {
                        return Err(GroupError::UnauthorizedAdd(hid));
                    }
                    let r = kp.to_reference(&cs)?.to_vec();
                    if !policy.key_package_published(&hid, &r) {
                        return Err(GroupError::KeyPackageNotPublished(hid));
                    }
                    added.push(Added {
                        hid,
                        key_package_ref: r,
                    });
                }
                Proposal::Remove(r) => {
                    let target = r.to_remove();
                    let hid = *before.get(&target).ok_or(GroupError::ProposalNotAllowed)?;
                    let self_removal = p.sender == Sender::Member(target);
                    if !(self_removal || policy.is_revoked(&hid) || policy.removal_approved(&hid)) {
                        return Err(GroupError::UnauthorizedRemove(hid));
                    }
                    removed.push(hid);
                }
                Proposal::Update(_) => {}
                _ => return Err(GroupError::ProposalNotAllowed),
            }
        }
        let after = members_of(group.roster().members_iter())?;
        if after.len() > self.max_members {
            return Err(GroupError::GroupTooLarge {
                members: after.len(),
                cap: self.max_members,
            });
        }
        if let Some(hid) = after.values().find(|h| policy.is_revoked(h)) {
            return Err(GroupError::RevokedMemberNotRemoved(*hid));
        }
        debug_assert_eq!(group.group_context().epoch, new_epoch.epoch);
        Ok(CommitReport {
            epoch: new_epoch.epoch,
            committer,
            added,
            removed,
            members: after.into_values().collect(),
            state: group.snapshot().to_bytes()?,
        })
    }
}

/// The epoch of a stored group state.
pub fn state_epoch(state: &[u8]) -> Result<u64, GroupError> {
    Ok(ExternalSnapshot::from_bytes(state)?.context().epoch)
}

/// The KeyPackageRefs of the members a Welcome is for, sorted: the ledger checks them against
/// the key packages the commit added, so a Welcome cannot be for anyone else.
pub fn welcome_key_package_refs(welcome: &[u8]) -> Result<Vec<Vec<u8>>, GroupError> {
    let msg = MlsMessage::from_bytes(welcome)?;
    if msg.wire_format() != mls_rs::WireFormat::Welcome {
        return Err(GroupError::WrongMessageKind {
            expected: "welcome",
        });
    }
    let mut refs: Vec<Vec<u8>> = msg
        .welcome_key_package_references()
        .into_iter()
        .map(|r| r.to_vec())
        .collect();
    refs.sort();
    Ok(refs)
}

/// The epoch a commit (or proposal) message was made for, without checking it.
pub fn message_epoch(message: &[u8]) -> Result<u64, GroupError> {
    MlsMessage::from_bytes(message)?
        .epoch()
        .ok_or(GroupError::WrongMessageKind { expected: "commit" })
}
