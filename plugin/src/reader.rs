//! Reading one CloudTrail object in bounded batches.
//!
//! `LogFile::open` reads the top of the document far enough to know what it is (a log file, an
//! Insight file, a digest, or something else), then `next_batch` decompresses and parses only as
//! much as the batch needs. A bad record becomes a flagged event; a broken document ends the file
//! with an error after every event before the break has been returned.
//!
//! Each record is read in one of two ways. The common case takes one pass: the record is valid
//! UTF-8 text already in the window, and serde_json parses it and says where it ends
//! (`read_fast`). Everything else (a record that is not valid JSON or UTF-8, over the size limit,
//! or possibly nested too deep) goes to the window's scanner, which finds the record's end with
//! bounded memory whatever the bytes are, and then to the same typed parse (`event_from`). Both
//! ways give the same event for the same record; a test reads records split across every
//! possible read boundary to hold them to that.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Cursor, Read};

use flate2::read::MultiGzDecoder;

use crate::fast::{self, Fast};
use crate::model::{DigestInfo, Event, FileError, FileKind, OpenOptions};
use crate::normalize;
use crate::record::{Record, Scalar};
use crate::scan::{self, ScanError, Scanned, Window};
use crate::select::{self, Keep};

/// Where the stored bytes come from, with the bytes read to sniff the format put back in front.
type Stored = io::Chain<Cursor<Vec<u8>>, Box<dyn Read>>;

/// The stored bytes, decompressed when they are gzip.
enum Inflate {
    Plain(Stored),
    Gzip(Box<MultiGzDecoder<Stored>>),
}

/// The file's content as the window reads it, with a copy of every byte read kept for the host
/// to hash when the file was opened hashed (`LogFile::take_inflated`).
struct Source {
    inflate: Inflate,
    inflated: Option<Vec<u8>>,
    /// How many bytes the last `take_inflated` gave: the next copy starts with room for about
    /// as much, instead of growing (and copying) its way there.
    last_taken: usize,
}

/// An error the supplier of the stored bytes reported (not a fault of the file's contents).
#[derive(Debug)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.inflate {
            Inflate::Plain(c) => c.read(buf)?,
            Inflate::Gzip(g) => g.read(buf)?,
        };
        if let Some(kept) = &mut self.inflated {
            if kept.capacity() == 0 {
                kept.reserve(n.max(self.last_taken + self.last_taken / 4));
            }
            kept.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a record or the end of the `Records` array.
    Element,
    /// Expecting `,` or `]` after a record.
    AfterElement,
    /// The file was read to its end.
    Done,
    /// An error was returned; nothing more can be read.
    Failed,
}

/// A record that is not valid UTF-8. Valid JSON may still hide invalid UTF-8 inside strings the
/// typed parse skips: such a record is read, and its raw text shows the bad bytes replaced
/// (U+FFFD) rather than passing them on.
fn invalid_utf8(index: u32, bytes: &[u8]) -> Event<'_> {
    const REPLACED: &str = "raw shows it with U+FFFD replacements";
    let raw = String::from_utf8_lossy(bytes);
    match serde_json::from_slice::<Record>(bytes).map(|r| normalize::normalize(index, r)) {
        Ok(mut event) => {
            event.raw = raw;
            event
                .problems
                .push(format!("record holds invalid UTF-8 inside a string; {REPLACED}"));
            event
        }
        Err(e) => normalize::flagged(
            index,
            raw,
            format!("record is not valid JSON: {e} (the record is not valid UTF-8; {REPLACED})"),
        ),
    }
}

/// The supplier's message when `e` came from the supplier of the stored bytes.
fn input_error(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<InputError>())
        .map(|i| i.0.clone())
}

/// An error while sniffing the format: the supplier's, or an unexpected one.
fn read_error(e: io::Error) -> FileError {
    match input_error(&e) {
        Some(m) => FileError::ReadFailed(m),
        None => FileError::ReadFailed(e.to_string()),
    }
}

