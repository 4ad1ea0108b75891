//! Anonymous readings on the live network, end to end through `bcami-client`: the issuer key,
//! credential requests relayed by a concentrator and signed with the meters' BC-AMI keys,
//! credentials posted by the administrator, then readings through two concentrators (two client
//! identities):
//! - a meter's second, different reading of a period, sent through the other concentrator, is
//!   caught as a double report and kept as evidence;
//! - an exact replay, through either concentrator, is `replayed`, never a double report;
//! - the same pseudonym submitted by both concentrators at once (both endorsed before either is
//!   ordered) lands exactly once: the other transaction is invalidated with MVCC_READ_CONFLICT;
//! - the period's aggregate equals the sum of the accepted readings, per concentrator too;
//! - tracing names exactly the double-reporting meter (every other meter's proof verifies
//!   against its recorded commitment), and recording the trace revokes it;
//! - a mixed batch (accepted, replayed, double report, bad proof, stale) commits. The channel's
//!   endorsement policy is the AND of both organisations, and `Fabric::submit` returns only once
//!   the transaction committed as valid on both peers, so a committed transaction proves that
//!   the Utility's and the Operator's endorsers computed the same write set (different write
//!   sets fail endorsement with `ProposalResponsePayloads do not match`, and nothing commits).
//!
//! Each run uses a fresh epoch (the current one + 1) and fresh meters, so it can run again on the
//! same network; it adopts the period length the network has (set once, by whoever is first).
//!
//! Run by `scripts/test.sh e2e` (needs `$BCAMI_RUN_DIR/network.json` and `bcami` deployed).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{SystemTime, UNIX_EPOCH};

use bcami_api::{AnonRejectReason, ErrorCode, Function};
use bcami_client::{
    AnonIssuer, AnonMeter, Caller, Client, Fabric, Settings, User, issuer_public_key,
};
use bcami_e2e::NetworkEnv;
use bcami_sdk::{Hid, MeterSecretKey, RegistrationRequest, Timestamp};
use fabric_gateway_client::ValidationCode;

const METERS: usize = 4;
const DEFAULT_PERIOD_SECS: u32 = 1800;

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn seed(run: u64, what: u8, n: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[0] = 1; // below every group order involved
    s[1] = what;
    s[8..16].copy_from_slice(&run.to_be_bytes());
    s[16..24].copy_from_slice(&(n as u64).to_be_bytes());
    s
}

