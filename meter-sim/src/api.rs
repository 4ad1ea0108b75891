//! The BC-AMI contract's functions as typed calls over any [`Ledger`]: argument strings out,
//! JSON responses in (names and shapes from chaincode/contract/README.md).

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bcami_contract::state::KeyHash;
use bcami_sdk::{Hid, MdmsPublicKey, MeterPublicKey};
use serde::Deserialize;

use crate::ledger::{Ledger, Outcome, Rejection, Role};

/// Most HIDs one `ProvisionMeters` call takes.
pub const MAX_PROVISION: usize = 1_000;
/// Most readings one `SubmitReadings` call takes.
pub const MAX_BATCH: usize = 1_000;
/// Page size for `GetReadings` and `ListMeters`.
pub const PAGE_SIZE: u32 = 1_000;

/// Provisions meters (administrator), in calls of at most [`MAX_PROVISION`], each bound to the
/// hash of the key it was made with ("at manufacture"): only that key can then register the
/// meter, so a concentrator cannot register it first with a key of its own.
pub async fn provision_meters<L: Ledger>(
    ledger: &L,
    meters: &[(Hid, MeterPublicKey)],
) -> Result<()> {
    for chunk in meters.chunks(MAX_PROVISION) {
        let entries: Vec<serde_json::Value> = chunk
            .iter()
            .map(|(hid, key)| {
                serde_json::json!({
                    "hid": hid.to_string(),
                    "keyHash": KeyHash::of_meter_key(key).to_string(),
                })
            })
            .collect();
        let arg = serde_json::json!({ "meters": entries }).to_string();
        ledger
            .submit(Role::Administrator, "ProvisionMeters", vec![arg])
            .await?
            .map_err(|r| anyhow!("ProvisionMeters: {r}"))?;
    }
    Ok(())
}

/// Provisions the MDMS HID (administrator), bound to the hash of its key.
pub async fn provision_mdms<L: Ledger>(ledger: &L, hid: Hid, key: &MdmsPublicKey) -> Result<()> {
    let arg = serde_json::json!({
        "hid": hid.to_string(),
        "keyHash": KeyHash::of_mdms_key(key).to_string(),
    })
    .to_string();
    ledger
        .submit(Role::Administrator, "ProvisionMdms", vec![arg])
        .await?
        .map_err(|r| anyhow!("ProvisionMdms: {r}"))?;
    Ok(())
}

/// Registers the MDMS key (the request is base64-encoded here).
pub async fn register_mdms<L: Ledger>(ledger: &L, request: &[u8]) -> Result<Outcome> {
    ledger
        .submit(Role::Mdms, "RegisterMdmsKey", vec![BASE64.encode(request)])
        .await
}

/// Replaces the MDMS key (administrator); `request` is the new key's registration request.
pub async fn rotate_mdms_key<L: Ledger>(ledger: &L, request: &[u8]) -> Result<Outcome> {
    ledger
        .submit(
            Role::Administrator,
            "RotateMdmsKey",
            vec![BASE64.encode(request)],
        )
        .await
}

/// Registers a meter, relayed by a concentrator.
pub async fn register_meter<L: Ledger>(ledger: &L, role: Role, request: &[u8]) -> Result<Outcome> {
    ledger
        .submit(role, "RegisterMeter", vec![BASE64.encode(request)])
        .await
}

/// One element of the `SubmitReadings` response.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReadingResult {
    /// Position in the batch.
    pub index: usize,
    /// `accepted` or `rejected`.
    pub status: String,
    /// Rejection code.
    #[serde(default)]
    pub reason: Option<String>,
    /// Rejection message.
    #[serde(default)]
    pub message: Option<String>,
}

impl ReadingResult {
    /// Whether the reading was stored.
    pub fn accepted(&self) -> bool {
        self.status == "accepted"
    }
}

/// One rejected element of a `SubmitReadings` response.
#[derive(Deserialize)]
struct RejectionWire {
    index: usize,
    reason: String,
    message: String,
}

/// The contract lists only rejections; every other index was stored.
#[derive(Deserialize)]
struct SubmitResponse {
    accepted: usize,
    rejected: usize,
    rejections: Vec<RejectionWire>,
}

