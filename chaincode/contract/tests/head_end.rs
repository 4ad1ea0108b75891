//! The AMI head-end on the ledger (`ProvisionHeadEnd`, `RegisterHeadEndKey`, `GetHeadEnd`,
//! `RotateHeadEndKey`): the MDMS's rules applied to a second service, and the HID conflicts
//! between meters, the MDMS and the head-end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_api::{ErrorCode, Function, KeyHash};
use bcami_sdk::{HeadEndRegistrationRequest, HeadEndSecretKey, Hid, Timestamp};
use common::*;

fn ahe_hid() -> Hid {
    Hid::from_meter_id("AHE-1")
}

fn ahe_key(n: u8) -> HeadEndSecretKey {
    HeadEndSecretKey::from_entropy(&[n; 32]).unwrap()
}

fn request(key: &HeadEndSecretKey, hid: Hid, ts: u64) -> String {
    b64(
        &HeadEndRegistrationRequest::build(key, hid, Timestamp::from_unix_millis(ts))
            .unwrap()
            .encode(),
    )
}

fn hex(key: &HeadEndSecretKey) -> String {
    bcami_api::to_hex(&key.public_key().to_bytes())
}

#[test]
fn the_head_end_is_provisioned_registers_its_key_and_meters_read_it() {
    let mut env = Env::new();
    let e = env.err(dc(), Function::GetHeadEnd, &[]);
    assert_error(&e, 404, ErrorCode::UnknownHeadEnd);
    let e = env.err(
        mdms(),
        Function::RegisterHeadEndKey,
        &[&request(&ahe_key(1), ahe_hid(), T0_MS)],
    );
    assert_error(&e, 404, ErrorCode::UnknownHeadEnd);
    // Only the administrator provisions it.
    for who in [mdms(), dc()] {
        let e = env.err(who, Function::ProvisionHeadEnd, &[&ahe_hid().to_string()]);
        assert_error(&e, 403, ErrorCode::Forbidden);
    }
    let out = env.ok(
        admin(),
        Function::ProvisionHeadEnd,
        &[&ahe_hid().to_string()],
    );
    assert_eq!(out["status"], "provisioned");
    let before = env.dump();
    env.ok(
        admin(),
        Function::ProvisionHeadEnd,
        &[&ahe_hid().to_string()],
    );
    assert_eq!(env.dump(), before, "provisioning again changed the ledger");
    let e = env.err(dc(), Function::GetHeadEnd, &[]);
    assert_error(&e, 404, ErrorCode::HeadEndNotRegistered);
    let e = env.err(admin(), Function::ProvisionHeadEnd, &[&Meter::new(9).hex()]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);

    // Refusals: another HID, a stale request, a DC relaying it, a swapped key, an MDMS request.
    let e = env.err(
        mdms(),
        Function::RegisterHeadEndKey,
        &[&request(&ahe_key(1), Meter::new(5).hid, T0_MS)],
    );
    assert_error(&e, 404, ErrorCode::UnknownHeadEnd);
    let e = env.err(
        mdms(),
        Function::RegisterHeadEndKey,
        &[&request(&ahe_key(1), ahe_hid(), T0_MS - 400_000)],
    );
    assert_error(&e, 400, ErrorCode::OutsideWindow);
    let e = env.err(
        dc(),
        Function::RegisterHeadEndKey,
        &[&request(&ahe_key(1), ahe_hid(), T0_MS)],
    );
    assert_error(&e, 403, ErrorCode::Forbidden);
    let mut spliced = STANDARD
        .decode(request(&ahe_key(1), ahe_hid(), T0_MS))
        .unwrap();
    spliced[42..75].copy_from_slice(&ahe_key(2).public_key().to_bytes());
    let e = env.err(mdms(), Function::RegisterHeadEndKey, &[&b64(&spliced)]);
    assert_error(&e, 400, ErrorCode::BadSignature);
    let e = env.err(
        mdms(),
        Function::RegisterHeadEndKey,
        &[&mdms_registration(T0_MS)],
    );
    assert_error(&e, 400, ErrorCode::BadArgument);
    assert_eq!(
        env.dump(),
        before,
        "a refused registration changed the ledger"
    );

    let registered_at = T0_MS - 1000;
    let out = env.ok(
        mdms(),
        Function::RegisterHeadEndKey,
        &[&request(&ahe_key(1), ahe_hid(), registered_at)],
    );
    assert_eq!(out["status"], "registered");
    assert_eq!(out["keyVersion"], 1);
    // Every role reads it: meters get it through their concentrator.
    for who in [dc(), mdms(), admin()] {
        let view = env.ok(who, Function::GetHeadEnd, &[]);
        assert_eq!(view["hid"], ahe_hid().to_string());
        assert_eq!(view["publicKey"], hex(&ahe_key(1)).as_str());
        assert_eq!(view["keys"].as_array().unwrap().len(), 1);
    }
    let e = env.err(
        mdms(),
        Function::RegisterHeadEndKey,
        &[&request(&ahe_key(3), ahe_hid(), T0_MS)],
    );
    assert_error(&e, 409, ErrorCode::AlreadyRegistered);
    // The head-end's state is its own: the MDMS is untouched.
    let e = env.err(dc(), Function::GetMdmsKey, &[]);
    assert_error(&e, 404, ErrorCode::UnknownMdms);
}

