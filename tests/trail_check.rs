//! `trailwatch check` as an operator runs it, against moto on 127.0.0.1: a misconfigured trail
//! is reported finding by finding, `--fix` cures what it may and the next check agrees, a
//! Control Tower trail is refused while the user's own is read, a missing permission becomes a
//! finding that names it, and restricted mode makes no CloudTrail call.

mod common;

use std::path::{Path, PathBuf};

use common::moto::{self, Moto};
use serde_json::Value;
use trailwatch::aws::cloudtrail::{self, DataResource, EventSelector, NewTrail};
use trailwatch::aws::AwsClient;

const BUCKET: &str = "trail-bucket";

fn write_config(dir: &Path, url: &str, key: &str, secret: &str, mode: &str, source: &str) -> PathBuf {
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        format!(
            "mode = \"{mode}\"\n\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{url}\"\naccess_key_id = \"{key}\"\n\
             secret_access_key = \"{secret}\"\nmax_attempts = 2\n\n[source]\n{source}\n\n[state]\ndir = \"{}\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

/// Runs `trailwatch check <args>`: exit code, stdout, stderr.
fn check(config: &Path, args: &[&str]) -> (i32, String, String) {
    common::outcome(common::with_config(config).arg("check").args(args))
}

/// Every line of `ndjson` against `schema/finding.schema.json`.
fn validate(ndjson: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), ndjson).unwrap();
    common::validate_schema("finding.schema.json", file.path());
}

fn findings(stdout: &str) -> Vec<Value> {
    common::lines(stdout.as_bytes())
}

