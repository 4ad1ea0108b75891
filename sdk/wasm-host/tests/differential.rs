//! The meter module under wasmtime against the native SDK: same entropy and time, byte-identical
//! messages, verified by the contract's verifier; memory caps and fuel budgets fail cleanly.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::OnceLock;

use bcami_contract::{Verifier, VerifierKind};
use bcami_sdk::{
    Hid, IntervalLength, KeyRotationRequest, MdmsSecretKey, MeterSecretKey, QualityFlags,
    RegistrationRequest, Timestamp, Transaction, UsageReport, WattHours,
};
use bcami_sdk_wasm::abi::{self, Status};
use bcami_wasm_host::{Error, Limits, MeterModule, Operation, PAGE, WasmMeter};

/// Builds the module once per test binary with the repository's script, into this build's
/// target directory (so CI builds it from a fresh clone, toolchain install included).
fn module() -> &'static MeterModule {
    static MODULE: OnceLock<MeterModule> = OnceLock::new();
    MODULE.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        // `<target>/<profile>/deps/<this test>` → `<target>`.
        let exe = std::env::current_exe().expect("test executable path");
        let target = exe.ancestors().nth(3).expect("target directory");
        MeterModule::build(&repo, target).expect("the module builds and loads")
    })
}

fn meter() -> WasmMeter {
    WasmMeter::new(module(), Limits::default()).expect("instantiates under the default limits")
}

/// Distinct 32-byte values for case `i`, field `tag`.
fn bytes(i: u8, tag: u8) -> [u8; 32] {
    core::array::from_fn(|j| (j as u8).wrapping_mul(31) ^ i.wrapping_mul(97) ^ tag)
}

fn report(i: u8) -> UsageReport {
    UsageReport {
        interval_start: Timestamp::from_unix_millis(1_700_000_000_000 + u64::from(i) * 1_800_000),
        interval_length: IntervalLength::HALF_HOUR,
        energy: WattHours(u64::from(i) * 37 + 1),
        cumulative_register: WattHours(12_345_678 + u64::from(i)),
        quality: if i.is_multiple_of(2) {
            QualityFlags::NONE
        } else {
            QualityFlags::ESTIMATED
        },
    }
}

const TIMES: [u64; 4] = [0, 1, 1_700_000_001_800, u64::MAX];

#[test]
fn every_operation_matches_the_native_sdk_byte_for_byte_and_verifies() {
    let mut wasm = meter();
    let verifier = Verifier::new(VerifierKind::Libsecp256k1);
    let mdms = MdmsSecretKey::from_entropy(&[0x17; 32]).unwrap();
    for i in 0..8u8 {
        let hid = Hid::from_meter_id(format!("SM-{i}"));
        let time = Timestamp::from_unix_millis(TIMES[usize::from(i) % TIMES.len()]);

        let key_entropy = bytes(i, 1);
        let pair = wasm.keygen(&key_entropy).unwrap().value;
        let native = MeterSecretKey::from_entropy(&key_entropy).unwrap();
        assert_eq!(
            pair.secret.to_bytes(),
            native.to_bytes(),
            "case {i}: keygen"
        );
        assert_eq!(pair.public, native.public_key(), "case {i}: public key");

        let registration = wasm.registration(&pair.secret, hid, time).unwrap().value;
        let native_registration = RegistrationRequest::build(&native, hid, time).unwrap();
        assert_eq!(
            registration.encode(),
            native_registration.encode(),
            "case {i}: registration"
        );
        registration.verify().unwrap();
        assert_eq!(registration.public_key(), &native.public_key());

        let entropy = bytes(i, 2);
        let reading = wasm
            .reading(
                &entropy,
                &pair.secret,
                hid,
                time,
                &report(i),
                &mdms.public_key(),
            )
            .unwrap()
            .value;
        let native_reading = Transaction::build_from_entropy(
            &entropy,
            &native,
            hid,
            time,
            &report(i),
            &mdms.public_key(),
        )
        .unwrap();
        assert_eq!(
            reading.encode(),
            native_reading.encode(),
            "case {i}: reading"
        );
        let prepared = verifier.prepare(&native.public_key()).unwrap();
        assert!(
            verifier.verify(&prepared, &reading),
            "case {i}: the contract's verifier"
        );
        reading.verify(&native.public_key()).unwrap();
        assert_eq!(reading.decrypt(&mdms).unwrap(), report(i));

        let new_entropy = bytes(i, 3);
        let rotation = wasm
            .rotation(&pair.secret, &new_entropy, hid, time)
            .unwrap()
            .value;
        let native_new = MeterSecretKey::from_entropy(&new_entropy).unwrap();
        let native_rotation = KeyRotationRequest::build(&native, &native_new, hid, time).unwrap();
        assert_eq!(
            rotation.request.encode(),
            native_rotation.encode(),
            "case {i}: rotation"
        );
        assert_eq!(rotation.new_secret.to_bytes(), native_new.to_bytes());
        rotation.request.verify(&native.public_key()).unwrap();
    }
}