fn entropy64(run: u64, n: u64) -> [u8; 64] {
    let mut e = [0x5au8; 64];
    e[..8].copy_from_slice(&run.to_be_bytes());
    e[8..16].copy_from_slice(&n.to_be_bytes());
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_reports_replays_races_and_aggregates_on_the_live_network() {
    let env = NetworkEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let settings = Settings {
        mdms_state: env.run_dir.join("mdms"),
        network: env.network.clone(),
        chaincode: "bcami".to_owned(),
    };
    let fabric = Fabric::connect(&settings)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the network: {e}"));
    let client = Client::new(&fabric);
    let run = now_ms();
    let (dc0, dc1) = (Caller::Concentrator(0), Caller::Concentrator(1));

    // The issuer key of a fresh epoch.
    let (epoch, period_secs) = match client.anon_issuer_key(Caller::Mdms, None).await {
        Ok(current) => (current.epoch + 1, current.period_secs),
        Err(e) if e.code() == Some(ErrorCode::UnknownEpoch) => (1, DEFAULT_PERIOD_SECS),
        Err(e) => panic!("GetAnonIssuerKey: {e}"),
    };
    let issuer = AnonIssuer::from_bytes(&seed(run, 1, 0), epoch).unwrap();
    let record = client
        .set_anon_issuer_key(Caller::Administrator, issuer.public_key(), period_secs)
        .await
        .unwrap_or_else(|e| panic!("SetAnonIssuerKey: {e}"));
    assert_eq!((record.epoch, record.period_secs), (epoch, period_secs));
    let ipk = issuer_public_key(&record).unwrap();

    // Meters: provisioned with their keys bound, registered, then enrolled anonymously.
    let keys: Vec<(Hid, MeterSecretKey)> = (0..METERS)
        .map(|i| {
            (
                Hid::from_meter_id(format!("E2E-ANON-{run}-{i}")),
                MeterSecretKey::from_bytes(&seed(run, 2, i)).unwrap(),
            )
        })
        .collect();
    let bound: Vec<(Hid, bcami_sdk::MeterPublicKey)> =
        keys.iter().map(|(h, k)| (*h, k.public_key())).collect();
    client.provision_bound_meters(&bound).await.unwrap();
    let mut meters = Vec::new();
    for (i, (hid, key)) in keys.iter().enumerate() {
        let ts = Timestamp::from_unix_millis(now_ms());
        let registration = RegistrationRequest::build(key, *hid, ts).unwrap().encode();
        client
            .register_meter(dc0, &registration)
            .await
            .unwrap_or_else(|e| panic!("RegisterMeter {i}: {e}"));
        let mut meter = AnonMeter::new(*hid, &seed(run, 3, i)).unwrap();
        let request = meter
            .credential_request(
                &ipk,
                &record.tx_id,
                key,
                Timestamp::from_unix_millis(now_ms()),
                &seed(run, 4, i),
            )
            .unwrap();
        let requested = client
            .request_anon_credential(dc0, &request)
            .await
            .unwrap_or_else(|e| panic!("RequestAnonCredential {i}: {e}"));
        let credential = issuer.issue(&requested, &record.tx_id).unwrap();
        let posted = client
            .post_anon_credential(Caller::Administrator, *hid, &credential)
            .await
            .unwrap_or_else(|e| panic!("PostAnonCredential {i}: {e}"));
        let fetched = client.anon_credential(dc0, *hid, epoch).await.unwrap();
        assert_eq!(fetched, posted);
        meter.accept(&ipk, &fetched).unwrap();
        meters.push(meter);
    }

    // Readings of the current period.
    let period_ms = u64::from(period_secs) * 1000;
    let start = now_ms() / period_ms * period_ms;
    let before = client
        .anon_aggregate(Caller::Mdms, start)
        .await
        .unwrap_or_else(|e| panic!("GetAnonAggregate: {e}"));
    let mut n = 0u64;
    let mut reading = |m: usize, energy: u64| {
        n += 1;
        meters[m]
            .reading(start, period_secs, energy, &entropy64(run, n))
            .unwrap()
    };
    let a = reading(0, 101);
    let b = reading(1, 202);
    let a2 = reading(0, 999);
    let race0 = reading(2, 303);
    let race1 = reading(2, 304);
    let c = reading(3, 404);
    let mut bad = reading(3, 405);
    bad[300] ^= 1;
    let stale = meters[3]
        .reading(start - 10 * period_ms, period_secs, 7, &entropy64(run, 999))
        .unwrap();

    use AnonRejectReason as R;
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    assert_eq!(
        client
            .submit_anon_readings(dc0, &[a.clone(), b.clone()])
            .await
            .unwrap(),
        vec![None, None]
    );
    // Through the other concentrator: meter 0's second reading is a double report, the exact
    // copy of `a` a replay.
    assert_eq!(
        client
            .submit_anon_readings(dc1, &[a2.clone(), a.clone()])
            .await
            .unwrap(),
        vec![Some(R::DoubleReport), Some(R::Replayed)]
    );
    // And a replay through the first concentrator too: still not a double report.
    assert_eq!(
        client
            .submit_anon_readings(dc0, std::slice::from_ref(&b))
            .await
            .unwrap(),
        vec![Some(R::Replayed)]
    );

    // Meter 2's two different readings through both concentrators at once. Both proposals are
    // endorsed before either is ordered, so both read `anonnym~PERIOD~K` as absent and write it;
    // the peers commit the first and invalidate the second with MVCC_READ_CONFLICT: exactly one
    // lands. (The client's `submit` would re-endorse the loser, which then gets
    // `double_report`; the raw gateway steps show the conflict itself.)
    let contract = |user| {
        let env = &env;
        async move {
            env.operator
                .gateway(user)
                .await
                .unwrap()
                .network(env.channel.clone())
                .contract("bcami")
        }
    };
    let c0 = contract(User::Client1).await;
    let c1 = contract(User::Client2).await;
    let arg = |r: &[u8]| serde_json::to_string(&[b64(r)]).unwrap();
    let t0 = c0
        .proposal(Function::SubmitAnonReadings.name())
        .arg(arg(&race0))
        .build()
        .unwrap()
        .endorse()
        .await
        .unwrap();
    let t1 = c1
        .proposal(Function::SubmitAnonReadings.name())
        .arg(arg(&race1))
        .build()
        .unwrap()
        .endorse()
        .await
        .unwrap();
    // Both endorsers simulated each as a first reading.
    for t in [&t0, &t1] {
        let r: bcami_api::AnonSubmitResponse = serde_json::from_slice(t.result()).unwrap();
        assert_eq!(r.accepted, 1, "endorsed as the first reading");
    }
    let (s0, s1) = tokio::join!(t0.submit(), t1.submit());
    let (s0, s1) = (s0.unwrap(), s1.unwrap());
    let (st0, st1) = tokio::join!(s0.status(), s1.status());
    let (st0, st1) = (st0.unwrap(), st1.unwrap());
    eprintln!("race: {:?} / {:?}", st0.code, st1.code);
    assert_eq!(
        usize::from(st0.is_valid()) + usize::from(st1.is_valid()),
        1,
        "exactly one lands: {st0:?} / {st1:?}"
    );
    let loser = if st0.is_valid() { &st1 } else { &st0 };
    assert_eq!(loser.code, ValidationCode::MVCC_READ_CONFLICT, "{loser:?}");
    let race_energy = if st0.is_valid() { 303 } else { 304 };
    let (winner_reading, loser_reading) = if st0.is_valid() {
        (&race0, &race1)
    } else {
        (&race1, &race0)
    };
    // The loser resubmitted: now a double report; the winner again: a replay.
    assert_eq!(
        client
            .submit_anon_readings(dc1, &[loser_reading.clone(), winner_reading.clone()])
            .await
            .unwrap(),
        vec![Some(R::DoubleReport), Some(R::Replayed)]
    );

    // A mixed batch from the second concentrator; its commit is the two endorsers' agreement.
    assert_eq!(
        client
            .submit_anon_readings(dc1, &[c.clone(), a.clone(), a2.clone(), bad, stale])
            .await
            .unwrap(),
        vec![
            None,
            Some(R::Replayed),
            Some(R::DoubleReport),
            Some(R::BadProof),
            Some(R::Stale)
        ]
    );

    // The aggregate: exactly the accepted readings (this run's; the period may hold others').
    let after = client.anon_aggregate(Caller::Mdms, start).await.unwrap();
    assert_eq!(after.count - before.count, 4);
    assert_eq!(after.sum_wh - before.sum_wh, 101 + 202 + race_energy + 404);
    let total_per: u64 = after.concentrators.iter().map(|c| c.sum_wh).sum();
    assert_eq!(total_per, after.sum_wh, "the per-concentrator parts add up");
    assert!(
        after.concentrators.len() >= 2,
        "two concentrator identities: {:?}",
        after.concentrators
    );

    // The evidence: the double reports of this run, each a valid presentation of the epoch.
    let doubles = client
        .anon_double_reports(Caller::Administrator, start)
        .await
        .unwrap();
    let a2_text = b64(&a2);
    let ours: Vec<_> = doubles.iter().filter(|d| d.reading == a2_text).collect();
    assert_eq!(ours.len(), 2, "a2 twice: through each concentrator");
    let loser_text = b64(loser_reading);
    let losers: Vec<_> = doubles.iter().filter(|d| d.reading == loser_text).collect();
    assert_eq!(losers.len(), 1, "the race's loser, once it was resubmitted");
    let loser_double = losers[0];
    assert!(
        doubles
            .iter()
            .all(|d| d.reading != b64(&a) && d.reading != b64(&b))
    );
    assert!(after.double_reports - before.double_reports >= 2);
    // Tracing meter 0's double report: every meter proves the pseudonym is not its own
    // against the commitment the ledger recorded at its request; meter 0 cannot. The outcome is
    // recorded and meter 0 revoked.
    let k: [u8; 48] = bcami_api::from_hex(&ours[0].pseudonym).unwrap();
    let mut culprits = Vec::new();
    for meter in &meters {
        match meter
            .prove_not_mine(start, period_secs, &k, &seed(run, 5, 0))
            .unwrap()
        {
            Some(proof) => {
                let joined = client
                    .anon_credential(Caller::Administrator, meter.hid(), epoch)
                    .await
                    .unwrap();
                issuer
                    .check_not_mine(&joined, start, period_secs, &k, &proof)
                    .unwrap();
                // The proof is bound to the pseudonym: it does not clear the meter of another.
                let other: [u8; 48] = bcami_api::from_hex(&loser_double.pseudonym).unwrap();
                assert_ne!(other, k);
                assert!(
                    issuer
                        .check_not_mine(&joined, start, period_secs, &other, &proof)
                        .is_err()
                );
            }
            None => culprits.push(meter.hid()),
        }
    }
    assert_eq!(culprits, vec![keys[0].0], "tracing names exactly meter 0");
    let trace = client
        .record_anon_trace(
            Caller::Administrator,
            &bcami_api::AnonTraceArg {
                period_start: start,
                pseudonym: ours[0].pseudonym.clone(),
                hid: keys[0].0,
                cleared: (METERS - 1) as u64,
            },
        )
        .await
        .unwrap();
    assert_eq!(trace.hid, keys[0].0);
    let revoked = client
        .meter(Caller::Administrator, keys[0].0)
        .await
        .unwrap();
    assert_eq!(revoked.meter.status, bcami_api::MeterStatus::Revoked);

    // The MDMS may not read the evidence (tracing is the administrator's).
    let refused = client
        .anon_double_reports(Caller::Mdms, start)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
}
