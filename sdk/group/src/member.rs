//! The member side: a meter or the head-end, holding its MLS group state.

use std::time::Duration;

use bcami_sdk::Hid;
use mls_rs::{
    Client, ExtensionList, MlsMessage,
    client_builder::{
        BaseConfig, PaddingMode, WithCryptoProvider, WithIdentityProvider, WithMlsRules,
    },
    group::{CommitEffect, Group, ReceivedMessage},
    identity::SigningIdentity,
    mls_rules::{CommitOptions, DefaultMlsRules, EncryptionOptions},
    time::MlsTime,
};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

use crate::{
    AuthorityPublicKey, CIPHER_SUITE, GroupError, HidCredential, HidIdentityProvider, MemberKeys,
    Timestamp, credential::hid_of,
};

/// How long a published key package stays valid (the observer checks it against the
/// transaction time).
pub const KEY_PACKAGE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The mls-rs configuration shared by members.
pub(crate) type MemberConfig = WithMlsRules<
    DefaultMlsRules,
    WithIdentityProvider<HidIdentityProvider, WithCryptoProvider<RustCryptoProvider, BaseConfig>>,
>;

/// The group's MLS rules: commits and proposals in the clear (PublicMessage) so the ledger can
/// check them; an update path on every commit (post-compromise security on every epoch change);
/// the ratchet tree inside Welcome and GroupInfo so a joiner needs nothing else.
pub(crate) fn rules() -> DefaultMlsRules {
    DefaultMlsRules::new()
        .with_commit_options(
            CommitOptions::new()
                .with_path_required(true)
                .with_ratchet_tree_extension(true)
                .with_single_welcome_message(true),
        )
        .with_encryption_options(EncryptionOptions::new(false, PaddingMode::StepFunction))
}

pub(crate) fn time(t: Timestamp) -> MlsTime {
    MlsTime::from_duration_since_epoch(Duration::from_secs(t))
}

/// A commit made by a member, to be submitted to the ledger for the epoch it was made in. Apply
/// it with [`GroupMember::apply_pending_commit`] only once the ledger accepted it; if another
/// commit won the epoch, call [`GroupMember::discard_pending_commit`] and process the winner.
#[derive(Clone, Debug)]
pub struct CommitOut {
    /// The epoch the commit was made in (the ledger's current epoch if it is to land).
    pub epoch: u64,
    /// The commit, an MLS PublicMessage.
    pub commit: Vec<u8>,
    /// The Welcome for added members, if any.
    pub welcome: Option<Vec<u8>>,
}

/// What processing a message did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    /// Application data, with the HID whose signature key signed it.
    Application {
        /// The sender.
        sender: Hid,
        /// The plaintext.
        data: Vec<u8>,
    },
    /// A commit moved the group to `epoch`.
    Commit {
        /// The new epoch.
        epoch: u64,
        /// This member was removed by the commit and is no longer in the group.
        removed_self: bool,
    },
    /// A proposal was stored for the next commit.
    Proposal,
}

/// One member of one group: its client (identity, keys) and its group state.
///
/// `Clone` copies every secret: it is how a device persists or forks its state (and how the
/// tests model a compromised device).
#[derive(Clone)]
pub struct GroupMember {
    hid: Hid,
    client: Client<MemberConfig>,
    group: Option<Group<MemberConfig>>,
}

impl GroupMember {
    /// A member with the given signature keys and the credential the authority issued for them.
    pub fn new(
        keys: MemberKeys,
        credential: &HidCredential,
        authority: AuthorityPublicKey,
    ) -> Result<Self, GroupError> {
        let identity = SigningIdentity::new(credential.to_mls(), keys.public.clone());
        // Refuse a credential that does not match the key or the authority up front.
        HidCredential::verify(&identity, &authority)?;
        let client = Client::builder()
            .crypto_provider(RustCryptoProvider::new())
            .identity_provider(HidIdentityProvider::new(authority))
            .mls_rules(rules())
            .key_package_lifetime(KEY_PACKAGE_LIFETIME)
            .signing_identity(identity, keys.secret, CIPHER_SUITE)
            .build();
        Ok(Self {
            hid: credential.hid,
            client,
            group: None,
        })
    }

