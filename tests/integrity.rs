//! Log-file integrity validation as an operator meets it, against moto on 127.0.0.1 with
//! digests made and signed the way CloudTrail makes them (tests/common/digests.rs) and
//! CloudTrail's `ListPublicKeys` answered by a proxy in front of moto (moto has no such call):
//! `trailwatch verify` passes intact evidence and names exactly what was done to tampered
//! evidence — a log file deleted, a byte of another changed, a digest removed, a signature
//! forged, a log file slipped in — and restricted mode checks what it can without CloudTrail.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::digests::{self, Evidence};
use common::moto::{self, Moto};
use common::proxy::{Fault, Proxy};
use serde_json::Value;
use trailwatch::aws::s3::S3;

const RANGE: [&str; 4] = ["--start", "2024-03-01T10:00:00Z", "--end", "2024-03-01T12:00:00Z"];

/// Answers CloudTrail's ListPublicKeys with the test key; everything else goes to moto.
fn public_keys(_n: u64, head: &str) -> Option<Fault> {
    head.to_ascii_lowercase()
        .contains("x-amz-target: com.amazonaws.cloudtrail.v20131101.cloudtrail_20131101.listpublickeys")
        .then(|| Fault::Answer(digests::list_public_keys_response()))
}

/// A configuration reading `bucket`; `mode` is `default` or `restricted`, `extra` more tables.
fn write_config(dir: &Path, url: &str, bucket: &str, mode: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{bucket}.toml"));
    std::fs::write(
        &path,
        format!(
            "mode = \"{mode}\"\n\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{url}\"\naccess_key_id = \"AKIDADMIN\"\n\
             secret_access_key = \"admin-secret\"\nmax_attempts = 2\n\n[source]\nbucket = \"{bucket}\"\n\n\
             [trail]\ncheck = false\n\n[state]\ndir = \"{}\"\n{extra}",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

/// Runs `trailwatch verify <args>` off the test's runtime (the proxy runs on it).
async fn verify(config: &Path, args: &[&str]) -> (i32, String, String) {
    trailwatch(config, &[&["verify"], args].concat()).await
}

/// Runs `trailwatch <args>` with logs at info, off the test's runtime: exit code, stdout, stderr.
async fn trailwatch(config: &Path, args: &[&str]) -> (i32, String, String) {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        common::outcome(common::with_config(&config).env("TRAILWATCH_LOG", "info").args(&args))
    })
    .await
    .unwrap()
}

/// (code, location) of each finding `verify --format json` printed, checked against the schema.
fn findings(stdout: &str) -> Vec<(String, String)> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), stdout).unwrap();
    if !stdout.is_empty() {
        common::validate_schema("finding.schema.json", file.path());
    }
    common::lines(stdout.as_bytes())
        .iter()
        .map(|f: &Value| {
            assert_eq!(f["kind"], "finding");
            assert_eq!(f["controls"], serde_json::json!(["CIS 3.2", "CloudTrail.4"]));
            (
                f["code"].as_str().unwrap().to_owned(),
                f["location"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

struct Case {
    dir: tempfile::TempDir,
    url: String,
}

impl Case {
    /// `verify --format json` of the range over `bucket`: exit code, findings, stderr.
    async fn verify(&self, bucket: &str, mode: &str, extra: &str) -> (i32, Vec<(String, String)>, String) {
        let config = write_config(self.dir.path(), &self.url, bucket, mode, extra);
        let mut args = RANGE.to_vec();
        args.extend(["--format", "json"]);
        let (code, out, err) = verify(&config, &args).await;
        (code, findings(&out), err)
    }
}

fn at(e: &Evidence, key: &str) -> String {
    format!("{}/{key}", e.bucket)
}

/// Three hours of evidence in `bucket` whose last digest lists a changed log file's new hash
/// and is signed with a key that is not CloudTrail's.
fn forged(bucket: &str) -> Evidence {
    let mut e = digests::evidence(bucket, 3);
    let text = String::from_utf8(common::gunzip(&e.logs[4].body)).unwrap();
    e.logs[4].body = common::gzip(text.replacen("RunInstances", "RunInstancez", 1).as_bytes());
    let logs: Vec<&moto::LogFile> = e.logs[4..6].iter().collect();
    e.digests[2] = digests::digest(
        &digests::private_key("foreign-test-key.pem"),
        &e.bucket,
        "2024-03-01T12:00:00Z",
        "2024-03-01T13:00:00Z",
        &logs,
        Some(&e.digests[1]),
    );
    e
}

/// Puts a log file under a CloudTrail name in `e`'s first hour that no digest lists.
async fn slip_in(admin: &trailwatch::aws::AwsClient, e: &Evidence) -> moto::LogFile {
    let extra = moto::log_file(
        "",
        digests::ACCOUNT,
        digests::REGION,
        "2024-03-01",
        "1050",
        "slipped",
        2,
    );
    moto::seed(admin, &e.bucket, std::slice::from_ref(&extra)).await;
    extra
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_intact_evidence_and_names_each_tampering_exactly() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url, public_keys).await;
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let case = Case {
        dir: tempfile::tempdir().unwrap(),
        url: proxy.url.clone(),
    };

    // Intact: three hours, six log files, each digest signed and chained.
    let intact = digests::evidence("intact", 3);
    digests::store(&admin, &intact).await;
    let (code, found, err) = case.verify("intact", "default", "").await;
    assert_eq!((code, found), (0, vec![]), "{err}");
    assert!(
        err.contains(
            "1 streams, 3 digests (3 signatures verified), 6 of 6 listed log files valid; 0 errors, 0 warnings"
        ),
        "{err}"
    );
    // The table for people says the same.
    let config = write_config(case.dir.path(), &case.url, "intact", "default", "");
    let (code, out, _) = verify(&config, &RANGE).await;
    assert_eq!((code, out.as_str()), (0, ""));

    // A log file deleted.
    let e = digests::evidence("deleted-log", 3);
    digests::store(&admin, &e).await;
    S3::new(&admin, &e.bucket)
        .delete(&[e.logs[1].key.clone()])
        .await
        .unwrap();
    let (code, found, err) = case.verify(&e.bucket, "default", "").await;
    assert_eq!(
        found,
        vec![("log-file-missing".into(), at(&e, &e.logs[1].key))],
        "{err}"
    );
    assert_eq!(code, 2);

    // One byte of another log file changed (an event's name), the file gzipped again.
    let e = digests::evidence("changed-log", 3);
    digests::store(&admin, &e).await;
    let text = String::from_utf8(common::gunzip(&e.logs[2].body)).unwrap();
    let changed = text.replacen("DescribeInstances", "DescribeInstancez", 1);
    assert_eq!(changed.len(), text.len());
    S3::new(&admin, &e.bucket)
        .put(&e.logs[2].key, Bytes::from(common::gzip(changed.as_bytes())))
        .await
        .unwrap();
    let (code, found, err) = case.verify(&e.bucket, "default", "").await;
    assert_eq!(
        found,
        vec![("log-file-modified".into(), at(&e, &e.logs[2].key))],
        "{err}"
    );
    assert_eq!(code, 2);

    // A digest removed: the next one's chain names it; its hour's files are not called extra.
    let e = digests::evidence("removed-digest", 3);
    digests::store(&admin, &e).await;
    S3::new(&admin, &e.bucket)
        .delete(&[e.digests[1].key.clone()])
        .await
        .unwrap();
    let (code, found, err) = case.verify(&e.bucket, "default", "").await;
    assert_eq!(
        found,
        vec![("digest-missing".into(), at(&e, &e.digests[1].key))],
        "{err}"
    );
    assert_eq!(code, 2);
    assert!(err.contains("2 digests (2 signatures verified), 4 of 4"), "{err}");

    // A signature forged: the last digest lists a changed log file's new hash and is signed
    // with a key that is not CloudTrail's.
    let e = forged("forged");
    digests::store(&admin, &e).await;
    let (code, found, err) = case.verify(&e.bucket, "default", "").await;
    assert_eq!(
        found,
        vec![("digest-signature-invalid".into(), at(&e, &e.digests[2].key))],
        "{err}"
    );
    assert_eq!(code, 2);

    // A log file slipped in under a CloudTrail name: no digest lists it.
    let e = digests::evidence("extra-log", 3);
    digests::store(&admin, &e).await;
    let extra = slip_in(&admin, &e).await;
    let (code, found, err) = case.verify(&e.bucket, "default", "").await;
    assert_eq!(
        found,
        vec![("log-file-not-in-digest".into(), at(&e, &extra.key))],
        "{err}"
    );
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_mode_checks_hashes_and_chain_without_cloudtrail_and_signatures_with_given_keys() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let e = digests::evidence("restricted", 3);
    digests::store(&admin, &e).await;
    moto.start_recording();
    // Straight to moto: a ListPublicKeys call would fail there.
    let case = Case {
        dir: tempfile::tempdir().unwrap(),
        url: moto.url.clone(),
    };
    let (code, found, err) = case.verify(&e.bucket, "restricted", "").await;
    let not_checked: Vec<(String, String)> = e
        .digests
        .iter()
        .map(|d| ("digest-signature-not-checked".into(), at(&e, &d.key)))
        .collect();
    assert_eq!(found, not_checked, "{err}");
    assert_eq!(code, 1, "only warnings: {err}");
    assert!(err.contains("3 digests (0 signatures verified), 6 of 6"), "{err}");

    // With CloudTrail's keys saved to a file, signatures are checked too, still without a call.
    let keys = case.dir.path().join("keys.json");
    std::fs::write(&keys, digests::list_public_keys_answer()).unwrap();
    let extra = format!("\n[integrity]\npublic_keys_file = \"{}\"\n", keys.display());
    let config = write_config(case.dir.path(), &case.url, &e.bucket, "restricted", &extra);
    let mut args = RANGE.to_vec();
    args.extend(["--format", "json"]);
    let (code, out, err) = verify(&config, &args).await;
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("3 digests (3 signatures verified)"), "{err}");
    let cloudtrail: Vec<_> = moto
        .recording()
        .into_iter()
        .filter(|(_, _, target)| target.contains("CloudTrail"))
        .collect();
    assert!(
        cloudtrail.is_empty(),
        "restricted mode called CloudTrail: {cloudtrail:?}"
    );
}

/// A `run` configuration following `bucket` with integrity validation on, its output in `out`.
fn run_config(dir: &Path, url: &str, bucket: &str, out: &Path) -> PathBuf {
    let extra = format!(
        "\n[integrity]\nenabled = true\ncheck_interval_secs = 1\n\n[delete]\nenabled = false\n\n[output]\npath = \"{}\"\n",
        out.display()
    );
    let path = write_config(dir, url, bucket, "default", &extra);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[source]\n", "[source]\nstart = \"2024-03-01\"\n");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `trailwatch run --once` off the test's runtime: exit code and stderr.
async fn run_once(config: &Path) -> (i32, String) {
    let (code, _, err) = trailwatch(config, &["run", "--once"]).await;
    (code, err)
}

/// The integrity finding documents in `run`'s output file (not the trail check's), checked
/// against the schema.
fn run_findings(out: &Path) -> Vec<(String, String)> {
    findings_of(&integrity_lines(out))
}

/// The integrity finding lines of `run`'s output file: those with the location of a digest
/// or log file (the trail check's findings have none).
fn integrity_lines(out: &Path) -> String {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(r#""kind":"finding""#) && l.contains(r#""location":"#))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn findings_of(ndjson: &str) -> Vec<(String, String)> {
    findings(ndjson)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_judges_each_digest_against_the_files_it_read_and_reports_what_is_wrong_once() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url, public_keys).await;
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let e = digests::evidence("followed", 3);
    digests::store(&admin, &e).await;
    // Changed before run reads it, and deleted before it could.
    let text = String::from_utf8(common::gunzip(&e.logs[2].body)).unwrap();
    S3::new(&admin, &e.bucket)
        .put(
            &e.logs[2].key,
            Bytes::from(common::gzip(
                text.replacen("DescribeInstances", "DescribeInstancez", 1).as_bytes(),
            )),
        )
        .await
        .unwrap();
    S3::new(&admin, &e.bucket)
        .delete(&[e.logs[4].key.clone()])
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let config = run_config(dir.path(), &proxy.url, &e.bucket, &out);
    // One run reads the log files, hashing each as it reads it, then judges the digests with
    // those hashes: no log file is downloaded twice (the missing one is asked for once), and
    // exactly what was done is reported, beside every event of the files present.
    moto.start_recording();
    let (code, err) = run_once(&config).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("log files are validated against CloudTrail's digest files"),
        "{err}"
    );
    assert_eq!(err.matches("digest judged").count(), 3, "{err}");
    let mut found = run_findings(&out);
    found.sort();
    assert_eq!(
        found,
        vec![
            // No digest since the last one, in 2024: whether logging was on is not known
            // (the trail is not checked here), so a warning.
            ("digest-gap".into(), at(&e, &e.digests[2].key)),
            ("log-file-missing".into(), at(&e, &e.logs[4].key)),
            ("log-file-modified".into(), at(&e, &e.logs[2].key)),
        ],
        "{err}"
    );
    let events = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""kind":"event""#))
        .count();
    assert_eq!(events, 5 * 3, "every event of the five files present");
    let mut log_gets: Vec<String> = moto
        .recording()
        .into_iter()
        .filter(|(method, url, _)| method == "GET" && url.contains("/CloudTrail/"))
        .map(|(_, url, _)| url.rsplit('/').next().unwrap().to_owned())
        .collect();
    log_gets.sort();
    let mut expected: Vec<String> = e
        .logs
        .iter()
        .map(|l| l.key.rsplit('/').next().unwrap().to_owned())
        .collect();
    expected.sort();
    assert_eq!(
        log_gets, expected,
        "each log file downloaded once, the missing one asked for once"
    );

    // A restart goes on from the last digest judged: nothing is judged or reported twice.
    let (code, err) = run_once(&config).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("digest judged").count(), 0, "{err}");
    assert_eq!(run_findings(&out).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_turned_on_later_judges_only_what_comes_after_it() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url, public_keys).await;
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let e = digests::evidence("later", 2);
    digests::store(&admin, &e).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let config = run_config(dir.path(), &proxy.url, &e.bucket, &out);
    // Read without validation first: no hashes are kept.
    let off = std::fs::read_to_string(&config)
        .unwrap()
        .replace("enabled = true\ncheck_interval", "enabled = false\ncheck_interval");
    std::fs::write(&config, &off).unwrap();
    let (code, err) = run_once(&config).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("log-file integrity validation is off"), "{err}");
    // A file read then is gone now (as `run`'s own deletion would have it).
    S3::new(&admin, &e.bucket)
        .delete(&[e.logs[0].key.clone()])
        .await
        .unwrap();
    std::fs::write(
        &config,
        off.replace("enabled = false\ncheck_interval", "enabled = true\ncheck_interval"),
    )
    .unwrap();
    let (code, err) = run_once(&config).await;
    assert_eq!(code, 0, "{err}");
    // Its digests ended before validation was on: not judged, so nothing is called missing.
    assert_eq!(err.matches("digest judged").count(), 0, "{err}");
    assert_eq!(run_findings(&out), vec![], "{err}");
}

