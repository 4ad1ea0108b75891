#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connection;
pub mod directory;
pub mod frame;
pub mod net;

pub use connection::{
    ConnectionError, HeadEndConnection, HeadEndEvent, MeterConnection, MeterEvent,
};
pub use directory::SharedDirectory;
