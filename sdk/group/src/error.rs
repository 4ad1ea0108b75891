//! One error type for the crate: what the member or the delivery-service observer refused, and why.

use bcami_sdk::Hid;

/// Everything that can go wrong in a group operation.
///
/// Policy refusals name the HID concerned, so a contract can return a precise error to the client.
/// MLS failures (bad signature, wrong epoch secret, malformed message) are wrapped, not explained:
/// they come from `mls-rs` and describe cryptographic checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// `mls-rs` refused the operation or the message.
    #[error("MLS: {0}")]
    Mls(#[from] mls_rs::error::MlsError),
    /// The bytes are not an MLS message of the expected kind.
    #[error("not an MLS {expected}")]
    WrongMessageKind {
        /// What was expected ("commit", "key package", "welcome", ...).
        expected: &'static str,
    },
    /// Commits and proposals must travel as PublicMessages so that the ledger can check them.
    #[error("a commit or proposal must be an MLS PublicMessage")]
    NotPublic,
    /// The commit is for another epoch than the group's current one.
    #[error("commit for epoch {got}, the group is at epoch {current}")]
    StaleEpoch {
        /// The group's epoch on the ledger.
        current: u64,
        /// The epoch the commit was made for.
        got: u64,
    },
    /// External commits (joins without a Welcome) are not allowed: every add is authorised.
    #[error("external commits are not allowed")]
    ExternalCommit,
    /// An Add of a HID that is not an active, provisioned meter.
    #[error("add of {0}, which is not an active meter")]
    UnauthorizedAdd(Hid),
    /// An Add of a key package that was not published on the ledger, or was used before.
    #[error("key package of {0} is not published or was used already")]
    KeyPackageNotPublished(Hid),
    /// A Remove that is neither a self-removal, nor of a revoked HID, nor approved by an
    /// administrator.
    #[error("removal of {0} is not authorised")]
    UnauthorizedRemove(Hid),
    /// A revoked member is still in the group after the commit.
    #[error("{0} is revoked and must be removed by this commit")]
    RevokedMemberNotRemoved(Hid),
    /// The commit carries a proposal type the policy does not allow (PSK, ReInit, extensions).
    #[error("proposal type not allowed by the group policy")]
    ProposalNotAllowed,
    /// A credential is not a BC-AMI HID credential, or its authority signature is wrong.
    #[error("invalid group credential")]
    InvalidCredential,
    /// The group would grow past the configured cap.
    #[error("group would have {members} members, the cap is {cap}")]
    GroupTooLarge {
        /// Members after the commit.
        members: usize,
        /// The cap.
        cap: usize,
    },
    /// The member has no group yet (create or join one first), or has one already.
    #[error("{0}")]
    State(&'static str),
    /// A HID asked to be removed is not a member.
    #[error("{0} is not a member")]
    NotAMember(Hid),
    /// Cipher suite 1 is not available from the crypto provider.
    #[error("cipher suite not supported by the crypto provider")]
    CipherSuite,
}
