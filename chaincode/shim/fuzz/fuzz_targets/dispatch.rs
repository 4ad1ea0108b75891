//! Message decoding and dispatch through the shim's protocol state machine.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fabric_shim::testing::dispatch_frames(data);
});
