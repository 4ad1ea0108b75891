//! Unit tests of the scheme on both backends: round trips, tampering, wrong keys, batches,
//! tracing, revocation, and the paper's two flaws as negative controls.

use alloc::vec::Vec;

use ff::Field;
use group::{Curve, Group};
use proptest::prelude::*;
use rand_core::{OsRng, RngCore};

use crate::backend::{Backend, Blst, Zk};
use crate::bbs;
use crate::error::{DecodeError, Error, Field as F, KeyHolderError, TraceError, VerifyError};
use crate::issuer::{Credential, IssuerPublicKey, IssuerSecretKey, JoinRequest, MeterCredential};
use crate::keyholder::{KeyHolder, SoftwareKeyHolder};
use crate::presentation::{Presentation, verify_batch};
use crate::report::{AnonReport, Period, ReportFlags};
use crate::revocation::LeakedSecrets;
use crate::trace::NonEqualityProof;

const HID: [u8; 32] = [0x11; 32];
const NONCE: [u8; 32] = [0x22; 32];

struct Meter<B: Backend> {
    holder: SoftwareKeyHolder<B>,
    request: JoinRequest<B>,
    cred: MeterCredential<B>,
}

fn issuer<B: Backend>(seed: u8, epoch: u32) -> IssuerSecretKey<B> {
    IssuerSecretKey::from_bytes(&[seed; 32], epoch).unwrap()
}

fn meter<B: Backend>(isk: &IssuerSecretKey<B>, seed: u8) -> Meter<B> {
    let mut holder = SoftwareKeyHolder::<B>::from_entropy(&[seed; 32]).unwrap();
    let ipk = isk.public_key();
    let request = JoinRequest::build(&mut holder, ipk, HID, NONCE, &[seed; 32]).unwrap();
    let received = JoinRequest::<B>::decode(&request.encode()).unwrap();
    let cred = isk.issue(&received, &NONCE).unwrap();
    let cred = Credential::<B>::decode(&cred.encode())
        .unwrap()
        .accept(ipk, &holder.commitment())
        .unwrap();
    Meter {
        holder,
        request,
        cred,
    }
}

fn report(start: u64, energy: u64) -> AnonReport {
    AnonReport {
        period: Period::new(start, 1800).unwrap(),
        energy_wh: energy,
        flags: ReportFlags::NONE,
    }
}

fn present<B: Backend>(
    m: &mut Meter<B>,
    ipk: &IssuerPublicKey<B>,
    r: &AnonReport,
) -> Presentation<B> {
    Presentation::build(&mut m.holder, &m.cred, ipk, r, &mut OsRng).unwrap()
}

/// The same bytes decoded for the other backend.
fn on_blst_key(ipk: &IssuerPublicKey<Zk>) -> IssuerPublicKey<Blst> {
    IssuerPublicKey::<Blst>::decode(&ipk.encode()).unwrap()
}

#[test]
fn issue_present_verify_on_both_backends() {
    let isk = issuer::<Zk>(7, 3);
    let ipk = isk.public_key();
    let mut m = meter(&isk, 1);
    let r = report(1_700_000_000_000, 412);
    let p = present(&mut m, ipk, &r);
    let wire = p.encode();
    assert_eq!(wire.len(), Presentation::<Zk>::ENCODED_LEN);
    assert_eq!(wire.len(), 380);
    let back = Presentation::<Zk>::decode(&wire).unwrap();
    assert_eq!(back, p);
    back.verify(ipk).unwrap();
    assert_eq!(back.report(), &r);
    assert_eq!(back.epoch(), 3);

    // blst verifies the same bytes, and encodes them identically.
    let blst_key = on_blst_key(ipk);
    let pb = Presentation::<Blst>::decode(&wire).unwrap();
    pb.verify(&blst_key).unwrap();
    assert_eq!(pb.encode(), wire);
    assert_eq!(blst_key.encode(), ipk.encode());
}

