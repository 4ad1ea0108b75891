//! Anonymous readings (the DAA paper on `bcami-anon`): issuer keys per credential epoch,
//! credential requests and issuance, `SubmitAnonReadings`, and the reads.
//!
//! Every check is deterministic: presentations are verified on the `blst` backend with
//! `bcami_anon::verify_batch` (weights from the batch's bytes), windows against the transaction
//! time, and all state is read and written in key order.
//!
//! State (see the README's *State layout*): `anonepoch` (the current issuer record),
//! `anonissuer~EPOCH`, `anonjoin~EPOCH~HID`, `anonnym~PERIOD~K` (first reading of a pseudonym
//! in a period: the key two concurrent submissions of one pseudonym conflict on),
//! `anonagg~PERIOD~TXID` (what one transaction added to a period: no hot key),
//! `anondup~PERIOD~K~TXID~INDEX` (double-report evidence).

use std::collections::BTreeMap;

use bcami_anon::{
    AnonReport, Blst, Credential, IssuerPublicKey, JoinRequest, Presentation, verify_batch,
};
use bcami_api::{
    ANON_ROLLOVER_MS, AnonAggregate, AnonBatchAggregate, AnonCredentialQuery, AnonDoubleReport,
    AnonInput, AnonIssuerRecord, AnonJoinRecord, AnonNymRecord, AnonRejectReason, AnonRejected,
    AnonSubmitResponse, AnonTraceRecord, ConcentratorAggregate, Config, MeterRecord, MeterStatus,
    Placement, anon_join_nonce, anon_reading_hash, to_hex,
};
use bcami_sdk::{AnonCredentialRequest, Hid, Timestamp};
use fabric_shim::{KeyRange, Stub, composite_key};

use crate::error::{Error, Subject};
use crate::state;

/// Simple key of the current issuer record.
pub const ANON_EPOCH_KEY: &str = "anonepoch";
/// Object type of issuer records: `anonissuer~EPOCH` (10 digits).
pub const ANON_ISSUER: &str = "anonissuer";
/// Object type of credential requests: `anonjoin~EPOCH~HID`.
pub const ANON_JOIN: &str = "anonjoin";
/// Object type of pseudonyms: `anonnym~PERIOD~K` (20-digit Unix ms, 96 hex).
pub const ANON_NYM: &str = "anonnym";
/// Object type of per-transaction aggregates: `anonagg~PERIOD~TXID`.
pub const ANON_AGGREGATE: &str = "anonagg";
/// Object type of double reports: `anondup~PERIOD~K~TXID~INDEX`.
pub const ANON_DOUBLE: &str = "anondup";
/// Object type of a meter's join commitment, the same in every epoch: `anonsecret~HID`.
pub const ANON_SECRET: &str = "anonsecret";
/// Object type of trace outcomes: `anontrace~PERIOD~K`.
pub const ANON_TRACE: &str = "anontrace";
/// Most energy one anonymous reading may carry, Wh (1 GWh: far above any meter's period, and
/// low enough that no batch sum overflows).
pub const MAX_ANON_ENERGY_WH: u64 = 1_000_000_000;

type Ipk = IssuerPublicKey<Blst>;

fn period_part(start: u64) -> String {
    format!("{start:020}")
}

/// `anonnym~PERIOD~K`: the ledger key of a pseudonym in a period.
pub fn nym_key(period_start: u64, pseudonym: &[u8; 48]) -> Result<String, Error> {
    Ok(composite_key(
        ANON_NYM,
        &[&period_part(period_start), &to_hex(pseudonym)],
    )?)
}

fn issuer_record_key(epoch: u32) -> Result<String, Error> {
    Ok(composite_key(ANON_ISSUER, &[&format!("{epoch:010}")])?)
}

fn join_key(epoch: u32, hid: &Hid) -> Result<String, Error> {
    Ok(composite_key(
        ANON_JOIN,
        &[&format!("{epoch:010}"), &hid.to_string()],
    )?)
}

