//! A minimal Cortex-M4F firmware image that builds one reading, for measuring the code size a
//! meter carries (`scripts/build-meter-cortex-m4.sh`, linked with `cortex-m4.ld`). It is linked,
//! measured with `size`, never flashed: inputs come from a RAM buffer the optimiser cannot see
//! through, and the output is left in it.
#![no_std]
#![no_main]
#![allow(unsafe_code)]

use core::cell::UnsafeCell;

use bcami_sdk_wasm::abi::{self, IO_LEN};
use bcami_sdk_wasm::heap::Heap;

#[global_allocator]
static HEAP: Heap = Heap::new();

struct Io(UnsafeCell<[u8; IO_LEN]>);
// SAFETY: one thread, no interrupt handlers; `reset` is the only user.
unsafe impl Sync for Io {}
static IO: Io = Io(UnsafeCell::new([0; IO_LEN]));

/// The reset vector: the second word of the vector table (the first is the initial stack
/// pointer, which the linker script writes).
#[unsafe(link_section = ".vector_table.reset")]
#[unsafe(no_mangle)]
pub static RESET_VECTOR: unsafe extern "C" fn() -> ! = reset;

unsafe extern "C" {
    static mut __sbss: u32;
    static mut __ebss: u32;
    static mut __sdata: u32;
    static mut __edata: u32;
    static __sidata: u32;
}

/// Zeroes `.bss`, copies `.data` from flash, then builds readings forever.
///
/// # Safety
/// Called once, by the hardware, at reset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reset() -> ! {
    // SAFETY: the linker script defines these symbols as word-aligned bounds of .bss, .data and
    // the flash copy of .data; nothing has used RAM yet, so writing it cannot alias a live value.
    unsafe {
        let mut bss = &raw mut __sbss;
        while bss < &raw mut __ebss {
            bss.write_volatile(0);
            bss = bss.add(1);
        }
        let mut data = &raw mut __sdata;
        let mut from = &raw const __sidata;
        while data < &raw mut __edata {
            data.write_volatile(from.read());
            data = data.add(1);
            from = from.add(1);
        }
    }
    loop {
        HEAP.reset();
        // SAFETY: the only reference to IO, made once per iteration; one thread, no interrupts.
        let io = unsafe { &mut *IO.0.get() };
        let result = abi::reading(core::hint::black_box(io));
        core::hint::black_box(result.ok());
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
