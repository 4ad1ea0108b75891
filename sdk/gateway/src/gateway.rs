//! The connection: [`Gateway`] → [`Network`] → [`Contract`], deadlines and retries.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fabric_protos::gateway::gateway_client::GatewayClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::blocks::{BlockEventStream, FilteredBlockEventStream};
use crate::error::{Error, Stage, StageError};
use crate::events::{ChaincodeEventStream, Checkpoint};
use crate::identity::{Identity, Signer};
use crate::transaction::{BlockEventsRequest, Commit, EventsRequest, ProposalBuilder};
use crate::wire::StartAt;

/// How long each stage may take before it fails with `DeadlineExceeded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Opening the connection.
    pub connect: Duration,
    /// One `Evaluate` call.
    pub evaluate: Duration,
    /// One `Endorse` call.
    pub endorse: Duration,
    /// One `Submit` call.
    pub submit: Duration,
    /// One `CommitStatus` call (it blocks until the transaction commits).
    pub commit_status: Duration,
}

impl Default for Deadlines {
    /// The fabric-gateway clients' defaults: evaluate 5 s, endorse 15 s, submit 5 s, commit
    /// status 1 min; connect 10 s.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            evaluate: Duration::from_secs(5),
            endorse: Duration::from_secs(15),
            submit: Duration::from_secs(5),
            commit_status: Duration::from_secs(60),
        }
    }
}

/// Bounded retries with exponential backoff, for failures that are safe to retry: `UNAVAILABLE`
/// on every stage, and read conflicts on idempotent transactions (re-endorsed with a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (at least 1).
    pub max_attempts: u32,
    /// The wait before the second attempt.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait after failed attempt number `attempt` (1-based): `initial × 2^(attempt-1)`,
    /// capped at `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }

    /// How many times a call is tried in all (at least once).
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
}

/// Builds a [`Gateway`].
#[derive(Clone)]
pub struct GatewayBuilder {
    address: String,
    identity: Identity,
    signer: Option<Arc<dyn Signer>>,
    tls_ca_pem: Option<Vec<u8>>,
    server_name: Option<String>,
    deadlines: Deadlines,
    retry: RetryPolicy,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("address", &self.address)
            .field("identity", &self.identity)
            .field("signer", &self.signer.is_some())
            .field("tls", &self.tls_ca_pem.is_some())
            .field("server_name", &self.server_name)
            .field("deadlines", &self.deadlines)
            .field("retry", &self.retry)
            .finish()
    }
}

impl GatewayBuilder {
    /// Signs every request with `signer`. Without one, each request must be signed offline
    /// (its `digest()` out, `set_signature()` in) before it is sent.
    pub fn signer(mut self, signer: impl Signer + 'static) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// Uses TLS, trusting this PEM root CA. Without a CA the connection is plaintext
    /// (test doubles only: Fabric peers require TLS).
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca_pem = Some(pem.into());
        self
    }