fn decode_ipk(record: &AnonIssuerRecord) -> Result<Ipk, Error> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&record.issuer_key)
        .map_err(|e| corrupt_issuer(record.epoch, e))?;
    Ipk::decode(&bytes).map_err(|e| corrupt_issuer(record.epoch, e))
}

fn corrupt_issuer(epoch: u32, e: impl std::fmt::Display) -> Error {
    Error::CorruptState {
        key: format!("anonissuer~{epoch}"),
        detail: e.to_string(),
    }
}

/// Who submitted: the concentrator's MSP id and certificate subject.
pub fn concentrator_name(stub: &dyn Stub) -> String {
    let creator = stub.creator();
    let subject = creator.x509().map_or("?", |x| x.subject());
    format!("{}/{subject}", creator.msp_id())
}

fn current(stub: &dyn Stub) -> Result<Option<AnonIssuerRecord>, Error> {
    state::load(stub, ANON_EPOCH_KEY)
}

/// `SetAnonIssuerKey`: the administrator rolls the credential epoch forward.
pub(crate) fn set_issuer_key(
    stub: &mut dyn Stub,
    now: Timestamp,
    issuer_key: &[u8],
    period_secs: u32,
) -> Result<Vec<u8>, Error> {
    let ipk = Ipk::decode(issuer_key)
        .map_err(|e| Error::AnonMessage(format!("issuer key: malformed: {e}")))?;
    let epoch = ipk.epoch();
    let encoded = state::b64(issuer_key);
    if let Some(cur) = current(stub)? {
        if cur.epoch == epoch && cur.issuer_key == encoded && cur.period_secs == period_secs {
            return state::to_json(&cur);
        }
        if epoch <= cur.epoch {
            return Err(Error::EpochConflict(format!(
                "the current credential epoch is {}; a new issuer key must be for a later epoch, got {epoch}",
                cur.epoch
            )));
        }
        if period_secs != cur.period_secs {
            return Err(Error::EpochConflict(format!(
                "the anonymous period is {} s and cannot change (periods of different lengths would overlap, and one meter could report twice), got {period_secs}",
                cur.period_secs
            )));
        }
    }
    let record = AnonIssuerRecord {
        epoch,
        issuer_key: encoded,
        period_secs,
        tx_id: stub.tx().tx_id().to_owned(),
        since: crate::rules::unix_millis_i64(now),
    };
    state::store(stub, &issuer_record_key(epoch)?, &record)?;
    state::store(stub, ANON_EPOCH_KEY, &record)?;
    state::to_json(&record)
}

fn issuer_record(stub: &dyn Stub, epoch: u32) -> Result<Option<AnonIssuerRecord>, Error> {
    state::load(stub, &issuer_record_key(epoch)?)
}

/// `GetAnonIssuerKey`.
pub(crate) fn get_issuer_key(stub: &dyn Stub, epoch: Option<u32>) -> Result<Vec<u8>, Error> {
    let record = match epoch {
        None => current(stub)?
            .ok_or_else(|| Error::UnknownEpoch("no anonymous issuer key is set".into()))?,
        Some(e) => issuer_record(stub, e)?
            .ok_or_else(|| Error::UnknownEpoch(format!("no issuer key for epoch {e}")))?,
    };
    state::to_json(&record)
}

