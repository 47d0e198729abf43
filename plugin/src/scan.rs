//! Splitting a stream of decompressed JSON into values without holding the whole stream.
//!
//! A `Window` reads from the decompressor into a buffer that holds at most the value being
//! scanned plus one read chunk. `scan_value` finds where one JSON value ends by tracking strings
//! and bracket depth only; full validation is left to the typed parse of the value's bytes. A value
//! longer than its size limit is skipped without being kept, so memory stays bounded whatever the
//! input holds (a 200 MB string, 100 000 levels of nesting, a gzip bomb).

use std::io::{self, Read};

/// Bracket kinds remembered per value (deeper nesting is counted, not checked).
const KINDS_TRACKED: usize = 1024;

/// Bytes read from the decompressor at a time.
const CHUNK: usize = 64 * 1024;

/// Why the stream could not be scanned further.
#[derive(Debug)]
pub enum ScanError {
    /// The decompressor failed (corrupt or truncated gzip).
    Io(io::Error),
    /// More than the limit was decompressed.
    TooLarge(u64),
    /// The data ended inside a value or before the document's end.
    Eof { at: u64 },
    /// A byte that cannot stand where it stands.
    Syntax { at: u64, found: u8, expected: &'static str },
}

/// Where a scanned value is.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned {
    /// The value's bytes are `window.kept()`, valid until the next call.
    Kept { too_deep: bool },
    /// The value was larger than its limit and was dropped; `len` is its size in bytes.
    Skipped { len: u64 },
}

/// A sliding buffer over a byte stream.
pub struct Window<R> {
    src: R,
    buf: Vec<u8>,
    /// Start of the bytes that must be kept (the value being scanned).
    mark: usize,
    /// Next unread byte.
    pos: usize,
    /// End of the valid bytes.
    end: usize,
    /// Absolute stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// Decompressed bytes read so far, and the limit on them.
    total: u64,
    limit: u64,
}

impl<R: Read> Window<R> {
    /// A window over `src` that refuses to read more than `limit` bytes.
    pub fn new(src: R, limit: u64) -> Self {
        Window {
            src,
            buf: Vec::new(),
            mark: 0,
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
            total: 0,
            limit,
        }
    }

    /// Absolute offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The bytes of the last value `scan_value` kept.
    pub fn kept(&self) -> &[u8] {
        &self.buf[self.mark..self.pos]
    }

