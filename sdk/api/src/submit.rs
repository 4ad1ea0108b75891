//! `SubmitReadings`: the per-reading rejection codes, the response, and the event.

use bcami_sdk::Hid;
use serde::{Deserialize, Serialize};

use crate::records::hid_hex;

/// Why one reading was rejected: a stable, machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The batch element is not standard base64.
    BadBase64,
    /// The reading is larger than the limit.
    Oversize,
    /// The bytes are not a well-formed reading transaction (SDK `DecodeError`).
    Malformed,
    /// No meter with this HID is provisioned.
    UnknownMeter,
    /// The meter is provisioned but has not registered a key.
    NotRegistered,
    /// The meter is revoked.
    Revoked,
    /// The timestamp is older than the window allows.
    Stale,
    /// The timestamp is newer than the window allows.
    Future,
    /// The timestamp is not after the meter's last accepted one (also: earlier in this batch).
    Replayed,
    /// The signature does not verify under the meter's current key over the recomputed hash:
    /// a bad signature, a tampered ciphertext/header, or a signed hash that is not the hash of
    /// this ciphertext — indistinguishable by design (FORMAT.md: the hash is recomputed).
    BadSignature,
}

impl RejectReason {
    /// Every reason.
    pub const ALL: [RejectReason; 10] = [
        RejectReason::BadBase64,
        RejectReason::Oversize,
        RejectReason::Malformed,
        RejectReason::UnknownMeter,
        RejectReason::NotRegistered,
        RejectReason::Revoked,
        RejectReason::Stale,
        RejectReason::Future,
        RejectReason::Replayed,
        RejectReason::BadSignature,
    ];

    /// The code as it appears in JSON.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::BadBase64 => "bad_base64",
            RejectReason::Oversize => "oversize",
            RejectReason::Malformed => "malformed",
            RejectReason::UnknownMeter => "unknown_meter",
            RejectReason::NotRegistered => "not_registered",
            RejectReason::Revoked => "revoked",
            RejectReason::Stale => "stale",
            RejectReason::Future => "future",
            RejectReason::Replayed => "replayed",
            RejectReason::BadSignature => "bad_signature",
        }
    }
}

/// A rejection: reason and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The code.
    pub reason: RejectReason,
    /// The explanation.
    pub message: String,
}

impl Rejection {
    /// A rejection.
    pub fn new(reason: RejectReason, message: String) -> Self {
        Self { reason, message }
    }
}

/// One rejected batch element, in the `SubmitReadings` response. Accepted elements are not
/// listed: every index not here was stored. (At 500 readings a batch, a result per accepted
/// reading would add ~55 KB to a transaction the BFT orderers cap at 500 KiB.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedReading {
    /// Position in the batch, from 0.
    pub index: usize,
    /// The meter, if the reading decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hid: Option<String>,
    /// The reading's timestamp (Unix ms), if it decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Why it was rejected.
    pub reason: RejectReason,
    /// Explanation of the rejection.
    pub message: String,
}

/// The `SubmitReadings` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitResponse {
    /// How many were stored.
    pub accepted: usize,
    /// How many were not.
    pub rejected: usize,
    /// The rejected elements, in batch order.
    pub rejections: Vec<RejectedReading>,
}

/// One accepted reading in the `ReadingsAccepted` event: its ledger key, not its bytes. The
/// event is stored in the block, so carrying the reading would store every reading twice and
/// push a 500-reading batch over the orderers' request limit; the MDMS fetches the bytes with
/// `GetReadings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReading {
    /// The meter.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// The reading's timestamp, Unix ms.
    pub timestamp: u64,
}

/// Payload of the `ReadingsAccepted` chaincode event (one per `SubmitReadings` transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadingsEvent {
    /// Accepted readings, in batch order.
    pub accepted: Vec<EventReading>,
    /// How many batch elements were rejected.
    pub rejected: usize,
}

/// Name of the event `SubmitReadings` emits.
pub const READINGS_EVENT: &str = "ReadingsAccepted";

/// What became of one reading of a batch, as a client reads the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingOutcome<'a> {
    /// Stored.
    Accepted,
    /// Not stored, and why.
    Rejected(&'a RejectedReading),
}

impl ReadingOutcome<'_> {
    /// The rejection code, if rejected.
    pub fn reason(self) -> Option<RejectReason> {
        match self {
            ReadingOutcome::Accepted => None,
            ReadingOutcome::Rejected(r) => Some(r.reason),
        }
    }
}