/// `RequestAnonCredential`: a concentrator relays an active meter's signed join request for the
/// current epoch.
pub(crate) fn request_credential(
    stub: &mut dyn Stub,
    config: &Config,
    now: Timestamp,
    request: &AnonCredentialRequest,
) -> Result<Vec<u8>, Error> {
    let hid = request.hid();
    let key = state::meter_key(&hid)?;
    let meter: bcami_api::MeterRecord = state::load(stub, &key)?.ok_or(Error::UnknownMeter(hid))?;
    let public_key = match (meter.status, meter.public_key) {
        (MeterStatus::Revoked, _) => return Err(Error::Revoked(hid)),
        (MeterStatus::Active, Some(k)) => k,
        _ => return Err(Error::NotRegistered(hid)),
    };
    crate::rules::check_window(config.window, request.timestamp(), now)?;
    request.verify(&public_key).map_err(Error::Signature)?;
    let join = JoinRequest::<Blst>::decode(request.join_request())
        .map_err(|e| Error::AnonMessage(format!("join request: malformed: {e}")))?;
    if join.hid() != hid.as_bytes() {
        return Err(Error::AnonMessage(format!(
            "the join request is for HID {}, the signed request for {hid}",
            to_hex(join.hid())
        )));
    }
    let cur = current(stub)?
        .ok_or_else(|| Error::UnknownEpoch("no anonymous issuer key is set".into()))?;
    if join.epoch() != cur.epoch {
        return Err(Error::EpochConflict(format!(
            "credentials are issued for the current epoch {}, the request is for {}",
            cur.epoch,
            join.epoch()
        )));
    }
    let ipk = decode_ipk(&cur)?;
    let nonce = anon_join_nonce(&cur.tx_id, &hid);
    join.verify(&ipk, &nonce).map_err(|e| {
        Error::AnonProof(format!(
            "join request: {e} (it must be bound to the nonce of issuer key transaction {})",
            cur.tx_id
        ))
    })?;
    // One secret per meter for good: the commitment `C = H_f·f` of every later request must be
    // the first one's. Otherwise a meter holding credentials of two epochs on two secrets would
    // have two pseudonyms in the periods where both epochs are accepted (the rollover), and
    // could report twice unseen.
    let secret_key = composite_key(ANON_SECRET, &[&hid.to_string()])?;
    let commitment = to_hex(&join.commitment());
    match stub.state(&secret_key)? {
        Some(bytes) if bytes != commitment.as_bytes() => {
            return Err(Error::OtherAnonSecret(hid));
        }
        Some(_) => {}
        None => stub.put_state(&secret_key, commitment.as_bytes())?,
    }
    let record_key = join_key(cur.epoch, &hid)?;
    let encoded = state::b64(request.join_request());
    if let Some(existing) = state::load::<AnonJoinRecord>(stub, &record_key)? {
        if existing.join_request == encoded {
            return state::to_json(&existing);
        }
        return Err(Error::AlreadyRegistered(Subject::CredentialRequest {
            hid,
            epoch: cur.epoch,
        }));
    }
    let record = AnonJoinRecord {
        hid,
        epoch: cur.epoch,
        join_request: encoded,
        request_tx: stub.tx().tx_id().to_owned(),
        credential: None,
        credential_tx: None,
    };
    state::store(stub, &record_key, &record)?;
    state::to_json(&record)
}

/// `PostAnonCredential`: the issuer's credential, checked against the recorded request.
pub(crate) fn post_credential(
    stub: &mut dyn Stub,
    hid: Hid,
    credential: &[u8],
) -> Result<Vec<u8>, Error> {
    let cred = Credential::<Blst>::decode(credential)
        .map_err(|e| Error::AnonMessage(format!("credential: malformed: {e}")))?;
    let epoch = cred.epoch();
    let record_key = join_key(epoch, &hid)?;
    let mut record: AnonJoinRecord = state::load(stub, &record_key)?.ok_or_else(|| {
        Error::NotRequested(format!(
            "meter {hid} has not requested a credential for epoch {epoch}"
        ))
    })?;
    let encoded = state::b64(credential);
    match &record.credential {
        Some(have) if *have == encoded => return state::to_json(&record),
        Some(_) => {
            return Err(Error::AlreadyRegistered(Subject::Credential { hid, epoch }));
        }
        None => {}
    }
    let meter: Option<MeterRecord> = state::load(stub, &state::meter_key(&hid)?)?;
    if meter.is_some_and(|m| m.status == MeterStatus::Revoked) {
        return Err(Error::Revoked(hid));
    }
    let issuer = issuer_record(stub, epoch)?
        .ok_or_else(|| Error::UnknownEpoch(format!("no issuer key for epoch {epoch}")))?;
    let ipk = decode_ipk(&issuer)?;
    let join = JoinRequest::<Blst>::decode(&state::unb64(&record.join_request, &record_key)?)
        .map_err(|e| corrupt_issuer(epoch, e))?;
    join.check_credential(&ipk, &cred).map_err(|e| {
        Error::AnonProof(format!(
            "credential for meter {hid}: {e} (not issued on its recorded request)"
        ))
    })?;
    record.credential = Some(encoded);
    record.credential_tx = Some(stub.tx().tx_id().to_owned());
    state::store(stub, &record_key, &record)?;
    state::to_json(&record)
}

