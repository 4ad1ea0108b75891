//! Validating a batch of readings: the pure core of `SubmitReadings`. No ledger access here —
//! the caller loads the meter records, this decides, the caller writes.

use std::collections::BTreeMap;

use bcami_sdk::{Hid, Transaction};
use serde::{Deserialize, Serialize};

use crate::args::ReadingInput;
use crate::config::{Placement, Window};
use crate::state::{MeterRecord, MeterStatus, hid_hex};
use crate::verify::{PreparedKey, Verifier};

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

/// An accepted reading, to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The meter.
    pub hid: Hid,
    /// Its timestamp.
    pub timestamp: u64,
    /// The encoded transaction.
    pub bytes: Vec<u8>,
}

/// What validating a batch decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The rejected elements, in batch order.
    pub rejections: Vec<RejectedReading>,
    /// Accepted readings, in batch order.
    pub accepted: Vec<Accepted>,
    /// Meter records changed by accepted readings, by HID.
    pub meters: BTreeMap<Hid, MeterRecord>,
}

impl BatchOutcome {
    /// The response.
    pub fn response(&self) -> SubmitResponse {
        SubmitResponse {
            accepted: self.accepted.len(),
            rejected: self.rejections.len(),
            rejections: self.rejections.clone(),
        }
    }

    /// The event payload.
    pub fn event(&self) -> ReadingsEvent {
        ReadingsEvent {
            accepted: self
                .accepted
                .iter()
                .map(|a| EventReading {
                    hid: a.hid,
                    timestamp: a.timestamp,
                })
                .collect(),
            rejected: self.rejections.len(),
        }
    }
}

struct Working {
    record: MeterRecord,
    key: Option<PreparedKey>,
    changed: bool,
}

/// Validate each reading on its own, in batch order. `meters` holds the committed record of
/// every HID in the batch (`None`: not provisioned). Readings of one meter are checked against
/// that meter's last accepted timestamp *including* readings accepted earlier in this batch, so a
/// meter may appear several times if its timestamps strictly increase in batch order.
pub fn validate_batch(
    inputs: Vec<ReadingInput>,
    meters: &BTreeMap<Hid, Option<MeterRecord>>,
    tx_millis: i64,
    window: Window,
    verifier: &Verifier,
) -> BatchOutcome {
    let mut working: BTreeMap<Hid, Working> = BTreeMap::new();
    let mut rejections = Vec::new();
    let mut accepted = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let tx = match input {
            ReadingInput::Rejected(r) => {
                rejections.push(rejected(index, None, r));
                continue;
            }
            ReadingInput::Decoded(tx) => tx,
        };
        let hid = tx.hid();
        let entry = match working.entry(hid) {
            std::collections::btree_map::Entry::Occupied(o) => Some(o.into_mut()),
            std::collections::btree_map::Entry::Vacant(v) => match meters.get(&hid) {
                Some(Some(record)) => Some(v.insert(Working {
                    key: record.public_key.as_ref().and_then(|k| verifier.prepare(k)),
                    record: record.clone(),
                    changed: false,
                })),
                _ => None,
            },
        };
        match check(&tx, entry, tx_millis, window, verifier) {
            Ok(()) => {
                accepted.push(Accepted {
                    hid,
                    timestamp: tx.timestamp().unix_millis(),
                    bytes: tx.encode(),
                });
            }
            Err(r) => rejections.push(rejected(index, Some(&tx), r)),
        }
    }
    let meters = working
        .into_iter()
        .filter(|(_, w)| w.changed)
        .map(|(h, w)| (h, w.record))
        .collect();
    BatchOutcome {
        rejections,
        accepted,
        meters,
    }
}

fn rejected(index: usize, tx: Option<&Transaction>, r: Rejection) -> RejectedReading {
    RejectedReading {
        index,
        hid: tx.map(|t| t.hid().to_string()),
        timestamp: tx.map(|t| t.timestamp().unix_millis()),
        reason: r.reason,
        message: r.message,
    }
}

/// Checks in order of cost: meter state, window, replay, then the signature. On success the
/// working record is advanced.
fn check(
    tx: &Transaction,
    meter: Option<&mut Working>,
    tx_millis: i64,
    window: Window,
    verifier: &Verifier,
) -> Result<(), Rejection> {
    let hid = tx.hid();
    let Some(meter) = meter else {
        return Err(Rejection::new(
            RejectReason::UnknownMeter,
            format!("meter {hid} is not provisioned"),
        ));
    };
    match meter.record.status {
        MeterStatus::Provisioned => {
            return Err(Rejection::new(
                RejectReason::NotRegistered,
                format!("meter {hid} has not registered a key"),
            ));
        }
        MeterStatus::Revoked => {
            return Err(Rejection::new(
                RejectReason::Revoked,
                format!("meter {hid} is revoked"),
            ));
        }
        MeterStatus::Active => {}
    }
    let timestamp = tx.timestamp().unix_millis();
    match window.place(timestamp, tx_millis) {
        Placement::Stale => {
            return Err(Rejection::new(
                RejectReason::Stale,
                format!(
                    "timestamp {timestamp} is more than {} ms before the transaction timestamp {tx_millis}",
                    window.past_ms
                ),
            ));
        }
        Placement::Future => {
            return Err(Rejection::new(
                RejectReason::Future,
                format!(
                    "timestamp {timestamp} is more than {} ms after the transaction timestamp {tx_millis}",
                    window.future_ms
                ),
            ));
        }
        Placement::Inside => {}
    }
    if let Some(last) = meter.record.last_timestamp {
        if timestamp <= last {
            return Err(Rejection::new(
                RejectReason::Replayed,
                format!("timestamp {timestamp} is not after the meter's last accepted {last}"),
            ));
        }
    }
    let valid = meter.key.as_ref().is_some_and(|k| verifier.verify(k, tx));
    if !valid {
        return Err(Rejection::new(
            RejectReason::BadSignature,
            format!(
                "signature does not verify under key version {} over the recomputed SHA-256(E(UD)) (altered ciphertext, header or signature, or another key)",
                meter.record.key_version
            ),
        ));
    }
    meter.record.last_timestamp = Some(timestamp);
    meter.record.readings += 1;
    meter.changed = true;
    Ok(())
}
