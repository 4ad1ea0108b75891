//! Errors: what a stub call, a contract, and the server can fail with.

use std::fmt;

/// A stub call failed. Contract code usually propagates it with `?` (it becomes a 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StubError {
    /// The key is not acceptable to Fabric.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The offending key, as given.
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A composite-key component is not acceptable.
    #[error("invalid composite key component {component:?}: {reason}")]
    InvalidCompositeKey {
        /// The offending component.
        component: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The peer answered the request with ERROR.
    #[error("{request} failed at the peer: {message}")]
    Peer {
        /// The request type, e.g. `GET_STATE`.
        request: &'static str,
        /// The peer's error text.
        message: String,
    },
    /// The peer answered with bytes that do not decode as the expected message.
    #[error("malformed {what} from the peer: {detail}")]
    Malformed {
        /// What we tried to decode.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// Another request of this transaction is still waiting for its reply; Fabric would silently
    /// drop the second one, so the shim refuses to send it.
    #[error("another request of this transaction is still outstanding")]
    RequestOutstanding,
    /// The stream to the peer is gone (or the transaction was already completed).
    #[error("the connection to the peer is closed")]
    Disconnected,
    /// Fabric allows paginated queries only in read-only transactions.
    #[error("a paginated query is not allowed after a write in the same transaction")]
    PaginationAfterWrite,
    /// Fabric allows paginated queries only in read-only transactions.
    #[error("a write is not allowed after a paginated query in the same transaction")]
    WriteAfterPagination,
    /// An event needs a name.
    #[error("event name must not be empty")]
    EmptyEventName,
}

/// The event a transaction sets, checked by the rule both stubs share (Fabric's shim refuses an
/// empty name), so the in-memory stub cannot drift from the peer one.
pub(crate) fn checked_event(name: &str, payload: &[u8]) -> Result<(String, Vec<u8>), StubError> {
    if name.is_empty() {
        return Err(StubError::EmptyEventName);
    }
    Ok((name.to_owned(), payload.to_vec()))
}

/// An HTTP-like status in 400..=599 carried by a [`ContractError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorStatus(u16);

impl ErrorStatus {
    /// 400: the caller sent something wrong.
    pub const BAD_REQUEST: Self = Self(400);
    /// 403: the caller may not do this.
    pub const FORBIDDEN: Self = Self(403);
    /// 404: the thing asked for does not exist.
    pub const NOT_FOUND: Self = Self(404);
    /// 409: the request conflicts with ledger state (e.g. already registered).
    pub const CONFLICT: Self = Self(409);
    /// 500: the chaincode failed.
    pub const INTERNAL: Self = Self(500);

    /// The numeric status.
    pub fn code(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for ErrorStatus {
    type Error = InvalidErrorStatus;
    fn try_from(code: u16) -> Result<Self, Self::Error> {
        if (400..=599).contains(&code) {
            Ok(Self(code))
        } else {
            Err(InvalidErrorStatus(code))
        }
    }
}

impl fmt::Display for ErrorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A status outside 400..=599 was offered as an error status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("error status must be in 400..=599, got {0}")]
pub struct InvalidErrorStatus(pub u16);

/// A contract refused or failed a transaction. The peer sees `COMPLETED` with this status and
/// message; the client (peer CLI, Gateway) shows the message. Nothing is endorsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ContractError {
    status: ErrorStatus,
    message: String,
}

impl ContractError {
    /// An error with an explicit status.
    pub fn new(status: ErrorStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorStatus::BAD_REQUEST, message)
    }
    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorStatus::FORBIDDEN, message)
    }
    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorStatus::NOT_FOUND, message)
    }
    /// 409 Conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorStatus::CONFLICT, message)
    }
    /// 500 Internal error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorStatus::INTERNAL, message)
    }
    /// The status sent to the peer.
    pub fn status(&self) -> ErrorStatus {
        self.status
    }
    /// The message the client sees.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StubError> for ContractError {
    fn from(e: StubError) -> Self {
        Self::internal(e.to_string())
    }
}
