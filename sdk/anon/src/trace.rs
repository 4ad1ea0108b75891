//! Tracing: Camenisch–Shoup's proof that two discrete logarithms differ (CRYPTO 2003, §5),
//! bound to the commitment recorded at issuance. The meter proves
//! `log_{H_f}(C_i) ≠ log_{J_R}(K_R)` for a suspect pseudonym `K_R` of period `R`:
//! with `τ = ι·f`, `Cn = J_R·τ - K_R·ι` and `PK{(τ, ι): Cn = J_R·τ - K_R·ι ∧ 1 = H_f·τ - C_i·ι}`.
//! `Cn ≠ 1` is checked: it is what makes the statement an inequality (the paper omits it).

use alloc::vec::Vec;

use group::Group;

use crate::backend::{Backend, Zk};
use crate::error::{DecodeError, Field as F, VerifyError};
use crate::issuer::{API_ID, IssuerPublicKey, JoinRequest, kind};
use crate::report::Period;
use crate::wire::{Reader, Writer, g1_from_bytes};

/// A meter's proof that a suspect pseudonym is not its own.
#[derive(Clone, Debug)]
pub struct NonEqualityProof<B: Backend = Zk> {
    cn: B::G1,
    c: B::Fr,
    z_tau: B::Fr,
    z_iota: B::Fr,
}

fn trace_challenge<B: Backend>(
    c_i: &B::G1,
    j_r: &B::G1,
    k_r: &B::G1,
    cn: &B::G1,
    t1: &B::G1,
    t2: &B::G1,
    context: &[u8],
) -> B::Fr {
    let mut t = Vec::with_capacity(48 * 6 + context.len());
    for p in [c_i, j_r, k_r, cn, t1, t2] {
        t.extend_from_slice(&B::g1_to_bytes(p));
    }
    t.extend_from_slice(context);
    crate::hash::hash_to_scalar::<B>(&[&t], &[API_ID, b"TRACE_PROOF_"])
}

impl<B: Backend> NonEqualityProof<B> {
    /// Encoded length: kind, version, `Cn` 48, three scalars 96.
    pub const ENCODED_LEN: usize = 2 + 48 + 32 * 3;

    pub(crate) fn prove(
        f: &B::Fr,
        c_i: &B::G1,
        h_f: &B::G1,
        j_r: &B::G1,
        k_r: &B::G1,
        context: &[u8],
        [iota, r_tau, r_iota]: [B::Fr; 3],
    ) -> Self {
        let tau = iota * f;
        let cn = B::msm(&[*j_r, *k_r], &[tau, -iota]);
        let t1 = B::msm(&[*j_r, *k_r], &[r_tau, -r_iota]);
        let t2 = B::msm(&[*h_f, *c_i], &[r_tau, -r_iota]);
        let c = trace_challenge::<B>(c_i, j_r, k_r, &cn, &t1, &t2, context);
        NonEqualityProof {
            cn,
            c,
            z_tau: r_tau + c * tau,
            z_iota: r_iota + c * iota,
        }
    }

    /// Verifies against the commitment `C_i` the issuer recorded from the meter's join request,
    /// for the suspect pseudonym `k_r` (compressed) of `period` and the tracing `context`.
    pub fn verify(
        &self,
        ipk: &IssuerPublicKey<B>,
        join_request: &JoinRequest<B>,
        period: Period,
        k_r: &[u8; 48],
        context: &[u8],
    ) -> Result<(), VerifyError> {
        if bool::from(self.cn.is_identity()) {
            return Err(VerifyError::Trace);
        }
        let k_r = g1_from_bytes::<B>(k_r, F::Pseudonym).map_err(|_| VerifyError::Trace)?;
        let c_i = join_request.commitment_point();
        let h_f = ipk.gens.h[crate::issuer::INDEX_F];
        let j_r = period.base::<B>();
        let t1 = B::msm(&[j_r, k_r, self.cn], &[self.z_tau, -self.z_iota, -self.c]);
        let t2 = B::msm(&[h_f, *c_i], &[self.z_tau, -self.z_iota]);
        if trace_challenge::<B>(c_i, &j_r, &k_r, &self.cn, &t1, &t2, context) != self.c {
            return Err(VerifyError::Trace);
        }
        Ok(())
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(kind::TRACE_PROOF, Self::ENCODED_LEN);
        w.g1::<B>(&self.cn)
            .scalar::<B>(&self.c)
            .scalar::<B>(&self.z_tau)
            .scalar::<B>(&self.z_iota);
        w.0
    }

    /// Decodes (`Cn` the identity is rejected here already).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, kind::TRACE_PROOF)?;
        let cn = r.g1::<B>(F::TraceCommitment)?;
        let c = r.scalar::<B>(F::TraceScalar)?;
        let z_tau = r.scalar::<B>(F::TraceScalar)?;
        let z_iota = r.scalar::<B>(F::TraceScalar)?;
        r.finish()?;
        Ok(NonEqualityProof {
            cn,
            c,
            z_tau,
            z_iota,
        })
    }
}

/// Test-only: a proof with `Cn` replaced (the `C ≠ 1` check).
#[cfg(test)]
impl<B: Backend> NonEqualityProof<B> {
    pub(crate) fn with_cn(mut self, cn: B::G1) -> Self {
        self.cn = cn;
        self
    }
}

/// Equal when the encodings are.
impl<B: Backend> PartialEq for NonEqualityProof<B> {
    fn eq(&self, other: &Self) -> bool {
        self.encode() == other.encode()
    }
}
