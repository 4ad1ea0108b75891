#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod config;
mod contract;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod readings;
pub mod state;
mod verify;

pub use args::{
    ArgError, Call, DEFAULT_PAGE_SIZE, Function, MAX_BATCH, MAX_BATCH_ARG_BYTES, MAX_PAGE_SIZE,
    MAX_PROVISION, MAX_READING_BYTES, MetersQuery, ReadingInput, ReadingsQuery, parse_hid,
    parse_reading,
};
pub use config::{Config, ConfigUpdate, NodeOu, Placement, Role, RoleRule, Window};
pub use contract::{
    BcAmi, Counts, MdmsView, MeterCounts, MeterView, MetersPage, ProvisionResponse, ReadingsPage,
    StoredReading, allowed_roles, contract,
};
pub use error::Error;
pub use readings::{
    Accepted, BatchOutcome, EventReading, READINGS_EVENT, ReadingsEvent, RejectReason,
    RejectedReading, Rejection, SubmitResponse, validate_batch,
};
pub use verify::{PreparedKey, Verifier, VerifierKind};