    /// Reads the TLS root CA from a PEM file.
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`] if the file cannot be read.
    pub fn tls_ca_file(self, path: &Path) -> Result<Self, Error> {
        let pem = std::fs::read(path).map_err(|e| Error::InvalidEndpoint {
            endpoint: self.address.clone(),
            reason: format!("cannot read TLS CA {}: {e}", path.display()),
        })?;
        Ok(self.tls_ca_pem(pem))
    }

    /// Overrides the TLS server name (default: the host part of the address).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Per-stage deadlines.
    pub fn deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// Retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn endpoint(&self) -> Result<Endpoint, Error> {
        let invalid = |reason: String| Error::InvalidEndpoint {
            endpoint: self.address.clone(),
            reason,
        };
        let (scheme, authority) = match self.address.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            None => (
                if self.tls_ca_pem.is_some() {
                    "https"
                } else {
                    "http"
                },
                self.address.as_str(),
            ),
        };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{authority}"))
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(self.deadlines.connect)
            .tcp_nodelay(true);
        if let Some(ca) = &self.tls_ca_pem {
            let host = match &self.server_name {
                Some(name) => name.clone(),
                None => host_of(authority).ok_or_else(|| invalid("no host".into()))?,
            };
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name(host);
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| invalid(error_chain(&e)))?;
        }
        Ok(endpoint)
    }

    /// Connects now; fails with [`Error::Connect`] naming the endpoint if the peer cannot be
    /// reached. The connection is re-established automatically after later failures.
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`] or [`Error::Connect`].
    pub async fn connect(self) -> Result<Gateway, Error> {
        let endpoint = self.endpoint()?;
        let connect = endpoint.connect();
        let channel = match tokio::time::timeout(self.deadlines.connect, connect).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(e)) => {
                return Err(Error::Connect {
                    endpoint: self.address,
                    reason: error_chain(&e),
                });
            }
            Err(_) => {
                return Err(Error::Connect {
                    endpoint: self.address,
                    reason: format!("no connection within {:?}", self.deadlines.connect),
                });
            }
        };
        Ok(self.finish(channel))
    }

    /// Returns at once and connects on first use; an unreachable peer then fails the first
    /// call with `UNAVAILABLE` at that call's stage.
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`].
    pub fn connect_lazy(self) -> Result<Gateway, Error> {
        let channel = self.endpoint()?.connect_lazy();
        Ok(self.finish(channel))
    }

    fn finish(self, channel: Channel) -> Gateway {
        let client = GatewayClient::new(channel.clone())
            .max_decoding_message_size(100 * 1024 * 1024)
            .max_encoding_message_size(100 * 1024 * 1024);
        Gateway {
            inner: Arc::new(Inner {
                client,
                channel,
                creator: self.identity.creator(),
                endpoint: self.address,
                identity: self.identity,
                signer: self.signer,
                deadlines: self.deadlines,
                retry: self.retry,
            }),
        }
    }
}

/// `host` of `host:port`, `[v6]:port` or `host`.
fn host_of(authority: &str) -> Option<String> {
    let authority = authority.split('/').next()?;
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map(|(h, _)| h.to_owned());
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    (!host.is_empty()).then(|| host.to_owned())
}

/// An error and all its causes, on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub(crate) struct Inner {
    pub(crate) client: GatewayClient<Channel>,
    /// The same connection, for the peer's Deliver service (block events).
    pub(crate) channel: Channel,
    pub(crate) endpoint: String,
    pub(crate) identity: Identity,
    pub(crate) creator: Vec<u8>,
    pub(crate) signer: Option<Arc<dyn Signer>>,
    pub(crate) deadlines: Deadlines,
    pub(crate) retry: RetryPolicy,
}

impl Inner {
    /// Signs `message` (the exact bytes sent) with the configured signer; `Ok(None)` when
    /// signing is offline.
    pub(crate) fn sign(
        &self,
        stage: Stage,
        transaction_id: &str,
        message: &[u8],
    ) -> Result<Option<Vec<u8>>, Error> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        signer
            .sign_message(message)
            .map(Some)
            .map_err(|source| Error::Sign {
                stage,
                transaction_id: transaction_id.to_owned(),
                source,
            })
    }

    /// One unary call with a deadline; what [`StageError::is_retryable`] allows (an unreachable
    /// node, mismatched endorsements) is tried again per the retry policy.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        stage: Stage,
        transaction_id: Option<&str>,
        deadline: Duration,
        mut call: F,
    ) -> Result<T, Error>
    where
        F: FnMut(GatewayClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let attempts = self.retry.attempts();
        let mut attempt = 1;
        loop {
            let started = tokio::time::Instant::now();
            let expired = || {
                tonic::Status::deadline_exceeded(format!(
                    "{stage} deadline of {deadline:?} expired"
                ))
            };
            let status = match tokio::time::timeout(deadline, call(self.client.clone(), deadline))
                .await
            {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                // Tonic's own request timeout reports CANCELLED; a deadline is a deadline.
                Ok(Err(status))
                    if status.code() == tonic::Code::Cancelled && started.elapsed() >= deadline =>
                {
                    expired()
                }
                Ok(Err(status)) => status,
                Err(_) => expired(),
            };
            let error = StageError::from_status(stage, transaction_id, &self.endpoint, &status);
            if !error.is_retryable() || attempt >= attempts {
                return Err(Error::from_stage(error));
            }
            let wait = self.retry.backoff(attempt);
            tracing::debug!(%error, attempt, ?wait, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// A connection to one peer's Gateway service, as one identity.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("endpoint", &self.inner.endpoint)
            .field("identity", &self.inner.identity)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Starts building a gateway for the peer at `address` (`host:port`), acting as `identity`.
    pub fn builder(address: impl Into<String>, identity: Identity) -> GatewayBuilder {
        GatewayBuilder {
            address: address.into(),
            identity,
            signer: None,
            tls_ca_pem: None,
            server_name: None,
            deadlines: Deadlines::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// The peer address.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The client identity.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// A channel.
    pub fn network(&self, channel: impl Into<String>) -> Network {
        Network {
            gateway: self.clone(),
            channel: channel.into(),
        }
    }
}

/// A channel, reached through a [`Gateway`].
#[derive(Debug, Clone)]
pub struct Network {
    pub(crate) gateway: Gateway,
    pub(crate) channel: String,
}

impl Network {
    /// The channel name.
    pub fn name(&self) -> &str {
        &self.channel
    }

    /// A chaincode on this channel.
    pub fn contract(&self, chaincode: impl Into<String>) -> Contract {
        Contract {
            network: self.clone(),
            chaincode: chaincode.into(),
        }
    }

    /// A handle on the commit of `transaction_id` as this gateway's peer sees it: a signed
    /// `CommitStatusRequest`. It lets a client that submitted through one organization's peer
    /// wait until another organization's peer has committed the transaction too, before it
    /// reads there (each peer commits blocks on its own schedule).
    ///
    /// # Errors
    /// [`Error::Sign`] from the signer.
    pub fn commit(&self, transaction_id: &str) -> Result<Commit, Error> {
        Commit::new(self, transaction_id)
    }

    /// A chaincode-events request for `chaincode`, starting at `start`. Sign it offline or let
    /// the gateway's signer do it, then [`EventsRequest::open`] it.
    ///
    /// # Errors
    /// [`Error::Sign`] from the signer.
    pub fn chaincode_events_request(
        &self,
        chaincode: &str,
        start: StartAt,
    ) -> Result<EventsRequest, Error> {
        EventsRequest::new(self, chaincode, start)
    }

    /// A Deliver request for block or filtered-block events from `start`. Sign it offline or
    /// let the gateway's signer do it, then [`BlockEventsRequest::open`] or
    /// [`BlockEventsRequest::open_filtered`] it.
    ///
    /// # Errors
    /// [`Error::Sign`] from the signer.
    pub fn block_events_request(&self, start: StartAt) -> Result<BlockEventsRequest, Error> {
        BlockEventsRequest::new(self, &start)
    }

    /// Opens a stream of committed blocks through the gateway peer's Deliver service (the
    /// official clients' `BlockEvents`). It starts at the checkpoint's block when the
    /// checkpoint has recorded anything ([`Checkpoint::record_block`] after processing a
    /// block), else at `start`. The request is sent now.
    ///
    /// # Errors
    /// [`Error::Unsigned`] without a signer; [`Error::Sign`].
    pub fn block_events(
        &self,
        start: StartAt,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<BlockEventStream, Error> {
        let start = checkpoint.and_then(Checkpoint::start_at).unwrap_or(start);
        self.block_events_request(start)?.open()
    }

    /// Opens a stream of filtered blocks (transaction ids, validation codes, chaincode event
    /// names), as [`Self::block_events`] does for full blocks (the official clients'
    /// `FilteredBlockEvents`).
    ///
    /// # Errors
    /// [`Error::Unsigned`] without a signer; [`Error::Sign`].
    pub fn filtered_block_events(
        &self,
        start: StartAt,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<FilteredBlockEventStream, Error> {
        let start = checkpoint.and_then(Checkpoint::start_at).unwrap_or(start);
        self.block_events_request(start)?.open_filtered()
    }

    /// Opens a chaincode event stream. It starts at the checkpoint when the checkpoint has
    /// recorded anything, else at `start`. Failures to reach the peer are reported by the
    /// stream's first [`ChaincodeEventStream::next`].
    ///
    /// # Errors
    /// [`Error::Unsigned`] without a signer; [`Error::Sign`].
    pub fn chaincode_events(
        &self,
        chaincode: &str,
        start: StartAt,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<ChaincodeEventStream, Error> {
        let start = checkpoint.and_then(Checkpoint::start_at).unwrap_or(start);
        self.chaincode_events_request(chaincode, start)?.open()
    }
}

/// A chaincode on a channel: where transactions are proposed.
#[derive(Debug, Clone)]
pub struct Contract {
    pub(crate) network: Network,
    pub(crate) chaincode: String,
}

impl Contract {
    /// The chaincode name.
    pub fn name(&self) -> &str {
        &self.chaincode
    }

    /// The channel this chaincode is on.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Starts a transaction proposal for `function`.
    pub fn proposal(&self, function: impl Into<String>) -> ProposalBuilder {
        ProposalBuilder::new(self.clone(), function.into())
    }

    /// Evaluates `function(args)` on one peer (a query: nothing is ordered or committed).
    ///
    /// # Errors
    /// [`Error::Evaluate`] and its chaincode message, among others.
    pub async fn evaluate<I, A>(&self, function: &str, args: I) -> Result<Vec<u8>, Error>
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        self.proposal(function).args(args).evaluate().await
    }

    /// Submits `function(args)` and waits until it commits as VALID.
    ///
    /// # Errors
    /// The failing stage's error, or [`Error::Commit`] with the validation code.
    pub async fn submit<I, A>(
        &self,
        function: &str,
        args: I,
    ) -> Result<crate::transaction::Committed, Error>
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        self.proposal(function).args(args).submit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
        };
        let waits: Vec<u128> = (1..=6).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 700, 700, 700]);
        assert_eq!(p.backoff(200), Duration::from_millis(700));
        assert_eq!(RetryPolicy::none().attempts(), 1);
        let zero = RetryPolicy {
            max_attempts: 0,
            ..p
        };
        assert_eq!(zero.attempts(), 1);
    }

    #[test]
    fn host_is_taken_from_the_address() {
        assert_eq!(host_of("127.0.0.1:7030").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("peer0.org1:7051").as_deref(), Some("peer0.org1"));
        assert_eq!(host_of("[::1]:7051").as_deref(), Some("::1"));
        assert_eq!(host_of("localhost").as_deref(), Some("localhost"));
        assert_eq!(host_of(":7051"), None);
    }
}