/// A `SubmitReadings` response that does not describe the batch it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseMismatch {
    /// The counts do not add up to the batch, or to the rejections listed.
    #[error(
        "SubmitReadings answered {accepted} accepted + {rejected} rejected ({listed} listed) for {expected} readings"
    )]
    Counts {
        /// `accepted`.
        accepted: usize,
        /// `rejected`.
        rejected: usize,
        /// Rejections listed.
        listed: usize,
        /// Readings sent.
        expected: usize,
    },
    /// A rejection names an index outside the batch, or one already named.
    #[error(
        "SubmitReadings rejected index {index} of a {expected}-reading batch twice or out of range"
    )]
    Index {
        /// The index.
        index: usize,
        /// Readings sent.
        expected: usize,
    },
}

impl SubmitResponse {
    /// One outcome per reading of the `expected`-reading batch this answers, in batch order;
    /// checks that the counts add up and that each rejection names a distinct index in it.
    pub fn outcomes(&self, expected: usize) -> Result<Vec<ReadingOutcome<'_>>, ResponseMismatch> {
        if self.accepted + self.rejected != expected || self.rejections.len() != self.rejected {
            return Err(ResponseMismatch::Counts {
                accepted: self.accepted,
                rejected: self.rejected,
                listed: self.rejections.len(),
                expected,
            });
        }
        let mut outcomes = vec![ReadingOutcome::Accepted; expected];
        for r in &self.rejections {
            match outcomes.get_mut(r.index) {
                Some(slot @ ReadingOutcome::Accepted) => *slot = ReadingOutcome::Rejected(r),
                _ => {
                    return Err(ResponseMismatch::Index {
                        index: r.index,
                        expected,
                    });
                }
            }
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(json: &[u8]) -> SubmitResponse {
        serde_json::from_slice(json).unwrap()
    }

    #[test]
    fn submit_response_gives_one_outcome_per_reading() {
        let r = response(
            br#"{"accepted":2,"rejected":1,"rejections":[
            {"index":1,"hid":"00","timestamp":5,"reason":"bad_signature","message":"m"}]}"#,
        );
        let outcomes = r.outcomes(3).unwrap();
        let reasons: Vec<Option<RejectReason>> = outcomes.iter().map(|o| o.reason()).collect();
        assert_eq!(reasons, [None, Some(RejectReason::BadSignature), None]);
        let ReadingOutcome::Rejected(rejected) = outcomes[1] else {
            panic!("{outcomes:?}");
        };
        assert_eq!(rejected.message, "m");
        // A new reason fails to compile here until it has a place; ALL lists each in its place.
        let place = |reason| match reason {
            RejectReason::BadBase64 => 0,
            RejectReason::Oversize => 1,
            RejectReason::Malformed => 2,
            RejectReason::UnknownMeter => 3,
            RejectReason::NotRegistered => 4,
            RejectReason::Revoked => 5,
            RejectReason::Stale => 6,
            RejectReason::Future => 7,
            RejectReason::Replayed => 8,
            RejectReason::BadSignature => 9,
        };
        for (i, reason) in RejectReason::ALL.into_iter().enumerate() {
            assert_eq!(place(reason), i, "{reason:?}");
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.code()));
        }
    }

    #[test]
    fn submit_response_that_does_not_add_up_is_refused() {
        let ok = response(
            br#"{"accepted":1,"rejected":1,"rejections":[
            {"index":1,"reason":"replayed","message":"m"}]}"#,
        );
        let err = ok.outcomes(3).unwrap_err().to_string();
        assert!(err.contains("for 3 readings"), "{err}");
        let listed_twice = response(
            br#"{"accepted":0,"rejected":2,"rejections":[
            {"index":0,"reason":"replayed","message":"m"},{"index":0,"reason":"stale","message":"m"}]}"#,
        );
        let err = listed_twice.outcomes(2).unwrap_err().to_string();
        assert!(err.contains("twice or out of range"), "{err}");
        let out_of_range = response(
            br#"{"accepted":0,"rejected":1,"rejections":[
            {"index":7,"reason":"stale","message":"m"}]}"#,
        );
        assert!(out_of_range.outcomes(1).is_err());
        let uncounted = response(
            br#"{"accepted":1,"rejected":0,"rejections":[
            {"index":0,"reason":"stale","message":"m"}]}"#,
        );
        assert!(uncounted.outcomes(1).is_err());
        assert!(serde_json::from_slice::<SubmitResponse>(b"[]").is_err());
    }
}
