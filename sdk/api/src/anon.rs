//! The anonymous-readings interface (the DAA paper, on `bcami-anon`): arguments, records,
//! responses and rejection codes of `SetAnonIssuerKey`, `RequestAnonCredential`,
//! `PostAnonCredential`, `SubmitAnonReadings` and their reads. The cryptography is
//! `bcami-anon`'s; this crate only carries its encodings (base64 on the wire) and never decodes
//! them, so that clients do not link the pairing library.
//!
//! What the ledger stores links no two periods of one meter: per period, pseudonyms `K = J·f`
//! (a fresh `J` per period), per-batch sums, and the evidence of double reports. The issuance
//! record holds the join commitment `C = H_f·f`, which tracing needs; in BLS12-381's G1 (no
//! pairing between two G1 points, XDH) it cannot be matched against any `K`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_sdk::Hid;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::records::hid_hex;

/// Most anonymous readings in one `SubmitAnonReadings` call.
pub const MAX_ANON_BATCH: usize = 500;
/// Largest anonymous reading accepted, in bytes (a v1 presentation is 380).
pub const MAX_ANON_READING_BYTES: usize = 512;
/// Base64 length of a reading of [`MAX_ANON_READING_BYTES`].
pub const MAX_ANON_READING_BASE64: usize = MAX_ANON_READING_BYTES.div_ceil(3) * 4;
/// Largest `SubmitAnonReadings` argument, in bytes.
pub const MAX_ANON_BATCH_ARG_BYTES: usize = 1024 * 1024;
/// Largest issuer key or credential argument, in base64 characters.
pub const MAX_ANON_KEY_BASE64: usize = 256;
/// Shortest anonymous period, seconds.
pub const MIN_ANON_PERIOD_SECS: u32 = 60;
/// Longest anonymous period, seconds.
pub const MAX_ANON_PERIOD_SECS: u32 = 86_400;
/// How long after a new issuer key (its transaction time) readings of the previous epoch are
/// still accepted, Unix ms: meters fetch their next credential in this time.
pub const ANON_ROLLOVER_MS: u64 = 3_600_000;

/// The nonce a meter's join proof must be bound to: the ledger's, derived from the transaction
/// that set the epoch's issuer key and the meter's HID, so a join proof made for one epoch or
/// meter is useless for any other.
pub fn anon_join_nonce(issuer_key_tx_id: &str, hid: &Hid) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"BC-AMI/1 anon join nonce\0")
        .chain_update(issuer_key_tx_id.as_bytes())
        .chain_update([0])
        .chain_update(hid.as_bytes())
        .finalize()
        .into()
}

/// SHA-256 of an anonymous reading's bytes, hex: tells a replay (same bytes) from a double report.
pub fn anon_reading_hash(bytes: &[u8]) -> String {
    crate::to_hex(&Sha256::digest(bytes))
}

/// Why one anonymous reading was rejected: a stable, machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnonRejectReason {
    /// The batch element is not standard base64.
    BadBase64,
    /// The reading is larger than the limit.
    Oversize,
    /// The bytes are not a well-formed presentation (kind `0x24`), or carry invalid points.
    Malformed,
    /// No issuer key is set for the reading's credential epoch.
    UnknownEpoch,
    /// The reading's credential epoch is not current (and its rollover time has passed).
    OldEpoch,
    /// The period is not the ledger's: wrong length, or not aligned to it.
    BadPeriod,
    /// The period ended before the window around the transaction time.
    Stale,
    /// The period starts after the window around the transaction time.
    Future,
    /// The proof does not verify under the epoch's issuer key.
    BadProof,
    /// The same reading (same bytes) was accepted before, or earlier in this batch.
    Replayed,
    /// A different valid reading with the same pseudonym in the same period was accepted
    /// before: the meter reported twice. Kept as evidence (`GetAnonDoubleReports`).
    DoubleReport,
}

impl AnonRejectReason {
    /// The code as it appears in JSON.
    pub fn code(self) -> &'static str {
        match self {
            AnonRejectReason::BadBase64 => "bad_base64",
            AnonRejectReason::Oversize => "oversize",
            AnonRejectReason::Malformed => "malformed",
            AnonRejectReason::UnknownEpoch => "unknown_epoch",
            AnonRejectReason::OldEpoch => "old_epoch",
            AnonRejectReason::BadPeriod => "bad_period",
            AnonRejectReason::Stale => "stale",
            AnonRejectReason::Future => "future",
            AnonRejectReason::BadProof => "bad_proof",
            AnonRejectReason::Replayed => "replayed",
            AnonRejectReason::DoubleReport => "double_report",
        }
    }
}

