//! What the client decodes from a hostile gateway peer (status details, prepared transactions,
//! chaincode event streams, commit status): see `fabric_gateway_client::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fabric_gateway_client::fuzzing::responses(data);
});
