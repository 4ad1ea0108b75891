//! Builds `tests/c/reading.c` with the system C compiler against the static library and checks
//! what it produces with the Rust verifier (decode, verify, decrypt).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bcami_sdk::{
    Hid, KeyRotationRequest, MdmsSecretKey, MeterSecretKey, QualityFlags, RegistrationRequest,
    Timestamp, Transaction, WattHours,
};

/// `<target>/<profile>`: the directory holding this test's deps/ folder.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Builds the static library (the test harness builds only the rlib) in this profile.
fn static_library() -> PathBuf {
    let profile_dir = profile_dir();
    let target_dir = profile_dir.parent().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--lib", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    let status = cargo.status().unwrap();
    assert!(status.success(), "cargo build of the static library failed");
    let lib = profile_dir.join("libbcami.a");
    assert!(lib.exists(), "{} missing", lib.display());
    lib
}

fn hex_line(stdout: &str, label: &str) -> Vec<u8> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} line"));
    hex::decode(line.trim()).unwrap()
}

#[test]
fn c_program_builds_messages_the_rust_verifier_accepts() {
    let lib = static_library();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = profile_dir().join("bcami-c-reading");
    let output = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-o"])
        .arg(&exe)
        .arg(root.join("tests/c/reading.c"))
        .arg("-I")
        .arg(root.join("include"))
        .arg(&lib)
        // What `rustc --print native-static-libs` lists for a std staticlib on Linux.
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

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
