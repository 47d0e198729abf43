//! Finding documents (`kind` = `finding`, `schema/finding.schema.json`): the trail check's and
//! log-file integrity validation's, one shape for both.

use serde::Serialize;

/// One field and what it said.
#[derive(Serialize)]
pub struct Evidence<'a> {
    pub field: &'a str,
    pub value: &'a str,
}

/// A finding document, members in the schema's order.
#[derive(Serialize)]
pub struct FindingDocument<'a> {
    pub kind: &'static str,
    pub code: &'a str,
    pub severity: &'static str,
    pub trail: Option<&'a str>,
    pub message: &'a str,
    pub evidence: Vec<Evidence<'a>>,
    pub controls: Vec<&'a str>,
    pub fix: Option<serde_json::Value>,
    pub region: &'a str,
    pub chosen_trail: Option<&'a str>,
    pub checked_at_ms: i64,
    /// Integrity findings: the digest or log file it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<&'a str>,
}

impl FindingDocument<'_> {
    /// One JSON line without its newline.
    pub fn line(&self) -> String {
        // Plain data: serializing it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
