//! `trailwatch replay` as a user runs it: output order, files, config errors.

mod common;

#[test]
fn output_is_the_same_whatever_the_number_of_workers() {
    let dir = common::root().join("tests/fixtures/logs");
    let one = common::replay(&["--jobs", "1", dir.to_str().unwrap()]);
    let four = common::replay(&["--jobs", "4", dir.to_str().unwrap()]);
    assert!(one.status.success() && four.status.success());
    assert!(!one.stdout.is_empty());
    assert_eq!(one.stdout, four.stdout, "deterministic output across worker counts");
    // Files in path order, each file's events in record order.
    let events = common::lines(&one.stdout);
    let keys: Vec<(String, u64)> = events
        .iter()
        .map(|e| {
            (
                e["origin"]["key"].as_str().unwrap().to_owned(),
                e["origin"]["index"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn output_file_and_summary_json_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.ndjson");
    let summary = dir.path().join("summary.json");
    let input = common::root().join("samples");
    let run = common::replay(&[
        "--output",
        out.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(run.stdout.is_empty(), "events go to the file, not stdout");
    let events = common::lines(&std::fs::read(&out).unwrap());
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(summary["events"].as_u64().unwrap() as usize, events.len());
    assert_eq!(summary["kinds"]["digest"], 1);
    assert_eq!(summary["kinds"]["insight"], 1);
    assert!(
        stderr.starts_with("replay: 14 files (1 digest, 1 insight, 12 log, 0 failed)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("events by metric:") && stderr.contains("aws.vpc.network_exposure"),
        "{stderr}"
    );
}

#[test]
fn a_missing_path_is_a_clear_start_up_error() {
    let run = common::replay(&["/nonexistent/trail-copy"]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("cannot read /nonexistent/trail-copy"), "{stderr}");
}

#[test]
fn a_bad_config_value_names_the_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trailwatch.toml");
    std::fs::write(&config, "[plugin]\ntime_limit_secs = 0\n").unwrap();
    let run = common::bin()
        .arg("--config")
        .arg(&config)
        .args(["replay", "x"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("config key plugin.time_limit_secs = 0: expected 1 to 86400 (seconds)"),
        "{stderr}"
    );

    std::fs::write(&config, "[plugin]\ntimeout = 3\n").unwrap();
    let run = common::bin()
        .arg("--config")
        .arg(&config)
        .args(["replay", "x"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("unknown field `timeout`"), "{stderr}");
}