/// Parses the `SubmitReadings` response into one result per reading, in batch order; checks
/// that the counts add up to the batch and that each rejection names a distinct index in it.
pub fn parse_submit_response(bytes: &[u8], expected: usize) -> Result<Vec<ReadingResult>> {
    let response: SubmitResponse =
        serde_json::from_slice(bytes).context("SubmitReadings returned unexpected JSON")?;
    if response.accepted + response.rejected != expected
        || response.rejections.len() != response.rejected
    {
        return Err(anyhow!(
            "SubmitReadings answered {} accepted + {} rejected ({} listed) for {expected} readings",
            response.accepted,
            response.rejected,
            response.rejections.len()
        ));
    }
    let mut results: Vec<ReadingResult> = (0..expected)
        .map(|index| ReadingResult {
            index,
            status: "accepted".to_owned(),
            reason: None,
            message: None,
        })
        .collect();
    for r in response.rejections {
        let slot = results
            .get_mut(r.index)
            .filter(|slot| slot.accepted())
            .ok_or_else(|| {
                anyhow!(
                    "SubmitReadings rejected index {} of a {expected}-reading batch twice or out of range",
                    r.index
                )
            })?;
        slot.status = "rejected".to_owned();
        slot.reason = Some(r.reason);
        slot.message = Some(r.message);
    }
    Ok(results)
}

