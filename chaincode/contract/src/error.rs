//! The contract's errors. Each has a stable machine-readable code (the first word of the message
//! the client sees) and a status.

use std::fmt;

use bcami_api::{ArgError, Config, ErrorCode, KeyHash, Role};
use bcami_sdk::{Hid, Timestamp, VerifyError};
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
    /// Provisioning conflicts with what the ledger holds; nothing was provisioned.
    #[error(transparent)]
    ProvisionConflict(#[from] Conflict),
    /// The meter (or service) already has a key.
    #[error("{0} is already registered")]
    AlreadyRegistered(Subject),
    /// The key offered for registration is not the one bound at provisioning.
    #[error(
        "{subject} was provisioned for the key with hash {bound}; this registration carries a key with hash {offered}"
    )]
    KeyNotProvisioned {
        /// Who registers.
        subject: Subject,
        /// The hash bound at provisioning.
        bound: KeyHash,
        /// The hash of the key offered.
        offered: KeyHash,
    },
    /// A meter's credential request commits to another anonymous secret than its first one.
    #[error(
        "meter {0} committed to another anonymous secret in an earlier epoch; every request must commit to the same one"
    )]
    OtherAnonSecret(Hid),
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
        "timestamp {} is outside the window [{earliest}, {latest}] around the transaction timestamp {} (Unix ms)",
        timestamp.unix_millis(),
        now.unix_millis()
    )]
    OutsideWindow {
        /// The message's timestamp.
        timestamp: Timestamp,
        /// The transaction timestamp.
        now: Timestamp,
        /// Earliest accepted.
        earliest: i128,
        /// Latest accepted.
        latest: i128,
    },
    /// A message's timestamp is not after the meter's last accepted one.
    #[error(
        "timestamp {} is not after the last accepted timestamp {} of meter {hid} (replay?)",
        timestamp.unix_millis(),
        last.unix_millis()
    )]
    Replayed {
        /// The meter.
        hid: Hid,
        /// The message's timestamp.
        timestamp: Timestamp,
        /// The last accepted timestamp.
        last: Timestamp,
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
        "timestamp {} is not after {}, the timestamp of the request that bound the current key of {holder} (replay?)",
        timestamp.unix_millis(),
        last.unix_millis()
    )]
    ServiceReplayed {
        /// `the MDMS` or `the head-end`.
        holder: &'static str,
        /// The request's timestamp.
        timestamp: Timestamp,
        /// Timestamp of the request that bound the current key.
        last: Timestamp,
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
    /// Another trace of the pseudonym in the period is recorded already (it named another meter).
    #[error(
        "the trace of pseudonym {pseudonym} in period {period_start} is already registered (it named meter {hid})"
    )]
    TraceRecorded {
        /// The pseudonym (hex).
        pseudonym: String,
        /// The period.
        period_start: u64,
        /// The meter the recorded trace named.
        hid: Hid,
    },
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
    /// A group with this id exists already; a group is created once.
    #[error("group {0} exists already; a group is created once (commit to change it)")]
    GroupExists(String),
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
            Error::AlreadyRegistered(_) | Error::TraceRecorded { .. } => {
                ErrorCode::AlreadyRegistered
            }
            Error::KeyNotProvisioned { .. } | Error::OtherAnonSecret(_) => {
                ErrorCode::KeyNotProvisioned
            }
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
            Error::GroupExists(_) => ErrorCode::AlreadyRegistered,
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

/// Who a registration or provisioning is about: a meter, or one of the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A meter.
    Meter(Hid),
    /// A service (the MDMS, the head-end).
    Service {
        /// `the MDMS` or `the head-end`.
        holder: &'static str,
        /// Its HID.
        hid: Hid,
    },
    /// A meter's anonymous-credential request for an epoch.
    CredentialRequest {
        /// The meter.
        hid: Hid,
        /// The credential epoch.
        epoch: u32,
    },
    /// A meter's anonymous credential for an epoch.
    Credential {
        /// The meter.
        hid: Hid,
        /// The credential epoch.
        epoch: u32,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Meter(hid) => write!(f, "meter {hid}"),
            Subject::Service { holder, hid } => write!(f, "{holder} {hid}"),
            Subject::CredentialRequest { hid, epoch } => {
                write!(f, "the credential request of meter {hid} for epoch {epoch}")
            }
            Subject::Credential { hid, epoch } => {
                write!(f, "the credential of meter {hid} for epoch {epoch}")
            }
        }
    }
}

/// Why provisioning was refused. In every case nothing was provisioned (a batch is all or
/// nothing), which the message says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// The HID already names another party: a HID is a meter's or one service's, never two.
    HidTaken {
        /// The HID.
        hid: Hid,
        /// Whose it is: `a meter`, `the MDMS`, `the head-end`.
        holder: &'static str,
        /// Whose it was to be.
        wanted: &'static str,
    },
    /// A revoked meter's HID is never provisioned again.
    Revoked(Hid),
    /// The subject is bound to another key hash; a binding is never changed.
    BindingFixed {
        /// The meter or service.
        subject: Subject,
        /// The hash it is bound to.
        have: KeyHash,
    },
    /// A binding was to be added to a subject that registered without one, and the key it
    /// registered has another hash: the trace of a hijacked registration, or a wrong hash.
    RegisteredOtherKey {
        /// The meter or service.
        subject: Subject,
        /// The hash of the key it registered.
        have: KeyHash,
        /// The hash the administrator named.
        want: KeyHash,
    },
    /// The group authority is set already, with another key: every credential and group
    /// depends on it, so it never changes.
    GroupAuthoritySet,
    /// The service is already provisioned under another HID; there is one of each.
    OneService {
        /// `the MDMS` or `the head-end`.
        holder: &'static str,
        /// The HID it has.
        existing: Hid,
    },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::HidTaken {
                hid,
                holder,
                wanted,
            } => write!(f, "HID {hid} is {holder}'s, not {wanted}'s")?,
            Conflict::Revoked(hid) => write!(
                f,
                "meter {hid} is revoked; a revoked HID cannot be provisioned again"
            )?,
            Conflict::BindingFixed { subject, have } => write!(
                f,
                "{subject} is already bound to the key with hash {have}; a binding cannot be changed"
            )?,
            Conflict::RegisteredOtherKey {
                subject,
                have,
                want,
            } => {
                write!(
                    f,
                    "{subject} registered without a bound key, and the key it registered has hash {have}, not {want}; "
                )?;
                match subject {
                    Subject::Service { holder, .. } => {
                        write!(f, "if that registration was not {holder}'s, rotate its key")?
                    }
                    _ => write!(f, "if that registration was not the meter's, revoke it")?,
                }
            }
            Conflict::GroupAuthoritySet => f.write_str(
                "the group authority is set already, with another key; every credential and group depends on it, so it cannot change",
            )?,
            Conflict::OneService { holder, existing } => write!(
                f,
                "{holder} is already provisioned as {existing}; only one is supported"
            )?,
        }
        f.write_str(" (nothing was provisioned)")
    }
}

impl std::error::Error for Conflict {}

impl From<Error> for ContractError {
    fn from(e: Error) -> Self {
        ContractError::new(e.status(), format!("{}: {e}", e.code()))
    }
}