#[test]
fn the_meter_side_agrees_across_backends() {
    // Issuance and presentation on blst, verification on bls12_381: the same scheme.
    let isk = issuer::<Blst>(9, 1);
    let mut m = meter(&isk, 4);
    let p = present(&mut m, isk.public_key(), &report(5_000, 9));
    let zk_key = IssuerPublicKey::<Zk>::decode(&isk.public_key().encode()).unwrap();
    Presentation::<Zk>::decode(&p.encode())
        .unwrap()
        .verify(&zk_key)
        .unwrap();
    // Deterministic derivations agree byte for byte.
    let a = SoftwareKeyHolder::<Zk>::from_entropy(&[3; 32]).unwrap();
    let b = SoftwareKeyHolder::<Blst>::from_entropy(&[3; 32]).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(
        Zk::g1_to_bytes(&a.commitment()),
        Blst::g1_to_bytes(&b.commitment())
    );
    let zk_gens = crate::issuer::credential_generators::<Zk>();
    let bl_gens = crate::issuer::credential_generators::<Blst>();
    assert_eq!(Zk::g1_to_bytes(&zk_gens.q1), Blst::g1_to_bytes(&bl_gens.q1));
    for (x, y) in zk_gens.h.iter().zip(&bl_gens.h) {
        assert_eq!(Zk::g1_to_bytes(x), Blst::g1_to_bytes(y));
    }
}

#[test]
fn pseudonym_is_per_period() {
    let isk = issuer::<Blst>(7, 1);
    let ipk = isk.public_key();
    let mut m = meter(&isk, 1);
    let mut other = meter(&isk, 2);
    let a = present(&mut m, ipk, &report(1_000, 1));
    let b = present(&mut m, ipk, &report(1_000, 2));
    let c = present(&mut m, ipk, &report(1_800_000 + 1_000, 1));
    let d = present(&mut other, ipk, &report(1_000, 1));
    // Two different readings of one meter in one period: the same pseudonym (double report).
    assert_eq!(a.pseudonym(), b.pseudonym());
    // Another period, or another meter: a different one.
    assert_ne!(a.pseudonym(), c.pseudonym());
    assert_ne!(a.pseudonym(), d.pseudonym());
    // Nothing else repeats between two presentations of one meter.
    let (ea, eb) = (a.encode(), b.encode());
    let off = 2 + AnonReport::ENCODED_LEN + 4 + 48;
    for chunk in (off..ea.len()).step_by(32) {
        let end = (chunk + 32).min(ea.len());
        assert_ne!(ea[chunk..end], eb[chunk..end]);
    }
    for p in [&a, &b, &c, &d] {
        p.verify(ipk).unwrap();
    }
}

#[test]
fn every_bit_flip_is_rejected() {
    let isk = issuer::<Blst>(5, 2);
    let ipk = isk.public_key();
    let mut m = meter(&isk, 3);
    let wire = present(&mut m, ipk, &report(77_000, 123)).encode();
    let mut decoded_but_invalid = 0;
    for i in 0..wire.len() * 8 {
        let mut bad = wire.clone();
        bad[i / 8] ^= 1 << (i % 8);
        match Presentation::<Blst>::decode(&bad) {
            Err(_) => {}
            Ok(p) => {
                assert!(p.verify(ipk).is_err(), "bit {i} flipped and still valid");
                decoded_but_invalid += 1;
            }
        }
    }
    // Most flips of scalars, report and epoch decode, and must then fail verification.
    assert!(decoded_but_invalid > 1_000, "{decoded_but_invalid}");
}

#[test]
fn every_bit_flip_of_a_join_request_and_credential_is_rejected() {
    let isk = issuer::<Blst>(5, 2);
    let ipk = isk.public_key();
    let m = meter(&isk, 3);
    let wire = m.request.encode();
    for i in 0..wire.len() * 8 {
        let mut bad = wire.clone();
        bad[i / 8] ^= 1 << (i % 8);
        if let Ok(r) = JoinRequest::<Blst>::decode(&bad) {
            // A flipped nonce is caught by the nonce check, anything else by the proof.
            assert!(isk.issue(&r, &NONCE).is_err(), "request bit {i}");
        }
    }
    let wire = m.cred.credential().encode();
    for i in 0..wire.len() * 8 {
        let mut bad = wire.clone();
        bad[i / 8] ^= 1 << (i % 8);
        if let Ok(c) = Credential::<Blst>::decode(&bad) {
            assert!(
                c.accept(ipk, &m.holder.commitment()).is_err(),
                "credential bit {i}"
            );
        }
    }
}

