//! The fuzz harness, shared by the cargo-fuzz target (`fuzz/fuzz_targets/gateway_responses.rs`)
//! and the unit test that replays its committed corpus (`tests/fuzz_corpus.rs`). Not part of the
//! API.
//!
//! Input: byte 0 picks what a hostile gateway peer answered; the rest is that answer.
//! - `0`: a failed call. Byte 1 is the gRPC code, byte 2 the stage; the rest, split at the first
//!   NUL, is the status message and the `grpc-status-details-bin` bytes.
//! - `1`: a serialized `gateway.EndorseResponse` (its prepared transaction's result is read).
//! - `2`: a chaincode event stream. Byte 1 picks where it was asked to start (next commit, a
//!   block, or after transaction [`RESUME_AFTER`] in a block), byte 2 is that block; the rest is
//!   a sequence of length-delimited `gateway.ChaincodeEventsResponse`s.
//! - `3`: a serialized `gateway.CommitStatusResponse`.
//!
//! Properties: nothing panics; what is decoded is consistent with what was sent (details survive
//! re-encoding, a chaincode message is quoted verbatim, a result is no bigger than the envelope,
//! a resumed stream only drops a prefix of a block and never delivers blocks before its start,
//! a checkpoint of hostile transaction ids survives its JSON file).

use fabric_protos::gateway::{ChaincodeEventsResponse, CommitStatusResponse, EndorseResponse};
use prost::Message;

use crate::error::{Error, Stage, StageError, ValidationCode, encode_details};
use crate::events::{Checkpoint, ResumeFilter, block_events};
use crate::wire::{StartAt, transaction_result};

/// The transaction a fuzzed event stream resumes after (selector `2`, start `2`).
pub const RESUME_AFTER: &str = "resume-tx";

const TRANSACTION_ID: &str = "fuzz-tx";
const ENDPOINT: &str = "peer0.fuzz:7051";
const STAGES: [Stage; 6] = [
    Stage::Connect,
    Stage::Evaluate,
    Stage::Endorse,
    Stage::Submit,
    Stage::CommitStatus,
    Stage::ChaincodeEvents,
];

/// Runs one fuzz input; panics if a property fails. Returns whether the input decoded into a
/// well-formed answer (at least one error detail, a result, an event, a known validation code),
/// so that the corpus test can check its seeds reach the decoders' success paths.
pub fn responses(data: &[u8]) -> bool {
    match data {
        [0, code, stage, rest @ ..] => failed_call(*code, *stage, rest),
        [1, rest @ ..] => endorsed(rest),
        [2, start, block, rest @ ..] => event_stream(*start, *block, rest),
        [3, rest @ ..] => commit_status(rest),
        _ => false,
    }
}

fn failed_call(code: u8, stage: u8, rest: &[u8]) -> bool {
    let code = tonic::Code::from(i32::from(code));
    let stage = STAGES[usize::from(stage) % STAGES.len()];
    let (message, details) = match rest.iter().position(|b| *b == 0) {
        Some(nul) => (&rest[..nul], &rest[nul + 1..]),
        None => (&[][..], rest),
    };
    let message = String::from_utf8_lossy(message).into_owned();
    let status = tonic::Status::with_details(code, message.clone(), details.to_vec().into());
    let err = StageError::from_status(stage, Some(TRANSACTION_ID), ENDPOINT, &status);
    assert_eq!(err.stage(), stage);
    assert_eq!(err.code(), code);
    assert_eq!(err.message(), message);
    assert!(err.to_string().contains(&message));

    let reencoded = tonic::Status::with_details(
        code,
        message.clone(),
        encode_details(code, &message, err.details()).into(),
    );
    let again = StageError::from_status(stage, Some(TRANSACTION_ID), ENDPOINT, &reencoded);
    assert_eq!(
        again.details(),
        err.details(),
        "details change on re-encoding"
    );

    let chaincode = err.chaincode_error();
    if let Some(cc) = &chaincode {
        let quoted = err
            .details()
            .iter()
            .map(|d| d.message.as_str())
            .chain(std::iter::once(message.as_str()))
            .any(|m| m.ends_with(&cc.message));
        assert!(
            quoted,
            "chaincode message {:?} is not quoted verbatim",
            cc.message
        );
    }
    if err.orderers_already_have_transaction() {
        assert!(!err.is_retryable(), "a delivered submit is retried");
    }

    let found = !err.details().is_empty();
    let error = Error::from_stage(err);
    assert_eq!(error.stage(), Some(stage));
    if stage != Stage::Connect {
        assert_eq!(error.transaction_id(), Some(TRANSACTION_ID));
        assert_eq!(error.chaincode_error(), chaincode);
    }
    let _ = error.to_string();
    found
}

fn endorsed(rest: &[u8]) -> bool {
    let Ok(response) = EndorseResponse::decode(rest) else {
        return false;
    };
    let Some(envelope) = response.prepared_transaction else {
        return false;
    };
    match transaction_result(&envelope) {
        Ok(result) => {
            assert!(result.len() <= envelope.payload.len());
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

fn event_stream(start: u8, block: u8, mut rest: &[u8]) -> bool {
    let block = u64::from(block);
    let (start, min_block) = match start % 3 {
        0 => (StartAt::NextCommit, 0),
        1 => (StartAt::Block(block), block),
        _ => (
            StartAt::After {
                block,
                after_transaction: RESUME_AFTER.to_owned(),
            },
            block,
        ),
    };
    let mut filter = ResumeFilter::new(&start);
    let mut checkpoint = Checkpoint::new();
    let mut delivered = 0usize;
    while !rest.is_empty() {
        let Ok(response) = ChaincodeEventsResponse::decode_length_delimited(&mut rest) else {
            break;
        };
        let sent = response.events.len();
        let (number, events) = block_events(response);
        assert_eq!(events.len(), sent);
        assert!(events.iter().all(|e| e.block_number == number));
        let admitted = filter.admit_block(number, events.clone());
        assert!(
            events.ends_with(&admitted),
            "the filter dropped more than a prefix"
        );
        if number < min_block {
            assert!(
                admitted.is_empty(),
                "block {number} delivered before {min_block}"
            );
        }
        for event in &admitted {
            checkpoint.record(event);
        }
        if let Some(last) = admitted.last() {
            assert_eq!(
                checkpoint.start_at(),
                Some(StartAt::After {
                    block: last.block_number,
                    after_transaction: last.transaction_id.clone(),
                })
            );
        }
        delivered += admitted.len();
    }
    let saved = serde_json::to_string(&checkpoint);
    let restored = saved.as_deref().map(serde_json::from_str::<Checkpoint>);
    assert!(
        matches!(restored, Ok(Ok(ref c)) if *c == checkpoint),
        "checkpoint does not survive its file: {restored:?}"
    );
    delivered > 0
}

fn commit_status(rest: &[u8]) -> bool {
    let Ok(response) = CommitStatusResponse::decode(rest) else {
        return false;
    };
    let code = ValidationCode::from(response.result);
    let shown = code.to_string();
    assert_eq!(
        code.name().is_some(),
        !shown.starts_with("UNKNOWN_VALIDATION_CODE(")
    );
    code.name().is_some()
}
