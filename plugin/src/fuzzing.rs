//! Entry points for coverage-guided fuzzing (`fuzz/`, README "Fuzzing") and for the corpus
//! replay the tests run: each takes any bytes and must neither panic nor hang. Not part of the
//! plugin's API.

use crate::model::OpenOptions;
use crate::reader::LogFile;
use crate::select::Keep;

/// Limits small enough that a fuzzer's input cannot make one run slow.
const OPTIONS: OpenOptions = OpenOptions {
    max_decompressed_bytes: 8 << 20,
    max_record_bytes: 1 << 20,
    max_depth: 64,
};

/// The reader over untrusted stored bytes (gzip or plain), both ways the host reads a file:
/// typed events, and rendered documents in write-only mode hashed; then the rest of the
/// decompressed stream, as the integrity hash takes it.
pub fn reader(data: &[u8]) {
    if let Ok(mut file) = LogFile::open(data.to_vec(), "fuzz.json.gz", OPTIONS) {
        while let Ok(batch) = file.next_batch(64) {
            if batch.is_empty() {
                break;
            }
        }
    }
    if let Some(mut file) = hashed_write_only(data) {
        let mut batch = crate::documents::Batch::default();
        loop {
            batch.text.clear();
            batch.events.clear();
            match file.next_documents(64, &mut batch) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    file.take_inflated();
                }
            }
        }
        while matches!(file.inflate_rest(1 << 16), Ok(rest) if !rest.is_empty()) {}
    }
    // Rendered whole with observations for scoring, as `run` reads a file it scores: what the
    // reader encoded must decode, one observation per document.
    if let Ok(mut file) = LogFile::open(data.to_vec(), "fuzz.json.gz", OPTIONS) {
        let mut batch = crate::documents::Batch {
            observed: Some(crate::documents::Observed::default()),
            ..Default::default()
        };
        while let Ok(n @ 1..) = file.next_documents(64, &mut batch) {
            let observed = batch.observed.as_ref().expect("observed batch");
            assert_eq!(observed.ends.len(), n, "one observation per document");
            let decoded = crate::scoring::observed::decode_all(&observed.bytes, &observed.ends, &[], &vec![0; n])
                .expect("the reader's own observations decode");
            for (o, summary) in decoded.iter().zip(&batch.events) {
                assert_eq!(
                    o.event_time_ms, summary.event_time_ms,
                    "an observation's time is its document's"
                );
                assert_eq!(o.outcome, summary.outcome, "an observation's outcome is its document's");
                assert_eq!(
                    o.read_only, summary.read_only,
                    "an observation's read-only flag is its document's"
                );
            }
        }
    }
    // And hashed in steps, typed, as the host reads through the `hashing` interface.
    if let Some(mut file) = hashed_write_only(data) {
        while let Ok((_, false)) = file.next_batch_step(64) {
            file.take_inflated();
        }
        while matches!(file.inflate_rest(1 << 16), Ok(rest) if !rest.is_empty()) {}
    }
}

/// `data` opened hashed, keeping what write-only mode keeps.
fn hashed_write_only(data: &[u8]) -> Option<LogFile> {
    let mut file = LogFile::open_with(
        Box::new(std::io::Cursor::new(data.to_vec())),
        "fuzz.json.gz",
        OPTIONS,
        true,
    )
    .ok()?;
    file.select(Keep::WriteOnly);
    Some(file)
}

/// The digest reader over untrusted stored bytes.
pub fn digest(data: &[u8]) {
    if let Ok(d) = crate::integrity::read_digest(data) {
        // And its verdict with nothing found: every listed file not checked.
        crate::integrity::judge(&crate::integrity::DigestCheck {
            location: format!("{}/{}", d.bucket, d.key),
            signature: Some("00".into()),
            signature_algorithm: None,
            keys: Some(Vec::new()),
            previous: crate::integrity::Previous::Missing,
            files: Vec::new(),
            digest: d,
        });
    }
}

/// The fuzzer's bytes read as choices: each call takes the next byte (0 once they run out), so
/// every input is a valid sequence of choices and a small change of it a small change of the
/// result.
struct Choices<'a> {
    data: &'a [u8],
    at: usize,
}

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    fn more(&self) -> bool {
        self.at < self.data.len()
    }

    /// Up to `max` of the input's own bytes, as text (lossy UTF-8).
    fn raw(&mut self, max: usize) -> String {
        let n = self.below(max + 1).min(self.data.len().saturating_sub(self.at));
        let start = self.at.min(self.data.len());
        self.at += n;
        String::from_utf8_lossy(&self.data[start..start + n]).into_owned()
    }
}

