//! The `failed` and `denied` flags, from `errorCode`.
//!
//! Any error code means the call failed. It was denied when AWS refused the caller: an
//! authorization failure (`AccessDenied`, `UnauthorizedOperation`, ...) or an authentication
//! failure (`InvalidClientTokenId`, `SignatureDoesNotMatch`, ...), since both are what a probing
//! attacker produces. Neither changes the primary action.

use super::table;
use super::Flags;

/// Codes that deny the caller, without a `Client.`/`Server.` prefix; sorted. Codes containing
/// `AccessDenied` or `Unauthorized` are denials too and need no entry.
const DENIALS: &[&str] = &[
    "AuthFailure",
    "AuthorizationError",
    "Forbidden",
    "ForbiddenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "MissingAuthenticationToken",
    "NotAuthorized",
    "NotAuthorizedException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
];

/// Flags with `failed` and `denied` set from an error code (already stripped of `null`).
pub(super) fn flags(error_code: Option<&str>) -> Flags {
    let Some(code) = error_code else {
        return Flags::default();
    };
    Flags {
        failed: true,
        denied: is_denial(code),
        ..Flags::default()
    }
}

fn is_denial(code: &str) -> bool {
    let bare = code
        .strip_prefix("Client.")
        .or_else(|| code.strip_prefix("Server."))
        .unwrap_or(code);
    crate::text::has(bare, "AccessDenied") || crate::text::has(bare, "Unauthorized") || table::contains(DENIALS, &bare)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn list_is_sorted_without_duplicates() {
        assert_strictly_sorted("outcome::DENIALS", DENIALS);
    }

    #[test]
    fn no_error_code_is_success() {
        assert_eq!(flags(None), Flags::default());
    }

    #[test]
    fn any_error_code_is_a_failure() {
        let throttled = flags(Some("ThrottlingException"));
        assert!(throttled.failed);
        assert!(!throttled.denied);
    }

    #[test]
    fn refusals_are_denials() {
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "Client.UnauthorizedOperation",
            "UnauthorizedAccess",
            "AuthFailure",
            "Client.AuthFailure",
            "Forbidden",
            "InvalidClientTokenId",
            "NotAuthorized",
            "KMS.AccessDeniedException",
        ] {
            let found = flags(Some(code));
            assert!(found.failed && found.denied, "{code}");
        }
    }
}
