//! What a run sends, decided before anything is sent: each meter's intervals, and how they are
//! split into lanes and batches. Pure.
//!
//! A *lane* is a sequence of transactions that run one after another; lanes run concurrently.
//! Each meter belongs to exactly one lane, so two transactions in flight never touch the same
//! meter record (that would be an MVCC read conflict on Fabric, and would make the contract's
//! "timestamp after the last accepted one" depend on commit order). Lane `l` is served by
//! concentrator `l % K`. Within a lane, readings go out interval by interval, as a concentrator
//! collects them: all its meters' first interval, then the second, …, cut into batches.

use crate::profile::Household;
use crate::replay::Interval;

/// Which reading: `(meter index, interval index)`.
pub type Slot = (usize, usize);

/// `count` consecutive synthetic intervals of a household, starting at `from_ms`.
pub fn synthetic_intervals(
    household: &Household,
    from_ms: u64,
    count: usize,
    interval_s: u32,
) -> Vec<Interval> {
    let step = u64::from(interval_s) * 1000;
    (0..count as u64)
        .map(|i| {
            let start_ms = from_ms + i * step;
            Interval {
                start_ms,
                energy_wh: household.energy_wh(start_ms, interval_s),
            }
        })
        .collect()
}

/// Splits the readings of every meter (`lengths[m]` intervals for meter `m`) into `lanes` lanes
/// of batches of at most `batch` readings. Empty lanes are dropped.
pub fn plan(lengths: &[usize], lanes: usize, batch: usize) -> Vec<Vec<Vec<Slot>>> {
    let lanes = lanes.max(1);
    let batch = batch.max(1);
    (0..lanes)
        .map(|lane| {
            let meters: Vec<usize> = (lane..lengths.len()).step_by(lanes).collect();
            let rounds = meters.iter().map(|&m| lengths[m]).max().unwrap_or(0);
            let slots: Vec<Slot> = (0..rounds)
                .flat_map(|round| {
                    meters
                        .iter()
                        .filter(move |&&m| round < lengths[m])
                        .map(move |&m| (m, round))
                })
                .collect();
            slots
                .chunks(batch)
                .map(<[Slot]>::to_vec)
                .collect::<Vec<_>>()
        })
        .filter(|lane: &Vec<Vec<Slot>>| !lane.is_empty())
        .collect()
}

/// Which readings a misbehaving concentrator corrupts with `--tamper N`: the middle reading of
/// each of the first `n` batches, counting batches round-robin across lanes (so the first few
/// transactions of the run each carry one). Returns `(lane, batch, position)`.
pub fn tamper_targets(plan: &[Vec<Vec<Slot>>], n: usize) -> Vec<(usize, usize, usize)> {
    let depth = plan.iter().map(Vec::len).max().unwrap_or(0);
    (0..depth)
        .flat_map(|b| (0..plan.len()).map(move |l| (l, b)))
        .filter_map(|(l, b)| plan[l].get(b).map(|batch| (l, b, batch.len() / 2)))
        .take(n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reading_is_planned_once_and_meters_stay_in_one_lane() {
        let lengths = [3, 1, 0, 5, 2, 4, 4];
        let plan = plan(&lengths, 3, 4);
        let mut seen = std::collections::BTreeSet::new();
        let mut lane_of = std::collections::BTreeMap::new();
        for (l, lane) in plan.iter().enumerate() {
            for batch in lane {
                assert!(!batch.is_empty() && batch.len() <= 4);
                for &(m, i) in batch {
                    assert!(i < lengths[m]);
                    assert!(seen.insert((m, i)), "({m},{i}) twice");
                    assert_eq!(*lane_of.entry(m).or_insert(l), l, "meter {m} in two lanes");
                }
            }
        }
        assert_eq!(seen.len(), lengths.iter().sum::<usize>());
    }

    #[test]
    fn each_meter_goes_out_in_time_order_interval_by_interval() {
        let plan = plan(&[2, 2], 1, 3);
        assert_eq!(plan, vec![vec![vec![(0, 0), (1, 0), (0, 1)], vec![(1, 1)]]]);
    }

    #[test]
    fn empty_lanes_are_dropped() {
        assert_eq!(plan(&[1], 4, 10).len(), 1);
        assert!(plan(&[], 4, 10).is_empty());
        assert!(plan(&[0, 0], 2, 10).is_empty());
    }

    #[test]
    fn tampering_hits_the_first_batches_across_lanes() {
        let plan = plan(&[4, 4, 4, 4], 2, 2);
        // lane 0: meters 0,2; lane 1: meters 1,3; 4 batches each of 2 readings
        assert_eq!(
            tamper_targets(&plan, 3),
            vec![(0, 0, 1), (1, 0, 1), (0, 1, 1)]
        );
        assert_eq!(tamper_targets(&plan, 100).len(), 8);
    }

    #[test]
    fn synthetic_intervals_are_consecutive() {
        let h = Household::new(1, 1);
        let v = synthetic_intervals(&h, 1_000_000, 3, 1800);
        let starts: Vec<u64> = v.iter().map(|i| i.start_ms).collect();
        assert_eq!(starts, vec![1_000_000, 2_800_000, 4_600_000]);
    }
}