/// `GetAnonCredential`.
pub(crate) fn get_credential(stub: &dyn Stub, q: &AnonCredentialQuery) -> Result<Vec<u8>, Error> {
    let record: AnonJoinRecord =
        state::load(stub, &join_key(q.epoch, &q.hid)?)?.ok_or_else(|| {
            Error::NotRequested(format!(
                "meter {} has not requested a credential for epoch {}",
                q.hid, q.epoch
            ))
        })?;
    state::to_json(&record)
}

/// What the ledger makes of a verified reading's pseudonym in its period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NymOutcome {
    /// The first reading of this pseudonym in the period: counted.
    First,
    /// The same bytes as the reading already counted: a replay, never a double report.
    Replayed,
    /// A different reading with the same pseudonym in the period: the first one's record.
    DoubleReport(AnonNymRecord),
}

/// The pseudonyms of one transaction's periods: what the ledger held when the transaction read
/// them, and what the transaction has accepted so far (a batch may repeat a pseudonym).
#[derive(Debug, Default)]
pub struct NymBook {
    ledger: BTreeMap<String, Option<AnonNymRecord>>,
    batch: BTreeMap<String, AnonNymRecord>,
}

impl NymBook {
    /// A book over what the ledger holds at `keys`.
    pub fn new(ledger: BTreeMap<String, Option<AnonNymRecord>>) -> Self {
        Self {
            ledger,
            batch: BTreeMap::new(),
        }
    }

    /// Classifies a verified reading with hash `reading_hash` under ledger key `key`, and
    /// records it if it is the first.
    pub fn admit(&mut self, key: &str, reading_hash: &str, tx_id: &str) -> NymOutcome {
        let known = self
            .batch
            .get(key)
            .or_else(|| self.ledger.get(key).and_then(Option::as_ref));
        match known {
            Some(first) if first.reading_hash == reading_hash => NymOutcome::Replayed,
            Some(first) => NymOutcome::DoubleReport(first.clone()),
            None => {
                self.batch.insert(
                    key.to_owned(),
                    AnonNymRecord {
                        reading_hash: reading_hash.to_owned(),
                        tx_id: tx_id.to_owned(),
                    },
                );
                NymOutcome::First
            }
        }
    }

    /// The pseudonyms this transaction accepted, to write.
    pub fn accepted(&self) -> &BTreeMap<String, AnonNymRecord> {
        &self.batch
    }
}

struct Candidate {
    index: usize,
    presentation: Presentation<Blst>,
    hash: String,
    bytes: Vec<u8>,
}

struct Epochs {
    current: Option<AnonIssuerRecord>,
    keys: BTreeMap<u32, Option<(AnonIssuerRecord, Ipk)>>,
}