/// One element of a `SubmitAnonReadings` batch after parsing: its bytes (decoded and verified
/// by the contract), or a rejection found without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnonInput {
    /// The reading's bytes.
    Bytes(Vec<u8>),
    /// Refused already (bad base64, oversize): the reason and an explanation.
    Rejected(AnonRejectReason, String),
}

/// One base64 anonymous reading of a batch: its bytes, or why not.
pub fn parse_anon_reading(item: &str) -> AnonInput {
    if item.len() > MAX_ANON_READING_BASE64 {
        return AnonInput::Rejected(
            AnonRejectReason::Oversize,
            format!(
                "{} base64 characters; an anonymous reading is at most {MAX_ANON_READING_BYTES} bytes",
                item.len()
            ),
        );
    }
    match STANDARD.decode(item) {
        Ok(bytes) if bytes.len() > MAX_ANON_READING_BYTES => AnonInput::Rejected(
            AnonRejectReason::Oversize,
            format!(
                "{} bytes; an anonymous reading is at most {MAX_ANON_READING_BYTES}",
                bytes.len()
            ),
        ),
        Ok(bytes) => AnonInput::Bytes(bytes),
        Err(_) => AnonInput::Rejected(
            AnonRejectReason::BadBase64,
            "not standard base64 (RFC 4648 §4, with padding)".into(),
        ),
    }
}

/// `SetAnonIssuerKey`'s argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnonIssuerKeyArg {
    /// The encoded issuer public key (kind `0x21`), base64.
    pub issuer_key: String,
    /// The length of every anonymous period, seconds; the same for every epoch.
    pub period_secs: u32,
}

/// `PostAnonCredential`'s argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnonCredentialArg {
    /// The meter.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// The encoded credential (kind `0x23`), base64.
    pub credential: String,
}

/// `GetAnonCredential`'s argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnonCredentialQuery {
    /// The meter.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// The credential epoch.
    pub epoch: u32,
}

/// `GetAnonAggregate`'s and `GetAnonDoubleReports`' argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnonPeriodQuery {
    /// The period's start, Unix ms.
    pub period_start: u64,
}

/// `RecordAnonTrace`'s argument: the meter a trace named for a double-reported pseudonym.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnonTraceArg {
    /// The period's start, Unix ms.
    pub period_start: u64,
    /// The pseudonym (compressed G1), 96 hex digits.
    pub pseudonym: String,
    /// The meter that could not prove the pseudonym was not its own.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// How many other meters proved it was not theirs (the tracer's count, for the record).
    pub cleared: u64,
}

/// `anontrace~PERIOD~K`: the outcome of a trace. The traced meter is revoked in the same
/// transaction: it gets no next-epoch credential and no identified readings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonTraceRecord {
    /// The period's start, Unix ms.
    pub period_start: u64,
    /// The pseudonym, hex.
    pub pseudonym: String,
    /// The culprit.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// Meters that proved the pseudonym was not theirs.
    pub cleared: u64,
    /// Transaction that recorded it.
    pub tx_id: String,
}

/// `anonissuer~EPOCH`: the issuer key of one credential epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonIssuerRecord {
    /// The credential epoch.
    pub epoch: u32,
    /// The encoded issuer public key, base64.
    pub issuer_key: String,
    /// The period length, seconds.
    pub period_secs: u32,
    /// Transaction that set it (the join nonces derive from it).
    pub tx_id: String,
    /// Its transaction time, Unix ms: the previous epoch's readings are accepted until this
    /// plus [`ANON_ROLLOVER_MS`].
    pub since: i64,
}

/// `anonjoin~EPOCH~HID`: a meter's credential request for one epoch, and the credential once
/// posted. Public: anonymity holds against the issuer too, and the commitment is what tracing
/// checks a meter's proof against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonJoinRecord {
    /// The meter.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// The credential epoch.
    pub epoch: u32,
    /// The `bcami-anon` join request (kind `0x22`), base64: its commitment `C = H_f·f`.
    pub join_request: String,
    /// Transaction of the request.
    pub request_tx: String,
    /// The credential (kind `0x23`), base64, once posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Transaction that posted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_tx: Option<String>,
}

/// `anonnym~PERIOD~K`: the first accepted reading of a pseudonym in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonNymRecord {
    /// SHA-256 of the accepted reading's bytes, hex.
    pub reading_hash: String,
    /// Transaction that accepted it.
    pub tx_id: String,
}

/// `anonagg~PERIOD~TXID`: what one transaction added to one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonBatchAggregate {
    /// Who submitted the batch: `MSP id/subject` of the concentrator's identity.
    pub concentrator: String,
    /// Readings accepted for the period.
    pub count: u64,
    /// Their energy, Wh.
    pub sum_wh: u64,
}

