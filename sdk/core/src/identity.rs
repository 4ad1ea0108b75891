//! Hashed identities and timestamps.

use core::fmt;
use core::str::FromStr;

use sha2::{Digest, Sha256};

/// A hashed identity: `HID = SHA-256(meter ID)` (paper §4.2.1).
///
/// The meter ID is hashed exactly as given (no normalisation, no terminator): `b"SM-0001"` and
/// `b"sm-0001"` are different meters. The same rule makes the MDMS's HID from its ID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hid([u8; 32]);

impl Hid {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// Hashes a meter (or MDMS) identifier.
    pub fn from_meter_id(id: impl AsRef<[u8]>) -> Self {
        Hid(Sha256::digest(id.as_ref()).into())
    }

    /// Wraps 32 bytes that are already a hashed identity (for example read from the ledger).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Hid(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Lower-case hex, 64 characters: the form used in ledger keys and logs.
impl fmt::Display for Hid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hid({self})")
    }
}

/// The text is not 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a HID is 64 hex digits")]
pub struct ParseHidError;

/// Parses 64 hex digits (either case).
impl FromStr for Hid {
    type Err = ParseHidError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return Err(ParseHidError);
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Ok(Hid(bytes))
    }
}

fn hex_digit(c: u8) -> Result<u8, ParseHidError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(ParseHidError),
    }
}

/// A point in time: milliseconds since the Unix epoch (UTC), as sent on the wire (u64 big-endian).
///
/// Milliseconds, not seconds, so that a meter can send a registration, a key rotation and a
/// reading within one second and still keep its timestamps strictly increasing. The contract
/// compares it with the Fabric transaction timestamp (`seconds * 1000 + nanos / 1_000_000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// Length in bytes on the wire.
    pub const LEN: usize = 8;

    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: u64) -> Self {
        Timestamp(millis)
    }

    /// From whole seconds since the Unix epoch; `None` if that overflows u64 milliseconds.
    pub const fn from_unix_seconds(seconds: u64) -> Option<Self> {
        match seconds.checked_mul(1000) {
            Some(millis) => Some(Timestamp(millis)),
            None => None,
        }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// The wire form: u64 big-endian. Big-endian so byte order is time order.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// From the wire form.
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Timestamp(u64::from_be_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hid_is_sha256_of_the_id() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let hid = Hid::from_meter_id("abc");
        assert_eq!(
            hid.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hid_text_round_trips_and_rejects_bad_text() {
        let hid = Hid::from_meter_id("SM-0001");
        assert_eq!(hid.to_string().parse::<Hid>(), Ok(hid));
        assert_eq!(hid.to_string().to_uppercase().parse::<Hid>(), Ok(hid));
        assert_eq!("00".parse::<Hid>(), Err(ParseHidError));
        let mut bad = hid.to_string();
        bad.replace_range(0..1, "g");
        assert_eq!(bad.parse::<Hid>(), Err(ParseHidError));
    }

    #[test]
    fn timestamp_seconds_overflow_is_refused() {
        assert_eq!(
            Timestamp::from_unix_seconds(2).map(Timestamp::unix_millis),
            Some(2000)
        );
        assert_eq!(Timestamp::from_unix_seconds(u64::MAX), None);
        let t = Timestamp::from_unix_millis(0x0102_0304_0506_0708);
        assert_eq!(t.to_bytes(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Timestamp::from_bytes(t.to_bytes()), t);
    }
}
