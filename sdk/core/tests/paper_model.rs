//! Negative control: a test-only model of the multicast-key paper's end-to-end key agreement
//! (`seeds/blockchain-multicast-key-management.txt`, "End-to-End Key Establishment"; equations
//! reconstructed in `reference/seed-analysis.md` §1.2(a)), in which the impersonation test that
//! our handshake passes *succeeds*: anyone who knows a meter's ID gets a session key with the
//! head-end as that meter. This is why `bcami_sdk::session` deviates from the paper.
//!
//! Modelling choices (none changes the outcome):
//! - The paper's "large prime order" group is secp256k1 here; the attack never solves a discrete
//!   logarithm, so the group does not matter.
//! - The head-end's RSA signature is modelled abstractly by an ECDSA signature under the
//!   head-end's key (any secure signature scheme): the attacker never forges it, it only checks
//!   it, exactly as a meter would. No RSA code is needed to show the flaw.
//! - `H` is SHA-256; concatenation order as reconstructed.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use bcami_sdk::rand_core::{CryptoRng, Error as RngError, RngCore};
use bcami_sdk::session::{HeadEnd, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus};
use bcami_sdk::{HandshakeError, HeadEndSecretKey, Hid, MeterSecretKey, Timestamp};
use k256::ecdsa::signature::{Signer, Verifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{NonZeroScalar, ProjectivePoint};
use sha2::{Digest, Sha256};

fn h(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

fn point_bytes(point: &ProjectivePoint) -> Vec<u8> {
    point.to_affine().to_encoded_point(true).as_bytes().to_vec()
}

fn scalar(seed: u8) -> NonZeroScalar {
    NonZeroScalar::try_from(&h(&[b"paper model scalar", &[seed]])[..]).unwrap()
}

/// Message 1: `(ID_i, Y_i, h_1 = H(ID_i ‖ Y_i))`.
struct Message1 {
    id: Vec<u8>,
    y_i: ProjectivePoint,
    h1: [u8; 32],
}

/// Message 2: `(ID_A, Y_A, h_2, σ = Sig_A(h_2))`.
struct Message2 {
    id_a: Vec<u8>,
    y_a: ProjectivePoint,
    h2: [u8; 32],
    sigma: Signature,
}

/// The paper's head-end. Its only long-term secret is its signing key; meters have none.
struct PaperHeadEnd {
    id: Vec<u8>,
    key: SigningKey,
}

struct PaperHeadEndPending {
    meter_id: Vec<u8>,
    session_key: [u8; 32],
}

impl PaperHeadEnd {
    /// Step 2: "verifies the received h_1", answers with a signed h_2.
    fn respond(
        &self,
        m1: &Message1,
        x_a: NonZeroScalar,
    ) -> Option<(PaperHeadEndPending, Message2)> {
        if h(&[&m1.id, &point_bytes(&m1.y_i)]) != m1.h1 {
            return None;
        }
        let y_a = ProjectivePoint::GENERATOR * *x_a;
        let k = point_bytes(&(m1.y_i * *x_a));
        let h2 = h(&[
            &k,
            &self.id,
            &point_bytes(&y_a),
            &m1.id,
            &point_bytes(&m1.y_i),
        ]);
        let sigma: Signature = self.key.sign(&h2);
        let session_key = h(&[
            &k,
            &m1.id,
            &self.id,
            &point_bytes(&m1.y_i),
            &point_bytes(&y_a),
        ]);
        Some((
            PaperHeadEndPending {
                meter_id: m1.id.clone(),
                session_key,
            },
            Message2 {
                id_a: self.id.clone(),
                y_a,
                h2,
                sigma,
            },
        ))
    }
}

impl PaperHeadEndPending {
    /// Step 4: "if h_3' = h_3, it authenticates the SM". Returns the authenticated meter ID and
    /// the session key.
    fn finish(self, h3: [u8; 32]) -> Option<(Vec<u8>, [u8; 32])> {
        (h(&[&self.session_key, &self.meter_id]) == h3).then_some((self.meter_id, self.session_key))
    }
}

/// The paper's meter side, run by anyone: it needs the meter's ID and the head-end's public key,
/// both public, and nothing else.
fn paper_meter(
    id: &[u8],
    head_end_key: &VerifyingKey,
    x_i: NonZeroScalar,
    respond: impl FnOnce(&Message1) -> Option<Message2>,
) -> Option<([u8; 32], [u8; 32])> {
    let y_i = ProjectivePoint::GENERATOR * *x_i;
    let m1 = Message1 {
        id: id.to_vec(),
        y_i,
        h1: h(&[id, &point_bytes(&y_i)]),
    };
    let m2 = respond(&m1)?;
    head_end_key.verify(&m2.h2, &m2.sigma).ok()?;
    let k = point_bytes(&(m2.y_a * *x_i));
    let h2 = h(&[&k, &m2.id_a, &point_bytes(&m2.y_a), id, &point_bytes(&y_i)]);
    if h2 != m2.h2 {
        return None;
    }
    let session_key = h(&[&k, id, &m2.id_a, &point_bytes(&y_i), &point_bytes(&m2.y_a)]);
    let h3 = h(&[&session_key, id]);
    Some((session_key, h3))
}

#[test]
fn paper_protocol_lets_anyone_who_knows_the_id_impersonate_the_meter() {
    let head_end = PaperHeadEnd {
        id: b"AHE-1".to_vec(),
        key: SigningKey::from(scalar(1)),
    };
    let public = *head_end.key.verifying_key();
    // The victim's ID is public (printed on the meter, sent in clear in message 1).
    let victim_id = b"SM-0001";

    // The attacker picks its own ephemeral; it holds no secret of the victim.
    let mut pending = None;
    let (attacker_key, h3) = paper_meter(victim_id, &public, scalar(99), |m1| {
        let (p, m2) = head_end.respond(m1, scalar(2))?;
        pending = Some(p);
        Some(m2)
    })
    .expect("the head-end answers the attacker");
    let (authenticated_as, head_end_key) = pending
        .unwrap()
        .finish(h3)
        .expect("the paper's head-end accepts h_3");

    // The flaw: the head-end believes it talks to SM-0001 and shares a key with the attacker.
    assert_eq!(authenticated_as, victim_id);
    assert_eq!(head_end_key, attacker_key);
}

#[test]
fn the_paper_model_does_agree_between_honest_parties() {
    // A control for the control: the model is a working key agreement, so the success above is
    // the protocol's flaw, not a broken model.
    let head_end = PaperHeadEnd {
        id: b"AHE-1".to_vec(),
        key: SigningKey::from(scalar(1)),
    };
    let mut pending = None;
    let (meter_key, h3) = paper_meter(b"SM-0002", head_end.key.verifying_key(), scalar(7), |m1| {
        let (p, m2) = head_end.respond(m1, scalar(3))?;
        pending = Some(p);
        Some(m2)
    })
    .unwrap();
    let (_, head_end_key) = pending.unwrap().finish(h3).unwrap();
    assert_eq!(meter_key, head_end_key);
    // And a wrong h_3 is refused, so `finish` is a real check.
    let mut pending = None;
    let (_, mut h3) = paper_meter(b"SM-0002", head_end.key.verifying_key(), scalar(8), |m1| {
        let (p, m2) = head_end.respond(m1, scalar(4))?;
        pending = Some(p);
        Some(m2)
    })
    .unwrap();
    h3[0] ^= 1;
    assert!(pending.unwrap().finish(h3).is_none());
}

/// The same attacker against `bcami_sdk::session`: knowing the ID (the HID), the registered
/// meter key and the head-end's key, it still cannot finish, because the head-end checks a
/// signature by the meter's registered key over the transcript.
#[test]
fn the_same_attack_fails_against_our_handshake() {
    /// SHA-256 in counter mode: deterministic, and every draw differs.
    struct Counter(u64);
    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(32) {
                self.0 += 1;
                chunk.copy_from_slice(&h(&[&self.0.to_be_bytes()])[..chunk.len()]);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), RngError> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Counter {}

    let meter_key = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
    let hid = Hid::from_meter_id("SM-0001");
    let head_end = HeadEnd::new(
        Hid::from_meter_id("AHE-1"),
        HeadEndSecretKey::from_entropy(&[2; 32]).unwrap(),
        HeadEndPolicy::default(),
    );
    let directory = BTreeMap::from([(
        hid,
        MeterRecord {
            public_key: meter_key.public_key(),
            key_version: 1,
            status: MeterStatus::Active,
        },
    )]);
    let now = Timestamp::from_unix_millis(1_700_000_000_000);
    let mut rng = Counter(0);
    let attacker_key = MeterSecretKey::from_entropy(&[99; 32]).unwrap();
    let (attacker, init) = MeterHandshake::start(&mut rng, hid, head_end.identity(), now).unwrap();
    let (pending, response) = head_end.respond(&mut rng, &init, &directory, now).unwrap();
    let (_, confirm) = attacker.finish(&attacker_key, &response).unwrap();
    assert_eq!(
        pending.finish(&confirm, &directory).err(),
        Some(HandshakeError::Authentication)
    );
}
