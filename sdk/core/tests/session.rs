//! The meter ↔ head-end session: each test fails if the property it names breaks.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use bcami_sdk::rand_core::{CryptoRng, Error as RngError, RngCore};
use bcami_sdk::session::{
    HeadEnd, HeadEndHandshake, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus, Role,
    Session, SessionConfirm, SessionInit, SessionResponse,
};
use bcami_sdk::{
    DecodeError, HandshakeError, HeadEndSecretKey, Hid, MeterSecretKey, SessionError, Timestamp,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// A deterministic RNG (SHA-256 in counter mode) so failures reproduce.
struct TestRng {
    seed: [u8; 32],
    counter: u64,
}

impl TestRng {
    fn new(label: &str) -> Self {
        TestRng {
            seed: Sha256::digest(label.as_bytes()).into(),
            counter: 0,
        }
    }
}

impl RngCore for TestRng {
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
            self.counter += 1;
            let block = Sha256::new()
                .chain_update(self.seed)
                .chain_update(self.counter.to_be_bytes())
                .finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), RngError> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for TestRng {}

const NOW: u64 = 1_700_000_000_000;

fn now() -> Timestamp {
    Timestamp::from_unix_millis(NOW)
}

struct World {
    meter_key: MeterSecretKey,
    hid: Hid,
    head_end: HeadEnd,
    directory: BTreeMap<Hid, MeterRecord>,
}

impl World {
    fn new() -> World {
        let meter_key = MeterSecretKey::from_entropy(&[0x11; 32]).unwrap();
        let hid = Hid::from_meter_id("SM-0001");
        let head_end = HeadEnd::new(
            Hid::from_meter_id("AHE-1"),
            HeadEndSecretKey::from_entropy(&[0x22; 32]).unwrap(),
            HeadEndPolicy::default(),
        );
        let mut directory = BTreeMap::new();
        directory.insert(
            hid,
            MeterRecord {
                public_key: meter_key.public_key(),
                key_version: 1,
                status: MeterStatus::Active,
            },
        );
        World {
            meter_key,
            hid,
            head_end,
            directory,
        }
    }

    fn start(&self, rng: &mut TestRng) -> (MeterHandshake, SessionInit) {
        MeterHandshake::start(rng, self.hid, self.head_end.identity(), now()).unwrap()
    }

    fn respond(
        &self,
        rng: &mut TestRng,
        init: &SessionInit,
    ) -> (HeadEndHandshake, SessionResponse) {
        self.head_end
            .respond(rng, init, &self.directory, now())
            .unwrap()
    }

    /// A complete honest handshake, every message through its encoder and decoder.
    fn handshake(&self, rng: &mut TestRng) -> (Session, Session, [Vec<u8>; 3]) {
        let (meter, init) = self.start(rng);
        let init_wire = init.encode();
        let (pending, response) = self.respond(rng, &SessionInit::decode(&init_wire).unwrap());
        let response_wire = response.encode();
        let (meter_session, confirm) = meter
            .finish(
                &self.meter_key,
                &SessionResponse::decode(&response_wire).unwrap(),
            )
            .unwrap();
        let confirm_wire = confirm.encode();
        let head_end_session = pending
            .finish(
                &SessionConfirm::decode(&confirm_wire).unwrap(),
                &self.directory,
            )
            .unwrap();
        (
            meter_session,
            head_end_session,
            [init_wire, response_wire, confirm_wire],
        )
    }
}

/// Both sides can talk: each opens what the other sealed.
fn assert_talk(meter: &mut Session, head_end: &mut Session) {
    let up = meter.seal(b"aad", b"reading 412 Wh").unwrap();
    assert_eq!(head_end.open(b"aad", &up).unwrap(), b"reading 412 Wh");
    let down = head_end.seal(b"", b"disconnect at 12:00").unwrap();
    assert_eq!(meter.open(b"", &down).unwrap(), b"disconnect at 12:00");
}

#[test]
fn keys_agree_and_messages_have_their_documented_sizes() {
    let world = World::new();
    let (mut meter, mut head_end, wires) = world.handshake(&mut TestRng::new("agree"));
    assert_eq!(meter.id(), head_end.id());
    assert_eq!(meter.role(), Role::Meter);
    assert_eq!(head_end.role(), Role::HeadEnd);
    assert_eq!(meter.meter(), world.hid);
    assert_eq!(head_end.meter(), world.hid);
    assert_eq!(meter.head_end(), world.head_end.identity().id);
    assert_eq!(head_end.meter_key_version(), Some(1));
    assert_eq!(meter.meter_key_version(), None);
    assert_talk(&mut meter, &mut head_end);
    assert_eq!(
        wires.each_ref().map(Vec::len),
        [
            SessionInit::ENCODED_LEN,
            SessionResponse::ENCODED_LEN,
            SessionConfirm::ENCODED_LEN
        ]
    );
    assert_eq!(wires.each_ref().map(Vec::len), [91, 179, 98]);
}

#[test]
fn sealed_message_sizes_and_directions() {
    let world = World::new();
    let (mut meter, mut head_end, _) = world.handshake(&mut TestRng::new("dirs"));
    let sealed = meter.seal(b"", &[0u8; 64]).unwrap();
    assert_eq!(sealed.len(), 64 + Session::OVERHEAD);
    // A message reflected back to its sender fails: each direction has its own key and nonce.
    let mut reflected = meter.seal(b"", b"x").unwrap();
    assert_eq!(meter.open(b"", &reflected), Err(SessionError::Aead));
    // Different associated data fails.
    assert_eq!(head_end.open(b"other", &sealed), Err(SessionError::Aead));
    // ... and a failure does not move the window: the right aad still opens it.
    assert_eq!(head_end.open(b"", &sealed).unwrap(), [0u8; 64]);
    reflected[20] ^= 1;
    assert_eq!(head_end.open(b"", &reflected), Err(SessionError::Aead));
}

#[test]
fn an_attacker_knowing_everything_public_cannot_complete_as_the_meter() {
    let world = World::new();
    let mut rng = TestRng::new("impersonate meter");
    // Everything public: the HID, the meter's and the head-end's public keys, a captured
    // transcript of an earlier honest session.
    let (_, _, captured) = world.handshake(&mut rng);
    let attacker_key = MeterSecretKey::from_entropy(&[0x66; 32]).unwrap();

    // 1. Runs the protocol honestly but with its own key.
    let (attacker, init) = world.start(&mut rng);
    let (pending, response) = world.respond(&mut rng, &init);
    let (_attacker_session, confirm) = attacker.finish(&attacker_key, &response).unwrap();
    assert_eq!(
        pending.finish(&confirm, &world.directory).err(),
        Some(HandshakeError::Authentication)
    );

    // 2. Replays the captured SessionInit and SessionConfirm of the honest meter.
    let init = SessionInit::decode(&captured[0]).unwrap();
    let (pending, _) = world.respond(&mut rng, &init);
    let confirm = SessionConfirm::decode(&captured[2]).unwrap();
    assert_eq!(
        pending.finish(&confirm, &world.directory).err(),
        Some(HandshakeError::Authentication)
    );
}

#[test]
fn an_attacker_knowing_everything_public_cannot_complete_as_the_head_end() {
    let world = World::new();
    let mut rng = TestRng::new("impersonate head-end");
    let (_, _, captured) = world.handshake(&mut rng);
    // A rogue head-end with its own key, claiming the real head-end's identity.
    let rogue = HeadEnd::new(
        world.head_end.identity().id,
        HeadEndSecretKey::from_entropy(&[0x77; 32]).unwrap(),
        HeadEndPolicy::default(),
    );
    let (meter, init) = world.start(&mut rng);
    let (_, response) = rogue
        .respond(&mut rng, &init, &world.directory, now())
        .unwrap();
    assert_eq!(
        meter.finish(&world.meter_key, &response).err(),
        Some(HandshakeError::Authentication)
    );

    // Replaying a captured genuine response to a new SessionInit fails too.
    let (meter, _) = world.start(&mut rng);
    let response = SessionResponse::decode(&captured[1]).unwrap();
    assert_eq!(
        meter.finish(&world.meter_key, &response).err(),
        Some(HandshakeError::Authentication)
    );

    // A genuine head-end other than the one the meter asked for is refused by name.
    let other = HeadEnd::new(
        Hid::from_meter_id("AHE-2"),
        HeadEndSecretKey::from_entropy(&[0x22; 32]).unwrap(),
        HeadEndPolicy::default(),
    );
    let (meter, init) = world.start(&mut rng);
    let (_, response) = other
        .respond(&mut rng, &init, &world.directory, now())
        .unwrap();
    assert_eq!(
        meter.finish(&world.meter_key, &response).err(),
        Some(HandshakeError::UnexpectedHeadEnd)
    );
}

#[test]
fn a_man_in_the_middle_swapping_ephemerals_fails() {
    let world = World::new();
    let mut rng = TestRng::new("mitm");
    // The MITM runs its own handshakes with each side and swaps the ephemeral points (and with
    // them the nonces) so it would share one ECDH key with each.
    let (mitm_towards_head_end, mitm_init) = world.start(&mut rng);
    let (meter, init) = world.start(&mut rng);
    // Towards the head-end: the meter's HID and timestamp with the MITM's ephemeral.
    let mut swapped = init.encode();
    swapped[42..].copy_from_slice(&mitm_init.encode()[42..]);
    let swapped = SessionInit::decode(&swapped).unwrap();
    let (pending, response) = world.respond(&mut rng, &swapped);
    // The MITM can read the response (it knows the ephemeral the head-end answered), but the
    // head-end signed a transcript with the MITM's ephemeral, so the meter refuses it as is...
    assert_eq!(
        meter.finish(&world.meter_key, &response).err(),
        Some(HandshakeError::Authentication)
    );
    // ... and the MITM cannot produce the meter's confirmation for the head-end.
    let attacker_key = MeterSecretKey::from_entropy(&[0x66; 32]).unwrap();
    let (_, confirm) = mitm_towards_head_end
        .finish(&attacker_key, &response)
        .unwrap();
    assert_eq!(
        pending.finish(&confirm, &world.directory).err(),
        Some(HandshakeError::Authentication)
    );

    // Towards the meter: the real init goes through, the response's ephemeral is swapped.
    let (meter, init) = world.start(&mut rng);
    let (_, response) = world.respond(&mut rng, &init);
    let (_, rogue_response) = world.respond(&mut rng, &init);
    let mut wire = response.encode();
    wire[34..67].copy_from_slice(&rogue_response.encode()[34..67]);
    let swapped = SessionResponse::decode(&wire).unwrap();
    assert_eq!(
        meter.finish(&world.meter_key, &swapped).err(),
        Some(HandshakeError::Authentication)
    );
}

#[test]
fn a_replayed_session_init_gets_different_keys() {
    let world = World::new();
    let mut rng = TestRng::new("replay init");
    // Two meters handshakes with byte-identical SessionInits (the same entropy): the head-end
    // answers each with a fresh ephemeral, so the two sessions differ.
    let start = || {
        MeterHandshake::start_from_entropy(
            &[0x33; 32],
            &world.meter_key,
            world.hid,
            world.head_end.identity(),
            now(),
        )
        .unwrap()
    };
    let (meter_a, init_a) = start();
    let (meter_b, init_b) = start();
    assert_eq!(init_a.encode(), init_b.encode());
    let (pending_a, response_a) = world.respond(&mut rng, &init_a);
    let (pending_b, response_b) = world.respond(&mut rng, &init_b);
    assert_ne!(response_a.encode()[34..67], response_b.encode()[34..67]);
    let (mut meter_a, confirm_a) = meter_a.finish(&world.meter_key, &response_a).unwrap();
    let (mut meter_b, confirm_b) = meter_b.finish(&world.meter_key, &response_b).unwrap();
    // A confirmation cannot be moved from one to the other.
    let (pending_a2, _) = world.respond(&mut rng, &init_a);
    assert_eq!(
        pending_a2.finish(&confirm_b, &world.directory).err(),
        Some(HandshakeError::Authentication)
    );
    let mut head_end_a = pending_a.finish(&confirm_a, &world.directory).unwrap();
    let mut head_end_b = pending_b.finish(&confirm_b, &world.directory).unwrap();
    assert_ne!(meter_a.id(), meter_b.id());
    // Different traffic keys: what one session seals, the other cannot open.
    let sealed = meter_a.seal(b"", b"hello").unwrap();
    assert_eq!(head_end_b.open(b"", &sealed), Err(SessionError::Aead));
    assert_eq!(head_end_a.open(b"", &sealed).unwrap(), b"hello");
    let sealed = meter_b.seal(b"", b"hello").unwrap();
    assert_eq!(head_end_b.open(b"", &sealed).unwrap(), b"hello");
}

#[test]
fn replayed_and_reordered_sealed_messages_are_rejected() {
    let world = World::new();
    let (mut meter, mut head_end, _) = world.handshake(&mut TestRng::new("sequence"));
    let m0 = meter.seal(b"", b"0").unwrap();
    let m1 = meter.seal(b"", b"1").unwrap();
    let m2 = meter.seal(b"", b"2").unwrap();
    let m3 = meter.seal(b"", b"3").unwrap();
    assert_eq!(meter.next_seal_sequence(), 4);
    assert_eq!(head_end.open(b"", &m1).unwrap(), b"1"); // m0 lost: gaps are allowed
    assert_eq!(
        head_end.open(b"", &m0),
        Err(SessionError::Replayed {
            sequence: 0,
            expected: 2
        })
    );
    assert_eq!(
        head_end.open(b"", &m1),
        Err(SessionError::Replayed {
            sequence: 1,
            expected: 2
        })
    );
    assert_eq!(head_end.open(b"", &m3).unwrap(), b"3");
    assert_eq!(
        head_end.open(b"", &m2),
        Err(SessionError::Replayed {
            sequence: 2,
            expected: 4
        })
    );
    // A forged sequence number far ahead cannot poison the window: it fails authentication and
    // the next genuine message still opens.
    let mut forged = meter.seal(b"", b"4").unwrap();
    let genuine = forged.clone();
    forged[2..10].copy_from_slice(&1000u64.to_be_bytes());
    assert_eq!(head_end.open(b"", &forged), Err(SessionError::Aead));
    assert_eq!(head_end.open(b"", &genuine).unwrap(), b"4");
}

#[test]
fn sealed_message_decoding_is_strict() {
    let world = World::new();
    let (mut meter, mut head_end, _) = world.handshake(&mut TestRng::new("strict"));
    let sealed = meter.seal(b"", b"abc").unwrap();
    assert_eq!(
        head_end.open(b"", &sealed[..25]),
        Err(SessionError::Decode(DecodeError::Truncated {
            needed: 26,
            available: 25
        }))
    );
    let mut wrong_kind = sealed.clone();
    wrong_kind[0] = 0x02;
    assert!(matches!(
        head_end.open(b"", &wrong_kind),
        Err(SessionError::Decode(DecodeError::UnexpectedKind { .. }))
    ));
    let mut max = sealed.clone();
    max[2..10].copy_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(
        head_end.open(b"", &max),
        Err(SessionError::SequenceExhausted)
    );
    assert_eq!(head_end.open(b"", &sealed).unwrap(), b"abc");
}

#[test]
fn revoked_unknown_and_rotated_away_meter_keys_are_refused() {
    let mut world = World::new();
    let mut rng = TestRng::new("directory");
    let record = world.directory[&world.hid];

    // Revoked before the handshake.
    world.directory.get_mut(&world.hid).unwrap().status = MeterStatus::Revoked;
    let (_, init) = world.start(&mut rng);
    assert_eq!(
        world
            .head_end
            .respond(&mut rng, &init, &world.directory, now())
            .err(),
        Some(HandshakeError::MeterRevoked)
    );

    // Unknown HID.
    let empty: BTreeMap<Hid, MeterRecord> = BTreeMap::new();
    assert_eq!(
        world.head_end.respond(&mut rng, &init, &empty, now()).err(),
        Some(HandshakeError::UnknownMeter)
    );

    // Rotated away: the ledger holds version 2 (a new key); the meter still signs with the old.
    let new_key = MeterSecretKey::from_entropy(&[0x12; 32]).unwrap();
    world.directory.insert(
        world.hid,
        MeterRecord {
            public_key: new_key.public_key(),
            key_version: 2,
            status: MeterStatus::Active,
        },
    );
    let (meter, init) = world.start(&mut rng);
    let (pending, response) = world.respond(&mut rng, &init);
    let (_, confirm) = meter.finish(&world.meter_key, &response).unwrap();
    assert_eq!(
        pending.finish(&confirm, &world.directory).err(),
        Some(HandshakeError::Authentication)
    );
    // With the new key it works, and the session records the version.
    let (meter, init) = world.start(&mut rng);
    let (pending, response) = world.respond(&mut rng, &init);
    let (_, confirm) = meter.finish(&new_key, &response).unwrap();
    let session = pending.finish(&confirm, &world.directory).unwrap();
    assert_eq!(session.meter_key_version(), Some(2));

    // Rotated or revoked while the handshake is in flight.
    world.directory.insert(world.hid, record);
    let (meter, init) = world.start(&mut rng);
    let (pending, response) = world.respond(&mut rng, &init);
    let (_, confirm) = meter.finish(&world.meter_key, &response).unwrap();
    let mut rotated = world.directory.clone();
    rotated.insert(
        world.hid,
        MeterRecord {
            public_key: new_key.public_key(),
            key_version: 2,
            status: MeterStatus::Active,
        },
    );
    assert_eq!(
        pending.finish(&confirm, &rotated).err(),
        Some(HandshakeError::MeterKeyChanged {
            registered: 2,
            handshake: 1
        })
    );
    let (meter, init) = world.start(&mut rng);
    let (pending, response) = world.respond(&mut rng, &init);
    let (_, confirm) = meter.finish(&world.meter_key, &response).unwrap();
    let mut revoked = world.directory.clone();
    revoked.get_mut(&world.hid).unwrap().status = MeterStatus::Revoked;
    assert_eq!(
        pending.finish(&confirm, &revoked).err(),
        Some(HandshakeError::MeterRevoked)
    );
    assert_eq!(
        pending_for(&world, &mut rng).finish(&confirm, &empty).err(),
        Some(HandshakeError::UnknownMeter)
    );
}

fn pending_for(world: &World, rng: &mut TestRng) -> HeadEndHandshake {
    let (_, init) = world.start(rng);
    world.respond(rng, &init).0
}

#[test]
fn requests_outside_the_clock_window_are_refused() {
    let world = World::new();
    let mut rng = TestRng::new("clock");
    let skew = HeadEndPolicy::default().max_clock_skew_ms;
    let (_, init) = world.start(&mut rng);
    for offset in [skew + 1, 0u64.wrapping_sub(skew + 1)] {
        let head_end_now = Timestamp::from_unix_millis(NOW.wrapping_add(offset));
        assert!(matches!(
            world
                .head_end
                .respond(&mut rng, &init, &world.directory, head_end_now)
                .err(),
            Some(HandshakeError::ClockSkew { .. })
        ));
    }
    let edge = Timestamp::from_unix_millis(NOW + skew);
    assert!(
        world
            .head_end
            .respond(&mut rng, &init, &world.directory, edge)
            .is_ok()
    );
}

#[test]
fn entropy_start_is_hedged_and_checked() {
    let world = World::new();
    let start = |entropy: &[u8], time: u64| {
        MeterHandshake::start_from_entropy(
            entropy,
            &world.meter_key,
            world.hid,
            world.head_end.identity(),
            Timestamp::from_unix_millis(time),
        )
    };
    assert!(matches!(
        start(&[0; 31], NOW).err(),
        Some(HandshakeError::Key(
            bcami_sdk::KeyError::NotEnoughEntropy { .. }
        ))
    ));
    // The same (broken) entropy at another time gives another ephemeral key and nonce.
    let a = start(&[0; 32], NOW).unwrap().1.encode();
    let b = start(&[0; 32], NOW + 1).unwrap().1.encode();
    assert_ne!(a[42..], b[42..]);
}

#[test]
fn handshake_decoders_name_what_is_wrong() {
    let world = World::new();
    let (_, _, [init, response, confirm]) = world.handshake(&mut TestRng::new("decode"));
    assert_eq!(
        SessionInit::decode(&init[..90]),
        Err(DecodeError::Truncated {
            needed: 91,
            available: 90
        })
    );
    let mut long = response.clone();
    long.push(0);
    assert_eq!(
        SessionResponse::decode(&long),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
    assert!(matches!(
        SessionConfirm::decode(&init),
        Err(DecodeError::UnexpectedKind { found: 0x05, .. })
    ));
    let mut v2 = confirm.clone();
    v2[1] = 2;
    assert!(matches!(
        SessionConfirm::decode(&v2),
        Err(DecodeError::UnsupportedVersion { version: 2, .. })
    ));
    let mut off_curve = init.clone();
    off_curve[43..75].fill(0);
    off_curve[74] = 5;
    assert_eq!(
        SessionInit::decode(&off_curve),
        Err(DecodeError::PointNotOnCurve {
            field: bcami_sdk::Field::EphemeralKey
        })
    );
    let mut zero_r = response.clone();
    zero_r[83..115].fill(0);
    assert_eq!(
        SessionResponse::decode(&zero_r),
        Err(DecodeError::InvalidSignatureScalar {
            field: bcami_sdk::Field::Signature
        })
    );
}

/// Flips one bit of one message of an honest handshake and runs the rest of it: the handshake
/// must not complete. Returns the stage that refused it.
fn handshake_with_flip(world: &World, message: usize, bit: usize) -> &'static str {
    let mut rng = TestRng::new("flip");
    let flip = |wire: &mut Vec<u8>, which: usize| {
        if which == message {
            wire[bit / 8] ^= 1 << (bit % 8);
        }
    };
    let (meter, init) = world.start(&mut rng);
    let mut wire = init.encode();
    flip(&mut wire, 0);
    let Ok(init) = SessionInit::decode(&wire) else {
        return "init decode";
    };
    let Ok((pending, response)) = world
        .head_end
        .respond(&mut rng, &init, &world.directory, now())
    else {
        return "respond";
    };
    let mut wire = response.encode();
    flip(&mut wire, 1);
    let Ok(response) = SessionResponse::decode(&wire) else {
        return "response decode";
    };
    let Ok((_, confirm)) = meter.finish(&world.meter_key, &response) else {
        return "meter finish";
    };
    let mut wire = confirm.encode();
    flip(&mut wire, 2);
    let Ok(confirm) = SessionConfirm::decode(&wire) else {
        return "confirm decode";
    };
    match pending.finish(&confirm, &world.directory) {
        Ok(_) => "completed",
        Err(_) => "head-end finish",
    }
}

#[test]
fn the_unflipped_handshake_completes() {
    // The control for the flip property: without a flip the same harness completes.
    let world = World::new();
    assert_eq!(handshake_with_flip(&world, 3, 0), "completed");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_bit_flip_anywhere_in_the_handshake_is_rejected(message in 0usize..3, bit in 0usize..(179 * 8)) {
        let world = World::new();
        let len = [SessionInit::ENCODED_LEN, SessionResponse::ENCODED_LEN, SessionConfirm::ENCODED_LEN][message];
        let bit = bit % (len * 8);
        prop_assert_ne!(handshake_with_flip(&world, message, bit), "completed");
    }

    #[test]
    fn a_bit_flip_in_a_sealed_message_is_rejected(bit in 0usize..((Session::OVERHEAD + 16) * 8), payload in any::<[u8; 16]>()) {
        let world = World::new();
        let (mut meter, mut head_end, _) = world.handshake(&mut TestRng::new("sealed flip"));
        let mut sealed = meter.seal(b"aad", &payload).unwrap();
        sealed[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(head_end.open(b"aad", &sealed).is_err());
    }

    #[test]
    fn handshake_decoders_never_panic_and_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(m) = SessionInit::decode(&bytes) { prop_assert_eq!(m.encode(), bytes.clone()); }
        if let Ok(m) = SessionResponse::decode(&bytes) { prop_assert_eq!(m.encode(), bytes.clone()); }
        if let Ok(m) = SessionConfirm::decode(&bytes) { prop_assert_eq!(m.encode(), bytes.clone()); }
    }
}

/// Every byte of every message (368 runs), one bit each with the bit position cycling through
/// 0..8, because the property test above samples. (All 2,944 single-bit flips pass too, but take
/// half a minute in a debug build: `BCAMI_ALL_BITS=1`.)
#[test]
fn a_flip_in_every_byte_of_every_message_is_rejected() {
    let all_bits = std::env::var_os("BCAMI_ALL_BITS").is_some();
    let world = World::new();
    let lens = [
        SessionInit::ENCODED_LEN,
        SessionResponse::ENCODED_LEN,
        SessionConfirm::ENCODED_LEN,
    ];
    for (message, len) in lens.into_iter().enumerate() {
        for bit in (0..len * 8).filter(|bit| all_bits || bit % 8 == (bit / 8) % 8) {
            assert_ne!(
                handshake_with_flip(&world, message, bit),
                "completed",
                "message {message} bit {bit}"
            );
        }
    }
}