/// A compressed point on the curve but outside the prime-order subgroup.
fn non_subgroup_point() -> [u8; 48] {
    for x in 1u8..=255 {
        let mut b = [0u8; 48];
        b[0] = 0x80;
        b[47] = x;
        let unchecked: Option<bls12_381::G1Affine> =
            bls12_381::G1Affine::from_compressed_unchecked(&b).into();
        let checked: Option<bls12_381::G1Affine> = bls12_381::G1Affine::from_compressed(&b).into();
        if unchecked.is_some() && checked.is_none() {
            return b;
        }
    }
    panic!("no non-subgroup point found");
}

const IDENTITY: [u8; 48] = {
    let mut b = [0u8; 48];
    b[0] = 0xc0;
    b
};

#[test]
fn identity_and_non_subgroup_points_are_rejected() {
    let bad_point = non_subgroup_point();
    let isk = issuer::<Zk>(5, 2);
    let ipk = isk.public_key();
    let mut m = meter(&isk, 3);
    let p = present(&mut m, ipk, &report(1, 1)).encode();
    let g1_offsets = [28usize, 76, 124, 172];
    for off in g1_offsets {
        for (patch, want_identity) in [(IDENTITY, true), (bad_point, false)] {
            let mut bad = p.clone();
            bad[off..off + 48].copy_from_slice(&patch);
            for err in [
                Presentation::<Zk>::decode(&bad).unwrap_err(),
                Presentation::<Blst>::decode(&bad).unwrap_err(),
            ] {
                match err {
                    DecodeError::IdentityPoint { .. } => assert!(want_identity),
                    DecodeError::InvalidPoint { .. } => assert!(!want_identity),
                    other => panic!("offset {off}: {other:?}"),
                }
            }
        }
    }
    // The join request's commitment, the credential's A, the trace proof's Cn.
    let mut req = m.request.encode();
    req[70..118].copy_from_slice(&IDENTITY);
    assert_eq!(
        JoinRequest::<Zk>::decode(&req),
        Err(DecodeError::IdentityPoint {
            field: F::Commitment
        })
    );
    req[70..118].copy_from_slice(&bad_point);
    assert_eq!(
        JoinRequest::<Zk>::decode(&req),
        Err(DecodeError::InvalidPoint {
            field: F::Commitment
        })
    );
    let mut cred = m.cred.credential().encode();
    cred[6..54].copy_from_slice(&IDENTITY);
    assert_eq!(
        Credential::<Zk>::decode(&cred),
        Err(DecodeError::IdentityPoint {
            field: F::CredentialA
        })
    );
    // The issuer key: the identity W.
    let mut key = ipk.encode();
    key[6] = 0xc0;
    for b in &mut key[7..] {
        *b = 0;
    }
    assert_eq!(
        IssuerPublicKey::<Zk>::decode(&key),
        Err(DecodeError::IdentityPoint {
            field: F::IssuerKey
        })
    );
    // A non-canonical scalar (the group order itself).
    let mut bad = p.clone();
    let order =
        hex::decode("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001").unwrap();
    bad[220..252].copy_from_slice(&order);
    assert_eq!(
        Presentation::<Zk>::decode(&bad),
        Err(DecodeError::NonCanonicalScalar {
            field: F::ProofScalar
        })
    );
}

#[test]
fn other_period_epoch_and_issuer_are_rejected() {
    let isk = issuer::<Blst>(5, 2);
    let ipk = isk.public_key();
    let mut m = meter(&isk, 3);
    let r = report(1_800_000, 10);
    let p = present(&mut m, ipk, &r);
    p.verify(ipk).unwrap();

    // The same proof bytes with another period (or energy) in the report.
    for other in [report(3_600_000, 10), report(1_800_000, 11)] {
        let mut wire = p.encode();
        wire[2..24].copy_from_slice(&other.encode());
        let moved = Presentation::<Blst>::decode(&wire).unwrap();
        assert_eq!(moved.verify(ipk), Err(VerifyError::Presentation));
    }
    // The next epoch's key (another key) and the same key's bytes claimed for another epoch.
    let next = issuer::<Blst>(6, 3);
    assert_eq!(
        p.verify(next.public_key()),
        Err(VerifyError::WrongEpoch {
            expected: 3,
            found: 2
        })
    );
    let same_w_other_epoch = IssuerSecretKey::<Blst>::from_bytes(&[5; 32], 3).unwrap();
    let mut wire = p.encode();
    wire[24..28].copy_from_slice(&3u32.to_be_bytes());
    let relabelled = Presentation::<Blst>::decode(&wire).unwrap();
    assert_eq!(
        relabelled.verify(same_w_other_epoch.public_key()),
        Err(VerifyError::Presentation)
    );
    // Another issuer of the same epoch.
    let other = issuer::<Blst>(8, 2);
    assert_eq!(p.verify(other.public_key()), Err(VerifyError::Presentation));
    // A credential of another issuer is refused by the meter.
    let m2 = meter(&other, 3);
    assert_eq!(
        m2.cred
            .credential()
            .accept(ipk, &m.holder.commitment())
            .unwrap_err(),
        VerifyError::Credential
    );
    // A credential built for another epoch cannot be presented under this key.
    let later = issuer::<Blst>(5, 9);
    let m3 = meter(&later, 3);
    assert!(matches!(
        Presentation::build(&mut m.holder, &m3.cred, ipk, &r, &mut OsRng),
        Err(Error::Verify(VerifyError::WrongEpoch { .. }))
    ));
}

