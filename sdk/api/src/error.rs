//! The stable codes of a refused call. The contract answers `status` with the message
//! `code: explanation`; clients read the code back with [`ErrorCode::split`].

use std::fmt;

/// Why the contract refused a whole call: a stable, machine-readable code with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the function name is not one of ours.
    UnknownFunction,
    /// 400: an argument is malformed.
    BadArgument,
    /// 400: a message's signature does not verify.
    BadSignature,
    /// 400: a message's timestamp is outside the window around the transaction timestamp.
    OutsideWindow,
    /// 400: a key rotation to the key already in use.
    SameKey,
    /// 403: the caller holds none of the roles the function needs.
    Forbidden,
    /// 404: the meter is not provisioned.
    UnknownMeter,
    /// 404: no MDMS is provisioned, or a different HID was given.
    UnknownMdms,
    /// 404: the MDMS has not registered its key.
    MdmsNotRegistered,
    /// 409: provisioning conflicts with what the ledger holds; nothing was written.
    ProvisionConflict,
    /// 409: the meter (or MDMS) already has a key.
    AlreadyRegistered,
    /// 409: the key offered is not the one bound at provisioning.
    KeyNotProvisioned,
    /// 409: the meter is revoked.
    Revoked,
    /// 409: the meter has no key yet.
    NotRegistered,
    /// 409: the timestamp is not after the last accepted one.
    Replayed,
    /// 409: an MDMS or head-end key rotation to a key it holds or held.
    KeyReused,
    /// 404: no head-end is provisioned, or a different HID was given.
    UnknownHeadEnd,
    /// 404: the head-end has not registered its key.
    HeadEndNotRegistered,
    // Anonymous readings (issue 15).
    /// 404: no issuer key is set for the credential epoch (or none at all).
    UnknownEpoch,
    /// 404: the meter has not requested a credential for the epoch.
    NotRequested,
    /// 409: an issuer key that does not roll the epoch forward, or changes the period length.
    EpochConflict,
    /// 404: no double report of this pseudonym in this period to trace.
    NoEvidence,
    // Group keys (issue 13).
    /// 404: the group does not exist.
    UnknownGroup,
    /// 404: no group authority is set.
    NoGroupAuthority,
    /// 409: a commit for an epoch that is not the group's current one (another commit landed
    /// first): fetch the commits, catch up, and commit again.
    StaleEpoch,
    /// 409: the group's membership policy refuses the commit (unauthorised add or removal, a key
    /// package not published or used already, a revoked member left in, the size cap).
    GroupPolicy,
    /// 400: an MLS message does not parse or does not verify against the group.
    BadGroupMessage,
    /// 500: ledger data written by the contract does not parse.
    CorruptState,
    /// 500: a ledger call failed.
    Stub,
    /// 500: a bug.
    Internal,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 30] = [
        ErrorCode::UnknownFunction,
        ErrorCode::BadArgument,
        ErrorCode::BadSignature,
        ErrorCode::OutsideWindow,
        ErrorCode::SameKey,
        ErrorCode::Forbidden,
        ErrorCode::UnknownMeter,
        ErrorCode::UnknownMdms,
        ErrorCode::MdmsNotRegistered,
        ErrorCode::ProvisionConflict,
        ErrorCode::AlreadyRegistered,
        ErrorCode::KeyNotProvisioned,
        ErrorCode::Revoked,
        ErrorCode::NotRegistered,
        ErrorCode::Replayed,
        ErrorCode::KeyReused,
        ErrorCode::UnknownHeadEnd,
        ErrorCode::HeadEndNotRegistered,
        // Anonymous readings (issue 15).
        ErrorCode::UnknownEpoch,
        ErrorCode::NotRequested,
        ErrorCode::EpochConflict,
        ErrorCode::NoEvidence,
        // Group keys (issue 13).
        ErrorCode::UnknownGroup,
        ErrorCode::NoGroupAuthority,
        ErrorCode::StaleEpoch,
        ErrorCode::GroupPolicy,
        ErrorCode::BadGroupMessage,
        ErrorCode::CorruptState,
        ErrorCode::Stub,
        ErrorCode::Internal,
    ];

    /// The code as it starts the message.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownFunction => "unknown_function",
            ErrorCode::BadArgument => "bad_argument",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::OutsideWindow => "outside_window",
            ErrorCode::SameKey => "same_key",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::UnknownMeter => "unknown_meter",
            ErrorCode::UnknownMdms => "unknown_mdms",
            ErrorCode::MdmsNotRegistered => "mdms_not_registered",
            ErrorCode::ProvisionConflict => "provision_conflict",
            ErrorCode::AlreadyRegistered => "already_registered",
            ErrorCode::KeyNotProvisioned => "key_not_provisioned",
            ErrorCode::Revoked => "revoked",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::Replayed => "replayed",
            ErrorCode::KeyReused => "key_reused",
            ErrorCode::UnknownHeadEnd => "unknown_head_end",
            ErrorCode::HeadEndNotRegistered => "head_end_not_registered",
            // Anonymous readings (issue 15).
            ErrorCode::UnknownEpoch => "unknown_epoch",
            ErrorCode::NotRequested => "not_requested",
            ErrorCode::EpochConflict => "epoch_conflict",
            ErrorCode::NoEvidence => "no_evidence",
            ErrorCode::UnknownGroup => "unknown_group",
            ErrorCode::NoGroupAuthority => "no_group_authority",
            ErrorCode::StaleEpoch => "stale_epoch",
            ErrorCode::GroupPolicy => "group_policy",
            ErrorCode::BadGroupMessage => "bad_group_message",
            ErrorCode::CorruptState => "corrupt_state",
            ErrorCode::Stub => "stub",
            ErrorCode::Internal => "internal",
        }
    }

    /// The status the peer reports with it.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::UnknownFunction
            | ErrorCode::BadArgument
            | ErrorCode::BadSignature
            | ErrorCode::OutsideWindow
            | ErrorCode::SameKey => 400,
            ErrorCode::Forbidden => 403,
            ErrorCode::UnknownMeter
            | ErrorCode::UnknownMdms
            | ErrorCode::MdmsNotRegistered
            | ErrorCode::UnknownHeadEnd
            | ErrorCode::HeadEndNotRegistered => 404,
            // Anonymous readings (issue 15).
            ErrorCode::UnknownEpoch | ErrorCode::NotRequested | ErrorCode::NoEvidence => 404,
            ErrorCode::EpochConflict => 409,
            // Group keys (issue 13).
            ErrorCode::UnknownGroup | ErrorCode::NoGroupAuthority => 404,
            ErrorCode::StaleEpoch | ErrorCode::GroupPolicy => 409,
            ErrorCode::BadGroupMessage => 400,
            ErrorCode::ProvisionConflict
            | ErrorCode::AlreadyRegistered
            | ErrorCode::KeyNotProvisioned
            | ErrorCode::Revoked
            | ErrorCode::NotRegistered
            | ErrorCode::Replayed
            | ErrorCode::KeyReused => 409,
            ErrorCode::CorruptState | ErrorCode::Stub | ErrorCode::Internal => 500,
        }
    }

    /// The code named `text`, if any.
    pub fn from_name(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// A contract message `code: explanation` split into its code and explanation; `None` if it
    /// does not start with one of ours (e.g. an error from the peer rather than the contract).
    pub fn split(message: &str) -> Option<(ErrorCode, &str)> {
        let (code, rest) = message.split_once(": ")?;
        Some((ErrorCode::from_name(code)?, rest))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_split_messages() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
            assert!(matches!(code.status(), 400 | 403 | 404 | 409 | 500));
        }
        assert_eq!(
            ErrorCode::split("replayed: timestamp 5 is not after 6"),
            Some((ErrorCode::Replayed, "timestamp 5 is not after 6"))
        );
        assert_eq!(ErrorCode::split("chaincode response 500, boom"), None);
        assert_eq!(ErrorCode::split("replayedx: y"), None);
        assert_eq!(ErrorCode::Forbidden.status(), 403);
    }
}
