//! Behaviour of every message: build → encode → decode → verify (→ decrypt), and the error each
//! kind of malformed input gets.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bcami_sdk::{
    DecodeError, DecryptError, Field, HeadEndRegistrationRequest, HeadEndSecretKey, Hid,
    IntervalLength, KeyRotationRequest, MdmsRegistrationRequest, MdmsSecretKey, MessageKind,
    MeterSecretKey, QualityFlags, RegistrationRequest, Timestamp, Transaction, UsageReport,
    VerifyError, WattHours,
};

fn meter() -> MeterSecretKey {
    MeterSecretKey::from_entropy(&[0x11; 32]).unwrap()
}

fn mdms() -> MdmsSecretKey {
    MdmsSecretKey::from_entropy(&[0x22; 32]).unwrap()
}

fn hid() -> Hid {
    Hid::from_meter_id("SM-0001")
}

fn report() -> UsageReport {
    UsageReport {
        interval_start: Timestamp::from_unix_millis(1_700_000_000_000),
        interval_length: IntervalLength::HALF_HOUR,
        energy: WattHours(412),
        cumulative_register: WattHours(12_345_678),
        quality: QualityFlags::POWER_OUTAGE,
    }
}

fn reading() -> Transaction {
    Transaction::build_from_entropy(
        &[0x33; 32],
        &meter(),
        hid(),
        Timestamp::from_unix_millis(1_700_000_001_800),
        &report(),
        &mdms().public_key(),
    )
    .unwrap()
}

/// r = 1, s = n - 1 (a high S), a syntactically valid signature.
fn high_s() -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[31] = 1;
    sig[32..].copy_from_slice(&[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x40,
    ]);
    sig
}

#[test]
fn reading_round_trips_verifies_and_decrypts() {
    let tx = reading();
    let wire = tx.encode();
    assert_eq!(wire.len(), tx.encoded_len());
    assert_eq!(wire.len(), UsageReport::ENCODED_LEN + Transaction::OVERHEAD);
    assert_eq!(Transaction::OVERHEAD, 157);
    let decoded = Transaction::decode(&wire).unwrap();
    assert_eq!(decoded, tx);
    assert_eq!(decoded.hid(), hid());
    assert_eq!(
        decoded.timestamp(),
        Timestamp::from_unix_millis(1_700_000_001_800)
    );
    assert_eq!(decoded.ciphertext().len(), UsageReport::ENCODED_LEN + 49);
    decoded.verify(&meter().public_key()).unwrap();
    assert_eq!(decoded.decrypt(&mdms()).unwrap(), report());
}

#[test]
fn reading_is_bound_to_the_meter_key_and_the_mdms_key() {
    let tx = reading();
    let other_meter = MeterSecretKey::from_entropy(&[0x44; 32]).unwrap();
    assert_eq!(
        tx.verify(&other_meter.public_key()),
        Err(VerifyError::Signature)
    );
    let other_mdms = MdmsSecretKey::from_entropy(&[0x55; 32]).unwrap();
    assert_eq!(tx.decrypt(&other_mdms), Err(DecryptError::Aead));
}

#[test]
fn changing_hid_or_timestamp_breaks_signature_and_decryption() {
    for (offset, name) in [(2, "HID"), (41, "timestamp")] {
        let mut wire = reading().encode();
        wire[offset] ^= 1;
        let tx = Transaction::decode(&wire).unwrap();
        assert_eq!(
            tx.verify(&meter().public_key()),
            Err(VerifyError::Signature),
            "{name}"
        );
        assert_eq!(tx.decrypt(&mdms()), Err(DecryptError::Aead), "{name}");
    }
}

#[test]
fn reading_decode_errors_are_specific() {
    let wire = reading().encode();
    let len = wire.len();

    assert_eq!(
        Transaction::decode(&[]),
        Err(DecodeError::Truncated {
            needed: 1,
            available: 0
        })
    );
    let mut bad = wire.clone();
    bad[0] = MessageKind::MeterRegistration as u8;
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::UnexpectedKind {
            expected: MessageKind::Reading,
            found: 1
        })
    );
    let mut bad = wire.clone();
    bad[1] = 2;
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::UnsupportedVersion {
            kind: MessageKind::Reading,
            version: 2
        })
    );
    assert_eq!(
        Transaction::decode(&wire[..len - 1]),
        Err(DecodeError::Truncated {
            needed: len,
            available: len - 1
        })
    );
    let mut long = wire.clone();
    long.push(0);
    assert_eq!(
        Transaction::decode(&long),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
    let mut bad = wire.clone();
    bad[42..44].copy_from_slice(&48u16.to_be_bytes());
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::CiphertextTooShort {
            length: 48,
            minimum: 50
        })
    );
    let mut bad = wire.clone();
    bad[44] = 0x04;
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::InvalidPointEncoding {
            field: Field::EphemeralKey,
            prefix: 4
        })
    );
    let mut bad = wire.clone();
    bad[45..77].fill(0);
    bad[76] = 5;
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::PointNotOnCurve {
            field: Field::EphemeralKey
        })
    );
    let mut bad = wire.clone();
    bad[len - 64..].copy_from_slice(&high_s());
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::HighS {
            field: Field::Signature
        })
    );
    let mut bad = wire.clone();
    bad[len - 32..].fill(0);
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::InvalidSignatureScalar {
            field: Field::Signature
        })
    );
}

