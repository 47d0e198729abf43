//! The output documents against their JSON Schema (`schema/event.schema.json`), validated by a
//! real validator (Python's `jsonschema`, draft 2020-12): every fixture replayed (odd shapes, bad
//! records, digests, Insights), and `run`'s documents with their delivery record.

mod common;

use std::path::Path;

use common::moto::{self, Moto};

fn validate(file: &Path) {
    common::validate_documents(file);
}

#[test]
fn every_replayed_fixture_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.ndjson");
    let fixtures = common::root().join("tests/fixtures/logs");
    let result = common::replay(&["--output", out.to_str().unwrap(), fixtures.to_str().unwrap()]);
    // Some fixtures are bad on purpose: the exit code says so, the documents are still written.
    assert!(
        result.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines = text.lines().count();
    assert!(lines > 50, "{lines} documents");
    assert!(
        text.lines().any(|l| l.starts_with("{\"kind\":\"incident\"")),
        "the fixtures make incidents"
    );
    validate(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_documents_with_their_delivery_record_match_the_schema() {
    let moto = Moto::start();
    let files: Vec<moto::LogFile> = (0..3)
        .map(|f| {
            moto::log_file(
                "",
                "111122223333",
                "us-east-1",
                "2024-03-01",
                &format!("010{f}"),
                &format!("v{f}"),
                7,
            )
        })
        .collect();
    moto::seed(&moto.client("AKIDTEST", "secret"), "trail-bucket", &files).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.ndjson");
    let config = dir.path().join("trailwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[aws]\nendpoint_url = \"{}\"\naccess_key_id = \"AKIDTEST\"\nsecret_access_key = \"secret\"\n\n\
             [source]\nbucket = \"trail-bucket\"\nstart = \"2024-03-01\"\n\n[delete]\nenabled = false\n\n\
             [state]\ndir = \"{}\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            moto.url,
            dir.path().join("state").display(),
            out.display()
        ),
    )
    .unwrap();
    let result = common::bin()
        .arg("--config")
        .arg(&config)
        .arg("--plugin-dir")
        .arg(common::plugin_dir())
        .arg("--cache-dir")
        .arg(common::cache_dir())
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert_eq!(
        result.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    // The start-up trail check's findings come first (moto has no trail at all, the
    // bucket is read as configured), then the events; each kind against its own schema.
    let text = std::fs::read_to_string(&out).unwrap();
    let (findings, events): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with("{\"kind\":\"finding\""));
    let docs = common::lines(events.join("\n").as_bytes());
    assert_eq!(docs.len(), 21);
    assert!(docs
        .iter()
        .all(|d| d["delivery"].is_object() && d["kind"] == "event" && d["schema_version"] == 1));
    // `run` scores every event (into its state store).
    assert!(
        docs.iter().all(|d| d["score"].is_u64() && d["reasons"].is_array()),
        "{}",
        events[0]
    );
    assert!(dir.path().join("state/state.redb").exists());
    let codes: Vec<String> = common::lines(findings.join("\n").as_bytes())
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, vec!["no-trail"]);
    assert!(text.starts_with("{\"kind\":\"finding\""), "findings before events");
    for (lines, schema) in [(&events, "event.schema.json"), (&findings, "finding.schema.json")] {
        let file = dir.path().join(schema).with_extension("ndjson");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        common::validate_schema(schema, &file);
    }
}