#[test]
fn join_request_is_bound_to_hid_epoch_nonce_and_issuer() {
    let isk = issuer::<Blst>(5, 2);
    let ipk = isk.public_key();
    let m = meter(&isk, 3);
    m.request.verify(ipk, &NONCE).unwrap();
    assert_eq!(m.request.verify(ipk, &[0; 32]), Err(VerifyError::JoinProof));
    let mut wire = m.request.encode();
    wire[2] ^= 1; // the HID
    let other_hid = JoinRequest::<Blst>::decode(&wire).unwrap();
    assert_eq!(other_hid.verify(ipk, &NONCE), Err(VerifyError::JoinProof));
    let other_epoch = issuer::<Blst>(5, 3);
    assert!(matches!(
        m.request.verify(other_epoch.public_key(), &NONCE),
        Err(VerifyError::WrongEpoch { .. })
    ));
    let other_issuer = issuer::<Blst>(6, 2);
    assert_eq!(
        m.request.verify(other_issuer.public_key(), &NONCE),
        Err(VerifyError::JoinProof)
    );
    assert_eq!(m.request.hid(), &HID);
    assert_eq!(m.request.nonce(), &NONCE);
    assert_eq!(m.request.epoch(), 2);
}

#[test]
fn key_holder_answers_one_challenge_per_commitment() {
    let mut h = SoftwareKeyHolder::<Blst>::from_entropy(&[1; 32]).unwrap();
    assert_eq!(
        h.respond(&<Blst as pairing::Engine>::Fr::ONE),
        Err(KeyHolderError::NoCommitment)
    );
    h.commit(b"basename", b"report", &[0; 32]).unwrap();
    h.respond(&<Blst as pairing::Engine>::Fr::ONE).unwrap();
    assert_eq!(
        h.respond(&<Blst as pairing::Engine>::Fr::ONE),
        Err(KeyHolderError::NoCommitment)
    );
    assert!(SoftwareKeyHolder::<Blst>::from_entropy(&[1; 31]).is_err());
    assert!(SoftwareKeyHolder::<Blst>::from_bytes(&[0; 32]).is_err());
    let again = SoftwareKeyHolder::<Blst>::from_bytes(&h.to_bytes()).unwrap();
    assert_eq!(again.commitment(), h.commitment());
}

#[test]
fn hedged_nonces_differ_with_period_and_report_under_fixed_entropy() {
    // A stuck host RNG (the same entropy twice) must not repeat the key holder's nonce for two
    // periods: the responses would reveal f.
    let mut h = SoftwareKeyHolder::<Blst>::from_entropy(&[1; 32]).unwrap();
    let a = h.commit(b"period one", b"report", &[0; 32]).unwrap();
    let _ = h.respond(&<Blst as pairing::Engine>::Fr::ONE);
    let b = h.commit(b"period two", b"report", &[0; 32]).unwrap();
    assert_ne!(a.r_h, b.r_h);
    // Nor for two different readings of one period (a double report must not reveal f).
    let _ = h.respond(&<Blst as pairing::Engine>::Fr::ONE);
    let c = h
        .commit(b"period one", b"another report", &[0; 32])
        .unwrap();
    assert_ne!(a.r_h, c.r_h);
    assert_eq!(a.pseudonym, c.pseudonym);
}

