//! De-duplication by `eventID` within a window: an event some earlier file already delivered
//! (acknowledged by every sink) is not handed over again.
//!
//! Duplicates come from the source, not the trail: the same object notified twice (S3
//! notifications are at least once), a queue message that came back after its object was read,
//! or an organization trail and an account trail delivering the same event to one bucket. Only
//! what was acknowledged is remembered, so that a file that failed or was not acknowledged never
//! hides its events from its next attempt: nothing is lost to the window. Two files read at the
//! same time may still both deliver an event (neither was acknowledged when the other was read).
//!
//! The window is bounded by time and by count (the older ids go first); each id costs about 50
//! bytes. CloudTrail's event ids are UUIDs and are kept as their 128 bits; any other id is kept
//! as a 128-bit hash of it.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Duration;

/// The ids delivered within the window.
pub struct Dedup {
    window_ms: i64,
    max: usize,
    seen: Mutex<Seen>,
    /// Keys for hashing ids that are not UUIDs.
    hash: (std::hash::RandomState, std::hash::RandomState),
}

#[derive(Default)]
struct Seen {
    ids: HashSet<u128>,
    /// When each id was recorded, oldest first.
    order: VecDeque<(i64, u128)>,
}

impl Dedup {
    /// Remembers ids for `window`, at most `max` of them.
    pub fn new(window: Duration, max: usize) -> Self {
        Dedup {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            max: max.max(1),
            seen: Mutex::new(Seen::default()),
            hash: (std::hash::RandomState::new(), std::hash::RandomState::new()),
        }
    }

    /// The key `event_id` is remembered by: its UUID's bits, or a 128-bit hash of it.
    pub fn key(&self, event_id: &str) -> u128 {
        if let Some(bits) = uuid_bits(event_id) {
            return bits;
        }
        let half = |state: &std::hash::RandomState| {
            let mut h = state.build_hasher();
            h.write(event_id.as_bytes());
            h.finish()
        };
        // The top bit tells hashed ids from UUIDs of the same bits (version bits differ anyway).
        (u128::from(half(&self.hash.0) | 1 << 63) << 64) | u128::from(half(&self.hash.1))
    }

    /// For each key, whether it was delivered within the window (`None`: no id, never).
    pub fn delivered(&self, keys: &[Option<u128>]) -> Vec<bool> {
        let Ok(seen) = self.seen.lock() else {
            return vec![false; keys.len()];
        };
        keys.iter().map(|k| k.is_some_and(|k| seen.ids.contains(&k))).collect()
    }

    /// Records `keys` as delivered at `now_ms`, and forgets what left the window.
    pub fn record(&self, now_ms: i64, keys: &[u128]) {
        let Ok(mut seen) = self.seen.lock() else { return };
        for &k in keys {
            if seen.ids.insert(k) {
                seen.order.push_back((now_ms, k));
            }
        }
        let horizon = now_ms.saturating_sub(self.window_ms);
        while let Some(&(at, k)) = seen.order.front() {
            if at >= horizon && seen.order.len() <= self.max {
                break;
            }
            seen.order.pop_front();
            seen.ids.remove(&k);
        }
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.ids.len())
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The 128 bits of a UUID written `8-4-4-4-12` in hex (either case).
fn uuid_bits(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        let d = (c as char).to_digit(16)?;
        v = v << 4 | u128::from(d);
    }
    Some(v)
}

/// The `event_id` of a rendered event document: its third member, after `kind` and
/// `schema_version` (the document schema's fixed order). `None` when the document has none, or
/// when it is not in that form (then it is never taken for a duplicate).
pub fn document_event_id(line: &[u8]) -> Option<&str> {
    let rest = line.strip_prefix(b"{\"kind\":\"event\",\"schema_version\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = rest[digits..].strip_prefix(b",\"event_id\":\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_kept_as_their_bits_and_other_ids_hashed() {
        let d = Dedup::new(Duration::from_secs(60), 10);
        assert_eq!(
            d.key("3038ebd2-c98a-4c65-9b6e-e22506292313"),
            0x3038ebd2_c98a_4c65_9b6e_e22506292313
        );
        assert_eq!(
            d.key("3038EBD2-C98A-4C65-9B6E-E22506292313"),
            d.key("3038ebd2-c98a-4c65-9b6e-e22506292313")
        );
        let other = d.key("not-a-uuid");
        assert_eq!(other, d.key("not-a-uuid"));
        assert_ne!(other, d.key("not-a-uuid2"));
        assert!(other >> 127 == 1);
    }

    #[test]
    fn what_was_recorded_is_delivered_until_it_leaves_the_window() {
        let d = Dedup::new(Duration::from_secs(60), 3);
        let (a, b, c, e) = (d.key("a"), d.key("b"), d.key("c"), d.key("e"));
        d.record(1_000, &[a, b]);
        assert_eq!(d.delivered(&[Some(a), Some(c), None]), vec![true, false, false]);
        // Past the window: a and b go.
        d.record(62_000, &[c]);
        assert_eq!(d.delivered(&[Some(a), Some(b), Some(c)]), vec![false, false, true]);
        // Over the count: the oldest go first.
        d.record(63_000, &[a, b, e]);
        assert_eq!(
            d.delivered(&[Some(c), Some(a), Some(b), Some(e)]),
            vec![false, true, true, true]
        );
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn a_documents_event_id_is_read_from_its_head() {
        let line = br#"{"kind":"event","schema_version":3,"event_id":"3038ebd2-c98a-4c65-9b6e-e22506292313","event_time":"x"}"#;
        assert_eq!(document_event_id(line), Some("3038ebd2-c98a-4c65-9b6e-e22506292313"));
        assert_eq!(
            document_event_id(br#"{"kind":"event","schema_version":3,"event_time":"x"}"#),
            None
        );
        assert_eq!(
            document_event_id(br#"{"kind":"event","schema_version":3,"event_id":"a\"b"}"#),
            None
        );
        assert_eq!(document_event_id(br#"{"kind":"finding","event_id":"x"}"#), None);
    }
}
