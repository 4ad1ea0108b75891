//! Validating a batch of readings: the pure core of `SubmitReadings`. No ledger access here —
//! the caller loads the meter records, this decides, the caller writes.

use std::collections::BTreeMap;

use bcami_api::{
    EventReading, MeterRecord, MeterStatus, Placement, ReadingInput, ReadingsEvent, RejectReason,
    RejectedReading, Rejection, SubmitResponse, Window,
};
use bcami_sdk::{Hid, Timestamp, Transaction};

use crate::verify::{PreparedKey, Verifier};

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
    now: Timestamp,
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
        match check(&tx, entry, now, window, verifier) {
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
    now: Timestamp,
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
    let tx_millis = now.unix_millis();
    match window.place_at(tx.timestamp(), now) {
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
