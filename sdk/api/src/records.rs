//! The records the contract stores and returns (JSON, camelCase). See the contract README's
//! *State layout*.

use bcami_sdk::{HeadEndPublicKey, Hid, MdmsPublicKey, MeterPublicKey};
use serde::{Deserialize, Serialize};

use crate::key_hash::KeyHash;
pub use crate::key_hash::{hid_hex, key_hex, opt_key_hex};

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

/// A public key a service registers on the ledger (the MDMS's encryption key, the AMI
/// head-end's session-signing key): 66 hex digits in JSON, like every key. Implemented by the
/// SDK's key types only.
pub trait ServiceKey: Copy + Eq + std::fmt::Debug + sealed::Sealed {
    /// Which service holds it, for messages: `the MDMS`, `the head-end`.
    const HOLDER: &'static str;
    /// The compressed SEC1 encoding.
    fn to_sec1(&self) -> [u8; 33];
    /// Parses a compressed SEC1 encoding (the point must be on the curve).
    fn from_sec1(bytes: &[u8; 33]) -> Result<Self, bcami_sdk::DecodeError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for bcami_sdk::MdmsPublicKey {}
    impl Sealed for bcami_sdk::HeadEndPublicKey {}
}

impl ServiceKey for MdmsPublicKey {
    const HOLDER: &'static str = "the MDMS";
    fn to_sec1(&self) -> [u8; 33] {
        self.to_bytes()
    }
    fn from_sec1(bytes: &[u8; 33]) -> Result<Self, bcami_sdk::DecodeError> {
        Self::from_sec1_bytes(bytes)
    }
}

impl ServiceKey for HeadEndPublicKey {
    const HOLDER: &'static str = "the head-end";
    fn to_sec1(&self) -> [u8; 33] {
        self.to_bytes()
    }
    fn from_sec1(bytes: &[u8; 33]) -> Result<Self, bcami_sdk::DecodeError> {
        Self::from_sec1_bytes(bytes)
    }
}

/// Lifecycle of a service (the MDMS, the head-end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    /// Provisioned, no key yet.
    Provisioned,
    /// Its key is registered.
    Registered,
}

/// Lifecycle of the MDMS.
pub type MdmsStatus = ServiceStatus;

/// A service the ledger knows by one HID and one current key: `mdms` (the MDMS, [`MdmsRecord`])
/// and `headend` (the AMI head-end, [`HeadEndRecord`]). Both follow the same rules: the
/// administrator provisions it (optionally bound to a key hash), it registers its key with a
/// proof of possession, and the administrator rotates that key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound = "")]
pub struct ServiceRecord<K: ServiceKey> {
    /// Its hashed identity.
    #[serde(with = "hid_hex")]
    pub hid: Hid,
    /// Lifecycle state.
    pub status: ServiceStatus,
    /// Its public key (compressed SEC1, hex), once registered.
    #[serde(
        default,
        with = "opt_service_key_hex",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_key: Option<K>,
    /// The key bound at provisioning, if any: registration accepts only a key with this hash.
    /// Absent = trust on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<KeyHash>,
    /// Timestamp of the registration, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<u64>,
    /// Version of `public_key`: 1 once registered, +1 per rotation. MDMS records written
    /// before rotation existed have none; read it through [`ServiceRecord::current_key_version`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub key_version: u32,
    /// Timestamp of the request that bound the current key (registration or latest rotation),
    /// Unix ms: a rotation request must be newer, so an old request cannot bring back an old key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_since: Option<u64>,
}

/// `mdms`: the one MDMS.
pub type MdmsRecord = ServiceRecord<MdmsPublicKey>;
/// `headend`: the one AMI head-end. Meters take its session-signing key from here.
pub type HeadEndRecord = ServiceRecord<HeadEndPublicKey>;

impl<K: ServiceKey> ServiceRecord<K> {
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

/// `mdmskey~VERSION` / `headendkey~VERSION`: one key the service has held. The history says
/// which key was current when (the MDMS needs it to know which secret key decrypts readings
/// committed in any period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound = "")]
pub struct ServiceKeyVersionRecord<K: ServiceKey> {
    /// 1 for the registered key, +1 per rotation.
    pub version: u32,
    /// The key (compressed SEC1, hex).
    #[serde(with = "service_key_hex")]
    pub public_key: K,
    /// Timestamp of the request that bound it, Unix ms.
    pub since: u64,
    /// Transaction that bound it.
    pub tx_id: String,
}

/// One encryption key the MDMS has held.
pub type MdmsKeyVersionRecord = ServiceKeyVersionRecord<MdmsPublicKey>;
/// One session-signing key the head-end has held.
pub type HeadEndKeyVersionRecord = ServiceKeyVersionRecord<HeadEndPublicKey>;

/// Serde: a [`ServiceKey`] as 66 hex digits.
pub mod service_key_hex {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use super::ServiceKey;

    /// Serialize.
    pub fn serialize<K: ServiceKey, S: Serializer>(key: &K, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::to_hex(&key.to_sec1()))
    }
    /// Deserialize.
    pub fn deserialize<'de, K: ServiceKey, D: Deserializer<'de>>(d: D) -> Result<K, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes: [u8; 33] = crate::from_hex(&text)
            .ok_or_else(|| D::Error::custom("a public key is 66 hex digits"))?;
        K::from_sec1(&bytes).map_err(D::Error::custom)
    }
}

/// Serde: an optional [`ServiceKey`] as 66 hex digits.
pub mod opt_service_key_hex {
    use serde::{Deserializer, Serializer};

    use super::ServiceKey;

    /// Serialize.
    pub fn serialize<K: ServiceKey, S: Serializer>(
        key: &Option<K>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match key {
            Some(k) => super::service_key_hex::serialize(k, s),
            None => s.serialize_none(),
        }
    }
    /// Deserialize.
    pub fn deserialize<'de, K: ServiceKey, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<K>, D::Error> {
        super::service_key_hex::deserialize(d).map(Some)
    }
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
