//! The event document: one JSON object per event, on one line (NDJSON).
//!
//! The plugin renders documents inside the sandbox (the `documents` interface of the contract);
//! the host renders the same documents from the contract's typed events when a plugin lacks that
//! interface. Both use this writer, so the two are the same byte for byte. The schema is
//! `schema/event.schema.json`, documented in the README ("Event schema").
//!
//! A document is written in two parts: the head, every member up to `origin`, and the tail, the
//! raw record and the closing brace. Between them the host may add members of its own (the
//! `delivery` of an event read from a bucket). Absent values are left out rather than written as
//! `null`. The raw record is embedded as JSON as it was written; newlines in its whitespace
//! become spaces so that each document stays on one line.

pub mod head;

/// The version of the event document; it changes only when a member is removed, renamed or
/// changes meaning (new optional members keep it).
pub const SCHEMA_VERSION: u32 = 1;

/// The names of the event flags, in the order of their bits in [`Event::flags`].
pub const FLAG_NAMES: [&str; 8] = [
    "authentication",
    "permission_change",
    "logging_tampering",
    "network_exposure",
    "credential_creation",
    "protection_weakened",
    "failed",
    "denied",
];

/// The names of the flags set in `flags` (bit `i` is `FLAG_NAMES[i]`).
pub fn flag_names(flags: u8) -> impl Iterator<Item = &'static str> {
    FLAG_NAMES
        .into_iter()
        .enumerate()
        .filter(move |(bit, _)| flags & (1 << bit) != 0)
        .map(|(_, name)| name)
}

/// `userIdentity`, normalized.
#[derive(Debug, Clone, Copy, Default)]
pub struct Principal<'a> {
    pub identity_type: Option<&'a str>,
    pub principal_id: Option<&'a str>,
    pub arn: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub user_name: Option<&'a str>,
    pub access_key_id: Option<&'a str>,
    pub session_issuer_arn: Option<&'a str>,
    pub mfa_authenticated: Option<bool>,
    pub invoked_by: Option<&'a str>,
}

/// `tlsDetails`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tls<'a> {
    pub tls_version: Option<&'a str>,
    pub cipher_suite: Option<&'a str>,
    pub client_provided_host_header: Option<&'a str>,
}

/// What a document says of one event, borrowed from wherever the event is held. `T` is how the
/// holder keeps the texts of its lists.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a, T: AsRef<str>> {
    pub index: u32,
    pub event_id: Option<&'a str>,
    pub event_time: Option<&'a str>,
    pub event_time_ms: Option<i64>,
    pub event_version: Option<&'a str>,
    pub event_source: Option<&'a str>,
    pub event_name: Option<&'a str>,
    pub service: &'a str,
    /// The action type's name.
    pub action: &'a str,
    pub metric: &'a str,
    /// Bit `i` set: the flag `FLAG_NAMES[i]`.
    pub flags: u8,
    pub read_only: bool,
    pub read_only_derived: bool,
    /// The event category's name.
    pub event_category: &'a str,
    pub event_type: Option<&'a str>,
    pub region: Option<&'a str>,
    pub recipient_account_id: Option<&'a str>,
    pub principal: Option<Principal<'a>>,
    pub source_address: Option<&'a str>,
    /// The source kind's name.
    pub source_kind: &'a str,
    pub user_agent: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    /// The outcome's name.
    pub outcome: &'a str,
    pub request_id: Option<&'a str>,
    pub shared_event_id: Option<&'a str>,
    pub resources: &'a [T],
    pub tls: Option<Tls<'a>>,
    pub problems: &'a [String],
    pub raw: &'a str,
}

/// Appends `text` as a JSON string. Most texts need no escaping and are copied as they are;
/// the rest go through serde_json's escaping, so the output is the same either way.
#[inline]
fn push_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Whether `bytes` holds a quote, a backslash or a control character, eight bytes at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |x: u64| x.wrapping_sub(LOW) & !x & HIGH;
    // A byte below 0x20, or equal to '"' or '\\'.
    let hit = |w: u64| {
        let control = w.wrapping_sub(LOW * 0x20) & !w & HIGH;
        control | zero_in(w ^ (LOW * u64::from(b'"'))) | zero_in(w ^ (LOW * u64::from(b'\\'))) != 0
    };
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        if hit(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]))) {
            return true;
        }
    }
    // The last one to seven bytes as one word, padded with a byte that needs no escape: a loop
    // over single bytes costs more inside wasmtime, whose time limit checks every loop turn.
    let rest = words.remainder();
    if rest.is_empty() {
        return false;
    }
    let mut last = [b'a'; 8];
    last[..rest.len()].copy_from_slice(rest);
    hit(u64::from_le_bytes(last))
}

