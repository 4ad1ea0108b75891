//! Errors, typed by the stage that failed and carrying the transaction id.

use std::fmt;

use prost::Message;

use crate::identity::{IdentityError, SignError};

/// The step of the Gateway flow an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Opening the TLS connection to the gateway peer.
    Connect,
    /// `Evaluate`: a query on one peer.
    Evaluate,
    /// `Endorse`: collecting endorsements.
    Endorse,
    /// `Submit`: handing the signed transaction to the orderers.
    Submit,
    /// `CommitStatus`: waiting for the transaction's validation result.
    CommitStatus,
    /// `ChaincodeEvents`: the event stream.
    ChaincodeEvents,
    /// `Deliver` / `DeliverFiltered`: the block event streams of the gateway peer.
    BlockEvents,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Evaluate => "evaluate",
            Self::Endorse => "endorse",
            Self::Submit => "submit",
            Self::CommitStatus => "commit status",
            Self::ChaincodeEvents => "chaincode events",
            Self::BlockEvents => "block events",
        })
    }
}

/// One failing peer or orderer, from a `gateway.ErrorDetail` attached to the gRPC status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    /// The node's address.
    pub address: String,
    /// The node's MSP id.
    pub msp_id: String,
    /// What the node said.
    pub message: String,
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.address, self.msp_id, self.message)
    }
}

/// The chaincode's own rejection, extracted from a gateway error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeError {
    /// The chaincode response status (400–599), when the gateway reported one.
    pub status: Option<i32>,
    /// The chaincode's message, verbatim.
    pub message: String,
}

impl fmt::Display for ChaincodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "chaincode returned {status}: {}", self.message),
            None => write!(f, "chaincode failed: {}", self.message),
        }
    }
}

/// A gRPC call that failed at one stage.
#[derive(Debug, Clone)]
pub struct StageError {
    stage: Stage,
    transaction_id: Option<String>,
    endpoint: String,
    code: tonic::Code,
    message: String,
    details: Vec<ErrorDetail>,
}

impl StageError {
    /// Builds a stage error from a gRPC status, decoding any `gateway.ErrorDetail`s.
    pub fn from_status(
        stage: Stage,
        transaction_id: Option<&str>,
        endpoint: &str,
        status: &tonic::Status,
    ) -> Self {
        Self {
            stage,
            transaction_id: transaction_id.map(str::to_owned),
            endpoint: endpoint.to_owned(),
            code: status.code(),
            message: status.message().to_owned(),
            details: decode_details(status.details()),
        }
    }

    /// The stage that failed.
    pub fn stage(&self) -> Stage {
        self.stage
    }
    /// The transaction id, if the stage had one (events have none).
    pub fn transaction_id(&self) -> Option<&str> {
        self.transaction_id.as_deref()
    }
    /// The gateway endpoint the client was talking to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    /// The gRPC status code.
    pub fn code(&self) -> tonic::Code {
        self.code
    }
    /// The gRPC status message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Per-node details the gateway attached.
    pub fn details(&self) -> &[ErrorDetail] {
        &self.details
    }

    /// The chaincode's own rejection message, when this error is one.
    ///
    /// The gateway reports a chaincode response with status ≥ 400 as
    /// `"chaincode response <status>, <message>"` (in the details and in the status message);
    /// a chaincode that failed with an ERROR message arrives as
    /// `"transaction returned with failure: <message>"`.
    pub fn chaincode_error(&self) -> Option<ChaincodeError> {
        let messages = || {
            self.details
                .iter()
                .map(|d| d.message.as_str())
                .chain(std::iter::once(self.message.as_str()))
        };
        messages()
            .find_map(parse_chaincode_response)
            .or_else(|| messages().find_map(parse_failure))
    }

    /// Whether trying the same call again may succeed: the node or its orderers were
    /// unreachable, or the endorsers simulated against different ledger heights. A submit the
    /// orderers already hold is not retried: it was delivered.
    pub fn is_retryable(&self) -> bool {
        (self.code == tonic::Code::Unavailable && !self.orderers_already_have_transaction())
            || self.is_endorsement_mismatch()
    }

