//! Hostile and broken input: each file gets a clear error naming it, the plugin's memory stays
//! under a small cap, nothing crashes, and the other files' events all come out.

mod common;

use std::io::Write;
use std::path::Path;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A gzip file of 160 identical members, each 64 MiB of JSON whitespace: 10 GiB decompressed
/// from ~10 MB. (Deflate cannot go past ~1032:1, so "1 KB to 10 GB" is not possible in one gzip
/// layer; this is the densest bomb the format allows.)
fn gzip_bomb() -> Vec<u8> {
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    member.write_all(b"{\"Records\":[").unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..64 {
        member.write_all(&spaces).unwrap();
    }
    let member = member.finish().unwrap();
    let mut out = Vec::with_capacity(member.len() * 160);
    let mut rest = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..64 {
        rest.write_all(&spaces).unwrap();
    }
    let rest = rest.finish().unwrap();
    out.extend_from_slice(&member);
    for _ in 1..160 {
        out.extend_from_slice(&rest);
    }
    out
}

fn record(id: &str, extra: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.09","eventTime":"2024-03-01T12:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","eventID":"{id}","readOnly":true{extra}}}"#
    )
}

#[test]
fn bad_files_fail_alone_with_clear_errors_and_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "bomb.json.gz", &gzip_bomb());
    let good_gz = common::gzip(common::good_log("trunc", 200).as_bytes());
    write(d, "truncated.json.gz", &good_gz[..good_gz.len() / 2]);
    let mut corrupt = common::gzip(common::good_log("corrupt", 50).as_bytes());
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 64] {
        *b ^= 0x55;
    }
    write(d, "corrupt.json.gz", &corrupt);
    write(d, "not-json.json", b"this is not JSON at all\n");
    write(d, "not-cloudtrail.json", br#"{"hello":"world","items":[1,2,3]}"#);
    write(d, "array.json", b"[1,2,3]");
    write(d, "empty.json", b"");
    write(
        d,
        "zz-good.json.gz",
        &common::gzip(common::good_log("good", 5).as_bytes()),
    );

    let out = common::run_with_plugins(
        &common::plugin_dir(),
        &[
            "--plugin-memory-mib",
            "64",
            "replay",
            "--no-progress",
            d.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let failed = |name: &str, reason: &str| {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no failure line for {name}:\n{stderr}"));
        assert!(line.contains(reason), "{name}: expected {reason:?} in {line:?}");
    };
    failed("bomb.json.gz", "decompresses to more than 4294967296 bytes");
    failed("truncated.json.gz", "truncated: the gzip stream ends early");
    failed("corrupt.json.gz", "corrupt gzip");
    failed("not-json.json", "not JSON: expected '{' at byte 0, found 't'");
    failed(
        "not-cloudtrail.json",
        "not a CloudTrail file: the top-level object has no \"Records\" array and is not a digest (keys: hello, items)",
    );
    failed("array.json", "not a CloudTrail file: the document is an array");
    failed("empty.json", "truncated: the file is empty");
    assert!(
        !stderr.contains("memory limit"),
        "no file may hit the 64 MiB cap:\n{stderr}"
    );

    let events = common::lines(&out.stdout);
    let from = |name: &str| {
        events
            .iter()
            .filter(|e| e["origin"]["key"].as_str().unwrap().ends_with(name))
            .count()
    };
    assert_eq!(from("zz-good.json.gz"), 5, "the good file is unaffected");
    let truncated = from("truncated.json.gz");
    assert!(
        truncated > 0 && truncated < 200,
        "events before the cut are kept: {truncated}"
    );
}

#[test]
fn bad_records_are_flagged_and_their_neighbours_survive() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let huge = format!(",\"userAgent\":\"{}\"", "x".repeat(200 << 20));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut invalid_utf8 = record("bad-utf8", ",\"userAgent\":\"").into_bytes();
    invalid_utf8.truncate(invalid_utf8.len() - 1);
    invalid_utf8.extend_from_slice(b"\xff\xfe\"}");
    let mut body = Vec::new();
    body.extend_from_slice(b"{\"Records\":[");
    body.extend_from_slice(record("before", "").as_bytes());
    body.push(b',');
    body.extend_from_slice(record("huge", &huge).as_bytes());
    body.push(b',');
    body.extend_from_slice(deep.as_bytes());
    body.push(b',');
    body.extend_from_slice(&invalid_utf8);
    body.push(b',');
    body.extend_from_slice(record("after", "").as_bytes());
    body.extend_from_slice(b"]}");
    write(d, "hostile-records.json.gz", &common::gzip(&body));

    // A record is held whole up to the 16 MiB record limit, then dropped; the cap leaves room
    // for that buffer's growth, the input and one parsed batch, not for the 200 MB string.
    let out = common::run_with_plugins(
        &common::plugin_dir(),
        &[
            "--plugin-memory-mib",
            "96",
            "replay",
            "--no-progress",
            d.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "flagged records do not fail the file: {stderr}"
    );
    let events = common::lines(&out.stdout);
    assert_eq!(events.len(), 5, "{stderr}");
    assert_eq!(events[0]["event_id"], "before");
    assert!(events[0].get("problems").is_none());
    let problem = |i: usize| events[i]["problems"][0].as_str().unwrap().to_owned();
    assert_eq!(
        problem(1),
        format!(
            "record is {} bytes, over the limit of 16777216 bytes; skipped",
            record("huge", &huge).len()
        )
    );
    assert_eq!(problem(2), "record is nested deeper than 64 levels; not parsed");
    assert!(problem(3).contains("not valid UTF-8"), "{}", problem(3));
    assert_eq!(events[4]["event_id"], "after");
    assert_eq!(events[3]["origin"]["index"], 3);
    assert!(stderr.contains("5 events (3 flagged)"), "{stderr}");
}

#[test]
fn bad_records_in_the_recorded_fixture_are_flagged_individually() {
    let path = common::root().join("tests/fixtures/logs/bad_records.json");
    let out = common::replay(&[path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let events = common::lines(&out.stdout);
    assert_eq!(events.len(), 11);
    let flagged: Vec<u64> = events
        .iter()
        .filter(|e| e.get("problems").is_some())
        .map(|e| e["origin"]["index"].as_u64().unwrap())
        .collect();
    let good: Vec<u64> = events
        .iter()
        .filter(|e| e.get("problems").is_none())
        .map(|e| e["origin"]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(good, vec![0, 2, 8, 10]);
    assert_eq!(flagged.len(), 7);
}
