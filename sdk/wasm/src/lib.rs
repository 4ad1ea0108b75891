#![doc = include_str!("../README.md")]
#![no_std]
#![warn(missing_docs)]
// `unsafe` only where a target needs it: the wasm exports and the I/O buffer they share
// (`wasm`), and the allocator (`heap`). Each use has a SAFETY comment. `abi` is safe code.

extern crate alloc;

pub mod abi;
#[cfg(any(target_arch = "wasm32", target_os = "none"))]
pub mod heap;
#[cfg(target_arch = "wasm32")]
mod wasm;
