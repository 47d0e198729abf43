//! Splitting a stream of decompressed JSON into values without holding the whole stream.
//!
//! A `Window` reads from the decompressor into a buffer that holds at most the value being
//! scanned plus one read chunk. `scan_value` finds where one JSON value ends by tracking strings
//! and bracket depth only; full validation is left to the typed parse of the value's bytes. A value
//! longer than its size limit is skipped without being kept, so memory stays bounded whatever the
//! input holds (a 200 MB string, 100 000 levels of nesting, a gzip bomb). `text_ahead` shows the
//! buffered bytes as text for the reader's one-pass parse of ordinary records.

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
    /// The value's bytes are `window.kept()`, valid until the next call. `ascii` says that
    /// every byte is ASCII, so the bytes are UTF-8 without a further check.
    Kept { too_deep: bool, ascii: bool },
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
    /// The kinds of the open brackets of the value being scanned (kept to reuse its allocation).
    kinds: Vec<u8>,
    /// `buf[pos..text_end]` is known to be valid UTF-8.
    text_end: usize,
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
            kinds: Vec::new(),
            text_end: 0,
            total: 0,
            limit,
        }
    }

    /// The stream the window reads.
    pub fn source_mut(&mut self) -> &mut R {
        &mut self.src
    }

    /// Reads from the stream past everything buffered, into `buf`, counting the bytes against
    /// the limit: for a caller done with the window's values that wants the stream's rest.
    /// Returns 0 at the end of the stream.
    pub fn read_past(&mut self, buf: &mut [u8]) -> Result<usize, ScanError> {
        if self.eof {
            return Ok(0);
        }
        let mut filled = 0;
        while filled < buf.len() {
            match self.src.read(&mut buf[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    filled += n;
                    self.total += n as u64;
                    if self.total > self.limit {
                        return Err(ScanError::TooLarge(self.limit));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ScanError::Io(e)),
            }
        }
        Ok(filled)
    }

    /// Absolute offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The bytes of the last value `scan_value` kept.
    pub fn kept(&self) -> &[u8] {
        &self.buf[self.mark..self.pos]
    }

    /// The buffered text from the next unread byte up to the first byte that is not valid UTF-8
    /// (or the start of a character cut off at the end of the buffer), and whether that is all
    /// the bytes buffered. Each byte is checked once, however often this is called.
    pub fn text_ahead(&mut self) -> (&str, bool) {
        self.text_end = self.text_end.max(self.pos);
        self.text_end += text_prefix(&self.buf[self.text_end..self.end]);
        let bytes = &self.buf[self.pos..self.text_end];
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `text_prefix` found these bytes valid UTF-8: ASCII, or checked by `from_utf8`
        // (a prefix of valid UTF-8 that ends on a character boundary is valid UTF-8).
        let text = unsafe { std::str::from_utf8_unchecked(bytes) };
        (text, self.text_end == self.end)
    }

    /// Consumes `n` bytes that `text_ahead` showed.
    pub fn advance(&mut self, n: usize) {
        debug_assert!(self.pos + n <= self.text_end);
        self.pos += n;
    }

    /// Reads more bytes after those buffered, keeping the unread ones; false at the end of the
    /// stream. The buffer grows only as far as `max_held` bytes of unread data plus one chunk.
    pub fn read_more(&mut self, max_held: usize) -> Result<bool, ScanError> {
        self.mark = self.pos;
        self.fill(max_held)
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
            self.text_end = self.text_end.saturating_sub(self.mark);
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
        let mut kinds = std::mem::take(&mut self.kinds);
        kinds.clear();
        let mut in_string = false;
        let mut escaped = false;
        // Every byte of the value is OR-ed in here (some bytes after it may be too): no high bit
        // set means the value is ASCII.
        let mut seen: u64 = 0;
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
                match self.fill(max_bytes) {
                    Ok(true) => {}
                    Ok(false) if scalar && self.pos > self.mark => break,
                    Ok(false) => {
                        self.kinds = kinds;
                        return Err(ScanError::Eof { at: self.offset() });
                    }
                    Err(e) => {
                        self.kinds = kinds;
                        return Err(e);
                    }
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
                        seen |= u64::from(bytes[i]);
                        i += 1;
                        continue;
                    }
                    i = string_stop(bytes, i, &mut seen);
                    if i == bytes.len() {
                        break;
                    }
                    // `bytes[i]` is a quote or a backslash.
                    i += 1;
                    if bytes[i - 1] == b'\\' {
                        escaped = true;
                    } else {
                        in_string = false;
                        if depth == 0 {
                            done = true;
                            break;
                        }
                    }
                    continue;
                }
                let b = bytes[i];
                seen |= u64::from(b);
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
        self.kinds = kinds;
        let len = dropped + (self.pos - self.mark) as u64;
        if skipping || len > max_bytes as u64 {
            self.mark = self.pos;
            return Ok(Scanned::Skipped { len });
        }
        Ok(Scanned::Kept {
            too_deep: deepest > max_depth,
            ascii: seen & HIGH_BITS == 0,
        })
    }
}

