//! `IssuerPublicKey::decode` never panics, and re-encodes exactly the bytes it accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = bcami_anon::IssuerPublicKey::<bcami_anon::Zk>::decode(data) {
        assert_eq!(m.encode().as_slice(), data);
    }
});