/// One open CloudTrail object.
pub struct LogFile {
    window: Window<Source>,
    options: OpenOptions,
    kind: FileKind,
    digest: Option<DigestInfo>,
    state: State,
    next_index: u32,
    /// A record read ahead by `open` to tell an Insight file from a log file.
    pending: Option<Event<'static>>,
    /// An error met while filling a batch that already had events; returned on the next call.
    pending_error: Option<FileError>,
    /// The object's key or path, as given to `open`.
    key: String,
    /// Which events are handed over.
    keep: Keep,
    /// Records `keep` left out so far.
    left_out: u64,
}

/// How often `read_fast` reads more for one record before it leaves the record to the scanner,
/// and the most buffered text it parses: each read means parsing the record again from its start.
const FAST_READS: usize = 4;
const FAST_MAX_BYTES: usize = 1 << 20;

/// Raw record bytes after which a batch ends early.
const BATCH_BYTES: usize = 8 << 20;

const DIGEST_KEYS: [&str; 4] = ["digestStartTime", "digestEndTime", "digestS3Object", "logFiles"];

impl LogFile {
    /// Opens a file from its stored bytes in memory; `key` is its S3 key or path.
    pub fn open(bytes: Vec<u8>, key: &str, options: OpenOptions) -> Result<LogFile, FileError> {
        Self::open_reader(Box::new(Cursor::new(bytes)), key, options)
    }

    /// Opens a file whose stored bytes `input` supplies as they are needed. An `io::Error`
    /// carrying an `InputError` from `input` is reported as `ReadFailed`.
    pub fn open_reader(input: Box<dyn Read>, key: &str, options: OpenOptions) -> Result<LogFile, FileError> {
        Self::open_with(input, key, options, false)
    }

