//! The paper's TPM/host split. The key holder keeps the meter secret `f` and does every
//! operation with it; the host does the rest of a presentation. The key holder takes a
//! basename's bytes and hashes them to the curve itself, and otherwise multiplies only the fixed
//! generator `H_f`: it never raises a point the caller chose to its secret (no static-DH oracle,
//! Camenisch et al., "One TPM to Bind Them All", S&P 2017).

use ff::Field;
use zeroize_lite::Secret;

use crate::backend::{Backend, Zk};
use crate::error::{KeyHolderError, TraceError};
use crate::hash::{hash_to_scalar, scalar_from_okm};
use crate::issuer::{API_ID, credential_generators};
use crate::report::{PSEUDONYM_DST, Period};
use crate::trace::NonEqualityProof;

/// What the key holder returns for one presentation: the pseudonym and its two Schnorr
/// commitments.
#[derive(Clone, Copy, Debug)]
pub struct PseudonymCommitment<B: Backend = Zk> {
    /// `K = J·f` with `J = hash_to_curve(basename)`.
    pub pseudonym: B::G1,
    /// `J·r` (the commitment for `K`).
    pub r_j: B::G1,
    /// `H_f·r` (the secret's part of the proof's `T2`).
    pub r_h: B::G1,
}

/// A holder of the meter secret `f` (a secure element, or [`SoftwareKeyHolder`]).
///
/// `entropy` is the host's randomness; a holder hedges it with its secret (or uses its own
/// RNG as well). A `commit` is answered by exactly one `respond`: answering two challenges
/// with one nonce would reveal `f`.
pub trait KeyHolder<B: Backend = Zk> {
    /// The issuance commitment `C = H_f·f`.
    fn commitment(&self) -> B::G1;

    /// A Schnorr proof of knowledge of `f` in `C = H_f·f`, bound to `context` (the join
    /// request's HID, epoch, nonce and issuer key): returns `(c, s)`.
    fn prove_join(
        &mut self,
        context: &[u8],
        entropy: &[u8; 32],
    ) -> Result<(B::Fr, B::Fr), KeyHolderError>;

    /// Starts a presentation for the period named by `basename` (hashed to the curve by the
    /// holder) over `message` (the report; a holder binds it into its nonce so that a stuck
    /// RNG never answers two different readings of one period with one nonce, which would
    /// reveal `f`).
    fn commit(
        &mut self,
        basename: &[u8],
        message: &[u8],
        entropy: &[u8; 32],
    ) -> Result<PseudonymCommitment<B>, KeyHolderError>;

    /// Finishes it: `r + c·f`. Fails without an outstanding commitment.
    fn respond(&mut self, challenge: &B::Fr) -> Result<B::Fr, KeyHolderError>;
}

/// The key holder in software: `f` in memory, hedged nonces
/// (`HKDF-SHA-256(salt = entropy, ikm = f, info = label ‖ message)`, as the SDK's ECIES
/// derives its scalars), so a broken host RNG neither repeats a nonce for different messages
/// nor reveals `f`.
pub struct SoftwareKeyHolder<B: Backend = Zk> {
    f: Secret<B>,
    h_f: B::G1,
    pending: Option<B::Fr>,
}

impl<B: Backend> core::fmt::Debug for SoftwareKeyHolder<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SoftwareKeyHolder { .. }")
    }
}

/// At least this many bytes of entropy make a meter secret.
pub const MIN_SECRET_ENTROPY: usize = 32;

impl<B: Backend> SoftwareKeyHolder<B> {
    /// A new secret `f = hash_to_scalar(entropy)` from at least 32 bytes of entropy.
    pub fn from_entropy(entropy: &[u8]) -> Result<Self, KeyHolderError> {
        if entropy.len() < MIN_SECRET_ENTROPY {
            return Err(KeyHolderError::InvalidSecret);
        }
        let f = hash_to_scalar::<B>(&[entropy], &[API_ID, b"KEYGEN_DST_"]);
        Self::from_scalar(f)
    }

