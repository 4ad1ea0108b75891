//! The one cursor every decoder reads through, so bounds and trailing-byte rules are in one place.

use crate::MessageKind;
use crate::error::DecodeError;
use crate::identity::{Hid, Timestamp};

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    pub(crate) fn slice(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .position
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(DecodeError::Truncated {
                needed: self.position.saturating_add(len),
                available: self.bytes.len(),
            })?;
        let out = &self.bytes[self.position..end];
        self.position = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(N)?);
        Ok(out)
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.bytes.len() - self.position {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { extra }),
        }
    }

    /// Reads `kind || version`, the first two bytes of every message.
    pub(crate) fn kind_and_version(&mut self, kind: MessageKind) -> Result<(), DecodeError> {
        let [found] = self.array::<1>()?;
        if found != kind as u8 {
            return Err(DecodeError::UnexpectedKind {
                expected: kind,
                found,
            });
        }
        let [version] = self.array::<1>()?;
        if version != crate::FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion { kind, version });
        }
        Ok(())
    }

    /// Reads the common header `kind || version || HID || timestamp`.
    pub(crate) fn header(&mut self, kind: MessageKind) -> Result<Header, DecodeError> {
        self.kind_and_version(kind)?;
        Ok(Header {
            hid: Hid::from_bytes(self.array()?),
            timestamp: Timestamp::from_bytes(self.array()?),
        })
    }
}

/// The fields every message starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) hid: Hid,
    pub(crate) timestamp: Timestamp,
}

impl Header {
    pub(crate) const LEN: usize = 1 + 1 + Hid::LEN + Timestamp::LEN;

    pub(crate) fn encode(&self, kind: MessageKind) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = kind as u8;
        out[1] = crate::FORMAT_VERSION;
        out[2..34].copy_from_slice(self.hid.as_bytes());
        out[34..42].copy_from_slice(&self.timestamp.to_bytes());
        out
    }
}