#[test]
fn registration_round_trips_and_checks_possession() {
    let request =
        RegistrationRequest::build(&meter(), hid(), Timestamp::from_unix_millis(5)).unwrap();
    let wire = request.encode();
    assert_eq!(wire.len(), RegistrationRequest::ENCODED_LEN);
    assert_eq!(wire.len(), 139);
    let decoded = RegistrationRequest::decode(&wire).unwrap();
    assert_eq!(decoded, request);
    decoded.verify().unwrap();
    assert_eq!(decoded.public_key(), &meter().public_key());
    assert_eq!(decoded.hid(), hid());
    assert_eq!(decoded.timestamp(), Timestamp::from_unix_millis(5));

    // A registration for another HID cannot be made from this one.
    let mut bad = wire.clone();
    bad[10] ^= 0x80;
    assert_eq!(
        RegistrationRequest::decode(&bad).unwrap().verify(),
        Err(VerifyError::ProofOfPossession)
    );
    // Someone else's key cannot be slipped in under this signature.
    let mut bad = wire.clone();
    bad[42..75].copy_from_slice(
        &MeterSecretKey::from_entropy(&[9; 32])
            .unwrap()
            .public_key()
            .to_bytes(),
    );
    assert_eq!(
        RegistrationRequest::decode(&bad).unwrap().verify(),
        Err(VerifyError::ProofOfPossession)
    );
    let mut bad = wire.clone();
    bad[75..].copy_from_slice(&high_s());
    assert_eq!(
        RegistrationRequest::decode(&bad),
        Err(DecodeError::HighS {
            field: Field::Signature
        })
    );
    let mut bad = wire.clone();
    bad[42] = 0;
    assert_eq!(
        RegistrationRequest::decode(&bad),
        Err(DecodeError::InvalidPointEncoding {
            field: Field::PublicKey,
            prefix: 0
        })
    );
}

#[test]
fn mdms_registration_is_not_a_meter_registration() {
    let request = MdmsRegistrationRequest::build(
        &mdms(),
        Hid::from_meter_id("MDMS"),
        Timestamp::from_unix_millis(5),
    )
    .unwrap();
    let wire = request.encode();
    let decoded = MdmsRegistrationRequest::decode(&wire).unwrap();
    decoded.verify().unwrap();
    assert_eq!(decoded.public_key(), &mdms().public_key());
    assert_eq!(
        RegistrationRequest::decode(&wire),
        Err(DecodeError::UnexpectedKind {
            expected: MessageKind::MeterRegistration,
            found: 4
        })
    );
    // Even with the kind byte rewritten, the domain tag keeps the signature from transferring.
    let mut relabelled = wire.clone();
    relabelled[0] = MessageKind::MeterRegistration as u8;
    assert_eq!(
        RegistrationRequest::decode(&relabelled).unwrap().verify(),
        Err(VerifyError::ProofOfPossession)
    );
}

#[test]
fn head_end_registration_is_neither_an_mdms_nor_a_meter_registration() {
    // The same scalar as the MDMS key: only the kind byte and the domain tag keep them apart.
    let key = HeadEndSecretKey::from_entropy(&[0x22; 32]).unwrap();
    let ahe = Hid::from_meter_id("AHE-1");
    let request =
        HeadEndRegistrationRequest::build(&key, ahe, Timestamp::from_unix_millis(5)).unwrap();
    let wire = request.encode();
    assert_eq!(wire.len(), HeadEndRegistrationRequest::ENCODED_LEN);
    assert_eq!(wire[0], 0x09);
    let decoded = HeadEndRegistrationRequest::decode(&wire).unwrap();
    decoded.verify().unwrap();
    assert_eq!(
        (decoded.hid(), decoded.public_key()),
        (ahe, &key.public_key())
    );
    assert_eq!(
        MdmsRegistrationRequest::decode(&wire),
        Err(DecodeError::UnexpectedKind {
            expected: MessageKind::MdmsRegistration,
            found: 9
        })
    );
    for kind in [
        MessageKind::MdmsRegistration,
        MessageKind::MeterRegistration,
    ] {
        let mut relabelled = wire.clone();
        relabelled[0] = kind as u8;
        let verified = if kind == MessageKind::MdmsRegistration {
            MdmsRegistrationRequest::decode(&relabelled)
                .unwrap()
                .verify()
        } else {
            RegistrationRequest::decode(&relabelled).unwrap().verify()
        };
        assert_eq!(verified, Err(VerifyError::ProofOfPossession), "{kind}");
    }
    let mdms_wire = MdmsRegistrationRequest::build(&mdms(), ahe, Timestamp::from_unix_millis(5))
        .unwrap()
        .encode();
    let mut relabelled = mdms_wire;
    relabelled[0] = MessageKind::HeadEndRegistration as u8;
    assert_eq!(
        HeadEndRegistrationRequest::decode(&relabelled)
            .unwrap()
            .verify(),
        Err(VerifyError::ProofOfPossession)
    );
    let mut flipped = wire;
    flipped[60] ^= 1;
    if let Ok(r) = HeadEndRegistrationRequest::decode(&flipped) {
        assert_eq!(r.verify(), Err(VerifyError::ProofOfPossession));
    }
}

