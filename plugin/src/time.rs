//! Reading `eventTime` in the formats real producers write.
//!
//! CloudTrail writes `2024-01-01T00:00:00Z`; other producers and re-exports write fractions,
//! offsets, a space instead of `T`, or no zone at all (read as UTC).

/// Milliseconds since the Unix epoch for a timestamp text, or `None` when it is not one.
pub fn parse_epoch_ms(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    if b.len() < 19 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_secs = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (digits(&[*h1, *h2], 0, 2)?, digits(&[*m1, *m2], 0, 2)?),
                [h1, h2] => (digits(&[*h1, *h2], 0, 2)?, 0),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * 1000 + millis)
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let mut v = 0i64;
    for &c in b.get(at..at + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// `ms` since the Unix epoch as `2024-01-01T00:00:00Z` (whole seconds, UTC).
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (the inverse of `days_from_civil`), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::{format_ms, parse_epoch_ms};

    #[test]
    fn format_ms_is_the_inverse_of_parsing_whole_seconds() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_704_067_200_999), "2024-01-01T00:00:00Z");
        assert_eq!(format_ms(-1000), "1969-12-31T23:59:59Z");
        // Every third day from year 1 to 9999 (leap years and century rules), every field set.
        for day in (-719_162i64..2_932_896).step_by(3) {
            let ms = day * 86_400_000 + 13 * 3_600_000 + 7 * 60_000 + 9_000;
            assert_eq!(parse_epoch_ms(&format_ms(ms)), Some(ms), "day {day}");
        }
    }

    #[test]
    fn cloudtrail_format_is_read_as_utc() {
        assert_eq!(parse_epoch_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_epoch_ms("2024-01-01T00:00:00Z"), Some(1_704_067_200_000));
    }

    #[test]
    fn fractions_offsets_and_spaces_are_read() {
        assert_eq!(parse_epoch_ms("2024-01-01 00:00:00.000"), Some(1_704_067_200_000));
        assert_eq!(parse_epoch_ms("2024-01-01T00:00:00.123Z"), Some(1_704_067_200_123));
        assert_eq!(parse_epoch_ms("2024-01-01T00:00:00.5Z"), Some(1_704_067_200_500));
        assert_eq!(parse_epoch_ms("2024-01-01T02:00:00+02:00"), Some(1_704_067_200_000));
        assert_eq!(parse_epoch_ms("2023-12-31T23:00:00-0100"), Some(1_704_067_200_000));
    }

    #[test]
    fn nonsense_is_rejected() {
        for bad in [
            "not a time",
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T00:00:00Q",
        ] {
            assert_eq!(parse_epoch_ms(bad), None, "{bad}");
        }
        assert!(parse_epoch_ms("2024-02-29T00:00:00Z").is_some());
    }
}
