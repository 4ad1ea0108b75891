//! Builds `tests/c/reading.c` with the system C compiler against the static library and checks
//! what it produces with the Rust verifier (decode, verify, decrypt).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use bcami_sdk::{
    Hid, KeyRotationRequest, MdmsSecretKey, MeterSecretKey, QualityFlags, RegistrationRequest,
    Timestamp, Transaction, WattHours,
};

fn hex_line(stdout: &str, label: &str) -> Vec<u8> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} line"));
    hex::decode(line.trim()).unwrap()
}

#[test]
fn c_program_builds_messages_the_rust_verifier_accepts() {
    let exe = common::compile_c_program("reading.c", "bcami-c-reading");

    let mdms = MdmsSecretKey::from_entropy(&[0x5a; 32]).unwrap();
    let run = Command::new(&exe)
        .arg(hex::encode(mdms.public_key().to_bytes()))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "C program failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8(run.stdout).unwrap();

    let hid = Hid::from_meter_id("SM-C-0001");
    let entropy: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(1))
        .collect();
    let meter = MeterSecretKey::from_entropy(&entropy).unwrap().public_key();

    let registration = RegistrationRequest::decode(&hex_line(&stdout, "registration ")).unwrap();
    registration.verify().unwrap();
    assert_eq!(registration.hid(), hid);
    assert_eq!(registration.public_key(), &meter);

    let reading = Transaction::decode(&hex_line(&stdout, "reading ")).unwrap();
    reading.verify(registration.public_key()).unwrap();
    assert_eq!(reading.hid(), hid);
    assert_eq!(
        reading.timestamp(),
        Timestamp::from_unix_millis(1_700_000_001_800)
    );
    let report = reading.decrypt(&mdms).unwrap();
    assert_eq!(report.energy, WattHours(412));
    assert_eq!(report.cumulative_register, WattHours(12_345_678));
    assert_eq!(report.interval_length.seconds(), 1800);
    assert_eq!(report.quality, QualityFlags::NONE);

    let rotation = KeyRotationRequest::decode(&hex_line(&stdout, "rotation ")).unwrap();
    rotation.verify(&meter).unwrap();
    let new_entropy: Vec<u8> = (0..32u8).map(|i| 0x3c + i).collect();
    assert_eq!(
        rotation.new_public_key(),
        &MeterSecretKey::from_entropy(&new_entropy)
            .unwrap()
            .public_key()
    );
}
