//! `memcmp` and `bcmp` eight bytes at a time.
//!
//! On wasm32 these come from the compiler's builtins, which compare one byte per loop turn.
//! Every `==` on keys and names and every `match` on a string calls them, and inside wasmtime
//! each turn of a loop also pays the time limit's epoch check: measured, `memcmp` took ~2 % of
//! `replay`, half of it in those checks. The plugin's own definitions replace the builtins'.

/// The order of `a` against `b` as `memcmp` gives it: negative, zero or positive.
pub fn compare(a: &[u8], b: &[u8]) -> i32 {
    let n = a.len().min(b.len());
    let word = |s: &[u8], at: usize| u64::from_be_bytes(s[at..at + 8].try_into().unwrap_or([0; 8]));
    let mut i = 0;
    while i + 8 <= n {
        let (x, y) = (word(a, i), word(b, i));
        if x != y {
            return if x < y { -1 } else { 1 };
        }
        i += 8;
    }
    if n >= 8 && i < n {
        // The last eight bytes, overlapping the ones already found equal.
        let (x, y) = (word(a, n - 8), word(b, n - 8));
        if x != y {
            return if x < y { -1 } else { 1 };
        }
        i = n;
    }
    if n < 8 && n >= 4 {
        // The first and the last four bytes, which may overlap.
        let half = |s: &[u8], at: usize| u32::from_be_bytes(s[at..at + 4].try_into().unwrap_or([0; 4]));
        for at in [0, n - 4] {
            let (x, y) = (half(a, at), half(b, at));
            if x != y {
                return if x < y { -1 } else { 1 };
            }
        }
        i = n;
    }
    while i < n {
        if a[i] != b[i] {
            return i32::from(a[i]) - i32::from(b[i]);
        }
        i += 1;
    }
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }
}

#[cfg(target_arch = "wasm32")]
mod exports {
    /// # Safety
    /// `a` and `b` are valid for reads of `n` bytes, as C's `memcmp` requires.
    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        if n == 0 {
            return 0;
        }
        // SAFETY: the caller's contract above.
        let (a, b) = unsafe { (std::slice::from_raw_parts(a, n), std::slice::from_raw_parts(b, n)) };
        super::compare(a, b)
    }

    /// # Safety
    /// As `memcmp`.
    #[no_mangle]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: the same contract.
        unsafe { memcmp(a, b, n) }
    }
}

#[cfg(test)]
mod tests {
    use super::compare;

    #[test]
    fn orders_as_slices_do() {
        let texts: Vec<Vec<u8>> = [
            &b""[..],
            b"a",
            b"b",
            b"ab",
            b"abcdefg",
            b"abcdefgh",
            b"abcdefgi",
            b"abcdefghi",
            b"abcdefghijklmnop",
            b"abcdefghijklmnoq",
            b"abcdefghXjklmnop",
            b"\xff",
            b"\x00\xff",
            b"eventName",
            b"eventNamf",
            b"Describe",
            b"DescribeInstances",
            b"describe",
        ]
        .iter()
        .map(|t| t.to_vec())
        .collect();
        for a in &texts {
            for b in &texts {
                assert_eq!(compare(a, b).signum(), a.cmp(b) as i32, "{a:?} vs {b:?}");
            }
        }
        // Every position of a single difference in equal-length texts.
        for len in 1..40 {
            let base = vec![b'k'; len];
            for at in 0..len {
                let mut other = base.clone();
                other[at] = b'l';
                assert_eq!(compare(&base, &other), -1, "len {len}, at {at}");
                assert_eq!(compare(&other, &base), 1, "len {len}, at {at}");
                assert_eq!(compare(&other, &other.clone()), 0);
            }
        }
    }
}
