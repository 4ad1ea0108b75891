#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod backend;
mod bbs;
mod error;
mod hash;
mod issuer;
mod keyholder;
mod presentation;
mod report;
mod revocation;
mod trace;
mod wire;

#[cfg(test)]
mod kat;
#[cfg(test)]
mod tests;

#[cfg(any(feature = "blst", test))]
pub use backend::Blst;
pub use backend::{Backend, Zk};
pub use error::{DecodeError, Error, Field, KeyHolderError, TraceError, VerifyError};
pub use hash::hash_to_g1;
pub use issuer::{
    API_ID, Credential, IssuerPublicKey, IssuerSecretKey, JoinRequest, MeterCredential,
};
pub use keyholder::{KeyHolder, MIN_SECRET_ENTROPY, PseudonymCommitment, SoftwareKeyHolder};
pub use presentation::{Presentation, verify_batch};
pub use rand_core;
pub use report::{AnonReport, BASENAME_LEN, Period, ReportFlags};
pub use revocation::LeakedSecrets;
pub use trace::NonEqualityProof;

/// The format version every message of this build writes and accepts (byte 1 of each message).
pub const FORMAT_VERSION: u8 = 1;
