//! The "Smart Meters in London" half-hourly CSV: `LCLid,tstp,energy(kWh/hh)` (the block files),
//! or the original `LCLid,stdorToU,DateTime,KWH/hh (per half hour)`; columns are found by their
//! header names. `tstp` is the start of the half-hour, UTC; the energy is kWh with up to three
//! decimals, or `Null` when the meter sent nothing. Pure: text in, series out.

use std::collections::BTreeMap;
use std::fmt;

use crate::civil::parse_datetime_ms;
use crate::state::DeviceId;

/// One interval of one household.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Interval start, Unix ms (UTC).
    pub start_ms: u64,
    /// Energy, Wh.
    pub energy_wh: u64,
}

/// A row that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based line number in the file.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// A parsed file.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// Each household's intervals in time order, households sorted by ID.
    pub households: BTreeMap<DeviceId, Vec<Interval>>,
    /// Rows whose energy was `Null` (no reading to replay), skipped.
    pub null_rows: usize,
    /// Rows that could not be parsed, skipped.
    pub bad_rows: Vec<BadRow>,
}

impl Replay {
    /// Intervals in all households.
    pub fn intervals(&self) -> usize {
        self.households.values().map(Vec::len).sum()
    }
}

/// Why a whole file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderError(pub String);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the file. Fails only on a missing or unrecognised header; each bad row is reported in
/// [`Replay::bad_rows`] with its line number and skipped, so one bad row loses nothing else.
pub fn parse(text: &str) -> Result<Replay, HeaderError> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or_else(|| HeaderError("the file is empty".into()))?;
    let names: Vec<String> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let find = |accept: &dyn Fn(&str) -> bool, what: &str| {
        names.iter().position(|n| accept(n)).ok_or_else(|| {
            HeaderError(format!(
                "the header {header:?} has no {what} column; expected LCLid,tstp,energy(kWh/hh)"
            ))
        })
    };
    let id_col = find(&|n| n == "lclid", "LCLid")?;
    let time_col = find(&|n| n == "tstp" || n == "datetime", "tstp")?;
    let energy_col = find(
        &|n| n.starts_with("energy") || n.starts_with("kwh"),
        "energy(kWh/hh)",
    )?;

    let mut replay = Replay::default();
    let mut seen: BTreeMap<DeviceId, BTreeMap<u64, usize>> = BTreeMap::new();
    for (index, line) in lines {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != names.len() {
            replay.bad_rows.push(BadRow {
                line: number,
                reason: format!("{} fields, the header has {}", fields.len(), names.len()),
            });
            continue;
        }
        match parse_row(&fields, id_col, time_col, energy_col) {
            Err(reason) => replay.bad_rows.push(BadRow {
                line: number,
                reason,
            }),
            Ok((_, _, None)) => replay.null_rows += 1,
            Ok((id, start_ms, Some(energy_wh))) => {
                let times = seen.entry(id.clone()).or_default();
                if let Some(first) = times.get(&start_ms) {
                    replay.bad_rows.push(BadRow {
                        line: number,
                        reason: format!(
                            "duplicate of line {first} ({id} at {})",
                            fields[time_col].trim()
                        ),
                    });
                    continue;
                }
                times.insert(start_ms, number);
                replay.households.entry(id).or_default().push(Interval {
                    start_ms,
                    energy_wh,
                });
            }
        }
    }
    for series in replay.households.values_mut() {
        series.sort_by_key(|i| i.start_ms);
    }
    Ok(replay)
}

/// One row's household, interval start and energy (`None`: the file says `Null`).
fn parse_row(
    fields: &[&str],
    id_col: usize,
    time_col: usize,
    energy_col: usize,
) -> Result<(DeviceId, u64, Option<u64>), String> {
    let id: DeviceId = fields[id_col]
        .trim()
        .parse()
        .map_err(|e: anyhow::Error| format!("LCLid: {e}"))?;
    let start_ms = parse_datetime_ms(fields[time_col])?;
    let energy = fields[energy_col].trim();
    if energy.eq_ignore_ascii_case("null") {
        return Ok((id, start_ms, None));
    }
    Ok((id, start_ms, Some(parse_kwh_as_wh(energy)?)))
}

