#![doc = include_str!("../README.md")]
#![no_std]
#![warn(missing_docs)]
// `unsafe` only in the wasm exports (`wasm`: the I/O buffer and the meter's state in statics),
// each use with a SAFETY comment. `abi` is safe code; the allocator is bcami-wasm-rt's.

extern crate alloc;

pub mod abi;
#[cfg(target_arch = "wasm32")]
mod wasm;
