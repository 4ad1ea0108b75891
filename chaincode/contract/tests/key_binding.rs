//! Keys bound at provisioning (docs/threat-model.md, "Register a provisioned meter with a key of
//! its own choosing"): the administrator may give the SHA-256 of the device's compressed public
//! key with its HID; registration then accepts only that key. Without a hash, registration stays
//! trust-on-first-use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bcami_api::{ErrorCode, Function, RejectReason};
use bcami_sdk::{MdmsRegistrationRequest, MdmsSecretKey, MeterSecretKey, Timestamp};
use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// SHA-256 of the 33 compressed bytes, computed here rather than with the contract's own type.
fn hash_of(sec1: [u8; 33]) -> String {
    bcami_api::to_hex(&Sha256::digest(sec1))
}

fn key_hash(m: &Meter) -> String {
    hash_of(m.key.public_key().to_bytes())
}

/// The same HID with a key of the hijacker's choosing.
fn hijacker(m: &Meter) -> Meter {
    let mut entropy = [0x66u8; 32];
    entropy[..4].copy_from_slice(&m.hid.as_bytes()[..4]);
    Meter {
        id: m.id.clone(),
        hid: m.hid,
        key: MeterSecretKey::from_entropy(&entropy).unwrap(),
    }
}

fn bound(m: &Meter) -> Value {
    json!({"hid": m.hex(), "keyHash": key_hash(m)})
}

fn provision(env: &mut Env, entries: Value) -> Value {
    let arg = json!({ "meters": entries }).to_string();
    env.ok(admin(), Function::ProvisionMeters, &[&arg])
}

fn meter(env: &mut Env, m: &Meter) -> Value {
    env.ok(dc(), Function::GetMeter, &[&m.hex()])["meter"].clone()
}

#[test]
fn a_hijack_of_a_bound_meter_is_refused_and_changes_nothing_then_the_meter_registers() {
    let mut env = Env::new();
    env.ok(admin(), Function::ProvisionMdms, &[&mdms_hid().to_string()]);
    env.ok(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(env.now_ms)],
    );
    let m = Meter::new(1);
    let out = provision(&mut env, json!([bound(&m)]));
    assert_eq!(out, json!({"provisioned": [m.hex()], "unchanged": 0}));
    let record = meter(&mut env, &m);
    assert_eq!(record["status"], "provisioned");
    assert_eq!(record["keyHash"], key_hash(&m));

    let thief = hijacker(&m);
    let before = env.dump();
    let e = env.err(
        dc(),
        Function::RegisterMeter,
        &[&thief.registration(env.now_ms)],
    );
    assert_error(&e, 409, ErrorCode::KeyNotProvisioned);
    for part in [m.hex(), key_hash(&m), key_hash(&thief)] {
        assert!(e.message().contains(&part), "{part} not in {e}");
    }
    // The binding is checked first: a hijacker's message that would also fail later checks
    // (stale, or a proof of possession by yet another key) gets the same answer.
    let e = env.err(
        dc(),
        Function::RegisterMeter,
        &[&thief.registration(env.now_ms - 400_000)],
    );
    assert_error(&e, 409, ErrorCode::KeyNotProvisioned);
    assert_eq!(env.dump(), before, "a refused hijack changed state");
    // Nor can the hijacker submit readings: the meter has no key.
    let result = env.submit(&[thief.reading(env.now_ms - 10, &mdms_key())]);
    assert_eq!(reasons(&result), vec![Some(RejectReason::NotRegistered)]);

    // The real meter registers as usual, and its readings are accepted.
    let out = env.ok(
        dc(),
        Function::RegisterMeter,
        &[&m.registration(env.now_ms - 100)],
    );
    assert_eq!(out["status"], "active");
    assert_eq!(out["keyVersion"], 1);
    assert_eq!(out["keyHash"], key_hash(&m));
    let result = env.submit(&[m.reading(env.now_ms - 10, &mdms_key())]);
    assert_eq!(reasons(&result), vec![None]);

    // Operators can audit the binding in every view of the meter.
    let view = env.ok(mdms(), Function::GetMeter, &[&m.hex()]);
    assert_eq!(view["meter"]["keyHash"], key_hash(&m));
    assert_eq!(
        hash_of(bcami_api::from_hex(view["keys"][0]["publicKey"].as_str().unwrap()).unwrap()),
        key_hash(&m)
    );
    let list = env.ok(admin(), Function::ListMeters, &[]);
    assert_eq!(list["meters"][0]["keyHash"], key_hash(&m));

    // Rotation is unaffected: it needs the current key, and the binding stays on record.
    let new = MeterSecretKey::from_entropy(&[0x42; 32]).unwrap();
    env.now_ms += 1000;
    let out = env.ok(
        dc(),
        Function::RotateMeterKey,
        &[&m.rotation(&new, env.now_ms)],
    );
    assert_eq!(out["keyVersion"], 2);
    assert_eq!(out["keyHash"], key_hash(&m));
}