#[test]
fn the_administrator_rotates_the_head_end_key_and_a_replaced_key_never_returns() {
    let mut env = Env::new();
    env.ok(
        admin(),
        Function::ProvisionHeadEnd,
        &[&ahe_hid().to_string()],
    );
    let e = env.err(
        admin(),
        Function::RotateHeadEndKey,
        &[&request(&ahe_key(2), ahe_hid(), T0_MS)],
    );
    assert_error(&e, 404, ErrorCode::HeadEndNotRegistered);
    let registered_at = env.now_ms - 1000;
    env.ok(
        mdms(),
        Function::RegisterHeadEndKey,
        &[&request(&ahe_key(1), ahe_hid(), registered_at)],
    );
    env.now_ms += 10_000;
    let rotation = request(&ahe_key(2), ahe_hid(), env.now_ms);
    let before = env.dump();
    for who in [mdms(), dc(), operator_admin()] {
        let e = env.err(who, Function::RotateHeadEndKey, &[&rotation]);
        assert_error(&e, 403, ErrorCode::Forbidden);
    }
    let e = env.err(
        admin(),
        Function::RotateHeadEndKey,
        &[&request(&ahe_key(2), ahe_hid(), registered_at)],
    );
    assert_error(&e, 409, ErrorCode::Replayed);
    assert!(e.message().contains("the head-end"), "{e}");
    let e = env.err(
        admin(),
        Function::RotateHeadEndKey,
        &[&request(&ahe_key(1), ahe_hid(), env.now_ms)],
    );
    assert_error(&e, 409, ErrorCode::KeyReused);
    assert!(e.message().contains("which the head-end holds now"), "{e}");
    assert_eq!(env.dump(), before, "a refused rotation changed the ledger");

    let out = env.ok(admin(), Function::RotateHeadEndKey, &[&rotation]);
    assert_eq!(out["keyVersion"], 2);
    let view = env.ok(dc(), Function::GetHeadEnd, &[]);
    assert_eq!(view["publicKey"], hex(&ahe_key(2)).as_str());
    let keys = view["keys"].as_array().unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k["version"].as_u64().unwrap(), k["publicKey"].clone()))
            .collect::<Vec<_>>(),
        vec![(1, hex(&ahe_key(1)).into()), (2, hex(&ahe_key(2)).into())]
    );
    env.now_ms += 1000;
    let e = env.err(
        admin(),
        Function::RotateHeadEndKey,
        &[&request(&ahe_key(1), ahe_hid(), env.now_ms)],
    );
    assert_error(&e, 409, ErrorCode::KeyReused);
    assert!(e.message().contains("held before"), "{e}");
}

#[test]
fn a_bound_head_end_registers_only_its_key_and_the_binding_follows_rotation() {
    let mut env = Env::new();
    let bound = KeyHash::of_service_key(&ahe_key(1).public_key());
    let entry = format!(r#"{{"hid":"{}","keyHash":"{bound}"}}"#, ahe_hid());
    let out = env.ok(admin(), Function::ProvisionHeadEnd, &[&entry]);
    assert_eq!(out["keyHash"], bound.to_string());
    let e = env.err(
        mdms(),
        Function::RegisterHeadEndKey,
        &[&request(&ahe_key(7), ahe_hid(), T0_MS)],
    );
    assert_error(&e, 409, ErrorCode::KeyNotProvisioned);
    let other = KeyHash::of_service_key(&ahe_key(7).public_key());
    let e = env.err(
        admin(),
        Function::ProvisionHeadEnd,
        &[&format!(r#"{{"hid":"{}","keyHash":"{other}"}}"#, ahe_hid())],
    );
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    env.ok(
        mdms(),
        Function::RegisterHeadEndKey,
        &[&request(&ahe_key(1), ahe_hid(), T0_MS)],
    );
    env.now_ms += 10_000;
    let out = env.ok(
        admin(),
        Function::RotateHeadEndKey,
        &[&request(&ahe_key(2), ahe_hid(), env.now_ms)],
    );
    assert_eq!(
        out["keyHash"],
        KeyHash::of_service_key(&ahe_key(2).public_key()).to_string()
    );
}

#[test]
fn no_hid_is_both_a_meter_the_mdms_and_the_head_end() {
    let mut env = Env::new();
    let m = Meter::new(1);
    env.provision(&[&m]);
    env.ok(admin(), Function::ProvisionMdms, &[&mdms_hid().to_string()]);
    for taken in [m.hex(), mdms_hid().to_string()] {
        let e = env.err(admin(), Function::ProvisionHeadEnd, &[&taken]);
        assert_error(&e, 409, ErrorCode::ProvisionConflict);
    }
    env.ok(
        admin(),
        Function::ProvisionHeadEnd,
        &[&ahe_hid().to_string()],
    );
    let e = env.err(
        admin(),
        Function::ProvisionMeters,
        &[&format!(r#"{{"meters":["{}"]}}"#, ahe_hid())],
    );
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    assert!(e.message().contains("the head-end's"), "{e}");
    // A second MDMS cannot take the head-end's HID either (the MDMS is already provisioned here,
    // so use a fresh ledger).
    let mut env = Env::new();
    env.ok(
        admin(),
        Function::ProvisionHeadEnd,
        &[&ahe_hid().to_string()],
    );
    let e = env.err(admin(), Function::ProvisionMdms, &[&ahe_hid().to_string()]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    assert!(e.message().contains("the head-end's"), "{e}");
}