#[test]
fn a_flipped_bit_in_a_wasm_reading_fails_the_contracts_verifier() {
    let mut wasm = meter();
    let verifier = Verifier::new(VerifierKind::Libsecp256k1);
    let key = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
    let mdms = MdmsSecretKey::from_entropy(&[2; 32]).unwrap();
    let hid = Hid::from_meter_id("SM-1");
    let wire = wasm
        .reading(
            &[3; 32],
            &key,
            hid,
            Timestamp::from_unix_millis(5),
            &report(0),
            &mdms.public_key(),
        )
        .unwrap()
        .value
        .encode();
    let prepared = verifier.prepare(&key.public_key()).unwrap();
    let mut tampered = wire.clone();
    // A byte of the AES-GCM ciphertext (before the tag and the signature): the ciphertext hash,
    // and so the signed digest, changes.
    let at = tampered.len() - 64 - 16 - 5;
    tampered[at] ^= 1;
    let tampered = Transaction::decode(&tampered).unwrap();
    assert!(!verifier.verify(&prepared, &tampered));
    assert!(verifier.verify(&prepared, &Transaction::decode(&wire).unwrap()));
}

#[test]
fn every_operation_fits_one_page_and_reports_its_cost() {
    let mut wasm = meter();
    let key = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
    let mdms = MdmsSecretKey::from_entropy(&[2; 32]).unwrap();
    let hid = Hid::from_meter_id("SM-1");
    let t = Timestamp::from_unix_millis(1);
    let costs = [
        wasm.keygen(&[9; 32]).unwrap().cost,
        wasm.registration(&key, hid, t).unwrap().cost,
        wasm.reading(&[4; 32], &key, hid, t, &report(1), &mdms.public_key())
            .unwrap()
            .cost,
        wasm.rotation(&key, &[5; 32], hid, t).unwrap().cost,
    ];
    for cost in costs {
        assert_eq!(cost.memory_bytes, PAGE, "{cost:?}");
        assert!(cost.used_bytes() <= PAGE, "{cost:?}");
        assert!(
            cost.fuel > 0 && cost.stack_bytes > 0 && cost.data_bytes > 0,
            "{cost:?}"
        );
    }
    // A reading allocates (its ciphertext and its encoding); the heap mark shows it.
    assert!(costs[2].heap_bytes >= UsageReport::ENCODED_LEN + Transaction::OVERHEAD);
    // Fuel is deterministic: the same operation on the same input costs the same.
    let again = wasm.registration(&key, hid, t).unwrap().cost;
    assert_eq!(again, costs[1]);
}

#[test]
fn a_memory_cap_below_the_modules_need_is_a_typed_error() {
    let limits = Limits {
        memory_bytes: PAGE - 1,
        ..Limits::default()
    };
    match WasmMeter::new(module(), limits) {
        Err(Error::MemoryCap { limit, needed }) => {
            assert_eq!(limit, PAGE - 1);
            assert_eq!(needed, PAGE);
        }
        other => panic!("expected a memory-cap error, got {other:?}"),
    }
    // The cap is per meter: another meter with the default cap runs.
    assert!(meter().keygen(&[1; 32]).is_ok());
}

