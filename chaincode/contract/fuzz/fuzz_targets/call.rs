//! Argument parsing and dispatch of every contract function: see `bcami_contract::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bcami_contract::fuzzing::call(data));