/// Two accounts, each in two regions, one bucket: `--account` and `--region` validate only the
/// streams asked for, and the table names each problem with its severity, code, location and
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_validates_only_the_accounts_and_regions_asked_for_and_tables_each_problem() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url, public_keys).await;
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let bucket = "streams";
    const OTHER: &str = "444455556666";
    let mut evidence = Vec::new();
    for account in [digests::ACCOUNT, OTHER] {
        for region in [digests::REGION, "eu-west-1"] {
            let stream = digests::Stream { account, region };
            let e = digests::evidence_in(stream, bucket, 2);
            digests::store(&admin, &e).await;
            evidence.push(e);
        }
    }
    // One file deleted in each stream but the first account's home region.
    for e in &evidence[1..] {
        S3::new(&admin, bucket).delete(&[e.logs[1].key.clone()]).await.unwrap();
    }
    let missing = |i: usize| {
        (
            "log-file-missing".to_owned(),
            at(&evidence[i], &evidence[i].logs[1].key),
        )
    };
    let case = Case {
        dir: tempfile::tempdir().unwrap(),
        url: proxy.url.clone(),
    };
    let config = write_config(case.dir.path(), &case.url, bucket, "default", "");
    let json = |filters: &'static [&'static str]| {
        let mut args = RANGE.to_vec();
        args.extend(["--format", "json"]);
        args.extend(filters);
        let config = config.clone();
        async move {
            let (code, out, err) = verify(&config, &args).await;
            let mut found = findings(&out);
            found.sort();
            (code, found, err)
        }
    };

    let (code, found, err) = json(&["--account", digests::ACCOUNT, "--region", digests::REGION]).await;
    assert_eq!((code, found), (0, vec![]), "{err}");
    assert!(
        err.contains("1 streams, 2 digests (2 signatures verified), 4 of 4 listed log files valid; 0 errors"),
        "{err}"
    );
    let (code, found, err) = json(&["--account", digests::ACCOUNT]).await;
    assert_eq!((code, found), (2, vec![missing(1)]), "{err}");
    assert!(err.contains("2 streams, 4 digests"), "{err}");
    let (code, found, err) = json(&["--region", "eu-west-1"]).await;
    assert_eq!((code, found), (2, vec![missing(1), missing(3)]), "{err}");
    assert!(err.contains("2 streams, 4 digests"), "{err}");
    let (code, found, err) = json(&["--account", OTHER, "--account", digests::ACCOUNT]).await;
    let mut all = vec![missing(1), missing(2), missing(3)];
    all.sort();
    assert_eq!((code, found), (2, all), "{err}");
    assert!(
        err.contains("4 streams, 8 digests (8 signatures verified), 13 of 16"),
        "{err}"
    );
    // An account with no evidence is said so, and is a failure.
    let (code, found, err) = json(&["--account", "999999999999"]).await;
    assert_eq!((code, found), (2, vec![]), "{err}");
    assert!(err.contains("no digest files under AWSLogs/"), "{err}");

    // The table: a line with severity, code and location, then the message indented.
    let mut args = RANGE.to_vec();
    args.extend(["--account", OTHER, "--region", "eu-west-1"]);
    let (code, out, err) = verify(&config, &args).await;
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        fields,
        ["error", "log-file-missing", &at(&evidence[3], &evidence[3].logs[1].key)],
        "{out}"
    );
    assert_eq!(
        lines[1], "         a log file the digest lists is not in the bucket: it was deleted or moved",
        "{out}"
    );
}

