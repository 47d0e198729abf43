//! Substring search tuned for what the plugin searches: short needles in short texts (ARNs,
//! event names) and now and then in a request's parameters.
//!
//! `str::contains` builds a two-way searcher on every call, which costs more than the search
//! itself in these texts; `memchr::memmem` is kept for long texts, where its setup pays off.

/// Texts up to this long are searched with a plain loop.
const SHORT: usize = 256;

/// Whether `needle` occurs in `haystack`.
pub fn has(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    match n.split_first() {
        None => true,
        Some(_) if n.len() > h.len() => false,
        Some((&first, rest)) if h.len() <= SHORT => h[..=h.len() - n.len()]
            .iter()
            .enumerate()
            .any(|(i, &b)| b == first && &h[i + 1..i + n.len()] == rest),
        Some(_) => memchr::memmem::find(h, n).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::has;

    #[test]
    fn agrees_with_contains() {
        let long = format!("{}needle{}", "x".repeat(300), "y".repeat(10));
        let texts = [
            "",
            "a",
            "ab",
            "needle",
            "needl",
            "xneedle",
            "needlex",
            "nneedle",
            "ne edle",
            long.as_str(),
        ];
        for haystack in texts {
            for needle in ["", "n", "needle", "le", "x", "needlex", "yy"] {
                assert_eq!(
                    has(haystack, needle),
                    haystack.contains(needle),
                    "{haystack:?} / {needle:?}"
                );
            }
        }
    }
}
