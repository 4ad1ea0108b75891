#![doc = include_str!("../README.md")]
#![no_std]
#![warn(missing_docs)]
// `unsafe` only where a target needs it: the allocator (`heap`) and the single-threaded static
// cell (`Static`). Each use has a SAFETY comment. `Fields` and `emit` are safe code.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;

#[cfg(any(target_arch = "wasm32", target_os = "none"))]
pub mod heap;

/// A value in a `static` that one operation at a time borrows mutably: a module's I/O buffer or
/// its state. For single-threaded targets only (wasm32-unknown-unknown, a microcontroller
/// without interrupt handlers that touch it).
pub struct Static<T>(UnsafeCell<T>);

// SAFETY: the targets this is for run one thread; `Static::get` states the borrowing rule.
unsafe impl<T> Sync for Static<T> {}

impl<T> Static<T> {
    /// A cell holding `value`.
    pub const fn new(value: T) -> Static<T> {
        Static(UnsafeCell::new(value))
    }

    /// The value's address (for a host that writes the I/O buffer between calls).
    pub const fn as_ptr(&self) -> *mut T {
        self.0.get()
    }

    /// The value, mutably.
    ///
    /// # Safety
    /// No other reference to the value may be alive while the returned one is: an export takes
    /// it once, exports do not call each other, and the module has one thread and no imports
    /// through which its host could re-enter it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: the caller guarantees the reference is unique for its lifetime.
        unsafe { &mut *self.0.get() }
    }
}

/// Splits fixed-size fields off the front of an operation's input.
#[derive(Debug)]
pub struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    /// Fields of `input`.
    pub const fn new(input: &'a [u8]) -> Fields<'a> {
        Fields(input)
    }

    /// The next `N` bytes. Panics if fewer are left: the layouts are constants that the callers
    /// check against the buffer's length at compile time.
    pub fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        out
    }
}

/// Copies `parts` to the front of `io`; returns the total length. Panics if they do not fit:
/// the output layouts are constants checked against the buffer's length at compile time.
pub fn emit(io: &mut [u8], parts: &[&[u8]]) -> usize {
    let mut at = 0;
    for part in parts {
        io[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_off_in_order_and_emit_concatenates() {
        let mut io = [0u8; 8];
        assert_eq!(emit(&mut io, &[&[1, 2], &[3], &[4, 5, 6]]), 6);
        let mut fields = Fields::new(&io);
        assert_eq!(fields.take::<2>(), [1, 2]);
        assert_eq!(fields.take::<3>(), [3, 4, 5]);
        assert_eq!(fields.take::<3>(), [6, 0, 0]);
    }

    #[test]
    fn a_static_hands_out_its_value() {
        static CELL: Static<u32> = Static::new(7);
        // SAFETY: the only reference made to CELL.
        let value = unsafe { CELL.get() };
        *value += 1;
        assert_eq!(unsafe { *CELL.as_ptr() }, 8);
    }
}