    /// Whether endorsement failed because the endorsers' results differ ("ProposalResponsePayloads
    /// do not match"). With deterministic chaincode that means one peer had not yet committed the
    /// block the other had (commit status comes from one peer only), so a moment later they agree.
    /// Nothing was ordered, so endorsing again is safe for any transaction.
    pub fn is_endorsement_mismatch(&self) -> bool {
        self.stage == Stage::Endorse
            && self.code == tonic::Code::Aborted
            && self
                .details
                .iter()
                .any(|d| d.message.contains("ProposalResponsePayloads do not match"))
    }

    /// Whether a failed submit was in fact delivered: some orderer answered that it already
    /// holds (`request already exists`) or has already ordered (`request already processed`)
    /// this very transaction. The gateway counts only the first as success, so a BFT submit
    /// retried under load can fail with `UNAVAILABLE` although the transaction is in a block;
    /// its commit status, not the submit, tells the outcome.
    pub fn orderers_already_have_transaction(&self) -> bool {
        self.stage == Stage::Submit
            && self.code == tonic::Code::Unavailable
            && self.details.iter().any(|d| {
                d.message.contains("request already processed")
                    || d.message.contains("request already exists")
            })
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.stage)?;
        if let Some(tx) = &self.transaction_id {
            write!(f, " for transaction {tx}")?;
        }
        write!(
            f,
            " at gateway {}: {:?}: {}",
            self.endpoint, self.code, self.message
        )?;
        for (i, d) in self.details.iter().enumerate() {
            f.write_str(if i == 0 { " [" } else { "; " })?;
            write!(f, "{d}")?;
        }
        if !self.details.is_empty() {
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl std::error::Error for StageError {}

fn parse_chaincode_response(text: &str) -> Option<ChaincodeError> {
    const MARK: &str = "chaincode response ";
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let (status, message) = rest.split_once(", ")?;
    let status = status.parse().ok()?;
    Some(ChaincodeError {
        status: Some(status),
        message: message.to_owned(),
    })
}

fn parse_failure(text: &str) -> Option<ChaincodeError> {
    const MARK: &str = "transaction returned with failure: ";
    let message = &text[text.find(MARK)? + MARK.len()..];
    Some(ChaincodeError {
        status: None,
        message: message.to_owned(),
    })
}

/// `google.rpc.Status`, the message inside the `grpc-status-details-bin` trailer.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

const ERROR_DETAIL_TYPE_URL: &str = "type.googleapis.com/gateway.ErrorDetail";

/// Decodes the `gateway.ErrorDetail`s from a status's details; anything else is skipped.
fn decode_details(bytes: &[u8]) -> Vec<ErrorDetail> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let Ok(status) = RpcStatus::decode(bytes) else {
        tracing::debug!("gRPC status details did not decode as google.rpc.Status");
        return Vec::new();
    };
    status
        .details
        .iter()
        .filter(|any| any.type_url == ERROR_DETAIL_TYPE_URL)
        .filter_map(|any| fabric_protos::gateway::ErrorDetail::decode(any.value.as_slice()).ok())
        .map(|d| ErrorDetail {
            address: d.address,
            msp_id: d.msp_id,
            message: d.message,
        })
        .collect()
}

/// Encodes `gateway.ErrorDetail`s into status details, as the Fabric gateway does. Public so that
/// test doubles of the gateway can produce realistic errors.
pub fn encode_details(code: tonic::Code, message: &str, details: &[ErrorDetail]) -> Vec<u8> {
    RpcStatus {
        code: code as i32,
        message: message.to_owned(),
        details: details
            .iter()
            .map(|d| prost_types::Any {
                type_url: ERROR_DETAIL_TYPE_URL.to_owned(),
                value: fabric_protos::gateway::ErrorDetail {
                    address: d.address.clone(),
                    msp_id: d.msp_id.clone(),
                    message: d.message.clone(),
                }
                .encode_to_vec(),
            })
            .collect(),
    }
    .encode_to_vec()
}

/// A transaction's validation code, as recorded in the block (`protos.TxValidationCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValidationCode(i32);

impl ValidationCode {
    /// The transaction is valid and its writes were applied.
    pub const VALID: Self = Self(0);
    /// Endorsement policy not satisfied.
    pub const ENDORSEMENT_POLICY_FAILURE: Self = Self(10);
    /// A key read during endorsement changed before commit.
    pub const MVCC_READ_CONFLICT: Self = Self(11);
    /// A range read during endorsement changed before commit.
    pub const PHANTOM_READ_CONFLICT: Self = Self(12);

