//! The anonymous meter module under wasmtime against native bcami-anon (Zk backend): same
//! entropy, byte-identical join requests and presentations, which the contract's verifier (blst,
//! batch) accepts; a tampered credential, a memory cap and a fuel budget below the need fail
//! cleanly.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::OnceLock;

use bcami_anon::{
    AnonReport, Backend, Blst, Credential, IssuerPublicKey, IssuerSecretKey, JoinRequest,
    KeyHolder, Period, Presentation, ReportFlags, SoftwareKeyHolder, Zk, verify_batch,
};
use bcami_sdk_wasm_anon::abi::{self, Status};
use bcami_wasm_host::{AnonModule, AnonOperation, Error, Limits, PAGE, WasmAnonMeter};

/// Builds the module once per test binary with the repository's script, into this build's
/// target directory (so CI builds it from a fresh clone, toolchain install included).
fn module() -> &'static AnonModule {
    static MODULE: OnceLock<AnonModule> = OnceLock::new();
    MODULE.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        // `<target>/<profile>/deps/<this test>` → `<target>`.
        let exe = std::env::current_exe().expect("test executable path");
        let target = exe.ancestors().nth(3).expect("target directory");
        AnonModule::build(&repo, target).expect("the module builds and loads")
    })
}

/// Enough pages for the anonymous reading (BENCHMARKS.md: it needs more than one).
const LIMITS: Limits = Limits {
    memory_bytes: 4 * PAGE,
    fuel_per_operation: 2_000_000_000,
};

fn meter() -> WasmAnonMeter {
    WasmAnonMeter::new(module(), LIMITS).expect("instantiates")
}

/// Distinct 32-byte values for case `i`, field `tag`.
fn bytes(i: u8, tag: u8) -> [u8; 32] {
    core::array::from_fn(|j| (j as u8).wrapping_mul(29) ^ i.wrapping_mul(101) ^ tag)
}

fn entropy64(i: u8) -> [u8; 64] {
    core::array::from_fn(|j| (j as u8).wrapping_mul(13) ^ i.wrapping_mul(7) ^ 0x5c)
}

fn report(i: u8) -> AnonReport {
    AnonReport {
        period: Period::new(1_700_000_000_000 + u64::from(i) * 900_000, 900).unwrap(),
        energy_wh: u64::from(i) * 11 + 3,
        flags: if i.is_multiple_of(2) {
            ReportFlags::NONE
        } else {
            ReportFlags::ESTIMATED
        },
    }
}

fn issuer(epoch: u32) -> IssuerSecretKey<Zk> {
    IssuerSecretKey::from_bytes(&[0x42; 32], epoch).unwrap()
}

/// The contract's check: the presentation decoded with the blst backend, batch-verified under
/// the issuer key decoded with it.
fn contract_accepts(ipk: &IssuerPublicKey<Zk>, presentation: &[u8]) -> bool {
    let ipk = IssuerPublicKey::<Blst>::decode(&ipk.encode()).unwrap();
    let Ok(presentation) = Presentation::<Blst>::decode(presentation) else {
        return false;
    };
    verify_batch(&ipk, &[presentation])[0].is_ok()
}

#[test]
fn join_and_presentations_match_native_bcami_anon_byte_for_byte_and_verify() {
    let issuer = issuer(3);
    let ipk = issuer.public_key();
    for i in 0..2u8 {
        let mut wasm = meter();
        let mut native = SoftwareKeyHolder::<Zk>::from_entropy(&bytes(i, 1)).unwrap();

        let commitment = wasm.keygen(&bytes(i, 1)).unwrap().value;
        assert_eq!(
            commitment,
            Zk::g1_to_bytes(&native.commitment()),
            "case {i}: C"
        );

        let (hid, nonce) = (bytes(i, 2), bytes(i, 3));
        let join = wasm.join(ipk, &hid, &nonce, &bytes(i, 4)).unwrap().value;
        let native_join = JoinRequest::build(&mut native, ipk, hid, nonce, &bytes(i, 4)).unwrap();
        assert_eq!(
            join.encode(),
            native_join.encode(),
            "case {i}: join request"
        );

        // The issuer (the Utility's service) checks the wasm meter's proof and signs.
        let credential = issuer.issue(&join, &nonce).unwrap();
        assert_eq!(wasm.accept(ipk, &credential).unwrap().value, 3);
        let native_credential = credential.accept(ipk, &native.commitment()).unwrap();

        for r in 0..2u8 {
            let report = report(i * 2 + r);
            let entropy = entropy64(i * 2 + r);
            let presentation = wasm.present(&report, &entropy).unwrap().value.encode();
            let native_presentation = Presentation::build_from_entropy(
                &mut native,
                &native_credential,
                ipk,
                &report,
                &entropy,
            )
            .unwrap()
            .encode();
            assert_eq!(
                presentation, native_presentation,
                "case {i}/{r}: presentation"
            );
            assert!(
                contract_accepts(ipk, &presentation),
                "case {i}/{r}: verifies"
            );

            let mut flipped = presentation.clone();
            flipped[60] ^= 1;
            assert!(
                !contract_accepts(ipk, &flipped),
                "case {i}/{r}: a flipped bit fails"
            );
        }
    }
}