/// `run --once` over `e`'s bucket with integrity validation on: exit code, the integrity
/// findings it wrote (sorted) and its stderr.
async fn run_case(url: &str, e: &Evidence, mode: &str, extra: &str) -> (i32, Vec<(String, String)>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let config = run_config(dir.path(), url, &e.bucket, &out);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("mode = \"default\"", &format!("mode = \"{mode}\""))
        .replace("[integrity]\n", &format!("[integrity]\n{extra}"));
    std::fs::write(&config, text).unwrap();
    let (code, err) = run_once(&config).await;
    let mut found = run_findings(&out);
    found.sort();
    (code, found, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_a_removed_digest_a_forged_signature_and_a_slipped_in_file_exactly() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url, public_keys).await;
    let admin = moto.client("AKIDADMIN", "admin-secret");

    // A digest removed: the next one's chain names it.
    let e = digests::evidence("run-removed-digest", 3);
    digests::store(&admin, &e).await;
    S3::new(&admin, &e.bucket)
        .delete(&[e.digests[1].key.clone()])
        .await
        .unwrap();
    let (code, found, err) = run_case(&proxy.url, &e, "default", "").await;
    assert_eq!(code, 0, "{err}");
    // Each bucket's chain ends in 2024: with the trail not checked, a warning of a gap since.
    assert_eq!(
        found,
        vec![gap(&e), ("digest-missing".into(), at(&e, &e.digests[1].key))],
        "{err}"
    );

    // A signature forged over a changed log file's new hash.
    let e = forged("run-forged");
    digests::store(&admin, &e).await;
    let (code, found, err) = run_case(&proxy.url, &e, "default", "").await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        found,
        vec![gap(&e), ("digest-signature-invalid".into(), at(&e, &e.digests[2].key))],
        "{err}"
    );

    // A log file slipped in under a CloudTrail name: read, and listed by no digest.
    let e = digests::evidence("run-extra-log", 3);
    digests::store(&admin, &e).await;
    let extra = slip_in(&admin, &e).await;
    let (code, found, err) = run_case(&proxy.url, &e, "default", "").await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        found,
        vec![gap(&e), ("log-file-not-in-digest".into(), at(&e, &extra.key))],
        "{err}"
    );
}

