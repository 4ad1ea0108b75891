#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]
#![warn(missing_docs)]

pub mod anon;
mod config;
mod contract;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
mod readings;
mod rules;
mod service;
pub mod state;
mod verify;

pub use contract::{BcAmi, contract};
pub use error::{Conflict, Error, Subject};
pub use readings::{Accepted, BatchOutcome, validate_batch};
pub use verify::{PreparedKey, Verifier, VerifierKind};
