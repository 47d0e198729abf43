//! A strict one-pass reader for ordinary records, borrowing from their text.
//!
//! Most records are plain: keys without escapes, strings where the fields expect strings,
//! moderate nesting. This reader turns such a record into the same `Record` that serde_json and
//! the tolerant visitors of `record` give, in one pass over its bytes: it validates all of the
//! record as JSON (its text is embedded in the output as JSON), matches keys as the visitors do
//! (exactly first, then ignoring ASCII case), skips what no field needs eight bytes at a time,
//! and borrows every string that holds no escape.
//!
//! It is never looser than serde_json, only stricter: whatever it is not sure of it declines,
//! and the reader hands the record to serde_json, whose answer stands. It declines a number
//! where a field expects text or an object (serde_json reads those through `f64`), an escape in
//! a key, a lone surrogate in a string a field reads, a byte that cannot start a value, and
//! nesting deeper than the limit. A test holds the two to the same `Record` and length on every
//! record this one accepts, and on mutated records.

use std::borrow::Cow;

use crate::record::{
    AdditionalEventData, Attributes, InsightDetails, Many, Raw, Record, Resource, Scalar, SessionContext,
    SessionIssuer, Shape, TlsDetails, UserIdentity,
};

/// What reading a record at the start of a text gave.
#[derive(Debug, PartialEq)]
pub enum Fast<'a> {
    /// The record, and the length of its text.
    Read(Record<'a>, usize),
    /// The text ends inside the record: more text may complete it.
    More,
    /// Not a record this reader is sure of: serde_json must read it.
    Declined,
}

/// Nesting accepted at most, whatever the configured limit: serde_json stops at 128 levels.
const DEPTH_CAP: u32 = 100;

/// Reads the record at the start of `text` (which must start with its first byte), nested at
/// most `max_depth` levels.
pub fn read(text: &str, max_depth: u32) -> Fast<'_> {
    if text.as_bytes().first() != Some(&b'{') {
        return Fast::Declined;
    }
    let mut p = Parser {
        text,
        i: 0,
        depth: 0,
        max_depth: max_depth.min(DEPTH_CAP),
    };
    match p.record() {
        Ok(record) => Fast::Read(record, p.i),
        Err(Stop::More) => Fast::More,
        Err(Stop::Declined) => Fast::Declined,
    }
}

enum Stop {
    More,
    Declined,
}