#[test]
fn running_out_of_fuel_is_a_typed_error_and_the_meter_recovers() {
    let limits = Limits {
        fuel_per_operation: 10_000,
        ..Limits::default()
    };
    let mut wasm = WasmMeter::new(module(), limits).unwrap();
    let key = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
    let hid = Hid::from_meter_id("SM-1");
    let t = Timestamp::from_unix_millis(1);
    for _ in 0..3 {
        match wasm.registration(&key, hid, t) {
            Err(Error::OutOfFuel { budget }) => assert_eq!(budget, 10_000),
            other => panic!("expected out of fuel, got {other:?}"),
        }
    }
    // Three traps mid-operation left the stack pointer and the heap as they were: with a budget
    // that suffices, the same instance produces the native bytes, within its one page.
    wasm.set_fuel_per_operation(Limits::DEFAULT_FUEL);
    let registration = wasm.registration(&key, hid, t).unwrap();
    assert_eq!(
        registration.value.encode(),
        RegistrationRequest::build(&key, hid, t).unwrap().encode()
    );
    assert!(registration.cost.fuel > 10_000);
    assert_eq!(registration.cost.memory_bytes, PAGE);
}

#[test]
fn invalid_inputs_are_refused_with_the_abis_status() {
    let mut wasm = meter();
    let key = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
    let mdms = MdmsSecretKey::from_entropy(&[2; 32]).unwrap();
    let hid = Hid::from_meter_id("SM-1");
    let input = |secret: [u8; 32], report: [u8; 31], mdms: [u8; 33]| {
        [
            &secret[..],
            hid.as_bytes(),
            &[0; 8],
            &report,
            &mdms,
            &[7; 32],
        ]
        .concat()
    };
    let good = input(
        key.to_bytes(),
        report(1).encode(),
        mdms.public_key().to_bytes(),
    );
    assert_eq!(good.len(), abi::READING_INPUT_LEN);
    let wire = wasm.call(Operation::Reading, &good).unwrap().value;
    assert!(Transaction::decode(&wire).is_ok());

    let mut bad_version = report(1).encode();
    bad_version[0] = 0xff;
    let mut off_curve = [0u8; 33];
    off_curve[0] = 0x02; // compressed, x = 0: 0^3 + 7 = 7 is not a square mod p.
    let cases = [
        // The zero scalar is not a key.
        (
            input([0; 32], report(1).encode(), mdms.public_key().to_bytes()),
            Status::SecretKey,
        ),
        // Above the group order is not a key either.
        (
            input([0xff; 32], report(1).encode(), mdms.public_key().to_bytes()),
            Status::SecretKey,
        ),
        (
            input(key.to_bytes(), report(1).encode(), off_curve),
            Status::MdmsKey,
        ),
        (
            input(key.to_bytes(), bad_version, mdms.public_key().to_bytes()),
            Status::Report,
        ),
    ];
    for (input, status) in cases {
        match wasm.call(Operation::Reading, &input) {
            Err(Error::Meter(s)) => assert_eq!(s, status),
            other => panic!("expected {status:?}, got {other:?}"),
        }
    }
    assert!(matches!(
        wasm.call(Operation::Reading, &[0; 257]),
        Err(Error::Input { len: 257 })
    ));
    // Not a module, and a valid but empty module (no exports).
    assert!(matches!(
        MeterModule::from_bytes(b"not wasm"),
        Err(Error::Module(_))
    ));
    assert!(matches!(
        MeterModule::from_bytes(b"\0asm\x01\0\0\0"),
        Err(Error::Module(_))
    ));
    // After the refusals the meter still works.
    assert!(wasm.call(Operation::Reading, &good).is_ok());
}
