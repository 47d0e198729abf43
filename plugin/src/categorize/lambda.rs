//! The write APIs of Lambda, and the API-version suffix Lambda appends to event names.
//!
//! Adding or removing a permission on a function or layer is a permission change (with principal
//! `*` it is network exposure, and so is a function URL without authentication; both decided in
//! [`super::exposure`]). Invocations are not configuration writes: they go to the verb rules
//! and, as data events, count as data writes.

use super::table;
use super::Action::{self, Create, Delete, Modify, Permissions};

/// Lambda write API (without version suffix) → action, sorted by name.
const WRITES: &[(&str, Action)] = &[
    ("AddLayerVersionPermission", Permissions),
    ("AddPermission", Permissions),
    ("CreateAlias", Create),
    ("CreateCodeSigningConfig", Create),
    ("CreateEventSourceMapping", Create),
    ("CreateFunction", Create),
    ("CreateFunctionUrlConfig", Create),
    ("DeleteAlias", Delete),
    ("DeleteCodeSigningConfig", Delete),
    ("DeleteEventSourceMapping", Delete),
    ("DeleteFunction", Delete),
    ("DeleteFunctionCodeSigningConfig", Modify),
    ("DeleteFunctionConcurrency", Modify),
    ("DeleteFunctionEventInvokeConfig", Modify),
    ("DeleteFunctionUrlConfig", Delete),
    ("DeleteLayerVersion", Delete),
    ("DeleteProvisionedConcurrencyConfig", Modify),
    ("PublishLayerVersion", Create),
    ("PublishVersion", Create),
    ("PutFunctionCodeSigningConfig", Modify),
    ("PutFunctionConcurrency", Modify),
    ("PutFunctionEventInvokeConfig", Modify),
    ("PutFunctionRecursionConfig", Modify),
    ("PutProvisionedConcurrencyConfig", Modify),
    ("PutRuntimeManagementConfig", Modify),
    ("RemoveLayerVersionPermission", Permissions),
    ("RemovePermission", Permissions),
    ("TagResource", Modify),
    ("UntagResource", Modify),
    ("UpdateAlias", Modify),
    ("UpdateCodeSigningConfig", Modify),
    ("UpdateEventSourceMapping", Modify),
    ("UpdateFunctionCode", Modify),
    ("UpdateFunctionConfiguration", Modify),
    ("UpdateFunctionEventInvokeConfig", Modify),
    ("UpdateFunctionUrlConfig", Modify),
];

/// The action of a Lambda write API, or `None` for reads and unknown names.
pub(super) fn write_action(name: &str) -> Option<Action> {
    table::lookup(WRITES, &name)
}

/// `name` without a trailing API version: eight digits, optionally followed by `v` and digits
/// ("UpdateFunctionConfiguration20150331v2" → "UpdateFunctionConfiguration").
pub(super) fn strip_version(name: &str) -> &str {
    let bytes = name.as_bytes();
    let mut end = bytes.len();
    let revision_digits = trailing_digits(&bytes[..end]);
    if revision_digits > 0 && end > revision_digits && bytes[end - revision_digits - 1] == b'v' {
        end -= revision_digits + 1;
    }
    const DATE_DIGITS: usize = 8;
    if trailing_digits(&bytes[..end]) >= DATE_DIGITS && end > DATE_DIGITS {
        &name[..end - DATE_DIGITS]
    } else {
        name
    }
}

/// How many ASCII digits `bytes` ends with.
fn trailing_digits(bytes: &[u8]) -> usize {
    bytes.iter().rev().take_while(|byte| byte.is_ascii_digit()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn table_is_sorted_without_duplicates() {
        let names: Vec<_> = WRITES.iter().map(|(name, _)| *name).collect();
        assert_strictly_sorted("lambda::WRITES", &names);
    }

    #[test]
    fn api_version_suffixes_are_stripped() {
        assert_eq!(
            strip_version("UpdateFunctionConfiguration20150331v2"),
            "UpdateFunctionConfiguration"
        );
        assert_eq!(strip_version("CreateFunction20150331"), "CreateFunction");
        assert_eq!(strip_version("AddPermission20150331v2"), "AddPermission");
        assert_eq!(strip_version("GetFunction20150331v2"), "GetFunction");
        assert_eq!(strip_version("ListFunctions20150331"), "ListFunctions");
    }

    #[test]
    fn names_without_a_full_version_are_kept() {
        assert_eq!(strip_version("Invoke"), "Invoke");
        assert_eq!(strip_version("GetFunction2015v2"), "GetFunction2015v2");
        assert_eq!(strip_version("Name1234567v"), "Name1234567v");
        assert_eq!(strip_version("20150331"), "20150331");
        assert_eq!(strip_version("v2"), "v2");
        assert_eq!(strip_version(""), "");
    }
}
