//! `KeyHash`: the fingerprint of a device key that binds it at provisioning, and hex.

use bcami_sdk::{MdmsPublicKey, MeterPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

    /// The hash of a service's key (the MDMS's, the head-end's).
    pub fn of_service_key<K: crate::records::ServiceKey>(key: &K) -> Self {
        Self::of_sec1(&key.to_sec1())
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn hex_round_trips_and_rejects_bad_text() {
        let bytes = [0x00, 0x7f, 0x80, 0xff];
        assert_eq!(to_hex(&bytes), "007f80ff");
        assert_eq!(from_hex::<4>("007F80ff"), Some(bytes));
        assert_eq!(from_hex::<4>("007f80f"), None);
        assert_eq!(from_hex::<4>("007f80fg"), None);
        assert_eq!(from_hex::<2>("+1+1"), None);
    }
}
