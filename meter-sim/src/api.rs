//! The BC-AMI contract's functions as typed calls over any [`Ledger`]: requests and responses are
//! `bcami_api`'s types (names and shapes in chaincode/contract/README.md).

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bcami_api::{
    ErrorCode, KeyHash, MAX_PAGE_SIZE, MAX_PROVISION, MdmsView, MeterView, MetersPage,
    MetersRequest, ProvisionEntry, ReadingsPage, ReadingsRequest, RejectReason, Request,
    SubmitResponse,
};
use bcami_sdk::{Hid, MdmsPublicKey, MeterPublicKey};
use serde::de::DeserializeOwned;

use crate::ledger::{Ledger, Outcome, Rejection, Role};

/// Submits `request` as `role`.
async fn submit<L: Ledger>(ledger: &L, role: Role, request: Request<'_>) -> Result<Outcome> {
    ledger
        .submit(role, request.function(), request.args())
        .await
}

/// Evaluates `request` as `role`.
async fn evaluate<L: Ledger>(ledger: &L, role: Role, request: Request<'_>) -> Result<Outcome> {
    ledger
        .evaluate(role, request.function(), request.args())
        .await
}

/// A response of the type `T`, or an error naming the function.
fn parse<T: DeserializeOwned>(request: &Request<'_>, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .with_context(|| format!("{} returned unexpected JSON", request.function()))
}

/// Provisions meters (administrator), in calls of at most [`MAX_PROVISION`], each bound to the
/// hash of the key it was made with ("at manufacture"): only that key can then register the
/// meter, so a concentrator cannot register it first with a key of its own.
pub async fn provision_meters<L: Ledger>(
    ledger: &L,
    meters: &[(Hid, MeterPublicKey)],
) -> Result<()> {
    for chunk in meters.chunks(MAX_PROVISION) {
        let entries: Vec<ProvisionEntry> = chunk
            .iter()
            .map(|(hid, key)| ProvisionEntry::Bound {
                hid: *hid,
                key_hash: KeyHash::of_meter_key(key),
            })
            .collect();
        let request = Request::ProvisionMeters(&entries);
        let function = request.function();
        submit(ledger, Role::Administrator, request)
            .await?
            .map_err(|r| anyhow!("{function}: {r}"))?;
    }
    Ok(())
}

/// Provisions the MDMS HID (administrator), bound to the hash of its key.
pub async fn provision_mdms<L: Ledger>(ledger: &L, hid: Hid, key: &MdmsPublicKey) -> Result<()> {
    let request = Request::ProvisionMdms(ProvisionEntry::Bound {
        hid,
        key_hash: KeyHash::of_mdms_key(key),
    });
    let function = request.function();
    submit(ledger, Role::Administrator, request)
        .await?
        .map_err(|r| anyhow!("{function}: {r}"))?;
    Ok(())
}

/// Registers the MDMS key (an encoded `MdmsRegistrationRequest`).
pub async fn register_mdms<L: Ledger>(ledger: &L, request: &[u8]) -> Result<Outcome> {
    submit(ledger, Role::Mdms, Request::RegisterMdmsKey(request)).await
}

/// Replaces the MDMS key (administrator); `request` is the new key's registration request.
pub async fn rotate_mdms_key<L: Ledger>(ledger: &L, request: &[u8]) -> Result<Outcome> {
    submit(ledger, Role::Administrator, Request::RotateMdmsKey(request)).await
}

/// Registers a meter, relayed by a concentrator.
pub async fn register_meter<L: Ledger>(ledger: &L, role: Role, request: &[u8]) -> Result<Outcome> {
    submit(ledger, role, Request::RegisterMeter(request)).await
}

