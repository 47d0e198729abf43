//! Tests of `reader`: batching, budgets and odd bytes.

use super::*;

fn read_all(bytes: &[u8]) -> Vec<Event> {
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
        .map(|e| e.event_id.unwrap())
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