/// How many bytes at the start of `bytes` are ASCII, eight at a time.
fn ascii_prefix(bytes: &[u8]) -> usize {
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let high = word & HIGH_BITS;
        if high != 0 {
            return i + (high.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + bytes[i..].iter().take_while(|b| b.is_ascii()).count()
}

/// How many bytes at the start of `bytes` are valid UTF-8, ending on a character boundary: the
/// ASCII run first (most logs are ASCII throughout), the standard check after it.
fn text_prefix(bytes: &[u8]) -> usize {
    let ascii = ascii_prefix(bytes);
    if ascii == bytes.len() {
        return ascii;
    }
    match std::str::from_utf8(&bytes[ascii..]) {
        Ok(_) => bytes.len(),
        Err(e) => ascii + e.valid_up_to(),
    }
}

/// Whether `bytes` holds at most `max` opening brackets, counting those inside strings too: when
/// it does, no value in it nests deeper than `max`. One pass with no branches per byte.
pub fn brackets_at_most(bytes: &[u8], max: u32) -> bool {
    // `[` (0x5B) and `{` (0x7B) differ only in bit 5; no other byte becomes 0x7B with it set.
    const BIT5: u64 = 0x2020_2020_2020_2020;
    let mut count: u64 = 0;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        // May count a byte after a bracket as one too: an overcount only sends a record to the
        // exact check.
        count += u64::from(bytes_equal(word | BIT5, b'{').count_ones());
    }
    count += words.remainder().iter().filter(|&&b| b | 0x20 == b'{').count() as u64;
    count <= u64::from(max)
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that equals `byte`, and possibly of bytes after such a
/// byte (a borrow carries up); the lowest set bit is always exact.
#[inline]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (LOW_BITS * u64::from(byte));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// The position of the first quote or backslash in `bytes[from..]` (or `bytes.len()`), eight
/// bytes at a time: strings are most of a record, and short, so this beats both a byte loop and
/// a call into `memchr` per string. Every byte looked at is OR-ed into `seen`.
#[inline]
fn string_stop(bytes: &[u8], mut i: usize, seen: &mut u64) -> usize {
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        *seen |= word;
        let hits = bytes_equal(word, b'"') | bytes_equal(word, b'\\');
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' {
            return i;
        }
        *seen |= u64::from(b);
        i += 1;
    }
    i
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
        assert_eq!(
            w.scan_value(1000, 10).unwrap(),
            Scanned::Kept {
                too_deep: false,
                ascii: true
            }
        );
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
        assert_eq!(
            w.scan_value(1 << 20, 64).unwrap(),
            Scanned::Kept {
                too_deep: true,
                ascii: true
            }
        );
    }

    #[test]
    fn a_closer_of_the_wrong_kind_ends_the_value() {
        let mut w = window(r#"{"a":[1}, {"b":2}"#);
        assert_eq!(
            w.scan_value(1000, 10).unwrap(),
            Scanned::Kept {
                too_deep: false,
                ascii: true
            }
        );
        assert_eq!(w.kept(), br#"{"a":[1}"#);
        assert_eq!(w.expect(b",", "','").unwrap(), b',');
        w.scan_value(1000, 10).unwrap();
        assert_eq!(w.kept(), br#"{"b":2}"#);
    }

    #[test]
    fn ascii_is_told_from_other_text() {
        for (text, ascii) in [
            (r#"{"a":"plain \u00e9 escape"}"#, true),
            ("{\"a\":\"caf\u{e9}\"}", false),
            ("{\"a\":\"0123456789abcdef\u{e9}\"}", false),
            ("{\"a\\\"\u{e9}\":1}", false),
            ("[1,\"x\",2]", true),
        ] {
            let mut w = window(text);
            let scanned = w.scan_value(1000, 10).unwrap();
            assert_eq!(scanned, Scanned::Kept { too_deep: false, ascii }, "{text}");
            assert_eq!(w.kept(), text.as_bytes());
        }
    }

    #[test]
    fn string_ends_are_found_at_every_offset() {
        // A quote or backslash at each position of an eight-byte word, and past a word.
        for at in 0..20 {
            for stop in [b'"', b'\\'] {
                let mut text = vec![b'a'; 24];
                text[at] = stop;
                let mut seen = 0;
                assert_eq!(string_stop(&text, 0, &mut seen), at);
                assert_eq!(string_stop(&text, at + 1, &mut seen), 24);
            }
        }
        let mut text = [b'a'; 12];
        text[9] = 0xC3;
        let mut seen = 0;
        string_stop(&text, 0, &mut seen);
        assert_ne!(seen & HIGH_BITS, 0);
    }

    #[test]
    fn ascii_runs_and_bracket_counts() {
        assert_eq!(ascii_prefix(b""), 0);
        assert_eq!(ascii_prefix(b"abc"), 3);
        for at in 0..20 {
            let mut text = vec![b'a'; 24];
            text[at] = 0xC3;
            assert_eq!(ascii_prefix(&text), at);
        }
        let text = r#"{"a":[{"b":"[{"}],"c":{}}"#.as_bytes();
        assert!(brackets_at_most(text, 6));
        assert!(!brackets_at_most(text, 3));
        assert!(brackets_at_most(b"[]", 1));
        assert!(!brackets_at_most(b"[[]]", 1));
        assert!(brackets_at_most(b"no brackets at all here", 0));
    }

    #[test]
    fn text_ahead_stops_at_bytes_that_are_not_utf8_and_reads_on() {
        let bytes = b"[1,2] \"caf\xc3\xa9\" \"\xff\" 7";
        let mut w = Window::new(&bytes[..], u64::MAX);
        assert_eq!(w.peek().unwrap(), Some(b'['));
        assert_eq!(w.text_ahead(), ("[1,2] \"caf\u{e9}\" \"", false));
        w.advance(5);
        assert_eq!(w.text_ahead(), (" \"caf\u{e9}\" \"", false));
        w.scan_value(100, 10).unwrap();
        assert_eq!(w.text_ahead(), (" \"", false));
        w.scan_value(100, 10).unwrap();
        assert_eq!(w.kept(), b"\"\xff\"");
        assert_eq!(w.text_ahead(), (" 7", true));

        // A character cut by the end of the buffer is held back until the rest is read.
        let cut = [b'a', 0xc3];
        let mut w = Window::new(&cut[..], u64::MAX);
        assert_eq!(w.peek().unwrap(), Some(b'a'));
        assert_eq!(w.text_ahead(), ("a", false));

        let mut w = Window::new(&b"  {}"[..], u64::MAX);
        assert_eq!(w.text_ahead(), ("", true));
        assert!(w.read_more(100).unwrap());
        assert_eq!(w.text_ahead(), ("  {}", true));
        assert!(!w.read_more(100).unwrap());
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