/// `0.263` kWh → 263 Wh, exactly (decimal digits, no float). More than three decimals are
/// rounded half up.
fn parse_kwh_as_wh(text: &str) -> Result<u64, String> {
    let bad = || format!("energy {text:?} is not a non-negative number of kWh");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let digits: Vec<u64> = fraction.bytes().map(|b| u64::from(b - b'0')).collect();
    let milli = digits
        .iter()
        .chain(std::iter::repeat(&0))
        .take(3)
        .fold(0, |acc, d| acc * 10 + d);
    let round_up = u64::from(digits.get(3).is_some_and(|d| *d >= 5));
    whole
        .checked_mul(1000)
        .and_then(|wh| wh.checked_add(milli + round_up))
        .ok_or_else(|| format!("energy {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_block_file_format() {
        let text = "LCLid,tstp,energy(kWh/hh)\n\
                    MAC000002,2012-10-12 00:30:00.0000000,0.263 \n\
                    MAC000002,2012-10-12 00:00:00.0000000,0 \n\
                    MAC000003,2012-10-12 00:00:00.0000000, Null\n\
                    MAC000003,2012-10-12 00:30:00.0000000,1.5\n";
        let replay = parse(text).unwrap();
        assert_eq!(replay.null_rows, 1);
        assert!(replay.bad_rows.is_empty(), "{:?}", replay.bad_rows);
        let two = &replay.households[&"MAC000002".parse().unwrap()];
        assert_eq!(
            two,
            &vec![
                Interval {
                    start_ms: 1_350_000_000_000,
                    energy_wh: 0
                },
                Interval {
                    start_ms: 1_350_001_800_000,
                    energy_wh: 263
                },
            ],
            "sorted by time"
        );
        assert_eq!(
            replay.households[&"MAC000003".parse().unwrap()][0].energy_wh,
            1500
        );
        assert_eq!(replay.intervals(), 3);
    }

    #[test]
    fn parses_the_original_four_column_format() {
        let text = "LCLid,stdorToU,DateTime,KWH/hh (per half hour) \n\
                    MAC000002,Std,2012-10-12 00:30:00.0000000,0.263\n";
        let replay = parse(text).unwrap();
        assert_eq!(replay.intervals(), 1);
    }

    #[test]
    fn reports_each_bad_row_with_its_line_and_keeps_the_rest() {
        let text = "LCLid,tstp,energy(kWh/hh)\n\
                    MAC1,2012-10-12 00:30:00,0.1\n\
                    MAC1,2012-10-12 00:30:00,0.2\n\
                    MAC1,yesterday,0.1\n\
                    MAC1,2012-10-12 01:00:00,-1\n\
                    MAC/1,2012-10-12 01:00:00,1\n\
                    MAC1,2012-10-12 01:30:00\n\
                    MAC1,2012-10-12 02:00:00,abc\n\
                    MAC1,2012-10-12 02:30:00,0.25\n";
        let replay = parse(text).unwrap();
        let lines: Vec<usize> = replay.bad_rows.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8]);
        assert!(replay.bad_rows[0].reason.contains("duplicate of line 2"));
        assert!(replay.bad_rows[1].reason.contains("yesterday"));
        assert!(replay.bad_rows[2].reason.contains("-1"));
        assert!(replay.bad_rows[3].reason.contains("LCLid"));
        assert!(replay.bad_rows[4].reason.contains("2 fields"));
        assert_eq!(replay.intervals(), 2);
    }

    #[test]
    fn refuses_a_file_without_the_header() {
        assert!(parse("").is_err());
        let err = parse("MAC1,2012-10-12 00:30:00,0.1\n").unwrap_err();
        assert!(err.0.contains("LCLid"), "{err}");
    }

    #[test]
    fn kwh_to_wh_is_exact() {
        assert_eq!(parse_kwh_as_wh("0.263"), Ok(263));
        assert_eq!(parse_kwh_as_wh("1"), Ok(1000));
        assert_eq!(parse_kwh_as_wh(".5"), Ok(500));
        assert_eq!(parse_kwh_as_wh("0.0005"), Ok(1));
        assert_eq!(parse_kwh_as_wh("0.0004"), Ok(0));
        assert_eq!(parse_kwh_as_wh("2.1"), Ok(2100));
        for bad in ["", ".", "-1", "1e3", "nan", "1.2.3", "99999999999999999999"] {
            assert!(parse_kwh_as_wh(bad).is_err(), "{bad:?}");
        }
    }
}