/// Parses the `SubmitReadings` response into one result per reading, in batch order (`None`:
/// stored); checks that it describes a batch of `expected` readings.
pub fn parse_submit_response(bytes: &[u8], expected: usize) -> Result<Vec<Option<RejectReason>>> {
    let response: SubmitResponse =
        serde_json::from_slice(bytes).context("SubmitReadings returned unexpected JSON")?;
    Ok(response
        .outcomes(expected)?
        .into_iter()
        .map(|o| o.reason())
        .collect())
}

/// Submits a batch of readings through a concentrator: per reading, `None` if stored, else why
/// not.
pub async fn submit_readings<L: Ledger>(
    ledger: &L,
    role: Role,
    readings: &[Vec<u8>],
) -> Result<Result<Vec<Option<RejectReason>>, Rejection>> {
    match submit(ledger, role, Request::SubmitReadings(readings)).await? {
        Ok(bytes) => parse_submit_response(&bytes, readings.len()).map(Ok),
        Err(rejection) => Ok(Err(rejection)),
    }
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
    let request = Request::GetMeter(hid);
    match evaluate(ledger, role, request.clone()).await? {
        Ok(bytes) => {
            let view: MeterView = parse(&request, &bytes)?;
            Ok(Some(MeterInfo {
                public_key: view.meter.public_key,
                keys: view.keys.iter().map(|k| k.public_key).collect(),
            }))
        }
        Err(r) if r.code == Some(ErrorCode::UnknownMeter) => Ok(None),
        Err(r) => Err(anyhow!("{} {hid}: {r}", request.function())),
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
    let request = Request::GetMdmsKey;
    match evaluate(ledger, role, request.clone()).await? {
        Ok(bytes) => {
            let view: MdmsView = parse(&request, &bytes)?;
            let version = view.mdms.current_key_version();
            Ok(view.mdms.public_key.map(|key| (key, version)))
        }
        Err(r)
            if matches!(
                r.code,
                Some(ErrorCode::UnknownMdms | ErrorCode::MdmsNotRegistered)
            ) =>
        {
            Ok(None)
        }
        Err(r) => Err(anyhow!("{}: {r}", request.function())),
    }
}

/// Every committed reading of a meter with `from <= timestamp <= to` (as the MDMS), following
/// the pagination bookmark: the raw transactions, in time order.
pub async fn readings<L: Ledger>(ledger: &L, hid: Hid, from: u64, to: u64) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut query = ReadingsRequest {
        hid,
        from: Some(from),
        to: Some(to),
        page_size: Some(MAX_PAGE_SIZE),
        bookmark: String::new(),
    };
    loop {
        let request = Request::GetReadings(&query);
        let bytes = evaluate(ledger, Role::Mdms, request.clone())
            .await?
            .map_err(|r| anyhow!("{} {hid}: {r}", request.function()))?;
        let page: ReadingsPage = parse(&request, &bytes)?;
        for reading in page.readings {
            out.push(
                BASE64
                    .decode(&reading.reading)
                    .context("GetReadings returned a reading that is not base64")?,
            );
        }
        if page.bookmark.is_empty() || page.bookmark == query.bookmark {
            break;
        }
        query.bookmark = page.bookmark;
    }
    Ok(out)
}

/// Every provisioned meter's HID (as the MDMS), following the pagination bookmark.
pub async fn list_meters<L: Ledger>(ledger: &L) -> Result<Vec<Hid>> {
    let mut out = Vec::new();
    let mut query = MetersRequest {
        page_size: Some(MAX_PAGE_SIZE),
        bookmark: String::new(),
    };
    loop {
        let request = Request::ListMeters(&query);
        let bytes = evaluate(ledger, Role::Mdms, request.clone())
            .await?
            .map_err(|r| anyhow!("{}: {r}", request.function()))?;
        let page: MetersPage = parse(&request, &bytes)?;
        out.extend(page.meters.iter().map(|m| m.hid));
        if page.bookmark.is_empty() || page.bookmark == query.bookmark {
            break;
        }
        query.bookmark = page.bookmark;
    }
    Ok(out)
}