#[test]
fn a_tampered_or_foreign_credential_is_refused_and_none_is_held() {
    let issuer = issuer(5);
    let ipk = issuer.public_key();
    let mut wasm = meter();
    wasm.keygen(&bytes(9, 1)).unwrap();
    let nonce = bytes(9, 3);
    let join = wasm
        .join(ipk, &bytes(9, 2), &nonce, &bytes(9, 4))
        .unwrap()
        .value;
    let good = issuer.issue(&join, &nonce).unwrap().encode();
    let input = |credential: &[u8]| [&ipk.encode()[..], credential].concat();

    // `e` changed (last byte of the encoding): a valid encoding, not the issuer's signature.
    let mut tampered = good.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(Credential::<Zk>::decode(&tampered).is_ok());
    assert!(matches!(
        wasm.call(AnonOperation::Accept, &input(&tampered)),
        Err(Error::AnonMeter(Status::CredentialRefused))
    ));
    // `A` changed: not a point.
    let mut not_a_point = good.clone();
    not_a_point[7] ^= 0xff;
    assert!(matches!(
        wasm.call(AnonOperation::Accept, &input(&not_a_point)),
        Err(Error::AnonMeter(Status::Credential))
    ));
    // A credential of another epoch's key.
    let other = IssuerSecretKey::<Zk>::from_bytes(&[0x42; 32], 6).unwrap();
    let other_join = wasm
        .join(other.public_key(), &bytes(9, 2), &nonce, &bytes(9, 4))
        .unwrap();
    let other_credential = other.issue(&other_join.value, &nonce).unwrap().encode();
    assert!(matches!(
        wasm.call(AnonOperation::Accept, &input(&other_credential)),
        Err(Error::AnonMeter(Status::CredentialRefused))
    ));
    // After a refusal the meter holds no credential; the good one is then accepted.
    assert!(matches!(
        wasm.present(&report(0), &entropy64(0)),
        Err(Error::AnonMeter(Status::NoCredential))
    ));
    assert_eq!(
        wasm.call(AnonOperation::Accept, &input(&good))
            .unwrap()
            .value,
        5u32.to_be_bytes()
    );
    let presentation = wasm
        .present(&report(0), &entropy64(0))
        .unwrap()
        .value
        .encode();
    assert!(contract_accepts(ipk, &presentation));
    // Inputs too long for the buffer and a bad report are refused without a call.
    assert!(matches!(
        wasm.call(AnonOperation::Present, &[0; abi::IO_LEN + 1]),
        Err(Error::Input { len }) if len == abi::IO_LEN + 1
    ));
    let zero_length = [[0u8; 8].as_slice(), &[0; 4], &[0; 8], &[0; 2], &[0; 64]].concat();
    assert!(matches!(
        wasm.call(AnonOperation::Present, &zero_length),
        Err(Error::AnonMeter(Status::Report))
    ));
}

