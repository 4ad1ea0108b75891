//! The MDMS rotates its encryption key between two runs: meters encrypt to the new key from the
//! next run, and the MDMS still reads every reading, old and new, with the key each was made
//! for. A rotation whose commit status is lost is completed by the next call, not repeated.
//! The contract runs on the in-process ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use anyhow::anyhow;
use bcami_api::Function;
use bcami_client::{Caller, Ledger, LedgerError, Outcome};
use indicatif::ProgressBar;
use meter_sim::embedded::Embedded;
use meter_sim::mdms::{self, rotate_key};
use meter_sim::run::RunConfig;
use meter_sim::state::StateDir;
use rand_core::OsRng;

use common::{Script, Scripted, now};

/// Two scripted events on the embedded ledger: with `lose_rotation_status` set, the next
/// `RotateMdmsKey` commits but its caller hears an error (a commit status lost on the way back);
/// with `rotate_mid_run` = (MDMS folder, n), the n-th `SubmitReadings` call (from 1) is preceded
/// by an MDMS key rotation, as if the administrator rotated the key in the middle of a run.
struct Rotations {
    lose_rotation_status: AtomicBool,
    rotate_mid_run: Option<(PathBuf, u32)>,
    submits: AtomicU32,
}

fn rotations(rotate_mid_run: Option<(PathBuf, u32)>) -> Scripted<Rotations> {
    Scripted::new(Rotations {
        lose_rotation_status: AtomicBool::new(false),
        rotate_mid_run,
        submits: AtomicU32::new(0),
    })
}

impl Script for Rotations {
    async fn submit(
        &self,
        inner: &Embedded,
        role: Caller,
        function: Function,
        args: Vec<String>,
    ) -> Result<Outcome, LedgerError> {
        if let Some((mdms_dir, at)) = &self.rotate_mid_run
            && function == Function::SubmitReadings
            && self.submits.fetch_add(1, Ordering::SeqCst) + 1 == *at
        {
            let mdms_state = StateDir::open(mdms_dir).unwrap();
            rotate_key(inner, &mdms_state, now(), &mut OsRng)
                .await
                .unwrap();
        }
        let outcome = inner.submit(role, function, args).await?;
        if function == Function::RotateMdmsKey
            && self.lose_rotation_status.swap(false, Ordering::SeqCst)
        {
            assert!(outcome.is_ok(), "the rotation was refused: {outcome:?}");
            return Err(anyhow!("commit status not seen within the deadline").into());
        }
        Ok(outcome)
    }
}

