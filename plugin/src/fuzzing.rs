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
    if let Ok(mut file) = LogFile::open_with(
        Box::new(std::io::Cursor::new(data.to_vec())),
        "fuzz.json.gz",
        OPTIONS,
        true,
    ) {
        file.select(Keep::WriteOnly);
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
    fn the_digest_reader_survives_its_corpus() {
        assert!(super::replay_corpus("digest", super::digest) > 0);
    }
}
