//! A hostile data concentrator on the live network. It holds a legitimate Operator client
//! identity, so it passes the role check; everything it relays must still be judged on its own
//! merits, and nothing already accepted may change:
//! - an in-batch duplicate and a replay are `replayed`; meter A keeps exactly one reading;
//! - a batch of hostile elements (reorder, forged signer, flipped bit, truncated, trailing byte,
//!   a registration where a reading belongs, noise, oversize, bad base64, unknown / unregistered /
//!   revoked meters, stale and future timestamps) is rejected element by element with each one's
//!   own reason, and the batch still commits with nothing accepted;
//! - whole-call garbage (not JSON, wrong shapes, empty, over the batch limit, wrong argument
//!   counts, an unknown function, garbage and replayed registrations, a forged rotation) is
//!   refused at endorsement with its status and code, never ordered;
//! - `GetCounts`, `GetMeter` and `GetReadings` are byte-identical before and after, on both
//!   peers;
//! - a meter provisioned with its key hash bound cannot be registered with another key, nor
//!   re-bound, and its own key registers and reads.
//!
//! Run by `scripts/test.sh e2e` (needs `$BCAMI_RUN_DIR/network.json` and `bcami` deployed).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_api::{
    ErrorCode, Function, KeyHash, MAX_BATCH, MeterStatus, ProvisionEntry, ReadingsRequest,
    RejectReason, Request, SubmitResponse,
};
use bcami_client::{Caller, Client, Fabric, Org, Rejection, Settings, User};
use bcami_e2e::NetworkEnv;
use bcami_sdk::{
    Hid, IntervalLength, KeyRotationRequest, MdmsPublicKey, MeterSecretKey, QualityFlags,
    RegistrationRequest, Timestamp, Transaction, UsageReport, WattHours,
};
use fabric_gateway_client::{Contract, Gateway, load_msp};
use meter_sim::run::{RunConfig, Source};
use meter_sim::state::StateDir;
use rand_core::{OsRng, RngCore};

const CHAINCODE: &str = "bcami";

fn now_ms() -> u64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(elapsed.as_millis()).unwrap()
}

/// A meter of this test: its ID, HID and key, and the timestamp of its last message (each
/// message must be strictly newer than the last one the ledger accepted).
struct TestMeter {
    hid: Hid,
    key: MeterSecretKey,
    last_ms: u64,
}

impl TestMeter {
    fn new(id: &str) -> Self {
        Self {
            hid: Hid::from_meter_id(id),
            key: MeterSecretKey::generate(&mut OsRng).unwrap(),
            last_ms: 0,
        }
    }

    /// The next timestamp: now, and after every earlier one.
    fn tick(&mut self) -> Timestamp {
        self.last_ms = now_ms().max(self.last_ms + 1);
        Timestamp::from_unix_millis(self.last_ms)
    }

    /// A meter claiming `victim`'s HID while holding this meter's key (a forger).
    fn impersonating(&self, victim: &TestMeter) -> Self {
        Self {
            hid: victim.hid,
            key: MeterSecretKey::from_bytes(&self.key.to_bytes()).unwrap(),
            last_ms: victim.last_ms,
        }
    }

    fn registration(&mut self) -> Vec<u8> {
        let ts = self.tick();
        RegistrationRequest::build(&self.key, self.hid, ts)
            .unwrap()
            .encode()
    }

    fn reading(&mut self, mdms: &MdmsPublicKey) -> Vec<u8> {
        let ts = self.tick();
        self.reading_at(mdms, ts)
    }

    fn reading_at(&self, mdms: &MdmsPublicKey, ts: Timestamp) -> Vec<u8> {
        let report = UsageReport {
            interval_start: Timestamp::from_unix_millis(ts.unix_millis() - 1_800_000),
            interval_length: IntervalLength::HALF_HOUR,
            energy: WattHours(300),
            cumulative_register: WattHours(300),
            quality: QualityFlags::default(),
        };
        Transaction::build(&mut OsRng, &self.key, self.hid, ts, &report, mdms)
            .unwrap()
            .encode()
    }
}

/// The network, its typed client, and raw contracts for what the typed client cannot send.
struct Net {
    fabric: Fabric,
    /// The hostile DC (Operator client1) on the Operator peer.
    dc: Contract,
    /// The Utility admin on the Utility peer and on the Operator peer, for snapshots.
    admin_at: [Contract; 2],
}

