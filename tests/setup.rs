//! `trailwatch setup` against moto: the first run creates the bucket, its delivery policy, the
//! trail and starts logging, and writes a configuration that works; the second run changes
//! nothing and says so.

mod common;

use common::moto::Moto;
use trailwatch::aws::cloudtrail;
use trailwatch::aws::s3::S3;

fn trailwatch(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    common::outcome(
        common::with_config(config)
            .env("AWS_ACCESS_KEY_ID", "AKIDADMIN")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env_remove("AWS_PROFILE")
            .args(args),
    )
}

/// A configuration that points at moto.
fn admin_config(dir: &std::path::Path, moto: &Moto) -> std::path::PathBuf {
    let config = dir.join("admin.toml");
    std::fs::write(
        &config,
        format!("[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n", moto.url),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_makes_a_readable_trail_and_a_second_run_changes_nothing() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), &moto);
    let written = dir.path().join("trailwatch.toml");
    let args = [
        "setup",
        "--bucket",
        "audit-logs",
        "--trail",
        "audit-trail",
        "--write-config",
        written.to_str().unwrap(),
    ];
    let (code, out, err) = trailwatch(&config, &args);
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        "bucket audit-logs: created",
        "bucket policy: CloudTrail's delivery statements added",
        "trail audit-trail: created (all regions, global service events, log file validation)",
        "event selectors: set to all management events, read and write",
        "logging: started",
        "written",
        "setup done",
        "\"cloudtrail:DescribeTrails\"",
    ] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }

    let admin = moto.client("AKIDADMIN", "s");
    let trail = cloudtrail::describe_trails(&admin).await.unwrap().remove(0);
    assert_eq!(trail.name, "audit-trail");
    assert_eq!(trail.s3_bucket_name.as_deref(), Some("audit-logs"));
    assert_eq!(trail.is_multi_region_trail, Some(true));
    assert_eq!(trail.log_file_validation_enabled, Some(true));
    assert_eq!(
        cloudtrail::trail_status(&admin, "audit-trail")
            .await
            .unwrap()
            .is_logging,
        Some(true)
    );
    let selectors = cloudtrail::event_selectors(&admin, "audit-trail").await.unwrap();
    assert_eq!(selectors.event_selectors.len(), 1, "{selectors:?}");
    assert_eq!(selectors.event_selectors[0].read_write_type.as_deref(), Some("All"));
    let policy = S3::new(&admin, "audit-logs").policy().await.unwrap().unwrap();
    assert!(
        policy.contains("AWSCloudTrailAclCheck") && policy.contains("AWSCloudTrailWrite"),
        "{policy}"
    );
    assert!(policy.contains("arn:aws:s3:::audit-logs/AWSLogs/"), "{policy}");

    let (code, again, err) = trailwatch(&config, &args);
    assert_eq!(code, 0, "{again}{err}");
    assert!(again.contains("nothing changed: everything was in place"), "{again}");
    assert!(
        again.contains("bucket audit-logs: exists") && again.contains("event selectors: in place"),
        "{again}"
    );
    assert_eq!(cloudtrail::describe_trails(&admin).await.unwrap().len(), 1);

    // The written configuration, pointed at moto, reads the trail setup made: no error.
    let text = std::fs::read_to_string(&written).unwrap();
    let at_moto = dir.path().join("at-moto.toml");
    std::fs::write(
        &at_moto,
        text.replace(
            "[aws]\nregion = \"us-east-1\"\n",
            &format!("[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n", moto.url),
        ),
    )
    .unwrap();
    let (code, report, err) = trailwatch(&at_moto, &["check", "--format", "json"]);
    assert!(code <= 1, "setup's trail has no error: {report}{err}");
    let findings = common::lines(report.as_bytes());
    assert!(findings.iter().all(|f| f["chosen_trail"] == "audit-trail"), "{report}");
    let (code, _, err) = trailwatch(&at_moto, &["run", "--once"]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_trail_gets_the_organization_delivery_statement() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), &moto);
    let (code, _, err) = trailwatch(
        &config,
        &["setup", "--bucket", "org-logs", "--organization-id", "O-Nope"],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("--organization-id \"O-Nope\" is not an organization id"),
        "{err}"
    );

    let args = [
        "setup",
        "--bucket",
        "org-logs",
        "--prefix",
        "central",
        "--organization-id",
        "o-abcdef1234",
    ];
    let (code, out, err) = trailwatch(&config, &args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("trail trailwatch: created (an organization trail;"),
        "{out}"
    );
    let admin = moto.client("AKIDADMIN", "s");
    let trail = cloudtrail::describe_trails(&admin).await.unwrap().remove(0);
    assert_eq!(trail.is_organization_trail, Some(true));
    assert_eq!(trail.s3_key_prefix.as_deref(), Some("central"));
    let policy: serde_json::Value =
        serde_json::from_str(&S3::new(&admin, "org-logs").policy().await.unwrap().unwrap()).unwrap();
    let resources: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Resource"].as_str().unwrap())
        .collect();
    assert!(
        resources.contains(&"arn:aws:s3:::org-logs/central/AWSLogs/o-abcdef1234/*"),
        "{policy}"
    );
    let (code, again, err) = trailwatch(&config, &args);
    assert_eq!(code, 0, "{again}{err}");
    assert!(again.contains("nothing changed: everything was in place"), "{again}");
}
