//! `expand_message_xmd` with SHA-256 (RFC 9380 §5.3.1), hash-to-scalar and hash-to-curve.
//!
//! We implement `expand_message_xmd` on our own `sha2` 0.10 rather than take `bls12_381`'s copy
//! through `digest` 0.9; `bls12_381`'s SSWU map and cofactor clearing are then driven by it.

use core::marker::PhantomData;

use bls12_381::hash_to_curve::{ExpandMessageState, InitExpandMessage};
use sha2::{Digest, Sha256};

use crate::backend::Backend;

/// The longest output `expand_message_xmd` is asked for here (two G1 field elements).
const MAX_EXPAND: usize = 256;

/// `expand_message_xmd(msg, dst, out.len())` with SHA-256. `dst` must be at most 255 bytes and
/// `out` at most 255 · 32 bytes; every caller in this crate passes constants within both.
pub(crate) fn expand_message_xmd(msg: &[&[u8]], dst: &[u8], out: &mut [u8]) {
    debug_assert!(dst.len() <= 255 && out.len() <= 255 * 32);
    let len = out.len();
    let ell = len.div_ceil(32);
    // Both fit: dst.len() <= 255 and len <= 8160 < 2^16 (asserted above for our constants).
    let dst_len = [dst.len() as u8];
    let len_bytes = (len as u16).to_be_bytes();

    let mut h = Sha256::new();
    h.update([0u8; 64]);
    for part in msg {
        h.update(part);
    }
    h.update(len_bytes);
    h.update([0u8]);
    h.update(dst);
    h.update(dst_len);
    let b0 = h.finalize();

    let mut h = Sha256::new();
    h.update(b0);
    h.update([1u8]);
    h.update(dst);
    h.update(dst_len);
    let mut bi = h.finalize();
    let mut offset = 0;
    for i in 1..=ell {
        let take = (len - offset).min(32);
        out[offset..offset + take].copy_from_slice(&bi[..take]);
        offset += take;
        if i == ell {
            break;
        }
        let mut x = [0u8; 32];
        for (j, byte) in x.iter_mut().enumerate() {
            *byte = b0[j] ^ bi[j];
        }
        let mut h = Sha256::new();
        h.update(x);
        h.update([(i + 1) as u8]);
        h.update(dst);
        h.update(dst_len);
        bi = h.finalize();
    }
}

/// Reduces a 48-byte big-endian integer modulo the group order (the draft's `OS2IP(..) mod r`).
pub(crate) fn scalar_from_okm<B: Backend>(okm: &[u8; 48]) -> B::Fr {
    use ff::PrimeField;
    let chunk = |i: usize| {
        let mut c = [0u8; 16];
        c.copy_from_slice(&okm[16 * i..16 * i + 16]);
        B::Fr::from_u128(u128::from_be_bytes(c))
    };
    let two_128 = B::Fr::from_u128(u128::MAX) + B::Fr::from_u128(1);
    (chunk(0) * two_128 + chunk(1)) * two_128 + chunk(2)
}

/// `hash_to_scalar(msg, dst)` of the BBS draft: `expand_message_xmd(msg, dst, 48) mod r`.
pub(crate) fn hash_to_scalar<B: Backend>(msg: &[&[u8]], dst: &[&[u8]]) -> B::Fr {
    let mut d = [0u8; 255];
    let dst = concat_dst(dst, &mut d);
    let mut okm = [0u8; 48];
    expand_message_xmd(msg, dst, &mut okm);
    scalar_from_okm::<B>(&okm)
}

/// Joins DST parts (constants of this crate, well under 255 bytes together).
pub(crate) fn concat_dst<'a>(parts: &[&[u8]], buf: &'a mut [u8; 255]) -> &'a [u8] {
    let mut n = 0;
    for p in parts {
        let take = p.len().min(255 - n);
        buf[n..n + take].copy_from_slice(&p[..take]);
        n += take;
    }
    &buf[..n]
}

/// The expander `bls12_381`'s hash-to-curve runs on: our `expand_message_xmd`.
pub(crate) struct XmdSha256;

pub(crate) struct XmdState<'x> {
    buf: [u8; MAX_EXPAND],
    len: usize,
    offset: usize,
    _dst: PhantomData<&'x [u8]>,
}

impl<'x> InitExpandMessage<'x> for XmdSha256 {
    type Expander = XmdState<'x>;

    fn init_expand(message: &[u8], dst: &'x [u8], len_in_bytes: usize) -> XmdState<'x> {
        let len = len_in_bytes.min(MAX_EXPAND);
        let mut buf = [0u8; MAX_EXPAND];
        expand_message_xmd(&[message], dst, &mut buf[..len]);
        XmdState {
            buf,
            len,
            offset: 0,
            _dst: PhantomData,
        }
    }
}

impl<'x> ExpandMessageState<'x> for XmdState<'x> {
    fn read_into(&mut self, output: &mut [u8]) -> usize {
        let take = output.len().min(self.len - self.offset);
        output[..take].copy_from_slice(&self.buf[self.offset..self.offset + take]);
        self.offset += take;
        take
    }

    fn remain(&self) -> usize {
        self.len - self.offset
    }
}

/// Hash-to-curve G1 with the suite `BLS12381G1_XMD:SHA-256_SSWU_RO_` (RFC 9380 §8.8.1).
pub fn hash_to_g1<B: Backend>(msg: &[u8], dst: &[u8]) -> B::G1 {
    B::hash_to_g1(msg, dst)
}