#[test]
fn tracing_proves_innocence_and_catches_the_culprit() {
    let isk = issuer::<Blst>(5, 2);
    let ipk = isk.public_key();
    let mut culprit = meter(&isk, 3);
    let honest = meter(&isk, 4);
    let r = report(1_800_000, 10);
    let suspect = present(&mut culprit, ipk, &r);
    let k = suspect.pseudonym();
    let kp = Blst::g1_from_bytes(&k).unwrap();
    let ctx = b"trace case 17";

    let proof = honest
        .holder
        .prove_not_mine(r.period, &kp, ctx, &[9; 32])
        .unwrap();
    let proof = NonEqualityProof::<Blst>::decode(&proof.encode()).unwrap();
    proof
        .verify(ipk, &honest.request, r.period, &k, ctx)
        .unwrap();
    // Bound to the recorded commitment: it does not clear another meter.
    assert_eq!(
        proof.verify(ipk, &culprit.request, r.period, &k, ctx),
        Err(VerifyError::Trace)
    );
    // Nor another context, period or pseudonym.
    assert_eq!(
        proof.verify(ipk, &honest.request, r.period, &k, b"other"),
        Err(VerifyError::Trace)
    );
    let other_period = Period::new(0, 1800).unwrap();
    assert_eq!(
        proof.verify(ipk, &honest.request, other_period, &k, ctx),
        Err(VerifyError::Trace)
    );
    // The culprit cannot prove it.
    assert_eq!(
        culprit
            .holder
            .prove_not_mine(r.period, &kp, ctx, &[9; 32])
            .unwrap_err(),
        TraceError::SameSecret
    );
    // C = 1 proves nothing and is refused (and cannot even be decoded).
    let c_one = proof
        .clone()
        .with_cn(<Blst as pairing::Engine>::G1::identity());
    assert_eq!(
        c_one.verify(ipk, &honest.request, r.period, &k, ctx),
        Err(VerifyError::Trace)
    );
    assert!(matches!(
        NonEqualityProof::<Blst>::decode(&c_one.encode()),
        Err(DecodeError::IdentityPoint { .. })
    ));
    // Every bit flip of the proof is rejected.
    let wire = proof.encode();
    for i in 0..wire.len() * 8 {
        let mut bad = wire.clone();
        bad[i / 8] ^= 1 << (i % 8);
        if let Ok(p) = NonEqualityProof::<Blst>::decode(&bad) {
            assert!(
                p.verify(ipk, &honest.request, r.period, &k, ctx).is_err(),
                "bit {i}"
            );
        }
    }
}

#[test]
fn leaked_secrets_are_rejected() {
    let isk = issuer::<Blst>(5, 2);
    let ipk = isk.public_key();
    let mut leaked_meter = meter(&isk, 3);
    let mut other = meter(&isk, 4);
    let r = report(1_800_000, 10);
    let p = present(&mut leaked_meter, ipk, &r);
    let q = present(&mut other, ipk, &r);
    let mut list = LeakedSecrets::<Blst>::new();
    assert!(list.is_empty());
    list.check_presentation(&p).unwrap();
    list.insert(&leaked_meter.holder.to_bytes()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list.check_presentation(&p), Err(VerifyError::LeakedSecret));
    list.check_presentation(&q).unwrap();
    assert_eq!(
        list.check_join_request(ipk, &leaked_meter.request),
        Err(VerifyError::LeakedSecret)
    );
    list.check_join_request(ipk, &other.request).unwrap();
    assert!(list.insert(&[0xff; 32]).is_err());
}

#[test]
fn batch_of_valid_readings_verifies_and_is_deterministic() {
    let isk = issuer::<Blst>(5, 2);
    let ipk = isk.public_key();
    let mut m = meter(&isk, 3);
    let batch: Vec<_> = (0..8)
        .map(|i| present(&mut m, ipk, &report(i * 1_800_000, i)))
        .collect();
    assert!(verify_batch(ipk, &batch).iter().all(Result::is_ok));
    assert!(verify_batch::<Blst>(ipk, &[]).is_empty());
    // bls12_381 gets the same answer on the same bytes.
    let zk_key = IssuerPublicKey::<Zk>::decode(&ipk.encode()).unwrap();
    let zk_batch: Vec<_> = batch
        .iter()
        .map(|p| Presentation::<Zk>::decode(&p.encode()).unwrap())
        .collect();
    assert!(verify_batch(&zk_key, &zk_batch).iter().all(Result::is_ok));
}