#[test]
fn every_operation_reports_its_cost_and_the_credential_stays_kept() {
    let issuer = issuer(1);
    let ipk = issuer.public_key();
    let mut wasm = meter();
    let keygen = wasm.keygen(&bytes(1, 1)).unwrap().cost;
    let nonce = bytes(1, 3);
    let join = wasm.join(ipk, &bytes(1, 2), &nonce, &bytes(1, 4)).unwrap();
    let credential = issuer.issue(&join.value, &nonce).unwrap();
    let accept = wasm.accept(ipk, &credential).unwrap().cost;
    let kept = wasm.kept_heap().unwrap();
    let present = wasm.present(&report(1), &entropy64(1)).unwrap().cost;
    for cost in [keygen, join.cost, accept, present] {
        assert!(
            cost.fuel > 0 && cost.stack_bytes > 0 && cost.data_bytes > 0,
            "{cost:?}"
        );
        assert!(cost.used_bytes() <= cost.memory_bytes, "{cost:?}");
    }
    // The issuer key's prepared points outlive `accept` and sit under every later heap.
    assert!(
        kept > 0 && present.heap_bytes >= kept,
        "kept {kept}, {present:?}"
    );
    assert_eq!(wasm.kept_heap().unwrap(), kept);
}

#[test]
fn a_memory_cap_below_the_need_is_a_typed_error() {
    let issuer = issuer(2);
    let ipk = issuer.public_key();
    // One page is what the identified meter needs; the credential's issuer key does not fit it.
    let mut wasm = WasmAnonMeter::new(
        module(),
        Limits {
            memory_bytes: PAGE,
            ..LIMITS
        },
    )
    .unwrap();
    wasm.keygen(&bytes(2, 1)).unwrap();
    let nonce = bytes(2, 3);
    let mut join = wasm.join(ipk, &bytes(2, 2), &nonce, &bytes(2, 4));
    let credential = match &join {
        Ok(join) => issuer.issue(&join.value, &nonce).unwrap(),
        // A join needing more than a page is also a clean refusal.
        Err(Error::MemoryCap { limit, needed }) => {
            assert!(*limit == PAGE && *needed > PAGE);
            // The same key in a roomier instance makes the same join request.
            let mut roomy = meter();
            roomy.keygen(&bytes(2, 1)).unwrap();
            join = roomy.join(ipk, &bytes(2, 2), &nonce, &bytes(2, 4));
            issuer.issue(&join.as_ref().unwrap().value, &nonce).unwrap()
        }
        Err(other) => panic!("expected a join or a memory cap error, got {other:?}"),
    };
    match wasm.accept(ipk, &credential) {
        Err(Error::MemoryCap { limit, needed }) => assert!(limit == PAGE && needed > PAGE),
        other => panic!("expected a memory cap error, got {other:?}"),
    }
    // The meter is still usable: it can start again.
    assert!(wasm.keygen(&bytes(2, 1)).is_ok());
}

#[test]
fn running_out_of_fuel_is_a_typed_error_and_the_meter_recovers() {
    let issuer = issuer(4);
    let ipk = issuer.public_key();
    let mut wasm = meter();
    wasm.keygen(&bytes(4, 1)).unwrap();
    let nonce = bytes(4, 3);
    let join = wasm
        .join(ipk, &bytes(4, 2), &nonce, &bytes(4, 4))
        .unwrap()
        .value;
    wasm.accept(ipk, &issuer.issue(&join, &nonce).unwrap())
        .unwrap();
    let need = wasm.present(&report(4), &entropy64(4)).unwrap();
    wasm.set_fuel_per_operation(need.cost.fuel / 2);
    match wasm.present(&report(4), &entropy64(4)) {
        Err(Error::OutOfFuel { budget }) => assert_eq!(budget, need.cost.fuel / 2),
        other => panic!("expected out of fuel, got {other:?}"),
    }
    // The credential is still held and the next reading, with its budget, is the same bytes.
    wasm.set_fuel_per_operation(need.cost.fuel);
    let again = wasm.present(&report(4), &entropy64(4)).unwrap();
    assert_eq!(again.value.encode(), need.value.encode());
    assert_eq!(again.cost.fuel, need.cost.fuel);
}

#[test]
fn a_module_without_the_anon_exports_is_refused() {
    assert!(matches!(
        AnonModule::from_bytes(b"not wasm"),
        Err(Error::Module(_))
    ));
    assert!(matches!(
        AnonModule::from_bytes(b"\0asm\x01\0\0\0"),
        Err(Error::Module(m)) if m.contains("missing")
    ));
}