    /// Reads more bytes, keeping `buf[mark..end]`. Returns false at the end of the stream. The
    /// buffer grows only as far as `max_held` bytes of kept data plus one chunk need.
    fn fill(&mut self, max_held: usize) -> Result<bool, ScanError> {
        if self.eof {
            return Ok(false);
        }
        if self.mark > 0 {
            self.buf.copy_within(self.mark..self.end, 0);
            self.base += self.mark as u64;
            self.pos -= self.mark;
            self.end -= self.mark;
            self.mark = 0;
        }
        if self.buf.len() - self.end < CHUNK {
            let ceiling = max_held.saturating_add(2 * CHUNK);
            let want = (self.end + CHUNK)
                .max(self.buf.len().saturating_mul(2))
                .min(ceiling)
                .max(self.end + CHUNK);
            self.buf.resize(want, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    self.total += n as u64;
                    if self.total > self.limit {
                        return Err(ScanError::TooLarge(self.limit));
                    }
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ScanError::Io(e)),
            }
        }
    }

    /// Skips whitespace (and a byte-order mark at the start) and returns the next byte without
    /// consuming it; `None` at the end of the stream.
    pub fn peek(&mut self) -> Result<Option<u8>, ScanError> {
        loop {
            while self.pos < self.end {
                match self.buf[self.pos] {
                    b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                    0xEF if self.offset() == 0 => {
                        // A UTF-8 byte-order mark: three bytes, only at the very start.
                        if self.end - self.pos < 3 {
                            break;
                        }
                        if self.buf[self.pos..self.pos + 3] == [0xEF, 0xBB, 0xBF] {
                            self.pos += 3;
                        } else {
                            return Ok(Some(0xEF));
                        }
                    }
                    b => return Ok(Some(b)),
                }
            }
            self.mark = self.pos;
            if !self.fill(0)? {
                return Ok(if self.pos < self.end {
                    Some(self.buf[self.pos])
                } else {
                    None
                });
            }
        }
    }

    /// Consumes the next non-whitespace byte, which must be one of `allowed`.
    pub fn expect(&mut self, allowed: &[u8], expected: &'static str) -> Result<u8, ScanError> {
        match self.peek()? {
            Some(b) if allowed.contains(&b) => {
                self.pos += 1;
                Ok(b)
            }
            Some(found) => Err(ScanError::Syntax {
                at: self.offset(),
                found,
                expected,
            }),
            None => Err(ScanError::Eof { at: self.offset() }),
        }
    }

    /// Scans one JSON value starting at the next non-whitespace byte. A value longer than
    /// `max_bytes` is skipped; one nested deeper than `max_depth` is kept but marked.
    pub fn scan_value(&mut self, max_bytes: usize, max_depth: u32) -> Result<Scanned, ScanError> {
        let first = match self.peek()? {
            Some(b) => b,
            None => return Err(ScanError::Eof { at: self.offset() }),
        };
        self.mark = self.pos;
        let mut dropped: u64 = 0;
        let mut skipping = false;
        let mut depth: u32 = 0;
        let mut deepest: u32 = 0;
        // The kinds of the open brackets, up to `KINDS_TRACKED` deep: a closer of the wrong kind
        // ends the value there, so that one broken record cannot swallow the ones after it.
        let mut kinds: Vec<u8> = Vec::new();
        let mut in_string = false;
        let mut escaped = false;
        let scalar = !matches!(first, b'{' | b'[' | b'"');
        loop {
            if self.pos == self.end {
                let held = (self.pos - self.mark) as u64;
                if !skipping && held > max_bytes as u64 {
                    skipping = true;
                }
                if skipping {
                    dropped += held;
                    self.mark = self.pos;
                }
                if !self.fill(max_bytes)? {
                    if scalar && self.pos > self.mark {
                        break;
                    }
                    return Err(ScanError::Eof { at: self.offset() });
                }
            }
            // Scan the bytes at hand in a tight loop; state carries over a refill.
            let bytes = &self.buf[self.pos..self.end];
            let mut i = 0;
            let mut done = false;
            while i < bytes.len() {
                if in_string {
                    if escaped {
                        escaped = false;
                        i += 1;
                        continue;
                    }
                    match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                        None => i = bytes.len(),
                        Some(j) => {
                            i += j + 1;
                            if bytes[i - 1] == b'\\' {
                                escaped = true;
                            } else {
                                in_string = false;
                                if depth == 0 {
                                    done = true;
                                    break;
                                }
                            }
                        }
                    }
                    continue;
                }
                let b = bytes[i];
                if scalar {
                    if matches!(
                        b,
                        b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'{' | b'[' | b':'
                    ) {
                        done = true;
                        break;
                    }
                    i += 1;
                    continue;
                }
                i += 1;
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => {
                        depth += 1;
                        deepest = deepest.max(depth);
                        if kinds.len() < KINDS_TRACKED {
                            kinds.push(b);
                        }
                    }
                    b'}' | b']' => {
                        let tracked = depth as usize <= kinds.len();
                        let opener = if tracked { kinds.pop() } else { None };
                        depth = depth.saturating_sub(1);
                        let mismatched = opener.is_some_and(|o| (o == b'{') != (b == b'}'));
                        if depth == 0 || mismatched {
                            done = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            self.pos += i;
            if done {
                break;
            }
        }
        let len = dropped + (self.pos - self.mark) as u64;
        if skipping || len > max_bytes as u64 {
            self.mark = self.pos;
            return Ok(Scanned::Skipped { len });
        }
        Ok(Scanned::Kept {
            too_deep: deepest > max_depth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(text: &str) -> Window<&[u8]> {
        Window::new(text.as_bytes(), u64::MAX)
    }

    #[test]
    fn values_are_split_at_their_ends() {
        let mut w = window(r#" {"a":"x}\"y","b":[1,{"c":2}]} , "s\\" 12.5e3]"#);
        assert_eq!(w.scan_value(1000, 10).unwrap(), Scanned::Kept { too_deep: false });
        assert_eq!(w.kept(), br#"{"a":"x}\"y","b":[1,{"c":2}]}"#);
        assert_eq!(w.expect(b",", "','").unwrap(), b',');
        w.scan_value(1000, 10).unwrap();
        assert_eq!(w.kept(), br#""s\\""#);
        w.scan_value(1000, 10).unwrap();
        assert_eq!(w.kept(), b"12.5e3");
        assert_eq!(w.peek().unwrap(), Some(b']'));
    }

    #[test]
    fn a_value_over_the_limit_is_skipped_not_kept() {
        let big = format!("[\"{}\"] 7", "x".repeat(1_000_000));
        let mut w = window(&big);
        assert_eq!(w.scan_value(1000, 10).unwrap(), Scanned::Skipped { len: 1_000_004 });
        assert!(w.buf.len() < 300_000, "buffer grew to {}", w.buf.len());
        w.scan_value(1000, 10).unwrap();
        assert_eq!(w.kept(), b"7");
    }

    #[test]
    fn deep_nesting_is_marked_without_recursion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let mut w = window(&deep);
        assert_eq!(w.scan_value(1 << 20, 64).unwrap(), Scanned::Kept { too_deep: true });
    }

    #[test]
    fn a_closer_of_the_wrong_kind_ends_the_value() {
        let mut w = window(r#"{"a":[1}, {"b":2}"#);
        assert_eq!(w.scan_value(1000, 10).unwrap(), Scanned::Kept { too_deep: false });
        assert_eq!(w.kept(), br#"{"a":[1}"#);
        assert_eq!(w.expect(b",", "','").unwrap(), b',');
        w.scan_value(1000, 10).unwrap();
        assert_eq!(w.kept(), br#"{"b":2}"#);
    }

    #[test]
    fn a_cut_off_value_is_eof() {
        let mut w = window(r#"{"a":"b"#);
        assert!(matches!(w.scan_value(1000, 10), Err(ScanError::Eof { .. })));
    }

    #[test]
    fn reading_past_the_limit_stops() {
        let text = " ".repeat(200_000);
        let mut w = Window::new(text.as_bytes(), 100_000);
        assert!(matches!(w.peek(), Err(ScanError::TooLarge(100_000))));
    }
}
