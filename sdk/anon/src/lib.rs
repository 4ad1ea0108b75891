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
mod wire;

#[cfg(test)]
mod kat;

pub use backend::{Backend, Zk};
#[cfg(any(feature = "blst", test))]
pub use backend::Blst;
pub use error::{DecodeError, Error, Field, KeyHolderError, TraceError, VerifyError};
pub use hash::hash_to_g1;

/// The format version every message of this build writes and accepts (byte 1 of each message).
pub const FORMAT_VERSION: u8 = 1;
