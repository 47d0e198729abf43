//! `trailwatch policy` against moto with IAM enforcement on: the printed policy is enough for
//! the module in its mode (`run`, and in default mode `check --fix`), and with any one of its
//! actions removed the module's output names that action. The trail validates its log files
//! and the bucket holds a signed digest, so `run` in default mode checks its signature with
//! CloudTrail's public keys: moto authorizes `ListPublicKeys` but has no such call, and a proxy
//! in front of it answers the calls moto let through.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::digests;
use common::moto::{self, Moto};
use common::proxy::{Fault, Proxy};
use serde_json::Value;
use trailwatch::aws::client::Request;
use trailwatch::aws::cloudtrail::{self, EventSelector, NewTrail, TrailUpdate};
use trailwatch::aws::AwsClient;

const BUCKET: &str = "trail-bucket";

/// moto authorizes HeadBucket as `s3:HeadBucket`; AWS as `s3:ListBucket`, which the policy
/// has. The tests grant moto's name beside the printed policy.
const MOTO_HEAD_BUCKET: &str = r#"{"Effect":"Allow","Action":"s3:HeadBucket","Resource":"*"}"#;

/// Actions moto does not authorize under their AWS names, so removing them changes nothing
/// there: GetPublicAccessBlock is authorized as `s3:ListBucket`.
const MOTO_GAPS: [&str; 1] = ["s3:GetBucketPublicAccessBlock"];

/// moto authorizes DeleteObjects against the bucket's ARN, AWS each key against its object's:
/// the statement that allows `s3:DeleteObject` also names the bucket here.
fn for_moto(statement: &mut Value) {
    if statement["Action"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "s3:DeleteObject")
    {
        let bucket = format!("arn:aws:s3:::{BUCKET}");
        statement["Resource"].as_array_mut().unwrap().push(bucket.into());
    }
}

fn printed_policy(args: &[&str]) -> Value {
    let out = common::bin().arg("policy").args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `policy` with `action` taken out (a statement left with no action goes), plus moto's
/// HeadBucket name.
fn without(policy: &Value, action: Option<&str>) -> String {
    let mut p = policy.clone();
    let statements = p["Statement"].as_array_mut().unwrap();
    for s in statements.iter_mut() {
        s["Action"]
            .as_array_mut()
            .unwrap()
            .retain(|a| Some(a.as_str().unwrap()) != action);
        for_moto(s);
    }
    statements.retain(|s| !s["Action"].as_array().unwrap().is_empty());
    statements.push(serde_json::from_str(MOTO_HEAD_BUCKET).unwrap());
    p.to_string()
}

fn actions(policy: &Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
        })
        .collect()
}

fn config(dir: &Path, url: &str, mode: &str, key: &str, secret: &str) -> std::path::PathBuf {
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        format!(
            "mode = \"{mode}\"\n\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{url}\"\naccess_key_id = \"{key}\"\n\
             secret_access_key = \"{secret}\"\nmax_attempts = 2\n\n[source]\nbucket = \"{BUCKET}\"\nstart = \"2024-03-01\"\n\n\
             [state]\ndir = \"{}\"\n\n[output]\npath = \"{}\"\n",
            dir.join("state").display(),
            dir.join("events.ndjson").display()
        ),
    )
    .unwrap();
    path
}

/// Runs trailwatch with `config`: exit code and stdout + stderr.
fn trailwatch(config: &Path, args: &[&str]) -> (i32, String) {
    let (code, out, err) = common::outcome(common::with_config(config).args(args));
    (code, out + &err)
}

