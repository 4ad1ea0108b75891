//! Anonymous readings on the in-memory ledger: issuer keys and epochs, credential requests and
//! issuance, `SubmitAnonReadings` (first reading counted, replay, double report, windows,
//! epochs), the aggregate as a property, what the ledger stores (nothing linking two periods
//! of a meter), determinism, and the paper's message-dependent basename as a negative control.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use bcami_anon::{
    AnonReport, Backend, Blst, IssuerPublicKey, IssuerSecretKey, JoinRequest, KeyHolder,
    MeterCredential, Period, Presentation, ReportFlags, SoftwareKeyHolder,
};
use bcami_api::{AnonRejectReason, ErrorCode, Function, anon_join_nonce, to_hex};
use bcami_contract::anon::{NymBook, NymOutcome, nym_key};
use bcami_sdk::{AnonCredentialRequest, Timestamp};
use common::*;
use fabric_shim::{Creator, X509Identity};
use proptest::prelude::*;
use serde_json::{Value, json};

const PERIOD_SECS: u32 = 1800;
const PERIOD_MS: u64 = PERIOD_SECS as u64 * 1000;

fn dc2() -> Creator {
    Creator::new(
        "OperatorMSP",
        X509Identity::from_parts("CN=dc2@OperatorMSP", "CN=ca", &["client"], &[]),
    )
}

/// A meter's anonymous side: its key holder and credential.
struct AnonMeter {
    meter: Meter,
    holder: SoftwareKeyHolder<Blst>,
    credential: Option<MeterCredential<Blst>>,
    join: Option<JoinRequest<Blst>>,
    seq: u64,
}

struct World {
    env: Env,
    issuer: IssuerSecretKey<Blst>,
    issuer_tx: String,
    meters: Vec<AnonMeter>,
}

fn issuer_arg(ipk: &IssuerPublicKey<Blst>) -> String {
    json!({"issuerKey": b64(&ipk.encode()), "periodSecs": PERIOD_SECS}).to_string()
}

impl World {
    /// `n` registered meters, the epoch-1 issuer key set, every meter holding a credential.
    fn new(n: u32) -> Self {
        let mut env = Env::new();
        let meters: Vec<Meter> = (0..n).map(Meter::new).collect();
        env.setup(&meters.iter().collect::<Vec<_>>());
        let issuer = IssuerSecretKey::<Blst>::from_bytes(&[5; 32], 1).unwrap();
        let set = env.ok(
            admin(),
            Function::SetAnonIssuerKey,
            &[&issuer_arg(issuer.public_key())],
        );
        let issuer_tx = set["txId"].as_str().unwrap().to_owned();
        let meters = meters
            .into_iter()
            .enumerate()
            .map(|(i, meter)| {
                let mut entropy = [0xa5u8; 32];
                entropy[..4].copy_from_slice(&(i as u32).to_be_bytes());
                AnonMeter {
                    meter,
                    holder: SoftwareKeyHolder::from_entropy(&entropy).unwrap(),
                    credential: None,
                    join: None,
                    seq: 0,
                }
            })
            .collect();
        let mut world = World {
            env,
            issuer,
            issuer_tx,
            meters,
        };
        for i in 0..world.meters.len() {
            world.join(i);
        }
        world
    }

    /// The signed credential request of meter `i` for the current issuer key.
    fn request(&mut self, i: usize) -> String {
        self.request_with(i, [3; 32])
    }

    fn request_with(&mut self, i: usize, entropy: [u8; 32]) -> String {
        let ipk = self.issuer.public_key().clone();
        let m = &mut self.meters[i];
        let nonce = anon_join_nonce(&self.issuer_tx, &m.meter.hid);
        let join = JoinRequest::build(
            &mut m.holder,
            &ipk,
            *m.meter.hid.as_bytes(),
            nonce,
            &entropy,
        )
        .unwrap();
        let wrapped = AnonCredentialRequest::build(
            &m.meter.key,
            m.meter.hid,
            Timestamp::from_unix_millis(self.env.now_ms - 1000),
            &join.encode().try_into().unwrap(),
        )
        .unwrap();
        m.join = Some(join);
        b64(&wrapped.encode())
    }