    /// Opens a file as `open_reader` does; when `hashed`, every decompressed byte read is kept
    /// for `take_inflated`.
    pub fn open_with(
        mut input: Box<dyn Read>,
        key: &str,
        options: OpenOptions,
        hashed: bool,
    ) -> Result<LogFile, FileError> {
        let mut head = Vec::with_capacity(2);
        while head.len() < 2 {
            let mut byte = [0u8; 2];
            match input.read(&mut byte[..2 - head.len()]) {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&byte[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            }
        }
        let gzip = head == [0x1f, 0x8b];
        let stored = Cursor::new(head).chain(input);
        let inflate = if gzip {
            Inflate::Gzip(Box::new(MultiGzDecoder::new(stored)))
        } else {
            Inflate::Plain(stored)
        };
        let source = Source {
            inflate,
            inflated: hashed.then(Vec::new),
            last_taken: 0,
        };
        let mut file = LogFile {
            window: Window::new(source, options.max_decompressed_bytes),
            options,
            kind: FileKind::Log,
            digest: None,
            state: State::Element,
            next_index: 0,
            pending: None,
            pending_error: None,
            key: key.to_owned(),
            keep: Keep::All,
            left_out: 0,
        };
        if let Some(e) = file.not_an_object() {
            return Err(e);
        }
        let has_records = file.read_head().map_err(|e| file.fail(e))?;
        if !has_records {
            file.state = State::Done;
            return Ok(file);
        }
        if key.contains("CloudTrail-Insight") {
            file.kind = FileKind::Insight;
        }
        match file.read_one_with(|event| event.into_owned()) {
            Ok(Some(first)) => {
                if first.event_type.as_deref() == Some("AwsCloudTrailInsight") {
                    file.kind = FileKind::Insight;
                }
                file.pending = Some(first);
            }
            Ok(None) => {}
            Err(e) => file.pending_error = Some(e),
        }
        Ok(file)
    }

    /// When the document is valid JSON but not an object, says what it is instead.
    fn not_an_object(&mut self) -> Option<FileError> {
        let first = match self.window.peek() {
            Ok(Some(b)) if b != b'{' => b,
            _ => return None,
        };
        let what = match first {
            b'[' => "an array",
            b'"' => "a string",
            b't' | b'f' => "a boolean",
            b'n' => "null",
            b'-' | b'0'..=b'9' => "a number",
            _ => return None,
        };
        // Only a complete, valid JSON value is "JSON but not CloudTrail"; anything else is
        // reported by the normal path as not JSON.
        let whole = matches!(
            self.window.scan_value(self.options.max_record_bytes as usize, 1 << 20),
            Ok(Scanned::Kept { .. })
        ) && serde_json::from_slice::<serde::de::IgnoredAny>(self.window.kept()).is_ok()
            && matches!(self.window.peek(), Ok(None));
        if whole || first == b'[' {
            Some(FileError::NotCloudtrail(format!(
                "the document is {what}; a CloudTrail file is an object with a \"Records\" array"
            )))
        } else {
            Some(FileError::NotJson(format!(
                "expected '{{' at byte 0, found '{}'",
                first as char
            )))
        }
    }

    /// The object's key or path, as given to `open`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// From now on, hands over only the events `keep` keeps (`select::keeps`); a left-out
    /// record leaves a gap in the indexes.
    pub fn select(&mut self, keep: Keep) {
        self.keep = keep;
    }

    /// How many records were left out so far.
    pub fn left_out(&self) -> u64 {
        self.left_out
    }

    /// What kind of file this is.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// The decompressed bytes read since the last call, in order; empty unless the file was
    /// opened hashed. Bytes read ahead of the parse count as read.
    pub fn take_inflated(&mut self) -> Vec<u8> {
        let source = self.window.source_mut();
        let taken = source.inflated.as_mut().map(std::mem::take).unwrap_or_default();
        if !taken.is_empty() {
            source.last_taken = taken.len();
        }
        taken
    }

    /// Decompressed bytes kept for `take_inflated` and not yet taken.
    fn inflated_held(&mut self) -> usize {
        self.window.source_mut().inflated.as_ref().map_or(0, Vec::len)
    }

    /// Decompresses up to `max` further bytes without parsing them and returns them (with
    /// those `take_inflated` had not yet returned, for a hashed file): the rest of a file whose
    /// reading stopped early. Empty at the end of the stored bytes. The file gives no further
    /// events after this.
    pub fn inflate_rest(&mut self, max: usize) -> Result<Vec<u8>, FileError> {
        if self.state == State::Element || self.state == State::AfterElement {
            self.state = State::Failed;
            self.pending = None;
            self.pending_error = None;
        }
        let hashed = self.window.source_mut().inflated.is_some();
        // A hashed file's bytes are kept as they are read: the buffer read into is only a
        // passage then, and a small one spares zeroing `max` bytes at the end of every file.
        let mut buf = vec![0u8; if hashed { max.min(64 << 10) } else { max }];
        let mut n = 0;
        loop {
            let want = (max - n).min(buf.len());
            let at = if hashed { 0 } else { n };
            let read = self.window.read_past(&mut buf[at..at + want]).map_err(|e| match e {
                ScanError::TooLarge(limit) => FileError::TooLarge(limit),
                ScanError::Io(e) => match input_error(&e) {
                    Some(m) => FileError::ReadFailed(m),
                    None if e.kind() == io::ErrorKind::UnexpectedEof => {
                        FileError::Truncated("the gzip stream ends early".into())
                    }
                    None => FileError::BadGzip(e.to_string()),
                },
                // `read_past` reads bytes only; it finds no syntax.
                ScanError::Eof { .. } | ScanError::Syntax { .. } => {
                    FileError::ReadFailed("unexpected scan error".into())
                }
            })?;
            n += read;
            if read < want || n >= max {
                break;
            }
        }
        buf.truncate(n);
        match &mut self.window.source_mut().inflated {
            Some(kept) => Ok(std::mem::take(kept)),
            None => Ok(buf),
        }
    }

    /// What a digest file says; `None` for log files.
    pub fn digest(&self) -> Option<&DigestInfo> {
        self.digest.as_ref()
    }

    /// Up to `max` further events; empty at the clean end of the file.
    pub fn next_batch(&mut self, max: u32) -> Result<Vec<Event<'static>>, FileError> {
        let mut batch = Vec::with_capacity(max.clamp(1, 1024) as usize);
        self.next_with(max, |event| batch.push(event.into_owned()))?;
        Ok(batch)
    }