    /// The secret from its 32-byte big-endian encoding (for storage).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyHolderError> {
        let f = B::scalar_from_be(bytes).ok_or(KeyHolderError::InvalidSecret)?;
        Self::from_scalar(f)
    }

    fn from_scalar(f: B::Fr) -> Result<Self, KeyHolderError> {
        if bool::from(f.is_zero()) {
            return Err(KeyHolderError::InvalidSecret);
        }
        Ok(SoftwareKeyHolder {
            f: Secret(f),
            h_f: credential_generators::<B>().h[0],
            pending: None,
        })
    }

    /// The secret's 32-byte big-endian encoding (store it like a private key).
    pub fn to_bytes(&self) -> [u8; 32] {
        B::scalar_to_be(&self.f.0)
    }

    fn nonce(&self, entropy: &[u8; 32], label: &[u8], message: &[u8]) -> B::Fr {
        let ikm = B::scalar_to_be(&self.f.0);
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(entropy), &ikm);
        let mut okm = [0u8; 48];
        // 48 bytes is far below HKDF-SHA-256's limit of 8160: expand cannot fail.
        let _ = hk.expand_multi_info(&[b"BC-AMI/1 anon nonce\0", label, message], &mut okm);
        scalar_from_okm::<B>(&okm)
    }

    /// The tracing proof (Camenisch–Shoup): that the suspect pseudonym `k_r` of `period` was
    /// not made with this meter's secret, bound to the issuance commitment and `context`.
    /// Fails with [`TraceError::SameSecret`] if it was.
    pub fn prove_not_mine(
        &self,
        period: Period,
        k_r: &B::G1,
        context: &[u8],
        entropy: &[u8; 32],
    ) -> Result<NonEqualityProof<B>, TraceError> {
        let j_r = period.base::<B>();
        if B::mul(&j_r, &self.f.0) == *k_r {
            return Err(TraceError::SameSecret);
        }
        let mut msg = alloc::vec::Vec::with_capacity(48 + context.len());
        msg.extend_from_slice(&B::g1_to_bytes(k_r));
        msg.extend_from_slice(context);
        let iota = self.nonce(entropy, b"trace iota", &msg);
        let r_tau = self.nonce(entropy, b"trace r_tau", &msg);
        let r_iota = self.nonce(entropy, b"trace r_iota", &msg);
        Ok(NonEqualityProof::prove(
            &self.f.0,
            &self.commitment(),
            &self.h_f,
            &j_r,
            k_r,
            context,
            [iota, r_tau, r_iota],
        ))
    }
}

impl<B: Backend> KeyHolder<B> for SoftwareKeyHolder<B> {
    fn commitment(&self) -> B::G1 {
        B::mul(&self.h_f, &self.f.0)
    }

    fn prove_join(
        &mut self,
        context: &[u8],
        entropy: &[u8; 32],
    ) -> Result<(B::Fr, B::Fr), KeyHolderError> {
        let r = self.nonce(entropy, b"join", context);
        let t = B::mul(&self.h_f, &r);
        let c = crate::issuer::join_challenge::<B>(&self.commitment(), &t, context);
        Ok((c, r + c * self.f.0))
    }

    fn commit(
        &mut self,
        basename: &[u8],
        message: &[u8],
        entropy: &[u8; 32],
    ) -> Result<PseudonymCommitment<B>, KeyHolderError> {
        let j = B::hash_to_g1(basename, PSEUDONYM_DST);
        let mut bound = alloc::vec::Vec::with_capacity(8 + basename.len() + message.len());
        bound.extend_from_slice(&(basename.len() as u64).to_be_bytes());
        bound.extend_from_slice(basename);
        bound.extend_from_slice(message);
        let r = self.nonce(entropy, b"present", &bound);
        self.pending = Some(r);
        Ok(PseudonymCommitment {
            pseudonym: B::mul(&j, &self.f.0),
            r_j: B::mul(&j, &r),
            r_h: B::mul(&self.h_f, &r),
        })
    }

    fn respond(&mut self, challenge: &B::Fr) -> Result<B::Fr, KeyHolderError> {
        let r = self.pending.take().ok_or(KeyHolderError::NoCommitment)?;
        Ok(r + *challenge * self.f.0)
    }
}

/// Test-only access to the secret (negative controls and the leaked-secret list).
#[cfg(test)]
impl<B: Backend> SoftwareKeyHolder<B> {
    pub(crate) fn secret(&self) -> B::Fr {
        self.f.0
    }
}

mod zeroize_lite {
    use crate::backend::Backend;
    use ff::Field;

    /// A secret scalar, overwritten with zero when dropped (best effort: no `zeroize` crate,
    /// so the compiler may elide it; the bls12_381 scalar has no `zeroize` without the feature).
    pub(crate) struct Secret<B: Backend>(pub(crate) B::Fr);

    impl<B: Backend> Drop for Secret<B> {
        fn drop(&mut self) {
            self.0 = B::Fr::ZERO;
        }
    }
}
