//! Heap use per reading, counted by a global allocator wrapper. Counters are per thread, so the
//! test harness's own threads cannot disturb the count.
//! Run with `-- --nocapture` to see the numbers recorded in BENCHMARKS.md.

// Test code: a failing unwrap is a failing test. A global allocator needs `unsafe impl`.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bcami_sdk::{
    Hid, IntervalLength, MdmsSecretKey, MeterSecretKey, QualityFlags, Timestamp, Transaction,
    UsageReport, WattHours,
};

struct Counting;

thread_local! {
    // `const` thread-locals without destructors never allocate, so the allocator may use them.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
    BYTES.with(|c| c.set(c.get() + size));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are const thread-locals and do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let (a, b) = (ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get));
    let value = f();
    (
        value,
        ALLOCATIONS.with(Cell::get) - a,
        BYTES.with(Cell::get) - b,
    )
}

#[test]
fn heap_use_per_reading() {
    let meter = MeterSecretKey::from_entropy(&[1; 32]).unwrap();
    let mdms = MdmsSecretKey::from_entropy(&[2; 32]).unwrap();
    let mdms_public = mdms.public_key();
    let meter_public = meter.public_key();
    let report = UsageReport {
        interval_start: Timestamp::from_unix_millis(1_700_000_000_000),
        interval_length: IntervalLength::HALF_HOUR,
        energy: WattHours(412),
        cumulative_register: WattHours(12_345_678),
        quality: QualityFlags::NONE,
    };
    let hid = Hid::from_meter_id("SM-0001");
    let timestamp = Timestamp::from_unix_millis(1_700_000_001_800);

    let (wire, allocations, bytes) = counted(|| {
        Transaction::build_from_entropy(&[3; 32], &meter, hid, timestamp, &report, &mdms_public)
            .unwrap()
            .encode()
    });
    println!("build+encode: {allocations} allocations, {bytes} bytes");
    // The ciphertext buffer and the encoded transaction; nothing else touches the heap.
    assert_eq!(allocations, 2);
    assert_eq!(bytes, 80 + 188);

    let ((), allocations, bytes) = counted(|| {
        let tx = Transaction::decode(&wire).unwrap();
        tx.verify(&meter_public).unwrap();
    });
    println!("decode+verify: {allocations} allocations, {bytes} bytes");
    assert_eq!(allocations, 1, "decode copies the ciphertext once");

    let tx = Transaction::decode(&wire).unwrap();
    let (_, allocations, bytes) = counted(|| tx.decrypt(&mdms).unwrap());
    println!("decrypt: {allocations} allocations, {bytes} bytes");
    assert_eq!(
        allocations, 1,
        "decrypt allocates the plaintext buffer once"
    );
}
