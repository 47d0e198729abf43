//! The service segment of a metric name, derived from `eventSource`.

/// The service named by `source` ("ec2.amazonaws.com" → "ec2"), or `fallback` when there is none.
///
/// Only the part before the first dot counts. The result is lowercase and keeps only
/// `[a-z0-9_]`: dashes and spaces become one underscore ("sso-directory" → "sso_directory",
/// "AWS Internal" → "aws_internal") so that metric names stay clean whatever a log contains.
pub(super) fn from_source(source: Option<&str>, fallback: &str) -> String {
    let head = source.and_then(|source| source.split('.').next()).unwrap_or("");
    let mut name = String::with_capacity(head.len().max(fallback.len()));
    for byte in head.bytes() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' => name.push(char::from(byte)),
            b'A'..=b'Z' => name.push(char::from(byte.to_ascii_lowercase())),
            b'_' | b'-' | b' ' if !name.is_empty() && !name.ends_with('_') => name.push('_'),
            _ => {}
        }
    }
    while name.ends_with('_') {
        name.pop();
    }
    if name.is_empty() {
        name.push_str(fallback);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::from_source;

    fn service(source: &str) -> String {
        from_source(Some(source), "unknown")
    }

    #[test]
    fn amazonaws_suffix_is_dropped() {
        assert_eq!(service("ec2.amazonaws.com"), "ec2");
        assert_eq!(service("signin.amazonaws.com"), "signin");
        assert_eq!(service("monitoring.amazonaws.com"), "monitoring");
    }

    #[test]
    fn dashes_become_underscores() {
        assert_eq!(service("sso-directory.amazonaws.com"), "sso_directory");
        assert_eq!(service("access-analyzer.amazonaws.com"), "access_analyzer");
    }

    #[test]
    fn odd_sources_are_reduced_to_clean_names() {
        assert_eq!(service("AWS Internal"), "aws_internal");
        assert_eq!(service("  S3.AmazonAWS.com"), "s3");
        assert_eq!(service("a--b  c"), "a_b_c");
        assert_eq!(service("-x-"), "x");
        assert_eq!(service("ünïcode.amazonaws.com"), "ncode");
    }

    #[test]
    fn nothing_usable_falls_back() {
        assert_eq!(from_source(None, "unknown"), "unknown");
        assert_eq!(service(".amazonaws.com"), "unknown");
        assert_eq!(service("***"), "unknown");
        assert_eq!(from_source(None, "cloudtrail"), "cloudtrail");
    }
}