    /// One step of a hashed read, typed (`next_step_with`): the events, and whether the file
    /// has ended.
    pub fn next_batch_step(&mut self, max: u32) -> Result<(Vec<Event<'static>>, bool), FileError> {
        let mut batch = Vec::with_capacity(max.clamp(1, 1024) as usize);
        let (_, ended) = self.next_step_with(max, |event| batch.push(event.into_owned()))?;
        Ok((batch, ended))
    }

    /// Hands up to `max` further events to `each`, in order, each borrowing the buffered text
    /// until `each` returns; the count is 0 at the clean end of the file. An error met after some
    /// events is returned by the next call, as `next_batch` does.
    pub fn next_with(&mut self, max: u32, each: impl FnMut(Event<'_>)) -> Result<usize, FileError> {
        self.step_with(max, false, each).map(|(count, _)| count)
    }

    /// One step of a hashed read (the `hashing` interface): as `next_with`, and also ends once
    /// the decompressed text kept for `take_inflated` reaches the batch budget with no event
    /// handed over, so that long runs of left-out or skipped records are handed to the host
    /// step by step instead of held. Returns the count and whether the file has ended cleanly
    /// (a step may hand over nothing without the file having ended).
    pub fn next_step_with(&mut self, max: u32, each: impl FnMut(Event<'_>)) -> Result<(usize, bool), FileError> {
        self.step_with(max, true, each)
    }

    fn step_with(
        &mut self,
        max: u32,
        may_end_empty: bool,
        mut each: impl FnMut(Event<'_>),
    ) -> Result<(usize, bool), FileError> {
        if let Some(e) = self.pending_error.take() {
            if self.pending.is_none() {
                self.state = State::Failed;
                return Err(e);
            }
            self.pending_error = Some(e);
        }
        if self.state == State::Failed {
            return Err(FileError::Closed);
        }
        let max = max.max(1) as usize;
        let (mut count, mut held) = (0, 0);
        let keep = self.keep;
        if let Some(first) = self.pending.take() {
            if select::keeps(keep, &first) {
                held += first.raw.len();
                count += 1;
                each(first);
            } else {
                self.left_out += 1;
            }
        }
        if let Some(e) = self.pending_error.take() {
            if count == 0 {
                // The record read ahead was left out: nothing to return before the error.
                self.state = State::Failed;
                return Err(e);
            }
            self.pending_error = Some(e);
            return Ok((count, false));
        }
        // A batch also ends at a byte budget, so that a few large (but legal) records cannot
        // make one batch outgrow the sandbox's memory; so does the decompressed text kept for a
        // hashed file (records left out or skipped count there), once the batch has an event,
        // or at once in a step (which may end empty without the file having ended).
        let mut ended = false;
        while count < max
            && held < BATCH_BYTES
            && !((may_end_empty || count > 0) && self.inflated_held() >= BATCH_BYTES)
        {
            // A left-out record is not held: only the handed-over ones count to the budget,
            // and a batch ends early only with something in it (empty means the file's end).
            let read = self.read_one_with(|event| {
                select::keeps(keep, &event).then(|| {
                    let len = event.raw.len();
                    each(event);
                    len
                })
            });
            match read {
                Ok(Some(Some(len))) => {
                    held += len;
                    count += 1;
                }
                Ok(Some(None)) => self.left_out += 1,
                Ok(None) => {
                    ended = true;
                    break;
                }
                Err(e) if count == 0 => {
                    self.state = State::Failed;
                    return Err(e);
                }
                Err(e) => {
                    self.pending_error = Some(e);
                    break;
                }
            }
        }
        // Without steps an empty batch is the end: the loop above ends empty only there.
        Ok((count, ended || (count == 0 && !may_end_empty)))
    }

    /// Reads the document up to the start of `Records`. Returns false for a document without
    /// records (a digest), after reading all of it.
    fn read_head(&mut self) -> Result<bool, ScanError> {
        match self.window.peek()? {
            Some(b'{') => {}
            Some(found) => {
                return Err(ScanError::Syntax {
                    at: self.window.offset(),
                    found,
                    expected: "'{'",
                })
            }
            None => return Err(ScanError::Eof { at: 0 }),
        }
        self.window.expect(b"{", "'{'")?;
        let mut keys: Vec<String> = Vec::new();
        let mut digest = DigestInfo::default();
        let mut digest_keys = 0;
        if self.window.peek()? == Some(b'}') {
            self.window.expect(b"}", "'}'")?;
            return self.end_without_records(&keys, digest_keys, digest);
        }
        loop {
            let key = self.read_key()?;
            if key == "Records" {
                self.window.expect(b"[", "'[' (Records must be an array)")?;
                return Ok(true);
            }
            if DIGEST_KEYS.contains(&key.as_str()) {
                digest_keys += 1;
            }
            let scanned = self
                .window
                .scan_value(self.options.max_record_bytes as usize, self.options.max_depth)?;
            if let Scanned::Kept { too_deep: false, .. } = scanned {
                let text = |w: &Window<Source>| match serde_json::from_slice::<Scalar>(w.kept()) {
                    Ok(Scalar::Str(s)) => Some(s.into_owned()),
                    _ => None,
                };
                match key.as_str() {
                    "awsAccountId" => digest.account_id = text(&self.window),
                    "digestStartTime" => digest.start_time = text(&self.window),
                    "digestEndTime" => digest.end_time = text(&self.window),
                    "logFiles" => {
                        if let Ok(files) = serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(self.window.kept()) {
                            digest.log_file_count = u32::try_from(files.len()).unwrap_or(u32::MAX);
                        }
                    }
                    _ => {}
                }
            }
            if keys.len() < 8 {
                keys.push(key);
            }
            if self.window.expect(b",}", "',' or '}'")? == b'}' {
                return self.end_without_records(&keys, digest_keys, digest);
            }
        }
    }

    fn end_without_records(
        &mut self,
        keys: &[String],
        digest_keys: usize,
        digest: DigestInfo,
    ) -> Result<bool, ScanError> {
        self.expect_end()?;
        if digest_keys >= 2 {
            self.kind = FileKind::Digest;
            self.digest = Some(digest);
            return Ok(false);
        }
        let seen = if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(", ")
        };
        self.pending_error = Some(FileError::NotCloudtrail(format!(
            "the top-level object has no \"Records\" array and is not a digest (keys: {seen})"
        )));
        Ok(false)
    }

    /// Reads an object key and the `:` after it.
    fn read_key(&mut self) -> Result<String, ScanError> {
        match self.window.peek()? {
            Some(b'"') => {}
            Some(found) => {
                return Err(ScanError::Syntax {
                    at: self.window.offset(),
                    found,
                    expected: "an object key",
                })
            }
            None => {
                return Err(ScanError::Eof {
                    at: self.window.offset(),
                })
            }
        }
        let at = self.window.offset();
        self.window.scan_value(64 * 1024, 1)?;
        let key = serde_json::from_slice::<String>(self.window.kept()).map_err(|_| ScanError::Syntax {
            at,
            found: b'"',
            expected: "a valid key string",
        })?;
        self.window.expect(b":", "':'")?;
        Ok(key)
    }

    /// Checks that nothing but whitespace follows the document.
    fn expect_end(&mut self) -> Result<(), ScanError> {
        match self.window.peek()? {
            None => Ok(()),
            Some(found) => Err(ScanError::Syntax {
                at: self.window.offset(),
                found,
                expected: "the end of the file",
            }),
        }
    }

    /// Skips the rest of the top-level object after the `Records` array.
    fn read_tail(&mut self) -> Result<(), ScanError> {
        loop {
            if self.window.expect(b",}", "',' or '}'")? == b'}' {
                return self.expect_end();
            }
            self.read_key()?;
            self.window
                .scan_value(self.options.max_record_bytes as usize, self.options.max_depth)?;
        }
    }

    /// Hands the next event to `f` and returns what `f` made of it, or `None` at the clean end
    /// of the file. The event borrows the buffered text: `f` sees it before the window moves on.
    fn read_one_with<T>(&mut self, f: impl FnOnce(Event<'_>) -> T) -> Result<Option<T>, FileError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Failed => return Err(FileError::Closed),
                State::AfterElement => {
                    let step = self.window.expect(b",]", "',' or ']' after a record");
                    match step {
                        Ok(b',') => self.state = State::Element,
                        Ok(_) => {
                            self.read_tail().map_err(|e| self.fail(e))?;
                            self.state = State::Done;
                        }
                        Err(e) => return Err(self.fail(e)),
                    }
                }
                State::Element => {
                    match self.window.peek() {
                        Ok(Some(b']')) if self.next_index == 0 => {
                            self.window.expect(b"]", "']'").map_err(|e| self.fail(e))?;
                            self.read_tail().map_err(|e| self.fail(e))?;
                            self.state = State::Done;
                            continue;
                        }
                        Ok(Some(found @ (b']' | b',' | b'}' | b':'))) => {
                            let e = ScanError::Syntax {
                                at: self.window.offset(),
                                found,
                                expected: "a record",
                            };
                            return Err(self.fail(e));
                        }
                        Ok(_) => {}
                        Err(e) => return Err(self.fail(e)),
                    }
                    let index = self.next_index;
                    let max_bytes = self.options.max_record_bytes as usize;
                    let mut serde_only = false;
                    for _ in 0..FAST_READS {
                        let (text, whole) = self.window.text_ahead();
                        match attempt(text, whole, &mut serde_only, index, &self.options) {
                            Attempt::Done(event, len) => {
                                let out = f(event);
                                self.window.advance(len);
                                self.next_index += 1;
                                self.state = State::AfterElement;
                                return Ok(Some(out));
                            }
                            Attempt::More => {}
                            Attempt::No => break,
                        }
                        if !self.window.read_more(max_bytes).map_err(|e| self.fail(e))? {
                            break;
                        }
                    }
                    let scanned = self
                        .window
                        .scan_value(max_bytes, self.options.max_depth)
                        .map_err(|e| self.fail(e))?;
                    self.next_index += 1;
                    self.state = State::AfterElement;
                    return Ok(Some(f(self.event_from(index, scanned))));
                }
            }
        }
    }

    fn event_from(&self, index: u32, scanned: Scanned) -> Event<'_> {
        match scanned {
            Scanned::Skipped { len } => normalize::flagged(
                index,
                Cow::Borrowed(""),
                format!(
                    "record is {len} bytes, over the limit of {} bytes; skipped",
                    self.options.max_record_bytes
                ),
            ),
            Scanned::Kept { too_deep: true, .. } => normalize::flagged(
                index,
                String::from_utf8_lossy(self.window.kept()),
                format!(
                    "record is nested deeper than {} levels; not parsed",
                    self.options.max_depth
                ),
            ),
            Scanned::Kept { too_deep: false, ascii } => {
                let bytes = self.window.kept();
                let text = if ascii {
                    debug_assert!(bytes.is_ascii());
                    // SAFETY: ASCII bytes are valid UTF-8; the scanner saw every byte of the record.
                    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
                } else {
                    std::str::from_utf8(bytes).ok()
                };
                match text {
                    // Parsing from text spares serde_json a UTF-8 check of every string.
                    Some(raw) => match serde_json::from_str::<Record>(raw).map(|r| normalize::normalize(index, r)) {
                        Ok(mut event) => {
                            event.raw = Cow::Borrowed(raw);
                            event
                        }
                        Err(e) => {
                            normalize::flagged(index, Cow::Borrowed(raw), format!("record is not valid JSON: {e}"))
                        }
                    },
                    None => invalid_utf8(index, bytes),
                }
            }
        }
    }

