#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod fabric;
mod ledger;

pub use client::{Client, Error, MeterKeys, reasons};
pub use fabric::{ConnectError, Fabric, Org, Settings};
pub use ledger::{Caller, Ledger, LedgerError, Outcome, Rejection};