    fn join(&mut self, i: usize) {
        let request = self.request(i);
        self.env
            .ok(dc(), Function::RequestAnonCredential, &[&request]);
        let m = &mut self.meters[i];
        let join = m.join.clone().unwrap();
        let nonce = anon_join_nonce(&self.issuer_tx, &m.meter.hid);
        let credential = self.issuer.issue(&join, &nonce).unwrap();
        let arg = json!({"hid": m.meter.hex(), "credential": b64(&credential.encode())});
        self.env
            .ok(admin(), Function::PostAnonCredential, &[&arg.to_string()]);
        m.credential = Some(
            credential
                .accept(self.issuer.public_key(), &m.holder.commitment())
                .unwrap(),
        );
    }

    /// The start of the period holding the current transaction time.
    fn period_now(&self) -> u64 {
        self.env.now_ms / PERIOD_MS * PERIOD_MS
    }

    fn reading_at(&mut self, i: usize, start: u64, length: u32, energy_wh: u64) -> Vec<u8> {
        let ipk = self.issuer.public_key().clone();
        let m = &mut self.meters[i];
        m.seq += 1;
        let report = AnonReport {
            period: Period::new(start, length).unwrap(),
            energy_wh,
            flags: ReportFlags::NONE,
        };
        let mut entropy = [0u8; 64];
        entropy[..8].copy_from_slice(&m.seq.to_be_bytes());
        entropy[8..12].copy_from_slice(&(i as u32).to_be_bytes());
        Presentation::build_from_entropy(
            &mut m.holder,
            m.credential.as_ref().unwrap(),
            &ipk,
            &report,
            &entropy,
        )
        .unwrap()
        .encode()
    }

    fn reading(&mut self, i: usize, energy_wh: u64) -> Vec<u8> {
        let start = self.period_now();
        self.reading_at(i, start, PERIOD_SECS, energy_wh)
    }

    fn submit_as(&mut self, who: Creator, readings: &[Vec<u8>]) -> Vec<Option<AnonRejectReason>> {
        let batch: Vec<String> = readings.iter().map(|r| b64(r)).collect();
        let arg = serde_json::to_string(&batch).unwrap();
        let response = self.env.ok(who, Function::SubmitAnonReadings, &[&arg]);
        let parsed: bcami_api::AnonSubmitResponse = serde_json::from_value(response).unwrap();
        parsed.reasons(readings.len()).expect("response adds up")
    }

    fn submit(&mut self, readings: &[Vec<u8>]) -> Vec<Option<AnonRejectReason>> {
        self.submit_as(dc(), readings)
    }

    fn aggregate(&mut self, start: u64) -> Value {
        let arg = json!({ "periodStart": start }).to_string();
        self.env.ok(mdms(), Function::GetAnonAggregate, &[&arg])
    }

    fn doubles(&mut self, start: u64) -> Vec<Value> {
        let arg = json!({ "periodStart": start }).to_string();
        let v = self
            .env
            .ok(admin(), Function::GetAnonDoubleReports, &[&arg]);
        v.as_array().unwrap().clone()
    }
}

use AnonRejectReason as R;

