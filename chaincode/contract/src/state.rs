//! The world-state layout: keys, records, and reading/writing them. See the crate README for the
//! table of who writes what.

use bcami_sdk::{Hid, MdmsPublicKey, MeterPublicKey};
use fabric_shim::{KeyRange, State, composite_key, split_composite_key};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::Error;

/// Simple key of the configuration.
pub const CONFIG_KEY: &str = "config";
/// Simple key of the MDMS record.
pub const MDMS_KEY: &str = "mdms";
/// Object type of meter records: `meter~HID`.
pub const METER: &str = "meter";
/// Object type of meter key versions: `meterkey~HID~VERSION` (10 digits).
pub const METER_KEY: &str = "meterkey";
/// Object type of readings: `reading~HID~TIMESTAMP` (20 digits of Unix ms).
pub const READING: &str = "reading";
/// Object type of MDMS key versions: `mdmskey~VERSION` (10 digits).
pub const MDMS_KEY_VERSION: &str = "mdmskey";

/// `meter~HID`.
pub fn meter_key(hid: &Hid) -> Result<String, Error> {
    Ok(composite_key(METER, &[&hid.to_string()])?)
}

/// `meterkey~HID~VERSION`.
pub fn meter_key_version_key(hid: &Hid, version: u32) -> Result<String, Error> {
    Ok(composite_key(
        METER_KEY,
        &[&hid.to_string(), &format!("{version:010}")],
    )?)
}

/// `mdmskey~VERSION`.
pub fn mdms_key_version_key(version: u32) -> Result<String, Error> {
    Ok(composite_key(
        MDMS_KEY_VERSION,
        &[&format!("{version:010}")],
    )?)
}

/// `reading~HID~TIMESTAMP`, fixed width so key order is time order.
pub fn reading_key(hid: &Hid, timestamp: u64) -> Result<String, Error> {
    Ok(composite_key(
        READING,
        &[&hid.to_string(), &format!("{timestamp:020}")],
    )?)
}

/// Every reading of `hid`.
pub fn readings_of(hid: &Hid) -> Result<KeyRange, Error> {
    Ok(KeyRange::composite_prefix(READING, &[&hid.to_string()])?)
}

/// The timestamp in a `reading~HID~TIMESTAMP` key.
pub fn reading_timestamp(key: &str) -> Result<u64, Error> {
    let (_, attrs) = split_composite_key(key)?;
    attrs
        .get(1)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| Error::CorruptState {
            key: key.escape_debug().to_string(),
            detail: "not a reading key".into(),
        })
}

/// The HID in a `meter~HID` key.
pub fn meter_hid(key: &str) -> Result<Hid, Error> {
    let (_, attrs) = split_composite_key(key)?;
    attrs
        .first()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| Error::CorruptState {
            key: key.escape_debug().to_string(),
            detail: "not a meter key".into(),
        })
}

/// `SHA-256(compressed SEC1 public key)`: the fingerprint of a device key, made when the device
/// generated it (at manufacture) and bound by the administrator at provisioning, so that only
/// that key can register the HID. 64 hex digits on the wire and in the ledger.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// The hash of a meter key.
    pub fn of_meter_key(key: &MeterPublicKey) -> Self {
        Self::of_sec1(&key.to_bytes())
    }

    /// The hash of an MDMS key.
    pub fn of_mdms_key(key: &MdmsPublicKey) -> Self {
        Self::of_sec1(&key.to_bytes())
    }

    fn of_sec1(bytes: &[u8; 33]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::str::FromStr for KeyHash {
    type Err = &'static str;

    /// Exactly 64 hex digits, either case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        from_hex(text)
            .map(Self)
            .ok_or("a key hash is 64 hex digits (SHA-256 of the 33-byte compressed public key)")
    }
}

impl std::fmt::Display for KeyHash {
    /// Lower-case hex.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHash({self})")
    }
}

impl Serialize for KeyHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

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

fn corrupt(key: &str, e: impl std::fmt::Display) -> Error {
    Error::CorruptState {
        key: key.escape_debug().to_string(),
        detail: e.to_string(),
    }
}

/// Read and parse a JSON record.
pub fn load<T: serde::de::DeserializeOwned>(
    stub: &(impl State + ?Sized),
    key: &str,
) -> Result<Option<T>, Error> {
    match stub.state(key)? {
        None => Ok(None),
        Some(bytes) => parse(key, &bytes).map(Some),
    }
}

/// Parse a JSON record read from `key`.
pub fn parse<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(key, e))
}

/// Write a JSON record.
pub fn store<T: Serialize>(
    stub: &mut (impl State + ?Sized),
    key: &str,
    value: &T,
) -> Result<(), Error> {
    let bytes = to_json(value)?;
    stub.put_state(key, &bytes)?;
    Ok(())
}

/// Serialize to JSON. Our records are plain data (no maps with non-string keys), so this cannot
/// fail in practice; the error is still reported rather than unwrapped.
pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))
}

