//! The transaction flow: [`Proposal`] → [`Transaction`] → [`Commit`], each step a separate,
//! retryable call, each signable offline.

use std::collections::HashMap;
use std::time::SystemTime;

use fabric_protos::common::Envelope;
use fabric_protos::gateway::{
    EndorseRequest, EvaluateRequest, SignedChaincodeEventsRequest, SignedCommitStatusRequest,
    SubmitRequest,
};
use fabric_protos::protos::SignedProposal;
use rand_core::{OsRng, RngCore};

use crate::blocks::{BlockEventStream, FilteredBlockEventStream};
use crate::error::{Error, Stage, ValidationCode};
use crate::events::ChaincodeEventStream;
use crate::gateway::{Contract, Deadlines, Inner, Network};
use crate::identity::{Digest32, sha256};
use crate::wire::{self, NONCE_LEN, ProposalSpec, StartAt};

fn now() -> prost_types::Timestamp {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        // Always < 1e9, so it fits.
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}

/// Describes a transaction invocation; builds fresh [`Proposal`]s from it (each with a new nonce
/// and so a new transaction id), which is what makes read-conflict retries possible.
#[derive(Debug, Clone)]
pub struct ProposalBuilder {
    contract: Contract,
    function: String,
    args: Vec<Vec<u8>>,
    transient: HashMap<String, Vec<u8>>,
    organizations: Vec<String>,
    idempotent: bool,
    deadlines: Option<Deadlines>,
}

impl ProposalBuilder {
    pub(crate) fn new(contract: Contract, function: String) -> Self {
        Self {
            contract,
            function,
            args: Vec::new(),
            transient: HashMap::new(),
            organizations: Vec::new(),
            idempotent: false,
            deadlines: None,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<Vec<u8>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds private data passed to the chaincode but not recorded in the transaction.
    pub fn transient(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.transient.insert(key.into(), value.into());
        self
    }

    /// The endorsing organizations (the official clients' `endorsingOrganizations`): the
    /// gateway collects endorsements from peers of exactly these MSP ids instead of working
    /// them out from the endorsement policy; an evaluation runs on a peer of one of them.
    /// The endorsement policy still decides at commit: too few organizations commit the
    /// transaction as `ENDORSEMENT_POLICY_FAILURE`.
    pub fn endorsing_organizations<I, S>(self, msp_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.organizations(msp_ids)
    }

    /// Same as [`Self::endorsing_organizations`].
    pub fn organizations<I, S>(mut self, msp_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.organizations = msp_ids.into_iter().map(Into::into).collect();
        self
    }

    /// Declares that running the transaction twice has the effect of running it once (for
    /// BC-AMI, a reading is keyed by HID + timestamp). Only then does [`Self::submit`]
    /// re-endorse a fresh proposal after an `MVCC_READ_CONFLICT` or `PHANTOM_READ_CONFLICT`.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Deadlines for this call only, instead of the gateway's (the official clients' per-call
    /// `deadline` options): each stage of this transaction (evaluate, endorse, submit, commit
    /// status) gets its own field's deadline. Retries of a stage each get the full deadline.
    pub fn deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = Some(deadlines);
        self
    }

    /// Builds a proposal with a fresh nonce, signed if the gateway has a signer.
    ///
    /// # Errors
    /// [`Error::Sign`] from the signer.
    pub fn build(&self) -> Result<Proposal, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        self.build_with(&nonce, now())
    }

    fn build_with(
        &self,
        nonce: &[u8],
        timestamp: prost_types::Timestamp,
    ) -> Result<Proposal, Error> {
        let network = &self.contract.network;
        let inner = &network.gateway.inner;
        let built = wire::build_proposal(&ProposalSpec {
            channel: &network.channel,
            chaincode: &self.contract.chaincode,
            function: &self.function,
            args: &self.args,
            transient: &self.transient,
            creator: &inner.creator,
            nonce,
            timestamp,
        });
        let signature = inner.sign(Stage::Endorse, &built.transaction_id, &built.bytes)?;
        Ok(Proposal {
            network: network.clone(),
            transaction_id: built.transaction_id,
            bytes: built.bytes,
            signature,
            organizations: self.organizations.clone(),
            deadlines: self.deadlines,
        })
    }

    /// Evaluates on one peer (a query).
    ///
    /// # Errors
    /// See [`Proposal::evaluate`].
    pub async fn evaluate(&self) -> Result<Vec<u8>, Error> {
        self.build()?.evaluate().await
    }

