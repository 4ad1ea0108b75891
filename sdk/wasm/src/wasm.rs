//! The wasm32 exports: one static I/O buffer, one function per operation of `crate::abi`.
//!
//! A host writes an operation's input into the buffer at `bcami_io()`, calls the operation, and
//! reads `n` output bytes from the buffer if it returned `n >= 0`; a negative value is
//! `-(abi::Status)`. `bcami_heap_high_water()` is the heap the last operation used. No imports,
//! no WASI: entropy and time come from the host as input bytes.
#![allow(unsafe_code)]

use bcami_wasm_rt::Static;

use crate::abi::{self, IO_LEN, MeterSession, Status};
use crate::heap::Heap;

#[global_allocator]
static HEAP: Heap = Heap::new();

static IO: Static<[u8; IO_LEN]> = Static::new([0; IO_LEN]);

/// The meter's one head-end session (handshake state or session keys), kept across calls.
static SESSION: Static<MeterSession> = Static::new(MeterSession::new());

/// Runs one operation on the I/O buffer with a fresh heap.
fn with_io(operation: fn(&mut [u8; IO_LEN]) -> Result<usize, Status>) -> i32 {
    with_io_and(operation)
}

fn with_io_and(operation: impl FnOnce(&mut [u8; IO_LEN]) -> Result<usize, Status>) -> i32 {
    HEAP.reset();
    // SAFETY: the only references to the buffer are made here, one at a time: exports do not
    // call each other, the module has one thread and no imports through which the host could
    // re-enter it, and the reference ends when the operation returns. The host writes the buffer
    // only between calls.
    let io = unsafe { IO.get() };
    match operation(io) {
        // The output is at most IO_LEN (512) bytes, so it fits an i32.
        Ok(len) => len as i32,
        Err(status) => status.to_return(),
    }
}

/// Runs one session operation on the I/O buffer and the meter's session, with a fresh heap. The
/// session holds nothing on the heap (its keys and handshake state are fixed-size values), so
/// resetting the heap between calls leaves it intact.
fn with_session(
    operation: fn(&mut [u8; IO_LEN], &mut MeterSession) -> Result<usize, Status>,
) -> i32 {
    with_io_and(|io| {
        // SAFETY: the only reference to the session is made here, for the duration of one
        // operation, for the same reasons as the buffer's in `with_io`.
        let session = unsafe { SESSION.get() };
        operation(io, session)
    })
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

/// Heap bytes used at the highest point of the last operation.
#[unsafe(no_mangle)]
pub extern "C" fn bcami_heap_high_water() -> usize {
    HEAP.high_water()
}

/// [`abi::keygen`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_keygen() -> i32 {
    with_io(abi::keygen)
}

/// [`abi::registration`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_registration() -> i32 {
    with_io(abi::registration)
}

/// [`abi::reading`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_reading() -> i32 {
    with_io(abi::reading)
}

/// [`abi::rotation`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_rotation() -> i32 {
    with_io(abi::rotation)
}

/// [`abi::session_start`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_session_start() -> i32 {
    with_session(abi::session_start)
}

/// [`abi::session_finish`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_session_finish() -> i32 {
    with_session(abi::session_finish)
}

/// [`abi::session_seal`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_session_seal() -> i32 {
    with_session(abi::session_seal)
}

/// [`abi::session_open`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_session_open() -> i32 {
    with_session(abi::session_open)
}

/// [`abi::session_end`].
#[unsafe(no_mangle)]
pub extern "C" fn bcami_session_end() -> i32 {
    with_session(abi::session_end)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // A trap: the host sees it as an error of this call (after a refused `memory.grow`, the
    // allocation failure lands here).
    core::arch::wasm32::unreachable()
}