/// A contract as `user` of `identity_org`, through `peer_org`'s peer.
async fn contract_via(identity_org: &Org, user: User, peer_org: &Org, channel: &str) -> Contract {
    let credentials = load_msp(identity_org.msp(user), &identity_org.msp_id).unwrap();
    Gateway::builder(peer_org.peer_address.clone(), credentials.identity)
        .signer(credentials.signer)
        .tls_ca_file(&peer_org.peer_tls_ca)
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot reach {}: {e}", peer_org.peer_address))
        .network(channel.to_owned())
        .contract(CHAINCODE)
}

impl Net {
    async fn connect(env: &NetworkEnv) -> Self {
        let settings = Settings {
            mdms_state: env.run_dir.join("mdms"),
            network: env.network.clone(),
            chaincode: CHAINCODE.to_owned(),
        };
        let fabric = Fabric::connect(&settings)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the network: {e}"));
        let (utility, operator) = (&env.utility, &env.operator);
        Self {
            fabric,
            dc: contract_via(operator, User::Client1, operator, &env.channel).await,
            admin_at: [
                contract_via(utility, User::Admin, utility, &env.channel).await,
                contract_via(utility, User::Admin, operator, &env.channel).await,
            ],
        }
    }

    fn client(&self) -> Client<'_, Fabric> {
        Client::new(&self.fabric)
    }

    /// The contract's refusal of a whole call submitted by `contract`: it must not commit.
    async fn refusal(contract: &Contract, function: &str, args: &[String]) -> Rejection {
        match contract.submit(function, args.iter().cloned()).await {
            Ok(committed) => panic!(
                "{function} committed in block {}, but should have been refused",
                committed.block_number
            ),
            Err(e) => match e.chaincode_error() {
                Some(refusal) => Rejection::new(refusal.status, refusal.message),
                None => panic!("{function}: not a contract refusal: {e}"),
            },
        }
    }

    /// Everything a hostile DC could touch, as one peer answers the administrator, verbatim.
    async fn snapshot(&self, peer: usize, hids: &[Hid]) -> Vec<Vec<u8>> {
        let admin = &self.admin_at[peer];
        let mut requests = vec![Request::GetCounts.args()];
        let queries: Vec<ReadingsRequest> = hids.iter().map(|&hid| readings_of(hid)).collect();
        for (hid, query) in hids.iter().zip(&queries) {
            requests.push(Request::GetMeter(*hid).args());
            requests.push(Request::GetReadings(query).args());
        }
        let functions = std::iter::once(Function::GetCounts.name()).chain(
            hids.iter()
                .flat_map(|_| [Function::GetMeter.name(), Function::GetReadings.name()]),
        );
        let mut answers = Vec::new();
        for (function, args) in functions.zip(requests) {
            answers.push(
                admin
                    .evaluate(function, args)
                    .await
                    .unwrap_or_else(|e| panic!("{function} on peer {peer}: {e}")),
            );
        }
        answers
    }

    async fn snapshots(&self, hids: &[Hid]) -> [Vec<Vec<u8>>; 2] {
        [self.snapshot(0, hids).await, self.snapshot(1, hids).await]
    }
}

fn readings_of(hid: Hid) -> ReadingsRequest {
    ReadingsRequest {
        hid,
        from: None,
        to: None,
        page_size: None,
        bookmark: String::new(),
    }
}

/// The network's MDMS key; on a network where nobody registered an MDMS yet, one meter-sim run
/// registers the network's MDMS (kept beside `network.json`) as every other suite does.
async fn mdms_key(env: &NetworkEnv, net: &Net) -> MdmsPublicKey {
    if let Some((key, _)) = net.client().current_mdms_key(Caller::Mdms).await.unwrap() {
        return key;
    }
    let state = tempfile::tempdir().unwrap();
    let config = RunConfig {
        batch: 1,
        ..RunConfig::new(
            Source::Synthetic {
                prefix: bcami_e2e::unique("E2E-HOSTILE-MDMS"),
                meters: 1,
                intervals: 1,
                interval: IntervalLength::HALF_HOUR,
                seed: 1,
                start_ms: 1_704_067_200_000,
            },
            "MDMS-1".parse().unwrap(),
        )
    };
    let mdms_state = StateDir::open(&env.run_dir.join("mdms")).unwrap();
    let settings = Settings {
        mdms_state: env.run_dir.join("mdms"),
        network: env.network.clone(),
        chaincode: CHAINCODE.to_owned(),
    };
    let fabric = Fabric::connect(&settings).await.unwrap();
    meter_sim::run::run(
        Arc::new(fabric),
        &StateDir::open(state.path()).unwrap(),
        &mdms_state,
        &config,
    )
    .await
    .unwrap_or_else(|e| panic!("registering the network's MDMS failed: {e:#}"));
    net.client()
        .current_mdms_key(Caller::Mdms)
        .await
        .unwrap()
        .expect("an MDMS key after the run")
        .0
}

