//! The fast reader against serde_json: on every record it accepts, the same `Record` and length.

use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{read, Fast};
use crate::record::{Record, Scalar, Shape};

/// What serde_json reads at the start of `text`, as the reader's one-pass parse does.
fn serde_read(text: &str) -> Option<(Record<'_>, usize)> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Record>();
    match stream.next() {
        Some(Ok(record)) => Some((record, stream.byte_offset())),
        _ => None,
    }
}

/// Fails when the fast reader accepts `text` and serde_json does not agree exactly.
fn agrees(text: &str) -> bool {
    match read(text, 64) {
        Fast::Read(record, len) => {
            let Some((expected, expected_len)) = serde_read(text) else {
                panic!("fast read accepted what serde_json refuses: {text}");
            };
            assert_eq!(len, expected_len, "length differs for {text}");
            assert_eq!(record, expected, "record differs for {text}");
            true
        }
        Fast::More | Fast::Declined => false,
    }
}

#[derive(Deserialize)]
struct File<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

/// The records of the project's fixture files, as written, with the file's name.
fn fixture_records() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/logs");
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for path in names {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(file) = serde_json::from_str::<File>(&text) else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.extend(file.records.iter().map(|r| (name.clone(), r.get().to_owned())));
    }
    assert!(out.len() > 50, "the fixtures hold {} records", out.len());
    out
}

#[test]
fn ordinary_records_are_read_fast_and_as_serde_reads_them() {
    let ordinary = [
        "ec2.json",
        "iam.json",
        "s3.json",
        "sts.json",
        "vpc.json",
        "lambda.json",
        "console_login.json",
    ];
    let mut accepted = 0;
    for (file, record) in fixture_records() {
        let read = agrees(&record);
        // Followed by more text, as in a file.
        agrees(&format!("{record},\n{record}"));
        if ordinary.contains(&file.as_str()) {
            assert!(read, "{file}: an ordinary record was declined: {record}");
        }
        accepted += usize::from(read);
    }
    assert!(accepted > 50);
}

#[test]
fn odd_shapes_agree_or_decline() {
    let cases = [
        r#"{"readOnly":"True","eventVersion":1.08,"userIdentity":null,"resources":"x","eventName":null}"#,
        r#"{"eventname":"ListUsers","useridentity":{"type":"Root","ARN":"arn:aws:iam::1:root"}}"#,
        r#"{"eventName":"A","eventName":"B","userIdentity":{"arn":"x"},"userIdentity":{"type":"y"}}"#,
        r#"{"eventName":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \n\t"}"#,
        r#"{"eventName":"\ud800"}"#,
        r#"{"eventName":"\udc00x"}"#,
        r#"{"x":"\ud800","y":{"z":[1,-0.5e+3,true,false,null,{}]}}"#,
        r#"{"resources":[{"ARN":"a"},null,"s",[1],{"arn":"b","x":{}}]}"#,
        r#"{"resources":{"ARN":"a"}}"#,
        r#"{"resources":null,"tlsDetails":[],"insightDetails":"x","additionalEventData":true}"#,
        r#"{"requestParameters":null,"responseElements":  {"a" : [ 1 , 2 ] } }"#,
        r#"{"requestParameters":"text","responseElements":12}"#,
        r#"{"userIdentity":{"sessionContext":{"attributes":{"mfaAuthenticated":"true"},"sessionIssuer":{"arn":"r"}}}}"#,
        r#"{"userIdentity":{"sessionContext":{"attributes":[],"sessionIssuer":5}}}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":-}"#,
        r#"{"a":1e}"#,
        r#"{"a":1,}"#,
        r#"{"a":[1,]}"#,
        r#"{"a" 1}"#,
        r#"{"a":tru}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12G4"}"#,
        "{\"a\":\"tab\there\"}",
        r#"{"ke\u0079":1}"#,
        r#"{}"#,
        r#"{ }"#,
        r#"{"eventTime":{},"eventID":[],"errorCode":false}"#,
        r#"{"a":1e400}"#,
        r#"{"readOnly":1e400}"#,
    ];
    for case in cases {
        agrees(case);
        agrees(&format!("{case}  ,"));
    }
    // Accepted ones, exactly:
    let Fast::Read(r, _) = read(cases[3], 64) else {
        panic!("escapes are read")
    };
    assert_eq!(r.event_name, Scalar::Str("caf\u{e9} \u{1F600} \"q\" \\ / \n\t".into()));
    let Fast::Read(r, _) = read(cases[2], 64) else {
        panic!("duplicate keys are read")
    };
    assert_eq!(r.event_name, Scalar::Str("B".into()));
    assert_eq!(r.user_identity.arn, Scalar::Absent);
    assert_eq!(
        read(cases[4], 64),
        Fast::Declined,
        "a lone surrogate a field reads goes to serde_json"
    );
    assert!(
        matches!(read(cases[6], 64), Fast::Read(..)),
        "a lone surrogate in a skipped value is JSON"
    );
    let Fast::Read(r, _) = read(cases[9], 64) else { panic!() };
    assert_eq!(r.tls_details.shape, Shape::Wrong("an array"));
    assert_eq!(
        read(r#"{"eventVersion":1.08}"#, 64),
        Fast::Declined,
        "numbers go to serde_json"
    );
}

#[test]
fn a_record_cut_short_asks_for_more() {
    let (_, record) = fixture_records().into_iter().find(|(f, _)| f == "ec2.json").unwrap();
    for end in 1..record.len() {
        if !record.is_char_boundary(end) {
            continue;
        }
        match read(&record[..end], 64) {
            Fast::More => {}
            other => panic!("cut at {end}: {other:?}"),
        }
    }
    assert!(matches!(read(&record, 64), Fast::Read(_, n) if n == record.len()));
    assert_eq!(read(r#"{"a":12"#, 64), Fast::More, "a number at the end may go on");
}

#[test]
fn nesting_past_the_limit_is_declined() {
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(10), "]".repeat(10));
    assert!(matches!(read(&deep, 64), Fast::Read(..)));
    assert_eq!(read(&deep, 10), Fast::Declined);
    assert!(matches!(read(&deep, 11), Fast::Read(..)));
    let deeper = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    assert_eq!(read(&deeper, 1000), Fast::Declined, "serde_json's own limit is 128");
}

/// A small deterministic generator for the mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_records_agree_or_decline() {
    const BYTES: &[u8] = b"\"\\{}[],:01-e.E+ntfu \x01\x1fAaz/";
    const INSERTS: [&str; 8] = [
        "\\u00e9",
        "\\ud800",
        "\\ud83d\\ude00",
        "\\\"",
        "é",
        "null",
        "1e5",
        "{\"k\":[]}",
    ];
    let records = fixture_records();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let (mut accepted, mut tried) = (0, 0);
    for round in 0..20_000 {
        let (_, base) = &records[round % records.len()];
        let mut bytes = base.clone().into_bytes();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] = BYTES[rng.below(BYTES.len())],
                1 => {
                    bytes.remove(at);
                }
                2 => {
                    let insert = INSERTS[rng.below(INSERTS.len())];
                    bytes.splice(at..at, insert.bytes());
                }
                _ => bytes.insert(at, BYTES[rng.below(BYTES.len())]),
            }
            if bytes.is_empty() {
                bytes.push(b'{');
            }
        }
        let Ok(text) = String::from_utf8(bytes) else { continue };
        tried += 1;
        accepted += usize::from(agrees(&text));
    }
    eprintln!("{accepted} of {tried} mutated records read fast");
    // Most single mutations land in a string and leave valid JSON.
    assert!(accepted > tried / 10, "{accepted} of {tried} mutated records were read");
}