impl Epochs {
    fn key(
        &mut self,
        stub: &dyn Stub,
        epoch: u32,
    ) -> Result<Option<&(AnonIssuerRecord, Ipk)>, Error> {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.keys.entry(epoch) {
            let loaded = match issuer_record(stub, epoch)? {
                Some(r) => {
                    let ipk = decode_ipk(&r)?;
                    Some((r, ipk))
                }
                None => None,
            };
            slot.insert(loaded);
        }
        Ok(self.keys.get(&epoch).and_then(Option::as_ref))
    }
}

/// `SubmitAnonReadings`: each reading is judged alone, in four steps: decode and check what
/// needs no pairing, verify each epoch's readings as one batch, classify the pseudonyms in batch
/// order, then write.
pub(crate) fn submit(
    stub: &mut dyn Stub,
    config: &Config,
    now: Timestamp,
    inputs: Vec<AnonInput>,
) -> Result<Vec<u8>, Error> {
    let total = inputs.len();
    let mut rejections: Vec<AnonRejected> = Vec::new();
    let mut epochs = Epochs {
        current: current(stub)?,
        keys: BTreeMap::new(),
    };
    let by_epoch = decode_and_check(stub, &mut epochs, config, now, inputs, &mut rejections)?;
    let verified = verify_epochs(stub, &mut epochs, by_epoch, &mut rejections)?;
    let (keys, book) = read_pseudonyms(stub, &verified)?;
    let tx_id = stub.tx().tx_id().to_owned();
    let concentrator = concentrator_name(stub);
    let outcome = classify(
        &verified,
        &keys,
        book,
        &tx_id,
        &concentrator,
        &mut rejections,
    )?;
    write_outcome(stub, &outcome, &tx_id, &concentrator)?;
    rejections.sort_by_key(|r| r.index);
    state::to_json(&AnonSubmitResponse {
        accepted: total - rejections.len(),
        rejected: rejections.len(),
        rejections,
    })
}

fn reject(
    rejections: &mut Vec<AnonRejected>,
    index: usize,
    reason: AnonRejectReason,
    message: String,
) {
    rejections.push(AnonRejected {
        index,
        reason,
        message,
    });
}

/// Step 1: decode each reading and check what needs no pairing; the survivors by epoch.
fn decode_and_check(
    stub: &dyn Stub,
    epochs: &mut Epochs,
    config: &Config,
    now: Timestamp,
    inputs: Vec<AnonInput>,
    rejections: &mut Vec<AnonRejected>,
) -> Result<BTreeMap<u32, Vec<Candidate>>, Error> {
    let mut by_epoch: BTreeMap<u32, Vec<Candidate>> = BTreeMap::new();
    for (index, input) in inputs.into_iter().enumerate() {
        let bytes = match input {
            AnonInput::Rejected(reason, message) => {
                reject(rejections, index, reason, message);
                continue;
            }
            AnonInput::Bytes(bytes) => bytes,
        };
        let presentation = match Presentation::<Blst>::decode(&bytes) {
            Ok(p) => p,
            Err(e) => {
                reject(
                    rejections,
                    index,
                    AnonRejectReason::Malformed,
                    e.to_string(),
                );
                continue;
            }
        };
        if let Err((reason, message)) = check_reading(stub, epochs, config, now, &presentation)? {
            reject(rejections, index, reason, message);
            continue;
        }
        by_epoch
            .entry(presentation.epoch())
            .or_default()
            .push(Candidate {
                index,
                hash: anon_reading_hash(&bytes),
                presentation,
                bytes,
            });
    }
    Ok(by_epoch)
}

