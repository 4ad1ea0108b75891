#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod contract;
mod error;
mod identity;
mod keys;
pub mod memory;
mod stub;

pub use contract::{Args, Contract, Router};
pub use error::{ContractError, ErrorStatus, InvalidErrorStatus, StubError};
pub use identity::{Creator, IdentityError, NodeRole, X509Identity};
pub use keys::{KeyRange, composite_key, split_composite_key};
pub use stub::{
    Cursor, Events, Identity, KeyModification, KeyValue, Page, Query, QueryIter, State, Stub,
    Timestamp, TxContext, TxInfo,
};