/// `anondup~PERIOD~K~TXID~INDEX`: a double report, the evidence for tracing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonDoubleReport {
    /// The period's start, Unix ms.
    pub period_start: u64,
    /// The pseudonym (compressed G1), hex.
    pub pseudonym: String,
    /// The rejected second reading, base64 (a valid presentation: anyone can re-verify it).
    pub reading: String,
    /// SHA-256 of the first accepted reading, hex.
    pub first_reading_hash: String,
    /// Transaction that accepted the first.
    pub first_tx: String,
    /// Transaction that carried the second.
    pub tx_id: String,
    /// Who submitted the second.
    pub concentrator: String,
}

/// One rejected element of a `SubmitAnonReadings` batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonRejected {
    /// Position in the batch, from 0.
    pub index: usize,
    /// Why.
    pub reason: AnonRejectReason,
    /// Explanation.
    pub message: String,
}

/// The `SubmitAnonReadings` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonSubmitResponse {
    /// How many were added to their period's aggregate.
    pub accepted: usize,
    /// How many were not.
    pub rejected: usize,
    /// The rejected elements, in batch order.
    pub rejections: Vec<AnonRejected>,
}

impl AnonSubmitResponse {
    /// Per reading of the `expected`-reading batch, `None` if accepted, else why not; `None` as
    /// a whole if the response does not describe such a batch.
    pub fn reasons(&self, expected: usize) -> Option<Vec<Option<AnonRejectReason>>> {
        if self.accepted + self.rejected != expected || self.rejections.len() != self.rejected {
            return None;
        }
        let mut out = vec![None; expected];
        for r in &self.rejections {
            match out.get_mut(r.index) {
                Some(slot @ None) => *slot = Some(r.reason),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// One concentrator's share of a period's aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcentratorAggregate {
    /// `MSP id/subject` of the concentrator's identity.
    pub concentrator: String,
    /// Readings.
    pub count: u64,
    /// Energy, Wh.
    pub sum_wh: u64,
}

/// `GetAnonAggregate`: a period's sum (the paper's `M_OC`, eq. 29) and each concentrator's part
/// (its `M_j`, eq. 24), computed by the contract from verified readings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonAggregate {
    /// The period's start, Unix ms.
    pub period_start: u64,
    /// Accepted readings.
    pub count: u64,
    /// Their energy, Wh.
    pub sum_wh: u64,
    /// Per concentrator, by name.
    pub concentrators: Vec<ConcentratorAggregate>,
    /// Double reports caught in the period.
    pub double_reports: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_classified_without_decoding() {
        assert_eq!(parse_anon_reading("AAEC"), AnonInput::Bytes(vec![0, 1, 2]));
        assert!(matches!(
            parse_anon_reading("***"),
            AnonInput::Rejected(AnonRejectReason::BadBase64, _)
        ));
        assert!(matches!(
            parse_anon_reading(&"A".repeat(MAX_ANON_READING_BASE64 + 4)),
            AnonInput::Rejected(AnonRejectReason::Oversize, _)
        ));
        let just = STANDARD.encode(vec![0u8; MAX_ANON_READING_BYTES + 1]);
        assert!(matches!(
            parse_anon_reading(&just),
            AnonInput::Rejected(AnonRejectReason::Oversize, _)
        ));
    }

    #[test]
    fn reasons_are_stable_codes_and_responses_must_add_up() {
        for reason in [
            AnonRejectReason::BadBase64,
            AnonRejectReason::Oversize,
            AnonRejectReason::Malformed,
            AnonRejectReason::UnknownEpoch,
            AnonRejectReason::OldEpoch,
            AnonRejectReason::BadPeriod,
            AnonRejectReason::Stale,
            AnonRejectReason::Future,
            AnonRejectReason::BadProof,
            AnonRejectReason::Replayed,
            AnonRejectReason::DoubleReport,
        ] {
            let json = serde_json::to_string(&reason).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", reason.code()));
        }
        let response = AnonSubmitResponse {
            accepted: 1,
            rejected: 1,
            rejections: vec![AnonRejected {
                index: 1,
                reason: AnonRejectReason::Replayed,
                message: String::new(),
            }],
        };
        assert_eq!(
            response.reasons(2),
            Some(vec![None, Some(AnonRejectReason::Replayed)])
        );
        assert_eq!(response.reasons(3), None);
    }

    #[test]
    fn join_nonces_differ_per_meter_and_per_key_transaction() {
        let (a, b) = (Hid::from_meter_id("SM-1"), Hid::from_meter_id("SM-2"));
        assert_ne!(anon_join_nonce("tx1", &a), anon_join_nonce("tx1", &b));
        assert_ne!(anon_join_nonce("tx1", &a), anon_join_nonce("tx2", &a));
        assert_eq!(anon_join_nonce("tx1", &a), anon_join_nonce("tx1", &a));
    }
}
