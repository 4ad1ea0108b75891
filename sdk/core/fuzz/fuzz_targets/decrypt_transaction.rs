//! The MDMS path on attacker-chosen bytes: `Transaction::decode` then `decrypt` (without the
//! signature check, to reach ECDH, HKDF, AES-GCM and report decoding) never panics, and whatever
//! decrypts is a valid report that re-encodes to the plaintext.
#![no_main]

use std::sync::OnceLock;

use bcami_sdk::MdmsSecretKey;
use libfuzzer_sys::fuzz_target;

fn mdms() -> &'static MdmsSecretKey {
    static KEY: OnceLock<MdmsSecretKey> = OnceLock::new();
    // The test-vector MDMS key (tests/vectors/v1.json), so corpus seeds can decrypt.
    KEY.get_or_init(|| {
        MdmsSecretKey::from_bytes(&[
            0x3b, 0x1c, 0x5a, 0x7d, 0x9e, 0x2f, 0x4a, 0x6b, 0x8c, 0x0d, 0x1e, 0x3f, 0x5a, 0x7b,
            0x9c, 0x2d, 0x4e, 0x6f, 0x8a, 0x0b, 0x1c, 0x3d, 0x5e, 0x7f, 0x9a, 0x2b, 0x4c, 0x6d,
            0x8e, 0x0f, 0x1a, 0x3b,
        ])
        .expect("valid scalar")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = bcami_sdk::Transaction::decode(data) {
        if let Ok(report) = tx.decrypt(mdms()) {
            assert_eq!(bcami_sdk::UsageReport::decode(&report.encode()), Ok(report));
        }
    }
});
