//! Lookups in the static tables of this module.
//!
//! Tables are slices sorted by key and searched by bisection: no hashing, no start-up cost and
//! about ten comparisons for the largest table. A test in each table's file checks the order.

/// The value stored under `key` in a table sorted by key.
pub(super) fn lookup<K: Ord, V: Copy>(table: &[(K, V)], key: &K) -> Option<V> {
    table
        .binary_search_by(|(candidate, _)| candidate.cmp(key))
        .ok()
        .map(|at| table[at].1)
}

/// Whether `key` is in a sorted list.
pub(super) fn contains<K: Ord>(list: &[K], key: &K) -> bool {
    list.binary_search(key).is_ok()
}

/// Panics with the offending pair unless the keys are strictly increasing (sorted, no duplicates).
#[cfg(test)]
pub(super) fn assert_strictly_sorted<K: Ord + std::fmt::Debug>(what: &str, keys: &[K]) {
    for pair in keys.windows(2) {
        assert!(
            pair[0] < pair[1],
            "{what}: {:?} must come before {:?} and appear once",
            pair[0],
            pair[1]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{assert_strictly_sorted, contains, lookup};

    #[test]
    fn lookup_finds_every_key_and_nothing_else() {
        let table = [("a", 1), ("b", 2), ("d", 4)];
        assert_eq!(lookup(&table, &"a"), Some(1));
        assert_eq!(lookup(&table, &"d"), Some(4));
        assert_eq!(lookup(&table, &"c"), None);
        assert!(contains(&["x", "y"], &"y"));
        assert!(!contains(&["x", "y"], &"z"));
    }

    #[test]
    #[should_panic(expected = "must come before")]
    fn duplicates_are_rejected() {
        assert_strictly_sorted("dup", &["a", "a"]);
    }
}
