//! Whether a request carries a resource policy that lets everyone in.
//!
//! A wildcard principal alone says little: most bucket policies deny `"Principal": "*"` anything
//! without TLS. So this one probe parses JSON, and only after a substring gate has seen both a
//! principal and a `*`, which keeps it off the hot path. A statement lets everyone in when it
//! allows, names `*` as principal (or uses `NotPrincipal`) and has no condition on who the caller
//! is or where the call comes from (an organization, an account, a source ARN, a VPC endpoint,
//! an IP range).

use serde_json::Value;

/// Condition keys that restrict the caller, lowercase.
const CALLER_CONDITIONS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalservicename",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceip",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourceowner",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:userid",
    "kms:calleraccount",
    "s3:dataaccesspointaccount",
    "s3:dataaccesspointarn",
];

/// How deep policies embedded as strings inside strings are followed.
const MAX_EMBEDDING: u8 = 4;

/// Whether the request parameters hold a policy with a statement that lets everyone in.
pub(super) fn allows_everyone(params: &str) -> bool {
    if !(crate::text::has(params, "rincipal") && params.contains('*')) {
        return false;
    }
    serde_json::from_str::<Value>(params).is_ok_and(|value| value_allows(&value, 0))
}

/// Searches a value for policy statements, following policies embedded as JSON strings.
fn value_allows(value: &Value, embedding: u8) -> bool {
    match value {
        Value::Object(fields) => {
            fields.get("Statement").is_some_and(statements_allow)
                || fields.values().any(|field| value_allows(field, embedding))
        }
        Value::Array(items) => items.iter().any(|item| value_allows(item, embedding)),
        Value::String(text) if embedding < MAX_EMBEDDING && looks_like_policy(text) => {
            serde_json::from_str::<Value>(text).is_ok_and(|inner| value_allows(&inner, embedding + 1))
        }
        _ => false,
    }
}

/// A string worth parsing: a JSON object that mentions a principal.
fn looks_like_policy(text: &str) -> bool {
    text.trim_start().starts_with('{') && crate::text::has(text, "rincipal")
}

/// `Statement` is one statement or a list of them.
fn statements_allow(statements: &Value) -> bool {
    match statements {
        Value::Array(items) => items.iter().any(statement_allows_everyone),
        single => statement_allows_everyone(single),
    }
}

/// An `Allow` statement for every principal with no condition on the caller.
fn statement_allows_everyone(statement: &Value) -> bool {
    let Some(fields) = statement.as_object() else {
        return false;
    };
    let allows = fields
        .get("Effect")
        .and_then(Value::as_str)
        .is_some_and(|effect| effect.eq_ignore_ascii_case("Allow"));
    let everyone = fields.get("Principal").is_some_and(is_wildcard) || fields.contains_key("NotPrincipal");
    allows && everyone && !fields.get("Condition").is_some_and(restricts_caller)
}

/// `"*"`, `{"AWS": "*"}`, `{"AWS": ["*", ...]}` and the like.
fn is_wildcard(principal: &Value) -> bool {
    match principal {
        Value::String(text) => text.trim() == "*",
        Value::Array(items) => items.iter().any(is_wildcard),
        Value::Object(fields) => fields.values().any(is_wildcard),
        _ => false,
    }
}

/// A condition block (`{"Operator": {"key": value}}`) with a key that restricts the caller. An
/// `IpAddress` condition on `aws:SourceIp` that admits every address (`0.0.0.0/0`, `::/0`)
/// restricts nothing.
fn restricts_caller(condition: &Value) -> bool {
    let Some(operators) = condition.as_object() else {
        return false;
    };
    operators
        .iter()
        .filter_map(|(operator, keys)| Some((operator, keys.as_object()?)))
        .flat_map(|(operator, keys)| keys.iter().map(move |(key, value)| (operator, key, value)))
        .any(|(operator, key, value)| {
            CALLER_CONDITIONS.iter().any(|known| key.eq_ignore_ascii_case(known))
                && !(key.eq_ignore_ascii_case("aws:sourceip") && admits_every_address(operator, value))
        })
}

/// An address condition that lets every source in: `IpAddress` (not `NotIpAddress`) with the
/// whole IPv4 or IPv6 space among its ranges.
fn admits_every_address(operator: &str, ranges: &Value) -> bool {
    let operator = operator.to_ascii_lowercase();
    let whole = |range: &Value| range.as_str().is_some_and(|r| matches!(r.trim(), "0.0.0.0/0" | "::/0"));
    operator.contains("ipaddress")
        && !operator.contains("notipaddress")
        && match ranges {
            Value::Array(items) => items.iter().any(whole),
            single => whole(single),
        }
}

#[cfg(test)]
mod tests {
    use super::allows_everyone;

    #[test]
    fn public_bucket_policy_allows_everyone() {
        let params = r#"{"bucketName":"b","bucketPolicy":{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}}"#;
        assert!(allows_everyone(params));
        let aws_star = params.replace(r#""Principal":"*""#, r#""Principal":{"AWS":["*"]}"#);
        assert!(allows_everyone(&aws_star));
    }

    #[test]
    fn deny_with_wildcard_principal_is_not_public() {
        let params = r#"{"bucketPolicy":{"Statement":[{"Effect":"Deny","Principal":"*",
            "Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}}"#;
        assert!(!allows_everyone(params));
    }

    #[test]
    fn caller_conditions_make_a_wildcard_private() {
        let params = r#"{"bucketPolicy":{"Statement":{"Effect":"Allow","Principal":"*",
            "Action":"s3:GetObject","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}}}"#;
        assert!(!allows_everyone(params));
    }

    #[test]
    fn a_source_address_condition_open_to_every_address_restricts_nothing() {
        let world = r#"{"policy":{"Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"s3:GetObject","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","0.0.0.0/0"]}}}]}}"#;
        assert!(allows_everyone(world));
        let v6 = r#"{"policy":{"Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"s3:GetObject","Condition":{"IpAddress":{"aws:SourceIp":"::/0"}}}]}}"#;
        assert!(allows_everyone(v6));
        let office = r#"{"policy":{"Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"s3:GetObject","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}}"#;
        assert!(!allows_everyone(office));
        let none = r#"{"policy":{"Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"s3:GetObject","Condition":{"NotIpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}]}}"#;
        assert!(!allows_everyone(none));
    }

    #[test]
    fn policies_embedded_as_strings_are_read() {
        let params = r#"{"keyId":"k","policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"*\"},\"Action\":\"kms:*\"}]}"}"#;
        assert!(allows_everyone(params));
    }

    #[test]
    fn named_principals_and_broken_json_are_not_public() {
        let params =
            r#"{"policy":{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"*"}]}}"#;
        assert!(!allows_everyone(params));
        assert!(!allows_everyone(
            r#"{"policy":{"Statement":[{"Effect":"Allow","Principal":"*""#
        ));
    }
}
