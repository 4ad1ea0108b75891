//! The anonymous reading: a BBS proof of a credential over the report, disclosing the epoch and
//! the per-period pseudonym `K = J·f`. Proving needs no pairing; verifying is two multi-scalar
//! multiplications and a two-pairing product, which a batch shares.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::backend::{Backend, Zk};
use crate::bbs::{self, ProofInit, ProofRandomness};
use crate::error::{DecodeError, Error, Field as F, KeyHolderError, VerifyError};
use crate::issuer::{API_ID, INDEX_EPOCH, INDEX_F, IssuerPublicKey, MeterCredential, kind};
use crate::keyholder::KeyHolder;
use crate::report::AnonReport;
use crate::wire::{Reader, Writer};

/// An anonymous reading.
#[derive(Clone, Debug)]
pub struct Presentation<B: Backend = Zk> {
    report: AnonReport,
    epoch: u32,
    pseudonym: B::G1,
    abar: B::G1,
    bbar: B::G1,
    d: B::G1,
    e_hat: B::Fr,
    r1_hat: B::Fr,
    r3_hat: B::Fr,
    f_hat: B::Fr,
    c: B::Fr,
}

impl<B: Backend> Presentation<B> {
    /// Encoded length: kind, version, report 22, epoch 4, `K` 48, `Abar, Bbar, D` 144, five
    /// scalars 160.
    pub const ENCODED_LEN: usize = 2 + AnonReport::ENCODED_LEN + 4 + 48 * 4 + 32 * 5;