    /// This member's HID.
    pub fn hid(&self) -> Hid {
        self.hid
    }

    fn group(&self) -> Result<&Group<MemberConfig>, GroupError> {
        self.group
            .as_ref()
            .ok_or(GroupError::State("not in a group"))
    }

    fn group_mut(&mut self) -> Result<&mut Group<MemberConfig>, GroupError> {
        self.group
            .as_mut()
            .ok_or(GroupError::State("not in a group"))
    }

    /// A fresh one-time key package (an MLS message) to publish on the ledger.
    pub fn key_package(&self, now: Timestamp) -> Result<Vec<u8>, GroupError> {
        Ok(self
            .client
            .generate_key_package_message(
                ExtensionList::new(),
                ExtensionList::new(),
                Some(time(now)),
            )?
            .to_bytes()?)
    }

    /// Creates a group with this member alone in it, and returns its GroupInfo (with the ratchet
    /// tree) for the ledger's observer.
    pub fn create_group(&mut self, group_id: &[u8], now: Timestamp) -> Result<Vec<u8>, GroupError> {
        if self.group.is_some() {
            return Err(GroupError::State("already in a group"));
        }
        let group = self.client.create_group_with_id(
            group_id.to_vec(),
            ExtensionList::new(),
            ExtensionList::new(),
            Some(time(now)),
        )?;
        self.group = Some(group);
        self.group_info()
    }

    /// The current GroupInfo with the ratchet tree (for the ledger's observer).
    pub fn group_info(&self) -> Result<Vec<u8>, GroupError> {
        Ok(self.group()?.group_info_message(true)?.to_bytes()?)
    }

    fn out(&self, o: mls_rs::group::CommitOutput) -> Result<CommitOut, GroupError> {
        let welcome = match o.welcome_messages.first() {
            Some(w) => Some(w.to_bytes()?),
            None => None,
        };
        Ok(CommitOut {
            epoch: self.group()?.current_epoch(),
            commit: o.commit_message.to_bytes()?,
            welcome,
        })
    }

