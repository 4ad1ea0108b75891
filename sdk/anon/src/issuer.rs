//! Issuer keys (one per credential epoch), blind issuance: the meter's join request, the
//! issuer's credential, the meter's check of it.

use alloc::vec::Vec;

use ff::Field;
use group::{Curve, Group};

use crate::backend::{Backend, Zk};
use crate::bbs::{self, Generators};
use crate::error::{DecodeError, Field as F, KeyHolderError, VerifyError};
use crate::keyholder::KeyHolder;
use crate::wire::{Reader, Writer};

/// This crate's BBS `api_id`: its own generators and hash domains, apart from every other use
/// of BBS and of the issuer's key.
pub const API_ID: &[u8] = b"BCAMI_ANON_V1_BLS12381G1_XMD:SHA-256_SSWU_RO_H2G_HM2S_";
/// The BBS header of every credential.
const CREDENTIAL_HEADER: &[u8] = b"BC-AMI/1 anon credential";
/// Message index of the meter secret `f` (committed blindly, never disclosed).
pub(crate) const INDEX_F: usize = 0;
/// Message index of the credential epoch (disclosed).
pub(crate) const INDEX_EPOCH: usize = 1;

/// Message kinds of this crate (byte 0 of every encoding).
pub(crate) mod kind {
    pub(crate) const ISSUER_KEY: u8 = 0x21;
    pub(crate) const JOIN_REQUEST: u8 = 0x22;
    pub(crate) const CREDENTIAL: u8 = 0x23;
    pub(crate) const PRESENTATION: u8 = 0x24;
    pub(crate) const TRACE_PROOF: u8 = 0x25;
}

/// `Q1, H_f, H_epoch` from the public seed of [`API_ID`].
pub(crate) fn credential_generators<B: Backend>() -> Generators<B> {
    Generators::create(2, API_ID)
}

/// The epoch as a BBS message scalar (`map_to_scalar` of its 4 big-endian bytes).
pub(crate) fn epoch_scalar<B: Backend>(epoch: u32) -> B::Fr {
    crate::hash::hash_to_scalar::<B>(
        &[&epoch.to_be_bytes()],
        &[API_ID, b"MAP_MSG_TO_SCALAR_AS_HASH_"],
    )
}

/// The issuer's secret key for one credential epoch. It signs credentials and nothing else.
pub struct IssuerSecretKey<B: Backend = Zk> {
    sk: B::Fr,
    public: IssuerPublicKey<B>,
}

impl<B: Backend> core::fmt::Debug for IssuerSecretKey<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IssuerSecretKey")
            .field("epoch", &self.public.epoch)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> IssuerSecretKey<B> {
    /// A fresh key for `epoch`.
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore, epoch: u32) -> Self {
        loop {
            let sk = B::random_scalar(rng);
            if let Ok(key) = Self::from_bytes(&B::scalar_to_be(&sk), epoch) {
                return key;
            }
        }
    }

    /// The key from its 32-byte big-endian encoding.
    pub fn from_bytes(bytes: &[u8; 32], epoch: u32) -> Result<Self, DecodeError> {
        let sk =
            B::scalar_from_be(bytes).ok_or(DecodeError::NonCanonicalScalar { field: F::Secret })?;
        if bool::from(sk.is_zero()) {
            return Err(DecodeError::NonCanonicalScalar { field: F::Secret });
        }
        let public = IssuerPublicKey::from_parts(B::G2::generator() * sk, epoch);
        Ok(IssuerSecretKey { sk, public })
    }

    /// The 32-byte big-endian encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        B::scalar_to_be(&self.sk)
    }

    /// The public key.
    pub fn public_key(&self) -> &IssuerPublicKey<B> {
        &self.public
    }

    /// Checks the join request (its proof of knowledge, bound to its HID, this key's epoch and
    /// the ledger nonce the caller expects) and signs: `A = (B + C)·1/(sk + e)` with
    /// `B = P1 + Q1·domain + H_epoch·epoch` and the meter's commitment `C = H_f·f`.
    pub fn issue(
        &self,
        request: &JoinRequest<B>,
        expected_nonce: &[u8; 32],
    ) -> Result<Credential<B>, VerifyError> {
        request.verify(&self.public, expected_nonce)?;
        let pk = &self.public;
        let e = bbs::signature_e::<B>(
            &self.sk,
            &[pk.m_epoch],
            &B::g1_to_bytes(&request.commitment),
            &pk.domain,
            API_ID,
        );
        let b = pk.bv + request.commitment;
        let a = bbs::sign_b::<B>(&self.sk, &e, &b).ok_or(VerifyError::Credential)?;
        Ok(Credential {
            a,
            e,
            epoch: pk.epoch,
        })
    }
}

