//! Store-and-forward on the meter: the interval reports the ledger has not confirmed yet.
//!
//! A signed reading goes stale: the contract accepts it only while its header timestamp is inside
//! the acceptance window around the transaction's own timestamp (`Configure`; 5 minutes before by
//! default). So the meter keeps the *report* (the plaintext [`UsageReport`]), not the signed
//! transaction, until the head-end tells it the reading has committed, and signs it again with a
//! fresh header timestamp whenever it has to be sent again ([`resign`]). The report, and so its
//! `interval_start`, never changes: the MDMS recognises the interval after decryption.
//!
//! The store itself is the firmware's (flash pages, a ring in FRAM, …) behind [`ReportStore`]:
//! five primitive operations; the policy (oldest dropped first on overflow, confirmation by
//! interval) is provided on top of them, so every firmware behaves alike. [`ArrayStore`] is a
//! RAM ring of fixed capacity that needs no allocator.
//!
//! Capacity: a store of `N` reports holds `N` intervals of outage — 480 half-hourly reports are
//! 10 days, at 35 bytes each (FORMAT.md) under 17 KiB.

use rand_core::CryptoRngCore;

use crate::error::BuildError;
use crate::identity::{Hid, Timestamp};
use crate::keys::{MdmsPublicKey, MeterSecretKey};
use crate::report::UsageReport;
use crate::transaction::Transaction;

/// A bounded store of unconfirmed interval reports, oldest first. Implementors provide the five
/// primitives; callers use the provided [`record`](ReportStore::record),
/// [`confirm`](ReportStore::confirm) and [`find`](ReportStore::find).
pub trait ReportStore {
    /// Most reports the store holds.
    fn capacity(&self) -> usize;
    /// Reports held now.
    fn len(&self) -> usize;
    /// The report at `index` (0 is the oldest), if held.
    fn get(&self, index: usize) -> Option<UsageReport>;
    /// Appends `report` as the newest. Only called while `len() < capacity()`.
    fn push_newest(&mut self, report: UsageReport);
    /// Removes and returns the report at `index` (0 is the oldest); later ones move up by one.
    fn remove(&mut self, index: usize) -> Option<UsageReport>;

    /// No report is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps a newly measured report until it is confirmed. If the store is full, the oldest
    /// report is dropped to make room and returned, so a sequence of calls reports every dropped
    /// interval, oldest first; with capacity 0 the new report itself is returned.
    fn record(&mut self, report: UsageReport) -> Option<UsageReport> {
        if self.capacity() == 0 {
            return Some(report);
        }
        let dropped = if self.len() >= self.capacity() {
            self.remove(0)
        } else {
            None
        };
        self.push_newest(report);
        dropped
    }

    /// The ledger committed the reading of the interval starting at `interval_start`: forget it.
    /// Returns whether it was held (a confirmation that arrives twice is harmless).
    fn confirm(&mut self, interval_start: Timestamp) -> bool {
        match self.position(interval_start) {
            Some(index) => self.remove(index).is_some(),
            None => false,
        }
    }

    /// The held report of the interval starting at `interval_start`.
    fn find(&self, interval_start: Timestamp) -> Option<UsageReport> {
        self.position(interval_start).and_then(|i| self.get(i))
    }

    /// Index of the held report of the interval starting at `interval_start`.
    fn position(&self, interval_start: Timestamp) -> Option<usize> {
        (0..self.len()).find(|&i| {
            self.get(i)
                .is_some_and(|r| r.interval_start == interval_start)
        })
    }
}

/// Why [`resign`] made no transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResignError {
    /// The store does not hold that interval: it was confirmed, or dropped on overflow.
    #[error("no unconfirmed report of that interval is held")]
    NotHeld,
    /// Building the transaction failed.
    #[error("{0}")]
    Build(#[from] BuildError),
}

/// Signs the held report of the interval starting at `interval_start` again, for sending now:
/// a new transaction with header timestamp `timestamp` (which must be later than every earlier
/// message of this meter — the contract refuses anything else as `replayed`), a fresh ECIES
/// encryption (the header is the ciphertext's associated data) and a new signature. The report
/// inside is unchanged.
pub fn resign<S: ReportStore + ?Sized, R: CryptoRngCore + ?Sized>(
    store: &S,
    interval_start: Timestamp,
    rng: &mut R,
    meter_key: &MeterSecretKey,
    hid: Hid,
    timestamp: Timestamp,
    mdms_key: &MdmsPublicKey,
) -> Result<Transaction, ResignError> {
    let report = store.find(interval_start).ok_or(ResignError::NotHeld)?;
    Ok(Transaction::build(
        rng, meter_key, hid, timestamp, &report, mdms_key,
    )?)
}

/// A [`ReportStore`] in RAM: a ring of `N` reports, no allocator needed.
#[derive(Clone, Debug)]
pub struct ArrayStore<const N: usize> {
    slots: [Option<UsageReport>; N],
    /// Index of the oldest report in `slots`.
    head: usize,
    len: usize,
}

impl<const N: usize> ArrayStore<N> {
    /// An empty store.
    pub const fn new() -> Self {
        ArrayStore {
            slots: [None; N],
            head: 0,
            len: 0,
        }
    }

    fn slot(&self, index: usize) -> usize {
        (self.head + index) % N
    }
}