    /// Endorses and submits, returning once the orderers accept the transaction, with a handle
    /// to wait for its commit.
    ///
    /// # Errors
    /// [`Error::Endorse`] or [`Error::Submit`], among others.
    pub async fn submit_async(&self) -> Result<SubmittedTransaction, Error> {
        let transaction = self.build()?.endorse().await?;
        let result = transaction.result().to_vec();
        let commit = transaction.submit().await?;
        Ok(SubmittedTransaction { result, commit })
    }

    /// Endorses, submits and waits until the transaction commits as VALID. An idempotent
    /// transaction that hits a read conflict is re-endorsed with a fresh proposal, up to the
    /// retry policy's attempts.
    ///
    /// # Errors
    /// The failing stage's error, or [`Error::Commit`] with the validation code.
    pub async fn submit(&self) -> Result<Committed, Error> {
        let policy = self.contract.network.gateway.inner.retry;
        let mut attempt = 1;
        loop {
            let submitted = self.submit_async().await?;
            let status = submitted.commit.status().await?;
            if status.code == ValidationCode::VALID {
                return Ok(Committed {
                    transaction_id: status.transaction_id,
                    result: submitted.result,
                    block_number: status.block_number,
                    attempts: attempt,
                });
            }
            if !(self.idempotent && status.code.is_read_conflict() && attempt < policy.attempts()) {
                return Err(status.into_error());
            }
            let wait = policy.backoff(attempt);
            tracing::debug!(
                transaction_id = %status.transaction_id,
                code = %status.code,
                attempt,
                ?wait,
                "read conflict on an idempotent transaction; re-endorsing"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

fn unsigned(stage: Stage, transaction_id: &str) -> Error {
    Error::Unsigned {
        stage,
        transaction_id: transaction_id.to_owned(),
    }
}

/// A proposal: the serialized `protos.Proposal` and, once signed, its signature.
#[derive(Debug, Clone)]
pub struct Proposal {
    network: Network,
    transaction_id: String,
    bytes: Vec<u8>,
    signature: Option<Vec<u8>>,
    organizations: Vec<String>,
    deadlines: Option<Deadlines>,
}

impl Proposal {
    /// The transaction id.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// The serialized proposal.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What to sign offline: SHA-256 of [`Self::bytes`].
    pub fn digest(&self) -> Digest32 {
        sha256(&self.bytes)
    }

    /// Supplies an offline signature over [`Self::digest`] (or, for an Ed25519 key, over
    /// [`Self::bytes`]).
    pub fn set_signature(&mut self, signature: Vec<u8>) {
        self.signature = Some(signature);
    }

    /// Deadlines for the calls of this proposal and the transaction and commit it leads to.
    pub fn set_deadlines(&mut self, deadlines: Deadlines) {
        self.deadlines = Some(deadlines);
    }

    /// The endorsing organizations this proposal asks for (empty: the gateway chooses).
    pub fn endorsing_organizations(&self) -> &[String] {
        &self.organizations
    }

    fn deadlines(&self) -> Deadlines {
        self.deadlines.unwrap_or(self.inner().deadlines)
    }

    fn signed(&self, stage: Stage) -> Result<SignedProposal, Error> {
        let signature = self
            .signature
            .clone()
            .ok_or_else(|| unsigned(stage, &self.transaction_id))?;
        Ok(SignedProposal {
            proposal_bytes: self.bytes.clone(),
            signature,
        })
    }

    fn inner(&self) -> &Inner {
        &self.network.gateway.inner
    }

    /// Evaluates on one peer and returns the chaincode's response payload.
    ///
    /// # Errors
    /// [`Error::Evaluate`] (the chaincode's rejection is in
    /// [`Error::chaincode_error`]); [`Error::Unsigned`].
    pub async fn evaluate(&self) -> Result<Vec<u8>, Error> {
        let request = EvaluateRequest {
            transaction_id: self.transaction_id.clone(),
            channel_id: self.network.channel.clone(),
            proposed_transaction: Some(self.signed(Stage::Evaluate)?),
            target_organizations: self.organizations.clone(),
        };
        let inner = self.inner();
        let response = inner
            .call(
                Stage::Evaluate,
                Some(&self.transaction_id),
                self.deadlines().evaluate,
                |mut client, deadline| {
                    let mut req = tonic::Request::new(request.clone());
                    req.set_timeout(deadline);
                    async move { client.evaluate(req).await }
                },
            )
            .await?;
        Ok(response.result.map(|r| r.payload).unwrap_or_default())
    }

    /// Collects endorsements; returns the unsigned prepared transaction.
    ///
    /// # Errors
    /// [`Error::Endorse`] (the chaincode's rejection is in [`Error::chaincode_error`]);
    /// [`Error::Malformed`]; [`Error::Unsigned`].
    pub async fn endorse(&self) -> Result<Transaction, Error> {
        let request = EndorseRequest {
            transaction_id: self.transaction_id.clone(),
            channel_id: self.network.channel.clone(),
            proposed_transaction: Some(self.signed(Stage::Endorse)?),
            endorsing_organizations: self.organizations.clone(),
        };
        let inner = self.inner();
        let response = inner
            .call(
                Stage::Endorse,
                Some(&self.transaction_id),
                self.deadlines().endorse,
                |mut client, deadline| {
                    let mut req = tonic::Request::new(request.clone());
                    req.set_timeout(deadline);
                    async move { client.endorse(req).await }
                },
            )
            .await?;
        let malformed = |reason: String| Error::Malformed {
            stage: Stage::Endorse,
            transaction_id: self.transaction_id.clone(),
            reason,
        };
        let envelope = response
            .prepared_transaction
            .ok_or_else(|| malformed("no prepared transaction".into()))?;
        let result = wire::transaction_result(&envelope).map_err(|e| malformed(e.to_string()))?;
        let signature = inner.sign(Stage::Submit, &self.transaction_id, &envelope.payload)?;
        Ok(Transaction {
            network: self.network.clone(),
            transaction_id: self.transaction_id.clone(),
            payload: envelope.payload,
            signature,
            result,
            deadlines: self.deadlines,
        })
    }
}

/// An endorsed transaction, ready to be signed and submitted.
#[derive(Debug, Clone)]
pub struct Transaction {
    network: Network,
    transaction_id: String,
    /// The envelope payload exactly as the gateway returned it: it is signed as-is.
    payload: Vec<u8>,
    signature: Option<Vec<u8>>,
    result: Vec<u8>,
    deadlines: Option<Deadlines>,
}

impl Transaction {
    /// The transaction id.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// The chaincode's response payload, as endorsed.
    pub fn result(&self) -> &[u8] {
        &self.result
    }

    /// The envelope payload bytes that get signed.
    pub fn bytes(&self) -> &[u8] {
        &self.payload
    }

    /// What to sign offline: SHA-256 of [`Self::bytes`].
    pub fn digest(&self) -> Digest32 {
        sha256(&self.payload)
    }

    /// Supplies an offline signature over [`Self::digest`].
    pub fn set_signature(&mut self, signature: Vec<u8>) {
        self.signature = Some(signature);
    }

    /// Deadlines for the submit and commit-status calls of this transaction.
    pub fn set_deadlines(&mut self, deadlines: Deadlines) {
        self.deadlines = Some(deadlines);
    }

    /// Sends the signed transaction to the orderers; returns once they accept it.
    ///
    /// # Errors
    /// [`Error::Submit`]; [`Error::Unsigned`].
    pub async fn submit(&self) -> Result<Commit, Error> {
        let signature = self
            .signature
            .clone()
            .ok_or_else(|| unsigned(Stage::Submit, &self.transaction_id))?;
        let request = SubmitRequest {
            transaction_id: self.transaction_id.clone(),
            channel_id: self.network.channel.clone(),
            prepared_transaction: Some(Envelope {
                payload: self.payload.clone(),
                signature,
            }),
        };
        let inner = &self.network.gateway.inner;
        let submitted = inner
            .call(
                Stage::Submit,
                Some(&self.transaction_id),
                self.deadlines.unwrap_or(inner.deadlines).submit,
                |mut client, deadline| {
                    let mut req = tonic::Request::new(request.clone());
                    req.set_timeout(deadline);
                    async move { client.submit(req).await }
                },
            )
            .await;
        match submitted {
            Ok(_) => {}
            Err(Error::Submit(error)) if error.orderers_already_have_transaction() => {
                tracing::debug!(
                    transaction_id = %self.transaction_id,
                    %error,
                    "orderers already hold the transaction; its commit status decides"
                );
            }
            Err(error) => return Err(error),
        }
        let mut commit = Commit::new(&self.network, &self.transaction_id)?;
        commit.deadlines = self.deadlines;
        Ok(commit)
    }
}

/// A submitted transaction: its endorsed result and a handle on its commit.
#[derive(Debug, Clone)]
pub struct SubmittedTransaction {
    result: Vec<u8>,
    commit: Commit,
}

impl SubmittedTransaction {
    /// The transaction id.
    pub fn transaction_id(&self) -> &str {
        self.commit.transaction_id()
    }
    /// The chaincode's response payload, as endorsed.
    pub fn result(&self) -> &[u8] {
        &self.result
    }
    /// The commit handle.
    pub fn commit(&self) -> &Commit {
        &self.commit
    }
    /// The commit handle, by value.
    pub fn into_commit(self) -> Commit {
        self.commit
    }
}

/// A transaction that committed as VALID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The transaction id of the attempt that committed.
    pub transaction_id: String,
    /// The chaincode's response payload.
    pub result: Vec<u8>,
    /// The block holding it.
    pub block_number: u64,
    /// How many proposals were endorsed (more than 1 after read-conflict retries).
    pub attempts: u32,
}

/// The validation result of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// The transaction id.
    pub transaction_id: String,
    /// The validation code.
    pub code: ValidationCode,
    /// The block holding it.
    pub block_number: u64,
}

impl CommitStatus {
    /// Whether the transaction is VALID.
    pub fn is_valid(&self) -> bool {
        self.code == ValidationCode::VALID
    }

    fn into_error(self) -> Error {
        Error::Commit {
            transaction_id: self.transaction_id,
            code: self.code,
            block_number: self.block_number,
        }
    }
}

/// A handle on a submitted transaction's commit: a signed `CommitStatusRequest`.
#[derive(Debug, Clone)]
pub struct Commit {
    network: Network,
    transaction_id: String,
    request: Vec<u8>,
    signature: Option<Vec<u8>>,
    deadlines: Option<Deadlines>,
}

impl Commit {
    pub(crate) fn new(network: &Network, transaction_id: &str) -> Result<Self, Error> {
        let inner = &network.gateway.inner;
        let request = wire::commit_status_request(transaction_id, &network.channel, &inner.creator);
        let signature = inner.sign(Stage::CommitStatus, transaction_id, &request)?;
        Ok(Self {
            network: network.clone(),
            transaction_id: transaction_id.to_owned(),
            request,
            signature,
            deadlines: None,
        })
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// A deadline for this commit-status call only (`commit_status` of the deadlines).
    pub fn set_deadlines(&mut self, deadlines: Deadlines) {
        self.deadlines = Some(deadlines);
    }

    /// The serialized `CommitStatusRequest`.
    pub fn bytes(&self) -> &[u8] {
        &self.request
    }

    /// What to sign offline: SHA-256 of [`Self::bytes`].
    pub fn digest(&self) -> Digest32 {
        sha256(&self.request)
    }

    /// Supplies an offline signature over [`Self::digest`].
    pub fn set_signature(&mut self, signature: Vec<u8>) {
        self.signature = Some(signature);
    }

    /// Waits for the transaction to commit and returns its validation code, valid or not.
    ///
    /// # Errors
    /// [`Error::CommitStatus`] if the status cannot be obtained; [`Error::Unsigned`].
    pub async fn status(&self) -> Result<CommitStatus, Error> {
        let signature = self
            .signature
            .clone()
            .ok_or_else(|| unsigned(Stage::CommitStatus, &self.transaction_id))?;
        let request = SignedCommitStatusRequest {
            request: self.request.clone(),
            signature,
        };
        let inner = &self.network.gateway.inner;
        let response = inner
            .call(
                Stage::CommitStatus,
                Some(&self.transaction_id),
                self.deadlines.unwrap_or(inner.deadlines).commit_status,
                |mut client, deadline| {
                    let mut req = tonic::Request::new(request.clone());
                    req.set_timeout(deadline);
                    async move { client.commit_status(req).await }
                },
            )
            .await?;
        Ok(CommitStatus {
            transaction_id: self.transaction_id.clone(),
            code: ValidationCode::from(response.result),
            block_number: response.block_number,
        })
    }

    /// Waits for the commit; succeeds only if the transaction is VALID.
    ///
    /// # Errors
    /// [`Error::Commit`] naming the validation code; [`Error::CommitStatus`].
    pub async fn wait(&self) -> Result<CommitStatus, Error> {
        let status = self.status().await?;
        if status.is_valid() {
            Ok(status)
        } else {
            Err(status.into_error())
        }
    }
}

/// A signed chaincode-events request.
#[derive(Debug, Clone)]
pub struct EventsRequest {
    network: Network,
    start: StartAt,
    request: Vec<u8>,
    signature: Option<Vec<u8>>,
}

impl EventsRequest {
    pub(crate) fn new(network: &Network, chaincode: &str, start: StartAt) -> Result<Self, Error> {
        let inner = &network.gateway.inner;
        let request =
            wire::chaincode_events_request(&network.channel, chaincode, &inner.creator, &start);
        let signature = inner.sign(Stage::ChaincodeEvents, "", &request)?;
        Ok(Self {
            network: network.clone(),
            start,
            request,
            signature,
        })
    }

    /// The serialized `ChaincodeEventsRequest`.
    pub fn bytes(&self) -> &[u8] {
        &self.request
    }

    /// What to sign offline: SHA-256 of [`Self::bytes`].
    pub fn digest(&self) -> Digest32 {
        sha256(&self.request)
    }

    /// Supplies an offline signature over [`Self::digest`].
    pub fn set_signature(&mut self, signature: Vec<u8>) {
        self.signature = Some(signature);
    }

    /// Opens the stream and sends the request now (inside a Tokio runtime), so the stream
    /// starts where it was asked to when it is opened: at [`StartAt::NextCommit`], it sees every
    /// transaction submitted after this call. The gateway sends nothing, not even headers, until
    /// a block with a matching event exists, so a failure to open (unreachable peer, access
    /// denied) is reported by the first [`ChaincodeEventStream::next`].
    ///
    /// # Errors
    /// [`Error::Unsigned`].
    pub fn open(&self) -> Result<ChaincodeEventStream, Error> {
        let signature = self
            .signature
            .clone()
            .ok_or_else(|| unsigned(Stage::ChaincodeEvents, ""))?;
        let request = SignedChaincodeEventsRequest {
            request: self.request.clone(),
            signature,
        };
        let inner = &self.network.gateway.inner;
        Ok(ChaincodeEventStream::new(
            inner.client.clone(),
            request,
            inner.endpoint.clone(),
            &self.start,
        ))
    }
}

/// A signed Deliver request for block events or filtered-block events (the same request serves
/// both): sign it offline or let the gateway's signer do it, then open it.
#[derive(Debug, Clone)]
pub struct BlockEventsRequest {
    network: Network,
    payload: Vec<u8>,
    signature: Option<Vec<u8>>,
}

impl BlockEventsRequest {
    pub(crate) fn new(network: &Network, start: &StartAt) -> Result<Self, Error> {
        let inner = &network.gateway.inner;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let payload =
            wire::deliver_payload(&network.channel, &inner.creator, &nonce, now(), start, &[]);
        let signature = inner.sign(Stage::BlockEvents, "", &payload)?;
        Ok(Self {
            network: network.clone(),
            payload,
            signature,
        })
    }

    /// The serialized `common.Payload` (a `DELIVER_SEEK_INFO` header and an `orderer.SeekInfo`).
    pub fn bytes(&self) -> &[u8] {
        &self.payload
    }

    /// What to sign offline: SHA-256 of [`Self::bytes`].
    pub fn digest(&self) -> Digest32 {
        sha256(&self.payload)
    }

    /// Supplies an offline signature.
    pub fn set_signature(&mut self, signature: Vec<u8>) {
        self.signature = Some(signature);
    }

    fn envelope(&self) -> Result<Envelope, Error> {
        let signature = self
            .signature
            .clone()
            .ok_or_else(|| unsigned(Stage::BlockEvents, ""))?;
        Ok(Envelope {
            payload: self.payload.clone(),
            signature,
        })
    }

    /// Opens a stream of full blocks. The request is sent now; refusals (an identity the
    /// channel's readers policy does not admit) arrive from the stream.
    ///
    /// # Errors
    /// [`Error::Unsigned`].
    pub fn open(&self) -> Result<BlockEventStream, Error> {
        let inner = &self.network.gateway.inner;
        Ok(BlockEventStream::new(
            inner.channel.clone(),
            self.envelope()?,
            inner.endpoint.clone(),
        ))
    }

    /// Opens a stream of filtered blocks.
    ///
    /// # Errors
    /// [`Error::Unsigned`].
    pub fn open_filtered(&self) -> Result<FilteredBlockEventStream, Error> {
        let inner = &self.network.gateway.inner;
        Ok(FilteredBlockEventStream::new(
            inner.channel.clone(),
            self.envelope()?,
            inner.endpoint.clone(),
        ))
    }
}