/// The warning of a chain whose digests stopped coming, at `e`'s last digest.
fn gap(e: &Evidence) -> (String, String) {
    ("digest-gap".into(), at(e, &e.digests.last().unwrap().key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_in_restricted_mode_checks_hashes_and_chain_and_signatures_only_with_given_keys() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let mut e = digests::evidence("run-restricted", 3);
    // A byte changed: hashes are checked without CloudTrail.
    let text = String::from_utf8(common::gunzip(&e.logs[3].body)).unwrap();
    e.logs[3].body = common::gzip(text.replacen("DescribeInstances", "DescribeInstancez", 1).as_bytes());
    digests::store(&admin, &e).await;
    moto.start_recording();
    // Straight to moto: a ListPublicKeys call would fail there.
    let (code, found, err) = run_case(&moto.url, &e, "restricted", "").await;
    assert_eq!(code, 0, "{err}");
    let mut expected: Vec<(String, String)> = e
        .digests
        .iter()
        .map(|d| ("digest-signature-not-checked".into(), at(&e, &d.key)))
        .collect();
    expected.push(("log-file-modified".into(), at(&e, &e.logs[3].key)));
    expected.push(gap(&e));
    expected.sort();
    assert_eq!(found, expected, "{err}");

    // With CloudTrail's keys saved to a file, signatures are checked too, still without a call.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, digests::list_public_keys_answer()).unwrap();
    let (code, found, err) = run_case(
        &moto.url,
        &e,
        "restricted",
        &format!("public_keys_file = \"{}\"\n", keys.display()),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let mut expected = vec![("log-file-modified".into(), at(&e, &e.logs[3].key)), gap(&e)];
    expected.sort();
    assert_eq!(found, expected, "{err}");
    let cloudtrail: Vec<_> = moto
        .recording()
        .into_iter()
        .filter(|(_, _, target)| target.contains("CloudTrail"))
        .collect();
    assert!(
        cloudtrail.is_empty(),
        "restricted mode called CloudTrail: {cloudtrail:?}"
    );
}

/// The samples of counter `family` as (labels, value).
fn counter(scrape: &Value, family: &str) -> Vec<(Value, f64)> {
    scrape["families"][family]["samples"]
        .as_array()
        .map(|samples| {
            samples
                .iter()
                .filter(|s| s["name"].as_str() == Some(&format!("{family}_total")))
                .map(|s| (s["labels"].clone(), s["value"].as_f64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// With no `[integrity] enabled` set, a running `run` validates where the trail has log file
/// validation on, and counts each digest judged and each problem by code and severity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_run_validates_by_default_where_the_trail_validates_and_counts_what_it_found() {
    use trailwatch::aws::cloudtrail::{self, NewTrail};
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url, public_keys).await;
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let mut e = digests::evidence("validating", 3);
    let text = String::from_utf8(common::gunzip(&e.logs[1].body)).unwrap();
    e.logs[1].body = common::gzip(text.replacen("DescribeInstances", "DescribeInstancez", 1).as_bytes());
    digests::store(&admin, &e).await;
    let trail = |name: &str, bucket: &str, validation: bool| NewTrail {
        name: name.into(),
        s3_bucket_name: bucket.into(),
        s3_key_prefix: None,
        is_multi_region_trail: true,
        include_global_service_events: true,
        is_organization_trail: false,
        enable_log_file_validation: validation,
    };
    cloudtrail::create_trail(&admin, &trail("main-trail", &e.bucket, true))
        .await
        .unwrap();
    // Logging: an hour without a digest is then an error, not a warning.
    cloudtrail::start_logging(&admin, "main-trail").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = write_config(
        dir.path(),
        &proxy.url,
        &e.bucket,
        "default",
        &format!(
            "\n[integrity]\ncheck_interval_secs = 1\n\n[delete]\nenabled = false\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [output]\npath = \"{}\"\n",
            out.display()
        ),
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[trail]\ncheck = false\n", "[trail]\ncheck = true\n")
        .replace(
            "[source]\n",
            "[source]\nstart = \"2024-03-01\"\npoll_interval_secs = 1\n",
        );
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("run.log");
    let mut run = common::Daemon::spawn(
        common::with_config(&config)
            .env("TRAILWATCH_LOG", "info")
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("digest judged")
        .count()
        < 3
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "three digests judged: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            run.0.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("log files are validated against CloudTrail's digest files"),
        "{log_text}"
    );
    // The findings are written with the judging; the metrics count the same.
    let mut found: Vec<(String, String, String)> = Vec::new();
    let started = std::time::Instant::now();
    while found.len() < 2 && started.elapsed() < std::time::Duration::from_secs(30) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        found = common::lines(integrity_lines(&out).as_bytes())
            .iter()
            .map(|f: &Value| {
                (
                    f["code"].as_str().unwrap().to_owned(),
                    f["severity"].as_str().unwrap().to_owned(),
                    f["location"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    }
    found.sort();
    assert_eq!(
        found,
        vec![
            ("digest-gap".into(), "error".into(), at(&e, &e.digests[2].key)),
            ("log-file-modified".into(), "error".into(), at(&e, &e.logs[1].key)),
        ],
        "{log_text}"
    );
    let m = common::scrape(port);
    let mut problems: Vec<(String, String, f64)> = counter(&m, "trailwatch_integrity_problems")
        .into_iter()
        .map(|(labels, v)| {
            (
                labels["code"].as_str().unwrap().to_owned(),
                labels["severity"].as_str().unwrap().to_owned(),
                v,
            )
        })
        .collect();
    problems.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        problems,
        vec![
            ("digest-gap".into(), "error".into(), 1.0),
            ("log-file-modified".into(), "error".into(), 1.0),
        ]
    );
    let mut digests_judged: Vec<(String, f64)> = counter(&m, "trailwatch_integrity_digests")
        .into_iter()
        .map(|(labels, v)| (labels["result"].as_str().unwrap().to_owned(), v))
        .collect();
    digests_judged.sort_by(|a, b| a.0.cmp(&b.0));
    // The first hour's digest lists the changed file; the gap after the last is the chain's.
    assert_eq!(
        digests_judged,
        vec![("intact".into(), 2.0), ("problems".into(), 1.0)],
        "{log_text}"
    );
    run.signal("TERM");
    run.wait();

    // A trail with validation off: nothing is validated, and the log says why.
    let e = digests::evidence("not-validating", 1);
    digests::store(&admin, &e).await;
    cloudtrail::create_trail(&admin, &trail("quiet-trail", &e.bucket, false))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let config = write_config(
        dir.path(),
        &proxy.url,
        &e.bucket,
        "default",
        &format!(
            "\n[delete]\nenabled = false\n\n[output]\npath = \"{}\"\n",
            out.display()
        ),
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[trail]\ncheck = false\n", "[trail]\ncheck = true\n")
        .replace("[source]\n", "[source]\nstart = \"2024-03-01\"\n");
    std::fs::write(&config, text).unwrap();
    let (code, err) = run_once(&config).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("log-file integrity validation is off") && err.contains("the trail has log file validation off"),
        "{err}"
    );
    assert_eq!(run_findings(&out), vec![], "{err}");
}
