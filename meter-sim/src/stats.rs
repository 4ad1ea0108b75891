//! The run report: counts, rejection reasons, throughput and latency percentiles. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::runtime::RuntimeReport;

/// Nearest-rank percentile (`p` in 0..=100) of sorted samples; `None` if there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Submit-to-commit latency summary, milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Number of samples (one per transaction).
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// Summarises samples (in any order).
    pub fn from_samples(mut samples: Vec<Duration>) -> Latency {
        samples.sort();
        let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Latency {
            samples: samples.len(),
            p50_ms: ms(percentile(&samples, 50.0)),
            p95_ms: ms(percentile(&samples, 95.0)),
            p99_ms: ms(percentile(&samples, 99.0)),
            max_ms: ms(samples.last().copied()),
        }
    }
}

/// Everything a run reports (the `--json` output).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    /// `embedded` or `fabric`.
    pub mode: String,
    /// Where the readings came from (`synthetic seed=…` or the replayed file).
    pub source: String,
    /// Meters in the run.
    pub meters: usize,
    /// Meters registered by this run (the rest were registered before).
    pub meters_registered: usize,
    /// Meters whose registration the ledger refused (they sent nothing).
    pub meters_unregistered: usize,
    /// Concentrators (Fabric client identities may be shared: see `identities`).
    pub concentrators: usize,
    /// Distinct client identities the concentrators used.
    pub identities: usize,
    /// Readings per transaction.
    pub batch: usize,
    /// Intervals the meters measured in this run.
    pub measured: u64,
    /// Readings handed to the ledger (a resend of the same bytes is not counted again; a
    /// re-signed reading is).
    pub submitted: u64,
    /// Readings the contract accepted in committed transactions.
    pub committed: u64,
    /// Readings rejected, by the contract's reason (or the transaction's failure).
    pub rejected: BTreeMap<String, u64>,
    /// Transactions sent / that failed as a whole.
    pub transactions: u64,
    /// Transactions that failed for good: refused as a whole, or given up (`--retries`) with
    /// their readings left pending in the meters' stores.
    pub failed_transactions: u64,
    /// Resends of transactions that had failed as a whole (same readings, a new transaction).
    pub resent_transactions: u64,
    /// Readings the contract found outside its timestamp window (they waited out an outage),
    /// signed again by their meters with a fresh timestamp and sent again.
    pub resigned: u64,
    /// Readings refused for good (e.g. a tampered signature): their meters forget them.
    pub refused: u64,
    /// Intervals dropped from a full meter store in this run (oldest first per meter; the
    /// meter's state file keeps every interval it ever dropped).
    pub dropped: u64,
    /// The first 100 dropped intervals, `METER YYYY-MM-DD HH:MM`.
    pub dropped_intervals: Vec<String>,
    /// Readings measured that will never reach the ledger: dropped + refused.
    pub lost: u64,
    /// Reports still held unconfirmed in the meters' stores at the end (the next run sends them).
    pub pending: u64,
    /// Readings of an interval the MDMS had already exported with the same value (a
    /// confirmation lost, the reading re-signed): counted once.
    pub duplicates_suppressed: u64,
    /// Intervals the ledger holds with two different values: never hidden, a failure.
    pub conflicts: u64,
    /// Times the meters switched to a new MDMS key during the run (it was rotated).
    pub mdms_key_changes: u64,
    /// Wall time of the submission phase, seconds.
    pub elapsed_s: f64,
    /// Committed readings per second over the submission phase.
    pub readings_per_s: f64,
    /// Per-transaction submit-to-commit latency.
    pub latency: Latency,
    /// Round-trip check: committed readings the MDMS read back and decrypted (embedded mode).
    pub verified: Option<u64>,
    /// Round-trip check failures: committed readings that did not decrypt to what was sent.
    pub mismatches: Option<u64>,
    /// Replay: rows with a `Null` energy, skipped.
    pub null_rows: usize,
    /// Replay: rows that could not be parsed, skipped.
    pub bad_rows: usize,
    /// With `--meter-runtime wasm`: the module, and each operation's fuel and linear memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meter_runtime: Option<RuntimeReport>,
}

impl RunReport {
    /// Readings rejected in total.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// The run left something lost or pending.
    pub fn incomplete(&self) -> bool {
        self.lost > 0 || self.pending > 0
    }

    /// The first line of the summary: whether everything measured reached the ledger.
    pub fn headline(&self) -> String {
        if self.incomplete() {
            format!(
                "INCOMPLETE: {} readings lost ({} dropped from full meter stores, {} refused), {} pending in the meters' stores",
                self.lost, self.dropped, self.refused, self.pending
            )
        } else {
            format!(
                "complete: every reading measured is committed ({} measured, 0 lost, 0 pending)",
                self.measured
            )
        }
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut rows = self.count_rows();
        self.push_notices(&mut rows);
        self.push_timing(&mut rows);
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = self.headline() + "\n";
        for (key, value) in rows {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{key:<width$}  {value}");
        }
        out
    }