/// The configuration in force.
pub fn config(stub: &(impl State + ?Sized)) -> Result<Config, Error> {
    Ok(load(stub, CONFIG_KEY)?.unwrap_or_default())
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Parse hex (either case) into exactly `N` bytes.
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Serde: a [`Hid`] as 64 hex digits.
pub mod hid_hex {
    use bcami_sdk::Hid;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serialize.
    pub fn serialize<S: Serializer>(hid: &Hid, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(hid)
    }
    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hid, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

macro_rules! key_serde {
    ($module:ident, $opt_module:ident, $ty:ty) => {
        /// Serde: a public key as 66 hex digits (compressed SEC1).
        pub mod $module {
            use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

            /// Serialize.
            pub fn serialize<S: Serializer>(key: &$ty, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&super::to_hex(&key.to_bytes()))
            }
            /// Deserialize.
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                let bytes: [u8; 33] = super::from_hex(&text)
                    .ok_or_else(|| D::Error::custom("a public key is 66 hex digits"))?;
                <$ty>::from_sec1_bytes(&bytes).map_err(D::Error::custom)
            }
        }

        /// Serde: an optional public key as 66 hex digits.
        pub mod $opt_module {
            use serde::{Deserializer, Serializer};

            /// Serialize.
            pub fn serialize<S: Serializer>(key: &Option<$ty>, s: S) -> Result<S::Ok, S::Error> {
                match key {
                    Some(k) => super::$module::serialize(k, s),
                    None => s.serialize_none(),
                }
            }
            /// Deserialize.
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$ty>, D::Error> {
                super::$module::deserialize(d).map(Some)
            }
        }
    };
}

key_serde!(key_hex, opt_key_hex, bcami_sdk::MeterPublicKey);
key_serde!(mdms_key_hex, opt_mdms_key_hex, bcami_sdk::MdmsPublicKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_keys_sort_in_time_order() {
        let hid = Hid::from_meter_id("SM-1");
        let times = [0u64, 9, 10, 999, 1_700_000_000_000, u64::MAX];
        let keys: Vec<String> = times
            .iter()
            .map(|t| reading_key(&hid, *t).unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (k, t) in keys.iter().zip(times) {
            assert_eq!(reading_timestamp(k).unwrap(), t);
        }
        assert_eq!(meter_hid(&meter_key(&hid).unwrap()).unwrap(), hid);
        assert!(reading_timestamp(&meter_key(&hid).unwrap()).is_err());
    }

    #[test]
    fn key_hash_is_sha256_of_the_compressed_key() {
        // The secp256k1 generator G (SEC 2 §2.4.1), compressed; the hash computed independently
        // with `printf 0279be…f81798 | xxd -r -p | sha256sum`.
        let g =
            from_hex::<33>("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
                .unwrap();
        let expected = "0f715baf5d4c2ed329785cef29e562f73488c8a2bb9dbc5700b361d54b9b0554";
        let meter = KeyHash::of_meter_key(&MeterPublicKey::from_sec1_bytes(&g).unwrap());
        let mdms = KeyHash::of_mdms_key(&MdmsPublicKey::from_sec1_bytes(&g).unwrap());
        assert_eq!(meter.to_string(), expected);
        assert_eq!(mdms, meter);
        assert_eq!(expected.to_uppercase().parse::<KeyHash>(), Ok(meter));
        let mut flipped = g;
        flipped[32] ^= 1;
        if let Ok(other) = MeterPublicKey::from_sec1_bytes(&flipped) {
            assert_ne!(KeyHash::of_meter_key(&other), meter);
        }
        for bad in [
            &expected[1..],
            &format!("{expected}0"),
            &format!("{}g", &expected[1..]),
            "",
        ] {
            assert!(bad.parse::<KeyHash>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&meter).unwrap();
        assert_eq!(json, format!("\"{expected}\""));
        assert_eq!(serde_json::from_str::<KeyHash>(&json).unwrap(), meter);
    }

    #[test]
    fn records_written_before_key_bindings_still_parse_and_serialize_the_same() {
        let hid = Hid::from_meter_id("SM-1");
        let meter = format!(
            r#"{{"hid":"{hid}","status":"provisioned","keyVersion":0,"readings":0,"provisionedTx":"tx1"}}"#
        );
        let record: MeterRecord = parse("k", meter.as_bytes()).unwrap();
        assert_eq!(record.key_hash, None);
        assert_eq!(to_json(&record).unwrap(), meter.as_bytes());
        let mdms = format!(r#"{{"hid":"{hid}","status":"provisioned"}}"#);
        let record: MdmsRecord = parse("k", mdms.as_bytes()).unwrap();
        assert_eq!(record.key_hash, None);
        assert_eq!(to_json(&record).unwrap(), mdms.as_bytes());
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let bytes = [0x00, 0x7f, 0x80, 0xff];
        assert_eq!(to_hex(&bytes), "007f80ff");
        assert_eq!(from_hex::<4>("007F80ff"), Some(bytes));
        assert_eq!(from_hex::<4>("007f80f"), None);
        assert_eq!(from_hex::<4>("007f80fg"), None);
        assert_eq!(from_hex::<2>("+1+1"), None);
    }
}