/// The issuer's public key `W = P2·sk` for one credential epoch, with what verifiers
/// precompute from it.
#[derive(Clone, Debug)]
pub struct IssuerPublicKey<B: Backend = Zk> {
    w: B::G2,
    epoch: u32,
    pub(crate) gens: Generators<B>,
    pub(crate) domain: B::Fr,
    pub(crate) m_epoch: B::Fr,
    /// `P1 + Q1·domain + H_epoch·epoch`: `B` without the meter's commitment.
    pub(crate) bv: B::G1,
    pub(crate) w_prepared: B::G2Prepared,
    pub(crate) minus_p2: B::G2Prepared,
}

impl<B: Backend> PartialEq for IssuerPublicKey<B> {
    fn eq(&self, other: &Self) -> bool {
        self.w == other.w && self.epoch == other.epoch
    }
}

impl<B: Backend> IssuerPublicKey<B> {
    /// Encoded length: kind, version, epoch 4, `W` 96.
    pub const ENCODED_LEN: usize = 2 + 4 + 96;

    fn from_parts(w: B::G2, epoch: u32) -> Self {
        let gens = credential_generators::<B>();
        let domain = bbs::domain::<B>(&w, &gens, CREDENTIAL_HEADER, API_ID);
        let m_epoch = epoch_scalar::<B>(epoch);
        let bv = bbs::b_point::<B>(&gens, &domain, &[(INDEX_EPOCH, m_epoch)]);
        IssuerPublicKey {
            w,
            epoch,
            gens,
            domain,
            m_epoch,
            bv,
            w_prepared: w.to_affine().into(),
            minus_p2: bbs::minus_p2::<B>(),
        }
    }

    /// The credential epoch this key signs for.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(kind::ISSUER_KEY, Self::ENCODED_LEN);
        w.bytes(&self.epoch.to_be_bytes())
            .bytes(&B::g2_to_bytes(&self.w));
        w.0
    }

    /// Decodes and checks `W` (in G2, not the identity).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, kind::ISSUER_KEY)?;
        let epoch = r.u32()?;
        let w = r.g2::<B>(F::IssuerKey)?;
        r.finish()?;
        Ok(Self::from_parts(w, epoch))
    }
}

/// `c = hash_to_scalar(C ‖ T ‖ context)` of the join proof.
pub(crate) fn join_challenge<B: Backend>(c: &B::G1, t: &B::G1, context: &[u8]) -> B::Fr {
    crate::hash::hash_to_scalar::<B>(
        &[&B::g1_to_bytes(c), &B::g1_to_bytes(t), context],
        &[API_ID, b"JOIN_PROOF_"],
    )
}

/// The meter's join request: the blind commitment `C = H_f·f` to its secret and a proof of
/// knowledge of `f` bound to the meter's HID, the credential epoch, the ledger's nonce and the
/// issuer key.
#[derive(Clone, Debug)]
pub struct JoinRequest<B: Backend = Zk> {
    hid: [u8; 32],
    epoch: u32,
    nonce: [u8; 32],
    commitment: B::G1,
    c: B::Fr,
    s: B::Fr,
}

