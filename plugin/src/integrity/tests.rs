use std::io::Write;

use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::EncodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest as _, Sha256};

use super::digest::hex;
use super::judge::string_to_sign;
use super::*;
use crate::model::FileError;

const BUCKET: &str = "trail-bucket";
const KEY: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T130000Z.json.gz";
const PREVIOUS: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T120000Z.json.gz";
const LOG: &str =
    "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1205Z_a.json.gz";
const LOG2: &str =
    "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1210Z_b.json.gz";

fn key(name: &str) -> RsaPrivateKey {
    let pem = std::fs::read_to_string(format!(
        "{}/../tests/fixtures/integrity/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    RsaPrivateKey::from_pkcs1_pem(&pem).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn digest_json(previous_signature: Option<&str>, files: &[(&str, &str)]) -> String {
    let files: Vec<String> = files
        .iter()
        .map(|(k, h)| {
            format!(
                r#"{{"s3Bucket":"{BUCKET}","s3Object":"{k}","hashValue":"{h}","hashAlgorithm":"SHA-256","newestEventTime":"2024-03-01T12:04:00Z","oldestEventTime":"2024-03-01T12:01:00Z"}}"#
            )
        })
        .collect();
    let previous = match previous_signature {
        Some(sig) => format!(
            r#""previousDigestS3Bucket":"{BUCKET}","previousDigestS3Object":"{PREVIOUS}","previousDigestHashValue":"{}","previousDigestHashAlgorithm":"SHA-256","previousDigestSignature":"{sig}","#,
            sha(b"the previous digest")
        ),
        None => r#""previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"#.into(),
    };
    format!(
        r#"{{"awsAccountId":"111122223333","digestStartTime":"2024-03-01T12:00:00Z","digestEndTime":"2024-03-01T13:00:00Z","digestS3Bucket":"{BUCKET}","digestS3Object":"{KEY}","digestPublicKeyFingerprint":"fp1","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,{previous}"logFiles":[{}]}}"#,
        files.join(",")
    )
}

fn sign(private: &RsaPrivateKey, digest: &Digest) -> String {
    let hashed = Sha256::digest(string_to_sign(digest).as_bytes());
    hex(&private.sign(Pkcs1v15Sign::new::<Sha256>(), &hashed).unwrap())
}

fn keys() -> Option<Vec<PublicKey>> {
    let public = key("cloudtrail-test-key.pem").to_public_key();
    Some(vec![PublicKey {
        fingerprint: "fp1".into(),
        der: public.to_pkcs1_der().unwrap().as_bytes().to_vec(),
    }])
}

/// A digest of two log files, signed, with its previous digest found intact.
fn intact() -> DigestCheck {
    let digest = read_digest(&gzip(
        digest_json(Some("abcd"), &[(LOG, &sha(b"log one")), (LOG2, &sha(b"log two"))]).as_bytes(),
    ))
    .unwrap();
    let signature = sign(&key("cloudtrail-test-key.pem"), &digest);
    DigestCheck {
        location: format!("{BUCKET}/{KEY}"),
        signature: Some(signature),
        signature_algorithm: Some("SHA256withRSA".into()),
        keys: keys(),
        previous: Previous::Found(PreviousDigest {
            location: format!("{BUCKET}/{PREVIOUS}"),
            sha256: sha(b"the previous digest"),
            signature: Some("abcd".into()),
        }),
        files: vec![
            (LOG.into(), FileState::Hashed(sha(b"log one"))),
            (LOG2.into(), FileState::Hashed(sha(b"log two"))),
        ],
        digest,
    }
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.problems.iter().map(|p| p.code).collect()
}

#[test]
fn the_string_to_sign_is_cloudtrails() {
    // The example of aws-cli's own unit test: end time, bucket/key, the content's SHA-256,
    // and `null` for the first digest of a chain.
    let mut d = intact().digest;
    d.end_time = "a".into();
    d.bucket = "b".into();
    d.key = "c".into();
    d.sha256 = sha(b"abc");
    d.previous_signature = None;
    assert_eq!(
        string_to_sign(&d),
        "a\nb/c\nba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nnull"
    );
}

#[test]
fn a_digest_reads_with_the_hash_of_its_content() {
    let text = digest_json(None, &[(LOG, "ABCDEF")]);
    let d = read_digest(&gzip(text.as_bytes())).unwrap();
    assert_eq!(d.sha256, sha(text.as_bytes()));
    assert_eq!(d.account_id, "111122223333");
    assert_eq!(d.end_time_ms, 1_709_298_000_000);
    assert_eq!(d.previous_key, None);
    assert_eq!(d.previous_signature, None);
    assert_eq!(d.files.len(), 1);
    assert_eq!(d.files[0].sha256, "abcdef", "hashes compare in lowercase");
    // Plain JSON too.
    assert_eq!(read_digest(text.as_bytes()).unwrap().sha256, d.sha256);
}

#[test]
fn a_digest_without_a_needed_field_names_it() {
    let text = digest_json(None, &[]).replace(r#""digestPublicKeyFingerprint":"fp1","#, "");
    match read_digest(text.as_bytes()) {
        Err(FileError::NotCloudtrail(m)) => assert!(m.contains("digestPublicKeyFingerprint"), "{m}"),
        other => panic!("{other:?}"),
    }
    let text = digest_json(None, &[(LOG, "ab")]).replace(r#""hashValue":"ab","#, "");
    match read_digest(text.as_bytes()) {
        Err(FileError::NotCloudtrail(m)) => assert!(m.contains("logFiles[0].hashValue"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(read_digest(b"{\"digest"), Err(FileError::NotJson(_))));
    let mut cut = gzip(digest_json(None, &[]).as_bytes());
    cut.truncate(cut.len() / 2);
    assert!(matches!(read_digest(&cut), Err(FileError::Truncated(_))));
}

#[test]
fn an_intact_digest_has_no_problems() {
    let v = judge(&intact());
    assert_eq!(codes(&v), Vec::<&str>::new(), "{v:#?}");
    assert!(v.signature_valid);
    assert_eq!(v.files_valid, 2);
}

#[test]
fn a_key_in_subject_public_key_info_form_verifies_too() {
    let mut check = intact();
    let public = key("cloudtrail-test-key.pem").to_public_key();
    check.keys.as_mut().unwrap()[0].der = public.to_public_key_der().unwrap().as_bytes().to_vec();
    assert!(judge(&check).signature_valid);
}

#[test]
fn a_changed_digest_fails_its_signature() {
    // The digest's content is changed after signing: a log file's hash replaced so that a
    // modified log file would pass.
    let mut check = intact();
    let text = digest_json(Some("abcd"), &[(LOG, &sha(b"forged")), (LOG2, &sha(b"log two"))]);
    check.digest = read_digest(text.as_bytes()).unwrap();
    check.files[0].1 = FileState::Hashed(sha(b"forged"));
    let v = judge(&check);
    assert_eq!(codes(&v), ["digest-signature-invalid"]);
    assert!(!v.signature_valid);
}

#[test]
fn a_digest_signed_by_another_key_fails() {
    let mut check = intact();
    check.signature = Some(sign(&key("foreign-test-key.pem"), &check.digest));
    assert_eq!(codes(&judge(&check)), ["digest-signature-invalid"]);
}

#[test]
fn an_unknown_fingerprint_unsigned_or_non_hex_signature_is_named() {
    let mut check = intact();
    check.keys.as_mut().unwrap()[0].fingerprint = "other".into();
    let v = judge(&check);
    assert_eq!(codes(&v), ["digest-public-key-unknown"]);
    assert!(v.problems[0].message.contains("fp1"), "{}", v.problems[0].message);

    let mut check = intact();
    check.signature = None;
    assert_eq!(codes(&judge(&check)), ["digest-unsigned"]);
    check.signature = Some("not hex".into());
    assert_eq!(codes(&judge(&check)), ["digest-unsigned"]);
    let mut check = intact();
    check.signature_algorithm = Some("SHA1withRSA".into());
    assert_eq!(codes(&judge(&check)), ["digest-signature-algorithm-unknown"]);
}

#[test]
fn without_keys_the_signature_is_not_checked_and_the_rest_is() {
    let mut check = intact();
    check.keys = None;
    check.files[1].1 = FileState::Hashed(sha(b"changed"));
    let v = judge(&check);
    assert_eq!(codes(&v), ["digest-signature-not-checked", "log-file-modified"]);
    assert!(!v.signature_valid);
}

#[test]
fn a_digest_found_elsewhere_is_moved() {
    let mut check = intact();
    check.location = format!("other-bucket/{KEY}");
    assert_eq!(codes(&judge(&check)), ["digest-moved"]);
}

#[test]
fn each_log_file_state_is_judged() {
    let mut check = intact();
    check.files = vec![
        (LOG.into(), FileState::Hashed(sha(b"log one, changed"))),
        (LOG2.into(), FileState::Missing),
    ];
    let v = judge(&check);
    assert_eq!(codes(&v), ["log-file-modified", "log-file-missing"]);
    assert_eq!(v.problems[0].location, format!("{BUCKET}/{LOG}"));
    assert!(v.problems[0].message.contains(&sha(b"log one")));
    assert_eq!(v.files_valid, 0);
    check.files = vec![(LOG.into(), FileState::Unreadable("corrupt gzip".into()))];
    let v = judge(&check);
    assert_eq!(codes(&v), ["log-file-unreadable", "log-file-not-checked"]);
    assert!(v.problems[0].message.contains("corrupt gzip"));
}

#[test]
fn the_chain_to_the_previous_digest_is_checked() {
    let mut check = intact();
    check.previous = Previous::Missing;
    let v = judge(&check);
    assert_eq!(codes(&v), ["digest-missing"]);
    assert_eq!(v.problems[0].location, format!("{BUCKET}/{PREVIOUS}"));

    let mut check = intact();
    if let Previous::Found(p) = &mut check.previous {
        p.sha256 = sha(b"a replaced previous digest");
    }
    let v = judge(&check);
    assert_eq!(codes(&v), ["digest-chain-broken"]);
    assert!(v.problems[0].message.contains("SHA-256"), "{}", v.problems[0].message);

    let mut check = intact();
    if let Previous::Found(p) = &mut check.previous {
        p.signature = Some("ef01".into());
    }
    assert_eq!(codes(&judge(&check)), ["digest-chain-broken"]);

    // The first digest of a chain names none; not looking is not a problem.
    let mut check = intact();
    check.previous = Previous::NotChecked;
    assert!(judge(&check).problems.is_empty());
}

fn span(location: &str, start_h: i64, end_h: i64) -> Span {
    let base = 1_709_251_200_000; // 2024-03-01T00:00:00Z
    Span {
        location: location.into(),
        start_ms: base + start_h * 3_600_000,
        end_ms: base + end_h * 3_600_000,
        previous: None,
    }
}

#[test]
fn hours_without_a_digest_are_gaps() {
    let base = 1_709_251_200_000;
    let mut c = Coverage {
        digests: vec![span("b/d1", 0, 1), span("b/d2", 1, 2), span("b/d4", 3, 4)],
        from_ms: base,
        until_ms: base + 4 * 3_600_000,
        logging: Some(true),
        ..Coverage::default()
    };
    let p = judge_coverage(&c);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].code, "digest-gap");
    assert_eq!(p[0].severity, Severity::Error);
    assert!(p[0].message.contains("2024-03-01T02:00:00"), "{}", p[0].message);
    // A missing last digest is a gap at the end.
    c.until_ms = base + 6 * 3_600_000;
    assert_eq!(judge_coverage(&c).len(), 2);
    // Not known whether logging was on: a warning; logging off: nothing.
    c.logging = None;
    assert!(judge_coverage(&c).iter().all(|p| p.severity == Severity::Warning));
    c.logging = Some(false);
    assert!(judge_coverage(&c).is_empty());
}

#[test]
fn a_log_file_no_digest_lists_is_extra() {
    let base = 1_709_251_200_000;
    let c = Coverage {
        digests: vec![span("b/d1", 0, 1), span("b/d2", 1, 2), span("b/d3", 2, 3)],
        log_files: vec![
            ("b/listed".into(), base + 600_000),
            ("b/extra".into(), base + 1_200_000),
            // Too close to the last digest's end to know yet: it may be delivered late, and
            // listed by a digest still to come.
            ("b/late".into(), base + 3_600_000 + 60_000),
            // Before the range.
            ("b/before".into(), base - 600_000),
        ],
        listed: vec!["b/listed".into()],
        from_ms: base,
        until_ms: base + 3 * 3_600_000,
        logging: Some(true),
    };
    let p = judge_coverage(&c);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(
        (p[0].code, p[0].location.as_str()),
        ("log-file-not-in-digest", "b/extra")
    );
}

#[test]
fn a_hashed_file_hands_over_every_decompressed_byte() {
    use crate::model::OpenOptions;
    use crate::reader::LogFile;
    let text = br#"{"Records":[{"eventVersion":"1.08","eventTime":"2024-03-01T12:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"e1"}]}  "#;
    let options = OpenOptions {
        max_decompressed_bytes: 1 << 20,
        max_record_bytes: 1 << 20,
        max_depth: 64,
    };
    let mut file = LogFile::open_with(Box::new(std::io::Cursor::new(gzip(text))), "k", options, true).unwrap();
    let mut got = file.take_inflated();
    while !file.next_batch(10).unwrap().is_empty() {
        got.extend(file.take_inflated());
    }
    got.extend(file.inflate_rest(1 << 16).unwrap());
    assert_eq!(got, text.to_vec());
    // A file whose JSON breaks still hands over its rest, for its hash.
    let broken = b"{\"Records\":[{\"eventID\":\"e1\"} x and more bytes after the break";
    let mut file = LogFile::open_with(Box::new(std::io::Cursor::new(gzip(broken))), "k", options, true).unwrap();
    let mut got = file.take_inflated();
    while let Ok(batch) = file.next_batch(10) {
        got.extend(file.take_inflated());
        if batch.is_empty() {
            break;
        }
    }
    loop {
        let more = file.inflate_rest(7).unwrap();
        if more.is_empty() {
            break;
        }
        got.extend(more);
    }
    assert_eq!(got, broken.to_vec());
    // Not hashed: nothing kept.
    let mut file = LogFile::open_with(Box::new(std::io::Cursor::new(gzip(text))), "k", options, false).unwrap();
    assert!(file.take_inflated().is_empty());
}

#[test]
fn a_deleted_digest_is_reported_once_by_the_chain_not_again_as_a_gap() {
    let base = 1_709_251_200_000;
    let mut d3 = span("b/d3", 2, 3);
    d3.previous = Some("b/d2".into());
    let c = Coverage {
        digests: vec![span("b/d1", 0, 1), d3],
        // A file of the deleted digest's hour is not "extra": its digest is gone.
        log_files: vec![("b/in-deleted-hour".into(), base + 3_600_000 + 600_000)],
        from_ms: base,
        until_ms: base + 3 * 3_600_000,
        logging: Some(true),
        ..Coverage::default()
    };
    assert_eq!(judge_coverage(&c), Vec::new());
}

#[test]
fn codes_are_unique_and_described() {
    let mut seen = std::collections::BTreeSet::new();
    for (code, _, meaning) in CODES {
        assert!(seen.insert(code), "{code} twice");
        assert!(!meaning.is_empty());
        assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{code}");
    }
}

#[test]
fn the_readme_lists_every_integrity_code_as_the_plugin_has_it() {
    crate::readme::assert_block("integrity-codes", &super::codes_table());
}

#[test]
fn a_hashed_file_read_in_steps_never_holds_more_than_a_step_of_text() {
    use crate::model::OpenOptions;
    use crate::reader::LogFile;
    use crate::select::Keep;
    let record = |id: &str, name: &str, read_only: bool| {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T12:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"{name}","readOnly":{read_only},"eventID":"{id}","padding":"{}"}}"#,
            "x".repeat(900)
        )
    };
    // A write, 40 000 reads (~40 MB) write-only mode leaves out, another write.
    let mut records = vec![record("w1", "RunInstances", false)];
    records.extend((0..40_000).map(|i| record(&format!("r{i}"), "DescribeInstances", true)));
    records.push(record("w2", "TerminateInstances", false));
    let text = format!(r#"{{"Records":[{}]}}"#, records.join(","));
    let options = OpenOptions {
        max_decompressed_bytes: 1 << 30,
        max_record_bytes: 1 << 20,
        max_depth: 64,
    };
    let mut file = LogFile::open_with(
        Box::new(std::io::Cursor::new(gzip(text.as_bytes()))),
        "k",
        options,
        true,
    )
    .unwrap();
    file.select(Keep::WriteOnly);
    let (mut got, mut ids, mut steps, mut empty, mut largest) = (file.take_inflated(), Vec::new(), 0, 0, 0);
    loop {
        let (events, ended) = file.next_batch_step(128).unwrap();
        let inflated = file.take_inflated();
        largest = largest.max(inflated.len());
        got.extend(inflated);
        steps += 1;
        empty += usize::from(events.is_empty() && !ended);
        ids.extend(
            events
                .iter()
                .map(|e| e.event_id.clone().unwrap_or_default().into_owned()),
        );
        if ended {
            break;
        }
    }
    got.extend(file.inflate_rest(1 << 16).unwrap());
    assert_eq!(ids, ["w1", "w2"]);
    assert_eq!(got, text.as_bytes(), "the steps handed over every byte, in order");
    // ~40 MB in steps of about 8 MiB: several steps with no event, none much over the budget.
    assert!(empty >= 3, "{steps} steps, {empty} without an event");
    assert!(largest < (8 << 20) + (2 << 20), "a step handed over {largest} bytes");
    // The same file read as batches holds the whole run of reads before the second write.
    let mut file = LogFile::open_with(
        Box::new(std::io::Cursor::new(gzip(text.as_bytes()))),
        "k",
        options,
        true,
    )
    .unwrap();
    file.select(Keep::WriteOnly);
    file.take_inflated();
    let mut largest = 0;
    while !file.next_batch(128).unwrap().is_empty() {
        largest = largest.max(file.take_inflated().len());
    }
    assert!(largest > 30 << 20, "batches held at most {largest} bytes");
}
