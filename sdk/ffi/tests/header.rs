//! The committed C header must be exactly what cbindgen generates from the source.
//! Regenerate: `BCAMI_WRITE_HEADER=1 cargo test -p bcami-sdk-ffi --test header`.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn committed_header_matches_the_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/lib.rs"))
        .generate()
        .expect("cbindgen parses the FFI crate")
        .write(&mut generated);
    let path = root.join("include/bcami.h");
    if std::env::var_os("BCAMI_WRITE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/bcami.h drifted from src/lib.rs; regenerate with BCAMI_WRITE_HEADER=1 cargo test -p bcami-sdk-ffi --test header"
    );
}