#[test]
fn unbound_meters_keep_trust_on_first_use_and_mix_with_bound_ones() {
    let mut env = Env::new();
    let (plain, locked) = (Meter::new(1), Meter::new(2));
    let out = provision(&mut env, json!([plain.hex(), bound(&locked)]));
    let mut expected = vec![plain.hex(), locked.hex()];
    expected.sort();
    assert_eq!(out["provisioned"], json!(expected));
    let record = meter(&mut env, &plain);
    assert!(record.get("keyHash").is_none(), "{record}");

    // Whoever comes first registers an unbound meter: here, the hijacker (the documented
    // trust-on-first-use risk); the real meter is then too late.
    env.ok(
        dc(),
        Function::RegisterMeter,
        &[&hijacker(&plain).registration(env.now_ms)],
    );
    let e = env.err(
        dc(),
        Function::RegisterMeter,
        &[&plain.registration(env.now_ms)],
    );
    assert_error(&e, 409, ErrorCode::AlreadyRegistered);
    let e = env.err(
        dc(),
        Function::RegisterMeter,
        &[&hijacker(&locked).registration(env.now_ms)],
    );
    assert_error(&e, 409, ErrorCode::KeyNotProvisioned);
    env.ok(
        dc(),
        Function::RegisterMeter,
        &[&locked.registration(env.now_ms)],
    );
}

