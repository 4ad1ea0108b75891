//! The contract's errors. Each has a stable machine-readable code (the first word of the message
//! the client sees) and a status.

use bcami_api::{ArgError, Config, ErrorCode, Role};
use bcami_sdk::{Hid, VerifyError};
use fabric_shim::{ContractError, ErrorStatus, StubError};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The function name is not one of ours.
    #[error("unknown function {name:?}; known: {known}")]
    UnknownFunction {
        /// What was asked for.
        name: String,
        /// The known names.
        known: String,
    },
    /// An argument is malformed.
    #[error(transparent)]
    Argument(#[from] ArgError),
    /// The caller holds none of the roles the function needs.
    #[error("{function} requires the {needed} role; the caller is {caller}")]
    Forbidden {
        /// The function.
        function: &'static str,
        /// The roles that may call it, described with their MSP ids and OUs.
        needed: String,
        /// Who called.
        caller: String,
    },
    /// A meter HID is not provisioned.
    #[error("meter {0} is not provisioned")]
    UnknownMeter(Hid),
    /// No MDMS is provisioned, or a different HID was given.
    #[error("{0}")]
    UnknownMdms(String),
    /// The MDMS has not registered its key yet.
    #[error("the MDMS has not registered its encryption key")]
    MdmsNotRegistered,
    /// Provisioning conflicts with what the ledger holds.
    #[error("{0}")]
    ProvisionConflict(String),
    /// The meter (or MDMS) already has a key.
    #[error("{0} is already registered")]
    AlreadyRegistered(String),
    /// The key offered for registration is not the one bound at provisioning.
    #[error("{0}")]
    KeyNotProvisioned(String),
    /// The meter is revoked.
    #[error("meter {0} is revoked")]
    Revoked(Hid),
    /// The meter has no key yet.
    #[error("meter {0} is not registered")]
    NotRegistered(Hid),
    /// A message's signature does not verify.
    #[error("{0}")]
    Signature(VerifyError),
    /// A message's timestamp is outside the window around the transaction timestamp.
    #[error(
        "timestamp {timestamp} is outside the window [{earliest}, {latest}] around the transaction timestamp {tx_millis} (Unix ms)"
    )]
    OutsideWindow {
        /// The message's timestamp.
        timestamp: u64,
        /// The transaction timestamp.
        tx_millis: i64,
        /// Earliest accepted.
        earliest: i128,
        /// Latest accepted.
        latest: i128,
    },
    /// A message's timestamp is not after the meter's last accepted one.
    #[error(
        "timestamp {timestamp} is not after the last accepted timestamp {last} of meter {hid} (replay?)"
    )]
    Replayed {
        /// The meter.
        hid: Hid,
        /// The message's timestamp.
        timestamp: u64,
        /// The last accepted timestamp.
        last: u64,
    },
    /// A key rotation to the key already in use.
    #[error("the new key of meter {0} is its current key")]
    SameKey(Hid),
    /// No head-end is provisioned, or a different HID was given.
    #[error("{0}")]
    UnknownHeadEnd(String),
    /// The head-end has not registered its key yet.
    #[error("the head-end has not registered its session-signing key")]
    HeadEndNotRegistered,
    /// A service's (MDMS, head-end) key request is not newer than the request that bound its
    /// current key.
    #[error(
        "timestamp {timestamp} is not after {last}, the timestamp of the request that bound the current key of {holder} (replay?)"
    )]
    ServiceReplayed {
        /// `the MDMS` or `the head-end`.
        holder: &'static str,
        /// The request's timestamp.
        timestamp: u64,
        /// Timestamp of the request that bound the current key.
        last: u64,
    },
    /// A service key rotation to a key the service holds or held: a replaced key never returns.
    #[error(
        "the new key of {holder} is key version {version}, which {holder} {status}; rotate to a fresh key"
    )]
    KeyReused {
        /// `the MDMS` or `the head-end`.
        holder: &'static str,
        /// The version it had.
        version: u32,
        /// "holds now" or "held before".
        status: &'static str,
    },
    // Anonymous readings (issue 15).
    /// An anonymous-credential message (issuer key, join request, credential) does not decode.
    #[error("{0}")]
    AnonMessage(String),
    /// A join proof or credential does not verify.
    #[error("{0}")]
    AnonProof(String),
    /// No issuer key for the epoch.
    #[error("{0}")]
    UnknownEpoch(String),
    /// The meter has not requested a credential for the epoch.
    #[error("{0}")]
    NotRequested(String),
    /// No double report of the pseudonym in the period.
    #[error("{0}")]
    NoEvidence(String),
    /// An issuer key that does not roll the epoch forward or changes the period length, or a
    /// request for an epoch that is not current.
    #[error("{0}")]
    EpochConflict(String),
    // Group keys (issue 13).
    /// The group does not exist.
    #[error("{0}")]
    UnknownGroup(String),
    /// No group authority is set.
    #[error("no group authority is set (SetGroupAuthority)")]
    NoGroupAuthority,
    /// A commit for an epoch that is not the group's current one.
    #[error(
        "commit for epoch {got}, the group is at epoch {current}: another commit landed first; fetch the commits, catch up and commit again"
    )]
    StaleEpoch {
        /// The group's epoch on the ledger.
        current: u64,
        /// The commit's epoch.
        got: u64,
    },
    /// The group's membership policy refuses the commit or key package.
    #[error("{0}")]
    GroupPolicy(String),
    /// An MLS message does not parse or verify against the group.
    #[error("{0}")]
    GroupMessage(String),
    /// Ledger data that should have been written by this contract does not parse.
    #[error("ledger value at {key} is corrupt: {detail}")]
    CorruptState {
        /// The key (escaped).
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A stub call failed.
    #[error(transparent)]
    Stub(#[from] StubError),
    /// A bug: something that cannot happen did.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable machine-readable code, with its status.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::UnknownFunction { .. } => ErrorCode::UnknownFunction,
            Error::Argument(_) => ErrorCode::BadArgument,
            Error::Forbidden { .. } => ErrorCode::Forbidden,
            Error::UnknownMeter(_) => ErrorCode::UnknownMeter,
            Error::UnknownMdms(_) => ErrorCode::UnknownMdms,
            Error::MdmsNotRegistered => ErrorCode::MdmsNotRegistered,
            Error::ProvisionConflict(_) => ErrorCode::ProvisionConflict,
            Error::AlreadyRegistered(_) => ErrorCode::AlreadyRegistered,
            Error::KeyNotProvisioned(_) => ErrorCode::KeyNotProvisioned,
            Error::Revoked(_) => ErrorCode::Revoked,
            Error::NotRegistered(_) => ErrorCode::NotRegistered,
            Error::Signature(_) => ErrorCode::BadSignature,
            Error::OutsideWindow { .. } => ErrorCode::OutsideWindow,
            Error::Replayed { .. } | Error::ServiceReplayed { .. } => ErrorCode::Replayed,
            Error::SameKey(_) => ErrorCode::SameKey,
            Error::KeyReused { .. } => ErrorCode::KeyReused,
            Error::UnknownHeadEnd(_) => ErrorCode::UnknownHeadEnd,
            Error::HeadEndNotRegistered => ErrorCode::HeadEndNotRegistered,
            // Anonymous readings (issue 15).
            Error::AnonMessage(_) => ErrorCode::BadArgument,
            Error::AnonProof(_) => ErrorCode::BadSignature,
            Error::UnknownEpoch(_) => ErrorCode::UnknownEpoch,
            Error::NotRequested(_) => ErrorCode::NotRequested,
            Error::EpochConflict(_) => ErrorCode::EpochConflict,
            Error::NoEvidence(_) => ErrorCode::NoEvidence,
            // Group keys (issue 13).
            Error::UnknownGroup(_) => ErrorCode::UnknownGroup,
            Error::NoGroupAuthority => ErrorCode::NoGroupAuthority,
            Error::StaleEpoch { .. } => ErrorCode::StaleEpoch,
            Error::GroupPolicy(_) => ErrorCode::GroupPolicy,
            Error::GroupMessage(_) => ErrorCode::BadGroupMessage,
            Error::CorruptState { .. } => ErrorCode::CorruptState,
            Error::Stub(_) => ErrorCode::Stub,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The status the peer reports.
    pub fn status(&self) -> ErrorStatus {
        // Every code's status is in 400..=599, which ErrorStatus accepts.
        ErrorStatus::try_from(self.code().status()).unwrap_or(ErrorStatus::INTERNAL)
    }

    /// The caller named a role it does not hold.
    pub(crate) fn forbidden(
        function: &'static str,
        needed: &[Role],
        config: &Config,
        caller: String,
    ) -> Self {
        let needed: Vec<String> = needed.iter().map(|r| config.describe(*r)).collect();
        Error::Forbidden {
            function,
            needed: needed.join(" or "),
            caller,
        }
    }
}

impl From<Error> for ContractError {
    fn from(e: Error) -> Self {
        ContractError::new(e.status(), format!("{}: {e}", e.code()))
    }
}
