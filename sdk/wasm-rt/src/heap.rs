//! A bump allocator for one operation at a time, with a high-water mark.
//!
//! Every operation of a meter module copies its output into the I/O buffer before it returns, so
//! no allocation outlives it: [`Heap::reset`] at the start of each operation reclaims everything.
//! A module that keeps state between operations (the anonymous meter's issuer key) builds it in
//! an operation that starts with [`Heap::clear`] and ends with [`Heap::keep`]: what was
//! allocated until then stays, below the mark `reset` returns to.
//! Freeing the most recent allocation gives its bytes back at once (the common `Vec` growth
//! pattern). On wasm32 the heap starts at `__heap_base` and grows linear memory with
//! `memory.grow`, so a host's memory cap is what stops it; on a microcontroller it is a fixed
//! arena.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

/// The allocator. One per program, as `#[global_allocator]`.
pub struct Heap {
    /// Where `reset` returns to: 0 (the heap's start), or the end of what `keep` kept.
    mark: Cell<usize>,
    /// First free byte; 0 until the first allocation after a reset.
    next: Cell<usize>,
    /// Highest `next` since the last reset.
    high: Cell<usize>,
    #[cfg(target_os = "none")]
    arena: core::cell::UnsafeCell<[u8; ARENA_LEN]>,
}

/// Bytes of the fixed arena on a microcontroller.
#[cfg(target_os = "none")]
pub const ARENA_LEN: usize = 1024;

// SAFETY: both targets this is built for (wasm32-unknown-unknown, thumbv7em-none-eabihf without
// interrupts that allocate) run one thread, so the cells are never accessed concurrently.
unsafe impl Sync for Heap {}

impl Heap {
    /// An empty heap.
    pub const fn new() -> Heap {
        Heap {
            mark: Cell::new(0),
            next: Cell::new(0),
            high: Cell::new(0),
            #[cfg(target_os = "none")]
            arena: core::cell::UnsafeCell::new([0; ARENA_LEN]),
        }
    }

    /// Forgets every allocation made since the last [`Heap::keep`] (all of them if there was
    /// none), and the high-water mark above it. Only between operations, when nothing allocated
    /// since the keep is alive.
    pub fn reset(&self) {
        self.next.set(self.mark.get());
        self.high.set(self.mark.get());
    }

    /// Forgets every allocation, kept ones too. Only when nothing allocated is alive.
    pub fn clear(&self) {
        self.mark.set(0);
        self.reset();
    }

    /// Keeps everything allocated so far: later resets return to here.
    pub fn keep(&self) {
        self.mark.set(self.next.get());
    }

    /// Bytes in use at the highest point since the last reset, kept bytes and alignment padding
    /// included.
    pub fn high_water(&self) -> usize {
        self.high.get().saturating_sub(self.start())
    }

    /// Bytes kept by [`Heap::keep`].
    pub fn kept(&self) -> usize {
        self.mark.get().saturating_sub(self.start())
    }

    #[cfg(target_arch = "wasm32")]
    fn start(&self) -> usize {
        unsafe extern "C" {
            /// Set by wasm-ld: the first byte after the stack and the static data.
            static __heap_base: u8;
        }
        // Only the address is taken; the byte is never read.
        &raw const __heap_base as usize
    }

    #[cfg(target_os = "none")]
    fn start(&self) -> usize {
        self.arena.get() as usize
    }

    /// Makes sure `[.., end)` is usable memory.
    #[cfg(target_arch = "wasm32")]
    fn ensure(&self, end: usize) -> bool {
        const PAGE: usize = 65_536;
        let have = core::arch::wasm32::memory_size(0) * PAGE;
        if end <= have {
            return true;
        }
        let pages = (end - have).div_ceil(PAGE);
        core::arch::wasm32::memory_grow(0, pages) != usize::MAX
    }

    #[cfg(target_os = "none")]
    fn ensure(&self, end: usize) -> bool {
        end <= self.start() + ARENA_LEN
    }
}

impl Default for Heap {
    fn default() -> Heap {
        Heap::new()
    }
}

// SAFETY: `alloc` returns either null or a block of `layout.size()` bytes aligned to
// `layout.align()` that lies in memory no other live block overlaps (the bump pointer only moves
// past handed-out blocks, and moves back only over the most recently allocated block when it is
// freed). Memory stays valid until `reset`, which is called only when no block is alive.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let next = match self.next.get() {
            0 => self.start(),
            next => next,
        };
        let mask = layout.align() - 1;
        let Some(start) = next.checked_add(mask).map(|n| n & !mask) else {
            return core::ptr::null_mut();
        };
        let Some(end) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if !self.ensure(end) {
            return core::ptr::null_mut();
        }
        self.next.set(end);
        if end > self.high.get() {
            self.high.set(end);
        }
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }
}