#[test]
fn key_rotation_needs_both_keys() {
    let current = meter();
    let new = MeterSecretKey::from_entropy(&[0x66; 32]).unwrap();
    let request =
        KeyRotationRequest::build(&current, &new, hid(), Timestamp::from_unix_millis(9)).unwrap();
    let wire = request.encode();
    assert_eq!(wire.len(), KeyRotationRequest::ENCODED_LEN);
    assert_eq!(wire.len(), 203);
    let decoded = KeyRotationRequest::decode(&wire).unwrap();
    assert_eq!(decoded, request);
    decoded.verify(&current.public_key()).unwrap();
    assert_eq!(decoded.new_public_key(), &new.public_key());
    assert_eq!(
        decoded.verify(&new.public_key()),
        Err(VerifyError::CurrentKeySignature)
    );

    // Swapping the two signatures fails: each is under its own domain tag.
    let mut swapped = wire.clone();
    swapped[75..139].copy_from_slice(&wire[139..203]);
    swapped[139..203].copy_from_slice(&wire[75..139]);
    assert_eq!(
        KeyRotationRequest::decode(&swapped)
            .unwrap()
            .verify(&current.public_key()),
        Err(VerifyError::CurrentKeySignature)
    );
    // A thief with the current key alone cannot rotate to a key it does not hold.
    let mut stolen = wire.clone();
    stolen[139..203].copy_from_slice(&wire[75..139]);
    assert_eq!(
        KeyRotationRequest::decode(&stolen)
            .unwrap()
            .verify(&current.public_key()),
        Err(VerifyError::NewKeySignature)
    );
    let mut bad = wire.clone();
    bad[139..].copy_from_slice(&high_s());
    assert_eq!(
        KeyRotationRequest::decode(&bad),
        Err(DecodeError::HighS {
            field: Field::NewKeySignature
        })
    );
    let mut bad = wire.clone();
    bad[75..139].copy_from_slice(&high_s());
    assert_eq!(
        KeyRotationRequest::decode(&bad),
        Err(DecodeError::HighS {
            field: Field::CurrentKeySignature
        })
    );
}

#[test]
fn reused_entropy_never_reuses_an_ecies_key_for_a_different_reading() {
    let build = |report: &UsageReport, timestamp: u64| {
        Transaction::build_from_entropy(
            &[0u8; 32], // a firmware bug: the same "entropy" every time
            &meter(),
            hid(),
            Timestamp::from_unix_millis(timestamp),
            report,
            &mdms().public_key(),
        )
        .unwrap()
    };
    let first = build(&report(), 1_000);
    let mut other_report = report();
    other_report.energy = WattHours(413);
    let other = build(&other_report, 1_000);
    let later = build(&report(), 2_000);
    // Ephemeral key (and so AES key and nonce) differ whenever the report or the header differs.
    assert_ne!(first.ciphertext()[..33], other.ciphertext()[..33]);
    assert_ne!(first.ciphertext()[..33], later.ciphertext()[..33]);
    // An identical reading gives identical bytes, which reveals only that it is identical.
    assert_eq!(build(&report(), 1_000).encode(), first.encode());
    // Another meter with the same bad entropy gets a different ephemeral key too.
    let other_meter = Transaction::build_from_entropy(
        &[0u8; 32],
        &MeterSecretKey::from_entropy(&[0x77; 32]).unwrap(),
        hid(),
        Timestamp::from_unix_millis(1_000),
        &report(),
        &mdms().public_key(),
    )
    .unwrap();
    assert_ne!(first.ciphertext()[..33], other_meter.ciphertext()[..33]);
    for tx in [&first, &other, &later] {
        tx.verify(&meter().public_key()).unwrap();
        tx.decrypt(&mdms()).unwrap();
    }
}
