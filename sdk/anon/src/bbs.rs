//! The BBS core of draft-irtf-cfrg-bbs-signatures-10 (§3.4 generators, §4 hashing, §3.6 core
//! operations), generic over the backend and the `api_id`, with one extension: the Schnorr
//! commitment and response for a pseudonym `K = J·m_f` sharing the response of message `m_f`
//! (the shape of draft-irtf-cfrg-bbs-per-verifier-linkability). Without the pseudonym the
//! functions are the draft's, and the unit tests replay the draft's fixtures through them.

use alloc::vec::Vec;

use ff::Field;
use group::Group;

use crate::backend::Backend;
use crate::hash::{expand_message_xmd, hash_to_scalar};

/// `P1` of the BLS12-381-SHA-256 ciphersuite (draft-irtf-cfrg-bbs-signatures-10 §7.2.2).
pub(crate) const P1: [u8; 48] = [
    0xa8, 0xce, 0x25, 0x61, 0x02, 0x84, 0x08, 0x21, 0xa3, 0xe9, 0x4e, 0xa9, 0x02, 0x5e, 0x46, 0x62,
    0xb2, 0x05, 0x76, 0x2f, 0x97, 0x76, 0xb3, 0xa7, 0x66, 0xc8, 0x72, 0xb9, 0x48, 0xf1, 0xfd, 0x22,
    0x5e, 0x7c, 0x59, 0x69, 0x85, 0x88, 0xe7, 0x0d, 0x11, 0x40, 0x6d, 0x16, 0x1b, 0x4e, 0x28, 0xc9,
];

/// `P1` as a point. The constant is a valid subgroup point (checked by the unit tests).
pub(crate) fn p1<B: Backend>() -> B::G1 {
    B::g1_from_bytes(&P1).unwrap_or_else(B::G1::generator)
}

/// `Q1` and the message generators `H_1..H_L`, from the public seed of `api_id`.
#[derive(Clone, Debug)]
pub(crate) struct Generators<B: Backend> {
    pub(crate) q1: B::G1,
    pub(crate) h: Vec<B::G1>,
}

impl<B: Backend> Generators<B> {
    /// `create_generators(L + 1, api_id)` (§4.1.1).
    pub(crate) fn create(messages: usize, api_id: &[u8]) -> Self {
        let cat = |suffix: &[u8]| -> Vec<u8> { [api_id, suffix].concat() };
        let seed_dst = cat(b"SIG_GENERATOR_SEED_");
        let generator_dst = cat(b"SIG_GENERATOR_DST_");
        let generator_seed = cat(b"MESSAGE_GENERATOR_SEED");
        let mut v = [0u8; 48];
        expand_message_xmd(&[&generator_seed], &seed_dst, &mut v);
        let mut points = Vec::with_capacity(messages + 1);
        for i in 1..=(messages as u64 + 1) {
            let prev = v;
            expand_message_xmd(&[&prev, &i.to_be_bytes()], &seed_dst, &mut v);
            points.push(B::hash_to_g1(&v, &generator_dst));
        }
        let q1 = points.remove(0);
        Generators { q1, h: points }
    }
}

/// `api_id || "H2S_"`.
pub(crate) fn h2s<B: Backend>(msg: &[u8], api_id: &[u8]) -> B::Fr {
    hash_to_scalar::<B>(&[msg], &[api_id, b"H2S_"])
}

/// `calculate_domain` (§4.2.3).
pub(crate) fn domain<B: Backend>(
    pk: &B::G2,
    gens: &Generators<B>,
    header: &[u8],
    api_id: &[u8],
) -> B::Fr {
    let mut t = Vec::with_capacity(96 + 8 + 48 * (gens.h.len() + 1) + api_id.len() + 8);
    t.extend_from_slice(&B::g2_to_bytes(pk));
    t.extend_from_slice(&(gens.h.len() as u64).to_be_bytes());
    t.extend_from_slice(&B::g1_to_bytes(&gens.q1));
    for h in &gens.h {
        t.extend_from_slice(&B::g1_to_bytes(h));
    }
    t.extend_from_slice(api_id);
    t.extend_from_slice(&(header.len() as u64).to_be_bytes());
    t.extend_from_slice(header);
    h2s::<B>(&t, api_id)
}

