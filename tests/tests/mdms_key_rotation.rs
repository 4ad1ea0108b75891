//! MDMS key rotation, end to end, against the live network with `bcami` deployed — what a
//! utility does after its MDMS key leaks (was `tests/e2e/40-mdms-key-rotation.sh`):
//! meters send readings → the administrator rotates the MDMS key (`RotateMdmsKey` with the new
//! key's proof of possession) → the ledger names the new key, with the old one kept in its key
//! history → the next run's meters encrypt to the new key → the MDMS export decrypts EVERY
//! reading, from before and after the rotation, to exactly what the meters sent; the MDMS folder
//! keeps the old key as retired. Only the administrator may rotate (the MDMS's own identity and
//! a data concentrator get 403), a replayed rotation request is refused (409 replayed), the
//! retired key never comes back (409 key_reused), and none of the refusals changes the ledger.
//!
//! Uses the network's shared MDMS folder (`<run dir>/mdms`), so later tests see the rotated key
//! like any other user of the network.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bcami_api::{ErrorCode, MdmsView, Request};
use bcami_client::mdms::{self, Export};
use bcami_client::{Caller, Client, Fabric, Settings};
use bcami_e2e::NetworkEnv;
use bcami_sdk::{Hid, IntervalLength, MdmsRegistrationRequest, MdmsSecretKey, Timestamp};
use meter_sim::run::{RunConfig, Source};
use meter_sim::state::StateDir;
use meter_sim::stats::RunReport;

const MDMS_ID: &str = "MDMS-1";

