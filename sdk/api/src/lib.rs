#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod anon;
mod call;
mod config;
mod error;
mod function;
mod group;
mod key_hash;
pub mod limits;
pub mod records;
mod request;
mod responses;
mod submit;

pub use anon::{
    ANON_ROLLOVER_MS, AnonAggregate, AnonBatchAggregate, AnonCredentialArg, AnonCredentialQuery,
    AnonDoubleReport, AnonInput, AnonIssuerKeyArg, AnonIssuerRecord, AnonJoinRecord, AnonNymRecord,
    AnonPeriodQuery, AnonRejectReason, AnonRejected, AnonSubmitResponse, AnonTraceArg,
    AnonTraceRecord, ConcentratorAggregate, MAX_ANON_BATCH, MAX_ANON_BATCH_ARG_BYTES,
    MAX_ANON_KEY_BASE64, MAX_ANON_PERIOD_SECS, MAX_ANON_READING_BASE64, MAX_ANON_READING_BYTES,
    MIN_ANON_PERIOD_SECS, anon_join_nonce, anon_reading_hash, parse_anon_reading,
};
pub use call::{
    ArgError, Call, MetersQuery, ReadingInput, ReadingsQuery, parse_hid, parse_reading,
};
pub use config::{Config, ConfigUpdate, NodeOu, Placement, RoleRule, Window};
pub use error::ErrorCode;
pub use function::{Function, Role};
pub use group::{
    DEFAULT_GROUP_COMMITS_PAGE, GROUP_CREDENTIAL_LEN, GROUP_KEY_LEN, GroupAuthorityRecord,
    GroupCall, GroupCommitRecord, GroupCommitResponse, GroupCommitsPage, GroupCredentialRecord,
    GroupId, GroupMemberView, GroupRecord, GroupRemovalRecord, GroupRequest, GroupWelcomeRecord,
    KeyPackageRecord, MAX_GROUP_COMMITS_PAGE, MAX_GROUP_ID_LEN, MAX_GROUP_MEMBERS,
    MAX_GROUP_MESSAGE_BYTES, MAX_KEY_PACKAGE_BYTES, MAX_KEY_PACKAGES, PublishedKeyPackages,
    hid_list,
};
pub use key_hash::{KeyHash, from_hex, to_hex};
pub use limits::*;
pub use records::{
    HeadEndKeyVersionRecord, HeadEndRecord, KeyVersionRecord, MdmsKeyVersionRecord, MdmsRecord,
    MdmsStatus, MeterRecord, MeterStatus, ServiceKey, ServiceKeyVersionRecord, ServiceRecord,
    ServiceStatus,
};
pub use request::{MetersRequest, ProvisionEntry, ReadingsRequest, Request};
pub use responses::{
    Counts, HeadEndView, MdmsPresence, MdmsView, MeterCounts, MeterView, MetersPage,
    ProvisionResponse, ReadingsPage, ServiceView, StoredReading,
};
pub use submit::{
    EventReading, READINGS_EVENT, ReadingOutcome, ReadingsEvent, RejectReason, RejectedReading,
    Rejection, ResponseMismatch, SubmitResponse,
};
