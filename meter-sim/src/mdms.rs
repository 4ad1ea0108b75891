//! The MDMS commands' glue over [`bcami_client::mdms`] (where the export, keyring decryption,
//! comparison, deduplication, gaps, CSV and the key rotation live): the progress bar, the state
//! folder's lock and the keys kept in it.

use anyhow::{Result, anyhow};
use bcami_client::Ledger;
use bcami_client::mdms::{self as lib, MdmsError, MdmsKeys};
use bcami_sdk::{Hid, MdmsSecretKey, Timestamp};
use rand_core::{CryptoRng, RngCore};

pub use bcami_client::mdms::{
    Comparison, Conflict, Export, Exported, Failure, Gap, Rotation, compare, decrypt_any,
    deduplicate, gaps, to_csv,
};

use crate::state::{Mdms, MdmsLock, StateDir};

/// Fetches, verifies and decrypts every committed reading of `hids` in `[from, to]`, a tick of
/// `progress` per meter.
pub async fn export<L: Ledger>(
    ledger: &L,
    hids: &[Hid],
    from: u64,
    to: u64,
    mdms_keys: &[MdmsSecretKey],
    progress: &indicatif::ProgressBar,
) -> Result<Export> {
    Ok(lib::export(ledger, hids, from, to, mdms_keys, || progress.inc(1)).await?)
}

/// Waits for the MDMS folder's lock (see [`StateDir::try_lock_mdms`]), saying so once if
/// another meter-sim holds it for more than a second.
pub async fn lock_folder(mdms_state: &StateDir) -> Result<MdmsLock> {
    let mut waited = std::time::Duration::ZERO;
    let step = std::time::Duration::from_millis(50);
    loop {
        if let Some(lock) = mdms_state.try_lock_mdms()? {
            return Ok(lock);
        }
        if waited == std::time::Duration::from_secs(1) {
            eprintln!(
                "waiting for {}: another meter-sim is using the MDMS folder",
                mdms_state.root().display()
            );
        }
        tokio::time::sleep(step).await;
        waited += step;
    }
}

impl MdmsKeys for Mdms {
    fn hid(&self) -> Hid {
        self.hid
    }
    fn current(&self) -> &MdmsSecretKey {
        &self.key
    }
    fn pending(&self) -> Option<&MdmsSecretKey> {
        self.pending.as_ref()
    }
    fn set_pending(&mut self, key: MdmsSecretKey) {
        self.pending = Some(key);
    }
    fn promote_pending(&mut self) {
        Mdms::promote_pending(self);
    }
    fn retired(&self) -> usize {
        self.retired.len()
    }
    fn next_timestamp(&mut self, now: Timestamp) -> Timestamp {
        Mdms::next_timestamp(self, now)
    }
}

/// `mdms rotate-key`: [`bcami_client::mdms::rotate_key`] with the keys of the MDMS folder, which
/// is locked meanwhile and saved at each step.
pub async fn rotate_key<L: Ledger, R: RngCore + CryptoRng>(
    ledger: &L,
    mdms_state: &StateDir,
    now: Timestamp,
    rng: &mut R,
) -> Result<Rotation> {
    let _lock = lock_folder(mdms_state).await?;
    let mut mdms = mdms_state.mdms()?.ok_or_else(|| {
        crate::usage(format!(
            "no MDMS key in {}; register one first (`meter-sim run`)",
            mdms_state.root().display()
        ))
    })?;
    let folder = mdms_state.root().display();
    lib::rotate_key(ledger, &mut mdms, |m| mdms_state.save_mdms(m), now, rng)
        .await
        .map_err(|e| match e {
            MdmsError::NotOurs { ledger_key } => anyhow!(
                "the ledger's MDMS key {ledger_key} is not this folder's ({folder}); rotate from \
                 the folder that holds the registered key"
            ),
            MdmsError::Refused { rejection } => anyhow!(
                "RotateMdmsKey: {rejection}; the new key stays pending in {folder} and the next \
                 `mdms rotate-key` retries it"
            ),
            other => other.into(),
        })
}
