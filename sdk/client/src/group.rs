//! Group keys (issue 13): the contract's group functions as typed calls, and the member side of
//! the ledger as Delivery Service: join from the ledger's Welcome, fetch and process the commits
//! of later epochs, and commit with a retry when another commit won the epoch. The MLS
//! cryptography is `bcami-group`'s.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_api::{
    ErrorCode, GroupAuthorityRecord, GroupCommitResponse, GroupCommitsPage, GroupCredentialRecord,
    GroupId, GroupMemberView, GroupRecord, GroupRemovalRecord, GroupRequest, GroupWelcomeRecord,
    KeyPackageRecord, MAX_GROUP_COMMITS_PAGE, PublishedKeyPackages, Request,
};
use bcami_group::{CommitOut, GroupError, GroupMember, Processed, Timestamp};
use bcami_sdk::Hid;

use crate::client::{Client, Error};
use crate::ledger::{Caller, Ledger};

/// A member-side group step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupSyncError {
    /// The ledger call failed or was refused.
    #[error(transparent)]
    Ledger(#[from] Error),
    /// `bcami-group` refused a message from the ledger, or could not make one.
    #[error("group: {0}")]
    Group(#[from] GroupError),
    /// A ledger record is not what it should be.
    #[error("ledger record: {0}")]
    Record(String),
    /// Every attempt lost the epoch to another commit.
    #[error("{attempts} commits in a row lost their epoch to other commits")]
    LostEpoch {
        /// How many were tried.
        attempts: usize,
    },
    /// This member was removed from the group (by a commit it processed).
    #[error("removed from the group at epoch {0}")]
    Removed(u64),
}

fn unb64(text: &str, what: &str) -> Result<Vec<u8>, GroupSyncError> {
    STANDARD
        .decode(text)
        .map_err(|_| GroupSyncError::Record(format!("{what} is not base64")))
}

/// Whether a commit lost its epoch: the contract refused it as stale, or (a client that does not
/// re-endorse) the channel invalidated it for the read conflict on the group's epoch key.
pub fn lost_epoch(e: &Error) -> bool {
    match e {
        Error::Refused { rejection, .. } => rejection.code == Some(ErrorCode::StaleEpoch),
        Error::Ledger { source, .. } => source.to_string().contains("MVCC_READ_CONFLICT"),
        Error::Response { .. } => false,
    }
}

impl<L: Ledger + ?Sized> Client<'_, L> {
    async fn group_json<T: serde::de::DeserializeOwned>(
        &self,
        caller: Caller,
        request: GroupRequest<'_>,
    ) -> Result<T, Error> {
        self.json(caller, &Request::Group(request)).await
    }

    /// `SetGroupAuthority`: the Utility's group-authority key (32 bytes, Ed25519).
    pub async fn set_group_authority(
        &self,
        caller: Caller,
        key: &[u8],
    ) -> Result<GroupAuthorityRecord, Error> {
        self.group_json(caller, GroupRequest::SetGroupAuthority(key))
            .await
    }

    /// `GetGroupAuthority`.
    pub async fn group_authority(&self, caller: Caller) -> Result<GroupAuthorityRecord, Error> {
        self.group_json(caller, GroupRequest::GetGroupAuthority)
            .await
    }

    /// `RequestGroupCredential`: an encoded `GroupCredentialRequest`.
    pub async fn request_group_credential(
        &self,
        caller: Caller,
        request: &[u8],
    ) -> Result<GroupCredentialRecord, Error> {
        self.group_json(caller, GroupRequest::RequestGroupCredential(request))
            .await
    }

    /// `IssueGroupCredential`.
    pub async fn issue_group_credential(
        &self,
        caller: Caller,
        hid: Hid,
        signature_key: &[u8],
        credential: &[u8],
    ) -> Result<GroupCredentialRecord, Error> {
        self.group_json(
            caller,
            GroupRequest::IssueGroupCredential {
                hid,
                signature_key,
                credential,
            },
        )
        .await
    }

    /// `GetGroupCredential`: the record and the HID's groups.
    pub async fn group_credential(
        &self,
        caller: Caller,
        hid: Hid,
    ) -> Result<GroupMemberView, Error> {
        self.group_json(caller, GroupRequest::GetGroupCredential(hid))
            .await
    }

    /// `PublishKeyPackages`.
    pub async fn publish_key_packages(
        &self,
        caller: Caller,
        packages: &[Vec<u8>],
    ) -> Result<PublishedKeyPackages, Error> {
        self.group_json(caller, GroupRequest::PublishKeyPackages(packages))
            .await
    }

    /// `GetKeyPackage`: one published, unused key package of `hid`, decoded.
    pub async fn key_package(&self, caller: Caller, hid: Hid) -> Result<Vec<u8>, Error> {
        let record: KeyPackageRecord = self
            .group_json(caller, GroupRequest::GetKeyPackage(hid))
            .await?;
        STANDARD
            .decode(&record.key_package)
            .map_err(|_| Error::Response {
                function: bcami_api::Function::GetKeyPackage,
                detail: "keyPackage is not base64".into(),
            })
    }

    /// `CreateGroup`: the creator's GroupInfo.
    pub async fn create_group(
        &self,
        caller: Caller,
        group_info: &[u8],
    ) -> Result<GroupRecord, Error> {
        self.group_json(caller, GroupRequest::CreateGroup(group_info))
            .await
    }

    /// `SubmitGroupCommit`.
    pub async fn submit_group_commit(
        &self,
        caller: Caller,
        group_id: &GroupId,
        commit: &[u8],
        welcome: Option<&[u8]>,
    ) -> Result<GroupCommitResponse, Error> {
        self.group_json(
            caller,
            GroupRequest::SubmitGroupCommit {
                group_id,
                commit,
                welcome,
            },
        )
        .await
    }

    /// `ProposeGroupRemoval`.
    pub async fn propose_group_removal(
        &self,
        caller: Caller,
        group_id: &GroupId,
        hid: Hid,
    ) -> Result<GroupRemovalRecord, Error> {
        self.group_json(caller, GroupRequest::ProposeGroupRemoval { group_id, hid })
            .await
    }

    /// `GetGroup`.
    pub async fn group(&self, caller: Caller, group_id: &GroupId) -> Result<GroupRecord, Error> {
        self.group_json(caller, GroupRequest::GetGroup(group_id))
            .await
    }

    /// `GetGroupCommits`: a page of commits from `from_epoch` on.
    pub async fn group_commits(
        &self,
        caller: Caller,
        group_id: &GroupId,
        from_epoch: u64,
        page_size: Option<u32>,
    ) -> Result<GroupCommitsPage, Error> {
        self.group_json(
            caller,
            GroupRequest::GetGroupCommits {
                group_id,
                from_epoch,
                page_size,
            },
        )
        .await
    }

    /// `GetGroupWelcome`.
    pub async fn group_welcome(
        &self,
        caller: Caller,
        group_id: &GroupId,
        hid: Hid,
    ) -> Result<GroupWelcomeRecord, Error> {
        self.group_json(caller, GroupRequest::GetGroupWelcome { group_id, hid })
            .await
    }

    /// Joins `member` to the group from the Welcome the ledger holds for it, then catches up
    /// with any later commits. Returns the member's epoch.
    pub async fn join_group(
        &self,
        caller: Caller,
        group_id: &GroupId,
        member: &mut GroupMember,
        now: Timestamp,
    ) -> Result<u64, GroupSyncError> {
        let record = self.group_welcome(caller, group_id, member.hid()).await?;
        member.join(&unb64(&record.welcome, "welcome")?, now)?;
        self.catch_up(caller, group_id, member, now).await
    }

    /// Fetches every commit from the member's epoch on and processes it, in epoch order.
    /// Returns the member's epoch; [`GroupSyncError::Removed`] if a commit removed it.
    pub async fn catch_up(
        &self,
        caller: Caller,
        group_id: &GroupId,
        member: &mut GroupMember,
        now: Timestamp,
    ) -> Result<u64, GroupSyncError> {
        loop {
            let from = member.epoch()?;
            let page = self
                .group_commits(caller, group_id, from, Some(MAX_GROUP_COMMITS_PAGE))
                .await?;
            if page.commits.is_empty() {
                if page.epoch > from {
                    return Err(GroupSyncError::Record(format!(
                        "the group is at epoch {} but no commit for epoch {from} is stored",
                        page.epoch
                    )));
                }
                return Ok(from);
            }
            for c in &page.commits {
                if c.epoch != member.epoch()? {
                    return Err(GroupSyncError::Record(format!(
                        "expected the commit for epoch {}, got {}",
                        member.epoch()?,
                        c.epoch
                    )));
                }
                match member.process(&unb64(&c.commit, "commit")?, now)? {
                    Processed::Commit {
                        epoch,
                        removed_self: true,
                    } => return Err(GroupSyncError::Removed(epoch)),
                    Processed::Commit { .. } => {}
                    other => {
                        return Err(GroupSyncError::Record(format!(
                            "a stored commit processed as {other:?}"
                        )));
                    }
                }
            }
        }
    }

    /// Makes a commit with `make`, submits it, and applies it once the ledger accepted it. If
    /// another commit won the epoch ("lost the epoch"), discards it, catches up and makes it
    /// again, up to `attempts` times.
    pub async fn commit_group<F>(
        &self,
        caller: Caller,
        group_id: &GroupId,
        member: &mut GroupMember,
        now: Timestamp,
        attempts: usize,
        mut make: F,
    ) -> Result<GroupCommitResponse, GroupSyncError>
    where
        F: FnMut(&mut GroupMember) -> Result<CommitOut, GroupError> + Send,
    {
        for _ in 0..attempts {
            let out = make(member)?;
            match self
                .submit_group_commit(caller, group_id, &out.commit, out.welcome.as_deref())
                .await
            {
                Ok(response) => {
                    member.apply_pending_commit()?;
                    return Ok(response);
                }
                Err(e) if lost_epoch(&e) => {
                    member.discard_pending_commit()?;
                    self.catch_up(caller, group_id, member, now).await?;
                }
                Err(e) => {
                    member.discard_pending_commit()?;
                    return Err(e.into());
                }
            }
        }
        Err(GroupSyncError::LostEpoch { attempts })
    }
}