    /// What ran and the counts of readings and transactions, rejections by reason.
    fn count_rows(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = vec![
            ("mode".into(), self.mode.clone()),
            ("source".into(), self.source.clone()),
            (
                "meters".into(),
                format!(
                    "{} ({} newly registered, {} could not register)",
                    self.meters, self.meters_registered, self.meters_unregistered
                ),
            ),
            (
                "concentrators".into(),
                if self.identities < self.concentrators {
                    format!(
                        "{} (sharing {} client identities round-robin)",
                        self.concentrators, self.identities
                    )
                } else {
                    self.concentrators.to_string()
                },
            ),
            ("batch".into(), self.batch.to_string()),
            (
                "transactions".into(),
                format!(
                    "{} ({} failed, {} resent after a failure)",
                    self.transactions, self.failed_transactions, self.resent_transactions
                ),
            ),
            ("measured".into(), self.measured.to_string()),
            ("submitted".into(), self.submitted.to_string()),
            ("committed".into(), self.committed.to_string()),
            ("re-signed".into(), self.resigned.to_string()),
            (
                "duplicate-suppressed".into(),
                self.duplicates_suppressed.to_string(),
            ),
            ("lost".into(), self.lost.to_string()),
            ("pending".into(), self.pending.to_string()),
            ("rejected".into(), self.rejected_total().to_string()),
        ];
        for (reason, count) in &self.rejected {
            rows.push((format!("  {reason}"), count.to_string()));
        }
        rows
    }

    /// Rows only some runs have: dropped intervals, conflicts, key changes, skipped replay rows.
    fn push_notices(&self, rows: &mut Vec<(String, String)>) {
        if !self.dropped_intervals.is_empty() {
            rows.push((
                "dropped (oldest first)".into(),
                self.dropped_intervals.join(", "),
            ));
        }
        if self.conflicts > 0 {
            rows.push((
                "CONFLICTS".into(),
                format!("{} intervals with two different values", self.conflicts),
            ));
        }
        if self.mdms_key_changes > 0 {
            rows.push((
                "MDMS key changes".into(),
                format!(
                    "{} (rotated during the run; later readings use the new key)",
                    self.mdms_key_changes
                ),
            ));
        }
        if self.null_rows + self.bad_rows > 0 {
            rows.push((
                "replay rows skipped".into(),
                format!("{} Null, {} bad", self.null_rows, self.bad_rows),
            ));
        }
    }

    /// Time, throughput, latency, the MDMS check and the meter runtime's costs.
    fn push_timing(&self, rows: &mut Vec<(String, String)>) {
        rows.push(("elapsed".into(), format!("{:.2} s", self.elapsed_s)));
        rows.push(("readings/s".into(), format!("{:.0}", self.readings_per_s)));
        rows.push((
            "latency p50/p95/p99".into(),
            format!(
                "{:.1} / {:.1} / {:.1} ms ({} tx)",
                self.latency.p50_ms, self.latency.p95_ms, self.latency.p99_ms, self.latency.samples
            ),
        ));
        if let (Some(verified), Some(mismatches)) = (self.verified, self.mismatches) {
            rows.push(("MDMS verified".into(), verified.to_string()));
            rows.push(("mismatches".into(), mismatches.to_string()));
        }
        if let Some(runtime) = &self.meter_runtime {
            rows.extend(runtime.rows());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&samples, 50.0), Some(ms(50)));
        assert_eq!(percentile(&samples, 95.0), Some(ms(95)));
        assert_eq!(percentile(&samples, 99.0), Some(ms(99)));
        assert_eq!(percentile(&samples, 100.0), Some(ms(100)));
        assert_eq!(percentile(&samples, 0.0), Some(ms(1)));
        assert_eq!(percentile(&[ms(7)], 99.0), Some(ms(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latency_sorts_its_samples() {
        let l = Latency::from_samples(vec![ms(30), ms(10), ms(20)]);
        assert_eq!(l.samples, 3);
        assert_eq!(l.p50_ms, 20.0);
        assert_eq!(l.max_ms, 30.0);
        assert_eq!(Latency::from_samples(Vec::new()), Latency::default());
    }

    #[test]
    fn table_lists_reasons_and_shared_identities() {
        let mut report = RunReport {
            mode: "embedded".into(),
            meters: 3,
            concentrators: 4,
            identities: 2,
            submitted: 10,
            committed: 9,
            ..RunReport::default()
        };
        report.rejected.insert("bad signature".into(), 1);
        let table = report.table();
        assert!(table.contains("committed             9"), "{table}");
        assert!(table.contains("  bad signature"), "{table}");
        assert!(table.contains("sharing 2 client identities"), "{table}");
        assert_eq!(report.rejected_total(), 1);
    }

    #[test]
    fn an_incomplete_run_says_so_first() {
        let mut report = RunReport {
            measured: 10,
            committed: 10,
            ..RunReport::default()
        };
        assert!(!report.incomplete());
        assert!(report.table().starts_with("complete:"));
        report.pending = 2;
        assert!(report.incomplete());
        report.dropped = 1;
        report.lost = 1;
        report.dropped_intervals = vec!["SM-1 2024-01-01 00:00".into()];
        let table = report.table();
        assert!(
            table.starts_with(
                "INCOMPLETE: 1 readings lost (1 dropped from full meter stores, 0 refused), 2 pending"
            ),
            "{table}"
        );
        assert!(table.contains("SM-1 2024-01-01 00:00"), "{table}");
    }
}
