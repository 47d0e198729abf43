//! APIs that run a statement (DynamoDB's PartiQL, the Redshift Data API): read or write by the
//! statement's first keyword, since the name says only "Execute".
//!
//! A call reads when every statement it logged starts with a reading keyword (`SELECT`, `WITH`,
//! `SHOW`, `DESCRIBE`, `EXPLAIN`, or PartiQL's `EXISTS`), and changes something otherwise, or
//! when no statement is in the request (CloudTrail may leave it out).

use serde_json::Value;

use super::Action::{self, Modify, Read};

/// Keys that hold a statement's text (or a list of them), compared ignoring ASCII case.
const STATEMENT_KEYS: &[&str] = &["sql", "sqls", "statement"];

/// First keywords of a statement that only reads.
const READING: &[&str] = &["DESCRIBE", "EXISTS", "EXPLAIN", "SELECT", "SHOW", "WITH"];

/// The action of `name` of `service` when it runs statements; `None` for other APIs.
pub(super) fn action(service: &str, name: &str, params: Option<&str>) -> Option<Action> {
    let runs_statements = match service {
        "dynamodb" => matches!(
            name,
            "BatchExecuteStatement" | "ExecuteStatement" | "ExecuteTransaction"
        ),
        "redshift_data" => matches!(name, "BatchExecuteStatement" | "ExecuteStatement"),
        _ => false,
    };
    if !runs_statements {
        return None;
    }
    // These APIs are rare next to item reads and writes: parsing their request costs little.
    let Some(Ok(params)) = params.map(serde_json::from_str::<Value>) else {
        return Some(Modify);
    };
    let mut statements = Vec::new();
    collect(&params, &mut statements);
    let read = !statements.is_empty() && statements.iter().all(|s| reads(s));
    Some(if read { Read } else { Modify })
}

/// Every statement text in `value`, at any depth.
fn collect<'a>(value: &'a Value, into: &mut Vec<&'a str>) {
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                let holds = STATEMENT_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k));
                match member {
                    Value::String(text) if holds => into.push(text),
                    Value::Array(items) if holds => {
                        into.extend(items.iter().filter_map(Value::as_str));
                        items.iter().for_each(|item| collect(item, into));
                    }
                    other => collect(other, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect(item, into)),
        _ => {}
    }
}

/// Whether a statement's first word is a reading keyword.
fn reads(statement: &str) -> bool {
    let word: String = statement
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    READING.iter().any(|keyword| word.eq_ignore_ascii_case(keyword))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn keywords_are_sorted() {
        assert_strictly_sorted("READING", READING);
        assert_strictly_sorted("STATEMENT_KEYS", STATEMENT_KEYS);
    }

    #[test]
    fn statements_decide_read_or_write() {
        let select = r#"{"statement":"SELECT * FROM \"orders\" WHERE id = ?"}"#;
        assert_eq!(action("dynamodb", "ExecuteStatement", Some(select)), Some(Read));
        let update = r#"{"statement":"UPDATE \"orders\" SET s = 'x' WHERE id = ?"}"#;
        assert_eq!(action("dynamodb", "ExecuteStatement", Some(update)), Some(Modify));
        let batch = r#"{"statements":[{"statement":"select a from t"},{"statement":"DELETE FROM t WHERE a = 1"}]}"#;
        assert_eq!(action("dynamodb", "BatchExecuteStatement", Some(batch)), Some(Modify));
        let reads = r#"{"statements":[{"statement":"SELECT a FROM t"},{"statement":" (SELECT b FROM u)"}]}"#;
        assert_eq!(action("dynamodb", "BatchExecuteStatement", Some(reads)), Some(Read));
        let sql = r#"{"database":"dev","sql":"with x as (select 1) select * from x"}"#;
        assert_eq!(action("redshift_data", "ExecuteStatement", Some(sql)), Some(Read));
        let sqls = r#"{"database":"dev","sqls":["select 1","insert into t values (1)"]}"#;
        assert_eq!(
            action("redshift_data", "BatchExecuteStatement", Some(sqls)),
            Some(Modify)
        );
    }

    #[test]
    fn without_a_statement_it_is_a_change_and_other_apis_are_not_decided() {
        assert_eq!(action("dynamodb", "ExecuteStatement", None), Some(Modify));
        assert_eq!(
            action("dynamodb", "ExecuteStatement", Some(r#"{"limit":1}"#)),
            Some(Modify)
        );
        assert_eq!(action("dynamodb", "GetItem", Some("{}")), None);
        assert_eq!(action("rds_data", "ExecuteStatement", Some("{}")), None);
    }
}