/// Writes one JSON object member by member, leaving out absent values.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn start(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    #[inline]
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    #[inline]
    fn str(&mut self, key: &str, value: &str) {
        push_str(self.key(key), value);
    }

    #[inline]
    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    fn bool(&mut self, key: &str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
    }

    fn opt_bool(&mut self, key: &str, value: Option<bool>) {
        if let Some(value) = value {
            self.bool(key, value);
        }
    }

    fn int(&mut self, key: &str, value: impl itoa::Integer) {
        let mut digits = itoa::Buffer::new();
        let text = digits.format(value);
        self.key(key).extend_from_slice(text.as_bytes());
    }

    fn strs<'s>(&mut self, key: &str, values: impl IntoIterator<Item = &'s str>) {
        let out = self.key(key);
        out.push(b'[');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, value);
        }
        out.push(b']');
    }

    fn object(&mut self, key: &str) -> Object<'_> {
        Object::start(self.key(key))
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

fn write_principal(p: &Principal<'_>, mut o: Object<'_>) {
    o.opt_str("identity_type", p.identity_type);
    o.opt_str("principal_id", p.principal_id);
    o.opt_str("arn", p.arn);
    o.opt_str("account_id", p.account_id);
    o.opt_str("user_name", p.user_name);
    o.opt_str("access_key_id", p.access_key_id);
    o.opt_str("session_issuer_arn", p.session_issuer_arn);
    o.opt_bool("mfa_authenticated", p.mfa_authenticated);
    o.opt_str("invoked_by", p.invoked_by);
    o.end();
}

fn write_tls(t: &Tls<'_>, mut o: Object<'_>) {
    o.opt_str("tls_version", t.tls_version);
    o.opt_str("cipher_suite", t.cipher_suite);
    o.opt_str("client_provided_host_header", t.client_provided_host_header);
    o.end();
}

/// Appends the head of the document of `event`, read from the object `key`: every member up to
/// and including `origin`, the object left open for members the host adds (each written as
/// `,"name":value`) before [`write_tail`].
pub fn write_head<T: AsRef<str>>(out: &mut Vec<u8>, event: &Event<'_, T>, key: &str) {
    out.reserve(event.raw.len() + 1024);
    let mut o = Object::start(out);
    o.str("kind", "event");
    o.int("schema_version", SCHEMA_VERSION);
    o.opt_str("event_id", event.event_id);
    o.opt_str("event_time", event.event_time);
    if let Some(ms) = event.event_time_ms {
        o.int("event_time_ms", ms);
    }
    o.opt_str("event_version", event.event_version);
    o.opt_str("event_source", event.event_source);
    o.opt_str("event_name", event.event_name);
    o.str("service", event.service);
    o.str("action", event.action);
    o.str("metric", event.metric);
    o.strs("flags", flag_names(event.flags));
    o.bool("read_only", event.read_only);
    o.bool("read_only_derived", event.read_only_derived);
    o.str("event_category", event.event_category);
    o.opt_str("event_type", event.event_type);
    o.opt_str("region", event.region);
    o.opt_str("recipient_account_id", event.recipient_account_id);
    if let Some(p) = &event.principal {
        write_principal(p, o.object("principal"));
    }
    o.opt_str("source_address", event.source_address);
    o.str("source_kind", event.source_kind);
    o.opt_str("user_agent", event.user_agent);
    o.opt_str("error_code", event.error_code);
    o.opt_str("error_message", event.error_message);
    o.str("outcome", event.outcome);
    o.opt_str("request_id", event.request_id);
    o.opt_str("shared_event_id", event.shared_event_id);
    if !event.resources.is_empty() {
        o.strs("resources", event.resources.iter().map(AsRef::as_ref));
    }
    if let Some(t) = &event.tls {
        write_tls(t, o.object("tls"));
    }
    if !event.problems.is_empty() {
        o.strs("problems", event.problems.iter().map(String::as_str));
    }
    let mut origin = o.object("origin");
    origin.str("key", key);
    origin.int("index", event.index);
    origin.end();
}

/// Appends the tail of a document: the raw record as the `raw` member (embedded as JSON when it
/// is valid JSON, as a string otherwise), the closing brace and the newline. `flagged` says the
/// record had problems: a record read without problems is valid JSON (the plugin validated it);
/// one with problems may not be, so only those are checked again here, with the nesting limit a
/// downstream JSON parser would have: a record too deep to parse is written as a string rather
/// than handed to every consumer as a nesting bomb.
pub fn write_tail(out: &mut Vec<u8>, raw: &str, flagged: bool) {
    if !raw.is_empty() {
        let valid = !flagged || serde_json::from_str::<serde_json::Value>(raw).is_ok();
        out.extend_from_slice(b",\"raw\":");
        if !valid {
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, raw);
        } else if memchr::memchr2(b'\n', b'\r', raw.as_bytes()).is_some() {
            // In valid JSON a newline can only be whitespace between tokens.
            out.extend(raw.bytes().map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
        } else {
            out.extend_from_slice(raw.as_bytes());
        }
    }
    out.extend_from_slice(b"}\n");
}

