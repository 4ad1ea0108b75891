//! The meter module under wasmtime against the native SDK: same entropy and time, byte-identical
//! messages, verified by the contract's verifier; memory caps and fuel budgets fail cleanly.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::OnceLock;

use bcami_contract::{Verifier, VerifierKind};
use bcami_sdk::session::{
    HeadEnd, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus, SessionConfirm, SessionInit,
    SessionResponse,
};
use bcami_sdk::{
    HeadEndSecretKey, Hid, IntervalLength, KeyRotationRequest, MdmsSecretKey, MeterSecretKey,
    QualityFlags, RegistrationRequest, Timestamp, Transaction, UsageReport, WattHours,
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
        wasm.call(Operation::Reading, &[0; abi::IO_LEN + 1]),
        Err(Error::Input { len }) if len == abi::IO_LEN + 1
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

/// A deterministic generator for the native head-end (splitmix64); the meter's side takes entropy.
struct Rng(u64);

impl bcami_sdk::rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), bcami_sdk::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl bcami_sdk::rand_core::CryptoRng for Rng {}

/// The associated data of the head-end connection (`bcami_headend::connection`).
const AAD: &[u8] = b"BC-AMI/1 head-end connection\0";

/// A native head-end and a meter registered with it.
struct HeadEndSide {
    head_end: HeadEnd,
    directory: std::collections::BTreeMap<Hid, MeterRecord>,
    key: MeterSecretKey,
    hid: Hid,
    now: Timestamp,
}

fn head_end_side(i: u8) -> HeadEndSide {
    let key = MeterSecretKey::from_entropy(&bytes(i, 10)).unwrap();
    let hid = Hid::from_meter_id(format!("SM-{i}"));
    let mut directory = std::collections::BTreeMap::new();
    directory.insert(
        hid,
        MeterRecord {
            public_key: key.public_key(),
            key_version: 1,
            status: MeterStatus::Active,
        },
    );
    HeadEndSide {
        head_end: HeadEnd::new(
            Hid::from_meter_id(format!("AHE-{i}")),
            HeadEndSecretKey::from_entropy(&bytes(i, 11)).unwrap(),
            HeadEndPolicy::default(),
        ),
        directory,
        key,
        hid,
        now: Timestamp::from_unix_millis(1_700_000_000_000 + u64::from(i)),
    }
}

#[test]
fn the_session_matches_the_native_sdk_byte_for_byte_and_talks_to_the_native_head_end() {
    let mut wasm = meter();
    let mdms = MdmsSecretKey::from_entropy(&[0x17; 32]).unwrap();
    for i in 0..4u8 {
        let side = head_end_side(i);
        let identity = side.head_end.identity();
        let entropy = bytes(i, 12);
        let init = wasm
            .session_start(&entropy, &side.key, side.hid, &identity, side.now)
            .unwrap()
            .value;
        let (native, native_init) =
            MeterHandshake::start_from_entropy(&entropy, &side.key, side.hid, identity, side.now)
                .unwrap();
        assert_eq!(init.encode(), native_init.encode(), "case {i}: SessionInit");

        // Over the wire to the native head-end, and its response back.
        let init = SessionInit::decode(&init.encode()).unwrap();
        let (pending, response) = side
            .head_end
            .respond(&mut Rng(u64::from(i)), &init, &side.directory, side.now)
            .unwrap();
        let response = SessionResponse::decode(&response.encode()).unwrap();
        let established = wasm.session_finish(&side.key, &response).unwrap().value;
        let (mut native_session, native_confirm) = native.finish(&side.key, &response).unwrap();
        assert_eq!(
            established.confirm.encode(),
            native_confirm.encode(),
            "case {i}: SessionConfirm"
        );
        assert_eq!(&established.session_id, native_session.id());
        let confirm = SessionConfirm::decode(&established.confirm.encode()).unwrap();
        let mut head_end = pending.finish(&confirm, &side.directory).unwrap();
        assert_eq!(head_end.id(), native_session.id());
        assert_eq!(head_end.meter(), side.hid);

        // Up: a signed reading, as a meter sends it; down: a command. Three of each.
        for n in 0..3u8 {
            let reading = wasm
                .reading(
                    &bytes(i, 20 + n),
                    &side.key,
                    side.hid,
                    side.now,
                    &report(n),
                    &mdms.public_key(),
                )
                .unwrap()
                .value
                .encode();
            let sealed = wasm.session_seal(AAD, &reading).unwrap().value;
            assert_eq!(
                sealed,
                native_session.seal(AAD, &reading).unwrap(),
                "case {i}, record {n}: sealed record"
            );
            assert_eq!(head_end.open(AAD, &sealed).unwrap(), reading);

            let command = format!("command {n} for meter {i}");
            let down = head_end.seal(AAD, command.as_bytes()).unwrap();
            let opened = wasm.session_open(AAD, &down).unwrap().value;
            assert_eq!(opened, command.as_bytes());
            assert_eq!(native_session.open(AAD, &down).unwrap(), command.as_bytes());
        }
    }
}

