//! The contract, function by function, against the in-memory ledger: every function, every role
//! rule, every rejection reason, and that rejected input changes no state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_api::{ErrorCode, Function, ReadingsEvent, RejectReason, Role};
use bcami_contract::{VerifierKind, contract};
use bcami_sdk::{Hid, MdmsSecretKey, MeterSecretKey, Transaction, domain};
use common::*;
use fabric_shim::{Contract, ContractError};
use k256::ecdsa::signature::DigestSigner;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Dispatch and roles
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_function_is_400_listing_the_known_ones() {
    let mut env = Env::new();
    let e = env.err(admin(), "ping", &[]);
    assert_error(&e, 400, ErrorCode::UnknownFunction);
    assert!(e.message().contains(Function::SubmitReadings.name()), "{e}");
    assert!(e.message().contains(Function::GetCounts.name()), "{e}");
}

#[test]
fn every_function_enforces_its_roles_with_a_message_naming_the_role() {
    let identities = [
        ("admin", admin()),
        ("dc", dc()),
        ("mdms", mdms()),
        ("operator admin", operator_admin()),
        ("stranger", stranger()),
        ("utility peer", who("UtilityMSP", "peer")),
    ];
    let holds = |name: &str, role: Role| {
        matches!(
            (name, role),
            ("admin", Role::Administrator) | ("dc", Role::Concentrator) | ("mdms", Role::Mdms)
        )
    };
    for function in Function::ALL {
        for (name, creator) in &identities {
            let allowed = function.roles().iter().any(|r| holds(name, *r));
            let mut env = Env::new();
            let out = env.invoke(creator.clone(), function, &[]);
            match out.result {
                Err(e) if e.status().code() == 403 => {
                    assert!(!allowed, "{} refused {name}: {e}", function.name());
                    assert!(
                        e.message().contains("requires the"),
                        "{}: {e}",
                        function.name()
                    );
                    for role in function.roles() {
                        assert!(
                            e.message().contains(&role.to_string()),
                            "{}: message does not name {role}: {e}",
                            function.name()
                        );
                    }
                }
                // Allowed callers get past the role check (and then fail on the empty
                // arguments or missing state, or succeed).
                _ => assert!(allowed, "{} let {name} in", function.name()),
            }
        }
    }
}