type R<T> = Result<T, Stop>;

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` equal to `byte` (and possibly of bytes above such a byte:
/// the lowest set bit is always exact).
#[inline(always)]
fn equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (LOW * u64::from(byte));
    x.wrapping_sub(LOW) & !x & HIGH
}

/// The high bit of each byte of `word` below 0x20 (lowest set bit exact).
#[inline(always)]
fn control(word: u64) -> u64 {
    word.wrapping_sub(LOW * 0x20) & !word & HIGH
}

struct Parser<'a> {
    text: &'a str,
    i: usize,
    depth: u32,
    max_depth: u32,
}

impl<'a> Parser<'a> {
    #[inline(always)]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte that is not JSON whitespace, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> R<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.i) {
            match c {
                b' ' | b'\n' | b'\t' | b'\r' => self.i += 1,
                _ => return Ok(c),
            }
        }
        Err(Stop::More)
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> R<()> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(Stop::Declined)
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(Stop::Declined);
        }
        self.i += 1;
        Ok(())
    }

    /// The string whose opening quote is at `self.i`: the range of its content and whether it
    /// holds escapes (each checked to be one JSON allows). Declines a control character.
    #[inline]
    fn string(&mut self) -> R<(usize, usize, bool)> {
        let b = self.bytes();
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            while let Some(chunk) = b.get(i..i + 8) {
                let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                let hits = equal(w, b'"') | equal(w, b'\\') | control(w);
                if hits != 0 {
                    i += (hits.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match b.get(i) {
                None => return Err(Stop::More),
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok((start, i, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    match b.get(i + 1) {
                        None => return Err(Stop::More),
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') => {
                            let hex = b.get(i + 2..i + 6).ok_or(Stop::More)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(Stop::Declined);
                            }
                            i += 6;
                        }
                        Some(_) => return Err(Stop::Declined),
                    }
                }
                Some(&c) if c < 0x20 => return Err(Stop::Declined),
                Some(_) => i += 1,
            }
        }
    }

    /// A string a field reads: borrowed when it has no escape, decoded otherwise.
    fn text(&mut self) -> R<Cow<'a, str>> {
        let (start, end, escaped) = self.string()?;
        let raw = &self.text[start..end];
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        unescape(raw).map(Cow::Owned).ok_or(Stop::Declined)
    }

    /// An object key (without escapes) and the `:` after it.
    #[inline]
    fn key(&mut self) -> R<&'a str> {
        if self.peek()? != b'"' {
            return Err(Stop::Declined);
        }
        let (start, end, escaped) = self.string()?;
        if escaped {
            return Err(Stop::Declined);
        }
        self.eat(b':')?;
        Ok(&self.text[start..end])
    }

    fn literal(&mut self, word: &[u8]) -> R<()> {
        match self.bytes().get(self.i..self.i + word.len()) {
            None => Err(Stop::More),
            Some(found) if found == word => {
                self.i += word.len();
                Ok(())
            }
            Some(_) => Err(Stop::Declined),
        }
    }

    /// A number, by JSON's grammar (what serde_json checks when it skips one).
    fn number(&mut self) -> R<()> {
        let b = self.bytes();
        let mut i = self.i;
        let digits = |mut i: usize| {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            None => return Err(Stop::More),
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(i + 1),
            Some(_) => return Err(Stop::Declined),
        }
        if b.get(i).is_some_and(u8::is_ascii_digit) {
            return Err(Stop::Declined);
        }
        if b.get(i) == Some(&b'.') {
            let after = digits(i + 1);
            if after == i + 1 {
                return Err(if after == b.len() { Stop::More } else { Stop::Declined });
            }
            i = after;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let after = digits(i);
            if after == i {
                return Err(if after == b.len() { Stop::More } else { Stop::Declined });
            }
            i = after;
        }
        if i == b.len() {
            // The number may go on past the text.
            return Err(Stop::More);
        }
        self.i = i;
        Ok(())
    }

    /// Skips any value, validating it.
    fn skip(&mut self) -> R<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.members(|p, _| p.skip()),
            b'[' => self.skip_array(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Stop::Declined),
        }
    }

    fn skip_array(&mut self) -> R<()> {
        self.items(|p| p.skip())
    }

    /// The elements of the array at `self.i`, each read by `item`.
    fn items(&mut self, mut item: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        self.enter()?;
        if self.peek()? == b']' {
            self.i += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(Stop::Declined),
            }
        }
    }

    /// The members of the object at `self.i`, each value read by `field` given its key.
    #[inline]
    fn members(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> R<()>) -> R<()> {
        self.enter()?;
        if self.peek()? == b'}' {
            self.i += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(Stop::Declined),
            }
        }
    }

    /// A value where a field expects a scalar (`Scalar`'s visitor).
    fn scalar(&mut self) -> R<Scalar<'a>> {
        Ok(match self.peek()? {
            b'"' => Scalar::Str(self.text()?),
            b't' => {
                self.literal(b"true")?;
                Scalar::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Scalar::Bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                Scalar::Null
            }
            b'{' => {
                self.members(|p, _| p.skip())?;
                Scalar::Object
            }
            b'[' => {
                self.skip_array()?;
                Scalar::Array
            }
            _ => return Err(Stop::Declined),
        })
    }

    /// A value where a field expects an object (the tolerant objects' visitors): the object read
    /// by `field`, or what stood there instead.
    fn object<T>(
        &mut self,
        with_shape: fn(Shape) -> T,
        mut field: impl FnMut(&mut Self, &mut T, &'a str) -> R<()>,
    ) -> R<T> {
        Ok(match self.peek()? {
            b'{' => {
                let mut out = with_shape(Shape::Object);
                self.members(|p, key| field(p, &mut out, key))?;
                out
            }
            other => with_shape(self.not_an_object(other)?),
        })
    }

    /// What stands where an object was expected, read as serde_json reads it there.
    fn not_an_object(&mut self, first: u8) -> R<Shape> {
        Ok(match first {
            b'"' => {
                self.text()?;
                Shape::Wrong("a string")
            }
            b't' => {
                self.literal(b"true")?;
                Shape::Wrong("a boolean")
            }
            b'f' => {
                self.literal(b"false")?;
                Shape::Wrong("a boolean")
            }
            b'n' => {
                self.literal(b"null")?;
                Shape::Null
            }
            b'[' => {
                self.skip_array()?;
                Shape::Wrong("an array")
            }
            _ => return Err(Stop::Declined),
        })
    }

    /// A value kept as text (`Option<Raw>`): `null` is none.
    fn raw(&mut self) -> R<Option<Raw<'a>>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(None);
        }
        let start = self.i;
        self.skip()?;
        Ok(Some(Raw(&self.text[start..self.i])))
    }

    /// `resources`: a list of objects, or what stood there instead.
    fn resources(&mut self) -> R<Many<Resource<'a>>> {
        Ok(match self.peek()? {
            b'[' => {
                let mut items = Vec::new();
                self.items(|p| {
                    items.push(p.object(Resource::with_shape, |p, r, key| resource_field(p, r, key))?);
                    Ok(())
                })?;
                Many::List(items)
            }
            b'{' => {
                self.members(|p, _| p.skip())?;
                Many::Wrong("an object")
            }
            other => match self.not_an_object(other)? {
                Shape::Null => Many::Absent,
                Shape::Wrong(kind) => Many::Wrong(kind),
                Shape::Absent | Shape::Object => return Err(Stop::Declined),
            },
        })
    }

    fn record(&mut self) -> R<Record<'a>> {
        self.object(Record::with_shape, record_field)
    }
}

/// The field of `keys` that `key` names when it differs from them only in ASCII case.
fn folded<'k>(keys: &[&'k str], key: &str) -> Option<&'k str> {
    keys.iter().copied().find(|k| k.eq_ignore_ascii_case(key))
}

const RECORD_KEYS: [&str; 23] = [
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "recipientAccountId",
    "sharedEventID",
    "eventCategory",
    "tlsDetails",
    "insightDetails",
];

fn record_field<'a>(p: &mut Parser<'a>, r: &mut Record<'a>, key: &str) -> R<()> {
    match key {
        "eventVersion" => r.event_version = p.scalar()?,
        "userIdentity" => r.user_identity = p.object(UserIdentity::with_shape, user_identity_field)?,
        "eventTime" => r.event_time = p.scalar()?,
        "eventSource" => r.event_source = p.scalar()?,
        "eventName" => r.event_name = p.scalar()?,
        "awsRegion" => r.aws_region = p.scalar()?,
        "sourceIPAddress" => r.source_ip_address = p.scalar()?,
        "userAgent" => r.user_agent = p.scalar()?,
        "errorCode" => r.error_code = p.scalar()?,
        "errorMessage" => r.error_message = p.scalar()?,
        "requestParameters" => r.request_parameters = p.raw()?,
        "responseElements" => r.response_elements = p.raw()?,
        "additionalEventData" => {
            r.additional_event_data = p.object(AdditionalEventData::with_shape, |p, a, key| match key {
                "MFAUsed" => {
                    a.mfa_used = p.scalar()?;
                    Ok(())
                }
                _ if key.eq_ignore_ascii_case("MFAUsed") => {
                    a.mfa_used = p.scalar()?;
                    Ok(())
                }
                _ => p.skip(),
            })?
        }
        "requestID" => r.request_id = p.scalar()?,
        "eventID" => r.event_id = p.scalar()?,
        "readOnly" => r.read_only = p.scalar()?,
        "resources" => r.resources = p.resources()?,
        "eventType" => r.event_type = p.scalar()?,
        "recipientAccountId" => r.recipient_account_id = p.scalar()?,
        "sharedEventID" => r.shared_event_id = p.scalar()?,
        "eventCategory" => r.event_category = p.scalar()?,
        "tlsDetails" => r.tls_details = p.object(TlsDetails::with_shape, tls_field)?,
        "insightDetails" => r.insight_details = p.object(InsightDetails::with_shape, insight_field)?,
        other => match folded(&RECORD_KEYS, other) {
            Some(known) => return record_field(p, r, known),
            None => p.skip()?,
        },
    }
    Ok(())
}

const USER_IDENTITY_KEYS: [&str; 8] = [
    "type",
    "principalId",
    "arn",
    "accountId",
    "accessKeyId",
    "userName",
    "invokedBy",
    "sessionContext",
];

fn user_identity_field<'a>(p: &mut Parser<'a>, u: &mut UserIdentity<'a>, key: &str) -> R<()> {
    match key {
        "type" => u.identity_type = p.scalar()?,
        "principalId" => u.principal_id = p.scalar()?,
        "arn" => u.arn = p.scalar()?,
        "accountId" => u.account_id = p.scalar()?,
        "accessKeyId" => u.access_key_id = p.scalar()?,
        "userName" => u.user_name = p.scalar()?,
        "invokedBy" => u.invoked_by = p.scalar()?,
        "sessionContext" => u.session_context = p.object(SessionContext::with_shape, session_context_field)?,
        other => match folded(&USER_IDENTITY_KEYS, other) {
            Some(known) => return user_identity_field(p, u, known),
            None => p.skip()?,
        },
    }
    Ok(())
}

fn session_context_field<'a>(p: &mut Parser<'a>, c: &mut SessionContext<'a>, key: &str) -> R<()> {
    match key {
        "sessionIssuer" => c.session_issuer = p.object(SessionIssuer::with_shape, session_issuer_field)?,
        "attributes" => c.attributes = p.object(Attributes::with_shape, attributes_field)?,
        other => match folded(&["sessionIssuer", "attributes"], other) {
            Some(known) => return session_context_field(p, c, known),
            None => p.skip()?,
        },
    }
    Ok(())
}

fn session_issuer_field<'a>(p: &mut Parser<'a>, s: &mut SessionIssuer<'a>, key: &str) -> R<()> {
    match key {
        "arn" => s.arn = p.scalar()?,
        "userName" => s.user_name = p.scalar()?,
        other => match folded(&["arn", "userName"], other) {
            Some(known) => return session_issuer_field(p, s, known),
            None => p.skip()?,
        },
    }
    Ok(())
}

fn attributes_field<'a>(p: &mut Parser<'a>, a: &mut Attributes<'a>, key: &str) -> R<()> {
    if key.eq_ignore_ascii_case("mfaAuthenticated") {
        a.mfa_authenticated = p.scalar()?;
        Ok(())
    } else {
        p.skip()
    }
}

fn resource_field<'a>(p: &mut Parser<'a>, r: &mut Resource<'a>, key: &str) -> R<()> {
    if key.eq_ignore_ascii_case("ARN") {
        r.arn = p.scalar()?;
        Ok(())
    } else {
        p.skip()
    }
}

fn tls_field<'a>(p: &mut Parser<'a>, t: &mut TlsDetails<'a>, key: &str) -> R<()> {
    match key {
        "tlsVersion" => t.tls_version = p.scalar()?,
        "cipherSuite" => t.cipher_suite = p.scalar()?,
        "clientProvidedHostHeader" => t.host_header = p.scalar()?,
        other => match folded(&["tlsVersion", "cipherSuite", "clientProvidedHostHeader"], other) {
            Some(known) => return tls_field(p, t, known),
            None => p.skip()?,
        },
    }
    Ok(())
}

fn insight_field<'a>(p: &mut Parser<'a>, d: &mut InsightDetails<'a>, key: &str) -> R<()> {
    match key {
        "eventSource" => d.event_source = p.scalar()?,
        "eventName" => d.event_name = p.scalar()?,
        other => match folded(&["eventSource", "eventName"], other) {
            Some(known) => return insight_field(p, d, known),
            None => p.skip()?,
        },
    }
    Ok(())
}

/// The text of a JSON string's content with its escapes (already checked) decoded; `None` for a
/// lone surrogate, which serde_json refuses in a string it reads.
fn unescape(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        let Some(at) = memchr::memchr(b'\\', &b[i..]) else {
            out.push_str(&raw[i..]);
            break;
        };
        out.push_str(&raw[i..i + at]);
        i += at;
        let c = match b[i + 1] {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => {
                let unit = hex4(&raw[i + 2..i + 6])?;
                i += 6;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        let low = raw
                            .get(i..i + 6)
                            .filter(|s| s.starts_with("\\u"))
                            .and_then(|s| hex4(&s[2..]))?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        i += 6;
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => u32::from(unit),
                };
                out.push(char::from_u32(code)?);
                continue;
            }
        };
        out.push(c);
        i += 2;
    }
    Some(out)
}

fn hex4(s: &str) -> Option<u16> {
    u16::from_str_radix(s, 16)
        .ok()
        .filter(|_| s.len() == 4 && !s.starts_with('+'))
}

#[cfg(test)]
#[path = "fast_tests.rs"]
mod tests;