/// `B = P1 + Q1·domain + Σ H_i·msg_i` over the given `(generator, message)` pairs.
pub(crate) fn b_point<B: Backend>(
    gens: &Generators<B>,
    domain: &B::Fr,
    messages: &[(usize, B::Fr)],
) -> B::G1 {
    let mut points = Vec::with_capacity(messages.len() + 1);
    let mut scalars = Vec::with_capacity(messages.len() + 1);
    points.push(gens.q1);
    scalars.push(*domain);
    for (i, m) in messages {
        points.push(gens.h[*i]);
        scalars.push(*m);
    }
    p1::<B>() + B::msm(&points, &scalars)
}

/// The signature's `e` (§3.6.1 CoreSign): `hash_to_scalar(SK ‖ msg_1..msg_L ‖ domain)`, with
/// `extra` (a blind commitment's bytes) after the messages, as the blind draft does.
pub(crate) fn signature_e<B: Backend>(
    sk: &B::Fr,
    messages: &[B::Fr],
    extra: &[u8],
    domain: &B::Fr,
    api_id: &[u8],
) -> B::Fr {
    let mut t = Vec::with_capacity(32 * (messages.len() + 2) + extra.len());
    t.extend_from_slice(&B::scalar_to_be(sk));
    for m in messages {
        t.extend_from_slice(&B::scalar_to_be(m));
    }
    t.extend_from_slice(extra);
    t.extend_from_slice(&B::scalar_to_be(domain));
    h2s::<B>(&t, api_id)
}

/// `A = B·1/(SK + e)`; `None` only if `SK + e = 0` (probability 2^-255).
pub(crate) fn sign_b<B: Backend>(sk: &B::Fr, e: &B::Fr, b: &B::G1) -> Option<B::G1> {
    Option::<B::Fr>::from((*sk + e).invert()).map(|inv| *b * inv)
}

/// `e(A, W + P2·e) == e(B, P2)`.
pub(crate) fn signature_valid<B: Backend>(w: &B::G2, a: &B::G1, e: &B::Fr, b: &B::G1) -> bool {
    use group::Curve;
    let lhs: B::G2Prepared = (*w + B::G2::generator() * e).to_affine().into();
    let rhs: B::G2Prepared = (-B::G2::generator()).to_affine().into();
    B::pairing_product_is_one(a, &lhs, b, &rhs)
}

/// The prover's random scalars (§3.6.3): `r1, r2, e~, r1~, r3~`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProofRandomness<B: Backend> {
    pub(crate) r1: B::Fr,
    pub(crate) r2: B::Fr,
    pub(crate) e_tilde: B::Fr,
    pub(crate) r1_tilde: B::Fr,
    pub(crate) r3_tilde: B::Fr,
}

/// `ProofInit`'s output.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProofInit<B: Backend> {
    pub(crate) abar: B::G1,
    pub(crate) bbar: B::G1,
    pub(crate) d: B::G1,
    pub(crate) t1: B::G1,
    pub(crate) t2: B::G1,
}

/// `ProofInit` (§3.6.3) with `bx = B - A·e` precomputed (then `Bbar = D·r1 - Abar·e = bx·r1·r2`)
/// and the undisclosed messages' part of `T2` (`Σ H_j·m~_j`) supplied by the caller, so that a
/// key holder can contribute the part for its secret.
pub(crate) fn proof_init<B: Backend>(
    a: &B::G1,
    b: &B::G1,
    bx: &B::G1,
    r: &ProofRandomness<B>,
    t2_undisclosed: &B::G1,
) -> ProofInit<B> {
    let r1r2 = r.r1 * r.r2;
    let d = B::mul(b, &r.r2);
    let abar = B::mul(a, &r1r2);
    let bbar = B::mul(bx, &r1r2);
    let t1 = B::msm(&[abar, d], &[r.e_tilde, r.r1_tilde]);
    let t2 = B::mul(&d, &r.r3_tilde) + t2_undisclosed;
    ProofInit {
        abar,
        bbar,
        d,
        t1,
        t2,
    }
}

