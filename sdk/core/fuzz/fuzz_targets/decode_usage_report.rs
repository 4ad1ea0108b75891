//! `UsageReport::decode` never panics, and re-encodes exactly the bytes it accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = bcami_sdk::UsageReport::decode(data) {
        assert_eq!(report.encode().as_slice(), data);
    }
});
