//! The usage report `UD` that a meter encrypts to the MDMS.

use core::num::NonZeroU32;

use crate::error::DecodeError;
use crate::identity::Timestamp;
use crate::wire::Reader;

/// Energy in watt-hours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WattHours(pub u64);

/// Length of a metering interval in whole seconds; never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IntervalLength(NonZeroU32);

impl IntervalLength {
    /// Thirty minutes, the usual settlement period.
    pub const HALF_HOUR: IntervalLength = IntervalLength(NonZeroU32::MIN.saturating_add(1799));

    /// `None` for zero.
    pub const fn from_seconds(seconds: u32) -> Option<Self> {
        match NonZeroU32::new(seconds) {
            Some(seconds) => Some(IntervalLength(seconds)),
            None => None,
        }
    }

    /// Seconds.
    pub const fn seconds(self) -> u32 {
        self.0.get()
    }
}

/// Data-quality flags of a reading. Only the bits defined here may be set (version 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QualityFlags(u16);

impl QualityFlags {
    /// No flags: a complete, measured interval.
    pub const NONE: QualityFlags = QualityFlags(0);
    /// The value is estimated, not measured.
    pub const ESTIMATED: QualityFlags = QualityFlags(1 << 0);
    /// Supply was interrupted during the interval.
    pub const POWER_OUTAGE: QualityFlags = QualityFlags(1 << 1);
    /// The meter's clock was adjusted during the interval.
    pub const CLOCK_ADJUSTED: QualityFlags = QualityFlags(1 << 2);
    /// A tamper alarm was raised during the interval.
    pub const TAMPER_ALARM: QualityFlags = QualityFlags(1 << 3);
    /// Every defined bit.
    pub const ALL: QualityFlags = QualityFlags(0b1111);

    /// `Err` names the undefined bits if any are set.
    pub const fn from_bits(bits: u16) -> Result<Self, DecodeError> {
        let unknown = bits & !Self::ALL.0;
        if unknown != 0 {
            return Err(DecodeError::UnknownQualityFlags { bits: unknown });
        }
        Ok(QualityFlags(bits))
    }

    /// The bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every flag in `other` is set.
    pub const fn contains(self, other: QualityFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags.
    #[must_use]
    pub const fn union(self, other: QualityFlags) -> QualityFlags {
        QualityFlags(self.0 | other.0)
    }
}

/// One interval's usage, the plaintext `UD` of a reading (version 1, 31 bytes; layout in FORMAT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UsageReport {
    /// Start of the metering interval.
    pub interval_start: Timestamp,
    /// Length of the interval.
    pub interval_length: IntervalLength,
    /// Active energy imported during the interval.
    pub energy: WattHours,
    /// The meter's cumulative import register at the end of the interval.
    pub cumulative_register: WattHours,
    /// Data-quality flags.
    pub quality: QualityFlags,
}

impl UsageReport {
    /// Report format version written by [`UsageReport::encode`].
    pub const VERSION: u8 = 1;
    /// Encoded length of a version 1 report.
    pub const ENCODED_LEN: usize = 1 + 8 + 4 + 8 + 8 + 2;

    /// The version 1 encoding.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0] = Self::VERSION;
        out[1..9].copy_from_slice(&self.interval_start.to_bytes());
        out[9..13].copy_from_slice(&self.interval_length.seconds().to_be_bytes());
        out[13..21].copy_from_slice(&self.energy.0.to_be_bytes());
        out[21..29].copy_from_slice(&self.cumulative_register.0.to_be_bytes());
        out[29..31].copy_from_slice(&self.quality.bits().to_be_bytes());
        out
    }

    /// Parses exactly one report; rejects unknown versions, a zero interval, undefined flags and
    /// trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let [version] = reader.array::<1>()?;
        if version != Self::VERSION {
            return Err(DecodeError::UnsupportedReportVersion { version });
        }
        let interval_start = Timestamp::from_bytes(reader.array()?);
        let interval_length = IntervalLength::from_seconds(u32::from_be_bytes(reader.array()?))
            .ok_or(DecodeError::ZeroIntervalLength)?;
        let energy = WattHours(u64::from_be_bytes(reader.array()?));
        let cumulative_register = WattHours(u64::from_be_bytes(reader.array()?));
        let quality = QualityFlags::from_bits(u16::from_be_bytes(reader.array()?))?;
        reader.finish()?;
        Ok(UsageReport {
            interval_start,
            interval_length,
            energy,
            cumulative_register,
            quality,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> UsageReport {
        UsageReport {
            interval_start: Timestamp::from_unix_millis(1_700_000_000_000),
            interval_length: IntervalLength::HALF_HOUR,
            energy: WattHours(412),
            cumulative_register: WattHours(12_345_678),
            quality: QualityFlags::ESTIMATED.union(QualityFlags::TAMPER_ALARM),
        }
    }

    #[test]
    fn half_hour_is_1800_seconds() {
        assert_eq!(IntervalLength::HALF_HOUR.seconds(), 1800);
        assert_eq!(IntervalLength::from_seconds(0), None);
    }

    #[test]
    fn report_round_trips_and_rejects_each_bad_field() {
        let bytes = report().encode();
        assert_eq!(UsageReport::decode(&bytes), Ok(report()));

        let mut bad = bytes;
        bad[0] = 2;
        assert_eq!(
            UsageReport::decode(&bad),
            Err(DecodeError::UnsupportedReportVersion { version: 2 })
        );
        let mut bad = bytes;
        bad[9..13].fill(0);
        assert_eq!(
            UsageReport::decode(&bad),
            Err(DecodeError::ZeroIntervalLength)
        );
        let mut bad = bytes;
        bad[29] = 0x80;
        assert_eq!(
            UsageReport::decode(&bad),
            Err(DecodeError::UnknownQualityFlags { bits: 0x8000 })
        );
        assert_eq!(
            UsageReport::decode(&bytes[..30]),
            Err(DecodeError::Truncated {
                needed: 31,
                available: 30
            })
        );
        let mut long = [0u8; 32];
        long[..31].copy_from_slice(&bytes);
        assert_eq!(
            UsageReport::decode(&long),
            Err(DecodeError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn flags_contain_their_parts() {
        let q = report().quality;
        assert!(q.contains(QualityFlags::ESTIMATED));
        assert!(!q.contains(QualityFlags::POWER_OUTAGE));
        assert_eq!(q.bits(), 0b1001);
    }
}