fn join_context<B: Backend>(
    ipk: &IssuerPublicKey<B>,
    hid: &[u8; 32],
    epoch: u32,
    nonce: &[u8; 32],
) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(96 + 32 + 4 + 32);
    ctx.extend_from_slice(&B::g2_to_bytes(&ipk.w));
    ctx.extend_from_slice(hid);
    ctx.extend_from_slice(&epoch.to_be_bytes());
    ctx.extend_from_slice(nonce);
    ctx
}

impl<B: Backend> JoinRequest<B> {
    /// Encoded length: kind, version, HID 32, epoch 4, nonce 32, `C` 48, `c` 32, `s` 32.
    pub const ENCODED_LEN: usize = 2 + 32 + 4 + 32 + 48 + 32 + 32;

    /// Builds the request with the key holder, for the issuer key's epoch.
    pub fn build(
        key_holder: &mut impl KeyHolder<B>,
        ipk: &IssuerPublicKey<B>,
        hid: [u8; 32],
        nonce: [u8; 32],
        entropy: &[u8; 32],
    ) -> Result<Self, KeyHolderError> {
        let ctx = join_context(ipk, &hid, ipk.epoch, &nonce);
        let (c, s) = key_holder.prove_join(&ctx, entropy)?;
        Ok(JoinRequest {
            hid,
            epoch: ipk.epoch,
            nonce,
            commitment: key_holder.commitment(),
            c,
            s,
        })
    }

    /// Checks the proof of knowledge, the epoch and the nonce.
    pub fn verify(
        &self,
        ipk: &IssuerPublicKey<B>,
        expected_nonce: &[u8; 32],
    ) -> Result<(), VerifyError> {
        if self.epoch != ipk.epoch {
            return Err(VerifyError::WrongEpoch {
                expected: ipk.epoch,
                found: self.epoch,
            });
        }
        if &self.nonce != expected_nonce {
            return Err(VerifyError::JoinProof);
        }
        let h_f = ipk.gens.h[INDEX_F];
        let t = B::msm(&[h_f, self.commitment], &[self.s, -self.c]);
        let ctx = join_context(ipk, &self.hid, self.epoch, &self.nonce);
        if join_challenge::<B>(&self.commitment, &t, &ctx) != self.c {
            return Err(VerifyError::JoinProof);
        }
        Ok(())
    }

    /// The meter's HID.
    pub fn hid(&self) -> &[u8; 32] {
        &self.hid
    }

    /// The credential epoch asked for.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The ledger nonce the proof is bound to.
    pub fn nonce(&self) -> &[u8; 32] {
        &self.nonce
    }

    /// The commitment `C = H_f·f`, compressed: the issuer records it for tracing.
    pub fn commitment(&self) -> [u8; 48] {
        B::g1_to_bytes(&self.commitment)
    }

    /// The ledger's check of a posted credential against this request (the paper's eq. 13 on
    /// the recorded commitment): `e(A, W + P2·e) = e(B, P2)` with `B` built from this request's
    /// `C`, and the credential's epoch the key's. Catches a wrong or mismatched issuance before
    /// the meter fetches it.
    pub fn check_credential(
        &self,
        ipk: &IssuerPublicKey<B>,
        credential: &Credential<B>,
    ) -> Result<(), VerifyError> {
        credential.accept(ipk, &self.commitment).map(|_| ())
    }

    pub(crate) fn commitment_point(&self) -> &B::G1 {
        &self.commitment
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(kind::JOIN_REQUEST, Self::ENCODED_LEN);
        w.bytes(&self.hid)
            .bytes(&self.epoch.to_be_bytes())
            .bytes(&self.nonce)
            .g1::<B>(&self.commitment)
            .scalar::<B>(&self.c)
            .scalar::<B>(&self.s);
        w.0
    }