    /// The raw code.
    pub fn value(self) -> i32 {
        self.0
    }

    /// Fabric's name for the code, e.g. `MVCC_READ_CONFLICT`.
    pub fn name(self) -> Option<&'static str> {
        fabric_protos::protos::TxValidationCode::try_from(self.0)
            .ok()
            .map(|c| c.as_str_name())
    }

    /// Whether re-endorsing a fresh proposal may succeed (the world state moved underneath).
    pub fn is_read_conflict(self) -> bool {
        self == Self::MVCC_READ_CONFLICT || self == Self::PHANTOM_READ_CONFLICT
    }
}

impl From<i32> for ValidationCode {
    fn from(code: i32) -> Self {
        Self(code)
    }
}

impl fmt::Display for ValidationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "UNKNOWN_VALIDATION_CODE({})", self.0),
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading the identity or key.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The endpoint address or its TLS settings are unusable.
    #[error("invalid gateway endpoint {endpoint}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },
    /// The TLS connection to the gateway peer could not be opened.
    #[error("connect to gateway {endpoint} failed: {reason}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// The transport error with its causes.
        reason: String,
    },
    /// Evaluate failed.
    #[error(transparent)]
    Evaluate(StageError),
    /// Endorse failed.
    #[error(transparent)]
    Endorse(StageError),
    /// Submit failed.
    #[error(transparent)]
    Submit(StageError),
    /// The commit status could not be obtained.
    #[error(transparent)]
    CommitStatus(StageError),
    /// The chaincode event stream failed.
    #[error(transparent)]
    ChaincodeEvents(StageError),
    /// A block or filtered-block event stream failed (also when the peer ends it with a status
    /// other than SUCCESS, e.g. FORBIDDEN or NOT_FOUND: then [`StageError::message`] says so).
    #[error(transparent)]
    BlockEvents(StageError),
    /// The transaction was committed but marked invalid.
    #[error(
        "transaction {transaction_id} was committed in block {block_number} as invalid: {code}"
    )]
    Commit {
        /// The transaction id.
        transaction_id: String,
        /// Why validation failed.
        code: ValidationCode,
        /// The block that recorded it.
        block_number: u64,
    },
    /// A request has no signature and the gateway has no signer (offline signing).
    #[error(
        "{stage} for transaction {transaction_id}: not signed; the gateway has no signer, so sign its digest offline first"
    )]
    Unsigned {
        /// The stage whose request is unsigned.
        stage: Stage,
        /// The transaction id (empty for event requests).
        transaction_id: String,
    },
    /// The signer failed.
    #[error("{stage} for transaction {transaction_id}: {source}")]
    Sign {
        /// The stage being signed.
        stage: Stage,
        /// The transaction id.
        transaction_id: String,
        /// The signer's error.
        source: SignError,
    },
    /// The gateway answered with something that does not decode.
    #[error("{stage} for transaction {transaction_id}: malformed response: {reason}")]
    Malformed {
        /// The stage.
        stage: Stage,
        /// The transaction id.
        transaction_id: String,
        /// What did not decode.
        reason: String,
    },
    /// Reading or writing a checkpoint file.
    #[error(transparent)]
    Checkpoint(#[from] crate::events::CheckpointError),
}