/// Submits a batch of readings through a concentrator.
pub async fn submit_readings<L: Ledger>(
    ledger: &L,
    role: Role,
    readings: &[Vec<u8>],
) -> Result<Result<Vec<ReadingResult>, Rejection>> {
    let batch: Vec<String> = readings.iter().map(|r| BASE64.encode(r)).collect();
    let arg = serde_json::to_string(&batch)?;
    match ledger.submit(role, "SubmitReadings", vec![arg]).await? {
        Ok(bytes) => parse_submit_response(&bytes, readings.len()).map(Ok),
        Err(rejection) => Ok(Err(rejection)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyWire {
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    key_version: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MeterViewWire {
    meter: KeyWire,
    #[serde(default)]
    keys: Vec<KeyWire>,
}

fn meter_public_key(text: &str) -> Result<MeterPublicKey> {
    hex::decode(text)
        .ok()
        .and_then(|b| MeterPublicKey::from_sec1_bytes(&b).ok())
        .ok_or_else(|| anyhow!("GetMeter returned a bad public key {text:?}"))
}

/// A meter as the ledger knows it.
#[derive(Clone, Debug)]
pub struct MeterInfo {
    /// The current key, once registered.
    pub public_key: Option<MeterPublicKey>,
    /// Every key the meter has had (after rotations), oldest first.
    pub keys: Vec<MeterPublicKey>,
}

/// `GetMeter`; `None` if the HID is not provisioned.
pub async fn meter<L: Ledger>(ledger: &L, role: Role, hid: Hid) -> Result<Option<MeterInfo>> {
    match ledger
        .evaluate(role, "GetMeter", vec![hid.to_string()])
        .await?
    {
        Ok(bytes) => {
            let wire: MeterViewWire =
                serde_json::from_slice(&bytes).context("GetMeter returned unexpected JSON")?;
            Ok(Some(MeterInfo {
                public_key: wire
                    .meter
                    .public_key
                    .as_deref()
                    .map(meter_public_key)
                    .transpose()?,
                keys: wire
                    .keys
                    .iter()
                    .filter_map(|k| k.public_key.as_deref())
                    .map(meter_public_key)
                    .collect::<Result<_>>()?,
            }))
        }
        Err(r) if r.status == Some(404) => Ok(None),
        Err(r) => Err(anyhow!("GetMeter {hid}: {r}")),
    }
}

/// `GetMdmsKey`; `None` if no MDMS key is registered.
pub async fn mdms_key<L: Ledger>(ledger: &L, role: Role) -> Result<Option<MdmsPublicKey>> {
    Ok(mdms_record(ledger, role).await?.map(|(key, _)| key))
}

/// The version of the MDMS key on the ledger: 1 once registered, +1 per rotation.
pub async fn mdms_key_version<L: Ledger>(ledger: &L) -> Result<u32> {
    mdms_record(ledger, Role::Mdms)
        .await?
        .map(|(_, version)| version)
        .ok_or_else(|| anyhow!("the ledger has no MDMS key"))
}

async fn mdms_record<L: Ledger>(ledger: &L, role: Role) -> Result<Option<(MdmsPublicKey, u32)>> {
    match ledger.evaluate(role, "GetMdmsKey", Vec::new()).await? {
        Ok(bytes) => {
            let wire: KeyWire =
                serde_json::from_slice(&bytes).context("GetMdmsKey returned unexpected JSON")?;
            let Some(k) = wire.public_key else {
                return Ok(None);
            };
            let key = hex::decode(&k)
                .ok()
                .and_then(|b| MdmsPublicKey::from_sec1_bytes(&b).ok())
                .ok_or_else(|| anyhow!("GetMdmsKey returned a bad public key {k:?}"))?;
            Ok(Some((key, wire.key_version.max(1))))
        }
        Err(r) if r.status == Some(404) => Ok(None),
        Err(r) => Err(anyhow!("GetMdmsKey: {r}")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadingWire {
    reading: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadingsPageWire {
    readings: Vec<ReadingWire>,
    #[serde(default)]
    bookmark: Option<String>,
}

/// Every committed reading of a meter with `from <= timestamp <= to` (as the MDMS), following
/// the pagination bookmark: the raw transactions, in time order.
pub async fn readings<L: Ledger>(ledger: &L, hid: Hid, from: u64, to: u64) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut bookmark = String::new();
    loop {
        let query = serde_json::json!({
            "hid": hid.to_string(),
            "from": from,
            "to": to,
            "pageSize": PAGE_SIZE,
            "bookmark": bookmark,
        })
        .to_string();
        let bytes = ledger
            .evaluate(Role::Mdms, "GetReadings", vec![query])
            .await?
            .map_err(|r| anyhow!("GetReadings {hid}: {r}"))?;
        let page: ReadingsPageWire =
            serde_json::from_slice(&bytes).context("GetReadings returned unexpected JSON")?;
        for reading in page.readings {
            out.push(
                BASE64
                    .decode(&reading.reading)
                    .context("GetReadings returned a reading that is not base64")?,
            );
        }
        match page.bookmark {
            Some(next) if !next.is_empty() && next != bookmark => bookmark = next,
            _ => break,
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedMeter {
    hid: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetersPageWire {
    meters: Vec<ListedMeter>,
    #[serde(default)]
    bookmark: Option<String>,
}

/// Every provisioned meter's HID (as the MDMS), following the pagination bookmark.
pub async fn list_meters<L: Ledger>(ledger: &L) -> Result<Vec<Hid>> {
    let mut out = Vec::new();
    let mut bookmark = String::new();
    loop {
        let query = serde_json::json!({ "pageSize": PAGE_SIZE, "bookmark": bookmark }).to_string();
        let bytes = ledger
            .evaluate(Role::Mdms, "ListMeters", vec![query])
            .await?
            .map_err(|r| anyhow!("ListMeters: {r}"))?;
        let page: MetersPageWire =
            serde_json::from_slice(&bytes).context("ListMeters returned unexpected JSON")?;
        for meter in page.meters {
            out.push(
                meter
                    .hid
                    .parse()
                    .map_err(|_| anyhow!("ListMeters returned a bad HID {:?}", meter.hid))?,
            );
        }
        match page.bookmark {
            Some(next) if !next.is_empty() && next != bookmark => bookmark = next,
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_response_gives_one_result_per_reading() {
        let json = br#"{"accepted":2,"rejected":1,"rejections":[
            {"index":1,"hid":"00","timestamp":5,"reason":"bad_signature","message":"m"}]}"#;
        let results = parse_submit_response(json, 3).unwrap();
        let statuses: Vec<&str> = results.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses, ["accepted", "rejected", "accepted"]);
        assert_eq!(results[1].reason.as_deref(), Some("bad_signature"));
        assert_eq!(results[1].message.as_deref(), Some("m"));
    }

    #[test]
    fn submit_response_that_does_not_add_up_is_refused() {
        let ok = br#"{"accepted":1,"rejected":1,"rejections":[
            {"index":1,"reason":"replayed","message":"m"}]}"#;
        let err = parse_submit_response(ok, 3).unwrap_err().to_string();
        assert!(err.contains("for 3 readings"), "{err}");
        let listed_twice = br#"{"accepted":0,"rejected":2,"rejections":[
            {"index":0,"reason":"replayed","message":"m"},{"index":0,"reason":"stale","message":"m"}]}"#;
        let err = parse_submit_response(listed_twice, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice or out of range"), "{err}");
        let out_of_range = br#"{"accepted":0,"rejected":1,"rejections":[
            {"index":7,"reason":"stale","message":"m"}]}"#;
        assert!(parse_submit_response(out_of_range, 1).is_err());
        let uncounted = br#"{"accepted":1,"rejected":0,"rejections":[
            {"index":0,"reason":"stale","message":"m"}]}"#;
        assert!(parse_submit_response(uncounted, 1).is_err());
        assert!(parse_submit_response(b"[]", 0).is_err());
    }
}
