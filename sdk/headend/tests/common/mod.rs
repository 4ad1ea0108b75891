//! What the head-end's TCP tests share: test meters, a directory of active ones, a head-end.

use std::sync::Arc;

use bcami_headend::SharedDirectory;
use bcami_sdk::session::{HeadEnd, HeadEndPolicy, MeterRecord, MeterStatus};
use bcami_sdk::{HeadEndSecretKey, Hid, MeterSecretKey};

/// Meter `i` of a test (`label` keeps the tests' HIDs apart): its HID and a fixed key.
pub fn meter(label: &str, i: usize) -> (Hid, MeterSecretKey) {
    let mut entropy = [0x5au8; 32];
    entropy[..8].copy_from_slice(&(i as u64).to_be_bytes());
    (
        Hid::from_meter_id(format!("SM-{label}-{i:04}")),
        MeterSecretKey::from_entropy(&entropy).unwrap(),
    )
}

/// A directory holding meters `0..count` of `label`, active with key version 1.
pub fn active_directory(label: &str, count: usize) -> Arc<SharedDirectory> {
    let directory = Arc::new(SharedDirectory::new());
    for i in 0..count {
        let (hid, key) = meter(label, i);
        directory.upsert(
            hid,
            MeterRecord {
                public_key: key.public_key(),
                key_version: 1,
                status: MeterStatus::Active,
            },
        );
    }
    directory
}

/// The head-end `AHE-<label>`, with a fixed key and the default policy.
pub fn head_end(label: &str) -> HeadEnd {
    HeadEnd::new(
        Hid::from_meter_id(format!("AHE-{label}")),
        HeadEndSecretKey::from_entropy(&[0x42; 32]).unwrap(),
        HeadEndPolicy::default(),
    )
}
