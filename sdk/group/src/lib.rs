//! Group keys for the meters of a neighbourhood or microgrid and their head-end: MLS
//! (RFC 9420) through `mls-rs`, with credentials that bind a member's MLS signature key to its
//! HID, and a deterministic delivery-service observer for the ledger.
//!
//! - [`GroupAuthority`] (the Utility) issues [`HidCredential`]s; members and the observer hold
//!   its [`AuthorityPublicKey`] and validate leaves with [`HidIdentityProvider`].
//! - [`GroupMember`]: create, add, remove, update, send, process, join, epoch authenticator.
//!   Commits and proposals are PublicMessages; application data are PrivateMessages signed by
//!   the sender.
//! - [`Observer`]: validates a commit for the current epoch against the stored public group
//!   state and a [`MembershipPolicy`], with the transaction time passed in.
//!
//! Randomness comes from the crypto provider (`getrandom`), not from the caller: mls-rs draws
//! its own. Time is always the caller's.
#![forbid(unsafe_code)]

mod credential;
mod error;
mod member;
mod observer;

pub use bcami_sdk::Hid;
pub use credential::{
    AuthorityPublicKey, CredentialError, GroupAuthority, HID_CREDENTIAL_TYPE, HidCredential,
    HidIdentityProvider, MemberKeys,
};
pub use error::GroupError;
pub use member::{CommitOut, GroupMember, KEY_PACKAGE_LIFETIME, Processed};
pub use observer::{
    Added, CommitReport, MembershipPolicy, ObservedGroup, Observer, message_epoch, state_epoch,
    welcome_key_package_refs,
};

/// The one cipher suite: MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (RFC 9420 §17.1, value 1).
pub const CIPHER_SUITE: mls_rs::CipherSuite = mls_rs::CipherSuite::CURVE25519_AES128;

/// Seconds since the Unix epoch, supplied by the caller (the transaction time on the ledger).
pub type Timestamp = u64;
