//! What every C test program shares: building the static library in the test's own profile and
//! compiling a program under `tests/c/` against it and the committed header.

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Compiles `tests/c/<source>` with the system C compiler (warnings are errors) against the
/// static library; returns the executable, named `exe_name` in the test's profile directory.
pub fn compile_c_program(source: &str, exe_name: &str) -> PathBuf {
    let lib = static_library();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = profile_dir().join(exe_name);
    let output = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-o"])
        .arg(&exe)
        .arg(root.join("tests/c").join(source))
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
    exe
}