#[test]
fn first_reading_counts_replay_is_replayed_second_reading_is_a_double_report() {
    let mut w = World::new(3);
    let start = w.period_now();
    let a = w.reading(0, 100);
    let b = w.reading(1, 250);
    let a2 = w.reading(0, 900); // meter 0 again, a different reading: double report
    // One batch: a, b accepted; a replayed in-batch; a2 a double report.
    assert_eq!(
        w.submit(&[a.clone(), b.clone(), a.clone(), a2.clone()]),
        vec![None, None, Some(R::Replayed), Some(R::DoubleReport)]
    );
    // Across transactions and concentrators: the replay stays a replay; another different
    // reading of meter 1 from the second concentrator is caught.
    let b2 = w.reading(1, 1);
    let c = w.reading(2, 40);
    assert_eq!(
        w.submit_as(dc2(), &[a.clone(), b2.clone(), c]),
        vec![Some(R::Replayed), Some(R::DoubleReport), None]
    );
    let agg = w.aggregate(start);
    assert_eq!(agg["count"], 3);
    assert_eq!(agg["sumWh"], 390);
    assert_eq!(agg["doubleReports"], 2);
    let per: Vec<(String, u64)> = agg["concentrators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["concentrator"].as_str().unwrap().to_owned(),
                c["sumWh"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per,
        vec![
            ("OperatorMSP/CN=client@OperatorMSP".to_owned(), 350),
            ("OperatorMSP/CN=dc2@OperatorMSP".to_owned(), 40)
        ]
    );
    // The evidence: both double reports, each a valid presentation a tracer can re-verify,
    // pointing at the first reading's transaction. Never the replays.
    let doubles = w.doubles(start);
    assert_eq!(doubles.len(), 2);
    let ipk = w.issuer.public_key().clone();
    for d in &doubles {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(d["reading"].as_str().unwrap())
            .unwrap();
        let p = Presentation::<Blst>::decode(&bytes).unwrap();
        p.verify(&ipk).unwrap();
        assert_eq!(d["pseudonym"], to_hex(&p.pseudonym()));
        assert_ne!(bytes, a);
    }
    let mut evidence: Vec<&str> = doubles
        .iter()
        .map(|d| d["reading"].as_str().unwrap())
        .collect();
    evidence.sort_unstable();
    let mut expected = [b64(&a2), b64(&b2)];
    expected.sort_unstable();
    assert_eq!(evidence, expected, "the two second readings");
    // An empty period has an empty aggregate.
    let empty = w.aggregate(start + PERIOD_MS);
    assert_eq!(
        (empty["count"].as_u64(), empty["sumWh"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn readings_are_checked_for_proof_period_window_and_epoch() {
    let mut w = World::new(2);
    let start = w.period_now();
    let good = w.reading(0, 10);
    let mut flipped = w.reading(1, 10);
    let last = flipped.len() - 1;
    flipped[last] ^= 1; // the challenge scalar: decodes (or not), never verifies
    let misaligned = w.reading_at(1, start + 1000, PERIOD_SECS, 10);
    let wrong_length = w.reading_at(1, start, PERIOD_SECS / 2, 10);
    let stale = w.reading_at(1, start - 4 * PERIOD_MS, PERIOD_SECS, 10);
    let future = w.reading_at(1, start + 4 * PERIOD_MS, PERIOD_SECS, 10);
    let huge = w.reading(1, bcami_contract::anon::MAX_ANON_ENERGY_WH + 1);
    let reasons = w.submit(&[
        good,
        flipped,
        misaligned,
        wrong_length,
        stale,
        future,
        huge,
        b"not a presentation".to_vec(),
    ]);
    assert_eq!(reasons[0], None);
    assert!(
        matches!(reasons[1], Some(R::BadProof | R::Malformed)),
        "{reasons:?}"
    );
    assert_eq!(
        &reasons[2..],
        &[
            Some(R::BadPeriod),
            Some(R::BadPeriod),
            Some(R::Stale),
            Some(R::Future),
            Some(R::Malformed),
            Some(R::Malformed)
        ]
    );
    // Non-base64 and oversize elements, and a flipped proof that still decodes.
    let batch = json!(["***", "A".repeat(700)]).to_string();
    let response = w.env.ok(dc(), Function::SubmitAnonReadings, &[&batch]);
    let parsed: bcami_api::AnonSubmitResponse = serde_json::from_value(response).unwrap();
    assert_eq!(
        parsed.reasons(2).unwrap(),
        vec![Some(R::BadBase64), Some(R::Oversize)]
    );
    // A proof with a flipped response scalar decodes but does not verify; it is not evidence
    // even though its pseudonym is meter 1's... it never was counted, so nothing to frame.
    let mut bad = w.reading(1, 20);
    bad[300] ^= 0x01;
    let r = w.submit(&[bad]);
    assert!(matches!(r[0], Some(R::BadProof | R::Malformed)), "{r:?}");
    assert!(w.doubles(start).is_empty());
}

#[test]
fn epochs_roll_over_and_old_credentials_are_refused_after_the_window() {
    let mut w = World::new(1);
    let old = w.reading(0, 5);
    // A credential under a key the ledger never saw: unknown epoch.
    let stranger = IssuerSecretKey::<Blst>::from_bytes(&[9; 32], 7).unwrap();
    let mut holder = SoftwareKeyHolder::<Blst>::from_entropy(&[0x33; 32]).unwrap();
    let join = JoinRequest::build(
        &mut holder,
        stranger.public_key(),
        [1; 32],
        [2; 32],
        &[4; 32],
    )
    .unwrap();
    let cred = stranger
        .issue(&join, &[2; 32])
        .unwrap()
        .accept(stranger.public_key(), &holder.commitment())
        .unwrap();
    let report = AnonReport {
        period: Period::new(w.period_now(), PERIOD_SECS).unwrap(),
        energy_wh: 1,
        flags: ReportFlags::NONE,
    };
    let unknown = Presentation::build_from_entropy(
        &mut holder,
        &cred,
        stranger.public_key(),
        &report,
        &[8; 64],
    )
    .unwrap()
    .encode();
    assert_eq!(w.submit(&[unknown]), vec![Some(R::UnknownEpoch)]);

    // Epoch 2: a later key is accepted; the same epoch again (another key) or an earlier one,
    // or another period length, is refused.
    let k2 = IssuerSecretKey::<Blst>::from_bytes(&[6; 32], 2).unwrap();
    w.env.now_ms += 1000;
    w.env.ok(
        admin(),
        Function::SetAnonIssuerKey,
        &[&issuer_arg(k2.public_key())],
    );
    // Idempotent.
    w.env.ok(
        admin(),
        Function::SetAnonIssuerKey,
        &[&issuer_arg(k2.public_key())],
    );
    let e = w.env.err(
        admin(),
        Function::SetAnonIssuerKey,
        &[&issuer_arg(w.issuer.public_key())],
    );
    assert_error(&e, 409, ErrorCode::EpochConflict);
    let k3 = IssuerSecretKey::<Blst>::from_bytes(&[6; 32], 3).unwrap();
    let other_length =
        json!({"issuerKey": b64(&k3.public_key().encode()), "periodSecs": 900}).to_string();
    let e = w
        .env
        .err(admin(), Function::SetAnonIssuerKey, &[&other_length]);
    assert_error(&e, 409, ErrorCode::EpochConflict);
    // Within the rollover time, epoch-1 readings still count; a request for epoch 1 does not.
    assert_eq!(w.submit(&[old]), vec![None]);
    let e = {
        let request = w.request(0);
        w.env
            .err(dc(), Function::RequestAnonCredential, &[&request])
    };
    assert_error(&e, 409, ErrorCode::EpochConflict);
    // After it, they are refused.
    w.env.now_ms += bcami_api::ANON_ROLLOVER_MS + 1000;
    let late = w.reading(0, 6);
    assert_eq!(w.submit(&[late]), vec![Some(R::OldEpoch)]);
    let current = w.env.ok(admin(), Function::GetAnonIssuerKey, &[]);
    assert_eq!(current["epoch"], 2);
    let first = w.env.ok(mdms(), Function::GetAnonIssuerKey, &["1"]);
    assert_eq!(first["issuerKey"], b64(&w.issuer.public_key().encode()));
    let e = w.env.err(dc(), Function::GetAnonIssuerKey, &["9"]);
    assert_error(&e, 404, ErrorCode::UnknownEpoch);
}

#[test]
fn credential_requests_need_an_active_meter_its_signature_and_the_ledger_nonce() {
    let mut w = World::new(3);
    // The same request again returns the record; a different one (fresh proof) is refused.
    let again = w.request(0);
    w.env.ok(dc(), Function::RequestAnonCredential, &[&again]);
    let other = w.request_with(0, [4; 32]);
    let e = w.env.err(dc(), Function::RequestAnonCredential, &[&other]);
    assert_error(&e, 409, ErrorCode::AlreadyRegistered);

    // Signed by another key.
    let ipk = w.issuer.public_key().clone();
    let stranger = Meter::new(99);
    let m = &mut w.meters[1];
    let nonce = anon_join_nonce(&w.issuer_tx, &m.meter.hid);
    let join = JoinRequest::build(
        &mut m.holder,
        &ipk,
        *m.meter.hid.as_bytes(),
        nonce,
        &[7; 32],
    )
    .unwrap();
    let forged = AnonCredentialRequest::build(
        &stranger.key,
        m.meter.hid,
        Timestamp::from_unix_millis(w.env.now_ms),
        &join.encode().try_into().unwrap(),
    )
    .unwrap();
    let e = w.env.err(
        dc(),
        Function::RequestAnonCredential,
        &[&b64(&forged.encode())],
    );
    assert_error(&e, 400, ErrorCode::BadSignature);
    // A proof bound to another nonce (not the ledger's).
    let join = JoinRequest::build(
        &mut m.holder,
        &ipk,
        *m.meter.hid.as_bytes(),
        [0; 32],
        &[7; 32],
    )
    .unwrap();
    let wrong_nonce = AnonCredentialRequest::build(
        &m.meter.key,
        m.meter.hid,
        Timestamp::from_unix_millis(w.env.now_ms),
        &join.encode().try_into().unwrap(),
    )
    .unwrap();
    let e = w.env.err(
        dc(),
        Function::RequestAnonCredential,
        &[&b64(&wrong_nonce.encode())],
    );
    assert_error(&e, 400, ErrorCode::BadSignature);
    // Unknown and revoked meters.
    let unknown = AnonCredentialRequest::build(
        &stranger.key,
        stranger.hid,
        Timestamp::from_unix_millis(w.env.now_ms),
        &join.encode().try_into().unwrap(),
    )
    .unwrap();
    let e = w.env.err(
        dc(),
        Function::RequestAnonCredential,
        &[&b64(&unknown.encode())],
    );
    assert_error(&e, 404, ErrorCode::UnknownMeter);
    let hid2 = w.meters[2].meter.hex();
    w.env.ok(admin(), Function::RevokeMeter, &[&hid2]);
    let request = w.request(2);
    let e = w
        .env
        .err(dc(), Function::RequestAnonCredential, &[&request]);
    assert_error(&e, 409, ErrorCode::Revoked);

    // Posting: not requested; a credential issued on another meter's request.
    let fresh = Meter::new(50);
    let arg = json!({"hid": fresh.hex(), "credential": b64(&[0x23, 1])}).to_string();
    let e = w.env.err(admin(), Function::PostAnonCredential, &[&arg]);
    assert_error(&e, 400, ErrorCode::BadArgument);
    let m0 = &w.meters[0];
    let cred0 = w
        .issuer
        .issue(
            m0.join.as_ref().unwrap(),
            &anon_join_nonce(&w.issuer_tx, &m0.meter.hid),
        )
        .unwrap();
    let arg = json!({"hid": fresh.hex(), "credential": b64(&cred0.encode())}).to_string();
    let e = w.env.err(admin(), Function::PostAnonCredential, &[&arg]);
    assert_error(&e, 404, ErrorCode::NotRequested);
    // Meter 1 holds its credential already: another one for it conflicts.
    let arg = json!({"hid": w.meters[1].meter.hex(), "credential": b64(&cred0.encode())});
    let e = w
        .env
        .err(admin(), Function::PostAnonCredential, &[&arg.to_string()]);
    assert_error(&e, 409, ErrorCode::AlreadyRegistered);
    let q = json!({"hid": w.meters[0].meter.hex(), "epoch": 1}).to_string();
    let record = w.env.ok(dc(), Function::GetAnonCredential, &[&q]);
    assert!(record["credential"].is_string());
}

#[test]
fn a_credential_not_issued_on_the_recorded_request_is_refused() {
    let mut w = World::new(2);
    // Epoch 2, meter 0 requests; the issuer signs meter 1's commitment by mistake.
    let k2 = IssuerSecretKey::<Blst>::from_bytes(&[6; 32], 2).unwrap();
    let set = w.env.ok(
        admin(),
        Function::SetAnonIssuerKey,
        &[&issuer_arg(k2.public_key())],
    );
    w.issuer = k2;
    w.issuer_tx = set["txId"].as_str().unwrap().to_owned();
    let r0 = w.request(0);
    w.env.ok(dc(), Function::RequestAnonCredential, &[&r0]);
    let _ = w.request(1);
    let m1 = &w.meters[1];
    let wrong = w
        .issuer
        .issue(
            m1.join.as_ref().unwrap(),
            &anon_join_nonce(&w.issuer_tx, &m1.meter.hid),
        )
        .unwrap();
    let arg = json!({"hid": w.meters[0].meter.hex(), "credential": b64(&wrong.encode())});
    let e = w
        .env
        .err(admin(), Function::PostAnonCredential, &[&arg.to_string()]);
    assert_error(&e, 400, ErrorCode::BadSignature);
}

#[test]
fn nothing_written_by_anonymous_readings_names_or_links_a_meter() {
    let mut w = World::new(2);
    let before = w.env.dump();
    let p1 = w.period_now();
    let r1 = w.reading(0, 10);
    let other = w.reading(1, 11);
    assert_eq!(w.submit(&[r1.clone(), other]), vec![None, None]);
    w.env.now_ms += PERIOD_MS;
    let p2 = w.period_now();
    let r2 = w.reading(0, 12);
    assert_eq!(w.submit(std::slice::from_ref(&r2)), vec![None]);
    let k1 = Presentation::<Blst>::decode(&r1).unwrap().pseudonym();
    let k2 = Presentation::<Blst>::decode(&r2).unwrap().pseudonym();
    assert_ne!(k1, k2, "one meter, two periods: two unrelated pseudonyms");
    assert_ne!(p1, p2);
    let written: Vec<(String, Vec<u8>)> = w
        .env
        .dump()
        .into_iter()
        .filter(|kv| !before.contains(kv))
        .collect();
    assert!(written.len() >= 4, "{written:?}");
    // What the issuance left on the ledger about each meter: HID, join commitment, credential.
    let mut identifying: Vec<String> = Vec::new();
    for m in &w.meters {
        identifying.push(m.meter.hex());
        let join = m.join.as_ref().unwrap();
        identifying.push(to_hex(&join.commitment()));
        identifying.push(b64(&join.encode()));
        let cred = m.credential.as_ref().unwrap().credential().encode();
        identifying.push(b64(&cred));
        identifying.push(to_hex(&cred[6..54])); // A
    }
    for (key, value) in &written {
        let text = format!("{key} {}", String::from_utf8_lossy(value));
        assert!(
            key.starts_with("\u{0}anon"),
            "anonymous readings wrote outside their own keys: {key:?}"
        );
        for id in &identifying {
            assert!(!text.contains(id.as_str()), "{key:?} holds {id}");
        }
    }
    // The pseudonym keys are the only per-meter values, and they differ per period.
    let nyms: Vec<&String> = written
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("\u{0}anonnym"))
        .collect();
    assert_eq!(nyms.len(), 3);
    assert!(nyms.iter().any(|k| k.contains(&to_hex(&k1))));
    assert!(nyms.iter().any(|k| k.contains(&to_hex(&k2))));
}

#[test]
fn two_endorsers_write_the_same_for_a_mixed_batch() {
    // Two ledgers in the same state (two peers) run the same transaction: identical results
    // and identical writes, byte for byte.
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut w = World::new(3);
        let a = w.reading(0, 100);
        let b = w.reading(1, 200);
        let a2 = w.reading(0, 300);
        let mut bad = w.reading(2, 5);
        bad[200] ^= 4;
        let stale = w.reading_at(2, w.period_now() - 4 * PERIOD_MS, PERIOD_SECS, 1);
        let reasons = w.submit(&[a.clone(), b, a, a2, bad, stale]);
        runs.push((reasons, w.env.dump(), w.env.ledger.events()));
    }
    assert_eq!(runs[0], runs[1]);
    assert_eq!(
        runs[0].0[..4],
        [None, None, Some(R::Replayed), Some(R::DoubleReport)]
    );
}

/// The negative control for the paper's basename `J = H2(TS ‖ msg)` (seed analysis B1): the
/// same ledger rule (key by period and pseudonym, `NymBook`) fed the paper's pseudonyms for a
/// meter's two different readings of one period sees two meters; fed ours, it sees the double
/// report.
#[test]
fn paper_basename_misses_the_double_report_on_the_same_ledger_rule() {
    let holder = SoftwareKeyHolder::<Blst>::from_entropy(&[1; 32]).unwrap();
    let f = Blst::scalar_from_be(&holder.to_bytes()).unwrap();
    let period = Period::new(1_800_000, PERIOD_SECS).unwrap();
    let report = |energy_wh| AnonReport {
        period,
        energy_wh,
        flags: ReportFlags::NONE,
    };
    let (first, second) = (report(100), report(900));
    let paper_k = |r: &AnonReport| {
        let mut basename = Vec::from(period.basename());
        basename.extend_from_slice(&r.encode());
        Blst::g1_to_bytes(&(Blst::hash_to_g1(&basename, b"paper H2") * f))
    };
    // Ours: J from the period alone (what every presentation of the period carries).
    let ours = Blst::g1_to_bytes(&(period.base::<Blst>() * f));
    let run = |k1: [u8; 48], k2: [u8; 48]| {
        let mut book = NymBook::new(BTreeMap::new());
        let start = period.start_unix_millis();
        let a = book.admit(&nym_key(start, &k1).unwrap(), "hash-first", "tx1");
        let b = book.admit(&nym_key(start, &k2).unwrap(), "hash-second", "tx1");
        (a, b)
    };
    let (a, b) = run(paper_k(&first), paper_k(&second));
    assert_eq!(
        (a, b),
        (NymOutcome::First, NymOutcome::First),
        "paper: missed"
    );
    let (a, b) = run(ours, ours);
    assert_eq!(a, NymOutcome::First);
    assert!(matches!(b, NymOutcome::DoubleReport(_)), "ours: caught");
}

#[derive(Debug, Clone)]
enum Op {
    /// Meter `m`'s reading of `energy` for the period `p` periods back.
    Fresh { m: usize, p: u64, energy: u64 },
    /// An exact copy of an earlier reading (index modulo those made so far).
    Replay(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..4, 0u64..2, 0u64..5_000).prop_map(|(m, p, energy)| Op::Fresh { m, p, energy }),
        1 => (0usize..64).prop_map(Op::Replay),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The aggregate of each period equals the sum of the readings the contract accepted, and
    /// those are exactly each meter's first reading of the period (an independent model).
    #[test]
    fn aggregate_equals_the_sum_of_accepted_readings(
        batches in proptest::collection::vec(proptest::collection::vec(op(), 1..10), 1..4)
    ) {
        let mut w = World::new(4);
        // Two periods, both inside the window: the current one and the previous one, with the
        // transaction time just after the boundary.
        w.env.now_ms = (w.env.now_ms / PERIOD_MS + 1) * PERIOD_MS + 1_000;
        let now = w.period_now();
        let mut made: Vec<(Vec<u8>, usize, u64, u64)> = Vec::new();
        let mut first: BTreeMap<(usize, u64), Vec<u8>> = BTreeMap::new();
        let mut accepted_sum: BTreeMap<u64, u64> = BTreeMap::new();
        for ops in batches {
            let mut batch = Vec::new();
            let mut meta = Vec::new();
            for op in ops {
                let item = match op {
                    Op::Fresh { m, p, energy } => {
                        let start = now - p * PERIOD_MS;
                        let bytes = w.reading_at(m, start, PERIOD_SECS, energy);
                        (bytes, m, start, energy)
                    }
                    Op::Replay(i) if !made.is_empty() => made[i % made.len()].clone(),
                    Op::Replay(_) => continue,
                };
                made.push(item.clone());
                meta.push(item.clone());
                batch.push(item.0);
            }
            if batch.is_empty() {
                continue;
            }
            let reasons = w.submit(&batch);
            for ((bytes, m, start, energy), reason) in meta.iter().zip(&reasons) {
                let expected = match first.get(&(*m, *start)) {
                    None => None,
                    Some(b) if b == bytes => Some(R::Replayed),
                    Some(_) => Some(R::DoubleReport),
                };
                prop_assert_eq!(*reason, expected);
                if reason.is_none() {
                    first.insert((*m, *start), bytes.clone());
                    *accepted_sum.entry(*start).or_default() += energy;
                }
            }
        }
        for p in 0..2 {
            let start = now - p * PERIOD_MS;
            let agg = w.aggregate(start);
            prop_assert_eq!(agg["sumWh"].as_u64().unwrap(), accepted_sum.get(&start).copied().unwrap_or(0));
            let count = first.keys().filter(|(_, s)| *s == start).count() as u64;
            prop_assert_eq!(agg["count"].as_u64().unwrap(), count);
        }
    }
}

#[test]
fn a_trace_is_recorded_only_for_a_double_report_and_revokes_the_culprit() {
    let mut w = World::new(2);
    let start = w.period_now();
    let a = w.reading(0, 1);
    let a2 = w.reading(0, 2);
    let b = w.reading(1, 3);
    assert_eq!(
        w.submit(&[a.clone(), a2, b.clone()]),
        vec![None, Some(R::DoubleReport), None]
    );
    let k = to_hex(&Presentation::<Blst>::decode(&a).unwrap().pseudonym());
    let kb = to_hex(&Presentation::<Blst>::decode(&b).unwrap().pseudonym());
    let arg = |k: &str, hid: String| {
        json!({"periodStart": start, "pseudonym": k, "hid": hid, "cleared": 1}).to_string()
    };
    // Meter 1's pseudonym was never double-reported: nothing to trace.
    let e = w.env.err(
        admin(),
        Function::RecordAnonTrace,
        &[&arg(&kb, w.meters[1].meter.hex())],
    );
    assert_error(&e, 404, ErrorCode::NoEvidence);
    let e = w.env.err(
        admin(),
        Function::RecordAnonTrace,
        &[&arg("00", w.meters[0].meter.hex())],
    );
    assert_error(&e, 400, ErrorCode::BadArgument);
    let record = w.env.ok(
        admin(),
        Function::RecordAnonTrace,
        &[&arg(&k, w.meters[0].meter.hex())],
    );
    assert_eq!(record["hid"], w.meters[0].meter.hex());
    let meter = w
        .env
        .ok(admin(), Function::GetMeter, &[&w.meters[0].meter.hex()]);
    assert_eq!(meter["meter"]["status"], "revoked");
    // Idempotent for the same meter; another meter for the same pseudonym conflicts.
    w.env.ok(
        admin(),
        Function::RecordAnonTrace,
        &[&arg(&k, w.meters[0].meter.hex())],
    );
    let e = w.env.err(
        admin(),
        Function::RecordAnonTrace,
        &[&arg(&k, w.meters[1].meter.hex())],
    );
    assert_error(&e, 409, ErrorCode::AlreadyRegistered);
    // The revoked meter gets no next-epoch credential.
    let k2 = IssuerSecretKey::<Blst>::from_bytes(&[6; 32], 2).unwrap();
    let set = w.env.ok(
        admin(),
        Function::SetAnonIssuerKey,
        &[&issuer_arg(k2.public_key())],
    );
    w.issuer = k2;
    w.issuer_tx = set["txId"].as_str().unwrap().to_owned();
    let request = w.request(0);
    let e = w
        .env
        .err(dc(), Function::RequestAnonCredential, &[&request]);
    assert_error(&e, 409, ErrorCode::Revoked);
    let request = w.request(1);
    w.env.ok(dc(), Function::RequestAnonCredential, &[&request]);
}

/// A meter keeps one anonymous secret across epochs: with two, it would have two pseudonyms in
/// a period where both epochs are accepted (the rollover) and could report twice unseen.
#[test]
fn every_epoch_s_request_commits_to_the_meter_s_first_secret() {
    let mut w = World::new(2);
    let k2 = IssuerSecretKey::<Blst>::from_bytes(&[6; 32], 2).unwrap();
    let set = w.env.ok(
        admin(),
        Function::SetAnonIssuerKey,
        &[&issuer_arg(k2.public_key())],
    );
    w.issuer = k2;
    w.issuer_tx = set["txId"].as_str().unwrap().to_owned();
    // Meter 0 with a new secret: refused. Meter 1 with its own: accepted.
    let old = std::mem::replace(
        &mut w.meters[0].holder,
        SoftwareKeyHolder::from_entropy(&[0x77; 32]).unwrap(),
    );
    let request = w.request(0);
    let e = w
        .env
        .err(dc(), Function::RequestAnonCredential, &[&request]);
    assert_error(&e, 409, ErrorCode::KeyNotProvisioned);
    w.meters[0].holder = old;
    w.join(0);
    w.join(1);
    // Within the rollover, meter 0's epoch-1 and epoch-2 readings of one period share a
    // pseudonym: the second is a double report.
    let start = w.period_now();
    let epoch2 = w.reading(0, 10);
    let mut holder = std::mem::replace(
        &mut w.meters[0].holder,
        SoftwareKeyHolder::from_entropy(&[0x78; 32]).unwrap(),
    );
    let old_issuer = IssuerSecretKey::<Blst>::from_bytes(&[5; 32], 1).unwrap();
    let join = JoinRequest::build(
        &mut holder,
        old_issuer.public_key(),
        [9; 32],
        [8; 32],
        &[1; 32],
    )
    .unwrap();
    let cred1 = old_issuer
        .issue(&join, &[8; 32])
        .unwrap()
        .accept(old_issuer.public_key(), &holder.commitment())
        .unwrap();
    let report = AnonReport {
        period: Period::new(start, PERIOD_SECS).unwrap(),
        energy_wh: 11,
        flags: ReportFlags::NONE,
    };
    let epoch1 = Presentation::build_from_entropy(
        &mut holder,
        &cred1,
        old_issuer.public_key(),
        &report,
        &[5; 64],
    )
    .unwrap()
    .encode();
    assert_eq!(
        w.submit(&[epoch2, epoch1]),
        vec![None, Some(R::DoubleReport)]
    );
}
