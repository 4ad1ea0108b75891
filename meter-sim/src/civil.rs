//! UTC calendar arithmetic (proleptic Gregorian), enough to parse and print CSV timestamps and
//! to shape synthetic load by time of day and season. Pure; no time zone database.

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date `(year, month, day)` of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=31, 1..=12).
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS[.fraction]` (also with `T`), UTC, into Unix milliseconds. The
/// fraction may have any number of digits; digits past milliseconds are ignored.
pub fn parse_datetime_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("timestamp {text:?} is not YYYY-MM-DD HH:MM:SS");
    let (date, time) = text.split_once([' ', 'T']).ok_or_else(bad)?;
    let mut d = date.split('-');
    let (Some(y), Some(mo), Some(da), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':');
    let (Some(h), Some(mi), Some(s), None) = (t.next(), t.next(), t.next(), t.next()) else {
        return Err(bad());
    };
    let digits = |s: &str, len: usize| -> Result<u32, String> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (year, month, day) = (digits(y, 4)?, digits(mo, 2)?, digits(da, 2)?);
    let (hour, minute, second) = (digits(h, 2)?, digits(mi, 2)?, digits(s, 2)?);
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let year = i64::from(year);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(format!(
            "timestamp {text:?} is not a valid UTC date and time after 1970"
        ));
    }
    let millis: u64 = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |acc, b| acc * 10 + u64::from(b - b'0'));
    let days = u64::try_from(days_from_civil(year, month, day)).map_err(|_| bad())?;
    Ok(
        ((days * 24 + u64::from(hour)) * 60 + u64::from(minute)) * 60_000
            + u64::from(second) * 1000
            + millis,
    )
}

/// `YYYY-MM-DD HH:MM:SS.mmm` of Unix milliseconds, UTC.
pub fn format_datetime_ms(millis: u64) -> String {
    let days = i64::try_from(millis / 86_400_000).unwrap_or(i64::MAX);
    let in_day = millis % 86_400_000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Day of the year, 0-based (0 = 1 January), of Unix milliseconds.
pub fn day_of_year(millis: u64) -> u32 {
    let days = i64::try_from(millis / 86_400_000).unwrap_or(0);
    let (year, _, _) = civil_from_days(days);
    u32::try_from(days - days_from_civil(year, 1, 1)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        // `date -u -d '2012-10-12 00:30:00' +%s` = 1350001800
        assert_eq!(
            parse_datetime_ms("2012-10-12 00:30:00.0000000"),
            Ok(1_350_001_800_000)
        );
        assert_eq!(
            parse_datetime_ms("2012-10-12T00:30:00.25"),
            Ok(1_350_001_800_250)
        );
        assert_eq!(
            format_datetime_ms(1_350_001_800_250),
            "2012-10-12 00:30:00.250"
        );
        assert_eq!(day_of_year(1_350_001_800_000), 285);
        assert_eq!(parse_datetime_ms("2012-02-29 00:00:00").map(|_| ()), Ok(()));
    }

    #[test]
    fn round_trip_across_four_centuries() {
        for days in (-1000..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn rejects_malformed_and_impossible_times() {
        for bad in [
            "",
            "2012-10-12",
            "2012-13-01 00:00:00",
            "2013-02-29 00:00:00",
            "2012-10-12 24:00:00",
            "2012-10-12 00:60:00",
            "12-10-12 00:00:00",
            "2012-10-12 00:00:00.x",
            "1969-12-31 23:59:59",
            "2012/10/12 00:00:00",
            "2012-10-12 00:00",
        ] {
            assert!(parse_datetime_ms(bad).is_err(), "{bad:?}");
        }
    }
}
