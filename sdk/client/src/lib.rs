#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod anon;
mod client;
mod directory;
mod fabric;
mod group;
mod ledger;
pub mod mdms;
mod network;

pub use anon::{AnonError, AnonIssuer, AnonMeter, issuer_public_key, trace_context};
pub use client::{Client, Error, MeterKeys, reasons};
pub use directory::{LedgerDirectory, session_record};
pub use fabric::{ConnectError, Fabric, Settings};
pub use group::{GroupSyncError, lost_epoch};
pub use ledger::{Caller, Ledger, LedgerError, Outcome, Rejection};
pub use network::{Network, Orderer, Org, User, Users};
