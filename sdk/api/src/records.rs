//! The records the contract stores and returns (JSON, camelCase). See the contract README's
//! *State layout*.

use bcami_sdk::{Hid, MdmsPublicKey, MeterPublicKey};
use serde::{Deserialize, Serialize};

use crate::key_hash::KeyHash;
pub use crate::key_hash::{hid_hex, key_hex, mdms_key_hex, opt_key_hex, opt_mdms_key_hex};

/// Lifecycle of a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeterStatus {
    /// Provisioned by the administrator, no key yet.
    Provisioned,
    /// Registered: has a key, readings are accepted.
    Active,
    /// Revoked: nothing more is accepted; the record and readings stay.
    Revoked,
}

/// `meter~HID`: one meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterRecord {
    /// The hashed identity.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// Lifecycle state.
    pub status: MeterStatus,
    /// The current public key (compressed SEC1, hex), once registered.
    #[serde(default, with = "opt_key_hex", skip_serializing_if = "Option::is_none")]
    pub public_key: Option<MeterPublicKey>,
    /// The key bound at provisioning, if any: registration accepts only a key with this hash.
    /// Absent = trust on first use (and in records written before bindings existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<KeyHash>,
    /// 0 until registered, 1 after registration, +1 per rotation.
    pub key_version: u32,
    /// Timestamp of the last accepted message of this meter (registration, rotation or
    /// reading), Unix ms. Every later message must be strictly newer (replay protection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<u64>,
    /// How many readings were accepted.
    pub readings: u64,
    /// Transaction that provisioned the meter.
    pub provisioned_tx: String,
    /// Transaction timestamp (Unix ms) of the revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

/// `meterkey~HID~VERSION`: one key a meter has held, so older readings stay verifiable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVersionRecord {
    /// 1 for the registered key, +1 per rotation.
    pub version: u32,
    /// The key (compressed SEC1, hex).
    #[serde(with = "key_hex")]
    pub public_key: MeterPublicKey,
    /// Timestamp of the registration or rotation that bound it: it signs readings newer than
    /// this and older than the next version's `since`.
    pub since: u64,
    /// Transaction that bound it.
    pub tx_id: String,
}

/// Lifecycle of the MDMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MdmsStatus {
    /// Provisioned, no key yet.
    Provisioned,
    /// Its encryption key is registered.
    Registered,
}

/// `mdms`: the one MDMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MdmsRecord {
    /// Its hashed identity.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// Lifecycle state.
    pub status: MdmsStatus,
    /// Its ECIES public key (compressed SEC1, hex), once registered.
    #[serde(
        default,
        with = "opt_mdms_key_hex",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_key: Option<MdmsPublicKey>,
    /// The key bound at provisioning, if any: `RegisterMdmsKey` accepts only a key with this
    /// hash. Absent = trust on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<KeyHash>,
    /// Timestamp of the registration, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<u64>,
    /// Version of `public_key`: 1 once registered, +1 per `RotateMdmsKey`. Records written
    /// before rotation existed have none; read it through [`MdmsRecord::current_key_version`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub key_version: u32,
    /// Timestamp of the request that bound the current key (registration or latest rotation),
    /// Unix ms: a rotation request must be newer, so an old request cannot bring back an old key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_since: Option<u64>,
}

impl MdmsRecord {
    /// Version of the current key: 0 before registration.
    pub fn current_key_version(&self) -> u32 {
        match (self.public_key, self.key_version) {
            (None, _) => 0,
            (Some(_), 0) => 1,
            (Some(_), v) => v,
        }
    }

    /// Timestamp of the request that bound the current key.
    pub fn current_key_since(&self) -> Option<u64> {
        self.key_since.or(self.registered_at)
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// `mdmskey~VERSION`: one encryption key the MDMS has held. Meters encrypt to the current one;
/// the history says which key was current when, so the MDMS knows which secret key it needs
/// for readings committed in any period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MdmsKeyVersionRecord {
    /// 1 for the registered key, +1 per rotation.
    pub version: u32,
    /// The key (compressed SEC1, hex).
    #[serde(with = "mdms_key_hex")]
    pub public_key: MdmsPublicKey,
    /// Timestamp of the request that bound it, Unix ms.
    pub since: u64,
    /// Transaction that bound it.
    pub tx_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn records_written_before_key_bindings_still_parse_and_serialize_the_same() {
        let hid = Hid::from_meter_id("SM-1");
        let meter = format!(
            r#"{{"hid":"{hid}","status":"provisioned","keyVersion":0,"readings":0,"provisionedTx":"tx1"}}"#
        );
        let record: MeterRecord = parse(meter.as_bytes());
        assert_eq!(record.key_hash, None);
        assert_eq!(serde_json::to_vec(&record).unwrap(), meter.as_bytes());
        let mdms = format!(r#"{{"hid":"{hid}","status":"provisioned"}}"#);
        let record: MdmsRecord = parse(mdms.as_bytes());
        assert_eq!(record.key_hash, None);
        assert_eq!(serde_json::to_vec(&record).unwrap(), mdms.as_bytes());
    }
}