impl<const N: usize> Default for ArrayStore<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ReportStore for ArrayStore<N> {
    fn capacity(&self) -> usize {
        N
    }

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Option<UsageReport> {
        if index >= self.len {
            return None;
        }
        self.slots[self.slot(index)]
    }

    fn push_newest(&mut self, report: UsageReport) {
        if self.len < N {
            let at = self.slot(self.len);
            self.slots[at] = Some(report);
            self.len += 1;
        }
    }

    fn remove(&mut self, index: usize) -> Option<UsageReport> {
        if index >= self.len {
            return None;
        }
        let removed = self.slots[self.slot(index)].take();
        // Close the gap: move the later reports up by one.
        for i in index..self.len - 1 {
            let (to, from) = (self.slot(i), self.slot(i + 1));
            self.slots[to] = self.slots[from].take();
        }
        self.len -= 1;
        if self.len == 0 {
            self.head = 0;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MdmsSecretKey;
    use crate::report::{IntervalLength, QualityFlags, WattHours};

    fn report(start: u64, wh: u64) -> UsageReport {
        UsageReport {
            interval_start: Timestamp::from_unix_millis(start),
            interval_length: IntervalLength::HALF_HOUR,
            energy: WattHours(wh),
            cumulative_register: WattHours(wh * 10),
            quality: QualityFlags::NONE,
        }
    }

    /// Deterministic bytes for the tests only (the ephemeral key is hedged anyway).
    struct CountingRng(u8);
    impl rand_core::RngCore for CountingRng {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for CountingRng {}

    fn held<S: ReportStore>(store: &S) -> alloc::vec::Vec<u64> {
        (0..store.len())
            .map(|i| store.get(i).unwrap().interval_start.unix_millis())
            .collect()
    }

    #[test]
    fn overflow_drops_the_oldest_and_says_which_in_order() {
        let mut store = ArrayStore::<3>::new();
        assert!(store.is_empty());
        let mut dropped = alloc::vec::Vec::new();
        for start in 1..=7 {
            dropped.extend(store.record(report(start, start)));
        }
        assert_eq!(held(&store), [5, 6, 7]);
        let dropped: alloc::vec::Vec<u64> = dropped
            .iter()
            .map(|r| r.interval_start.unix_millis())
            .collect();
        assert_eq!(
            dropped,
            [1, 2, 3, 4],
            "every dropped interval, oldest first"
        );
    }

    #[test]
    fn confirm_forgets_one_interval_and_keeps_the_order() {
        let mut store = ArrayStore::<4>::new();
        for start in [10, 20, 30, 40] {
            assert_eq!(store.record(report(start, 1)), None);
        }
        assert!(store.confirm(Timestamp::from_unix_millis(20)));
        assert!(!store.confirm(Timestamp::from_unix_millis(20)), "twice");
        assert!(
            !store.confirm(Timestamp::from_unix_millis(99)),
            "never held"
        );
        assert_eq!(held(&store), [10, 30, 40]);
        // The freed slot is reused, and the ring wraps correctly.
        assert_eq!(store.record(report(50, 1)), None);
        assert_eq!(
            store.record(report(60, 1)).map(|r| r.interval_start),
            Some(Timestamp::from_unix_millis(10))
        );
        assert_eq!(held(&store), [30, 40, 50, 60]);
        for start in [60, 30, 50, 40] {
            assert!(store.confirm(Timestamp::from_unix_millis(start)));
        }
        assert!(store.is_empty());
        assert_eq!(store.find(Timestamp::from_unix_millis(30)), None);
    }

    #[test]
    fn a_store_without_room_keeps_nothing() {
        let mut store = ArrayStore::<0>::new();
        assert_eq!(store.record(report(1, 2)), Some(report(1, 2)));
        assert!(store.is_empty());
    }

    #[test]
    fn resign_uses_a_fresh_timestamp_and_keeps_the_report() {
        let meter = MeterSecretKey::from_entropy(&[7; 32]).unwrap();
        let mdms = MdmsSecretKey::from_entropy(&[8; 32]).unwrap();
        let hid = Hid::from_meter_id("SM-1");
        let mut store = ArrayStore::<2>::new();
        store.record(report(1_800_000, 42));
        let mut rng = CountingRng(0);
        let first = resign(
            &store,
            Timestamp::from_unix_millis(1_800_000),
            &mut rng,
            &meter,
            hid,
            Timestamp::from_unix_millis(5_000),
            &mdms.public_key(),
        )
        .unwrap();
        let again = resign(
            &store,
            Timestamp::from_unix_millis(1_800_000),
            &mut rng,
            &meter,
            hid,
            Timestamp::from_unix_millis(900_000),
            &mdms.public_key(),
        )
        .unwrap();
        for tx in [&first, &again] {
            tx.verify(&meter.public_key()).unwrap();
            assert_eq!(tx.hid(), hid);
            assert_eq!(tx.decrypt(&mdms).unwrap(), report(1_800_000, 42));
        }
        assert_eq!(first.timestamp().unix_millis(), 5_000);
        assert_eq!(again.timestamp().unix_millis(), 900_000);
        assert_ne!(first.ciphertext(), again.ciphertext());

        store.confirm(Timestamp::from_unix_millis(1_800_000));
        let err = resign(
            &store,
            Timestamp::from_unix_millis(1_800_000),
            &mut rng,
            &meter,
            hid,
            Timestamp::from_unix_millis(900_001),
            &mdms.public_key(),
        )
        .unwrap_err();
        assert_eq!(err, ResignError::NotHeld);
    }
}