    /// Builds an anonymous reading: the key holder contributes the pseudonym and the secret's
    /// commitments and response; the host (this function) randomises the credential.
    /// `rng` feeds both (hedged with secrets on each side).
    pub fn build(
        key_holder: &mut impl KeyHolder<B>,
        credential: &MeterCredential<B>,
        ipk: &IssuerPublicKey<B>,
        report: &AnonReport,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<Self, Error> {
        let mut entropy = [0u8; 64];
        rng.try_fill_bytes(&mut entropy)
            .map_err(|_| KeyHolderError::Device)?;
        Self::build_from_entropy(key_holder, credential, ipk, report, &entropy)
    }

    /// [`Presentation::build`] from 64 bytes of fresh entropy (firmware without a
    /// `rand_core` RNG; fresh bytes for every reading).
    pub fn build_from_entropy(
        key_holder: &mut impl KeyHolder<B>,
        credential: &MeterCredential<B>,
        ipk: &IssuerPublicKey<B>,
        report: &AnonReport,
        entropy: &[u8; 64],
    ) -> Result<Self, Error> {
        if credential.epoch != ipk.epoch() {
            return Err(VerifyError::WrongEpoch {
                expected: ipk.epoch(),
                found: credential.epoch,
            }
            .into());
        }
        let ph = report.encode();
        let mut holder_entropy = [0u8; 32];
        holder_entropy.copy_from_slice(&entropy[..32]);
        let nym = key_holder.commit(&report.period.basename(), &ph, &holder_entropy)?;
        let r = host_randomness(credential, &ph, &entropy[32..]);
        let init: ProofInit<B> =
            bbs::proof_init(&credential.a, &credential.b, &credential.bx, &r, &nym.r_h);
        let c = bbs::challenge::<B>(
            &init,
            &[(INDEX_EPOCH, ipk.m_epoch)],
            Some((&nym.pseudonym, &nym.r_j)),
            &ipk.domain,
            &ph,
            API_ID,
        );
        let f_hat = key_holder.respond(&c)?;
        // r2 is zero with probability 2^-255; the key holder's nonce is spent either way.
        let (e_hat, r1_hat, r3_hat) =
            bbs::finalize::<B>(&r, &credential.e, &c).ok_or(KeyHolderError::Device)?;
        Ok(Presentation {
            report: *report,
            epoch: credential.epoch,
            pseudonym: nym.pseudonym,
            abar: init.abar,
            bbar: init.bbar,
            d: init.d,
            e_hat,
            r1_hat,
            r3_hat,
            f_hat,
            c,
        })
    }

    /// The report.
    pub fn report(&self) -> &AnonReport {
        &self.report
    }

    /// The disclosed credential epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The per-period pseudonym `K`, compressed (the ledger key for double-report detection).
    pub fn pseudonym(&self) -> [u8; 48] {
        B::g1_to_bytes(&self.pseudonym)
    }

    pub(crate) fn pseudonym_point(&self) -> &B::G1 {
        &self.pseudonym
    }

    fn proof(&self) -> bbs::Proof<B> {
        bbs::Proof {
            abar: self.abar,
            bbar: self.bbar,
            d: self.d,
            e_hat: self.e_hat,
            r1_hat: self.r1_hat,
            r3_hat: self.r3_hat,
            m_hat: alloc::vec![(INDEX_F, self.f_hat)],
            c: self.c,
        }
    }

    /// Everything but the pairing: the epoch and the challenge.
    fn check_challenge(&self, ipk: &IssuerPublicKey<B>) -> Result<(), VerifyError> {
        if self.epoch != ipk.epoch() {
            return Err(VerifyError::WrongEpoch {
                expected: ipk.epoch(),
                found: self.epoch,
            });
        }
        let j = self.report.period.base::<B>();
        let ok = bbs::challenge_valid::<B>(
            &self.proof(),
            &ipk.gens,
            &ipk.bv,
            &[(INDEX_EPOCH, ipk.m_epoch)],
            Some((&j, &self.pseudonym, INDEX_F)),
            &ipk.domain,
            &self.report.encode(),
            API_ID,
        );
        if ok {
            Ok(())
        } else {
            Err(VerifyError::Presentation)
        }
    }

    /// Verifies under the issuer key of the presentation's epoch.
    pub fn verify(&self, ipk: &IssuerPublicKey<B>) -> Result<(), VerifyError> {
        self.check_challenge(ipk)?;
        if bbs::pairing_valid::<B>(&ipk.w_prepared, &ipk.minus_p2, &self.abar, &self.bbar) {
            Ok(())
        } else {
            Err(VerifyError::Presentation)
        }
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(kind::PRESENTATION, Self::ENCODED_LEN);
        w.bytes(&self.report.encode())
            .bytes(&self.epoch.to_be_bytes());
        for p in B::g1_batch_to_bytes(&[self.pseudonym, self.abar, self.bbar, self.d]) {
            w.bytes(&p);
        }
        for s in [
            &self.e_hat,
            &self.r1_hat,
            &self.r3_hat,
            &self.f_hat,
            &self.c,
        ] {
            w.scalar::<B>(s);
        }
        w.0
    }

    /// Decodes: every point in the subgroup and not the identity, every scalar canonical.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, kind::PRESENTATION)?;
        let report = AnonReport::read(&mut r)?;
        let epoch = r.u32()?;
        let pseudonym = r.g1::<B>(F::Pseudonym)?;
        let abar = r.g1::<B>(F::ProofPoint)?;
        let bbar = r.g1::<B>(F::ProofPoint)?;
        let d = r.g1::<B>(F::ProofPoint)?;
        let e_hat = r.scalar::<B>(F::ProofScalar)?;
        let r1_hat = r.scalar::<B>(F::ProofScalar)?;
        let r3_hat = r.scalar::<B>(F::ProofScalar)?;
        let f_hat = r.scalar::<B>(F::ProofScalar)?;
        let c = r.scalar::<B>(F::ProofScalar)?;
        r.finish()?;
        Ok(Presentation {
            report,
            epoch,
            pseudonym,
            abar,
            bbar,
            d,
            e_hat,
            r1_hat,
            r3_hat,
            f_hat,
            c,
        })
    }
}

