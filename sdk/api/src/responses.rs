//! What the query and provisioning functions answer (JSON, camelCase).

use serde::{Deserialize, Serialize};

use bcami_sdk::{HeadEndPublicKey, MdmsPublicKey};

use crate::records::{
    KeyVersionRecord, MeterRecord, ServiceKey, ServiceKeyVersionRecord, ServiceRecord,
};

/// `ProvisionMeters` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionResponse {
    /// HIDs newly provisioned, sorted.
    pub provisioned: Vec<String>,
    /// HIDs already provisioned (and not yet bound) whose key hash this call bound, sorted.
    /// Absent when empty, so a call without key hashes answers as before bindings existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound: Vec<String>,
    /// How many were already provisioned (no-op).
    pub unchanged: usize,
}

/// `GetMdmsKey` / `GetHeadEnd` response: the service's record (the current key) and every key
/// it has held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound = "")]
pub struct ServiceView<K: ServiceKey> {
    /// The record.
    #[serde(flatten)]
    pub record: ServiceRecord<K>,
    /// Its keys, version 1 first.
    pub keys: Vec<ServiceKeyVersionRecord<K>>,
}

/// `GetMdmsKey` response.
pub type MdmsView = ServiceView<MdmsPublicKey>;
/// `GetHeadEnd` response.
pub type HeadEndView = ServiceView<HeadEndPublicKey>;

/// `GetMeter` response: the record and every key the meter has held, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterView {
    /// The record.
    pub meter: MeterRecord,
    /// Its keys, version 1 first.
    pub keys: Vec<KeyVersionRecord>,
}

/// One reading in a `GetReadings` page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredReading {
    /// Timestamp, Unix ms.
    pub timestamp: u64,
    /// The reading transaction, standard base64.
    pub reading: String,
}

/// `GetReadings` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadingsPage {
    /// The meter.
    pub hid: String,
    /// Readings in time order.
    pub readings: Vec<StoredReading>,
    /// Pass as `bookmark` for the next page; empty when there is none.
    pub bookmark: String,
}

/// `ListMeters` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetersPage {
    /// Meter records in HID order.
    pub meters: Vec<MeterRecord>,
    /// Pass as `bookmark` for the next page (a HID); empty when there is none.
    pub bookmark: String,
}

/// Meter counts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterCounts {
    /// Provisioned, not registered.
    pub provisioned: u64,
    /// Registered.
    pub active: u64,
    /// Revoked.
    pub revoked: u64,
    /// All.
    pub total: u64,
}

/// `GetCounts` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Meters by status.
    pub meters: MeterCounts,
    /// Readings stored.
    pub readings: u64,
    /// Whether the MDMS is provisioned and registered.
    pub mdms: MdmsPresence,
}

/// `GetCounts`'s `mdms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MdmsPresence {
    /// No MDMS is provisioned.
    None,
    /// Provisioned, no key registered.
    Provisioned,
    /// Its key is registered.
    Registered,
}
