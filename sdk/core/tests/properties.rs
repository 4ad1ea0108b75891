//! Property tests: every message round-trips, decoders never panic, and no single-byte change to
//! an encoded reading survives both decoding and verification.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bcami_sdk::{
    Hid, IntervalLength, KeyRotationRequest, MdmsRegistrationRequest, MdmsSecretKey,
    MeterSecretKey, QualityFlags, RegistrationRequest, Timestamp, Transaction, UsageReport,
    WattHours,
};
use proptest::prelude::*;

fn report_strategy() -> impl Strategy<Value = UsageReport> {
    (
        any::<u64>(),
        1..=u32::MAX,
        any::<u64>(),
        any::<u64>(),
        0..=QualityFlags::ALL.bits(),
    )
        .prop_map(|(start, length, energy, register, flags)| UsageReport {
            interval_start: Timestamp::from_unix_millis(start),
            interval_length: IntervalLength::from_seconds(length).unwrap(),
            energy: WattHours(energy),
            cumulative_register: WattHours(register),
            quality: QualityFlags::from_bits(flags).unwrap(),
        })
}

fn meter() -> MeterSecretKey {
    MeterSecretKey::from_entropy(&[0x11; 32]).unwrap()
}

fn mdms() -> MdmsSecretKey {
    MdmsSecretKey::from_entropy(&[0x22; 32]).unwrap()
}

proptest! {
    #[test]
    fn usage_report_round_trips(report in report_strategy()) {
        prop_assert_eq!(UsageReport::decode(&report.encode()), Ok(report));
    }

    #[test]
    fn reading_round_trips(
        report in report_strategy(),
        hid in any::<[u8; 32]>(),
        timestamp in any::<u64>(),
        entropy in any::<[u8; 32]>(),
    ) {
        let tx = Transaction::build_from_entropy(
            &entropy, &meter(), Hid::from_bytes(hid), Timestamp::from_unix_millis(timestamp), &report,
            &mdms().public_key(),
        ).unwrap();
        let wire = tx.encode();
        let decoded = Transaction::decode(&wire).unwrap();
        prop_assert_eq!(&decoded, &tx);
        prop_assert_eq!(decoded.encode(), wire);
        prop_assert_eq!(decoded.verify(&meter().public_key()), Ok(()));
        prop_assert_eq!(decoded.decrypt(&mdms()), Ok(report));
    }

    #[test]
    fn key_messages_round_trip(hid in any::<[u8; 32]>(), timestamp in any::<u64>(), seed in any::<[u8; 32]>()) {
        let hid = Hid::from_bytes(hid);
        let timestamp = Timestamp::from_unix_millis(timestamp);
        let key = MeterSecretKey::from_entropy(&seed).unwrap();

        let registration = RegistrationRequest::build(&key, hid, timestamp).unwrap();
        let decoded = RegistrationRequest::decode(&registration.encode()).unwrap();
        prop_assert_eq!(&decoded, &registration);
        prop_assert_eq!(decoded.verify(), Ok(()));

        let mdms_registration = MdmsRegistrationRequest::build(&mdms(), hid, timestamp).unwrap();
        let decoded = MdmsRegistrationRequest::decode(&mdms_registration.encode()).unwrap();
        prop_assert_eq!(&decoded, &mdms_registration);
        prop_assert_eq!(decoded.verify(), Ok(()));

        let rotation = KeyRotationRequest::build(&meter(), &key, hid, timestamp).unwrap();
        let decoded = KeyRotationRequest::decode(&rotation.encode()).unwrap();
        prop_assert_eq!(&decoded, &rotation);
        prop_assert_eq!(decoded.verify(&meter().public_key()), Ok(()));
    }

    #[test]
    fn decoders_never_panic_and_reencode_what_they_accept(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(tx) = Transaction::decode(&bytes) {
            prop_assert_eq!(tx.encode(), bytes.clone());
        }
        if let Ok(r) = RegistrationRequest::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
        }
        if let Ok(r) = MdmsRegistrationRequest::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
        }
        if let Ok(r) = KeyRotationRequest::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
        }
        if let Ok(r) = UsageReport::decode(&bytes) {
            prop_assert_eq!(r.encode().to_vec(), bytes);
        }
    }
}

/// One fixed reading for the mutation property (building one per case would only slow it down).
fn fixed_reading() -> &'static [u8] {
    static WIRE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    WIRE.get_or_init(|| {
        let report = UsageReport {
            interval_start: Timestamp::from_unix_millis(1_700_000_000_000),
            interval_length: IntervalLength::HALF_HOUR,
            energy: WattHours(412),
            cumulative_register: WattHours(12_345_678),
            quality: QualityFlags::NONE,
        };
        Transaction::build_from_entropy(
            &[0x33; 32],
            &meter(),
            Hid::from_meter_id("SM-0001"),
            Timestamp::from_unix_millis(1_700_000_001_800),
            &report,
            &mdms().public_key(),
        )
        .unwrap()
        .encode()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_single_byte_change_to_a_reading_fails_decode_or_verify(index in 0usize..188, change in 1u8..=255) {
        let mut wire = fixed_reading().to_vec();
        prop_assume!(index < wire.len());
        wire[index] ^= change;
        let accepted = Transaction::decode(&wire).map(|tx| tx.verify(&meter().public_key()).is_ok());
        prop_assert_ne!(accepted, Ok(true), "byte {} ^ {:#04x} was accepted", index, change);
    }
}

#[test]
fn every_single_bit_flip_of_a_reading_is_rejected() {
    // Exhaustive over bits (188 * 8 = 1504 cases), complementing the random byte changes above.
    let wire = fixed_reading();
    let key = meter().public_key();
    for index in 0..wire.len() {
        for bit in 0..8 {
            let mut changed = wire.to_vec();
            changed[index] ^= 1 << bit;
            let accepted = Transaction::decode(&changed).map(|tx| tx.verify(&key).is_ok());
            assert_ne!(accepted, Ok(true), "byte {index} bit {bit} was accepted");
        }
    }
}