/// Members a CloudTrail record has, top level and inside `userIdentity`, `sessionContext` and
/// `resources`, and a few that are not.
const KEYS: [&str; 40] = [
    "eventVersion",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "userIdentity",
    "requestParameters",
    "responseElements",
    "errorCode",
    "errorMessage",
    "readOnly",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "resources",
    "eventID",
    "requestID",
    "eventCategory",
    "tlsDetails",
    "sharedEventID",
    "vpcEndpointId",
    "additionalEventData",
    "serviceEventDetails",
    "insightDetails",
    "apiVersion",
    "type",
    "arn",
    "accountId",
    "accessKeyId",
    "principalId",
    "userName",
    "sessionContext",
    "sessionIssuer",
    "attributes",
    "mfaAuthenticated",
    "creationDate",
    "invokedBy",
    "ARN",
];

/// Text values of the shapes records hold, the odd ones included (escapes, lone surrogates,
/// control characters, times that are not).
const STRINGS: [&str; 24] = [
    "",
    "2024-03-01T10:00:00Z",
    "2024-02-30T25:61:00Z",
    "2024-03-01T10:00:00.123456+02:00",
    "s3.amazonaws.com",
    "iam.amazonaws.com",
    "ConsoleLogin",
    "AssumeRole",
    "GetObject",
    "DeleteTrail",
    "AccessDenied",
    "Client.UnauthorizedOperation",
    "203.0.113.7",
    "arn:aws:iam::111122223333:user/a",
    "AKIAIOSFODNN7EXAMPLE",
    "AwsApiCall",
    "AwsConsoleSignIn",
    "true",
    "\\u00e9\\u0000",
    "\\ud800",
    "\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t",
    "é ü 漢",
    "Root",
    "AssumedRole",
];

const NUMBERS: [&str; 8] = ["0", "-1", "1.5", "1e400", "-0.0", "18446744073709551616", "1E-7", "08"];

/// A JSON value (most of the time valid JSON) at nesting `depth`.
fn value(c: &mut Choices, depth: usize, out: &mut String) {
    match c.below(if depth > 6 { 5 } else { 8 }) {
        0 | 1 => {
            out.push('"');
            out.push_str(c.pick(&STRINGS));
            out.push('"');
        }
        2 => out.push_str(c.pick(&NUMBERS)),
        3 => out.push_str(c.pick(&["true", "false", "null"])),
        // The input's own bytes: as a string, escaped, or dropped in as they are.
        4 => {
            let text = c.raw(24);
            if c.byte() & 1 == 0 {
                out.push_str(&serde_json::Value::String(text).to_string());
            } else {
                out.push_str(&text);
            }
        }
        5 | 6 => object(c, depth + 1, out),
        _ => {
            out.push('[');
            for i in 0..c.below(4) {
                if i > 0 {
                    out.push(',');
                }
                value(c, depth + 1, out);
            }
            out.push(']');
        }
    }
}

/// An object of CloudTrail's members (a member may repeat, as JSON allows).
fn object(c: &mut Choices, depth: usize, out: &mut String) {
    out.push('{');
    for i in 0..c.below(10) {
        if i > 0 {
            out.push_str(c.pick(&[",", ", ", ",\n  "]));
        }
        out.push('"');
        out.push_str(c.pick(&KEYS));
        out.push_str("\":");
        value(c, depth, out);
    }
    out.push('}');
}

/// What serde_json reads at the start of `text`: the record and its length.
fn serde_record(text: &str) -> Option<(crate::record::Record<'_>, usize)> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<crate::record::Record>();
    match stream.next() {
        Some(Ok(record)) => Some((record, stream.byte_offset())),
        _ => None,
    }
}

