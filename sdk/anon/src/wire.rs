//! One reader and one writer for every message: fixed-size big-endian fields, points
//! compressed and checked, scalars canonical.

use alloc::vec::Vec;

use crate::backend::Backend;
use crate::error::{DecodeError, Field};

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks the kind and version bytes.
    pub(crate) fn new(bytes: &'a [u8], kind: u8) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let [found, version] = r.array::<2>()?;
        if found != kind {
            return Err(DecodeError::UnexpectedKind {
                expected: kind,
                found,
            });
        }
        if version != crate::FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        Ok(r)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let available = self.bytes.len() - self.pos;
        if available < N {
            return Err(DecodeError::Truncated {
                needed: N,
                available,
            });
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A G1 point in the subgroup, not the identity.
    pub(crate) fn g1<B: Backend>(&mut self, field: Field) -> Result<B::G1, DecodeError> {
        g1_from_bytes::<B>(&self.array()?, field)
    }

    /// A G2 point in the subgroup, not the identity.
    pub(crate) fn g2<B: Backend>(&mut self, field: Field) -> Result<B::G2, DecodeError> {
        use group::Group;
        let p = B::g2_from_bytes(&self.array()?).ok_or(DecodeError::InvalidPoint { field })?;
        if bool::from(p.is_identity()) {
            return Err(DecodeError::IdentityPoint { field });
        }
        Ok(p)
    }

    pub(crate) fn scalar<B: Backend>(&mut self, field: Field) -> Result<B::Fr, DecodeError> {
        B::scalar_from_be(&self.array()?).ok_or(DecodeError::NonCanonicalScalar { field })
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        let extra = self.bytes.len() - self.pos;
        if extra != 0 {
            return Err(DecodeError::TrailingBytes { extra });
        }
        Ok(())
    }
}

/// A G1 point in the subgroup, not the identity.
pub(crate) fn g1_from_bytes<B: Backend>(
    bytes: &[u8; 48],
    field: Field,
) -> Result<B::G1, DecodeError> {
    use group::Group;
    let p = B::g1_from_bytes(bytes).ok_or(DecodeError::InvalidPoint { field })?;
    if bool::from(p.is_identity()) {
        return Err(DecodeError::IdentityPoint { field });
    }
    Ok(p)
}

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn new(kind: u8, capacity: usize) -> Self {
        let mut v = Vec::with_capacity(capacity);
        v.push(kind);
        v.push(crate::FORMAT_VERSION);
        Writer(v)
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }

    pub(crate) fn g1<B: Backend>(&mut self, p: &B::G1) -> &mut Self {
        self.bytes(&B::g1_to_bytes(p))
    }

    pub(crate) fn scalar<B: Backend>(&mut self, s: &B::Fr) -> &mut Self {
        self.bytes(&B::scalar_to_be(s))
    }
}
