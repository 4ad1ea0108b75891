#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blocks;
mod error;
mod events;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod identity;
mod transaction;
mod wire;

pub use blocks::{
    Block, BlockEventStream, BlockTransaction, Blocks, DeliverEvents, DeliverKind, FilteredBlock,
    FilteredBlockEventStream, FilteredBlocks, FilteredTransaction,
};
pub use error::{
    ChaincodeError, Error, ErrorDetail, Stage, StageError, ValidationCode, encode_details,
};
pub use events::{ChaincodeEvent, ChaincodeEventStream, Checkpoint, CheckpointError};
pub use gateway::{Contract, Deadlines, Gateway, GatewayBuilder, Network, RetryPolicy};
pub use identity::{
    Digest32, Ed25519Signer, Identity, IdentityError, MspCredentials, MspSigner, P256Signer,
    SignError, Signer, load_msp, sha256,
};
pub use transaction::{
    BlockEventsRequest, Commit, CommitStatus, Committed, EventsRequest, Proposal, ProposalBuilder,
    SubmittedTransaction, Transaction,
};
pub use wire::StartAt;

/// The gRPC status code carried by [`StageError::code`].
pub use tonic::Code;
