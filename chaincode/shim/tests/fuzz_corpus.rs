//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/dispatch`) through the same entry point
//! the fuzzer uses, on stable Rust: none may panic, and the seeds must reach deep states.

use std::fs;
use std::path::Path;

#[test]
fn dispatch_corpus_replays_without_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/dispatch");
    let mut files = 0;
    let mut accepted = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.map(|e| e.path()).unwrap_or_else(|e| panic!("{e}"));
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        accepted += fabric_shim::testing::dispatch_frames(&data);
        files += 1;
    }
    assert!(files >= 5, "corpus too small: {files} files");
    assert!(
        accepted > files,
        "seeds should drive the session past the handshake"
    );
}

#[test]
fn handshake_then_transaction_seed_is_accepted_fully() {
    // REGISTERED, READY, TRANSACTION(txid "t"), RESPONSE(txid "t").
    let frames: &[&[u8]] = &[
        &[0x08, 2],
        &[0x08, 4],
        &[0x08, 5, 0x22, 1, b't'],
        &[0x08, 13, 0x22, 1, b't'],
    ];
    let mut data = Vec::new();
    for f in frames {
        data.push(u8::try_from(f.len()).unwrap_or(0));
        data.extend_from_slice(f);
    }
    assert_eq!(fabric_shim::testing::dispatch_frames(&data), 4);
}
