//! The wasm32 exports: one static I/O buffer, the meter's state in a static, one function per
//! operation of `crate::abi`.
//!
//! A host writes an operation's input into the buffer at `bcami_io()`, calls the operation, and
//! reads `n` output bytes from the buffer if it returned `n >= 0`; a negative value is
//! `-(abi::Status)`. `bcami_heap_high_water()` is the heap the last operation used (the kept
//! credential included), `bcami_heap_kept()` the part of it the credential keeps. No imports,
//! no WASI: entropy comes from the host as input bytes.
#![allow(unsafe_code)]

use bcami_wasm_rt::Static;
use bcami_wasm_rt::heap::Heap;

use crate::abi::{self, IO_LEN, Meter, Status};

#[global_allocator]
static HEAP: Heap = Heap::new();

static IO: Static<[u8; IO_LEN]> = Static::new([0; IO_LEN]);
static METER: Static<Meter> = Static::new(Meter::new());

/// What an operation does with the heap around it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HeapUse {
    /// Scratch above the kept credential, given back when the next operation starts.
    Scratch,
    /// The credential (the only heap that outlives an operation) is dropped and the heap cleared
    /// first.
    Forget,
    /// As `Forget`, and what the operation leaves allocated is kept if it succeeds.
    Replace,
}

type Operation = fn(&mut Meter, &mut [u8; IO_LEN]) -> Result<usize, Status>;

/// Runs one operation on the I/O buffer and the meter's state.
fn run(operation: Operation, heap: HeapUse) -> i32 {
    // SAFETY: the only references to the buffer and the state are made here, one at a time:
    // exports do not call each other, the module has one thread and no imports through which
    // the host could re-enter it, and the references end when the operation returns. The host
    // writes the buffer only between calls.
    let (io, meter) = unsafe { (IO.get(), METER.get()) };
    match heap {
        HeapUse::Scratch => HEAP.reset(),
        HeapUse::Forget | HeapUse::Replace => {
            // The held credential lives in the heap: drop it before forgetting the heap.
            meter.forget_credential();
            HEAP.clear();
        }
    }
    let result = operation(meter, io);
    if heap == HeapUse::Replace && result.is_ok() {
        HEAP.keep();
    }
    match result {
        // The output is at most IO_LEN (384) bytes, so it fits an i32.
        Ok(len) => len as i32,
        Err(status) => status.to_return(),
    }
}

/// Address of the I/O buffer in linear memory.
#[unsafe(no_mangle)]
pub extern "C" fn bcami_io() -> *mut u8 {
    IO.as_ptr().cast()
}

/// Length of the I/O buffer.
#[unsafe(no_mangle)]
pub extern "C" fn bcami_io_len() -> usize {
    IO_LEN
}

/// Heap bytes in use at the highest point of the last operation, kept bytes included.
#[unsafe(no_mangle)]
pub extern "C" fn bcami_heap_high_water() -> usize {
    HEAP.high_water()
}

/// Heap bytes kept between operations (the accepted credential and its issuer key).
#[unsafe(no_mangle)]
pub extern "C" fn bcami_heap_kept() -> usize {
    HEAP.kept()
}

/// [`abi::keygen`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_anon_keygen() -> i32 {
    run(abi::keygen, HeapUse::Forget)
}

/// [`abi::join`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_anon_join() -> i32 {
    run(abi::join, HeapUse::Scratch)
}

/// [`abi::accept`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_anon_accept() -> i32 {
    run(abi::accept, HeapUse::Replace)
}

/// [`abi::present`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_anon_present() -> i32 {
    run(abi::present, HeapUse::Scratch)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // A trap: the host sees it as an error of this call (after a refused `memory.grow`, the
    // allocation failure lands here).
    core::arch::wasm32::unreachable()
}