fn codes(findings: &[Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

fn finding<'a>(findings: &'a [Value], code: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {findings:#?}"))
}

async fn new_trail(admin: &AwsClient, name: &str, multi_region: bool) {
    cloudtrail::create_trail(
        admin,
        &NewTrail {
            name: name.into(),
            s3_bucket_name: BUCKET.into(),
            s3_key_prefix: None,
            is_multi_region_trail: multi_region,
            include_global_service_events: true,
            enable_log_file_validation: false,
            is_organization_trail: false,
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_trail_is_reported_and_fix_cures_what_it_may() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    moto::seed(&admin, BUCKET, &[]).await;
    new_trail(&admin, "main", false).await;
    // Read management events only, and S3 data events of one bucket (which the fix must keep).
    let data = vec![DataResource {
        kind: "AWS::S3::Object".into(),
        values: vec!["arn:aws:s3:::secrets/".into()],
    }];
    let selectors = vec![EventSelector {
        read_write_type: Some("ReadOnly".into()),
        include_management_events: Some(true),
        data_resources: data.clone(),
        exclude_management_event_sources: vec![],
    }];
    cloudtrail::put_event_selectors(&admin, "main", &selectors)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &moto.url, "AKIDADMIN", "s", "default", "");
    let (code, out, err) = check(&config, &["--format", "json"]);
    assert_eq!(code, 2, "errors found: {err}");
    validate(&out);
    let found = findings(&out);
    let got = codes(&found);
    for expected in [
        "trail-not-logging",
        "not-multi-region",
        "write-events-not-logged",
        "log-file-validation-off",
        "no-kms-encryption",
        "no-cloudwatch-logs",
        "public-access-block-off",
        "no-bucket-access-logging",
        "bucket-versioning-off",
    ] {
        assert!(got.iter().any(|c| c == expected), "{expected} missing from {got:?}");
    }
    let stopped = finding(&found, "trail-not-logging");
    assert_eq!(stopped["severity"], "error");
    assert_eq!(stopped["kind"], "finding");
    assert_eq!(stopped["trail"], "main");
    assert_eq!(stopped["chosen_trail"], "main");
    assert_eq!(
        stopped["evidence"][0],
        serde_json::json!({"field": "GetTrailStatus.IsLogging", "value": "false"})
    );
    assert_eq!(stopped["controls"], serde_json::json!(["CIS 3.1", "CloudTrail.1"]));
    assert_eq!(
        stopped["fix"],
        serde_json::json!({"action": "start-logging", "trail": "main"})
    );
    assert_eq!(
        finding(&found, "write-events-not-logged")["fix"],
        serde_json::json!({"action": "set-management-events", "trail": "main", "read_write": "All"})
    );
    assert_eq!(
        finding(&found, "log-file-validation-off")["fix"],
        Value::Null,
        "advice has no fix"
    );

    let (code, table, _) = check(&config, &[]);
    assert_eq!(code, 2);
    assert!(table.starts_with("trail: main: the only trail\n"), "{table}");
    assert!(table.contains("fix (--fix): StartLogging main"), "{table}");
    assert!(table.contains("GetTrailStatus.IsLogging = false"), "{table}");

    let (code, out, err) = check(&config, &["--fix", "--format", "json"]);
    assert!(err.contains("fixed: StartLogging main"), "{err}");
    assert!(err.contains("fixed: UpdateTrail main IsMultiRegionTrail=true"), "{err}");
    assert!(err.contains("before: {\"IsLogging\":false}"), "{err}");
    assert!(err.contains("checked again after the fixes"), "{err}");
    assert_eq!(code, 1, "only advice is left: {out}");

    // What AWS now says.
    let status = cloudtrail::trail_status(&admin, "main").await.unwrap();
    assert_eq!(status.is_logging, Some(true));
    let trail = cloudtrail::describe_trails(&admin).await.unwrap().remove(0);
    assert_eq!(trail.is_multi_region_trail, Some(true));
    let now = cloudtrail::event_selectors(&admin, "main")
        .await
        .unwrap()
        .event_selectors;
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(now[0].read_write_type.as_deref(), Some("All"));
    assert_eq!(now[0].include_management_events, Some(true));
    assert_eq!(
        (now[1].read_write_type.as_deref(), &now[1].data_resources),
        (Some("ReadOnly"), &data)
    );
    assert_eq!(now[1].include_management_events, Some(false));

    let (code, out, _) = check(&config, &["--format", "json"]);
    assert_eq!(code, 1);
    let left = findings(&out);
    assert!(
        left.iter().all(|f| f["severity"] != "error" && f["fix"].is_null()),
        "{left:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_tower_trails_are_refused_and_a_missing_permission_is_named() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    moto::seed(&admin, BUCKET, &[]).await;
    new_trail(&admin, "aws-controltower-BaselineCloudTrail", true).await;
    new_trail(&admin, "own", true).await;
    cloudtrail::start_logging(&admin, "own").await.unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["cloudtrail:*","s3:*"],"Resource":"*"},
        {"Effect":"Deny","Action":"s3:GetBucketPolicy","Resource":"*"}]}"#;
    let (key, secret) = moto::iam_user(&admin, &moto.url, "checker", policy).await;
    moto.enforce_auth();

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &moto.url, &key, &secret, "default", "");
    let (code, out, err) = check(&config, &["--format", "json"]);
    assert_eq!(code, 2, "{err}");
    validate(&out);
    let found = findings(&out);
    let tower = finding(&found, "control-tower-trail");
    assert_eq!(tower["trail"], "aws-controltower-BaselineCloudTrail");
    assert!(tower["message"].as_str().unwrap().contains("does not support"));
    assert_eq!(tower["chosen_trail"], "own");
    // The Control Tower trail is no candidate: the user's own trail is the only one left.
    assert!(!codes(&found).contains(&"several-trails".to_owned()), "{found:#?}");
    let denied = finding(&found, "could-not-read");
    let message = denied["message"].as_str().unwrap();
    assert!(
        message.contains("s3:GetBucketPolicy for trail-bucket failed (AccessDenied)")
            && message.contains("must allow s3:GetBucketPolicy"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_mode_makes_no_cloudtrail_call_and_says_what_is_off() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    moto::seed(&admin, BUCKET, &[]).await;
    new_trail(&admin, "main", true).await;
    moto.start_recording();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &moto.url,
        "AKIDADMIN",
        "s",
        "restricted",
        &format!("bucket = \"{BUCKET}\""),
    );
    let (code, out, err) = check(&config, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("check-off") && out.contains("automatic configuration"),
        "{out}"
    );
    let (code, _, err) = check(&config, &["--fix"]);
    assert_eq!(code, 2);
    assert!(err.contains("restricted mode never changes the trail"), "{err}");
    // One call of the test's own, so that the recorder is seen to record.
    trailwatch::aws::s3::S3::new(&admin, BUCKET)
        .list_all("", None, None)
        .await
        .unwrap();
    let calls = moto.recording();
    assert!(calls.iter().any(|(method, _, _)| method == "GET"), "{calls:?}");
    assert!(
        calls.iter().all(|(_, _, target)| !target.contains("CloudTrail")),
        "no CloudTrail call in restricted mode: {calls:?}"
    );
}

/// Waits up to 60 s for `done` to hold; says whether it did.
async fn wait_for(mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..120 {
        if done().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    false
}

/// The management selector's read/write type of `trail`.
async fn management_read_write(admin: &AwsClient, trail: &str) -> Option<String> {
    let selectors = cloudtrail::event_selectors(admin, trail).await.unwrap().event_selectors;
    selectors
        .iter()
        .find(|s| s.include_management_events == Some(true))
        .and_then(|s| s.read_write_type.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_configure_repairs_the_trail_follows_a_setting_changed_on_sighup_and_repairs_drift() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    moto::seed(&admin, BUCKET, &[]).await;
    new_trail(&admin, "main", false).await;
    new_trail(&admin, "other", false).await;
    cloudtrail::update_trail(
        &admin,
        &cloudtrail::TrailUpdate {
            name: "other".into(),
            is_multi_region_trail: None,
            include_global_service_events: None,
        },
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let settings = |filter: bool, interval: u32| {
        format!(
            "\n[trail]\nauto_configure = true\nwrite_event_filter = {filter}\nconfig_check_interval_secs = {interval}\n\n\
             [[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            out.display()
        )
    };
    let source = "trail_name = \"main\"\npoll_interval_secs = 1";
    let config = write_config(dir.path(), &moto.url, "AKIDADMIN", "s", "write-only", source);
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{base}{}", settings(true, 3600))).unwrap();
    let mut daemon = common::Daemon::spawn(common::with_config(&config).arg("run"));
    let documents = || -> Vec<Value> {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        common::lines(complete.as_bytes())
    };
    let changed = |docs: &[Value]| -> Vec<String> {
        docs.iter()
            .filter(|d| d["code"] == "trail-changed")
            .map(|d| d["message"].as_str().unwrap().to_owned())
            .collect()
    };

    // At start-up: started, made multi-region, set to write events only; the other trail is
    // left as it was.
    assert!(
        wait_for(async || changed(&documents()).len() >= 3).await,
        "the start-up repair: {:#?}",
        documents()
    );
    let status = cloudtrail::trail_status(&admin, "main").await.unwrap();
    assert_eq!(status.is_logging, Some(true));
    let trails = cloudtrail::describe_trails(&admin).await.unwrap();
    let main = trails.iter().find(|t| t.name == "main").unwrap();
    assert_eq!(main.is_multi_region_trail, Some(true));
    assert_eq!(
        management_read_write(&admin, "main").await.as_deref(),
        Some("WriteOnly")
    );
    let other = trails.iter().find(|t| t.name == "other").unwrap();
    assert_eq!(
        other.is_multi_region_trail,
        Some(false),
        "a trail the module does not read is not touched"
    );
    assert_ne!(
        cloudtrail::trail_status(&admin, "other").await.unwrap().is_logging,
        Some(true)
    );
    let docs = documents();
    let messages = changed(&docs);
    assert!(messages.iter().any(|m| m.contains("StartLogging main")), "{messages:?}");
    let selectors = docs
        .iter()
        .find(|d| d["code"] == "trail-changed" && d["message"].as_str().unwrap().contains("PutEventSelectors"))
        .unwrap();
    assert_eq!(selectors["evidence"][0]["field"], "before");
    assert!(
        selectors["evidence"][1]["value"]
            .as_str()
            .unwrap()
            .contains("WriteOnly"),
        "{selectors}"
    );
    assert!(
        docs.iter().all(|d| d["code"] != "trail-not-logging"),
        "the findings sent are those of the check after the repair"
    );
    validate(&std::fs::read_to_string(&out).unwrap());

    // The write-event filter turned off in the file: on SIGHUP the trail goes back to All.
    std::fs::write(&config, format!("{base}{}", settings(false, 10))).unwrap();
    daemon.signal("HUP");
    assert!(
        wait_for(async || management_read_write(&admin, "main").await.as_deref() == Some("All")).await,
        "the selectors back to All: {:?}",
        cloudtrail::event_selectors(&admin, "main").await
    );
    assert!(
        wait_for(async || changed(&documents()).len() >= 4).await,
        "the change reported: {:#?}",
        changed(&documents())
    );
    let last = changed(&documents()).pop().unwrap();
    assert!(last.contains("PutEventSelectors main"), "{last}");

    // Drift: someone makes the trail single-region again; the next periodic check (every 10 s
    // now, read on SIGHUP) repairs it.
    cloudtrail::update_trail(
        &admin,
        &cloudtrail::TrailUpdate {
            name: "main".into(),
            is_multi_region_trail: Some(false),
            include_global_service_events: None,
        },
    )
    .await
    .unwrap();
    assert!(
        wait_for(async || changed(&documents()).len() >= 5).await,
        "the drift repaired: {:#?}",
        changed(&documents())
    );
    let last = changed(&documents()).pop().unwrap();
    assert!(last.contains("IsMultiRegionTrail=true"), "{last}");
    let trails = cloudtrail::describe_trails(&admin).await.unwrap();
    assert_eq!(
        trails.iter().find(|t| t.name == "main").unwrap().is_multi_region_trail,
        Some(true)
    );

    daemon.signal("TERM");
    assert!(daemon.wait().success());
}

/// The check over recorded trail snapshots (`tests/fixtures/trail-snapshots/`): AWS's answers for
/// what moto cannot produce, in the shapes of CloudTrail's and S3's API references, served over
/// HTTP; `trailwatch check --format json` against each, its exit code and findings kept as insta
/// snapshots. Every request must find its recorded answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_trail_snapshots_give_the_findings_on_record() {
    let dir = common::root().join("tests/fixtures/trail-snapshots");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for path in names {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let scenario: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let aws = common::recorded::Recorded::start(&scenario["answers"]).await;
        let work = tempfile::tempdir().unwrap();
        let config = write_config(
            work.path(),
            &aws.url,
            "AKIDRECORDED",
            "s",
            scenario["mode"].as_str().unwrap(),
            scenario["source"].as_str().unwrap(),
        );
        let mut text = std::fs::read_to_string(&config).unwrap();
        if let Some(region) = scenario["region"].as_str() {
            text = text.replace("region = \"us-east-1\"", &format!("region = \"{region}\""));
        }
        if let Some(trail) = scenario["trail"].as_str() {
            text.push_str(&format!("\n[trail]\n{trail}\n"));
        }
        std::fs::write(&config, text).unwrap();
        let (code, stdout, stderr) = tokio::task::spawn_blocking(move || check(&config, &["--format", "json"]))
            .await
            .unwrap();
        assert!(
            aws.unanswered().is_empty(),
            "{name}: not on record: {:#?}",
            aws.unanswered()
        );
        if !stdout.is_empty() {
            validate(&stdout);
        }
        let mut docs = findings(&stdout);
        for d in &mut docs {
            let at = d["checked_at_ms"].take();
            assert!(at.as_i64().is_some_and(|t| t > 0), "{name}: {d}");
        }
        insta::assert_json_snapshot!(
            format!("trail_snapshot_{name}"),
            serde_json::json!({ "exit": code, "findings": docs }),
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_checks_stay_on_the_trail_chosen_at_start_up() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    moto::seed(&admin, BUCKET, &[]).await;
    // Two healthy trails delivering to the bucket: a-main is chosen (by name).
    for name in ["a-main", "b-other"] {
        new_trail(&admin, name, true).await;
        cloudtrail::start_logging(&admin, name).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let source = format!("bucket = \"{BUCKET}\"\npoll_interval_secs = 1");
    let config = write_config(dir.path(), &moto.url, "AKIDADMIN", "s", "default", &source);
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{base}\n[trail]\nauto_configure = true\nconfig_check_interval_secs = 10\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            out.display()
        ),
    )
    .unwrap();
    let mut daemon = common::Daemon::spawn(common::with_config(&config).arg("run"));
    let documents = || -> Vec<Value> {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        common::lines(&text.as_bytes()[..text.rfind('\n').map_or(0, |i| i + 1)])
    };
    assert!(
        wait_for(async || documents().iter().any(|d| d["code"] == "several-trails")).await,
        "{:#?}",
        documents()
    );
    assert!(documents().iter().all(|d| d["chosen_trail"] == "a-main"));
    // a-main turns single-region: b-other now ranks first, but the module reads a-main's
    // files, so a-main is the one checked again and repaired.
    cloudtrail::update_trail(
        &admin,
        &cloudtrail::TrailUpdate {
            name: "a-main".into(),
            is_multi_region_trail: Some(false),
            include_global_service_events: None,
        },
    )
    .await
    .unwrap();
    let repaired = async || {
        documents().iter().any(|d| {
            d["code"] == "trail-changed"
                && d["message"]
                    .as_str()
                    .unwrap()
                    .contains("UpdateTrail a-main IsMultiRegionTrail=true")
        })
    };
    assert!(wait_for(repaired).await, "{:#?}", documents());
    let trails = cloudtrail::describe_trails(&admin).await.unwrap();
    assert_eq!(
        trails
            .iter()
            .find(|t| t.name == "a-main")
            .unwrap()
            .is_multi_region_trail,
        Some(true)
    );
    assert!(
        documents().iter().all(|d| d["chosen_trail"] == "a-main"),
        "{:#?}",
        documents()
    );
    daemon.signal("TERM");
    assert!(daemon.wait().success());
}