/// A meter with a session up with `side`'s head-end; returns the head-end's session too.
fn established(wasm: &mut WasmMeter, side: &HeadEndSide) -> bcami_sdk::session::Session {
    let init = wasm
        .session_start(
            &[5; 32],
            &side.key,
            side.hid,
            &side.head_end.identity(),
            side.now,
        )
        .unwrap()
        .value;
    let (pending, response) = side
        .head_end
        .respond(&mut Rng(5), &init, &side.directory, side.now)
        .unwrap();
    let confirm = wasm
        .session_finish(&side.key, &response)
        .unwrap()
        .value
        .confirm;
    pending.finish(&confirm, &side.directory).unwrap()
}

fn expect_status<T: std::fmt::Debug>(result: Result<T, Error>, status: Status) {
    match result {
        Err(Error::Meter(s)) => assert_eq!(s, status),
        other => panic!("expected {status:?}, got {other:?}"),
    }
}

#[test]
fn a_tampered_response_a_bad_record_and_the_wrong_state_are_the_abis_statuses() {
    let mut wasm = meter();
    let side = head_end_side(1);
    let identity = side.head_end.identity();

    // Nothing to finish, seal or open yet.
    expect_status(wasm.session_seal(AAD, b"early"), Status::SessionState);
    expect_status(wasm.session_open(AAD, b"early"), Status::SessionState);

    let init = wasm
        .session_start(&[1; 32], &side.key, side.hid, &identity, side.now)
        .unwrap()
        .value;
    expect_status(wasm.session_seal(AAD, b"early"), Status::SessionState);
    let (_, response) = side
        .head_end
        .respond(&mut Rng(1), &init, &side.directory, side.now)
        .unwrap();
    // A flipped bit in the head-end's MAC, then in its signature: the meter refuses both (the
    // first ends the handshake, so the second and the genuine response find none).
    let wire = response.encode();
    let mut bad_mac = wire.clone();
    *bad_mac.last_mut().unwrap() ^= 1;
    expect_status(
        wasm.session_finish(&side.key, &SessionResponse::decode(&bad_mac).unwrap()),
        Status::Authentication,
    );
    expect_status(
        wasm.session_finish(&side.key, &response),
        Status::SessionState,
    );
    // A response signed by another head-end key for the same id, to a fresh handshake.
    let impostor = HeadEnd::new(
        identity.id,
        HeadEndSecretKey::from_entropy(&[0x66; 32]).unwrap(),
        HeadEndPolicy::default(),
    );
    let init = wasm
        .session_start(&[2; 32], &side.key, side.hid, &identity, side.now)
        .unwrap()
        .value;
    let (_, forged) = impostor
        .respond(&mut Rng(2), &init, &side.directory, side.now)
        .unwrap();
    expect_status(
        wasm.session_finish(&side.key, &forged),
        Status::Authentication,
    );
    // Raw bytes that are no response leave a handshake waiting.
    wasm.session_start(&[3; 32], &side.key, side.hid, &identity, side.now)
        .unwrap();
    let garbage = [&side.key.to_bytes()[..], &[0; SessionResponse::ENCODED_LEN]].concat();
    expect_status(
        wasm.call(Operation::SessionFinish, &garbage),
        Status::Response,
    );

    // An established session: altered, replayed and foreign records do not open; it stays up.
    let mut head_end = established(&mut wasm, &side);
    let command = head_end.seal(AAD, b"command").unwrap();
    let mut altered = command.clone();
    altered[12] ^= 1;
    expect_status(wasm.session_open(AAD, &altered), Status::Record);
    expect_status(wasm.session_open(b"other", &command), Status::Record);
    assert_eq!(wasm.session_open(AAD, &command).unwrap().value, b"command");
    expect_status(wasm.session_open(AAD, &command), Status::Replayed);
    // The meter's own record cannot be opened as the head-end's (another direction's key); its
    // second, sequence number 1, is past the replay check.
    let first = wasm.session_seal(AAD, b"up 0").unwrap().value;
    let up = wasm.session_seal(AAD, b"up 1").unwrap().value;
    expect_status(wasm.session_open(AAD, &first), Status::Replayed);
    expect_status(wasm.session_open(AAD, &up), Status::Record);
    assert_eq!(head_end.open(AAD, &first).unwrap(), b"up 0");
    assert_eq!(head_end.open(AAD, &up).unwrap(), b"up 1");
    // Lengths: a header claiming more than the buffer, a plaintext too long to seal.
    expect_status(
        wasm.call(Operation::SessionSeal, &[0xff; 4]),
        Status::RecordTooLong,
    );
    expect_status(
        wasm.session_seal(b"", &[0; abi::MAX_SEAL_PLAINTEXT + 1]),
        Status::RecordTooLong,
    );
    let longest = wasm
        .session_seal(b"", &[7; abi::MAX_SEAL_PLAINTEXT])
        .unwrap()
        .value;
    assert_eq!(
        head_end.open(b"", &longest).unwrap(),
        [7; abi::MAX_SEAL_PLAINTEXT]
    );
    assert!(matches!(
        wasm.session_seal(AAD, &[0; abi::IO_LEN]),
        Err(Error::Input { .. })
    ));
    // Ending the session drops it.
    wasm.session_end().unwrap();
    expect_status(wasm.session_seal(AAD, b"after"), Status::SessionState);
}

