//! [`LedgerDirectory`]: the ledger's meter registry as a head-end's session directory
//! (`bcami_sdk::session::MeterDirectory`).

use std::collections::BTreeMap;
use std::sync::RwLock;

use bcami_api::{MAX_PAGE_SIZE, MeterRecord, MeterStatus, MetersRequest};
use bcami_sdk::Hid;
use bcami_sdk::session::{self, MeterDirectory};

use crate::client::{Client, Error};
use crate::ledger::{Caller, Ledger};

/// The key, key version and status of every registered meter, read from the ledger, for the
/// head-end's handshakes. The handshake is synchronous and must not wait on the network, so it
/// reads this copy; [`LedgerDirectory::sync`] replaces the copy with the ledger's registry
/// (every page of `ListMeters`), and [`LedgerDirectory::sync_meter`] refreshes one meter
/// (`GetMeter`). A meter registered, rotated or revoked on the ledger is seen from the next
/// sync on: the head-end chooses how often (before serving, on a timer, on a ledger event).
#[derive(Debug, Default)]
pub struct LedgerDirectory {
    meters: RwLock<BTreeMap<Hid, session::MeterRecord>>,
}

/// What a meter record on the ledger means for a session: `None` until the meter has a key
/// (provisioned only), else its current key and version, active or revoked.
pub fn session_record(record: &MeterRecord) -> Option<session::MeterRecord> {
    let public_key = record.public_key?;
    let status = match record.status {
        MeterStatus::Active => session::MeterStatus::Active,
        MeterStatus::Revoked => session::MeterStatus::Revoked,
        // A key without the active status is not a state the contract writes; refuse it.
        MeterStatus::Provisioned => return None,
    };
    Some(session::MeterRecord {
        public_key,
        key_version: u64::from(record.key_version),
        status,
    })
}

impl LedgerDirectory {
    /// An empty directory (every meter unknown until the first sync).
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the copy with every meter on the ledger, read as `caller`; returns how many
    /// meters have a key (active or revoked). On an error the previous copy stays.
    pub async fn sync<L: Ledger + ?Sized>(
        &self,
        client: &Client<'_, L>,
        caller: Caller,
    ) -> Result<usize, Error> {
        let mut meters = BTreeMap::new();
        let mut query = MetersRequest {
            page_size: Some(MAX_PAGE_SIZE),
            bookmark: String::new(),
        };
        loop {
            let page = client.meters_page(caller, &query).await?;
            for record in &page.meters {
                if let Some(entry) = session_record(record) {
                    meters.insert(record.hid, entry);
                }
            }
            if page.bookmark.is_empty() || page.bookmark == query.bookmark {
                break;
            }
            query.bookmark = page.bookmark;
        }
        let count = meters.len();
        *self.write() = meters;
        Ok(count)
    }

    /// Reads one meter from the ledger (`GetMeter`) and updates the copy; returns what the
    /// directory now holds for it.
    pub async fn sync_meter<L: Ledger + ?Sized>(
        &self,
        client: &Client<'_, L>,
        caller: Caller,
        hid: Hid,
    ) -> Result<Option<session::MeterRecord>, Error> {
        let entry = match client.meter(caller, hid).await {
            Ok(view) => session_record(&view.meter),
            Err(e) if e.code() == Some(bcami_api::ErrorCode::UnknownMeter) => None,
            Err(e) => return Err(e),
        };
        let mut meters = self.write();
        match entry {
            Some(entry) => meters.insert(hid, entry),
            None => meters.remove(&hid),
        };
        Ok(entry)
    }

    /// How many meters the copy holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the copy is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Hid, session::MeterRecord>> {
        // The map is replaced or changed in single operations, so a panic elsewhere left it
        // whole: keep serving.
        self.meters.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Hid, session::MeterRecord>> {
        self.meters.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl MeterDirectory for LedgerDirectory {
    fn meter(&self, hid: &Hid) -> Option<session::MeterRecord> {
        self.read().get(hid).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bcami_sdk::MeterSecretKey;

    fn record(status: MeterStatus, key: bool, version: u32) -> MeterRecord {
        MeterRecord {
            hid: Hid::from_meter_id("SM-1"),
            status,
            public_key: key.then(|| MeterSecretKey::from_bytes(&[7; 32]).unwrap().public_key()),
            key_hash: None,
            key_version: version,
            last_timestamp: None,
            readings: 0,
            provisioned_tx: "tx".into(),
            revoked_at: None,
        }
    }

    #[test]
    fn only_meters_with_a_key_are_in_the_directory_with_their_status_and_version() {
        assert_eq!(
            session_record(&record(MeterStatus::Provisioned, false, 0)),
            None
        );
        assert_eq!(
            session_record(&record(MeterStatus::Revoked, false, 0)),
            None
        );
        let active = session_record(&record(MeterStatus::Active, true, 3)).unwrap();
        assert_eq!(
            (active.status, active.key_version),
            (session::MeterStatus::Active, 3)
        );
        let revoked = session_record(&record(MeterStatus::Revoked, true, 2)).unwrap();
        assert_eq!(revoked.status, session::MeterStatus::Revoked);
    }
}