    /// Turns a scan error into the file's error and marks the file failed.
    fn fail(&mut self, e: ScanError) -> FileError {
        self.state = State::Failed;
        let record = if self.next_index > 0 {
            format!(" (after record {})", self.next_index - 1)
        } else {
            String::new()
        };
        match e {
            ScanError::TooLarge(limit) => FileError::TooLarge(limit),
            ScanError::Io(e) if input_error(&e).is_some() => FileError::ReadFailed(input_error(&e).unwrap_or_default()),
            ScanError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => FileError::Truncated(format!(
                "the gzip stream ends early, after {} decompressed bytes{record}",
                self.window.offset()
            )),
            ScanError::Io(e) => FileError::BadGzip(format!(
                "{e} (after {} decompressed bytes{record})",
                self.window.offset()
            )),
            ScanError::Eof { at: 0 } => FileError::Truncated("the file is empty".into()),
            ScanError::Eof { at } => FileError::Truncated(format!("the JSON document ends early at byte {at}{record}")),
            ScanError::Syntax { at, found, expected } => {
                let found = if found.is_ascii_graphic() {
                    format!("'{}'", found as char)
                } else {
                    format!("byte 0x{found:02x}")
                };
                FileError::NotJson(format!("expected {expected} at byte {at}, found {found}{record}"))
            }
        }
    }
}