#[test]
fn the_session_fits_one_page_and_a_meter_out_of_fuel_mid_handshake_starts_again() {
    let side = head_end_side(2);
    let identity = side.head_end.identity();
    // The module's need is one page: below it, no meter.
    let below = Limits {
        memory_bytes: PAGE - 1,
        ..Limits::default()
    };
    assert!(matches!(
        WasmMeter::new(module(), below),
        Err(Error::MemoryCap { needed: PAGE, .. })
    ));

    let mut wasm = meter();
    let start = wasm
        .session_start(&[1; 32], &side.key, side.hid, &identity, side.now)
        .unwrap();
    let (pending, response) = side
        .head_end
        .respond(&mut Rng(1), &start.value, &side.directory, side.now)
        .unwrap();
    let finish = wasm.session_finish(&side.key, &response).unwrap();
    let mut head_end = pending
        .finish(&finish.value.confirm, &side.directory)
        .unwrap();
    let seal = wasm.session_seal(AAD, &[1; 200]).unwrap();
    let open = wasm
        .session_open(AAD, &head_end.seal(AAD, &[2; 200]).unwrap())
        .unwrap();
    for cost in [start.cost, finish.cost, seal.cost, open.cost] {
        assert_eq!(cost.memory_bytes, PAGE, "{cost:?}");
        assert!(cost.used_bytes() <= PAGE, "{cost:?}");
        assert!(cost.fuel > 0 && cost.stack_bytes > 0, "{cost:?}");
    }
    // Sealing allocates its record; opening its plaintext.
    assert!(seal.cost.heap_bytes >= 200 + bcami_sdk::session::Session::OVERHEAD);
    assert!(open.cost.heap_bytes >= 200);
    // Finishing verifies a signature and signs: the most work of the four.
    assert!(finish.cost.fuel > start.cost.fuel && finish.cost.fuel > seal.cost.fuel);

    // A budget too small for finishing: a typed error; the handshake is gone and the meter
    // starts again under a budget that suffices.
    let mut wasm = WasmMeter::new(
        module(),
        Limits {
            fuel_per_operation: finish.cost.fuel / 2,
            ..Limits::default()
        },
    )
    .unwrap();
    let init = wasm
        .session_start(&[1; 32], &side.key, side.hid, &identity, side.now)
        .unwrap()
        .value;
    assert_eq!(init, start.value);
    match wasm.session_finish(&side.key, &response) {
        Err(Error::OutOfFuel { budget }) => assert_eq!(budget, finish.cost.fuel / 2),
        other => panic!("expected out of fuel, got {other:?}"),
    }
    wasm.set_fuel_per_operation(Limits::DEFAULT_FUEL);
    expect_status(
        wasm.session_finish(&side.key, &response),
        Status::SessionState,
    );
    let mut head_end = established(&mut wasm, &side);
    let up = wasm.session_seal(AAD, b"again").unwrap().value;
    assert_eq!(head_end.open(AAD, &up).unwrap(), b"again");
}