    /// Decodes (point checks included; the proof is checked by [`JoinRequest::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, kind::JOIN_REQUEST)?;
        let hid = r.array()?;
        let epoch = r.u32()?;
        let nonce = r.array()?;
        let commitment = r.g1::<B>(F::Commitment)?;
        let c = r.scalar::<B>(F::JoinProof)?;
        let s = r.scalar::<B>(F::JoinProof)?;
        r.finish()?;
        Ok(JoinRequest {
            hid,
            epoch,
            nonce,
            commitment,
            c,
            s,
        })
    }
}

/// The issuer's credential `(A, e)` for one epoch: a BBS signature on `(f, epoch)`.
#[derive(Clone, Copy, Debug)]
pub struct Credential<B: Backend = Zk> {
    a: B::G1,
    e: B::Fr,
    epoch: u32,
}

impl<B: Backend> Credential<B> {
    /// Encoded length: kind, version, epoch 4, `A` 48, `e` 32.
    pub const ENCODED_LEN: usize = 2 + 4 + 48 + 32;

    /// The epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(kind::CREDENTIAL, Self::ENCODED_LEN);
        w.bytes(&self.epoch.to_be_bytes())
            .g1::<B>(&self.a)
            .scalar::<B>(&self.e);
        w.0
    }

    /// Decodes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, kind::CREDENTIAL)?;
        let epoch = r.u32()?;
        let a = r.g1::<B>(F::CredentialA)?;
        let e = r.scalar::<B>(F::CredentialE)?;
        r.finish()?;
        Ok(Credential { a, e, epoch })
    }

    /// The meter's check (the paper's eq. 13): `e(A, W + P2·e) = e(B, P2)` for its own
    /// commitment. Returns what the host keeps for presentations.
    pub fn accept(
        &self,
        ipk: &IssuerPublicKey<B>,
        commitment: &B::G1,
    ) -> Result<MeterCredential<B>, VerifyError> {
        if self.epoch != ipk.epoch {
            return Err(VerifyError::WrongEpoch {
                expected: ipk.epoch,
                found: self.epoch,
            });
        }
        let b = ipk.bv + commitment;
        if !bbs::signature_valid::<B>(&ipk.w, &self.a, &self.e, &b) {
            return Err(VerifyError::Credential);
        }
        Ok(MeterCredential {
            a: self.a,
            e: self.e,
            b,
            bx: b - self.a * self.e,
            epoch: self.epoch,
        })
    }
}

/// A checked credential as the host keeps it: `A`, `e`, and the precomputed `B` and `B - A·e`.
#[derive(Clone, Copy, Debug)]
pub struct MeterCredential<B: Backend = Zk> {
    pub(crate) a: B::G1,
    pub(crate) e: B::Fr,
    pub(crate) b: B::G1,
    pub(crate) bx: B::G1,
    pub(crate) epoch: u32,
}

impl<B: Backend> MeterCredential<B> {
    /// The epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The credential as the issuer sent it.
    pub fn credential(&self) -> Credential<B> {
        Credential {
            a: self.a,
            e: self.e,
            epoch: self.epoch,
        }
    }
}

/// Test-only: a credential from raw parts (negative controls).
#[cfg(test)]
impl<B: Backend> Credential<B> {
    pub(crate) fn from_parts(a: B::G1, e: B::Fr, epoch: u32) -> Self {
        Credential { a, e, epoch }
    }
}

/// Test-only: raw access to the issuer key (the paper's shared-key negative control).
#[cfg(test)]
impl<B: Backend> IssuerSecretKey<B> {
    pub(crate) fn scalar(&self) -> B::Fr {
        self.sk
    }
}

#[cfg(test)]
impl<B: Backend> IssuerPublicKey<B> {
    pub(crate) fn w(&self) -> B::G2 {
        self.w
    }
}

/// Equal when the encodings are.
impl<B: Backend> PartialEq for JoinRequest<B> {
    fn eq(&self, other: &Self) -> bool {
        self.encode() == other.encode()
    }
}

/// Equal when the encodings are.
impl<B: Backend> PartialEq for Credential<B> {
    fn eq(&self, other: &Self) -> bool {
        self.encode() == other.encode()
    }
}
