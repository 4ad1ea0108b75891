//! The anonymous report a presentation signs, and the period that names the pseudonym base.

use crate::backend::Backend;
use crate::error::DecodeError;

/// A reporting period: start (Unix milliseconds) and length (seconds, not zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Period {
    start_unix_millis: u64,
    length_secs: u32,
}

impl Period {
    /// A period; `None` for a zero length.
    pub const fn new(start_unix_millis: u64, length_secs: u32) -> Option<Period> {
        if length_secs == 0 {
            None
        } else {
            Some(Period {
                start_unix_millis,
                length_secs,
            })
        }
    }

    /// Start, Unix milliseconds.
    pub const fn start_unix_millis(self) -> u64 {
        self.start_unix_millis
    }

    /// Length, seconds.
    pub const fn length_secs(self) -> u32 {
        self.length_secs
    }

    /// The pseudonym basename: the period alone (never the reading, so that two different
    /// readings of one meter in one period get the same pseudonym).
    pub fn basename(self) -> [u8; BASENAME_LEN] {
        let mut b = [0u8; BASENAME_LEN];
        b[..BASENAME_LABEL.len()].copy_from_slice(BASENAME_LABEL);
        let n = BASENAME_LABEL.len();
        b[n..n + 8].copy_from_slice(&self.start_unix_millis.to_be_bytes());
        b[n + 8..].copy_from_slice(&self.length_secs.to_be_bytes());
        b
    }

    /// `J = hash_to_curve(basename)`: the pseudonym base of this period.
    pub fn base<B: Backend>(self) -> B::G1 {
        B::hash_to_g1(&self.basename(), PSEUDONYM_DST)
    }
}

const BASENAME_LABEL: &[u8] = b"BC-AMI/1 anon pseudonym\0";
/// Length of [`Period::basename`].
pub const BASENAME_LEN: usize = 24 + 8 + 4;
/// The hash-to-curve DST of pseudonym bases.
pub(crate) const PSEUDONYM_DST: &[u8] = b"BCAMI_ANON_V1_BLS12381G1_XMD:SHA-256_SSWU_RO_PSEUDONYM_";

/// Report flags (the same bits as the identified reading's quality flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReportFlags(u16);

impl ReportFlags {
    /// No flag.
    pub const NONE: ReportFlags = ReportFlags(0);
    /// The value is estimated.
    pub const ESTIMATED: ReportFlags = ReportFlags(1 << 0);
    /// A power outage occurred in the period.
    pub const POWER_OUTAGE: ReportFlags = ReportFlags(1 << 1);
    /// The meter's clock was adjusted in the period.
    pub const CLOCK_ADJUSTED: ReportFlags = ReportFlags(1 << 2);
    /// A tamper alarm was raised in the period.
    pub const TAMPER_ALARM: ReportFlags = ReportFlags(1 << 3);
    /// Every defined bit.
    pub const ALL: ReportFlags = ReportFlags(0b1111);

    /// Flags from bits; undefined bits are an error.
    pub const fn from_bits(bits: u16) -> Result<ReportFlags, DecodeError> {
        if bits & !Self::ALL.0 != 0 {
            Err(DecodeError::UnknownFlags {
                bits: bits & !Self::ALL.0,
            })
        } else {
            Ok(ReportFlags(bits))
        }
    }

    /// The bits.
    pub const fn bits(self) -> u16 {
        self.0
    }
}

/// What an anonymous reading says: the period, the energy in it, and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AnonReport {
    /// The period the energy was measured in.
    pub period: Period,
    /// Energy in the period, watt-hours.
    pub energy_wh: u64,
    /// Flags.
    pub flags: ReportFlags,
}

impl AnonReport {
    /// Encoded length: start 8, length 4, energy 8, flags 2.
    pub const ENCODED_LEN: usize = 22;

    /// The encoding (big-endian fields).
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut b = [0u8; Self::ENCODED_LEN];
        b[..8].copy_from_slice(&self.period.start_unix_millis.to_be_bytes());
        b[8..12].copy_from_slice(&self.period.length_secs.to_be_bytes());
        b[12..20].copy_from_slice(&self.energy_wh.to_be_bytes());
        b[20..].copy_from_slice(&self.flags.0.to_be_bytes());
        b
    }

    pub(crate) fn read(r: &mut crate::wire::Reader<'_>) -> Result<AnonReport, DecodeError> {
        let start = r.u64()?;
        let length = r.u32()?;
        let energy_wh = r.u64()?;
        let flags = ReportFlags::from_bits(r.u16()?)?;
        let period = Period::new(start, length).ok_or(DecodeError::ZeroPeriodLength)?;
        Ok(AnonReport {
            period,
            energy_wh,
            flags,
        })
    }
}
