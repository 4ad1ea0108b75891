//! `HeadEndRegistrationRequest::decode` never panics, and re-encodes exactly the bytes it accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = bcami_sdk::HeadEndRegistrationRequest::decode(data) {
        assert_eq!(message.encode(), data);
    }
});