/// A presentation whose challenge holds but whose pairing does not: `Abar, Bbar` of another
/// credential (the challenge is recomputed over them, so only a forger could do this; we build
/// it by proving with a credential that the issuer never signed).
fn pairing_only_invalid(
    m: &mut Meter<Blst>,
    ipk: &IssuerPublicKey<Blst>,
    r: &AnonReport,
) -> Presentation<Blst> {
    let fake = MeterCredential {
        a: m.cred.a + <Blst as pairing::Engine>::G1::generator(),
        ..m.cred
    };
    let fake = MeterCredential {
        bx: fake.b - fake.a * fake.e,
        ..fake
    };
    Presentation::build(&mut m.holder, &fake, ipk, r, &mut OsRng).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(start in any::<u64>(), len in 1u32.., energy in any::<u64>(), flags in 0u16..16, epoch in any::<u32>()) {
        let isk = issuer::<Blst>(5, epoch);
        let ipk = isk.public_key();
        let mut m = meter(&isk, 3);
        let r = AnonReport { period: Period::new(start, len).unwrap(), energy_wh: energy, flags: ReportFlags::from_bits(flags).unwrap() };
        let p = present(&mut m, ipk, &r);
        let back = Presentation::<Blst>::decode(&p.encode()).unwrap();
        prop_assert_eq!(&back, &p);
        prop_assert!(back.verify(ipk).is_ok());
        prop_assert_eq!(back.report(), &r);
        let key = IssuerPublicKey::<Blst>::decode(&ipk.encode()).unwrap();
        prop_assert!(key == *ipk);
        let req = JoinRequest::<Blst>::decode(&m.request.encode()).unwrap();
        prop_assert_eq!(req, m.request.clone());
    }

    #[test]
    fn batch_is_the_and_of_singles(kinds in proptest::collection::vec(0u8..4, 1..10), seed in any::<u64>()) {
        let isk = issuer::<Blst>(5, 2);
        let ipk = isk.public_key();
        let other = issuer::<Blst>(6, 2);
        let mut m = meter(&isk, 3);
        let mut stranger = meter(&other, 4);
        let batch: Vec<_> = kinds.iter().enumerate().map(|(i, k)| {
            let r = report(seed.wrapping_add(i as u64), i as u64);
            match k {
                0 | 1 => present(&mut m, ipk, &r),
                // Another issuer's credential: fails the challenge (other domain).
                2 => present(&mut stranger, other.public_key(), &r),
                // A forged credential: passes the challenge, fails the pairing.
                _ => pairing_only_invalid(&mut m, ipk, &r),
            }
        }).collect();
        let singles: Vec<_> = batch.iter().map(|p| p.verify(ipk)).collect();
        prop_assert_eq!(verify_batch(ipk, &batch), singles.clone());
        for (k, s) in kinds.iter().zip(&singles) {
            prop_assert_eq!(s.is_ok(), *k < 2);
        }
    }
}

#[test]
fn forged_credential_fails_only_the_pairing() {
    let isk = issuer::<Blst>(5, 2);
    let ipk = isk.public_key();
    let mut m = meter(&isk, 3);
    let p = pairing_only_invalid(&mut m, ipk, &report(1, 1));
    assert!(p.check_challenge_for_tests(ipk));
    assert_eq!(p.verify(ipk), Err(VerifyError::Presentation));
}

/// Negative control for the paper's basename `J = H2(TS ‖ msg)` (B1): two different readings
/// of one meter in one period get unrelated pseudonyms, so the double report goes unseen.
/// Ours (`J` from the period alone) links them: see `pseudonym_is_per_period`.
#[test]
fn paper_basename_misses_double_report() {
    let h = SoftwareKeyHolder::<Blst>::from_entropy(&[1; 32]).unwrap();
    let f = h.secret();
    let period = Period::new(1_800_000, 1800).unwrap();
    let paper_k = |reading: &AnonReport| {
        let mut basename = Vec::from(period.basename());
        basename.extend_from_slice(&reading.encode());
        Blst::hash_to_g1(&basename, b"paper H2") * f
    };
    let first = AnonReport {
        period,
        energy_wh: 100,
        flags: ReportFlags::NONE,
    };
    let second = AnonReport {
        energy_wh: 900,
        ..first
    };
    assert_ne!(
        paper_k(&first),
        paper_k(&second),
        "the paper's model would link them"
    );
    // Only identical messages link in the paper's model, which is what a replay produces (B2).
    assert_eq!(paper_k(&first), paper_k(&first));
    let ours = period.base::<Blst>() * f;
    assert_eq!(ours, period.base::<Blst>() * f);
}

