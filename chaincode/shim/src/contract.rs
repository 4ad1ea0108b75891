//! The contract trait and a function-name router.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::ContractError;
use crate::stub::Stub;

/// A chaincode. `invoke` runs synchronously on a worker thread, once per transaction; it must be
/// deterministic (no clocks, randomness or map iteration order in outputs) because every
/// endorser runs it and their results must match.
pub trait Contract: Send + Sync + 'static {
    /// Execute the transaction described by `stub.tx()`. `Ok(payload)` becomes status 200; an
    /// error becomes its status and message, and nothing is endorsed.
    fn invoke(&self, stub: &mut dyn Stub) -> Result<Vec<u8>, ContractError>;
}

impl<C: Contract + ?Sized> Contract for Arc<C> {
    fn invoke(&self, stub: &mut dyn Stub) -> Result<Vec<u8>, ContractError> {
        (**self).invoke(stub)
    }
}

/// The arguments after the function name, with typed accessors that fail with 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    function: String,
    args: Vec<Vec<u8>>,
}

impl Args {
    /// Wrap raw arguments.
    pub fn new(function: &str, args: Vec<Vec<u8>>) -> Self {
        Self {
            function: function.to_owned(),
            args,
        }
    }
    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.args.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
    /// Fail with 400 unless there are exactly `n` arguments.
    pub fn expect_len(&self, n: usize) -> Result<(), ContractError> {
        if self.args.len() == n {
            Ok(())
        } else {
            Err(ContractError::bad_request(format!(
                "{} expects {n} argument(s), got {}",
                self.function,
                self.args.len()
            )))
        }
    }
    /// Argument `i` as raw bytes (400 if missing).
    pub fn bytes(&self, i: usize) -> Result<&[u8], ContractError> {
        self.args.get(i).map(Vec::as_slice).ok_or_else(|| {
            ContractError::bad_request(format!("{}: missing argument {}", self.function, i + 1))
        })
    }
    /// Argument `i` as UTF-8 text (400 if missing or not UTF-8).
    pub fn str(&self, i: usize) -> Result<&str, ContractError> {
        std::str::from_utf8(self.bytes(i)?).map_err(|_| {
            ContractError::bad_request(format!(
                "{}: argument {} is not UTF-8",
                self.function,
                i + 1
            ))
        })
    }
    /// Argument `i` parsed with `FromStr` (400 naming the argument if it does not parse).
    pub fn parse<T: std::str::FromStr>(&self, i: usize) -> Result<T, ContractError> {
        let s = self.str(i)?;
        s.parse().map_err(|_| {
            ContractError::bad_request(format!(
                "{}: argument {} ({s:?}) is not a valid {}",
                self.function,
                i + 1,
                std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("value")
            ))
        })
    }
    /// All arguments.
    pub fn all(&self) -> &[Vec<u8>] {
        &self.args
    }
}

type Handler = Box<dyn Fn(&mut dyn Stub, &Args) -> Result<Vec<u8>, ContractError> + Send + Sync>;

/// Dispatches on the function name. Unknown functions fail with 400 listing the known ones.
#[derive(Default)]
pub struct Router {
    routes: BTreeMap<String, Handler>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }
    /// Route `name` to `handler` (a later route with the same name replaces the earlier one).
    pub fn route<F>(mut self, name: &str, handler: F) -> Self
    where
        F: Fn(&mut dyn Stub, &Args) -> Result<Vec<u8>, ContractError> + Send + Sync + 'static,
    {
        self.routes.insert(name.to_owned(), Box::new(handler));
        self
    }
    /// The routed function names, sorted.
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("functions", &self.routes.keys())
            .finish()
    }
}

impl Contract for Router {
    fn invoke(&self, stub: &mut dyn Stub) -> Result<Vec<u8>, ContractError> {
        let tx = stub.tx();
        let args = Args::new(tx.function(), tx.args().to_vec());
        match self.routes.get(tx.function()) {
            Some(handler) => handler(stub, &args),
            None => Err(ContractError::bad_request(format!(
                "unknown function {:?}; known: {}",
                tx.function(),
                self.routes.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}