/// Step 2: verify each epoch's readings as one batch; the verified ones in batch order.
fn verify_epochs(
    stub: &dyn Stub,
    epochs: &mut Epochs,
    by_epoch: BTreeMap<u32, Vec<Candidate>>,
    rejections: &mut Vec<AnonRejected>,
) -> Result<Vec<Candidate>, Error> {
    let mut verified: Vec<Candidate> = Vec::new();
    for (epoch, candidates) in by_epoch {
        let Some((_, ipk)) = epochs.key(stub, epoch)? else {
            return Err(Error::Internal(format!("epoch {epoch} vanished")));
        };
        let batch: Vec<Presentation<Blst>> =
            candidates.iter().map(|c| c.presentation.clone()).collect();
        let results = verify_batch(ipk, &batch);
        for (candidate, result) in candidates.into_iter().zip(results) {
            match result {
                Ok(()) => verified.push(candidate),
                Err(e) => reject(
                    rejections,
                    candidate.index,
                    AnonRejectReason::BadProof,
                    e.to_string(),
                ),
            }
        }
    }
    verified.sort_by_key(|c| c.index);
    Ok(verified)
}

/// Step 3a: each verified reading's pseudonym key, and the book of what the ledger holds at
/// them. Every key is read once: these reads are what make two concurrent submissions of one
/// pseudonym conflict.
fn read_pseudonyms(
    stub: &dyn Stub,
    verified: &[Candidate],
) -> Result<(Vec<String>, NymBook), Error> {
    let keys: Vec<String> = verified
        .iter()
        .map(|c| {
            nym_key(
                c.presentation.report().period.start_unix_millis(),
                &c.presentation.pseudonym(),
            )
        })
        .collect::<Result<_, _>>()?;
    let mut unique: Vec<&str> = keys.iter().map(String::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    let values = stub.states(&unique)?;
    let mut ledger = BTreeMap::new();
    for (key, value) in unique.iter().zip(values) {
        let record = value.map(|v| state::parse(key, &v)).transpose()?;
        ledger.insert((*key).to_owned(), record);
    }
    Ok((keys, NymBook::new(ledger)))
}

/// What a batch writes: the first pseudonyms, the per-period sums, the double reports.
struct Classified {
    book: NymBook,
    /// Period start → (count, sum Wh).
    sums: BTreeMap<u64, (u64, u64)>,
    evidence: Vec<(String, AnonDoubleReport)>,
}

/// Step 3b: classify the verified readings in batch order: counted, replayed, or a double
/// report kept as evidence.
fn classify(
    verified: &[Candidate],
    keys: &[String],
    mut book: NymBook,
    tx_id: &str,
    concentrator: &str,
    rejections: &mut Vec<AnonRejected>,
) -> Result<Classified, Error> {
    let mut sums: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut evidence: Vec<(String, AnonDoubleReport)> = Vec::new();
    for (candidate, key) in verified.iter().zip(keys) {
        let report = candidate.presentation.report();
        let start = report.period.start_unix_millis();
        match book.admit(key, &candidate.hash, tx_id) {
            NymOutcome::First => {
                let entry = sums.entry(start).or_insert((0, 0));
                entry.0 += 1;
                entry.1 = entry.1.saturating_add(report.energy_wh);
            }
            NymOutcome::Replayed => reject(
                rejections,
                candidate.index,
                AnonRejectReason::Replayed,
                "this reading was accepted before (same bytes)".into(),
            ),
            NymOutcome::DoubleReport(first) => {
                reject(
                    rejections,
                    candidate.index,
                    AnonRejectReason::DoubleReport,
                    format!(
                        "pseudonym already reported in period {start} by transaction {}; kept as evidence",
                        first.tx_id
                    ),
                );
                evidence.push(double_report(candidate, start, first, tx_id, concentrator)?);
            }
        }
    }
    Ok(Classified {
        book,
        sums,
        evidence,
    })
}

/// The evidence of a double report, under `anondouble~PERIOD~PSEUDONYM~TX~INDEX`.
fn double_report(
    candidate: &Candidate,
    start: u64,
    first: AnonNymRecord,
    tx_id: &str,
    concentrator: &str,
) -> Result<(String, AnonDoubleReport), Error> {
    let pseudonym = to_hex(&candidate.presentation.pseudonym());
    let key = composite_key(
        ANON_DOUBLE,
        &[
            &period_part(start),
            &pseudonym,
            tx_id,
            &format!("{:06}", candidate.index),
        ],
    )?;
    Ok((
        key,
        AnonDoubleReport {
            period_start: start,
            pseudonym,
            reading: state::b64(&candidate.bytes),
            first_reading_hash: first.reading_hash,
            first_tx: first.tx_id,
            tx_id: tx_id.to_owned(),
            concentrator: concentrator.to_owned(),
        },
    ))
}

/// Step 4: write, in key order.
fn write_outcome(
    stub: &mut dyn Stub,
    outcome: &Classified,
    tx_id: &str,
    concentrator: &str,
) -> Result<(), Error> {
    for (key, record) in outcome.book.accepted() {
        state::store(stub, key, record)?;
    }
    for (start, (count, sum_wh)) in &outcome.sums {
        let key = composite_key(ANON_AGGREGATE, &[&period_part(*start), tx_id])?;
        state::store(
            stub,
            &key,
            &AnonBatchAggregate {
                concentrator: concentrator.to_owned(),
                count: *count,
                sum_wh: *sum_wh,
            },
        )?;
    }
    for (key, record) in &outcome.evidence {
        state::store(stub, key, record)?;
    }
    Ok(())
}

type Refusal = (AnonRejectReason, String);

/// The period of an anonymous reading: the epoch's length, aligned, overlapping the window
/// around the transaction time.
fn check_period(
    cur: &AnonIssuerRecord,
    config: &Config,
    now: Timestamp,
    report: &AnonReport,
) -> Result<(), Refusal> {
    let tx_millis = now.unix_millis();
    let period = report.period;
    let start = period.start_unix_millis();
    let length_ms = u64::from(period.length_secs()) * 1000;
    if period.length_secs() != cur.period_secs || start % length_ms != 0 {
        return Err((
            AnonRejectReason::BadPeriod,
            format!(
                "the period must be {} s long and start at a multiple of it; got {start} + {} s",
                cur.period_secs,
                period.length_secs()
            ),
        ));
    }
    // The period must overlap the window around the transaction time.
    let end = start.saturating_add(length_ms);
    match (
        config
            .window
            .place_at(Timestamp::from_unix_millis(end), now),
        config
            .window
            .place_at(Timestamp::from_unix_millis(start), now),
    ) {
        (Placement::Stale, _) => {
            return Err((
                AnonRejectReason::Stale,
                format!("period {start} ended at {end}, before the window around {tx_millis}"),
            ));
        }
        (_, Placement::Future) => {
            return Err((
                AnonRejectReason::Future,
                format!("period {start} starts after the window around {tx_millis}"),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Epoch, period and energy of one decoded reading.
fn check_reading(
    stub: &dyn Stub,
    epochs: &mut Epochs,
    config: &Config,
    now: Timestamp,
    p: &Presentation<Blst>,
) -> Result<Result<(), Refusal>, Error> {
    let tx_millis = now.unix_millis();
    let Some(cur) = epochs.current.clone() else {
        return Ok(Err((
            AnonRejectReason::UnknownEpoch,
            "no anonymous issuer key is set".into(),
        )));
    };
    let epoch = p.epoch();
    if epochs.key(stub, epoch)?.is_none() {
        return Ok(Err((
            AnonRejectReason::UnknownEpoch,
            format!("no issuer key for credential epoch {epoch}"),
        )));
    }
    if epoch != cur.epoch {
        let until = i128::from(cur.since) + i128::from(ANON_ROLLOVER_MS);
        if epoch > cur.epoch || i128::from(tx_millis) > until {
            return Ok(Err((
                AnonRejectReason::OldEpoch,
                format!(
                    "credential epoch {epoch} is not current ({}; the previous epoch was accepted until {until})",
                    cur.epoch
                ),
            )));
        }
    }
    let report = p.report();
    if let Err(refusal) = check_period(&cur, config, now, report) {
        return Ok(Err(refusal));
    }
    if report.energy_wh > MAX_ANON_ENERGY_WH {
        return Ok(Err((
            AnonRejectReason::Malformed,
            format!(
                "energy {} Wh is more than an anonymous reading may carry ({MAX_ANON_ENERGY_WH})",
                report.energy_wh
            ),
        )));
    }
    Ok(Ok(()))
}

fn period_range(object: &str, start: u64) -> Result<KeyRange, Error> {
    Ok(KeyRange::composite_prefix(object, &[&period_part(start)])?)
}

/// `GetAnonAggregate`.
pub(crate) fn aggregate(stub: &dyn Stub, period_start: u64) -> Result<Vec<u8>, Error> {
    let mut count = 0u64;
    let mut sum_wh = 0u64;
    let mut per: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for kv in stub.range(&period_range(ANON_AGGREGATE, period_start)?)? {
        let kv = kv?;
        let part: AnonBatchAggregate = state::parse(&kv.key, &kv.value)?;
        count = count.saturating_add(part.count);
        sum_wh = sum_wh.saturating_add(part.sum_wh);
        let entry = per.entry(part.concentrator).or_insert((0, 0));
        entry.0 = entry.0.saturating_add(part.count);
        entry.1 = entry.1.saturating_add(part.sum_wh);
    }
    let mut double_reports = 0u64;
    for kv in stub.range(&period_range(ANON_DOUBLE, period_start)?)? {
        kv?;
        double_reports += 1;
    }
    state::to_json(&AnonAggregate {
        period_start,
        count,
        sum_wh,
        concentrators: per
            .into_iter()
            .map(|(concentrator, (count, sum_wh))| ConcentratorAggregate {
                concentrator,
                count,
                sum_wh,
            })
            .collect(),
        double_reports,
    })
}

/// `GetAnonDoubleReports`.
pub(crate) fn double_reports(stub: &dyn Stub, period_start: u64) -> Result<Vec<u8>, Error> {
    let mut out: Vec<AnonDoubleReport> = Vec::new();
    for kv in stub.range(&period_range(ANON_DOUBLE, period_start)?)? {
        let kv = kv?;
        out.push(state::parse(&kv.key, &kv.value)?);
    }
    state::to_json(&out)
}

/// `RecordAnonTrace`: the outcome of an off-ledger trace of a double-reported pseudonym; the
/// culprit is revoked in the same transaction.
pub(crate) fn record_trace(
    stub: &mut dyn Stub,
    now: Timestamp,
    period_start: u64,
    pseudonym: &[u8; 48],
    hid: Hid,
    cleared: u64,
) -> Result<Vec<u8>, Error> {
    let k = to_hex(pseudonym);
    let evidence = KeyRange::composite_prefix(ANON_DOUBLE, &[&period_part(period_start), &k])?;
    if stub.range(&evidence)?.next().is_none() {
        return Err(Error::NoEvidence(format!(
            "no double report of pseudonym {k} in period {period_start}"
        )));
    }
    let meter_key = state::meter_key(&hid)?;
    let meter: MeterRecord = state::load(stub, &meter_key)?.ok_or(Error::UnknownMeter(hid))?;
    let key = composite_key(ANON_TRACE, &[&period_part(period_start), &k])?;
    if let Some(existing) = state::load::<AnonTraceRecord>(stub, &key)? {
        if existing.hid == hid {
            return state::to_json(&existing);
        }
        return Err(Error::TraceRecorded {
            pseudonym: k,
            period_start,
            hid: existing.hid,
        });
    }
    let record = AnonTraceRecord {
        period_start,
        pseudonym: k,
        hid,
        cleared,
        tx_id: stub.tx().tx_id().to_owned(),
    };
    state::store(stub, &key, &record)?;
    if let Some(revoked) = crate::rules::revoke_meter(meter, now) {
        state::store(stub, &meter_key, &revoked)?;
    }
    state::to_json(&record)
}
