//! Cheap probes into the text of `requestParameters`, without parsing it.
//!
//! The text is JSON, sometimes with the interesting part embedded as an escaped JSON string, so
//! the probes accept `"key": "value"` as well as `\"key\":\"value\"`, with any whitespace around
//! the colon. The first letter of a key matches in either case ("authType" and "AuthType"),
//! because services disagree on it. A probe may be fooled by a key name inside a value; that
//! costs one wrong flag, never a wrong metric name.

/// Whether some `key` in `text` has a scalar value (or first list item) equal to `want`,
/// ignoring ASCII case.
pub(super) fn has_value(text: &str, key: &str, want: &str) -> bool {
    any_value(text, key, |value| value.eq_ignore_ascii_case(want))
}

/// Whether some `key` in `text` has a scalar value (or first list item) satisfying `test`.
pub(super) fn any_value(text: &str, key: &str, test: impl Fn(&str) -> bool) -> bool {
    value_starts(text, key).any(|at| test(scalar_at(text, at)))
}

/// Whether some `key` in `text` holds a list with the quoted item `item` ("valuesToAdd": ["all"]).
pub(super) fn list_has(text: &str, key: &str, item: &str) -> bool {
    value_starts(text, key).any(|at| {
        let rest = &text[at..];
        if !rest.starts_with('[') {
            return false;
        }
        let list = rest.find(']').map_or(rest, |end| &rest[..end]);
        contains_quoted(list, item)
    })
}

/// Whether `text` has `key` at all.
pub(super) fn has_key(text: &str, key: &str) -> bool {
    value_starts(text, key).next().is_some()
}

/// Offsets just past the colon of every `"key":` in `text`, skipping whitespace after it.
pub(super) fn value_starts<'a>(text: &'a str, key: &'a str) -> impl Iterator<Item = usize> + 'a {
    let bytes = text.as_bytes();
    // Keys are ASCII: search for all but the first letter, then compare that letter by byte.
    let (first, tail) = key.split_at(key.len().min(1));
    text.match_indices(tail).filter_map(move |(at, _)| {
        let first_at = at.checked_sub(first.len())?;
        if !bytes[first_at..at].eq_ignore_ascii_case(first.as_bytes()) {
            return None;
        }
        if first_at == 0 || bytes[first_at - 1] != b'"' {
            return None;
        }
        let mut cursor = at + tail.len();
        if bytes.get(cursor) == Some(&b'\\') {
            cursor += 1;
        }
        if bytes.get(cursor) != Some(&b'"') {
            return None;
        }
        cursor = skip_space(bytes, cursor + 1);
        if bytes.get(cursor) != Some(&b':') {
            return None;
        }
        Some(skip_space(bytes, cursor + 1))
    })
}

/// The scalar that starts at `at`: a string's contents, a bare token, or a list's first item.
pub(super) fn scalar_at(text: &str, at: usize) -> &str {
    let bytes = text.as_bytes();
    let mut start = at;
    if bytes.get(start) == Some(&b'[') {
        start = skip_space(bytes, start + 1);
    }
    if bytes.get(start) == Some(&b'\\') {
        start += 1;
    }
    let quoted = bytes.get(start) == Some(&b'"');
    if quoted {
        start += 1;
    }
    let len = bytes[start..]
        .iter()
        .position(|&byte| match byte {
            b'"' | b'\\' => true,
            b',' | b'}' | b']' => !quoted,
            _ => !quoted && byte.is_ascii_whitespace(),
        })
        .unwrap_or(bytes.len() - start);
    &text[start..start + len]
}

/// Whether `text` has `word` between quotes (plain or escaped).
fn contains_quoted(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(word).any(|(at, _)| {
        let end = at + word.len();
        at > 0 && bytes[at - 1] == b'"' && matches!(bytes.get(end), Some(b'"' | b'\\'))
    })
}

/// The first offset at or after `at` that is not ASCII whitespace.
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_with_any_spacing() {
        assert!(has_value(r#"{"authType":"NONE"}"#, "authType", "NONE"));
        assert!(has_value(r#"{ "authType" :  "NONE" }"#, "authType", "none"));
        assert!(has_value(r#"{"AuthType":"NONE"}"#, "authType", "NONE"));
        assert!(!has_value(r#"{"authType":"AWS_IAM"}"#, "authType", "NONE"));
    }

    #[test]
    fn escaped_json_strings_are_probed_too() {
        let text = r#"{"policy":"{\"Principal\":\"*\"}"}"#;
        assert!(has_value(text, "Principal", "*"));
    }

    #[test]
    fn bare_values_and_first_list_items_are_scalars() {
        assert!(has_value(r#"{"BlockPublicAcls":false}"#, "BlockPublicAcls", "false"));
        assert!(has_value(r#"{"x": true , "y":1}"#, "x", "true"));
        assert!(has_value(
            r#"{"x-amz-acl":["public-read"]}"#,
            "x-amz-acl",
            "public-read"
        ));
    }

    #[test]
    fn longer_keys_do_not_match() {
        let text = r#"{"principalOrgID":"*","myprincipal":"*"}"#;
        assert!(!has_value(text, "principal", "*"));
        assert!(!has_key(text, "principal"));
    }

    #[test]
    fn keys_inside_values_do_not_match_without_a_colon() {
        assert!(!has_value(r#"{"name":"authType","v":"NONE"}"#, "authType", "NONE"));
    }

    #[test]
    fn lists_are_searched_to_their_end() {
        let text = r#"{"valuesToAdd":["123456789012", "all"],"other":["all"]}"#;
        assert!(list_has(text, "valuesToAdd", "all"));
        assert!(!list_has(
            r#"{"valuesToAdd":["123"],"x":["all"]}"#,
            "valuesToAdd",
            "all"
        ));
        assert!(!list_has(r#"{"valuesToAdd":"all"}"#, "valuesToAdd", "all"));
    }

    #[test]
    fn truncated_text_is_harmless() {
        assert!(!has_value(r#"{"authType"#, "authType", "NONE"));
        assert!(!has_value(r#"{"authType":"#, "authType", "NONE"));
        assert!(has_value(r#"{"authType":"NONE"#, "authType", "NONE"));
        assert!(!has_value("", "", "x"));
        assert!(!has_value(r#"{"éuthType":"NONE"}"#, "authType", "NONE"));
    }
}