/// What one look at the buffered text gave for the record at its start.
enum Attempt<'a> {
    /// The record's event, and the length of its text.
    Done(Event<'a>, usize),
    /// The record may end in text not yet read: read more and look again.
    More,
    /// Neither one-pass parse can read it: the scanner must.
    No,
}

/// The common case, in one pass: the next record is UTF-8 text already buffered (or after a few
/// more reads), valid JSON, within the size limit and not too deep. The fast reader takes it
/// first; what it declines (`serde_only` remembers that for the record) serde_json reads, and
/// finds the record's end while parsing it. Anything else (`No`) goes to `scan_value`, which
/// handles every case and says what was wrong.
fn attempt<'a>(text: &'a str, whole: bool, serde_only: &mut bool, index: u32, options: &OpenOptions) -> Attempt<'a> {
    let max_bytes = options.max_record_bytes as usize;
    let more = |more: bool| if more { Attempt::More } else { Attempt::No };
    if !*serde_only {
        match fast::read(text, options.max_depth) {
            Fast::Read(_, len) if len > max_bytes => return Attempt::No,
            Fast::Read(record, len) => {
                let mut event = normalize::normalize(index, record);
                event.raw = Cow::Borrowed(&text[..len]);
                return Attempt::Done(event, len);
            }
            Fast::More => return more(whole && text.len() < FAST_MAX_BYTES),
            Fast::Declined => *serde_only = true,
        }
    }
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Record>();
    // An object, array or string is complete at its closing byte; a number or a literal that
    // ends where the buffered text does might go on.
    let closed = matches!(text.as_bytes().first(), Some(b'{' | b'[' | b'"'));
    match stream.next() {
        Some(Ok(_)) if stream.byte_offset() >= text.len() && !closed => more(whole),
        Some(Ok(record)) => {
            let len = stream.byte_offset();
            let bytes = &text.as_bytes()[..len];
            if len > max_bytes || !scan::brackets_at_most(bytes, options.max_depth) {
                return Attempt::No;
            }
            let mut event = normalize::normalize(index, record);
            event.raw = Cow::Borrowed(&text[..len]);
            Attempt::Done(event, len)
        }
        Some(Err(e)) => more(e.is_eof() && whole && text.len() < FAST_MAX_BYTES),
        None => more(whole),
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