/// The severity of a score: `critical` from 90, `high` from 75, `medium` from 50, else `low`.
pub fn severity(score: u8) -> &'static str {
    match score {
        90.. => "critical",
        75.. => "high",
        50.. => "medium",
        _ => "low",
    }
}

/// One reason of an event's score (`schema/event.schema.json`, `reasons`).
#[derive(Debug, Clone, Copy)]
pub struct Reason<'a> {
    pub code: &'a str,
    pub text: &'a str,
    pub points: u8,
}

/// An event's score, as its document shows it.
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a, R> {
    /// Empty for events no identity made.
    pub identity: &'a str,
    pub score: u8,
    pub anomalous: bool,
    pub reasons: R,
    /// The incident the event belongs to, once reported.
    pub incident: Option<&'a str>,
}

/// Appends an event's score members to its document's head: `identity` (when it has one),
/// `score`, `anomalous`, `severity` (anomalous events only), `reasons` and `incident` (once the
/// incident it belongs to is reported). Strings are escaped as serde_json escapes them.
pub fn write_verdict<'r, R: IntoIterator<Item = Reason<'r>>>(out: &mut Vec<u8>, v: Verdict<'_, R>) {
    if !v.identity.is_empty() {
        out.extend_from_slice(b",\"identity\":");
        push_str(out, v.identity);
    }
    out.extend_from_slice(b",\"score\":");
    out.extend_from_slice(itoa::Buffer::new().format(v.score).as_bytes());
    if v.anomalous {
        out.extend_from_slice(b",\"anomalous\":true,\"severity\":\"");
        out.extend_from_slice(severity(v.score).as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(b",\"anomalous\":false");
    }
    out.extend_from_slice(b",\"reasons\":[");
    for (i, r) in v.reasons.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"code\":");
        push_str(out, r.code);
        out.extend_from_slice(b",\"text\":");
        push_str(out, r.text);
        out.extend_from_slice(b",\"points\":");
        out.extend_from_slice(itoa::Buffer::new().format(r.points).as_bytes());
        out.push(b'}');
    }
    out.push(b']');
    if let Some(id) = v.incident {
        out.extend_from_slice(b",\"incident\":");
        push_str(out, id);
    }
}

#[cfg(test)]
mod tests {
    use super::needs_escape;

    #[test]
    fn a_verdict_is_written_as_serde_json_writes_its_members() {
        use super::{write_verdict, Reason, Verdict};
        let texts = [
            "",
            "plain",
            "a \"quote\" and \\ backslash",
            "line\nbreak\u{1}",
            "é ü 日本 \u{1F600}",
            "\u{7f}\u{80}",
        ];
        for (i, text) in texts.iter().enumerate() {
            for anomalous in [false, true] {
                let reasons: Vec<Reason<'_>> = texts[..i]
                    .iter()
                    .map(|t| Reason {
                        code: t,
                        text,
                        points: i as u8 * 40,
                    })
                    .collect();
                let incident = (i % 2 == 1).then_some(*text);
                let score = [0u8, 49, 50, 75, 90, 100][i];
                let mut out = Vec::new();
                write_verdict(
                    &mut out,
                    Verdict {
                        identity: text,
                        score,
                        anomalous,
                        reasons: reasons.iter().copied(),
                        incident,
                    },
                );
                // The members as serde_json writes each value, in the documented order.
                let json = |t: &str| serde_json::to_string(t).unwrap();
                let mut expected = String::new();
                if !text.is_empty() {
                    expected += &format!(",\"identity\":{}", json(text));
                }
                expected += &format!(",\"score\":{score},\"anomalous\":{anomalous}");
                if anomalous {
                    expected += &format!(",\"severity\":{}", json(super::severity(score)));
                }
                let reasons: Vec<String> = reasons
                    .iter()
                    .map(|r| {
                        format!(
                            "{{\"code\":{},\"text\":{},\"points\":{}}}",
                            json(r.code),
                            json(r.text),
                            r.points
                        )
                    })
                    .collect();
                expected += &format!(",\"reasons\":[{}]", reasons.join(","));
                if let Some(id) = incident {
                    expected += &format!(",\"incident\":{}", json(id));
                }
                assert_eq!(String::from_utf8(out).unwrap(), expected);
            }
        }
    }

    #[test]
    fn needs_escape_is_the_byte_definition_at_every_length_and_position() {
        let by_byte = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        for len in 0..40 {
            let plain = vec![b'x'; len];
            assert!(!needs_escape(&plain), "len {len}");
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f, 0x20, b'a', 0x7f, 0x80, 0xff] {
                    let mut text = plain.clone();
                    text[at] = special;
                    assert_eq!(needs_escape(&text), by_byte(&text), "len {len}, {special:#x} at {at}");
                }
            }
        }
    }
}