fn config(fresh_ledger: bool) -> RunConfig {
    common::config("ROT", (3, 4, 9), (1, 6, 1), fresh_ledger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_before_and_after_an_mdms_key_rotation_all_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(&dir.path().join("meters")).unwrap();
    let mdms_state = StateDir::open(&dir.path().join("mdms")).unwrap();
    let ledger = Arc::new(rotations(None));

    // Nothing to rotate before the MDMS exists.
    let err = rotate_key(&*ledger, &mdms_state, now(), &mut OsRng)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no MDMS key"), "{err:#}");

    let first = meter_sim::run::run(Arc::clone(&ledger), &state, &mdms_state, &config(true))
        .await
        .unwrap();
    assert_eq!((first.committed, first.mismatches), (12, Some(0)));
    let key_v1 = mdms_state.mdms().unwrap().unwrap().key;

    let rotation = rotate_key(&*ledger, &mdms_state, now(), &mut OsRng)
        .await
        .unwrap();
    assert_eq!(rotation.key_version, 2);
    assert_eq!(rotation.retired_keys, 1);
    assert!(!rotation.resumed);
    let mdms = mdms_state.mdms().unwrap().unwrap();
    assert_eq!(
        rotation.old_public_key,
        hex::encode(key_v1.public_key().to_bytes())
    );
    assert_eq!(
        rotation.new_public_key,
        hex::encode(mdms.public_key().to_bytes())
    );
    assert!(mdms.pending.is_none());
    let key_v2 = mdms.key.clone();

    // The next run's meters encrypt to key 2; its own read-back checks them.
    let second = meter_sim::run::run(Arc::clone(&ledger), &state, &mdms_state, &config(false))
        .await
        .unwrap();
    assert_eq!((second.committed, second.mismatches), (12, Some(0)));

    // The MDMS exports everything: 24 readings, each decrypted with the key it was made for.
    let hids: Vec<_> = state.meters().unwrap().iter().map(|m| m.hid).collect();
    let to = now().unix_millis() + 3_600_000;
    let export = |keys: Vec<bcami_sdk::MdmsSecretKey>| {
        let ledger = Arc::clone(&ledger);
        let hids = hids.clone();
        async move {
            mdms::export(&*ledger, &hids, 0, to, &keys, &ProgressBar::hidden())
                .await
                .unwrap()
        }
    };
    let all = export(mdms.keyring()).await;
    assert_eq!(
        (all.readings.len(), all.failures.len()),
        (24, 0),
        "{:?}",
        all.failures
    );
    let comparison = mdms::compare(&all.readings, &state.sent().unwrap(), 0, to);
    assert_eq!(comparison.matched, 24);
    assert!(comparison.mismatched.is_empty() && comparison.missing.is_empty());
    // Both keys were needed: each alone opens exactly one run's readings.
    for key in [key_v1.clone(), key_v2.clone()] {
        let one = export(vec![key]).await;
        assert_eq!((one.readings.len(), one.failures.len()), (12, 12));
        assert!(one.failures.iter().all(|f| f.reason.starts_with("decrypt")));
    }

    // A rotation whose commit status is lost: the call fails, the new key stays pending (the
    // ledger already names it), and the next call completes it without a second transaction.
    ledger
        .script
        .lose_rotation_status
        .store(true, Ordering::SeqCst);
    let err = rotate_key(&*ledger, &mdms_state, now(), &mut OsRng)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("commit status"), "{err:#}");
    let interrupted = mdms_state.mdms().unwrap().unwrap();
    let pending = interrupted
        .pending
        .clone()
        .expect("the new key was saved before submitting");
    assert_eq!(interrupted.public_key(), key_v2.public_key());
    let resumed = rotate_key(&*ledger, &mdms_state, now(), &mut OsRng)
        .await
        .unwrap();
    assert!(resumed.resumed);
    assert_eq!(
        resumed.key_version, 3,
        "the resumed call must not rotate again"
    );
    assert_eq!(
        resumed.new_public_key,
        hex::encode(pending.public_key().to_bytes())
    );
    let done = mdms_state.mdms().unwrap().unwrap();
    assert!(done.pending.is_none());
    assert_eq!(done.retired.len(), 2);
    let third = meter_sim::run::run(Arc::clone(&ledger), &state, &mdms_state, &config(false))
        .await
        .unwrap();
    assert_eq!((third.committed, third.mismatches), (12, Some(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_switch_to_a_key_rotated_during_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(&dir.path().join("meters")).unwrap();
    let mdms_dir = dir.path().join("mdms");
    let mdms_state = StateDir::open(&mdms_dir).unwrap();
    let ledger = Arc::new(rotations(Some((mdms_dir, 3))));
    // 3 meters × 4 intervals in 4 sequential batches of 3 (one lane); the key is re-read before
    // every batch. Batches 1–3 were built for key 1 (the rotation happens as batch 3 is sent),
    // batch 4 for key 2.
    let mid_run = RunConfig {
        batch: 3,
        fresh_ledger: false,
        mdms_key_refresh: Some(std::time::Duration::ZERO),
        ..config(true)
    };
    let key_v1 = {
        // Register the MDMS first, so its first key is known before the run.
        let setup = RunConfig {
            source: common::config("SETUP", (1, 1, 1), (1, 6, 1), true).source,
            ..config(true)
        };
        let setup_state = StateDir::open(&dir.path().join("setup")).unwrap();
        meter_sim::run::run(Arc::clone(&ledger), &setup_state, &mdms_state, &setup)
            .await
            .unwrap();
        ledger.script.submits.store(0, Ordering::SeqCst);
        mdms_state.mdms().unwrap().unwrap().key
    };
    let report = meter_sim::run::run(Arc::clone(&ledger), &state, &mdms_state, &mid_run)
        .await
        .unwrap();
    assert_eq!(report.committed, 12);
    assert_eq!(report.mdms_key_changes, 1);
    // The read-back found the rotated key in the MDMS folder: nothing failed.
    assert_eq!(report.mismatches, Some(0));

    let mdms = mdms_state.mdms().unwrap().unwrap();
    assert_ne!(mdms.public_key(), key_v1.public_key());
    let hids: Vec<_> = state.meters().unwrap().iter().map(|m| m.hid).collect();
    let to = now().unix_millis() + 3_600_000;
    for (key, opens) in [(key_v1, 9), (mdms.key.clone(), 3)] {
        let export = mdms::export(
            &*ledger,
            &hids,
            0,
            to,
            std::slice::from_ref(&key),
            &ProgressBar::hidden(),
        )
        .await
        .unwrap();
        assert_eq!(
            (export.readings.len(), export.failures.len()),
            (opens, 12 - opens)
        );
    }
}