#[test]
fn reprovisioning_never_changes_a_binding_and_binds_only_a_matching_registered_key() {
    let mut env = Env::new();
    let (a, b, c, d) = (Meter::new(1), Meter::new(2), Meter::new(3), Meter::new(4));
    provision(&mut env, json!([bound(&a), b.hex(), c.hex(), d.hex()]));

    // The same binding, or the plain HID, again: no-op; the binding stays.
    let before = env.dump();
    let out = provision(&mut env, json!([bound(&a)]));
    assert_eq!(out, json!({"provisioned": [], "unchanged": 1}));
    let out = provision(&mut env, json!([a.hex()]));
    assert_eq!(out, json!({"provisioned": [], "unchanged": 1}));
    assert_eq!(env.dump(), before);

    // Another hash for a bound meter: 409, and nothing else in the call is written.
    let e5 = Meter::new(5);
    let arg = json!({"meters": [e5.hex(), {"hid": a.hex(), "keyHash": key_hash(&b)}]}).to_string();
    let e = env.err(admin(), Function::ProvisionMeters, &[&arg]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    assert!(e.message().contains(&a.hex()), "{e}");
    assert!(e.message().contains(&key_hash(&a)), "{e}");
    assert_eq!(env.dump(), before);

    // An unbound meter that has not registered yet can be bound (closing its window); one that
    // registered by trust on first use only with the hash of the key it registered (version 1,
    // even after a rotation).
    env.ok(
        dc(),
        Function::RegisterMeter,
        &[&c.registration(env.now_ms - 10)],
    );
    env.now_ms += 1000;
    let new = MeterSecretKey::from_entropy(&[0x43; 32]).unwrap();
    env.ok(
        dc(),
        Function::RotateMeterKey,
        &[&c.rotation(&new, env.now_ms)],
    );
    env.ok(
        dc(),
        Function::RegisterMeter,
        &[&hijacker(&d).registration(env.now_ms)],
    );
    let before = env.dump();
    let arg = json!({"meters": [bound(&b), bound(&d)]}).to_string();
    let e = env.err(admin(), Function::ProvisionMeters, &[&arg]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    assert!(e.message().contains(&key_hash(&hijacker(&d))), "{e}");
    assert!(e.message().contains("revoke"), "{e}");
    assert_eq!(env.dump(), before, "a refused binding changed state");

    let out = provision(&mut env, json!([bound(&b), bound(&c), e5.hex()]));
    let mut expected = vec![b.hex(), c.hex()];
    expected.sort();
    assert_eq!(
        out,
        json!({"provisioned": [e5.hex()], "bound": expected, "unchanged": 0})
    );
    assert_eq!(meter(&mut env, &c)["keyHash"], key_hash(&c));
    assert_eq!(meter(&mut env, &c)["keyVersion"], 2);
    let e = env.err(
        dc(),
        Function::RegisterMeter,
        &[&hijacker(&b).registration(env.now_ms)],
    );
    assert_error(&e, 409, ErrorCode::KeyNotProvisioned);
    env.ok(
        dc(),
        Function::RegisterMeter,
        &[&b.registration(env.now_ms)],
    );

    // Revoked stays final, bound or not.
    env.ok(admin(), Function::RevokeMeter, &[&b.hex()]);
    let arg = json!({"meters": [bound(&b)]}).to_string();
    let e = env.err(admin(), Function::ProvisionMeters, &[&arg]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
}

#[test]
fn malformed_entries_are_400_naming_the_element() {
    let mut env = Env::new();
    let (a, b) = (Meter::new(1), Meter::new(2));
    let (ha, hb) = (a.hex(), b.hex());
    let hash = key_hash(&a);
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"{{"meters":["{ha}",{{"hid":"{hb}","keyHash":"xyz"}}]}}"#),
            r#"meters[1].keyHash is not a key hash (64 hex digits: SHA-256 of the 33-byte compressed public key): "xyz""#,
        ),
        (
            format!(
                r#"{{"meters":[{{"hid":"{ha}","keyHash":"{}"}}]}}"#,
                &hash[1..]
            ),
            "meters[0].keyHash is not a key hash",
        ),
        (
            format!(r#"{{"meters":[{{"hid":"{ha}","keyHash":"{hash}0"}}]}}"#),
            "meters[0].keyHash is not a key hash",
        ),
        (
            format!(
                r#"{{"meters":[{{"hid":"{ha}","keyHash":"{}g"}}]}}"#,
                &hash[1..]
            ),
            "meters[0].keyHash is not a key hash",
        ),
        (
            format!(r#"{{"meters":[{{"hid":"{ha}","keyHash":42}}]}}"#),
            r#"meters[0].keyHash is not a key hash (64 hex digits: SHA-256 of the 33-byte compressed public key): "42""#,
        ),
        (
            format!(r#"{{"meters":[{{"hid":"{ha}","keyHash":null}}]}}"#),
            "meters[0].keyHash is not a key hash",
        ),
        (
            format!(r#"{{"meters":[{{"hid":"{ha}"}}]}}"#),
            r#"meters[0] has no "keyHash": an object binds a key (write the plain HID string to provision without one)"#,
        ),
        (
            format!(r#"{{"meters":["{ha}",{{"keyHash":"{hash}"}}]}}"#),
            r#"meters[1] has no "hid""#,
        ),
        (
            format!(r#"{{"meters":[{{"hid":"abcd","keyHash":"{hash}"}}]}}"#),
            r#"meters[0].hid is not a HID (64 hex digits): "abcd""#,
        ),
        (
            format!(r#"{{"meters":[{{"hid":7,"keyHash":"{hash}"}}]}}"#),
            "meters[0].hid is not a HID",
        ),
        (
            format!(r#"{{"meters":[{{"hid":"{ha}","keyhash":"{hash}"}}]}}"#),
            r#"meters[0] has an unknown field "keyhash"; an object entry is {"hid","keyHash"}"#,
        ),
        (
            format!(r#"{{"meters":[{{"hid":"{ha}","keyHash":"{hash}","keyHash":"{hash}"}}]}}"#),
            r#"meters[0] has "keyHash" twice"#,
        ),
        (
            format!(r#"{{"meters":["{ha}","{hb}",5]}}"#),
            r#"meters[2] must be a HID string or an object {"hid","keyHash"}, got a number"#,
        ),
        (
            r#"{"meters":[null]}"#.to_owned(),
            "meters[0] must be a HID string or an object {\"hid\",\"keyHash\"}, got null",
        ),
        (
            format!(r#"{{"meters":[["{ha}","{hash}"]]}}"#),
            "meters[0] must be a HID string or an object {\"hid\",\"keyHash\"}, got an array",
        ),
        (
            r#"{"meters":[true]}"#.to_owned(),
            "meters[0] must be a HID string or an object {\"hid\",\"keyHash\"}, got a boolean",
        ),
        (
            format!(
                r#"{{"meters":[{{"hid":"{ha}","keyHash":"{hash}"}},{{"hid":"{ha}","keyHash":"{}"}}]}}"#,
                key_hash(&b)
            ),
            "meters[1] repeats the HID of meters[0] with a different key hash",
        ),
        (
            format!(r#"{{"meters":[{{"hid":"{ha}","keyHash":"{hash}"}},"{hb}","{ha}"]}}"#),
            "meters[2] repeats the HID of meters[0] with a key hash in one and not the other",
        ),
    ];
    for (arg, expected) in &cases {
        let e = env.err(admin(), Function::ProvisionMeters, &[arg]);
        assert_error(&e, 400, ErrorCode::BadArgument);
        assert!(
            e.message()
                .contains(&format!("ProvisionMeters: {expected}")),
            "{arg}\n  expected {expected}\n  got {e}"
        );
    }
    assert!(env.dump().is_empty());

    // Hex in either case, stored in lower case; an identical repetition is one entry.
    let arg = json!({"meters": [
        {"hid": ha.to_uppercase(), "keyHash": hash.to_uppercase()},
        {"hid": ha, "keyHash": hash},
    ]})
    .to_string();
    let out = env.ok(admin(), Function::ProvisionMeters, &[&arg]);
    assert_eq!(out, json!({"provisioned": [ha], "unchanged": 0}));
    assert_eq!(meter(&mut env, &a)["keyHash"], hash);
}

fn other_mdms_key() -> MdmsSecretKey {
    MdmsSecretKey::from_entropy(&[0x18; 32]).unwrap()
}

fn mdms_hash(key: &MdmsSecretKey) -> String {
    hash_of(key.public_key().to_bytes())
}

fn mdms_registration_with(key: &MdmsSecretKey, ts: u64) -> String {
    b64(
        &MdmsRegistrationRequest::build(key, mdms_hid(), Timestamp::from_unix_millis(ts))
            .unwrap()
            .encode(),
    )
}

#[test]
fn a_bound_mdms_key_is_enforced_and_the_binding_cannot_change() {
    let mut env = Env::new();
    let hid = mdms_hid().to_string();
    let arg = json!({"hid": hid, "keyHash": mdms_hash(&mdms_key())}).to_string();
    let out = env.ok(admin(), Function::ProvisionMdms, &[&arg]);
    assert_eq!(
        out,
        json!({"hid": hid, "status": "provisioned", "keyHash": mdms_hash(&mdms_key())})
    );
    // Again, or as the plain HID: no-op. Another hash: 409.
    let before = env.dump();
    env.ok(admin(), Function::ProvisionMdms, &[&arg]);
    env.ok(admin(), Function::ProvisionMdms, &[&hid]);
    let other = json!({"hid": hid, "keyHash": mdms_hash(&other_mdms_key())}).to_string();
    let e = env.err(admin(), Function::ProvisionMdms, &[&other]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    assert_eq!(env.dump(), before);

    // Whichever MDMS-role identity comes first with its own key is refused.
    let e = env.err(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration_with(&other_mdms_key(), env.now_ms)],
    );
    assert_error(&e, 409, ErrorCode::KeyNotProvisioned);
    assert!(e.message().contains(&mdms_hash(&other_mdms_key())), "{e}");
    assert_eq!(env.dump(), before);

    env.ok(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(env.now_ms)],
    );
    let key = env.ok(dc(), Function::GetMdmsKey, &[]);
    assert_eq!(key["keyHash"], mdms_hash(&mdms_key()));
    assert_eq!(
        key["publicKey"],
        bcami_api::to_hex(&mdms_key().public_key().to_bytes())
    );
}

#[test]
fn an_unbound_mdms_is_trust_on_first_use_and_can_be_bound_to_its_registered_key_only() {
    let mut env = Env::new();
    let hid = mdms_hid().to_string();
    let out = env.ok(admin(), Function::ProvisionMdms, &[&hid]);
    assert!(out.get("keyHash").is_none(), "{out}");
    env.ok(
        mdms(),
        Function::RegisterMdmsKey,
        &[&mdms_registration(env.now_ms)],
    );

    let before = env.dump();
    let wrong = json!({"hid": hid, "keyHash": mdms_hash(&other_mdms_key())}).to_string();
    let e = env.err(admin(), Function::ProvisionMdms, &[&wrong]);
    assert_error(&e, 409, ErrorCode::ProvisionConflict);
    assert!(e.message().contains(&mdms_hash(&mdms_key())), "{e}");
    assert_eq!(env.dump(), before);

    let right = json!({"hid": hid, "keyHash": mdms_hash(&mdms_key())}).to_string();
    let out = env.ok(admin(), Function::ProvisionMdms, &[&right]);
    assert_eq!(out["status"], "registered");
    assert_eq!(out["keyHash"], mdms_hash(&mdms_key()));
}

#[test]
fn malformed_mdms_arguments_are_400_naming_what_is_wrong() {
    let mut env = Env::new();
    let hid = mdms_hid().to_string();
    let hash = mdms_hash(&mdms_key());
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"{{"hid":"{hid}","keyHash":"nope"}}"#),
            r#"ProvisionMdms: argument 1.keyHash is not a key hash"#,
        ),
        (
            format!(r#"{{"hid":"{hid}"}}"#),
            r#"ProvisionMdms: argument 1 has no "keyHash""#,
        ),
        (
            format!(r#"{{"keyHash":"{hash}"}}"#),
            r#"ProvisionMdms: argument 1 has no "hid""#,
        ),
        (
            format!(r#"{{"hid":"{hid}","keyHash":"{hash}","role":"mdms"}}"#),
            r#"ProvisionMdms: argument 1 has an unknown field "role""#,
        ),
        (
            format!(r#"{{"hid":"{hid}","#),
            "ProvisionMdms: argument is not valid JSON",
        ),
        (
            format!(r#" {{"hid":"zz","keyHash":"{hash}"}}"#),
            r#"ProvisionMdms: argument 1.hid is not a HID (64 hex digits): "zz""#,
        ),
        (
            format!(r#"["{hid}"]"#),
            "ProvisionMdms: argument 1 is not a HID",
        ),
    ];
    for (arg, expected) in &cases {
        let e = env.err(admin(), Function::ProvisionMdms, &[arg]);
        assert_error(&e, 400, ErrorCode::BadArgument);
        assert!(
            e.message().contains(expected),
            "{arg}\n  expected {expected}\n  got {e}"
        );
    }
    assert!(env.dump().is_empty());
}
