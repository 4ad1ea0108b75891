//! The head-end's copy of the ledger's meter registry.

use std::collections::BTreeMap;
use std::sync::RwLock;

use bcami_sdk::Hid;
use bcami_sdk::session::{MeterDirectory, MeterRecord, MeterStatus};

/// A meter directory shared between the connections and whoever keeps it in step with the
/// ledger (registrations, key rotations, revocations). Changes apply to handshakes in flight (the
/// head-end looks again at the confirmation) and to established sessions (checked before every
/// message in either direction).
#[derive(Debug, Default)]
pub struct SharedDirectory {
    meters: RwLock<BTreeMap<Hid, MeterRecord>>,
}

impl SharedDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the meter's current key, version and status (a registration or a rotation).
    pub fn upsert(&self, hid: Hid, record: MeterRecord) {
        self.write().insert(hid, record);
    }

    /// Marks the meter revoked; returns whether it was known.
    pub fn revoke(&self, hid: &Hid) -> bool {
        match self.write().get_mut(hid) {
            Some(record) => {
                record.status = MeterStatus::Revoked;
                true
            }
            None => false,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Hid, MeterRecord>> {
        // A writer that panicked left a whole map behind (inserts are atomic), so the data is
        // still consistent: keep serving.
        self.meters
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MeterDirectory for SharedDirectory {
    fn meter(&self, hid: &Hid) -> Option<MeterRecord> {
        self.meters
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(hid)
            .copied()
    }
}
