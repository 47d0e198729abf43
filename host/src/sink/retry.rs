//! Pauses between delivery attempts: doubling from a first pause up to a cap, with full jitter,
//! or what the receiver asked for in `Retry-After` (capped the same way).

use std::time::Duration;

/// How the pauses grow.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first pause.
    pub initial: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Backoff {
    /// The pause before attempt `attempt` (1 = the first retry), jittered by `random` in [0, 1):
    /// a random point between half and all of the doubled pause.
    pub fn pause(&self, attempt: u32, random: f64) -> Duration {
        let doubled = self.initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let full = doubled.min(self.max);
        full.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
    }

    /// The pause a `Retry-After` value asks for (seconds, or an HTTP date), capped at `max`.
    pub fn retry_after(&self, value: &str, now: std::time::SystemTime) -> Option<Duration> {
        let value = value.trim();
        let asked = match value.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => httpdate_parse(value)?.duration_since(now).unwrap_or(Duration::ZERO),
        };
        Some(asked.min(self.max))
    }
}

fn httpdate_parse(value: &str) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339_weak(value).ok().or_else(|| {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
        let mut parts = value.split_whitespace().skip(1);
        let day: u32 = parts.next()?.parse().ok()?;
        let month = match parts.next()? {
            "Jan" => 1,
            "Feb" => 2,
            "Mar" => 3,
            "Apr" => 4,
            "May" => 5,
            "Jun" => 6,
            "Jul" => 7,
            "Aug" => 8,
            "Sep" => 9,
            "Oct" => 10,
            "Nov" => 11,
            "Dec" => 12,
            _ => return None,
        };
        let year: u32 = parts.next()?.parse().ok()?;
        let time = parts.next()?;
        humantime::parse_rfc3339_weak(&format!("{year:04}-{month:02}-{day:02} {time}")).ok()
    })
}

/// A small deterministic generator for jitter (seeded per sink; no global randomness).
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Jitter(seed | 1)
    }

    /// The next value in [0, 1).
    pub fn next(&mut self) -> f64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_retry_after_is_capped_too() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.pause(1, 0.999_999).as_millis(), 99);
        assert_eq!(b.pause(3, 0.0), Duration::from_millis(200));
        assert_eq!(b.pause(30, 0.0), Duration::from_millis(500));
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(b.retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(b.retry_after("120", now), Some(Duration::from_secs(1)));
        assert_eq!(
            b.retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        let later = Backoff {
            max: Duration::from_secs(3600),
            ..b
        };
        assert_eq!(
            later.retry_after(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                std::time::UNIX_EPOCH + Duration::from_secs(784_111_770)
            ),
            Some(Duration::from_secs(7))
        );
        assert_eq!(b.retry_after("soon", now), None);
        let mut j = Jitter::new(7);
        assert!((0..1000).map(|_| j.next()).all(|x| (0.0..1.0).contains(&x)));
    }
}