#[test]
fn default_roles_name_msp_and_ou_in_the_forbidden_message() {
    let mut env = Env::new();
    let e = env.err(dc(), Function::RevokeMeter, &[&Meter::new(1).hex()]);
    assert_error(&e, 403, ErrorCode::Forbidden);
    assert!(
        e.message().contains(
            "requires the administrator (UtilityMSP admin) role; the caller is OperatorMSP client"
        ),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Configure
// ---------------------------------------------------------------------------------------------

#[test]
fn configure_replaces_given_fields_and_roles_follow() {
    let mut env = Env::new();
    let defaults = env.ok(dc(), Function::GetConfig, &[]);
    assert_eq!(
        defaults["window"],
        json!({"pastMs": 300000, "futureMs": 60000})
    );
    assert_eq!(
        defaults["concentrator"],
        json!([{"mspId": "OperatorMSP", "nodeOu": "client"}])
    );
    let update = json!({
        "concentrator": [{"mspId": "OperatorMSP", "nodeOu": "client"}, {"mspId": "Dc2MSP", "nodeOu": "client"}],
        "window": {"pastMs": 1000, "futureMs": 0}
    })
    .to_string();
    let new = env.ok(admin(), Function::Configure, &[&update]);
    assert_eq!(new["window"]["pastMs"], 1000);
    assert_eq!(new["administrator"], defaults["administrator"]);
    // The second DC org is now a concentrator; still forbidden from admin functions.
    env.ok(who("Dc2MSP", "client"), Function::GetConfig, &[]);
    let e = env.err(
        who("Dc2MSP", "client"),
        Function::ProvisionMeters,
        &[r#"{"meters":[]}"#],
    );
    assert_error(&e, 403, ErrorCode::Forbidden);

    // Moving the MDMS role away from UtilityMSP client locks it out.
    env.ok(
        admin(),
        Function::Configure,
        &[r#"{"mdms":[{"mspId":"MdmsMSP","nodeOu":"client"}]}"#],
    );
    let e = env.err(mdms(), Function::GetMdmsKey, &[]);
    assert_error(&e, 403, ErrorCode::Forbidden);
    assert!(e.message().contains("MdmsMSP client"), "{e}");
}

#[test]
fn configure_rejects_bad_input_and_changes_nothing() {
    let mut env = Env::new();
    let before = env.dump();
    for bad in [
        "not json",
        r#"{"window":{"pastMs":1}}"#,
        r#"{"window":{"pastMs":604800001,"futureMs":0}}"#,
        r#"{"window":{"pastMs":0,"futureMs":3600001}}"#,
        r#"{"mdms":[]}"#,
        r#"{"mdms":[{"mspId":"","nodeOu":"client"}]}"#,
        r#"{"mdms":[{"mspId":"X","nodeOu":"boss"}]}"#,
        r#"{"unknown":1}"#,
    ] {
        let e = env.err(admin(), Function::Configure, &[bad]);
        assert_error(&e, 400, ErrorCode::BadArgument);
    }
    let e = env.err(admin(), Function::Configure, &[]);
    assert_error(&e, 400, ErrorCode::BadArgument);
    assert_eq!(env.dump(), before);
    let e = env.err(mdms(), Function::Configure, &["{}"]);
    assert_error(&e, 403, ErrorCode::Forbidden);
}

// ---------------------------------------------------------------------------------------------
// Provisioning
// ---------------------------------------------------------------------------------------------

#[test]
fn provisioning_is_bulk_idempotent_and_conflicts_are_refused_atomically() {
    let mut env = Env::new();
    let (a, b, c) = (Meter::new(1), Meter::new(2), Meter::new(3));
    let arg = json!({"meters": [a.hex(), b.hex(), a.hex()]}).to_string();
    let out = env.ok(admin(), Function::ProvisionMeters, &[&arg]);
    let mut expected = vec![a.hex(), b.hex()];
    expected.sort();
    assert_eq!(out["provisioned"], json!(expected));
    assert_eq!(out["unchanged"], 0);
    let meter = env.ok(admin(), Function::GetMeter, &[&a.hex()]);
    assert_eq!(meter["meter"]["status"], "provisioned");
    assert_eq!(meter["meter"]["keyVersion"], 0);
    assert_eq!(meter["keys"], json!([]));

    // Identical re-provisioning is a no-op, even after registration.
    env.register(&a);
    let before = env.dump();
    let out = env.ok(admin(), Function::ProvisionMeters, &[&arg]);
    assert_eq!(out["provisioned"], json!([]));
    assert_eq!(out["unchanged"], 2);
    assert_eq!(env.dump(), before);

    // A revoked meter cannot come back; the whole call is refused, c is not provisioned.
    env.ok(admin(), Function::RevokeMeter, &[&b.hex()]);
    let before = env.dump();
    let arg = json!({"meters": [c.hex(), b.hex()]}).to_string();
    let e = env.err(admin(), Function::ProvisionMeters, &[&arg]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    assert!(e.message().contains(&b.hex()), "{e}");
    assert_eq!(env.dump(), before);

    // The MDMS's HID is not a meter.
    env.ok(admin(), Function::ProvisionMdms, &[&mdms_hid().to_string()]);
    let arg = json!({"meters": [mdms_hid().to_string()]}).to_string();
    let e = env.err(admin(), Function::ProvisionMeters, &[&arg]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
}

#[test]
fn provisioning_rejects_malformed_arguments() {
    let mut env = Env::new();
    let too_many: Vec<String> = (0..1001).map(|i| Meter::new(i).hex()).collect();
    let too_many = json!({ "meters": too_many }).to_string();
    let short = json!({"meters": ["abcd"]}).to_string();
    let upper_ok = json!({"meters": [Meter::new(1).hex().to_uppercase()]}).to_string();
    for bad in [
        "",
        "[]",
        r#"{"meters":[]}"#,
        r#"{"meters":"x"}"#,
        r#"{"meters":[1]}"#,
        r#"{"hids":[]}"#,
        short.as_str(),
        too_many.as_str(),
    ] {
        let e = env.err(admin(), Function::ProvisionMeters, &[bad]);
        assert_error(&e, 400, ErrorCode::BadArgument);
    }
    let e = env.err(admin(), Function::ProvisionMeters, &[]);
    assert_error(&e, 400, ErrorCode::BadArgument);
    assert!(env.dump().is_empty());
    // Hex is accepted in either case and stored in lower case.
    let out = env.ok(admin(), Function::ProvisionMeters, &[&upper_ok]);
    assert_eq!(out["provisioned"], json!([Meter::new(1).hex()]));
}

#[test]
fn mdms_provisioning_is_single_and_idempotent() {
    let mut env = Env::new();
    let hid = mdms_hid().to_string();
    let out = env.ok(admin(), Function::ProvisionMdms, &[&hid]);
    assert_eq!(out["status"], "provisioned");
    let before = env.dump();
    env.ok(admin(), Function::ProvisionMdms, &[&hid]);
    assert_eq!(env.dump(), before);
    let e = env.err(admin(), Function::ProvisionMdms, &[&Meter::new(9).hex()]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    let e = env.err(admin(), Function::ProvisionMdms, &["zz"]);
    assert_error(&e, 400, ErrorCode::BadArgument);

    let mut env = Env::new();
    let m = Meter::new(1);
    env.provision(&[&m]);
    let e = env.err(admin(), Function::ProvisionMdms, &[&m.hex()]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

#[test]
fn register_meter_binds_key_version_one() {
    let mut env = Env::new();
    let m = Meter::new(1);
    env.provision(&[&m]);
    let reg = m.registration(T0_MS - 5);
    let out = env.ok(dc(), Function::RegisterMeter, &[&reg]);
    assert_eq!(out["status"], "active");
    assert_eq!(out["keyVersion"], 1);
    let public = bcami_api::to_hex(&m.key.public_key().to_bytes());
    assert_eq!(out["publicKey"], public.as_str());
    assert_eq!(out["lastTimestamp"], T0_MS - 5);
    let view = env.ok(mdms(), Function::GetMeter, &[&m.hex()]);
    assert_eq!(view["keys"][0]["version"], 1);
    assert_eq!(view["keys"][0]["publicKey"], public.as_str());
    assert_eq!(view["keys"][0]["since"], T0_MS - 5);
}

#[test]
fn register_meter_refusals_change_nothing() {
    let mut env = Env::new();
    let (m, other, unprovisioned) = (Meter::new(1), Meter::new(2), Meter::new(3));
    env.provision(&[&m, &other]);
    env.ok(admin(), Function::RevokeMeter, &[&other.hex()]);
    let before = env.dump();

    let e = env.err(
        dc(),
        Function::RegisterMeter,
        &[&unprovisioned.registration(T0_MS)],
    );
    assert_error(&e, 404, ErrorCode::UnknownMeter);
    let e = env.err(dc(), Function::RegisterMeter, &[&other.registration(T0_MS)]);
    assert_error(&e, 409, ErrorCode::Revoked);
    // Stale and future registrations.
    let e = env.err(
        dc(),
        Function::RegisterMeter,
        &[&m.registration(T0_MS - 300_001)],
    );
    assert_error(&e, 400, ErrorCode::OutsideWindow);
    let e = env.err(
        dc(),
        Function::RegisterMeter,
        &[&m.registration(T0_MS + 60_001)],
    );
    assert_error(&e, 400, ErrorCode::OutsideWindow);
    // Proof of possession by a different key than the one registered: splice in another key.
    let mut bytes = STANDARD.decode(m.registration(T0_MS)).unwrap();
    bytes[42..75].copy_from_slice(&other.key.public_key().to_bytes());
    let e = env.err(dc(), Function::RegisterMeter, &[&b64(&bytes)]);
    assert_error(&e, 400, ErrorCode::BadSignature);
    // Malformed: not base64, truncated, a reading instead of a registration.
    for bad in [
        "***".to_owned(),
        b64(&bytes[..100]),
        m.reading(T0_MS, &mdms_key()),
    ] {
        let e = env.err(dc(), Function::RegisterMeter, &[&bad]);
        assert_error(&e, 400, ErrorCode::BadArgument);
    }
    let e = env.err(dc(), Function::RegisterMeter, &[&"A".repeat(5000)]);
    assert_error(&e, 400, ErrorCode::BadArgument);
    // Only a data concentrator relays registrations.
    let e = env.err(admin(), Function::RegisterMeter, &[&m.registration(T0_MS)]);
    assert_error(&e, 403, ErrorCode::Forbidden);
    assert_eq!(env.dump(), before);

    env.ok(dc(), Function::RegisterMeter, &[&m.registration(T0_MS)]);
    let before = env.dump();
    let e = env.err(dc(), Function::RegisterMeter, &[&m.registration(T0_MS + 1)]);
    assert_error(&e, 409, ErrorCode::AlreadyRegistered);
    assert_eq!(env.dump(), before);
}

#[test]
fn mdms_key_registration_and_release() {
    let mut env = Env::new();
    let e = env.err(dc(), Function::GetMdmsKey, &[]);
    assert_error(&e, 404, ErrorCode::UnknownMdms);
    let e = env.err(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(T0_MS)],
    );
    assert_error(&e, 404, ErrorCode::UnknownMdms);
    env.ok(admin(), Function::ProvisionMdms, &[&mdms_hid().to_string()]);
    let e = env.err(dc(), Function::GetMdmsKey, &[]);
    assert_error(&e, 404, ErrorCode::MdmsNotRegistered);

    // A registration for another HID, a stale one, and one relayed by a DC are refused.
    let wrong = bcami_sdk::MdmsRegistrationRequest::build(
        &mdms_key(),
        Meter::new(5).hid,
        bcami_sdk::Timestamp::from_unix_millis(T0_MS),
    )
    .unwrap();
    let e = env.err(mdms(), Function::RegisterMdmsKey, &[&b64(&wrong.encode())]);
    assert_error(&e, 404, ErrorCode::UnknownMdms);
    let e = env.err(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(T0_MS - 400_000)],
    );
    assert_error(&e, 400, ErrorCode::OutsideWindow);
    let e = env.err(
        dc(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(T0_MS)],
    );
    assert_error(&e, 403, ErrorCode::Forbidden);
    let mut spliced = STANDARD.decode(mdms_registration(T0_MS)).unwrap();
    spliced[42..75].copy_from_slice(&Meter::new(1).key.public_key().to_bytes());
    let e = env.err(mdms(), Function::RegisterMdmsKey, &[&b64(&spliced)]);
    assert_error(&e, 400, ErrorCode::BadSignature);
    // A meter registration is not an MDMS registration (different kind byte).
    let e = env.err(
        mdms(),
        Function::RegisterMdmsKey,
        &[&Meter::new(1).registration(T0_MS)],
    );
    assert_error(&e, 400, ErrorCode::BadArgument);

    let out = env.ok(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(T0_MS)],
    );
    assert_eq!(out["status"], "registered");
    let key = env.ok(dc(), Function::GetMdmsKey, &[]);
    let public = bcami_api::to_hex(&mdms_key().public_key().to_bytes());
    assert_eq!(key["publicKey"], public.as_str());
    assert_eq!(key["hid"], mdms_hid().to_string());
    let e = env.err(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(T0_MS + 1)],
    );
    assert_error(&e, 409, ErrorCode::AlreadyRegistered);
}

fn mdms_request(key: &MdmsSecretKey, hid: Hid, ts: u64) -> String {
    b64(&bcami_sdk::MdmsRegistrationRequest::build(
        key,
        hid,
        bcami_sdk::Timestamp::from_unix_millis(ts),
    )
    .unwrap()
    .encode())
}

/// `RotateMdmsKey` by the administrator, expected to be refused.
fn refused_rotation(key: &MdmsSecretKey, hid: Hid, ts: u64, env: &mut Env) -> ContractError {
    env.err(
        admin(),
        Function::RotateMdmsKey,
        &[&mdms_request(key, hid, ts)],
    )
}

#[test]
fn the_administrator_rotates_the_mdms_key_and_a_replaced_key_never_returns() {
    let mut env = Env::new();
    env.ok(admin(), Function::ProvisionMdms, &[&mdms_hid().to_string()]);
    let e = refused_rotation(&mdms_key(), mdms_hid(), T0_MS, &mut env);
    assert_error(&e, 404, ErrorCode::MdmsNotRegistered);
    let registered_at = env.now_ms - 1000;
    env.ok(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(registered_at)],
    );
    env.now_ms += 10_000;
    let v1 = env.ok(dc(), Function::GetMdmsKey, &[]);
    assert_eq!(v1["keyVersion"], 1);
    assert_eq!(v1["keys"].as_array().unwrap().len(), 1);

    let k2 = MdmsSecretKey::from_entropy(&[0x29; 32]).unwrap();
    let rotation = mdms_request(&k2, mdms_hid(), env.now_ms);
    let before = env.dump();
    // Only the administrator: not the MDMS (whose identity a thief of its key may hold), not a DC.
    for who in [mdms(), dc(), operator_admin()] {
        let e = env.err(who, Function::RotateMdmsKey, &[&rotation]);
        assert_error(&e, 403, ErrorCode::Forbidden);
    }
    let e = refused_rotation(&k2, Meter::new(5).hid, env.now_ms, &mut env);
    assert_error(&e, 404, ErrorCode::UnknownMdms);
    let e = refused_rotation(&k2, mdms_hid(), env.now_ms - 400_000, &mut env);
    assert_error(&e, 400, ErrorCode::OutsideWindow);
    // Inside the window but not newer than the registration: an old request replayed.
    let e = refused_rotation(&k2, mdms_hid(), registered_at, &mut env);
    assert_error(&e, 409, ErrorCode::Replayed);
    let e = refused_rotation(&mdms_key(), mdms_hid(), env.now_ms, &mut env);
    assert_error(&e, 409, ErrorCode::KeyReused);
    assert!(e.message().contains("holds now"), "{e}");
    // The new key's proof of possession is checked: a request whose key was swapped fails.
    let mut spliced = STANDARD.decode(&rotation).unwrap();
    spliced[42..75].copy_from_slice(&mdms_key().public_key().to_bytes());
    let e = env.err(admin(), Function::RotateMdmsKey, &[&b64(&spliced)]);
    assert_error(&e, 400, ErrorCode::BadSignature);
    let e = env.err(
        admin(),
        Function::RotateMdmsKey,
        &[&Meter::new(1).registration(env.now_ms)],
    );
    assert_error(&e, 400, ErrorCode::BadArgument);
    assert_eq!(env.dump(), before, "a refused rotation changed the ledger");

    let out = env.ok(admin(), Function::RotateMdmsKey, &[&rotation]);
    assert_eq!(out["keyVersion"], 2);
    assert_eq!(out["keySince"], env.now_ms);
    assert_eq!(out["registeredAt"], registered_at);
    let v2 = env.ok(dc(), Function::GetMdmsKey, &[]);
    let hex = |k: &MdmsSecretKey| bcami_api::to_hex(&k.public_key().to_bytes());
    assert_eq!(v2["publicKey"], hex(&k2).as_str());
    let keys = v2["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (
            &keys[0]["version"],
            &keys[0]["publicKey"],
            &keys[0]["since"]
        ),
        (&1.into(), &hex(&mdms_key()).into(), &registered_at.into())
    );
    assert_eq!(
        (
            &keys[1]["version"],
            &keys[1]["publicKey"],
            &keys[1]["since"]
        ),
        (&2.into(), &hex(&k2).into(), &env.now_ms.into())
    );
    assert_ne!(keys[0]["txId"], keys[1]["txId"]);

    // The same request again is a replay; the first key, even in a fresh request, never returns.
    env.now_ms += 1000;
    let e = env.err(admin(), Function::RotateMdmsKey, &[&rotation]);
    assert_error(&e, 409, ErrorCode::Replayed);
    let e = refused_rotation(&mdms_key(), mdms_hid(), env.now_ms, &mut env);
    assert_error(&e, 409, ErrorCode::KeyReused);
    assert!(
        e.message()
            .contains("key version 1, which the MDMS held before"),
        "{e}"
    );
    let k3 = MdmsSecretKey::from_entropy(&[0x31; 32]).unwrap();
    let out = env.ok(
        admin(),
        Function::RotateMdmsKey,
        &[&mdms_request(&k3, mdms_hid(), env.now_ms)],
    );
    assert_eq!(out["keyVersion"], 3);
    // RegisterMdmsKey stays a one-time call.
    let e = env.err(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_request(&k3, mdms_hid(), env.now_ms + 1)],
    );
    assert_error(&e, 409, ErrorCode::AlreadyRegistered);
}

#[test]
fn an_mdms_record_from_before_key_versions_rotates_with_its_key_kept_as_version_1() {
    let mut env = Env::new();
    // The record as a contract without rotation wrote it: no keyVersion, no keySince, no
    // mdmskey~ history.
    let old = format!(
        r#"{{"hid":"{}","status":"registered","publicKey":"{}","registeredAt":{}}}"#,
        mdms_hid(),
        bcami_api::to_hex(&mdms_key().public_key().to_bytes()),
        env.now_ms - 1000
    );
    env.ledger.seed("mdms", old.as_bytes());
    let view = env.ok(dc(), Function::GetMdmsKey, &[]);
    assert_eq!(view["keys"].as_array().unwrap().len(), 1);
    assert_eq!(view["keys"][0]["version"], 1);

    env.now_ms += 5_000;
    let k2 = MdmsSecretKey::from_entropy(&[0x29; 32]).unwrap();
    let out = env.ok(
        admin(),
        Function::RotateMdmsKey,
        &[&mdms_request(&k2, mdms_hid(), env.now_ms)],
    );
    assert_eq!(out["keyVersion"], 2);
    let keys = env.ok(dc(), Function::GetMdmsKey, &[])["keys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert_eq!(keys[0]["since"], env.now_ms - 6_000);
}

#[test]
fn rotating_a_bound_mdms_key_moves_the_binding_to_the_new_key() {
    use bcami_api::KeyHash;
    let mut env = Env::new();
    let bound = KeyHash::of_mdms_key(&mdms_key().public_key());
    let entry = serde_json::json!({ "hid": mdms_hid().to_string(), "keyHash": bound.to_string() });
    env.ok(admin(), Function::ProvisionMdms, &[&entry.to_string()]);
    env.ok(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(env.now_ms - 1000)],
    );
    let k2 = MdmsSecretKey::from_entropy(&[0x29; 32]).unwrap();
    let out = env.ok(
        admin(),
        Function::RotateMdmsKey,
        &[&mdms_request(&k2, mdms_hid(), env.now_ms)],
    );
    let new = KeyHash::of_mdms_key(&k2.public_key());
    assert_eq!(out["keyHash"], new.to_string());
    // Re-provisioning with the old binding is now a conflict; with the new one, a no-op.
    let e = env.err(admin(), Function::ProvisionMdms, &[&entry.to_string()]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    let entry = serde_json::json!({ "hid": mdms_hid().to_string(), "keyHash": new.to_string() });
    env.ok(admin(), Function::ProvisionMdms, &[&entry.to_string()]);
}

// ---------------------------------------------------------------------------------------------
// Rotation and revocation
// ---------------------------------------------------------------------------------------------

#[test]
fn key_rotation_moves_to_the_new_key_and_keeps_the_old_one_on_record() {
    let mut env = Env::new();
    let mut m = Meter::new(1);
    env.setup(&[&m]);
    let mdms = mdms_key();
    let old_reading = m.reading(env.now_ms - 100, &mdms);
    let new_key = MeterSecretKey::from_entropy(&[0xee; 32]).unwrap();
    let rotation = m.rotation(&new_key, env.now_ms - 50);
    let out = env.ok(dc(), Function::RotateMeterKey, &[&rotation]);
    assert_eq!(out["keyVersion"], 2);
    // Replaying the rotation is refused (timestamp not after the last).
    let e = env.err(dc(), Function::RotateMeterKey, &[&rotation]);
    assert_error(&e, 409, ErrorCode::Replayed);

    // The old key no longer signs readings: even a fresh one is refused.
    let stale_key_reading = m.reading(env.now_ms - 10, &mdms);
    let result = env.submit(&[old_reading, stale_key_reading]);
    assert_eq!(
        reasons(&result),
        vec![
            Some(RejectReason::Replayed),
            Some(RejectReason::BadSignature)
        ]
    );
    let old_key = std::mem::replace(&mut m.key, new_key);
    let result = env.submit(&[m.reading(env.now_ms - 5, &mdms)]);
    assert_eq!(reasons(&result), vec![None]);

    let view = env.ok(admin(), Function::GetMeter, &[&m.hex()]);
    assert_eq!(view["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        view["keys"][0]["publicKey"],
        bcami_api::to_hex(&old_key.public_key().to_bytes()).as_str()
    );
    assert_eq!(view["keys"][1]["version"], 2);

    // Rotation must be signed by the CURRENT key: the old one no longer works.
    let impostor = Meter {
        id: m.id.clone(),
        hid: m.hid,
        key: old_key,
    };
    let again = MeterSecretKey::from_entropy(&[0xef; 32]).unwrap();
    let before = env.dump();
    let e = env.err(
        dc(),
        Function::RotateMeterKey,
        &[&impostor.rotation(&again, env.now_ms)],
    );
    assert_error(&e, 400, ErrorCode::BadSignature);
    // Rotating to the key already in use.
    let same = MeterSecretKey::from_bytes(&m.key.to_bytes()).unwrap();
    let e = env.err(
        dc(),
        Function::RotateMeterKey,
        &[&m.rotation(&same, env.now_ms)],
    );
    assert_error(&e, 400, ErrorCode::SameKey);
    let e = env.err(
        dc(),
        Function::RotateMeterKey,
        &[&m.rotation(&again, env.now_ms + 120_000)],
    );
    assert_error(&e, 400, ErrorCode::OutsideWindow);
    assert_eq!(env.dump(), before);
}

#[test]
fn rotation_needs_a_registered_active_meter() {
    let mut env = Env::new();
    let (a, b, c) = (Meter::new(1), Meter::new(2), Meter::new(3));
    env.provision(&[&a, &b]);
    env.register(&b);
    env.ok(admin(), Function::RevokeMeter, &[&b.hex()]);
    let new = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
    let e = env.err(dc(), Function::RotateMeterKey, &[&a.rotation(&new, T0_MS)]);
    assert_error(&e, 409, ErrorCode::NotRegistered);
    let e = env.err(dc(), Function::RotateMeterKey, &[&b.rotation(&new, T0_MS)]);
    assert_error(&e, 409, ErrorCode::Revoked);
    let e = env.err(dc(), Function::RotateMeterKey, &[&c.rotation(&new, T0_MS)]);
    assert_error(&e, 404, ErrorCode::UnknownMeter);
    let e = env.err(dc(), Function::RotateMeterKey, &[&a.registration(T0_MS)]);
    assert_error(&e, 400, ErrorCode::BadArgument);
}

#[test]
fn revocation_stops_readings_and_keeps_history() {
    let mut env = Env::new();
    let m = Meter::new(1);
    env.setup(&[&m]);
    let mdms = mdms_key();
    env.submit(&[m.reading(env.now_ms - 10, &mdms)]);
    let out = env.ok(admin(), Function::RevokeMeter, &[&m.hex()]);
    assert_eq!(out["status"], "revoked");
    assert_eq!(out["revokedAt"], env.now_ms);
    // Idempotent.
    let before = env.dump();
    env.ok(admin(), Function::RevokeMeter, &[&m.hex()]);
    assert_eq!(env.dump(), before);

    let result = env.submit(&[m.reading(env.now_ms - 5, &mdms)]);
    assert_eq!(reasons(&result), vec![Some(RejectReason::Revoked)]);
    assert_eq!(env.dump(), before);
    // History kept: the record, the key and the earlier reading are still there.
    let view = env.ok(admin(), Function::GetMeter, &[&m.hex()]);
    assert_eq!(view["meter"]["readings"], 1);
    assert_eq!(view["keys"].as_array().unwrap().len(), 1);
    let q = json!({"hid": m.hex()}).to_string();
    let page = env.ok(mdms_creator(), Function::GetReadings, &[&q]);
    assert_eq!(page["readings"].as_array().unwrap().len(), 1);

    let e = env.err(admin(), Function::RevokeMeter, &[&Meter::new(2).hex()]);
    assert_error(&e, 404, ErrorCode::UnknownMeter);
    let e = env.err(admin(), Function::RevokeMeter, &["xyz"]);
    assert_error(&e, 400, ErrorCode::BadArgument);
}

fn mdms_creator() -> fabric_shim::Creator {
    common::mdms()
}

// ---------------------------------------------------------------------------------------------
// Readings
// ---------------------------------------------------------------------------------------------

#[test]
fn accepted_readings_are_stored_counted_and_announced_in_one_event() {
    let mut env = Env::new();
    let (a, b) = (Meter::new(1), Meter::new(2));
    env.setup(&[&a, &b]);
    let mdms = mdms_key();
    let now = env.now_ms;
    let readings = vec![
        a.reading(now - 30, &mdms),
        b.reading(now - 20, &mdms),
        a.reading(now - 10, &mdms),
    ];
    let out = env.invoke(
        dc(),
        Function::SubmitReadings,
        &[&serde_json::to_string(&readings).unwrap()],
    );
    let response: Value = serde_json::from_slice(&out.result.unwrap()).unwrap();
    assert_eq!(response["accepted"], 3);
    assert_eq!(response["rejected"], 0);
    assert_eq!(response["rejections"], serde_json::json!([]));

    let (name, payload) = out.event.unwrap();
    assert_eq!(name, "ReadingsAccepted");
    let event: ReadingsEvent = serde_json::from_slice(&payload).unwrap();
    assert_eq!(event.rejected, 0);
    let in_event: Vec<(String, u64)> = event
        .accepted
        .iter()
        .map(|r| (r.hid.to_string(), r.timestamp))
        .collect();
    assert_eq!(
        in_event,
        vec![
            (a.hex(), now - 30),
            (b.hex(), now - 20),
            (a.hex(), now - 10)
        ]
    );
    // The event names each reading; the MDMS fetches it by that key and decrypts it.
    let page = env.ok(
        common::mdms(),
        Function::GetReadings,
        &[&json!({"hid": a.hex()}).to_string()],
    );
    let stored = page["readings"][0]["reading"].as_str().unwrap();
    let tx = Transaction::decode(&STANDARD.decode(stored).unwrap()).unwrap();
    assert_eq!(tx.decrypt(&mdms).unwrap(), report(now - 30));

    let counts = env.ok(admin(), Function::GetCounts, &[]);
    assert_eq!(counts["readings"], 3);
    let view = env.ok(admin(), Function::GetMeter, &[&a.hex()]);
    assert_eq!(view["meter"]["readings"], 2);
    assert_eq!(view["meter"]["lastTimestamp"], now - 10);
    // Stored under reading~HID~<20-digit timestamp>, value = the encoded transaction.
    let key = format!("\u{0}reading\u{0}{}\u{0}{:020}\u{0}", a.hex(), now - 30);
    assert_eq!(
        env.ledger.get(&key),
        Some(STANDARD.decode(&readings[0]).unwrap())
    );
}

/// A ledger snapshot, a batch of only-bad readings, and the snapshot again.
fn assert_rejected_without_state_change(
    env: &mut Env,
    readings: &[String],
    expected: &[RejectReason],
) {
    let before = env.dump();
    let out = env.invoke(
        dc(),
        Function::SubmitReadings,
        &[&serde_json::to_string(readings).unwrap()],
    );
    let response: Value = serde_json::from_slice(&out.result.expect("a batch is 200")).unwrap();
    let got = reasons(&response);
    let want: Vec<Option<RejectReason>> = expected.iter().copied().map(Some).collect();
    assert_eq!(got, want, "{response}");
    assert_eq!(response["accepted"], 0);
    assert_eq!(response["rejected"], readings.len());
    for r in response["rejections"].as_array().unwrap() {
        assert!(!r["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(env.dump(), before, "a rejected reading changed state");
    // Still one event, with nothing accepted.
    let (_, payload) = out.event.expect("one event per batch");
    let event: ReadingsEvent = serde_json::from_slice(&payload).unwrap();
    assert!(event.accepted.is_empty());
    assert_eq!(event.rejected, readings.len());
}

#[test]
fn every_rejection_reason_and_none_changes_state() {
    for kind in [VerifierKind::Libsecp256k1, VerifierKind::K256] {
        let mut env = Env::with_verifier(kind);
        let (m, provisioned_only, revoked, unknown) =
            (Meter::new(1), Meter::new(2), Meter::new(3), Meter::new(4));
        env.setup(&[&m, &revoked]);
        env.provision(&[&provisioned_only]);
        env.ok(admin(), Function::RevokeMeter, &[&revoked.hex()]);
        let mdms = mdms_key();
        let now = env.now_ms;
        env.submit(&[m.reading(now - 1000, &mdms)]);

        let good = m.reading_bytes(now - 10, &mdms);
        // Bad signature: signed by another key.
        let impostor = Meter {
            id: m.id.clone(),
            hid: m.hid,
            key: MeterSecretKey::from_entropy(&[0x99; 32]).unwrap(),
        };
        let bad_signature = impostor.reading(now - 10, &mdms);
        // Tampered ciphertext: one bit of the AES-GCM ciphertext flipped.
        let mut tampered = good.clone();
        tampered[44 + 40] ^= 0x01;
        // Wrong hash: the meter's own key signs a hash that is not SHA-256 of this ciphertext.
        let tx = Transaction::decode(&good).unwrap();
        let signing = k256::ecdsa::SigningKey::from_bytes(&m.key.to_bytes().into()).unwrap();
        let wrong_hash = Sha256::digest(b"some other ciphertext");
        let digest = Sha256::new()
            .chain_update(domain::READING)
            .chain_update(&good[..42])
            .chain_update(wrong_hash);
        let sig: k256::ecdsa::Signature = signing.sign_digest(digest);
        let sig = sig.normalize_s().unwrap_or(sig);
        let mut wrong = good.clone();
        let n = wrong.len();
        wrong[n - 64..].copy_from_slice(&sig.to_bytes());
        assert_ne!(tx.ciphertext_hash().as_slice(), wrong_hash.as_slice());
        // Truncated, trailing byte, oversize, not base64.
        let truncated = b64(&good[..good.len() - 1]);
        let mut trailing = good.clone();
        trailing.push(0);
        let oversize = b64(&vec![0u8; bcami_api::MAX_READING_BYTES + 1]);
        let oversize_text = "A".repeat(2000);

        assert_rejected_without_state_change(
            &mut env,
            &[
                unknown.reading(now - 10, &mdms),
                provisioned_only.reading(now - 10, &mdms),
                revoked.reading(now - 10, &mdms),
                bad_signature,
                b64(&tampered),
                b64(&wrong),
                m.reading(now - 1000, &mdms),
                m.reading(now - 2000, &mdms),
                m.reading(now - 300_001, &mdms),
                m.reading(now + 60_001, &mdms),
                oversize,
                oversize_text,
                "not base64!".into(),
                truncated,
                b64(&trailing),
                String::new(),
            ],
            &[
                RejectReason::UnknownMeter,
                RejectReason::NotRegistered,
                RejectReason::Revoked,
                RejectReason::BadSignature,
                RejectReason::BadSignature,
                RejectReason::BadSignature,
                RejectReason::Replayed,
                RejectReason::Replayed,
                RejectReason::Stale,
                RejectReason::Future,
                RejectReason::Oversize,
                RejectReason::Oversize,
                RejectReason::BadBase64,
                RejectReason::Malformed,
                RejectReason::Malformed,
                RejectReason::Malformed,
            ],
        );
        // The good reading itself is accepted afterwards: the rejections did not poison state.
        let out = env.submit(&[b64(&good)]);
        assert_eq!(reasons(&out), vec![None]);
    }
}

#[test]
fn window_edges_are_inclusive() {
    let mut env = Env::new();
    let m = Meter::new(1);
    env.setup(&[&m]);
    let mdms = mdms_key();
    // Registration happened at T0 - 1 s; move on so the window's far edge is after it.
    env.now_ms = T0_MS + 400_000;
    let now = env.now_ms;
    let out = env.submit(&[
        m.reading(now - 300_000, &mdms),
        m.reading(now + 60_000, &mdms),
    ]);
    assert_eq!(reasons(&out), vec![None, None]);
}

#[test]
fn a_meter_twice_in_a_batch_is_processed_in_order() {
    let mut env = Env::new();
    let m = Meter::new(1);
    env.setup(&[&m]);
    let mdms = mdms_key();
    let now = env.now_ms;
    let out = env.submit(&[
        m.reading(now - 30, &mdms),
        m.reading(now - 20, &mdms),
        m.reading(now - 20, &mdms), // exact duplicate
        m.reading(now - 25, &mdms), // older than one accepted earlier in the batch
        m.reading(now - 10, &mdms),
    ]);
    assert_eq!(
        reasons(&out),
        vec![
            None,
            None,
            Some(RejectReason::Replayed),
            Some(RejectReason::Replayed),
            None
        ]
    );
    let q = json!({"hid": m.hex()}).to_string();
    let page = env.ok(admin(), Function::GetReadings, &[&q]);
    let times: Vec<u64> = page["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timestamp"].as_u64().unwrap())
        .collect();
    assert_eq!(times, vec![now - 30, now - 20, now - 10]);
    let view = env.ok(admin(), Function::GetMeter, &[&m.hex()]);
    assert_eq!(view["meter"]["readings"], 3);
}

#[test]
fn malformed_batch_arguments_are_400_for_the_whole_call() {
    let mut env = Env::new();
    let m = Meter::new(1);
    env.setup(&[&m]);
    let good = m.reading(env.now_ms - 1, &mdms_key());
    let before = env.dump();
    let too_many = serde_json::to_string(&vec![good.clone(); 1001]).unwrap();
    let huge = format!("[\"{}\"]", "A".repeat(bcami_api::MAX_BATCH_ARG_BYTES));
    for bad in [
        "".to_owned(),
        "not json".into(),
        "[]".into(),
        "{}".into(),
        "[1, 2]".into(),
        format!("[\"{good}\", 3]"),
        format!("{{\"readings\":[\"{good}\"]}}"),
        too_many,
        huge,
    ] {
        let e = env.err(dc(), Function::SubmitReadings, &[&bad]);
        assert_error(&e, 400, ErrorCode::BadArgument);
    }
    let e = env.err(dc(), Function::SubmitReadings, &[]);
    assert_error(&e, 400, ErrorCode::BadArgument);
    let e = env.err(
        dc(),
        Function::SubmitReadings,
        &[&format!("[\"{good}\"]"), "extra"],
    );
    assert_error(&e, 400, ErrorCode::BadArgument);
    let out = env.invoke_raw(dc(), Function::SubmitReadings, vec![vec![0xff, 0xfe]]);
    assert_error(&out.result.unwrap_err(), 400, ErrorCode::BadArgument);
    assert_eq!(env.dump(), before);
    // A full batch of 1,000 is fine.
    let full: Vec<String> = (0..1000)
        .map(|i| m.reading(env.now_ms - 2000 + i, &mdms_key()))
        .collect();
    let out = env.submit(&full);
    assert_eq!(out["accepted"], 1000);
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

#[test]
fn get_readings_pages_in_time_order_within_bounds() {
    let mut env = Env::new();
    let (a, b) = (Meter::new(1), Meter::new(2));
    env.setup(&[&a, &b]);
    let mdms = mdms_key();
    let now = env.now_ms;
    // Submitted out of time order across batches is impossible (replay), so interleave meters.
    let times: Vec<u64> = (0..7).map(|i| now - 7000 + i * 1000).collect();
    let batch: Vec<String> = times
        .iter()
        .flat_map(|t| [a.reading(*t, &mdms), b.reading(*t + 1, &mdms)])
        .collect();
    env.submit(&batch);

    let mut bookmark = String::new();
    let mut seen = Vec::new();
    loop {
        let q = json!({"hid": a.hex(), "pageSize": 3, "bookmark": bookmark}).to_string();
        let page = env.ok(mdms_creator(), Function::GetReadings, &[&q]);
        assert_eq!(page["hid"], a.hex());
        for r in page["readings"].as_array().unwrap() {
            let tx = Transaction::decode(&STANDARD.decode(r["reading"].as_str().unwrap()).unwrap())
                .unwrap();
            assert_eq!(tx.hid(), a.hid);
            assert_eq!(
                tx.timestamp().unix_millis(),
                r["timestamp"].as_u64().unwrap()
            );
            seen.push(tx.timestamp().unix_millis());
        }
        bookmark = page["bookmark"].as_str().unwrap().to_owned();
        if bookmark.is_empty() {
            break;
        }
    }
    assert_eq!(seen, times);

    // from inclusive, to exclusive.
    let q = json!({"hid": a.hex(), "from": times[2], "to": times[5]}).to_string();
    let page = env.ok(admin(), Function::GetReadings, &[&q]);
    let got: Vec<u64> = page["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timestamp"].as_u64().unwrap())
        .collect();
    assert_eq!(got, times[2..5].to_vec());
    assert_eq!(page["bookmark"], "");
    // Pages stop at `to` with no bookmark past it.
    let q = json!({"hid": a.hex(), "from": times[2], "to": times[4], "pageSize": 2}).to_string();
    let page = env.ok(admin(), Function::GetReadings, &[&q]);
    assert_eq!(page["readings"].as_array().unwrap().len(), 2);
    assert_eq!(page["bookmark"], "");

    let e = env.err(dc(), Function::GetReadings, &[&q]);
    assert_error(&e, 403, ErrorCode::Forbidden);
    let q = json!({"hid": Meter::new(9).hex()}).to_string();
    let e = env.err(admin(), Function::GetReadings, &[&q]);
    assert_error(&e, 404, ErrorCode::UnknownMeter);
    for bad in [
        json!({"hid": "x"}).to_string(),
        json!({"hid": a.hex(), "pageSize": 0}).to_string(),
        json!({"hid": a.hex(), "pageSize": 1001}).to_string(),
        json!({"hid": a.hex(), "from": 5, "to": 5}).to_string(),
        json!({"hid": a.hex(), "bookmark": "abc"}).to_string(),
        json!({"hid": a.hex(), "extra": 1}).to_string(),
        json!({"from": 1}).to_string(),
        "nope".to_owned(),
    ] {
        let e = env.err(admin(), Function::GetReadings, &[&bad]);
        assert_error(&e, 400, ErrorCode::BadArgument);
    }
}

#[test]
fn list_meters_pages_in_hid_order_and_counts_add_up() {
    let mut env = Env::new();
    let meters: Vec<Meter> = (1..=5).map(Meter::new).collect();
    let refs: Vec<&Meter> = meters.iter().collect();
    env.setup(&refs[..2]);
    env.provision(&refs);
    env.ok(admin(), Function::RevokeMeter, &[&meters[4].hex()]);
    let mdms = mdms_key();
    env.submit(&[meters[0].reading(env.now_ms - 5, &mdms)]);

    let mut all = Vec::new();
    let mut bookmark = String::new();
    loop {
        let q = json!({"pageSize": 2, "bookmark": bookmark}).to_string();
        let page = env.ok(dc(), Function::ListMeters, &[&q]);
        for m in page["meters"].as_array().unwrap() {
            all.push(m["hid"].as_str().unwrap().to_owned());
        }
        bookmark = page["bookmark"].as_str().unwrap().to_owned();
        if bookmark.is_empty() {
            break;
        }
    }
    let mut expected: Vec<String> = meters.iter().map(Meter::hex).collect();
    expected.sort();
    assert_eq!(all, expected);
    let page = env.ok(dc(), Function::ListMeters, &[]);
    assert_eq!(page["meters"].as_array().unwrap().len(), 5);
    let e = env.err(dc(), Function::ListMeters, &[r#"{"pageSize":0}"#]);
    assert_error(&e, 400, ErrorCode::BadArgument);
    let e = env.err(dc(), Function::ListMeters, &["{}", "{}"]);
    assert_error(&e, 400, ErrorCode::BadArgument);

    let counts = env.ok(mdms_creator(), Function::GetCounts, &[]);
    assert_eq!(
        counts,
        json!({"meters": {"provisioned": 2, "active": 2, "revoked": 1, "total": 5}, "readings": 1, "mdms": "registered"})
    );
    let e = env.err(stranger(), Function::GetCounts, &[]);
    assert_error(&e, 403, ErrorCode::Forbidden);
    let e = env.err(admin(), Function::GetCounts, &["x"]);
    assert_error(&e, 400, ErrorCode::BadArgument);
}

#[test]
fn get_meter_needs_a_known_hid() {
    let mut env = Env::new();
    let e = env.err(dc(), Function::GetMeter, &[&Meter::new(1).hex()]);
    assert_error(&e, 404, ErrorCode::UnknownMeter);
    let e = env.err(dc(), Function::GetMeter, &["00"]);
    assert_error(&e, 400, ErrorCode::BadArgument);
    let e = env.err(dc(), Function::GetMeter, &[]);
    assert_error(&e, 400, ErrorCode::BadArgument);
}

// ---------------------------------------------------------------------------------------------
// Determinism and verifiers
// ---------------------------------------------------------------------------------------------

#[test]
fn same_inputs_give_identical_responses_events_and_state() {
    let run = |kind| {
        let mut env = Env::with_verifier(kind);
        let (a, b) = (Meter::new(1), Meter::new(2));
        env.setup(&[&a, &b]);
        let mdms = mdms_key();
        let now = env.now_ms;
        let batch = vec![
            b.reading(now - 3, &mdms),
            a.reading(now - 2, &mdms),
            "bad".to_owned(),
            a.reading(now - 2, &mdms),
        ];
        let out = env.invoke(
            dc(),
            Function::SubmitReadings,
            &[&serde_json::to_string(&batch).unwrap()],
        );
        (out, env.dump())
    };
    let first = run(VerifierKind::Libsecp256k1);
    assert_eq!(first, run(VerifierKind::Libsecp256k1));
    assert_eq!(first, run(VerifierKind::K256));
}

#[test]
fn the_deployed_contract_uses_libsecp256k1_and_answers_like_new() {
    let c = contract();
    let mut env = Env::new();
    let ctx = env.context(dc(), Function::GetConfig, vec![]);
    let out = env.ledger.invoke(&c as &dyn Contract, ctx);
    assert!(out.result.is_ok());
    assert!(format!("{c:?}").contains("Libsecp256k1"));
}
