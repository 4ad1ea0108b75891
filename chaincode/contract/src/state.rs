//! The world-state layout: keys, and reading/writing the records (`bcami_api::records`). See the crate README for the
//! table of who writes what.

use bcami_api::Config;
use bcami_sdk::Hid;
use fabric_shim::{KeyRange, State, composite_key, split_composite_key};
use serde::Serialize;

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
/// Simple key of the AMI head-end record.
pub const HEAD_END_KEY: &str = "headend";
/// Object type of head-end key versions: `headendkey~VERSION` (10 digits).
pub const HEAD_END_KEY_VERSION: &str = "headendkey";

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

/// `mdmskey~VERSION`, `headendkey~VERSION`: a service's key version under `object_type`.
pub fn version_key(object_type: &str, version: u32) -> Result<String, Error> {
    Ok(composite_key(object_type, &[&format!("{version:010}")])?)
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

/// Bytes as the standard base64 the ledger's JSON records hold.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A base64 field of the record at `key`; bad base64 there is corrupt state.
pub(crate) fn unb64(text: &str, key: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::CorruptState {
            key: key.escape_debug().to_string(),
            detail: e.to_string(),
        })
}

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
}