    /// A commit adding the members of these key packages.
    pub fn commit_add(
        &mut self,
        key_packages: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<CommitOut, GroupError> {
        let group = self.group_mut()?;
        let mut b = group.commit_builder().commit_time(time(now));
        for kp in key_packages {
            let msg = MlsMessage::from_bytes(kp)?;
            if msg.as_key_package().is_none() {
                return Err(GroupError::WrongMessageKind {
                    expected: "key package",
                });
            }
            b = b.add_member(msg)?;
        }
        let o = b.build()?;
        self.out(o)
    }

    /// A commit removing these members (and including any stored proposals).
    pub fn commit_remove(&mut self, hids: &[Hid], now: Timestamp) -> Result<CommitOut, GroupError> {
        let group = self.group_mut()?;
        let mut indices = Vec::with_capacity(hids.len());
        for hid in hids {
            let m = group
                .roster()
                .members_iter()
                .find(|m| hid_of(&m.signing_identity).ok() == Some(*hid))
                .ok_or(GroupError::NotAMember(*hid))?;
            indices.push(m.index);
        }
        let mut b = group.commit_builder().commit_time(time(now));
        for i in indices {
            b = b.remove_member(i)?;
        }
        let o = b.build()?;
        self.out(o)
    }

    /// A commit with only an update path (fresh leaf key: post-compromise security), including
    /// any stored proposals (for example a member's request to leave).
    pub fn commit_update(&mut self, now: Timestamp) -> Result<CommitOut, GroupError> {
        let o = self
            .group_mut()?
            .commit_builder()
            .commit_time(time(now))
            .build()?;
        self.out(o)
    }

    /// A proposal to remove this member itself (a PublicMessage for the ledger; another member
    /// commits it).
    pub fn propose_leave(&mut self) -> Result<Vec<u8>, GroupError> {
        let group = self.group_mut()?;
        let me = group.current_member_index();
        Ok(group.propose_remove(me, Vec::new())?.to_bytes()?)
    }

    /// Applies this member's own commit after the ledger accepted it.
    pub fn apply_pending_commit(&mut self) -> Result<u64, GroupError> {
        let group = self.group_mut()?;
        group.apply_pending_commit()?;
        Ok(group.current_epoch())
    }

    /// Drops this member's own commit after the ledger refused it.
    pub fn discard_pending_commit(&mut self) -> Result<(), GroupError> {
        self.group_mut()?.clear_pending_commit();
        Ok(())
    }

    /// Joins from a Welcome (the ratchet tree is inside it).
    pub fn join(&mut self, welcome: &[u8], now: Timestamp) -> Result<u64, GroupError> {
        if self.group.is_some() {
            return Err(GroupError::State("already in a group"));
        }
        let msg = MlsMessage::from_bytes(welcome)?;
        let (group, _) = self.client.join_group(None, &msg, Some(time(now)))?;
        let epoch = group.current_epoch();
        self.group = Some(group);
        Ok(epoch)
    }

    /// Processes a commit or proposal from the ledger, or application data from a peer.
    pub fn process(&mut self, message: &[u8], now: Timestamp) -> Result<Processed, GroupError> {
        let msg = MlsMessage::from_bytes(message)?;
        let group = self.group_mut()?;
        match group.process_incoming_message_with_time(msg, time(now))? {
            ReceivedMessage::ApplicationMessage(app) => {
                let member = group
                    .member_at_index(app.sender_index)
                    .ok_or(GroupError::InvalidCredential)?;
                Ok(Processed::Application {
                    sender: hid_of(&member.signing_identity)?,
                    data: app.data().to_vec(),
                })
            }
            ReceivedMessage::Commit(c) => {
                let (epoch, removed_self) = match &c.effect {
                    CommitEffect::NewEpoch(e) => (e.epoch, false),
                    CommitEffect::Removed { new_epoch, .. } => (new_epoch.epoch, true),
                    CommitEffect::ReInit(_) => return Err(GroupError::ProposalNotAllowed),
                };
                Ok(Processed::Commit {
                    epoch,
                    removed_self,
                })
            }
            ReceivedMessage::Proposal(_) => Ok(Processed::Proposal),
            _ => Err(GroupError::WrongMessageKind {
                expected: "commit, proposal or application message",
            }),
        }
    }

    /// Encrypts application data as a PrivateMessage signed by this member.
    pub fn send(&mut self, data: &[u8]) -> Result<Vec<u8>, GroupError> {
        Ok(self
            .group_mut()?
            .encrypt_application_message(data, Vec::new())?
            .to_bytes()?)
    }

    /// The current epoch.
    pub fn epoch(&self) -> Result<u64, GroupError> {
        Ok(self.group()?.current_epoch())
    }

    /// The epoch authenticator (RFC 9420 §8.7): equal for all members of an epoch.
    pub fn epoch_authenticator(&self) -> Result<Vec<u8>, GroupError> {
        Ok(self.group()?.epoch_authenticator()?.to_vec())
    }

    /// An exported secret of the current epoch (for example a key for head-end commands).
    pub fn export_secret(
        &self,
        label: &[u8],
        context: &[u8],
        len: usize,
    ) -> Result<Vec<u8>, GroupError> {
        Ok(self.group()?.export_secret(label, context, len)?.to_vec())
    }

    /// The members' HIDs, in leaf order.
    pub fn members(&self) -> Result<Vec<Hid>, GroupError> {
        self.group()?
            .roster()
            .members_iter()
            .map(|m| hid_of(&m.signing_identity))
            .collect()
    }

    /// The public ratchet tree's encoded size in bytes (what a joiner or observer downloads).
    pub fn tree_size(&self) -> Result<usize, GroupError> {
        Ok(self.group()?.export_tree().to_bytes()?.len())
    }
}