/// Puts the trail back into a state every fix applies to: stopped, single-region, reading
/// management events only.
async fn break_trail(admin: &AwsClient) {
    admin
        .send(Request {
            operation: "cloudtrail:StopLogging",
            service: "cloudtrail",
            method: reqwest::Method::POST,
            url: format!("{}/", admin.service_url("cloudtrail")),
            headers: vec![
                ("content-type", "application/x-amz-json-1.1".into()),
                (
                    "x-amz-target",
                    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.StopLogging".into(),
                ),
            ],
            body: Bytes::from_static(br#"{"Name":"main"}"#),
            key: None,
            any_status: false,
        })
        .await
        .unwrap();
    let single = TrailUpdate {
        name: "main".into(),
        is_multi_region_trail: Some(false),
        include_global_service_events: None,
    };
    cloudtrail::update_trail(admin, &single).await.unwrap();
    let reads = [EventSelector {
        read_write_type: Some("ReadOnly".into()),
        include_management_events: Some(true),
        ..EventSelector::default()
    }];
    cloudtrail::put_event_selectors(admin, "main", &reads).await.unwrap();
}

/// What one user's run of the module said, in a fresh state directory each time.
struct Outcome {
    run: (i32, String),
    check: Option<(i32, String)>,
}

/// Answers CloudTrail's ListPublicKeys with the test key when moto did not refuse the caller.
fn public_keys(_n: u64, head: &str) -> Option<Fault> {
    head.to_ascii_lowercase()
        .contains("x-amz-target: com.amazonaws.cloudtrail.v20131101.cloudtrail_20131101.listpublickeys")
        .then(|| Fault::AnswerUnlessRefused(digests::list_public_keys_response()))
}

fn module(url: &str, mode: &str, key: &str, secret: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), url, mode, key, secret);
    // At info: the digest's verdict is logged.
    let (code, out, err) = common::outcome(
        common::with_config(&config)
            .env("TRAILWATCH_LOG", "trailwatch=info")
            .args(["run", "--once"]),
    );
    let run = (code, out + &err);
    let events = std::fs::read_to_string(dir.path().join("events.ndjson")).unwrap_or_default();
    let run = (
        run.0,
        format!("{}\nevents: {}", run.1, events.matches("\"kind\":\"event\"").count()),
    );
    let check = (mode != "restricted").then(|| trailwatch(&config, &["check", "--fix", "--format", "json"]));
    Outcome { run, check }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_printed_policy_is_enough_and_each_of_its_actions_is_needed() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url, public_keys).await;
    let setup = moto.client("AKIDADMIN", "s");
    // An hour of two log files of 3 events, and its signed digest.
    let evidence = digests::evidence(BUCKET, 1);
    digests::store(&setup, &evidence).await;
    cloudtrail::create_trail(
        &setup,
        &NewTrail {
            name: "main".into(),
            s3_bucket_name: BUCKET.into(),
            s3_key_prefix: None,
            is_multi_region_trail: false,
            include_global_service_events: true,
            is_organization_trail: false,
            enable_log_file_validation: true,
        },
    )
    .await
    .unwrap();

    let restricted = printed_policy(&["--mode", "restricted", "--bucket", BUCKET]);
    // Not scoped to the trail (`--trail`): moto does not match CloudTrail calls against trail
    // ARNs, so a scoped policy is refused there (the scoping is checked in `policy`'s tests).
    let default = printed_policy(&["--bucket", BUCKET, "--auto-configure"]);
    assert_eq!(actions(&restricted), ["s3:ListBucket", "s3:GetObject"]);
    // Every user before enforcement starts: from then on only IAM users are let in.
    let all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let admin = moto::iam_user(&setup, &moto.url, "admin", all).await;
    let mut users = Vec::new();
    for (mode, policy) in [("restricted", &restricted), ("default", &default)] {
        let mut removals: Vec<Option<String>> = vec![None];
        removals.extend(
            actions(policy)
                .into_iter()
                .filter(|a| !MOTO_GAPS.contains(&a.as_str()))
                .map(Some),
        );
        for (i, removed) in removals.into_iter().enumerate() {
            let name = format!("{mode}-{i}");
            let keys = moto::iam_user(&setup, &moto.url, &name, &without(policy, removed.as_deref())).await;
            users.push((mode, removed, keys));
        }
    }
    moto.enforce_auth();
    let admin = moto.client(&admin.0, &admin.1);

    for (mode, removed, (key, secret)) in users {
        if mode == "default" {
            break_trail(&admin).await;
        }
        // The files again: a run before may have deleted them (default mode deletes).
        digests::store(&admin, &evidence).await;
        let url = proxy.url.clone();
        let outcome = tokio::task::spawn_blocking(move || module(&url, mode, &key, &secret))
            .await
            .unwrap();
        let said = format!(
            "{}\n{}",
            outcome.run.1,
            outcome.check.as_ref().map(|c| c.1.as_str()).unwrap_or_default()
        );
        match &removed {
            None => {
                assert_eq!(outcome.run.0, 0, "{mode}, the whole policy: {said}");
                assert!(outcome.run.1.ends_with("events: 6"), "{mode}: {said}");
                assert!(!said.contains("must allow"), "{mode}, the whole policy: {said}");
                if mode == "default" {
                    assert!(
                        said.contains("digest judged") && said.contains("signature_valid=true problems=0"),
                        "default, the whole policy: the digest was not judged with its signature: {said}"
                    );
                }
                if let Some((_, check)) = &outcome.check {
                    assert!(
                        !check.contains("could-not-read") && !check.contains("could not fix"),
                        "{check}"
                    );
                    assert!(check.contains("fixed: StartLogging main"), "{check}");
                    assert!(check.contains("fixed: PutEventSelectors main"), "{check}");
                }
            }
            Some(action) => assert!(
                said.contains(&format!("must allow {action}")),
                "{mode} without {action}: the output does not name it:\n{said}"
            ),
        }
    }
}