/// The host's five random scalars, hedged: `HKDF(salt = entropy, ikm = A ‖ e, info = report)`.
fn host_randomness<B: Backend>(
    cred: &MeterCredential<B>,
    ph: &[u8],
    entropy: &[u8],
) -> ProofRandomness<B> {
    let mut ikm = [0u8; 80];
    ikm[..48].copy_from_slice(&B::g1_to_bytes(&cred.a));
    ikm[48..].copy_from_slice(&B::scalar_to_be(&cred.e));
    let hk = hkdf::Hkdf::<Sha256>::new(Some(entropy), &ikm);
    let mut okm = [0u8; 48 * 5];
    // 240 bytes is far below HKDF-SHA-256's limit of 8160: expand cannot fail.
    let _ = hk.expand_multi_info(&[b"BC-AMI/1 anon host nonces\0", ph], &mut okm);
    let s = |i: usize| {
        let mut c = [0u8; 48];
        c.copy_from_slice(&okm[48 * i..48 * i + 48]);
        crate::hash::scalar_from_okm::<B>(&c)
    };
    ProofRandomness {
        r1: s(0),
        r2: s(1),
        e_tilde: s(2),
        r1_tilde: s(3),
        r3_tilde: s(4),
    }
}

/// Verifies a batch under one issuer key. The per-reading challenges are checked one by one;
/// the pairing checks of the readings that pass are combined into one two-pairing product with
/// weights `ρ_i = hash_to_scalar(SHA-256(batch) ‖ i)`, derived from the batch's bytes alone, so
/// every endorser computes the same result. If the product fails, each reading's pairing is
/// checked on its own. The result for every reading equals its single verification (up to the
/// 2^-255 chance that a wrong reading survives a random combination).
pub fn verify_batch<B: Backend>(
    ipk: &IssuerPublicKey<B>,
    batch: &[Presentation<B>],
) -> Vec<Result<(), VerifyError>> {
    let mut results: Vec<Result<(), VerifyError>> =
        batch.iter().map(|p| p.check_challenge(ipk)).collect();

    let mut digest = Sha256::new();
    digest.update(b"BC-AMI/1 anon batch\0");
    digest.update((batch.len() as u64).to_be_bytes());
    for p in batch {
        digest.update(p.encode());
    }
    let digest = digest.finalize();

    let mut abars = Vec::with_capacity(batch.len());
    let mut bbars = Vec::with_capacity(batch.len());
    let mut weights = Vec::with_capacity(batch.len());
    for (i, (p, r)) in batch.iter().zip(&results).enumerate() {
        if r.is_ok() {
            abars.push(p.abar);
            bbars.push(p.bbar);
            weights.push(crate::hash::hash_to_scalar::<B>(
                &[&digest, &(i as u64).to_be_bytes()],
                &[API_ID, b"BATCH_WEIGHT_"],
            ));
        }
    }
    if abars.is_empty() {
        return results;
    }
    let a = B::msm(&abars, &weights);
    let b = B::msm(&bbars, &weights);
    if bbs::pairing_valid::<B>(&ipk.w_prepared, &ipk.minus_p2, &a, &b) {
        return results;
    }
    for (p, r) in batch.iter().zip(results.iter_mut()) {
        if r.is_ok() && !bbs::pairing_valid::<B>(&ipk.w_prepared, &ipk.minus_p2, &p.abar, &p.bbar) {
            *r = Err(VerifyError::Presentation);
        }
    }
    results
}

/// Test-only: the proof's response for `f` (negative controls).
#[cfg(test)]
impl<B: Backend> Presentation<B> {
    pub(crate) fn with_pseudonym(mut self, k: B::G1) -> Self {
        self.pseudonym = k;
        self
    }

    pub(crate) fn check_challenge_for_tests(&self, ipk: &IssuerPublicKey<B>) -> bool {
        self.check_challenge(ipk).is_ok()
    }
}

/// Equal when the encodings are.
impl<B: Backend> PartialEq for Presentation<B> {
    fn eq(&self, other: &Self) -> bool {
        self.encode() == other.encode()
    }
}
