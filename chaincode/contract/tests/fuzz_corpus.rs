//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/call/seed-*`) on stable, with the same
//! properties the fuzz target checks (`bcami_contract::fuzzing::call`).

use std::path::Path;

use bcami_api::ErrorCode;

#[test]
fn call_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/call");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.map(|e| e.path()).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    entries.sort();
    for path in entries {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        bcami_contract::fuzzing::call(&bytes);
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} corpus inputs in {}", dir.display());
}

#[test]
fn the_vector_reading_seed_is_accepted() {
    // The harness's ledger accepts the SDK's known-answer reading: the corpus reaches the
    // accept path, not only rejections.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/call");
    let bytes = std::fs::read(dir.join("seed-submit-one")).unwrap_or_else(|e| panic!("{e}"));
    let arg = &bytes[2..];
    let readings: Vec<String> = serde_json::from_slice(arg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(readings.len(), 1);
    assert_eq!(
        bcami_contract::fuzzing::submit_status(&bytes),
        Some("accepted".to_owned())
    );
}

#[test]
fn the_key_binding_seeds_reach_their_paths() {
    // The harness's ledger holds SM-0003 bound to the vector meter's key hash; these seeds reach
    // the binding checks, not only argument parsing (and the MDMS key rotation its success path).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/call");
    for (seed, expected) in [
        ("seed-register-bound", Ok(())),
        (
            "seed-register-bound-wrong-key",
            Err(Some(ErrorCode::KeyNotProvisioned)),
        ),
        ("seed-provision-bound", Ok(())),
        (
            "seed-provision-rebind",
            Err(Some(ErrorCode::ProvisionConflict)),
        ),
        (
            "seed-provision-bad-keyhash",
            Err(Some(ErrorCode::BadArgument)),
        ),
        ("seed-provision-mdms-bound", Ok(())),
        ("seed-rotate-mdms", Ok(())),
    ] {
        let bytes = std::fs::read(dir.join(seed)).unwrap_or_else(|e| panic!("{seed}: {e}"));
        assert_eq!(
            bcami_contract::fuzzing::outcome(&bytes),
            Some(expected),
            "{seed}"
        );
    }
}
