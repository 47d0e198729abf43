//! Tests of `reader`: batching, budgets and odd bytes.

use super::*;

fn read_all(bytes: &[u8]) -> Vec<Event<'static>> {
    let mut file = LogFile::open(bytes.to_vec(), "t.json", OpenOptions::default()).unwrap();
    let mut all = Vec::new();
    loop {
        let batch = file.next_batch(7).unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

#[test]
fn invalid_utf8_in_a_skipped_string_is_replaced_and_flagged() {
    let mut doc =
        br#"{"Records":[{"eventID":"a","eventTime":"2024-01-01T00:00:00Z","eventName":"X","unknownField":""#.to_vec();
    doc.extend_from_slice(b"\xff\"}]}");
    let events = read_all(&doc);
    assert_eq!(events.len(), 1);
    assert!(events[0].raw.contains('\u{FFFD}'));
    assert!(
        events[0].problems.iter().any(|p| p.contains("invalid UTF-8")),
        "{:?}",
        events[0].problems
    );
}

#[test]
fn a_batch_ends_at_its_byte_budget() {
    let pad = "x".repeat(3 << 20);
    let records: Vec<String> = (0..5)
        .map(|i| {
            format!(r#"{{"eventID":"e{i}","eventTime":"2024-01-01T00:00:00Z","eventName":"X","userAgent":"{pad}"}}"#)
        })
        .collect();
    let doc = format!(r#"{{"Records":[{}]}}"#, records.join(","));
    let mut file = LogFile::open(doc.into_bytes(), "t.json", OpenOptions::default()).unwrap();
    assert_eq!(
        file.next_batch(512).unwrap().len(),
        3,
        "3 × 3 MiB passes the 8 MiB budget"
    );
    assert_eq!(file.next_batch(512).unwrap().len(), 2);
    assert!(file.next_batch(512).unwrap().is_empty());
}

#[test]
fn batches_of_any_size_give_every_record_in_order() {
    let records: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"eventID":"e{i}","eventTime":"2024-01-01T00:00:00Z","eventName":"X"}}"#))
        .collect();
    let doc = format!(r#"{{"Records":[{}]}}"#, records.join(","));
    let ids: Vec<String> = read_all(doc.as_bytes())
        .into_iter()
        .map(|e| e.event_id.unwrap().into_owned())
        .collect();
    assert_eq!(ids, (0..50).map(|i| format!("e{i}")).collect::<Vec<_>>());
}

#[test]
fn a_record_with_mismatched_brackets_is_flagged_and_the_next_survives() {
    let doc =
        br#"{"Records":[{"eventID":"a","x":[1},{"eventID":"b","eventTime":"2024-01-01T00:00:00Z","eventName":"X"}]}"#;
    let events = read_all(doc);
    assert_eq!(events.len(), 2);
    assert!(
        events[0].problems[0].starts_with("record is not valid JSON"),
        "{:?}",
        events[0].problems
    );
    assert_eq!(events[1].event_id.as_deref(), Some("b"));
    assert!(events[1].problems.is_empty());
}

/// Hands out the bytes `step` at a time, as a slow network or a decompressor might.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn read_trickled(bytes: &[u8], step: usize) -> Vec<Event<'static>> {
    let input = Trickle {
        bytes: bytes.to_vec(),
        at: 0,
        step,
    };
    let mut file = LogFile::open_reader(Box::new(input), "t.json", OpenOptions::default()).unwrap();
    let mut all = Vec::new();
    loop {
        let batch = file.next_batch(512).unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// Records that take each of the reader's paths: plain ASCII (one pass), text that is not ASCII,
/// many brackets inside strings, nesting past the limit, a number, a broken record.
fn mixed_records() -> String {
    let plain = |id: &str, extra: &str| {
        format!(r#"{{"eventID":"{id}","eventTime":"2024-01-01T00:00:00Z","eventName":"ListUsers"{extra}}}"#)
    };
    let deep = format!(r#","requestParameters":{{"x":{}1{}}}"#, "[".repeat(70), "]".repeat(70));
    let records = [
        plain("a", ""),
        plain("b", r#","userAgent":"café ☕""#),
        plain("c", &format!(r#","userAgent":"{}""#, "[{".repeat(80))),
        plain("d", &deep),
        "42".to_owned(),
        r#"{"eventID":"f","x":[1}"#.to_owned(),
        plain("g", r#","requestParameters":{"policy":"{\"Statement\":[]}"}"#),
    ];
    format!("{{\"Records\":[{}]}}", records.join(" ,\n"))
}

#[test]
fn records_read_in_small_pieces_match_records_read_whole() {
    let doc = mixed_records();
    let whole = read_all(doc.as_bytes());
    assert_eq!(whole.len(), 7);
    for step in [1, 2, 3, 5, 7, 8, 13, 64, 1000] {
        assert_eq!(
            read_trickled(doc.as_bytes(), step),
            whole,
            "read {step} bytes at a time"
        );
    }
}

#[test]
fn depth_is_judged_by_nesting_not_by_brackets_in_strings() {
    let events = read_all(mixed_records().as_bytes());
    let problems = |i: usize| events[i].problems.clone();
    assert!(problems(0).is_empty());
    assert_eq!(events[1].user_agent.as_deref(), Some("café ☕"));
    assert!(problems(1).is_empty());
    assert!(problems(2).is_empty(), "{:?}", problems(2));
    assert_eq!(events[2].raw.matches('[').count(), 80);
    assert_eq!(problems(3), ["record is nested deeper than 64 levels; not parsed"]);
    assert_eq!(problems(4), ["record is a number, not an object"]);
    assert!(
        problems(5)[0].starts_with("record is not valid JSON"),
        "{:?}",
        problems(5)
    );
    assert_eq!(events[6].event_id.as_deref(), Some("g"));
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.index, i as u32);
    }
}

/// Hands out `bytes` as asked, then fails, as a download cut off or a corrupt gzip stream does.
struct FailsAfter(Vec<u8>);

impl Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::other(InputError("the download failed".into())));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0.drain(..n);
        Ok(n)
    }
}

#[test]
fn a_record_that_ends_where_the_data_fails_is_still_returned() {
    let record = |id: &str| format!(r#"{{"eventID":"{id}","eventTime":"2024-01-01T00:00:00Z","eventName":"X"}}"#);
    let cut = format!(r#"{{"Records":[{},{}"#, record("a"), record("b"));
    let input = FailsAfter(cut.into_bytes());
    let mut file = LogFile::open_reader(Box::new(input), "t.json", OpenOptions::default()).unwrap();
    let ids: Vec<String> = file
        .next_batch(512)
        .unwrap()
        .into_iter()
        .map(|e| e.event_id.unwrap().into_owned())
        .collect();
    assert_eq!(
        ids,
        ["a", "b"],
        "the record before the failure is complete: it is returned"
    );
    assert_eq!(
        file.next_batch(512),
        Err(FileError::ReadFailed("the download failed".into()))
    );
}