/// Structure-aware and differential: the input chooses CloudTrail-like records (their members,
/// odd values and the input's own bytes among them), then
/// - each record the fast one-pass reader accepts must read exactly as serde_json reads it;
/// - the file of those records (gzip or not) must give the same events typed, rendered, and
///   rendered in hashed steps (the `hashing` interface), and every rendered document must be a
///   JSON object.
///
/// Panics when either does not hold: a finding. Returns how many records the fast reader read
/// and how many events the file gave.
pub fn records(data: &[u8]) -> (usize, usize) {
    let mut c = Choices { data, at: 0 };
    let gzip = c.byte() & 1 == 1;
    let mut records = Vec::new();
    while c.more() && records.len() < 16 {
        let mut record = String::new();
        object(&mut c, 0, &mut record);
        records.push(record);
    }
    let mut fast = 0;
    for record in &records {
        if let crate::fast::Fast::Read(read, len) = crate::fast::read(record, OPTIONS.max_depth) {
            fast += 1;
            let Some((expected, expected_len)) = serde_record(record) else {
                panic!("the fast reader accepted what serde_json refuses: {record}");
            };
            assert_eq!(len, expected_len, "the fast reader's length differs for {record}");
            assert_eq!(read, expected, "the fast reader's record differs for {record}");
        }
    }
    let text = format!("{{\"Records\":[{}]}}", records.join(","));
    let bytes = if gzip {
        use std::io::Write as _;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing to memory cannot fail.
        z.write_all(text.as_bytes()).expect("gzip into memory");
        z.finish().expect("gzip into memory")
    } else {
        text.into_bytes()
    };
    let typed = LogFile::open(bytes.clone(), "fuzz.json.gz", OPTIONS).map(|mut file| {
        let mut events = 0;
        loop {
            match file.next_batch(5) {
                Ok(batch) if batch.is_empty() => return Ok(events),
                Ok(batch) => events += batch.len(),
                Err(e) => return Err((events, e.to_string())),
            }
        }
    });
    let bytes_again = bytes.clone();
    let rendered = LogFile::open(bytes, "fuzz.json.gz", OPTIONS).map(|mut file| {
        let (mut events, mut batch) = (0, crate::documents::Batch::default());
        loop {
            match file.next_documents(5, &mut batch) {
                Ok(0) => return Ok(events),
                Ok(n) => {
                    for line in batch.text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        // JSON's syntax, not what an f64 holds: `raw` keeps a record's numbers as
                        // given (`1e400` is valid JSON, beyond serde_json's `Value`).
                        let object = line.first() == Some(&b'{')
                            && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok();
                        assert!(
                            object,
                            "a rendered document is not a JSON object: {}",
                            String::from_utf8_lossy(line)
                        );
                    }
                    events += n;
                }
                Err(e) => return Err((events, e.to_string())),
            }
        }
    });
    let stepped = LogFile::open_with(
        Box::new(std::io::Cursor::new(bytes_again)),
        "fuzz.json.gz",
        OPTIONS,
        true,
    )
    .map(|mut file| {
        let (mut events, mut batch) = (0, crate::documents::Batch::default());
        loop {
            match file.next_documents_step(5, &mut batch) {
                Ok((n, ended)) => {
                    events += n;
                    file.take_inflated();
                    if ended {
                        return Ok(events);
                    }
                }
                Err(e) => return Err((events, e.to_string())),
            }
        }
    });
    if let (Ok(r), Ok(s)) = (&rendered, &stepped) {
        assert_eq!(r, s, "rendered batches and hashed steps give different events");
    }
    let events = match (typed, rendered) {
        (Ok(t), Ok(r)) => {
            assert_eq!(t, r, "typed and rendered reads differ");
            t.unwrap_or_else(|(n, _)| n)
        }
        (Err(t), Err(r)) => {
            assert_eq!(t.to_string(), r.to_string(), "the file was refused differently");
            0
        }
        (t, r) => panic!(
            "one read opened the file and the other did not: {:?} / {:?}",
            t.err().map(|e| e.to_string()),
            r.err().map(|e| e.to_string())
        ),
    };
    (fast, events)
}

/// Runs `f` over every seed and every input a fuzzer ever found a fault with
/// (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`): the tests' corpus replay, so that a
/// fault that comes back fails the build. Returns how many inputs it ran.
pub fn replay_corpus(target: &str, f: fn(&[u8])) -> usize {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(data) = std::fs::read(e.path()) {
                f(&data);
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reader_survives_its_corpus() {
        assert!(super::replay_corpus("reader", super::reader) > 10);
    }

    #[test]
    fn generated_records_read_the_same_every_way_over_their_corpus() {
        assert!(
            super::replay_corpus("records", |d| {
                super::records(d);
            }) > 0
        );
    }

    /// The generator reaches what it is for: records the fast reader reads (so that the
    /// comparison with serde_json runs) and files that give events.
    #[test]
    fn the_record_generator_makes_records_both_readers_read() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let (mut fast, mut events) = (0, 0);
        for round in 0..2_000 {
            let data: Vec<u8> = (0..64 + round % 512)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let (f, e) = super::records(&data);
            fast += f;
            events += e;
        }
        eprintln!("{fast} records read fast, {events} events");
        assert!(
            fast > 1_000 && events > 1_000,
            "{fast} records read fast, {events} events"
        );
    }

    #[test]
    fn the_digest_reader_survives_its_corpus() {
        assert!(super::replay_corpus("digest", super::digest) > 0);
    }
}
