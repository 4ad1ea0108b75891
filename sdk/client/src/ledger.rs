//! The one seam between a client and a ledger: submit or evaluate a contract function as a
//! caller. Implementations: Fabric through the Gateway ([`crate::Fabric`]), and meter-sim's
//! in-process ledger running the contract itself.

use std::fmt;
use std::future::Future;

use bcami_api::{ErrorCode, Function};

/// Who is calling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The utility's administrator: provisions and revokes.
    Administrator,
    /// Data concentrator number `n` (0-based); concentrators may share client identities.
    Concentrator(usize),
    /// The MDMS: registers its key and reads readings.
    Mdms,
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Administrator => f.write_str("administrator"),
            Caller::Concentrator(n) => write!(f, "concentrator {n}"),
            Caller::Mdms => f.write_str("MDMS"),
        }
    }
}

/// The contract refused the call: its status, its code and its message, verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Status code (400–599), if known.
    pub status: Option<i32>,
    /// The contract's code, read from the start of its message (`code: explanation`); `None`
    /// if the message does not start with one.
    pub code: Option<ErrorCode>,
    /// The contract's message.
    pub message: String,
}

impl Rejection {
    /// A refusal with this status and message.
    pub fn new(status: Option<i32>, message: String) -> Self {
        Self {
            status,
            code: ErrorCode::split(&message).map(|(code, _)| code),
            message,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "contract refused ({status}): {}", self.message),
            None => write!(f, "contract refused: {}", self.message),
        }
    }
}

impl std::error::Error for Rejection {}

/// The outcome of a call that reached the contract: its result, or its refusal.
pub type Outcome = Result<Vec<u8>, Rejection>;

/// A failure to reach the contract at all (transport, endorsement, commit), from the ledger
/// implementation, with its own context.
pub type LedgerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A ledger that runs the BC-AMI contract.
pub trait Ledger: Send + Sync + 'static {
    /// `embedded` or `fabric`.
    fn mode(&self) -> &'static str;

    /// Distinct client identities the concentrators use.
    fn concentrator_identities(&self) -> usize;

    /// Runs `function` as a transaction and waits until it commits.
    fn submit(
        &self,
        caller: Caller,
        function: Function,
        args: Vec<String>,
    ) -> impl Future<Output = Result<Outcome, LedgerError>> + Send;

    /// Runs `function` as a query (nothing is written).
    fn evaluate(
        &self,
        caller: Caller,
        function: Function,
        args: Vec<String>,
    ) -> impl Future<Output = Result<Outcome, LedgerError>> + Send;
}