/// `ProofChallengeCalculate` (§3.6.5); with a pseudonym, `K ‖ T_K` follow `T2`.
pub(crate) fn challenge<B: Backend>(
    init: &ProofInit<B>,
    disclosed: &[(usize, B::Fr)],
    nym: Option<(&B::G1, &B::G1)>,
    domain: &B::Fr,
    ph: &[u8],
    api_id: &[u8],
) -> B::Fr {
    let mut t = Vec::with_capacity(8 + 40 * disclosed.len() + 48 * 7 + 32 + 8 + ph.len());
    t.extend_from_slice(&(disclosed.len() as u64).to_be_bytes());
    for (i, m) in disclosed {
        t.extend_from_slice(&(*i as u64).to_be_bytes());
        t.extend_from_slice(&B::scalar_to_be(m));
    }
    let mut points = Vec::with_capacity(7);
    points.extend_from_slice(&[init.abar, init.bbar, init.d, init.t1, init.t2]);
    if let Some((k, tk)) = nym {
        points.push(*k);
        points.push(*tk);
    }
    for bytes in B::g1_batch_to_bytes(&points) {
        t.extend_from_slice(&bytes);
    }
    t.extend_from_slice(&B::scalar_to_be(domain));
    t.extend_from_slice(&(ph.len() as u64).to_be_bytes());
    t.extend_from_slice(ph);
    h2s::<B>(&t, api_id)
}

/// The responses of `ProofFinalize` (§3.6.4) other than the undisclosed messages'.
pub(crate) fn finalize<B: Backend>(
    r: &ProofRandomness<B>,
    e: &B::Fr,
    c: &B::Fr,
) -> Option<(B::Fr, B::Fr, B::Fr)> {
    let r3: B::Fr = Option::from(r.r2.invert())?;
    Some((
        r.e_tilde + *e * c,
        r.r1_tilde - r.r1 * c,
        r.r3_tilde - r3 * c,
    ))
}

/// A proof's group elements and scalars, as `ProofVerify` (§3.6.6) takes them.
#[derive(Clone, Debug)]
pub(crate) struct Proof<B: Backend> {
    pub(crate) abar: B::G1,
    pub(crate) bbar: B::G1,
    pub(crate) d: B::G1,
    pub(crate) e_hat: B::Fr,
    pub(crate) r1_hat: B::Fr,
    pub(crate) r3_hat: B::Fr,
    /// `(generator index, response)` of each undisclosed message.
    pub(crate) m_hat: Vec<(usize, B::Fr)>,
    pub(crate) c: B::Fr,
}

/// `ProofVerifyInit` (§3.6.6) plus the challenge comparison; returns whether the challenge
/// matches. The pairing check is separate so that a batch can share it. `bv` is
/// `P1 + Q1·domain + Σ H_i·msg_i` over the disclosed messages. With a pseudonym `(J, K)` the
/// response of message `nym_index` also answers `K = J·m`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn challenge_valid<B: Backend>(
    proof: &Proof<B>,
    gens: &Generators<B>,
    bv: &B::G1,
    disclosed: &[(usize, B::Fr)],
    nym: Option<(&B::G1, &B::G1, usize)>,
    domain: &B::Fr,
    ph: &[u8],
    api_id: &[u8],
) -> bool {
    let t1 = B::msm(
        &[proof.bbar, proof.abar, proof.d],
        &[proof.c, proof.e_hat, proof.r1_hat],
    );
    let mut points = Vec::with_capacity(2 + proof.m_hat.len());
    let mut scalars = Vec::with_capacity(2 + proof.m_hat.len());
    points.push(*bv);
    scalars.push(proof.c);
    points.push(proof.d);
    scalars.push(proof.r3_hat);
    for (j, m) in &proof.m_hat {
        let Some(h) = gens.h.get(*j) else {
            return false;
        };
        points.push(*h);
        scalars.push(*m);
    }
    let t2 = B::msm(&points, &scalars);
    let init = ProofInit {
        abar: proof.abar,
        bbar: proof.bbar,
        d: proof.d,
        t1,
        t2,
    };
    let c = match nym {
        None => challenge::<B>(&init, disclosed, None, domain, ph, api_id),
        Some((j, k, index)) => {
            let Some((_, m)) = proof.m_hat.iter().find(|(i, _)| *i == index) else {
                return false;
            };
            let tk = B::msm(&[*j, *k], &[*m, -proof.c]);
            challenge::<B>(&init, disclosed, Some((k, &tk)), domain, ph, api_id)
        }
    };
    c == proof.c
}

/// `e(Abar, W) · e(Bbar, -P2) == 1`.
pub(crate) fn pairing_valid<B: Backend>(
    w: &B::G2Prepared,
    minus_p2: &B::G2Prepared,
    abar: &B::G1,
    bbar: &B::G1,
) -> bool {
    B::pairing_product_is_one(abar, w, bbar, minus_p2)
}

/// `-P2`, prepared.
pub(crate) fn minus_p2<B: Backend>() -> B::G2Prepared {
    use group::Curve;
    (-B::G2::generator()).to_affine().into()
}