impl Error {
    /// The stage that failed, if the error comes from one.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Self::Connect { .. } | Self::InvalidEndpoint { .. } => Some(Stage::Connect),
            Self::Evaluate(e)
            | Self::Endorse(e)
            | Self::Submit(e)
            | Self::CommitStatus(e)
            | Self::ChaincodeEvents(e)
            | Self::BlockEvents(e) => Some(e.stage()),
            Self::Commit { .. } => Some(Stage::CommitStatus),
            Self::Unsigned { stage, .. }
            | Self::Sign { stage, .. }
            | Self::Malformed { stage, .. } => Some(*stage),
            Self::Identity(_) | Self::Checkpoint(_) => None,
        }
    }

    /// The transaction id, if the failure concerns one.
    pub fn transaction_id(&self) -> Option<&str> {
        match self {
            Self::Evaluate(e)
            | Self::Endorse(e)
            | Self::Submit(e)
            | Self::CommitStatus(e)
            | Self::ChaincodeEvents(e)
            | Self::BlockEvents(e) => e.transaction_id(),
            Self::Commit { transaction_id, .. }
            | Self::Unsigned { transaction_id, .. }
            | Self::Sign { transaction_id, .. }
            | Self::Malformed { transaction_id, .. } => {
                Some(transaction_id.as_str()).filter(|t| !t.is_empty())
            }
            _ => None,
        }
    }

    /// The underlying gRPC failure, if any.
    pub fn stage_error(&self) -> Option<&StageError> {
        match self {
            Self::Evaluate(e)
            | Self::Endorse(e)
            | Self::Submit(e)
            | Self::CommitStatus(e)
            | Self::ChaincodeEvents(e)
            | Self::BlockEvents(e) => Some(e),
            _ => None,
        }
    }

    /// The chaincode's own rejection, when that is what this error is.
    pub fn chaincode_error(&self) -> Option<ChaincodeError> {
        self.stage_error().and_then(StageError::chaincode_error)
    }

    /// The validation code of a transaction that committed as invalid.
    pub fn validation_code(&self) -> Option<ValidationCode> {
        match self {
            Self::Commit { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn from_stage(stage_error: StageError) -> Self {
        match stage_error.stage() {
            Stage::Evaluate => Self::Evaluate(stage_error),
            Stage::Endorse => Self::Endorse(stage_error),
            Stage::Submit => Self::Submit(stage_error),
            Stage::CommitStatus => Self::CommitStatus(stage_error),
            Stage::ChaincodeEvents => Self::ChaincodeEvents(stage_error),
            Stage::BlockEvents => Self::BlockEvents(stage_error),
            Stage::Connect => Self::Connect {
                endpoint: stage_error.endpoint.clone(),
                reason: stage_error.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with(code: tonic::Code, message: &str, details: &[ErrorDetail]) -> tonic::Status {
        tonic::Status::with_details(code, message, encode_details(code, message, details).into())
    }

    fn detail(address: &str, msp: &str, message: &str) -> ErrorDetail {
        ErrorDetail {
            address: address.into(),
            msp_id: msp.into(),
            message: message.into(),
        }
    }

    #[test]
    fn details_are_decoded_from_the_status() {
        let details = [
            detail(
                "peer0:7051",
                "UtilityMSP",
                "chaincode response 400, no such meter",
            ),
            detail(
                "peer0:8051",
                "OperatorMSP",
                "chaincode response 400, no such meter",
            ),
        ];
        let status = status_with(
            tonic::Code::Aborted,
            "failed to endorse transaction, see attached details for more info",
            &details,
        );
        let err = StageError::from_status(Stage::Endorse, Some("tx1"), "127.0.0.1:7030", &status);
        assert_eq!(err.details(), &details);
        assert_eq!(err.code(), tonic::Code::Aborted);
        assert_eq!(err.transaction_id(), Some("tx1"));
        let text = err.to_string();
        assert!(text.starts_with("endorse failed for transaction tx1 at gateway 127.0.0.1:7030"));
        assert!(text.contains("peer0:8051 (OperatorMSP): chaincode response 400, no such meter"));
    }

    #[test]
    fn chaincode_message_is_extracted_verbatim() {
        let status = status_with(
            tonic::Code::Unknown,
            "evaluate call to endorser returned error: chaincode response 500, meter 1a2b: unknown HID, not provisioned",
            &[detail(
                "p",
                "UtilityMSP",
                "chaincode response 500, meter 1a2b: unknown HID, not provisioned",
            )],
        );
        let err = StageError::from_status(Stage::Evaluate, Some("t"), "e", &status);
        assert_eq!(
            err.chaincode_error(),
            Some(ChaincodeError {
                status: Some(500),
                message: "meter 1a2b: unknown HID, not provisioned".into()
            })
        );
    }

    #[test]
    fn chaincode_error_message_without_status_is_extracted() {
        let status = status_with(
            tonic::Code::Aborted,
            "failed to evaluate transaction, see attached details for more info",
            &[detail(
                "p",
                "M",
                "error in simulation: transaction returned with failure: boom",
            )],
        );
        let err = StageError::from_status(Stage::Evaluate, None, "e", &status);
        assert_eq!(
            err.chaincode_error(),
            Some(ChaincodeError {
                status: None,
                message: "boom".into()
            })
        );
    }

    #[test]
    fn transport_errors_are_not_chaincode_errors() {
        let status = tonic::Status::unavailable("connection refused");
        let err = StageError::from_status(Stage::Submit, Some("t"), "e", &status);
        assert_eq!(err.chaincode_error(), None);
        assert!(err.details().is_empty());
        assert!(err.is_retryable());
    }

    #[test]
    fn mismatched_endorsements_are_retryable_only_at_endorse() {
        let status = status_with(
            tonic::Code::Aborted,
            "failed to collect enough transaction endorsements, see attached details for more info",
            &[detail("p2", "M2", "ProposalResponsePayloads do not match")],
        );
        let err = StageError::from_status(Stage::Endorse, Some("t"), "e", &status);
        assert!(err.is_endorsement_mismatch());
        assert!(err.is_retryable());
        assert_eq!(err.chaincode_error(), None);
        let err = StageError::from_status(Stage::Evaluate, Some("t"), "e", &status);
        assert!(!err.is_retryable());
        // A chaincode rejection at endorsement is final.
        let refused = status_with(
            tonic::Code::Aborted,
            "failed to endorse transaction, see attached details for more info",
            &[detail("p", "M", "chaincode response 403, forbidden")],
        );
        let err = StageError::from_status(Stage::Endorse, Some("t"), "e", &refused);
        assert!(!err.is_retryable());
    }

    #[test]
    fn garbage_details_are_ignored() {
        let status =
            tonic::Status::with_details(tonic::Code::Internal, "x", vec![0xff, 0x01, 0x02].into());
        let err = StageError::from_status(Stage::Submit, Some("t"), "e", &status);
        assert!(err.details().is_empty());
    }

    #[test]
    fn validation_codes_have_fabric_names() {
        assert_eq!(ValidationCode::VALID.to_string(), "VALID");
        assert_eq!(
            ValidationCode::MVCC_READ_CONFLICT.to_string(),
            "MVCC_READ_CONFLICT"
        );
        assert_eq!(ValidationCode::from(254).to_string(), "NOT_VALIDATED");
        assert_eq!(
            ValidationCode::from(77).to_string(),
            "UNKNOWN_VALIDATION_CODE(77)"
        );
        assert!(ValidationCode::PHANTOM_READ_CONFLICT.is_read_conflict());
        assert!(!ValidationCode::ENDORSEMENT_POLICY_FAILURE.is_read_conflict());
    }
}
