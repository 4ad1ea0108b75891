//! The no_std proof available on machines without extra rustup targets: the crate (which is
//! `#![no_std]` and names `std` only under the `std` feature) builds with default features off.

use std::path::Path;
use std::process::Command;

#[test]
fn builds_without_the_std_feature() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    // `<target>/<profile>/deps/<this test>` → `<target>`: reuse the build cache of this run.
    let exe = std::env::current_exe().expect("test executable path");
    let target_dir = exe
        .ancestors()
        .nth(3)
        .expect("target directory above the test executable");
    let output = Command::new(env!("CARGO"))
        .args(["build", "--lib", "--no-default-features", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "no_std build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