fn settings() -> Settings {
    let env = NetworkEnv::load().unwrap_or_else(|e| panic!("{e}"));
    Settings {
        mdms_state: env.run_dir.join("mdms"),
        network: env.network,
        chaincode: "bcami".to_owned(),
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// 6 meters × 4 half-hours through 2 concentrators, read back by the MDMS.
async fn run_meters(
    fabric: &Arc<Fabric>,
    state: &StateDir,
    mdms: &StateDir,
    prefix: &str,
) -> RunReport {
    let config = RunConfig {
        batch: 12,
        concentrators: 2,
        ..RunConfig::new(
            Source::Synthetic {
                prefix: prefix.to_owned(),
                meters: 6,
                intervals: 4,
                interval: IntervalLength::HALF_HOUR,
                seed: 40,
                start_ms: 1_704_067_200_000,
            },
            MDMS_ID.parse().unwrap(),
        )
    };
    meter_sim::run::run(Arc::clone(fabric), state, mdms, &config)
        .await
        .unwrap_or_else(|e| panic!("meter-sim run failed: {e:#}"))
}

async fn view(fabric: &Fabric) -> MdmsView {
    Client::new(fabric).mdms_key(Caller::Mdms).await.unwrap()
}

/// `RotateMdmsKey` with `request` as `caller`: the contract's status and code.
async fn refusal(
    fabric: &Fabric,
    caller: Caller,
    request: &[u8],
) -> (Option<i32>, Option<ErrorCode>) {
    let outcome = Client::new(fabric)
        .outcome(caller, &Request::RotateMdmsKey(request))
        .await
        .unwrap();
    let rejection = outcome.expect_err("the rotation was accepted");
    (rejection.status, rejection.code)
}

fn request(key: &MdmsSecretKey, hid: Hid, at_ms: u64) -> Vec<u8> {
    MdmsRegistrationRequest::build(key, hid, Timestamp::from_unix_millis(at_ms))
        .unwrap()
        .encode()
}

async fn export(fabric: &Fabric, state: &StateDir, keys: &[MdmsSecretKey]) -> Export {
    let hids: Vec<Hid> = state.meters().unwrap().iter().map(|m| m.hid).collect();
    mdms::export(fabric, &hids, 0, now_ms() + 3_600_000, keys, || ())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_decrypts_across_an_mdms_key_rotation_that_only_the_administrator_may_make() {
    let settings = settings();
    let fabric = Arc::new(
        Fabric::connect(&settings)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the network: {e:#}")),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let mdms_state = StateDir::open(&settings.mdms_state).unwrap();
    let prefix = format!("ROT-{}", now_ms());

    // Readings made for the current key.
    let run_before = run_meters(&fabric, &state, &mdms_state, &prefix).await;
    assert!(run_before.committed > 0, "{run_before:?}");
    assert_eq!(
        run_before.committed, 24,
        "rejected: {:?}",
        run_before.rejected
    );
    assert_eq!(run_before.mismatches, Some(0));
    let before = view(&fabric).await;
    let old_key = before.record.public_key.unwrap();
    let folder = mdms_state.mdms().unwrap().unwrap();
    assert_eq!(
        folder.public_key(),
        old_key,
        "the MDMS folder holds the ledger's current key"
    );
    let hid = folder.hid;

    // Who may rotate: neither the MDMS's own identity (whoever stole the key may hold the
    // identity too) nor a data concentrator; the refusals change nothing.
    let probe = MdmsSecretKey::generate(&mut rand_core::OsRng).unwrap();
    let probe_request = request(&probe, hid, now_ms());
    for caller in [Caller::Mdms, Caller::Concentrator(0)] {
        assert_eq!(
            refusal(&fabric, caller, &probe_request).await,
            (Some(403), Some(ErrorCode::Forbidden)),
            "{caller}"
        );
    }
    assert_eq!(view(&fabric).await, before, "the refusals changed nothing");

    // The rotation, as `meter-sim mdms rotate-key` makes it from the MDMS folder.
    let rotation = meter_sim::mdms::rotate_key(
        &*fabric,
        &mdms_state,
        Timestamp::from_unix_millis(now_ms()),
        &mut rand_core::OsRng,
    )
    .await
    .unwrap_or_else(|e| panic!("rotate-key: {e:#}"));
    assert!(!rotation.resumed);
    let after = view(&fabric).await;
    let new_key = after.record.public_key.unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(
        after.record.current_key_version(),
        before.record.current_key_version() + 1
    );
    assert_eq!(rotation.key_version, after.record.current_key_version());
    assert_eq!(rotation.new_public_key, hex(&new_key.to_bytes()));
    assert_eq!(rotation.old_public_key, hex(&old_key.to_bytes()));
    // The key history keeps every earlier key and appends the new one.
    let history = |v: &MdmsView| v.keys.iter().map(|k| k.public_key).collect::<Vec<_>>();
    let mut expected = history(&before);
    expected.push(new_key);
    assert_eq!(history(&after), expected);
    // The folder holds the new key and keeps the old one as retired, nothing pending.
    let folder = mdms_state.mdms().unwrap().unwrap();
    assert_eq!(folder.public_key(), new_key);
    assert_eq!(
        folder.retired.first().map(MdmsSecretKey::public_key),
        Some(old_key)
    );
    assert!(folder.pending.is_none());

    // A request as old as the one that bound the new key (a replay of it, or of anything older).
    let key_since = after.record.key_since.unwrap();
    assert_eq!(
        refusal(
            &fabric,
            Caller::Administrator,
            &request(&probe, hid, key_since)
        )
        .await,
        (Some(409), Some(ErrorCode::Replayed))
    );
    // The retired key never comes back, even in a fresh request.
    assert_eq!(
        refusal(
            &fabric,
            Caller::Administrator,
            &request(&folder.retired[0], hid, now_ms())
        )
        .await,
        (Some(409), Some(ErrorCode::KeyReused))
    );
    assert_eq!(
        view(&fabric).await,
        after,
        "the refusals after the rotation changed nothing"
    );

    // Readings made for the new key; the export decrypts every one, before and after.
    let run_after = run_meters(&fabric, &state, &mdms_state, &prefix).await;
    assert_eq!(
        run_after.committed, 24,
        "rejected: {:?}",
        run_after.rejected
    );
    assert_eq!(run_after.mismatches, Some(0));
    let sent = state.sent().unwrap();
    assert_eq!(sent.len(), 48);
    let all = export(&fabric, &state, &folder.keyring()).await;
    assert!(all.failures.is_empty(), "{:?}", all.failures);
    assert_eq!(all.readings.len(), sent.len());
    let comparison = mdms::compare(&all.readings, &sent, 0, u64::MAX);
    assert_eq!(comparison.matched, 48);
    assert!(comparison.mismatched.is_empty() && comparison.missing.is_empty());
    assert_eq!(comparison.unknown, 0);

    // Each key alone opens only its own period: the export really used both.
    let new_only = export(&fabric, &state, std::slice::from_ref(&folder.key)).await;
    assert_eq!(
        new_only.failures.len(),
        24,
        "the readings made before the rotation"
    );
    assert!(
        new_only
            .failures
            .iter()
            .all(|f| f.reason.starts_with("decrypt"))
    );
    assert_eq!(new_only.readings.len(), 24);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
