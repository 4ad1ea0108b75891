//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/gateway_responses/`) on stable, with the
//! same properties the fuzz target checks (`fabric_gateway_client::fuzzing::responses`).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use fabric_gateway_client::fuzzing::responses;

#[test]
fn gateway_responses_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/gateway_responses");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let mut seeds = 0;
    for path in entries {
        let bytes = std::fs::read(&path).unwrap();
        let decoded = responses(&bytes);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Seeds say what they are: a well-formed answer, or one named `*-malformed`.
        if name.starts_with("seed-") {
            seeds += 1;
            assert_eq!(decoded, !name.ends_with("-malformed"), "{name}");
        }
    }
    // Every decoder has seeds: status details, prepared transaction, events, commit status.
    for prefix in [
        "seed-status-",
        "seed-endorse-",
        "seed-events-",
        "seed-commit-status-",
    ] {
        assert!(
            std::fs::read_dir(&dir).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(prefix)),
            "no {prefix}* seed in {}",
            dir.display()
        );
    }
    assert!(seeds >= 10, "only {seeds} seeds in {}", dir.display());
}
