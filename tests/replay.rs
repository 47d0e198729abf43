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
    // Files in the order of the times in their CloudTrail names, then of their paths, each
    // file's events in record order (incidents follow the events that reported them).
    let documents = common::lines(&one.stdout);
    assert!(documents.iter().any(|d| d["kind"] == "incident"));
    let keys: Vec<(Option<i64>, String, u64)> = documents
        .iter()
        .filter(|d| d["kind"] == "event")
        .map(|e| {
            let key = e["origin"]["key"].as_str().unwrap();
            let name = key.rsplit('/').next().unwrap();
            (
                trailwatch::layout::file_time_ms(name),
                key.to_owned(),
                e["origin"]["index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        keys.iter().filter(|k| k.0.is_some()).count() > 3,
        "fixtures with times in their names"
    );
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
    let documents = common::lines(&std::fs::read(&out).unwrap());
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let events: Vec<_> = documents.iter().filter(|d| d["kind"] == "event").collect();
    let incidents = documents.iter().filter(|d| d["kind"] == "incident").count();
    assert_eq!(summary["events"].as_u64().unwrap() as usize, events.len());
    assert_eq!(summary["incidents"].as_u64().unwrap() as usize, incidents);
    assert_eq!(incidents + events.len(), documents.len());
    let anomalous = events.iter().filter(|e| e["anomalous"] == true).count();
    assert!(anomalous > 0);
    assert_eq!(summary["anomalies"].as_u64().unwrap() as usize, anomalous);
    // Every event scored: no batch went out without scores.
    assert_eq!(summary["unscored_batches"], 0, "{summary}");
    assert!(events.iter().all(|e| e.get("score").is_some()));
    assert!(
        stderr.contains(&format!(
            "pattern of life: {anomalous} anomalous events, {incidents} incident documents"
        )),
        "{stderr}"
    );
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

#[test]
fn source_addresses_are_looked_up_in_the_databases_given_both_ways_the_plugin_hands_events_over() {
    let dir = tempfile::tempdir().unwrap();
    let (asn, country) = common::networks::databases(dir.path());
    let sources = [
        "54.240.197.233",
        "81.2.69.160",
        "::ffff:81.2.69.161",
        "203.0.114.9",
        "10.20.30.40",
        "127.0.0.1",
        "198.51.100.7",
        "ec2.amazonaws.com",
        "AWS Internal",
    ];
    let records: Vec<String> = sources
        .iter()
        .enumerate()
        .map(|(i, source)| {
            format!(
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::210987654321:user/ci","accountId":"210987654321","userName":"ci"}},"eventTime":"2024-03-01T12:00:{i:02}Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"{source}","userAgent":"test","eventID":"net-{i}","readOnly":true,"eventType":"AwsApiCall","recipientAccountId":"210987654321"}}"#
            )
        })
        .collect();
    let log = dir
        .path()
        .join("210987654321_CloudTrail_us-east-1_20240301T1200Z_net.json");
    std::fs::write(&log, format!(r#"{{"Records":[{}]}}"#, records.join(","))).unwrap();
    let args = [
        "replay",
        "--no-progress",
        "--asn-database",
        asn.to_str().unwrap(),
        "--country-database",
        country.to_str().unwrap(),
        log.to_str().unwrap(),
    ];
    let expected = [
        serde_json::json!({"scope":"public","asn":16509,"as_org":"Example Cloud","country":"US"}),
        serde_json::json!({"scope":"public","asn":64500,"as_org":"Example Telecom","country":"GB"}),
        serde_json::json!({"scope":"public","asn":64500,"as_org":"Example Telecom","country":"GB"}),
        serde_json::json!({"scope":"public"}),
        serde_json::json!({"scope":"private"}),
        serde_json::json!({"scope":"loopback"}),
        serde_json::json!({"scope":"reserved"}),
    ];
    // Rendered by the plugin (the core plugin), and typed then rendered by the host (a plugin
    // without the `documents` interface): the same members either way.
    let parser_only = common::root().join("target/fixture-plugins/parser-only");
    let mut outputs = Vec::new();
    for plugins in [common::plugin_dir(), parser_only] {
        let out = common::run_with_plugins(&plugins, &[&["--no-builtin-plugin"], &args[..]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let events: Vec<_> = common::lines(&out.stdout)
            .into_iter()
            .filter(|d| d["kind"] == "event")
            .collect();
        assert_eq!(events.len(), sources.len(), "{stderr}");
        for (i, event) in events.iter().enumerate() {
            match expected.get(i) {
                Some(network) => assert_eq!(&event["source_network"], network, "{}", sources[i]),
                // A service name or `AWS Internal` is no address: its source_kind says so.
                None => {
                    assert!(event.get("source_network").is_none(), "{event}");
                    assert_ne!(event["source_kind"], "ip");
                }
            }
        }
        let file = dir.path().join("events.ndjson");
        std::fs::write(&file, &out.stdout).unwrap();
        common::validate_documents(&file);
        outputs.push(out.stdout);
    }
    assert_eq!(outputs[0], outputs[1], "the two paths write the same documents");

    // Without databases there is no such member.
    let plain = common::replay(&[log.to_str().unwrap()]);
    assert!(common::lines(&plain.stdout)
        .iter()
        .all(|e| e.get("source_network").is_none()));
}

#[test]
fn a_database_that_cannot_be_read_stops_replay_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.mmdb");
    let out = common::replay(&["--asn-database", missing.to_str().unwrap(), "samples"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot read the ASN database") && stderr.contains("nowhere.mmdb"),
        "{stderr}"
    );
    let garbage = dir.path().join("garbage.mmdb");
    std::fs::write(&garbage, b"not a database").unwrap();
    let out = common::replay(&["--country-database", garbage.to_str().unwrap(), "samples"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot read the country database") && stderr.contains("garbage.mmdb: not a MaxMind DB file"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing is read before the databases are");
}
