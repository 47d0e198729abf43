//! `replay` over the shared corpus of real CloudTrail events from public sources: no crash, no
//! lost or uncategorized event, digest and Insight files recognized.

mod common;

use std::path::PathBuf;

fn corpus() -> PathBuf {
    let dir = common::root().join("../shared/corpus");
    assert!(
        dir.is_dir(),
        "the shared corpus is expected at {} (CI lays it beside the repo)",
        dir.display()
    );
    dir
}

/// Event names in the corpus that name no action: Grafana's audit records carry a literal
/// `action`, an SSO portal record carries the URL it called, and one detection-rule fixture
/// carries a made-up `NotCreateUser`.
fn names_no_action(service: &str, name: &str) -> bool {
    matches!((service, name), ("grafana", "action") | ("iam", "NotCreateUser"))
        || (service == "sso" && name.starts_with("https://"))
}

#[test]
fn replay_over_the_corpus_reads_everything_and_categorizes_every_event() {
    let dir = corpus();
    let summary_path = tempfile::NamedTempFile::new().unwrap();
    let out = common::replay(&[
        "--summary-json",
        summary_path.path().to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(summary_path.path()).unwrap()).unwrap();

    // Nothing lost: every event of the corpus's one-event-per-line copies comes out.
    let mut expected = 0;
    for source in std::fs::read_dir(&dir).unwrap() {
        let jsonl = source.unwrap().path().join("events.jsonl");
        if jsonl.exists() {
            expected += std::fs::read_to_string(&jsonl)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count();
        }
    }
    let documents = common::lines(&out.stdout);
    let events: Vec<_> = documents.iter().filter(|d| d["kind"] == "event").collect();
    assert_eq!(events.len(), expected, "{stderr}");
    // Everything else is an incident, counted in the summary.
    assert_eq!(
        (documents.len() - events.len()) as u64,
        summary["incidents"].as_u64().unwrap(),
        "{stderr}"
    );
    assert_eq!(summary["events"], expected);

    for e in &events {
        let metric = e["metric"].as_str().unwrap();
        let parts: Vec<&str> = metric.split('.').collect();
        assert!(
            parts.len() == 3 && parts[0] == "aws" && !parts[1].is_empty() && !parts[2].is_empty(),
            "{metric}"
        );
        if e.get("event_source").is_some() {
            assert_ne!(parts[1], "unknown", "an event with an eventSource has a service: {e}");
        }
        // A known service with an action no rule names is a gap in the tables, except for the
        // few records whose name is not an API action at all.
        let name = e["event_name"].as_str().unwrap_or("");
        if parts[1] != "unknown" && parts[2] == "other" && !names_no_action(parts[1], name) {
            panic!("{}: {name} has no action", parts[1]);
        }
    }

    let mut digests = 0;
    let mut insights = 0;
    for f in summary["per_file"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        assert!(f["failure"].is_null(), "{path}: {}", f["failure"]);
        if path.contains("/CloudTrail-Digest/") {
            assert_eq!(f["kind"], "digest", "{path}");
            digests += 1;
        } else if path.contains("/CloudTrail-Insight/") {
            assert_eq!(f["kind"], "insight", "{path}");
            insights += 1;
        } else {
            assert_eq!(f["kind"], "log", "{path}");
        }
    }
    assert!(digests >= 1 && insights >= 1, "the corpus has digest and Insight files");
}