fn submit_response(bytes: &[u8]) -> SubmitResponse {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not a SubmitReadings response ({e}): {bytes:?}"))
}

/// `SubmitReadings`' one argument for a batch of already-encoded (or deliberately broken)
/// base64 elements.
fn batch_arg(elements: &[String]) -> Vec<String> {
    vec![serde_json::to_string(elements).unwrap()]
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_concentrator_changes_nothing_accepted() {
    let env = NetworkEnv::require();
    let net = Net::connect(&env).await;
    let client = net.client();
    let dc = Caller::Concentrator(0);
    let mdms = mdms_key(&env, &net).await;
    let tag = bcami_e2e::unique("SM-hostile");

    // --- fixture: A and B active, C revoked, P provisioned only, U unknown --------------------
    let [mut a, mut b, mut c, mut p, mut u] =
        ["A", "B", "C", "P", "U"].map(|m| TestMeter::new(&format!("{tag}-{m}")));
    let entries: Vec<ProvisionEntry> = [&a, &b, &c, &p]
        .iter()
        .map(|m| ProvisionEntry::Unbound(m.hid))
        .collect();
    client
        .provision_meters(Caller::Administrator, &entries)
        .await
        .unwrap();
    for m in [&mut a, &mut b, &mut c] {
        let request = m.registration();
        client.register_meter(dc, &request).await.unwrap();
    }
    client
        .revoke_meter(Caller::Administrator, c.hid)
        .await
        .unwrap();

    let ra1 = a.reading(&mdms);
    let rb1 = b.reading(&mdms); // withheld: relayed only after RB2 (reorder)
    let rb2 = b.reading(&mdms);
    let ra2 = a.reading(&mdms); // never accepted: the base of the tampered variants

    // --- a legitimate batch with an in-batch duplicate ------------------------------------------
    let outcome = client
        .submit_readings(dc, &[ra1.clone(), rb2.clone(), ra1.clone()])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        [None, None, Some(RejectReason::Replayed)],
        "batch [A1, B2, A1 again]: 2 accepted, the duplicate replayed"
    );
    let simulated = submit_response(
        &net.dc
            .evaluate(
                Function::SubmitReadings.name(),
                batch_arg(&[b64(&ra2), b64(&ra2)]),
            )
            .await
            .unwrap(),
    );
    assert_eq!((simulated.accepted, simulated.rejected), (1, 1));
    assert_eq!(simulated.rejections[0].index, 1);
    assert_eq!(simulated.rejections[0].reason, RejectReason::Replayed);
    let a_readings = client
        .readings_page(Caller::Administrator, &readings_of(a.hid))
        .await
        .unwrap();
    assert_eq!(
        a_readings.readings.len(),
        1,
        "meter A has exactly one reading"
    );

    let watched = [a.hid, b.hid, c.hid, p.hid];
    let before = net.snapshots(&watched).await;

    // --- the hostile batch: each element rejected with its own reason ---------------------------
    let mut forger = a.impersonating(&b);
    let forged = forger.reading(&mdms);
    let edited = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = ra2.clone();
        edit(&mut bytes);
        b64(&bytes)
    };
    let mut noise = vec![0u8; 188];
    OsRng.fill_bytes(&mut noise);
    let mut header_noise = vec![2u8, 1];
    header_noise.extend_from_slice(&noise[..186]);
    let now = now_ms();
    let hostile: Vec<(&str, RejectReason, String)> = vec![
        (
            "replay of an accepted reading (A1)",
            RejectReason::Replayed,
            b64(&ra1),
        ),
        (
            "older reading after a newer one (B1 after B2)",
            RejectReason::Replayed,
            b64(&rb1),
        ),
        (
            "meter B's reading signed with meter A's key",
            RejectReason::BadSignature,
            b64(&forged),
        ),
        (
            "one bit of the ciphertext flipped",
            RejectReason::BadSignature,
            edited(&|r| r[80] ^= 1),
        ),
        (
            "truncated by 10 bytes",
            RejectReason::Malformed,
            edited(&|r| r.truncate(r.len() - 10)),
        ),
        (
            "one trailing byte",
            RejectReason::Malformed,
            edited(&|r| r.push(0)),
        ),
        (
            "a registration where a reading belongs",
            RejectReason::Malformed,
            b64(&p.registration()),
        ),
        ("188 random bytes", RejectReason::Malformed, b64(&noise)),
        (
            "a reading header + 186 random bytes",
            RejectReason::Malformed,
            b64(&header_noise),
        ),
        (
            "1,100-byte element",
            RejectReason::Oversize,
            b64(&[0u8; 1100]),
        ),
        (
            "not base64",
            RejectReason::BadBase64,
            "this is not base64!".to_owned(),
        ),
        (
            "unknown meter",
            RejectReason::UnknownMeter,
            b64(&u.reading(&mdms)),
        ),
        (
            "provisioned, never registered",
            RejectReason::NotRegistered,
            b64(&p.reading(&mdms)),
        ),
        (
            "revoked meter",
            RejectReason::Revoked,
            b64(&c.reading(&mdms)),
        ),
        (
            "timestamp 10 minutes old",
            RejectReason::Stale,
            b64(&a.reading_at(&mdms, Timestamp::from_unix_millis(now - 600_000))),
        ),
        (
            "timestamp 10 minutes ahead",
            RejectReason::Future,
            b64(&a.reading_at(&mdms, Timestamp::from_unix_millis(now + 600_000))),
        ),
    ];
    let elements: Vec<String> = hostile.iter().map(|(_, _, e)| e.clone()).collect();
    let simulated = submit_response(
        &net.dc
            .evaluate(Function::SubmitReadings.name(), batch_arg(&elements))
            .await
            .unwrap(),
    );
    for (index, (label, expected, _)) in hostile.iter().enumerate() {
        let got: Vec<_> = simulated
            .rejections
            .iter()
            .filter(|r| r.index == index)
            .collect();
        assert!(
            got.len() == 1 && got[0].reason == *expected,
            "{label}: expected rejected {expected:?}, got {got:?}"
        );
    }
    let committed = net
        .dc
        .submit(Function::SubmitReadings.name(), batch_arg(&elements))
        .await
        .unwrap_or_else(|e| panic!("the hostile batch did not commit: {e}"));
    let committed = submit_response(&committed.result);
    assert_eq!(
        (committed.accepted, committed.rejected),
        (0, hostile.len()),
        "the hostile batch commits VALID with nothing accepted"
    );

    // --- whole-call garbage: refused at endorsement, never ordered -------------------------------
    let flood = serde_json::to_string(&vec!["AAAA"; MAX_BATCH + 1]).unwrap();
    let mut forged_rotation = a.impersonating(&b);
    let rotation_ts = forged_rotation.tick();
    let rotation = KeyRotationRequest::build(
        &forged_rotation.key,
        &MeterSecretKey::generate(&mut OsRng).unwrap(),
        b.hid,
        rotation_ts,
    )
    .unwrap()
    .encode();
    let s = |text: &str| text.to_owned();
    let garbage: Vec<(&str, &str, Vec<String>, ErrorCode)> = vec![
        (
            "not JSON",
            Function::SubmitReadings.name(),
            vec![s("hello")],
            ErrorCode::BadArgument,
        ),
        (
            "a JSON object",
            Function::SubmitReadings.name(),
            vec![s(r#"{"readings":[]}"#)],
            ErrorCode::BadArgument,
        ),
        (
            "an array of numbers",
            Function::SubmitReadings.name(),
            vec![s("[1,2,3]")],
            ErrorCode::BadArgument,
        ),
        (
            "an empty array",
            Function::SubmitReadings.name(),
            vec![s("[]")],
            ErrorCode::BadArgument,
        ),
        (
            "one element over the batch limit",
            Function::SubmitReadings.name(),
            vec![flood.clone()],
            ErrorCode::BadArgument,
        ),
        (
            "the flood again",
            Function::SubmitReadings.name(),
            vec![flood],
            ErrorCode::BadArgument,
        ),
        (
            "no argument",
            Function::SubmitReadings.name(),
            vec![],
            ErrorCode::BadArgument,
        ),
        (
            "two arguments",
            Function::SubmitReadings.name(),
            vec![s("[]"), s("[]")],
            ErrorCode::BadArgument,
        ),
        (
            "an unknown function",
            "DeleteEverything",
            vec![a.hid.to_string()],
            ErrorCode::UnknownFunction,
        ),
        (
            "a garbage registration",
            Function::RegisterMeter.name(),
            vec![s("AAAA")],
            ErrorCode::BadArgument,
        ),
        (
            "meter A's registration replayed",
            Function::RegisterMeter.name(),
            vec![b64(&a.registration())],
            ErrorCode::AlreadyRegistered,
        ),
        (
            "meter B's rotation signed by meter A's key",
            Function::RotateMeterKey.name(),
            vec![b64(&rotation)],
            ErrorCode::BadSignature,
        ),
    ];
    for (label, function, args, code) in &garbage {
        let refusal = Net::refusal(&net.dc, function, args).await;
        assert_eq!(
            (refusal.status, refusal.code),
            (Some(i32::from(code.status())), Some(*code)),
            "{label}: {refusal}"
        );
    }

    // --- nothing accepted changed, on either peer ------------------------------------------------
    let after = net.snapshots(&watched).await;
    assert_eq!(before[0], after[0], "the Utility peer's answers changed");
    assert_eq!(before[1], after[1], "the Operator peer's answers changed");
    assert_eq!(after[0], after[1], "the two peers answer differently");

    // --- a meter provisioned with its key hash: another key is refused ---------------------------
    let mut k = TestMeter::new(&format!("{tag}-K"));
    let mut hijack = TestMeter::new(&format!("{tag}-K"));
    let k_hash = KeyHash::of_meter_key(&k.key.public_key());
    let hijack_hash = KeyHash::of_meter_key(&hijack.key.public_key());
    client
        .provision_meters(
            Caller::Administrator,
            &[ProvisionEntry::Bound {
                hid: k.hid,
                key_hash: k_hash,
            }],
        )
        .await
        .unwrap();
    let k_view = client.meter(Caller::Administrator, k.hid).await.unwrap();
    assert_eq!(
        (k_view.meter.status, k_view.meter.key_hash),
        (MeterStatus::Provisioned, Some(k_hash))
    );
    let k_before = net.snapshots(&[k.hid]).await;
    let hijacked = Net::refusal(
        &net.dc,
        Function::RegisterMeter.name(),
        &[b64(&hijack.registration())],
    )
    .await;
    assert_eq!(
        hijacked.code,
        Some(ErrorCode::KeyNotProvisioned),
        "{hijacked}"
    );
    let rebind = Request::ProvisionMeters(&[ProvisionEntry::Bound {
        hid: k.hid,
        key_hash: hijack_hash,
    }])
    .args();
    let rebound = Net::refusal(&net.admin_at[0], Function::ProvisionMeters.name(), &rebind).await;
    assert_eq!(
        rebound.code,
        Some(ErrorCode::ProvisionConflict),
        "{rebound}"
    );
    let k_after = net.snapshots(&[k.hid]).await;
    assert_eq!(
        k_before[0][1..],
        k_after[0][1..],
        "K changed on the Utility peer"
    );
    assert_eq!(
        k_before[1][1..],
        k_after[1][1..],
        "K changed on the Operator peer"
    );
    let k_view = client.meter(Caller::Administrator, k.hid).await.unwrap();
    assert_eq!(
        (
            k_view.meter.status,
            k_view.meter.key_version,
            k_view.keys.len()
        ),
        (MeterStatus::Provisioned, 0, 0),
        "K is still provisioned, with no key"
    );

    let request = k.registration();
    let registered = client.register_meter(dc, &request).await.unwrap();
    assert_eq!(
        (
            registered.status,
            registered.key_version,
            registered.key_hash,
            registered.public_key
        ),
        (
            MeterStatus::Active,
            1,
            Some(k_hash),
            Some(k.key.public_key())
        ),
        "K's own key registers as version 1"
    );
    let simulated = submit_response(
        &net.dc
            .evaluate(
                Function::SubmitReadings.name(),
                batch_arg(&[b64(&k.reading(&mdms))]),
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        (simulated.accepted, simulated.rejected),
        (1, 0),
        "a reading of K with its bound key is accepted: {:?}",
        simulated.rejections
    );
}
