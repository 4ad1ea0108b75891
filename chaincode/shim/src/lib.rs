#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod context;
mod contract;
mod driver;
mod error;
mod identity;
mod keys;
pub mod memory;
mod peer;
pub mod protocol;
pub mod server;
#[cfg(feature = "testing")]
pub mod server_binary;
mod stub;
#[cfg(feature = "testing")]
pub mod testing;

pub use context::ContextError;
pub use contract::{Args, Contract, Router};
pub use driver::{Outbound, StreamError, serve_stream};
pub use error::{ContractError, ErrorStatus, InvalidErrorStatus, StubError};
pub use identity::{Creator, IdentityError, NodeRole, X509Identity};
pub use keys::{KeyRange, composite_key, split_composite_key};
pub use stub::{
    Cursor, Events, Identity, KeyModification, KeyValue, Page, Query, QueryIter, State, Stub,
    Timestamp, TxContext, TxInfo,
};