/// Negative control for the paper's shared master key (B3): with one `s` for the DAA issuer and
/// the IBS PKG, an aggregator's IBS key `S_ID = g1^{1/(s + H1(ID))}` passes the paper's
/// credential check (eq. 13) on `F = 1`, i.e. forges a credential on `f = 0`. Ours: the issuer
/// key signs nothing else, `B` holds the domain and epoch, and `K = 1` cannot be decoded.
#[test]
fn paper_key_reuse_forgery() {
    let isk = issuer::<Blst>(5, 2);
    let ipk = isk.public_key();
    let s = isk.scalar();
    let h1_id = crate::hash::hash_to_scalar::<Blst>(&[b"DA-0007"], &[b"paper H1"]);
    let g1 = bbs::p1::<Blst>();
    let ibs_key = g1 * (s + h1_id).invert().unwrap();
    // Paper eq. 13 with F = 1: e(A, eta * g2^x) == e(g1 * F, g2).
    let f_point = <Blst as pairing::Engine>::G1::identity();
    assert!(
        bbs::signature_valid::<Blst>(&ipk.w(), &ibs_key, &h1_id, &(g1 + f_point)),
        "the paper's model accepts the IBS key as a credential"
    );
    // Ours refuses it as a credential for any commitment the meter could hold.
    let holder = SoftwareKeyHolder::<Blst>::from_entropy(&[1; 32]).unwrap();
    let forged = Credential::<Blst>::from_parts(ibs_key, h1_id, 2);
    assert_eq!(
        forged.accept(ipk, &holder.commitment()).unwrap_err(),
        VerifyError::Credential
    );
    // And the f = 0 pseudonym K = 1 never decodes.
    let mut m = meter(&isk, 3);
    let p = present(&mut m, ipk, &report(1, 1))
        .with_pseudonym(<Blst as pairing::Engine>::G1::identity());
    assert_eq!(
        Presentation::<Blst>::decode(&p.encode()),
        Err(DecodeError::IdentityPoint {
            field: F::Pseudonym
        })
    );
    let _ = RngCore::next_u32(&mut OsRng);
}

#[test]
fn issuer_keys_round_trip_and_generate() {
    let isk = IssuerSecretKey::<Zk>::generate(&mut OsRng, 4);
    let again = IssuerSecretKey::<Zk>::from_bytes(&isk.to_bytes(), 4).unwrap();
    assert!(again.public_key() == isk.public_key());
    assert!(IssuerSecretKey::<Zk>::from_bytes(&[0; 32], 4).is_err());
    assert!(IssuerSecretKey::<Zk>::from_bytes(&[0xff; 32], 4).is_err());
    let w = isk.public_key().w().to_affine();
    assert!(!bool::from(group::prime::PrimeCurveAffine::is_identity(&w)));
}

#[test]
fn windowed_multiplication_matches_the_crates() {
    use bls12_381::{G1Projective, Scalar};
    let mut points = Vec::new();
    let mut scalars = Vec::new();
    for i in 0..5u64 {
        points.push(G1Projective::generator() * Scalar::from(i * 7 + 3));
        scalars.push(Scalar::random(&mut OsRng));
    }
    points.push(G1Projective::identity());
    scalars.push(Scalar::random(&mut OsRng));
    points.push(G1Projective::generator());
    scalars.push(Scalar::ZERO);
    points.push(G1Projective::generator());
    scalars.push(-Scalar::ONE);
    let naive = points
        .iter()
        .zip(&scalars)
        .fold(G1Projective::identity(), |acc, (p, s)| acc + p * s);
    assert_eq!(Zk::msm(&points, &scalars), naive);
    for (p, s) in points.iter().zip(&scalars) {
        assert_eq!(Zk::mul(p, s), p * s);
    }
    assert_eq!(Zk::msm(&[], &[]), G1Projective::identity());
    let bytes = Zk::g1_batch_to_bytes(&points);
    for (p, b) in points.iter().zip(&bytes) {
        assert_eq!(&Zk::g1_to_bytes(p), b);
    }
}
