//! CloudTrail's key layout in a trail bucket.
//!
//! `<prefix>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_YYYYMMDDTHHMMZ_<id>.json.gz`;
//! organization trails put `<org-id>/` before the account. Insight files live under
//! `CloudTrail-Insight/`, digests under `CloudTrail-Digest/`.

/// A UTC calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day {
    /// Days since 1970-01-01.
    pub epoch_days: i64,
}

impl Day {
    /// The day containing `ms` (ms since the Unix epoch).
    pub fn of_ms(ms: i64) -> Day {
        Day {
            epoch_days: ms.div_euclid(86_400_000),
        }
    }

    /// The next day.
    pub fn next(self) -> Day {
        Day {
            epoch_days: self.epoch_days + 1,
        }
    }

    /// `days` earlier.
    pub fn minus(self, days: i64) -> Day {
        Day {
            epoch_days: self.epoch_days - days,
        }
    }

    /// (year, month, day).
    pub fn ymd(self) -> (i64, u32, u32) {
        // Civil-from-days (proleptic Gregorian).
        let z = self.epoch_days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }

    /// From a date; `None` when it is not one.
    pub fn from_ymd(y: i64, m: u32, d: u32) -> Option<Day> {
        if !(1..=12).contains(&m) || d == 0 || d > 31 {
            return None;
        }
        let yy = if m <= 2 { y - 1 } else { y };
        let era = yy.div_euclid(400);
        let yoe = yy - era * 400;
        let mp = i64::from((m + 9) % 12);
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let day = Day {
            epoch_days: era * 146_097 + doe - 719_468,
        };
        (day.ymd() == (y, m, d)).then_some(day)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Day> {
        let mut parts = text.split('-');
        let y = parts.next()?.parse().ok()?;
        let m = parts.next()?.parse().ok()?;
        let d = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Day::from_ymd(y, m, d)
    }

    /// `YYYY/MM/DD/`, the day's part of a key.
    pub fn key_part(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{y:04}/{m:02}/{d:02}/")
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Written as `YYYY-MM-DD` (so it can key a JSON object).
impl serde::Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Day::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("not a day (YYYY-MM-DD): {text:?}")))
    }
}

/// Whether a path segment is an AWS account id (12 digits).
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a path segment is an organization id (`o-` and 10–32 lowercase letters or digits).
pub fn is_org_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|r| {
        (10..=32).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// The last path segment of a common prefix (`a/b/c/` → `c`).
pub fn last_segment(prefix: &str) -> &str {
    prefix.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

/// What an object of a trail bucket is, by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind<'k> {
    /// Under a stream (`AWSLogs/[<org>/]<account>/<folder>/<region>/…`): `folder` is
    /// `CloudTrail`, `CloudTrail-Insight` or `CloudTrail-Digest`.
    Stream {
        account: &'k str,
        folder: &'k str,
        region: &'k str,
    },
    /// Anything else: not under `<prefix>AWSLogs/`, or not in CloudTrail's layout there.
    Other,
}

/// What `key` is in a bucket whose trail writes under `prefix` ("" or ending in `/`).
pub fn classify<'k>(prefix: &str, key: &'k str) -> KeyKind<'k> {
    let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix("AWSLogs/")) else {
        return KeyKind::Other;
    };
    let mut parts = rest.splitn(6, '/');
    let mut account = parts.next().unwrap_or("");
    if is_org_id(account) {
        account = parts.next().unwrap_or("");
    } else {
        // Without an organization segment the fifth split is the rest: join it back.
        parts = rest.splitn(5, '/');
        parts.next();
    }
    let (Some(folder), Some(region), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
        return KeyKind::Other;
    };
    let known = matches!(folder, "CloudTrail" | "CloudTrail-Insight" | "CloudTrail-Digest");
    if !is_account_id(account) || !known || region.is_empty() || tail.is_empty() {
        return KeyKind::Other;
    }
    KeyKind::Stream {
        account,
        folder,
        region,
    }
}

/// The delivery time in a log file's name (`…_20240301T1205Z_…`), ms since the Unix epoch.
pub fn file_time_ms(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?;
    for part in name.split('_') {
        let part = part.split('.').next().unwrap_or(part);
        let b = part.as_bytes();
        // YYYYMMDDTHHMMZ or YYYYMMDDTHHMMSSZ (digests)
        if (b.len() == 14 || b.len() == 16) && b[8] == b'T' && b[b.len() - 1] == b'Z' {
            let num = |r: std::ops::Range<usize>| part.get(r)?.parse::<i64>().ok();
            let day = Day::from_ymd(num(0..4)?, num(4..6)? as u32, num(6..8)? as u32)?;
            let (h, mi) = (num(9..11)?, num(11..13)?);
            let s = if b.len() == 16 { num(13..15)? } else { 0 };
            if h > 23 || mi > 59 || s > 59 {
                return None;
            }
            return Some(day.epoch_days * 86_400_000 + (h * 3600 + mi * 60 + s) * 1000);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_through_dates() {
        let d = Day::parse("2024-03-01").unwrap();
        assert_eq!(d.to_string(), "2024-03-01");
        assert_eq!(d.key_part(), "2024/03/01/");
        assert_eq!(d.minus(1).to_string(), "2024-02-29");
        assert_eq!(Day::parse("2023-02-29"), None);
        assert_eq!(Day::of_ms(1_709_294_400_000).to_string(), "2024-03-01");
    }

    #[test]
    fn file_times_come_from_the_key() {
        let k = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1205Z_abc.json.gz";
        assert_eq!(file_time_ms(k), Some(1_709_294_700_000));
        let digest = "x/111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20240301T120500Z.json.gz";
        assert_eq!(file_time_ms(digest), Some(1_709_294_700_000));
        assert_eq!(file_time_ms("AWSLogs/notes.txt"), None);
    }

    #[test]
    fn keys_are_classified_by_the_layout() {
        let log = "p/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/f.json.gz";
        assert_eq!(
            classify("p/", log),
            KeyKind::Stream {
                account: "111122223333",
                folder: "CloudTrail",
                region: "us-east-1"
            }
        );
        assert_eq!(classify("", log), KeyKind::Other, "the prefix must match");
        let org = "AWSLogs/o-abcdef1234/111122223333/CloudTrail-Digest/eu-west-1/2024/03/01/d.json.gz";
        assert!(matches!(
            classify("", org),
            KeyKind::Stream {
                folder: "CloudTrail-Digest",
                region: "eu-west-1",
                ..
            }
        ));
        assert_eq!(
            classify("", "AWSLogs/111122223333/CloudTrail/us-east-1/"),
            KeyKind::Other
        );
        assert_eq!(classify("", "AWSLogs/111122223333/Config/us-east-1/x"), KeyKind::Other);
        assert_eq!(classify("", "AWSLogs/notes.txt"), KeyKind::Other);
        assert_eq!(classify("", "elsewhere/file.json.gz"), KeyKind::Other);
    }

    #[test]
    fn account_and_org_ids_are_told_apart() {
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("o-abcdef1234"));
        assert!(is_org_id("o-abcdef1234"));
        assert_eq!(last_segment("AWSLogs/o-abcdef1234/"), "o-abcdef1234");
    }
}
