#![doc = include_str!("../README.md")]
#![no_std]
#![warn(missing_docs)]
// `unsafe` only where a target needs it: the wasm exports and the I/O buffer they share
// (`wasm`). Each use has a SAFETY comment. `abi` is safe code. The allocator is bcami-wasm-rt's.

extern crate alloc;

pub mod abi;
#[cfg(any(target_arch = "wasm32", target_os = "none"))]
pub use bcami_wasm_rt::heap;
#[cfg(target_arch = "wasm32")]
mod wasm;
