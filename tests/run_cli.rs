//! `trailwatch run` as an operator runs it, against moto on 127.0.0.1: restricted mode with a
//! list+get-only key, `kill -9` in the middle of a poll, a wrong secret.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::moto::{self, Moto};
use common::proxy::{Fault, Proxy};

const BUCKET: &str = "trail-bucket";

fn write_config(dir: &Path, moto: &Moto, mode: &str, key: &str, secret: &str, extra: &str) -> std::path::PathBuf {
    write_config_at(dir, &moto.url, mode, key, secret, extra)
}

/// A config for the S3 endpoint at `url` (moto, or a proxy in front of it).
fn write_config_at(dir: &Path, url: &str, mode: &str, key: &str, secret: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        format!(
            r#"mode = "{mode}"

[aws]
region = "us-east-1"
endpoint_url = "{url}"
access_key_id = "{key}"
secret_access_key = "{secret}"
max_attempts = 3

[source]
bucket = "{BUCKET}"
start = "2024-03-01"
poll_interval_secs = 1

[state]
dir = "{state}"

[output]
path = "{out}"
{extra}"#,
            state = dir.join("state").display(),
            out = dir.join("events.ndjson").display(),
        ),
    )
    .unwrap();
    path
}

fn trailwatch(config: &Path, args: &[&str]) -> Command {
    let mut c = common::bin();
    c.arg("--config")
        .arg(config)
        .arg("--plugin-dir")
        .arg(common::plugin_dir())
        .arg("--cache-dir")
        .arg(common::cache_dir());
    c.args(args);
    c
}

/// The event ids in an output file (the trail check's finding documents left out).
fn ids_in(path: &Path) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    common::lines(&text)
        .iter()
        .filter(|e| e["kind"] == "event")
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

fn seed_files(n_files: usize, events: usize) -> Vec<moto::LogFile> {
    (0..n_files)
        .map(|f| {
            let day = if f % 2 == 0 { "2024-03-01" } else { "2024-03-02" };
            let hhmm = format!("{:02}{:02}", (f / 60) % 24, f % 60);
            moto::log_file("", "111122223333", "us-east-1", day, &hhmm, &format!("f{f:04}"), events)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_mode_works_with_list_and_get_only_and_never_calls_cloudtrail_or_deletes() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let files = seed_files(6, 4);
    moto::seed(&admin, BUCKET, &files).await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":"arn:aws:s3:::{BUCKET}"}},{{"Effect":"Allow","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::{BUCKET}/*"}}]}}"#
    );
    let (key, secret) = moto::iam_user(&admin, &moto.url, "reader", &policy).await;
    moto.enforce_auth();
    moto.start_recording();

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &moto, "restricted", &key, &secret, "");
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("restricted mode"), "says what is disabled: {stderr}");

    let got: BTreeSet<String> = ids_in(&dir.path().join("events.ndjson")).into_iter().collect();
    let expected: BTreeSet<String> = files.iter().flat_map(|f| f.ids.clone()).collect();
    assert_eq!(got, expected);

    let recording = moto.recording();
    assert!(!recording.is_empty());
    for (method, url, target) in &recording {
        assert!(
            !target.to_ascii_lowercase().contains("cloudtrail"),
            "CloudTrail called: {url}"
        );
        assert!(
            method != "DELETE" && !url.contains("?delete"),
            "delete attempted: {method} {url}"
        );
        // GET: ListObjectsV2 and GetObject; HEAD: HeadBucket (for the bucket's region), which
        // s3:ListBucket allows.
        assert!(
            method == "GET" || method == "HEAD",
            "only list, get and head: {method} {url}"
        );
    }

    // The same key cannot delete: the policy really is enforced.
    let reader = moto.client(&key, &secret);
    let refused = trailwatch::aws::s3::S3::new(&reader, BUCKET)
        .delete(&[files[0].key.clone()])
        .await
        .unwrap();
    assert_eq!(refused.len(), 1, "DeleteObjects reports the key as not deleted");
    assert_eq!(refused[0].code, "AccessDenied");
}

fn wait_for(mut done: impl FnMut() -> bool, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every download of a log file answered 100 ms late: a poll of a few hundred files takes
/// seconds however fast the machine, so that a kill lands in its middle.
fn slow_downloads(_n: u64, head: &str) -> Option<Fault> {
    let request_line = head.lines().next().unwrap_or("");
    (request_line.starts_with("GET ") && request_line.contains(".json.gz"))
        .then_some(Fault::Delay(Duration::from_millis(100)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_a_poll_then_a_restart_loses_no_event() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let files = seed_files(300, 40);
    moto::seed(&admin, BUCKET, &files).await;
    let proxy = Proxy::start(&moto.url, slow_downloads).await;
    let dir = tempfile::tempdir().unwrap();
    let slow_config = write_config_at(
        dir.path(),
        &proxy.url,
        "default",
        "AKIDADMIN",
        "admin-secret",
        "\n[delete]\nenabled = false\n",
    );
    let events_path = dir.path().join("events.ndjson");

    let mut child: Child = trailwatch(&slow_config, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        || ids_in_len(&events_path) >= 400,
        Duration::from_secs(120),
        "the first events",
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let first = ids_in(&events_path);
    let total: usize = files.iter().map(|f| f.ids.len()).sum();
    assert!(
        first.len() < total,
        "the kill must land mid-poll ({} of {total} written)",
        first.len()
    );

    // The restart reads moto directly.
    let config = write_config(
        dir.path(),
        &moto,
        "default",
        "AKIDADMIN",
        "admin-secret",
        "\n[delete]\nenabled = false\n",
    );
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let all = ids_in(&events_path);
    let unique: BTreeSet<&String> = all.iter().collect();
    let expected: BTreeSet<&String> = files.iter().flat_map(|f| &f.ids).collect();
    assert_eq!(unique, expected, "no event lost across kill -9 and restart");
    // At most the files in flight were emitted twice.
    let repeated = all.len() - unique.len();
    assert!(repeated <= 4 * 40 + 40, "{repeated} events repeated");
}

fn ids_in_len(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_gives_one_clear_error_and_backs_off_without_crashing() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    moto::seed(&admin, BUCKET, &seed_files(2, 2)).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let (key, _secret) = moto::iam_user(&admin, &moto.url, "ops", policy).await;
    moto.enforce_auth();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &moto, "default", &key, "not-the-secret", "");
    let (child, log, reader) = spawn_with_log(trailwatch(&config, &["run"]).env("TRAILWATCH_LOG", "warn"));
    let mut child = common::Daemon(child);
    // However slow the machine: the refusal is logged, and the process is still there after it
    // (backing off, not exiting or looping).
    wait_for(
        || log.lock().unwrap().contains("backing off"),
        Duration::from_secs(60),
        "the refusal to be logged",
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(child.0.try_wait().unwrap().is_none(), "exited after the refusal");
    child.signal("TERM");
    let status = child.wait();
    reader.join().unwrap();
    let stderr = log.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "SIGTERM exits cleanly: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error, not a flood:\n{stderr}");
    assert!(
        errors[0].contains("refused the credentials") && errors[0].contains("SignatureDoesNotMatch"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("backing off"), "{}", errors[0]);
    assert!(!dir.path().join("events.ndjson").exists() || ids_in_len(&dir.path().join("events.ndjson")) == 0);
}

async fn create_trail(client: &trailwatch::aws::AwsClient, url: &str, name: &str, prefix: &str) {
    let body = format!(r#"{{"Name":"{name}","S3BucketName":"{BUCKET}","S3KeyPrefix":"{prefix}"}}"#);
    client
        .send(trailwatch::aws::client::Request {
            operation: "cloudtrail:CreateTrail",
            service: "cloudtrail",
            method: reqwest::Method::POST,
            url: format!("{url}/"),
            headers: vec![
                ("content-type", "application/x-amz-json-1.1".into()),
                (
                    "x-amz-target",
                    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.CreateTrail".into(),
                ),
            ],
            body: bytes::Bytes::from(body),
            key: None,
            any_status: false,
        })
        .await
        .unwrap();
}

fn config_without_bucket(dir: &Path, moto: &Moto) -> std::path::PathBuf {
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        format!(
            "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\naccess_key_id = \"AKIDADMIN\"\nsecret_access_key = \"s\"\n\n\
             [source]\nstart = \"2024-03-01\"\n\n[delete]\nenabled = false\n\n[state]\ndir = \"{}\"\n\n[output]\npath = \"{}\"\n",
            moto.url,
            dir.join("state").display(),
            dir.join("events.ndjson").display()
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_mode_finds_the_bucket_and_prefix_from_the_trail() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    let files: Vec<moto::LogFile> = (0..3)
        .map(|f| {
            moto::log_file(
                "audit/",
                "111122223333",
                "us-east-1",
                "2024-03-01",
                &format!("010{f}"),
                "t",
                2,
            )
        })
        .collect();
    moto::seed(&admin, BUCKET, &files).await;
    create_trail(&admin, &moto.url, "main", "audit").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_without_bucket(dir.path(), &moto);
    let out = trailwatch(&config, &["run", "--once"])
        .env("TRAILWATCH_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("following trail") && stderr.contains("main"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cloudtrail:DescribeTrails 1"),
        "request counts reported: {stderr}"
    );
    let got: BTreeSet<String> = ids_in(&dir.path().join("events.ndjson")).into_iter().collect();
    let expected: BTreeSet<String> = files.iter().flat_map(|f| f.ids.clone()).collect();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_tower_trail_is_refused_with_a_clear_message() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    moto::seed(&admin, BUCKET, &[]).await;
    create_trail(&admin, &moto.url, "aws-controltower-BaselineCloudTrail", "").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_without_bucket(dir.path(), &moto);
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("managed by AWS Control Tower, which trailwatch does not support"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_standard_chain_when_the_config_has_none() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    let files = seed_files(2, 2);
    moto::seed(&admin, BUCKET, &files).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let (key, secret) = moto::iam_user(&admin, &moto.url, "chain", policy).await;
    moto.enforce_auth();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trailwatch.toml");
    std::fs::write(
        &config,
        format!(
            "mode = \"restricted\"\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n[source]\nbucket = \"{BUCKET}\"\nstart = \"2024-03-01\"\n\n\
             [state]\ndir = \"{}\"\n\n[output]\npath = \"{}\"\n",
            moto.url,
            dir.path().join("state").display(),
            dir.path().join("events.ndjson").display()
        ),
    )
    .unwrap();
    let out = trailwatch(&config, &["run", "--once"])
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TRAILWATCH_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains(&secret), "the secret never reaches the log");
    let got: BTreeSet<String> = ids_in(&dir.path().join("events.ndjson")).into_iter().collect();
    assert_eq!(got.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_in_another_region_is_read_with_that_region() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    // Create the bucket in eu-west-1 (LocationConstraint), then configure us-east-1.
    admin
        .send(trailwatch::aws::client::Request {
            operation: "s3:CreateBucket",
            service: "s3",
            method: reqwest::Method::PUT,
            url: format!("{}/{BUCKET}", moto.url),
            headers: vec![],
            body: bytes::Bytes::from_static(
                b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>",
            ),
            key: None,
            any_status: false,
        })
        .await
        .unwrap();
    let files = seed_files(2, 2);
    moto::seed(&admin, BUCKET, &files).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &moto, "restricted", "AKIDADMIN", "s", "");
    let out = trailwatch(&config, &["run", "--once"])
        .env("TRAILWATCH_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the bucket is in another region") && stderr.contains("eu-west-1"),
        "{stderr}"
    );
    assert_eq!(ids_in(&dir.path().join("events.ndjson")).len(), 4);
}

type Log = std::sync::Arc<std::sync::Mutex<String>>;

/// `trailwatch run` with the plugins of `plugins`, and its log as it is written.
fn run_with_log(config: &Path, plugins: &Path) -> (Child, Log, std::thread::JoinHandle<()>) {
    spawn_with_log(
        common::bin()
            .arg("--config")
            .arg(config)
            .arg("--plugin-dir")
            .arg(plugins)
            .arg("--cache-dir")
            .arg(common::cache_dir())
            .arg("run")
            .env("TRAILWATCH_LOG", "info"),
    )
}

/// Starts `command` with its stdout dropped, and its log (stderr) as it is written.
fn spawn_with_log(command: &mut Command) -> (Child, Log, std::thread::JoinHandle<()>) {
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let log = Log::default();
    let mut stderr = child.stderr.take().unwrap();
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stderr, &mut chunk) {
                log.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        })
    };
    (child, log, reader)
}

/// Today, as CloudTrail's key layout writes it: its files are read by a running `run`, the
/// days before are closed once read.
fn today() -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    trailwatch::layout::Day::of_ms(now_ms).to_string()
}

/// Replaces the plugin file `in_use` with a copy of `source` as an operator would: written beside
/// it, then renamed over it.
fn replace_in_place(source: &Path, in_use: &Path) {
    let staged = in_use.with_extension("wasm.part");
    std::fs::copy(source, &staged).unwrap();
    std::fs::rename(&staged, in_use).unwrap();
}

/// A file of today, with two events, delivered to the bucket.
async fn deliver(admin: &trailwatch::aws::AwsClient, today: &str, hhmm: &str, tag: &str) -> moto::LogFile {
    let file = moto::log_file("", "111122223333", "us-east-1", today, hhmm, tag, 2);
    moto::seed(admin, BUCKET, std::slice::from_ref(&file)).await;
    file
}

/// The admin client, today, and a first file of today seeded. "panic" in its key makes the
/// sandbox fixture plugin panic; the shipped plugin reads it.
async fn seed_today(moto: &Moto) -> (trailwatch::aws::AwsClient, String, moto::LogFile) {
    let admin = moto.client("AKIDADMIN", "s");
    let today = today();
    let first = moto::log_file("", "111122223333", "us-east-1", &today, "0000", "panic-a", 2);
    moto::seed(&admin, BUCKET, std::slice::from_ref(&first)).await;
    (admin, today, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_replaced_in_the_plugin_directory_is_taken_without_a_restart() {
    let moto = Moto::start();
    let (admin, today, first) = seed_today(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let name = common::plugin_path().file_name().unwrap().to_str().unwrap().to_owned();
    let (plugins, in_use) = common::plugin_copy(dir.path(), &name);
    let config = write_config(dir.path(), &moto, "restricted", "AKIDADMIN", "s", "");
    let (mut child, log, reader) = run_with_log(&config, &plugins);
    let logged = |what: &str| log.lock().unwrap().contains(what);
    let events = dir.path().join("events.ndjson");
    wait_for(
        || ids_in_len(&events) == 2,
        Duration::from_secs(60),
        "the first file's events",
    );

    replace_in_place(&common::fixture_plugin_path(), &in_use);
    wait_for(
        || logged("plugin upgraded without a restart"),
        Duration::from_secs(60),
        "the upgrade",
    );
    let second = moto::log_file("", "111122223333", "us-east-1", &today, "0005", "panic-b", 2);
    moto::seed(&admin, BUCKET, std::slice::from_ref(&second)).await;
    // The file's failure as the log says it (the checkpoint is in the state store, which the
    // running process holds).
    let failed_line = || {
        log.lock()
            .unwrap()
            .lines()
            .find(|l| l.contains("log file") && l.contains("panic-b"))
            .map(str::to_owned)
    };
    let failed_in_new_plugin = || failed_line().is_some();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !failed_in_new_plugin() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let stderr = log.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        failed_in_new_plugin(),
        "the second file did not fail in the new plugin: {stderr}"
    );
    assert_eq!(
        ids_in(&events),
        first.ids,
        "only the first file's events: the second met the new plugin"
    );
    let line = failed_line().unwrap_or_default();
    assert!(line.contains("plugin panicked"), "{line}");
    let checkpoint = common::checkpoint_in(&dir.path().join("state")).expect("a checkpoint");
    assert!(
        checkpoint
            .failed
            .iter()
            .any(|(k, f)| k.contains("panic-b") && f.reason.contains("plugin panicked")),
        "{:?}",
        checkpoint.failed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_require_signature_a_running_run_refuses_unsigned_and_foreign_plugins_and_takes_a_signed_one() {
    use common::signing::{policy, Key};
    let moto = Moto::start();
    let (admin, today, first) = seed_today(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let (plugins, in_use) = common::plugin_copy(dir.path(), "release.wasm");
    let release = Key::new();
    let stranger = Key::new();
    release.sign(&in_use);
    let config = write_config(
        dir.path(),
        &moto,
        "restricted",
        "AKIDADMIN",
        "s",
        &policy(&[&release], &[]),
    );
    let (child, log, reader) = run_with_log(&config, &plugins);
    let mut child = common::Daemon(child);
    let logged = |what: &str| log.lock().unwrap().contains(what);
    let events = dir.path().join("events.ndjson");
    wait_for(
        || ids_in_len(&events) == 2,
        Duration::from_secs(60),
        "the first file's events",
    );
    assert!(!logged("plugin refused"), "{}", log.lock().unwrap());
    // Which plugin reads a file: the shipped one reads "panic" files, the fixture panics.
    let failed = |tag: &str| {
        log.lock()
            .unwrap()
            .lines()
            .any(|l| l.contains("log file") && l.contains(tag))
    };

    // A new plugin without a signature: refused, the plugin in use stays.
    let extra = plugins.join("extra.wasm");
    std::fs::copy(common::fixture_plugin_path(), &extra).unwrap();
    wait_for(
        || logged("extra.wasm.minisig and its SHA-256") && logged("keeping the plugin in use"),
        Duration::from_secs(60),
        "the unsigned plugin's refusal",
    );
    std::fs::remove_file(&extra).unwrap();

    // The file in use replaced by another (its old signature no longer matches), then signed by
    // a key the policy does not trust: refused each time, and the plugin in use reads on.
    replace_in_place(&common::fixture_plugin_path(), &in_use);
    wait_for(
        || logged("does not match the file"),
        Duration::from_secs(60),
        "the stale signature's refusal",
    );
    stranger.sign(&in_use);
    wait_for(
        || {
            logged(&format!(
                "signed by key {}, which is not in [plugin] trusted_keys",
                stranger.id
            ))
        },
        Duration::from_secs(60),
        "the foreign signature's refusal",
    );
    let second = deliver(&admin, &today, "0005", "panic-b").await;
    wait_for(
        || ids_in_len(&events) == 4,
        Duration::from_secs(60),
        "the second file read by the plugin in use",
    );
    assert!(!logged("plugin upgraded without a restart"), "{}", log.lock().unwrap());

    // Signed by the release key: taken without a restart, and the next file meets it.
    release.sign(&in_use);
    wait_for(
        || logged("plugin upgraded without a restart"),
        Duration::from_secs(60),
        "the signed upgrade",
    );
    assert!(
        logged(&format!("signed by trusted key {}", release.id)),
        "{}",
        log.lock().unwrap()
    );
    deliver(&admin, &today, "0010", "panic-c").await;
    wait_for(
        || failed("panic-c"),
        Duration::from_secs(60),
        "the third file failing in the new plugin",
    );

    // Its file replaced by an unsigned one: the upgraded plugin stays in use, not the built-in
    // one that ranks next (which would read a "panic" file).
    replace_in_place(&common::plugin_path(), &in_use);
    wait_for(
        || logged("the plugin file in use was replaced by one that is refused"),
        Duration::from_secs(60),
        "the refusal of the file in use",
    );
    deliver(&admin, &today, "0015", "panic-d").await;
    wait_for(
        || failed("panic-d"),
        Duration::from_secs(60),
        "the fourth file failing in the plugin in use",
    );

    child.signal("TERM");
    let status = child.wait();
    reader.join().unwrap();
    let stderr = log.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let mut expected = first.ids.clone();
    expected.extend(second.ids.iter().cloned());
    assert_eq!(
        ids_in(&events),
        expected,
        "only the files read by the shipped plugin gave events"
    );
}

/// Downloads of log files never get an answer; everything else goes through.
fn stuck_downloads(_n: u64, head: &str) -> Option<Fault> {
    let request_line = head.lines().next().unwrap_or("");
    (request_line.starts_with("GET ") && request_line.contains(".json.gz")).then_some(Fault::Hang)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_for_a_stuck_download_and_loses_nothing() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    let files = seed_files(2, 3);
    moto::seed(&admin, BUCKET, &files).await;
    let proxy = Proxy::start(&moto.url, stuck_downloads).await;
    let dir = tempfile::tempdir().unwrap();
    // The default request timeout (60 s) is what SIGTERM must not wait for.
    let config = write_config_at(dir.path(), &proxy.url, "restricted", "AKIDADMIN", "s", "");
    let child = trailwatch(&config, &["run"])
        .env("TRAILWATCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        || proxy.faults.load(std::sync::atomic::Ordering::Relaxed) > 0,
        Duration::from_secs(60),
        "a download to hang",
    );
    let signalled = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Well under the 60 s request timeout it would otherwise wait for, however slow the machine.
    assert!(
        took < Duration::from_secs(30),
        "exited {took:?} after SIGTERM: {stderr}"
    );
    assert_eq!(ids_in_len(&dir.path().join("events.ndjson")), 0);

    // Nothing was recorded for the cancelled downloads: a run without the proxy reads them all.
    let config = write_config(dir.path(), &moto, "restricted", "AKIDADMIN", "s", "");
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let got: BTreeSet<String> = ids_in(&dir.path().join("events.ndjson")).into_iter().collect();
    let expected: BTreeSet<String> = files.iter().flat_map(|f| f.ids.clone()).collect();
    assert_eq!(got, expected);
}

/// Recognisable credentials: neither may appear in anything trailwatch prints or serves.
const CANARY_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/CANARYsecretKEY0123";
const CANARY_TOKEN: &str = "IQoJb3JpZ2luCANARYsessionTOKEN//////wEaCXVzLWVhc3QtMSJH";

fn assert_no_secret(what: &str, text: &str) {
    for (name, secret) in [("secret access key", CANARY_SECRET), ("session token", CANARY_TOKEN)] {
        // Also a part of it: a value cut short or split over lines still leaks.
        for part in [secret, &secret[12..30]] {
            assert!(!text.contains(part), "{what} shows the {name}:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_shows_the_secret_key_or_the_session_token_anywhere() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "s");
    moto::seed(&admin, BUCKET, &seed_files(2, 3)).await;
    let dir = tempfile::tempdir().unwrap();
    let port = moto::free_port();
    let creds = format!("session_token = \"{CANARY_TOKEN}\"\n");
    let config = write_config(
        dir.path(),
        &moto,
        "default",
        "AKIDCANARY",
        CANARY_SECRET,
        &format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    // The session token goes into [aws] (write_config has no parameter for it).
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("max_attempts = 3\n", &format!("max_attempts = 3\n{creds}")),
    )
    .unwrap();
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut record = |what: &str, out: std::process::Output| {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push((what.to_owned(), text));
        out.status.code()
    };

    // A running `run` at the most verbose log level, and its metrics.
    let (child, log, reader) = spawn_with_log(trailwatch(&config, &["run"]).env("TRAILWATCH_LOG", "trace"));
    let mut child = common::Daemon(child);
    let events = dir.path().join("events.ndjson");
    wait_for(|| ids_in_len(&events) >= 6, Duration::from_secs(60), "the events");
    let (status, metrics) = moto::http(&format!("http://127.0.0.1:{port}/metrics"), "GET", "").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("trailwatch_"), "{metrics}");
    assert_no_secret("/metrics", &metrics);
    child.signal("TERM");
    assert_eq!(child.wait().code(), Some(0));
    reader.join().unwrap();
    let verbose = log.lock().unwrap().clone();
    assert!(
        verbose.contains("DEBUG") && verbose.contains("TRACE"),
        "not a verbose log:\n{verbose}"
    );
    assert_no_secret("run's trace-level text log", &verbose);
    assert_no_secret("the events", &std::fs::read_to_string(&events).unwrap());

    // Every command, text and JSON logs, and every --help.
    let commands: Vec<Vec<&str>> = vec![
        vec!["--log-format", "json", "run", "--once"],
        vec!["check"],
        vec!["check", "--format", "json"],
        vec!["policy"],
        vec!["plugin"],
        vec!["replay", "--no-progress", "samples"],
        vec!["--log-format", "json", "setup", "--bucket", "canary-bucket"],
        // Signed listings (the bucket has no digests: verify says so and fails).
        vec![
            "verify",
            "--start",
            "2024-03-01T00:00:00Z",
            "--end",
            "2024-03-03T00:00:00Z",
        ],
        vec!["--log-format", "json", "verify", "--format", "json"],
        vec!["--help"],
    ];
    for args in &commands {
        let out = trailwatch(&config, args)
            .current_dir(common::root())
            .env("TRAILWATCH_LOG", "debug")
            .output()
            .unwrap();
        record(&args.join(" "), out);
    }
    // The report page of what run scored.
    let page = dir.path().join("report.html");
    let state = dir.path().join("state");
    let out = trailwatch(
        &config,
        &[
            "report",
            "--state-dir",
            state.to_str().unwrap(),
            "--out",
            page.to_str().unwrap(),
        ],
    )
    .env("TRAILWATCH_LOG", "debug")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    record("report", out);
    assert_no_secret("the report page", &std::fs::read_to_string(&page).unwrap());
    for sub in [
        "replay", "run", "plugin", "policy", "setup", "check", "verify", "report",
    ] {
        let out = common::bin().args([sub, "--help"]).output().unwrap();
        record(&format!("{sub} --help"), out);
    }

    // Refusals: the AWS error answers (which quote the request they refused) and trailwatch's
    // messages about them, from the config and from the environment.
    moto.enforce_auth();
    let code = record(
        "run --once refused",
        trailwatch(&config, &["run", "--once"])
            .env("TRAILWATCH_LOG", "debug")
            .output()
            .unwrap(),
    );
    assert_ne!(
        code,
        Some(0),
        "the canary secret is not moto's: the run must be refused"
    );
    record(
        "check refused (json logs)",
        trailwatch(&config, &["--log-format", "json", "check"])
            .output()
            .unwrap(),
    );
    record(
        "verify refused (json logs)",
        trailwatch(&config, &["--log-format", "json", "verify", "--format", "json"])
            .env("TRAILWATCH_LOG", "debug")
            .output()
            .unwrap(),
    );
    let bare = dir.path().join("bare.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let bare_text: String = text
        .lines()
        .filter(|l| {
            !l.starts_with("access_key_id") && !l.starts_with("secret_access_key") && !l.starts_with("session_token")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&bare, bare_text).unwrap();
    record(
        "run --once with credentials from the environment",
        trailwatch(&bare, &["run", "--once"])
            .env("AWS_ACCESS_KEY_ID", "AKIDCANARY")
            .env("AWS_SECRET_ACCESS_KEY", CANARY_SECRET)
            .env("AWS_SESSION_TOKEN", CANARY_TOKEN)
            .env("TRAILWATCH_LOG", "trace")
            .output()
            .unwrap(),
    );
    for (what, text) in &seen {
        assert_no_secret(what, text);
    }
    // The checks looked at real output: the refusals were reported.
    for what in ["run --once refused", "verify refused (json logs)"] {
        let refused = &seen.iter().find(|(w, _)| w == what).unwrap().1;
        assert!(
            refused.contains("SignatureDoesNotMatch") || refused.contains("InvalidAccessKeyId"),
            "{what}: {refused}"
        );
    }
    let verified = &seen.iter().find(|(w, _)| w.starts_with("verify --start")).unwrap().1;
    assert!(verified.contains("no digest files under"), "{verified}");
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The crash soak: `run` (default mode, deleting what it processed) is killed with SIGKILL at
/// pseudo-random instants and started again, over a bucket whose downloads are slowed a little
/// so that the kills spread over listing, fetching, reading, sink writes, acknowledgements,
/// checkpoint commits and deletions. After every kill: no file is gone from the bucket before
/// all its events are in the sink. At the end: every event arrived, the bucket is empty, and the
/// repeats stay within the files in flight at each kill. CI runs a short version; the README's
/// soak sets TRAILWATCH_SOAK_KILLS, TRAILWATCH_SOAK_FILES (and TRAILWATCH_SOAK_SEED to repeat a run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_soak_kill_9_at_random_instants_loses_nothing_and_never_deletes_early() {
    let kills = env_number("TRAILWATCH_SOAK_KILLS", 7);
    let n_files = env_number("TRAILWATCH_SOAK_FILES", 80) as usize;
    let per_file = 30;
    let seed = env_number(
        "TRAILWATCH_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64,
    );
    eprintln!("crash soak: {kills} kills over {n_files} files of {per_file} events, seed {seed}");
    let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move |below: u64| {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) % below
    };
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    // Delivered as a trail delivers: a new day's files before each start, so that every run
    // lists, reads, writes, commits and deletes.
    let rounds = kills as usize + 1;
    let per_round = n_files.div_ceil(rounds);
    let mut files: Vec<moto::LogFile> = Vec::new();
    let proxy = Proxy::start(&moto.url, soak_downloads).await;
    let dir = tempfile::tempdir().unwrap();
    let soak_config = |url: &str| {
        let path = write_config_at(
            dir.path(),
            url,
            "default",
            "AKIDADMIN",
            "admin-secret",
            "\n[delete]\nafter_hours = 1\n",
        );
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace(
                "poll_interval_secs = 1\n",
                "poll_interval_secs = 1\nrelist_interval_secs = 0\n",
            ),
        )
        .unwrap();
        path
    };
    let config = soak_config(&proxy.url);
    let events_path = dir.path().join("events.ndjson");
    let s3 = trailwatch::aws::s3::S3::new(&admin, BUCKET);
    let mut deleted_at_kills = Vec::new();
    // Kills that landed while the run still had files to read or delete.
    let mut mid_work = 0;
    // (stage aimed at, stage last started at the kill): kills.
    let mut hits: std::collections::BTreeMap<(&str, &str), u32> = Default::default();
    let mut nth_missed = 0;
    for kill in 0..kills {
        let round = delivery(kill, per_round, per_file);
        moto::seed(&admin, BUCKET, &round).await;
        files.extend(round);
        // Each kill is aimed at a stage in turn: it lands 0–30 ms after the stage's first,
        // second or third start (when the run starts it that often before it goes idle).
        let aim = STAGES[kill as usize % STAGES.len()];
        let (mut child, log, reader) =
            spawn_with_log(trailwatch(&config, &["run"]).env("TRAILWATCH_LOG", "warn,trailwatch::stage=debug"));
        let started = Instant::now();
        // A poll deletes what is due in one request: its first start is the one. A listing's
        // first start is before the delivery is read (the check below relies on it).
        let nth = if matches!(aim, "deleting" | "listing") {
            1
        } else {
            1 + next(3) as usize
        };
        // Past the first start, a stage not started again within a second is not waited for.
        let (mut seen, mut last_seen) = (0, Instant::now());
        while seen < nth && !(seen > 0 && last_seen.elapsed() > Duration::from_secs(1)) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "kill {kill} (seed {seed}): run never started {aim:?}:\n{}",
                log.lock().unwrap()
            );
            assert!(child.try_wait().unwrap().is_none(), "run exited before its kill");
            std::thread::sleep(Duration::from_millis(5));
            let now_seen = stage_lines(&log.lock().unwrap()).filter(|s| *s == aim).count();
            if now_seen != seen {
                (seen, last_seen) = (now_seen, Instant::now());
            }
        }
        if seen < nth {
            // Killed at the stage's last start instead: that start, not the second since.
            nth_missed += 1;
        }
        let after = Duration::from_millis(next(31));
        std::thread::sleep(after);
        assert!(child.try_wait().unwrap().is_none(), "run exited before its kill");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let hit = stage_lines(&log.lock().unwrap()).last().unwrap_or("starting");
        *hits.entry((aim, hit)).or_insert(0) += 1;
        let after = started.elapsed();
        let remaining: BTreeSet<String> = s3
            .list_all("", None, None)
            .await
            .unwrap()
            .objects
            .into_iter()
            .map(|o| o.key)
            .collect();
        let written: BTreeSet<String> = ids_in(&events_path).into_iter().collect();
        let mut deleted = 0;
        for f in files.iter().filter(|f| !remaining.contains(&f.key)) {
            deleted += 1;
            let missing = f.ids.iter().filter(|id| !written.contains(*id)).count();
            assert_eq!(
                missing, 0,
                "kill {kill} (after {after:?}, seed {seed}): {} was deleted with {missing} of its events not in the sink",
                f.key
            );
        }
        let delivered = files.len() * per_file;
        if written.len() < delivered || deleted < files.len() {
            mid_work += 1;
        }
        eprintln!(
            "kill {kill} after {after:?}: {} of {delivered} events written, {deleted} of {} files deleted",
            written.len(),
            files.len()
        );
        deleted_at_kills.push(deleted);
    }

    // The last day's files, and a last run straight to moto to finish what is left.
    let round = delivery(kills, per_round, per_file);
    moto::seed(&admin, BUCKET, &round).await;
    files.extend(round);
    let config = soak_config(&moto.url);
    let out = trailwatch(&config, &["run", "--once"])
        .env("TRAILWATCH_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let all = ids_in(&events_path);
    let unique: BTreeSet<&String> = all.iter().collect();
    let expected: BTreeSet<&String> = files.iter().flat_map(|f| &f.ids).collect();
    let missing: Vec<&&String> = expected.difference(&unique).collect();
    assert!(
        missing.is_empty() && unique.len() == expected.len(),
        "seed {seed}: {} events never reached the sink, e.g. {:?}; the last run's log:\n{stderr}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    let left = s3.list_all("", None, None).await.unwrap().objects.len();
    assert_eq!(left, 0, "seed {seed}: every processed file was deleted");
    let repeated = all.len() - unique.len();
    eprintln!(
        "crash soak done: {} events, {repeated} repeated ({:.1} files' worth over {kills} kills, {mid_work} of them with work in flight), files deleted by each kill: {deleted_at_kills:?}",
        unique.len(),
        repeated as f64 / per_file as f64
    );
    eprintln!(
        "kills by (stage aimed at, stage under way when killed): {hits:?}; {nth_missed} aimed at a later start of their stage than came"
    );
    // A kill while listing or fetching a new delivery always leaves work in flight (downloads
    // take 200 ms): those must have been counted so.
    let early = (0..kills)
        .filter(|k| matches!(STAGES[*k as usize % STAGES.len()], "listing" | "fetching"))
        .count();
    assert!(
        mid_work >= early,
        "seed {seed}: {mid_work} kills with work in flight, {early} aimed at listing or fetching"
    );
    // What a kill can repeat: the files whose events were written but whose checkpoint had not
    // moved yet (the ones in flight), at most five at a time here (as in the single-kill test).
    assert!(
        repeated <= kills as usize * 5 * per_file,
        "seed {seed}: {repeated} events repeated over {kills} kills"
    );
}

/// `run`'s stages as it logs them at debug level (target `trailwatch::stage`), in the order a
/// file goes through them.
const STAGES: [&str; 7] = [
    "listing",
    "fetching",
    "reading",
    "sink batch",
    "acknowledged",
    "committing",
    "deleting",
];

/// The stages started in a `run` log, in order.
fn stage_lines(log: &str) -> impl Iterator<Item = &'static str> + '_ {
    log.lines().filter(|l| l.contains("trailwatch::stage")).filter_map(|l| {
        STAGES
            .iter()
            .copied()
            .find(|s| l.contains(&format!("trailwatch::stage: {s}")))
    })
}

/// A delivery of `n` files of `per_file` events for yesterday (an open day, listed again at
/// every poll with `relist_interval_secs = 0`; its files are more than an hour old, so due for
/// deletion), round `round` a minute after each other from 00:00 + 40 minutes a round.
fn delivery(round: u64, n: usize, per_file: usize) -> Vec<moto::LogFile> {
    assert!(
        n <= 40 && round < 28,
        "{n} files in round {round}: more than the day's slots"
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let yesterday = trailwatch::layout::Day::of_ms(now_ms - 86_400_000).to_string();
    (0..n)
        .map(|f| {
            let minute = round as usize * 40 + f;
            let hhmm = format!("{:02}{:02}", minute / 60, minute % 60);
            moto::log_file(
                "",
                "111122223333",
                "us-east-1",
                &yesterday,
                &hhmm,
                &format!("s{round}-{f}"),
                per_file,
            )
        })
        .collect()
}

/// Downloads of log files and deletions answered 200 ms late: a poll lasts long enough for
/// kills to land in it, and a kill aimed at a deletion lands while it is under way.
fn soak_downloads(_n: u64, head: &str) -> Option<Fault> {
    let request_line = head.lines().next().unwrap_or("");
    let download = request_line.starts_with("GET ") && request_line.contains(".json.gz");
    let deletion = request_line.starts_with("POST ") && request_line.contains("?delete");
    (download || deletion).then_some(Fault::Delay(Duration::from_millis(200)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_looks_source_addresses_up_in_the_configured_databases_and_refuses_one_it_cannot_read() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let mut files = seed_files(2, 3);
    for f in &mut files {
        let text = String::from_utf8(common::gunzip(&f.body)).unwrap();
        f.body = common::gzip(text.replace("\"192.0.2.1\"", "\"81.2.69.160\"").as_bytes());
    }
    moto::seed(&admin, BUCKET, &files).await;
    let dir = tempfile::tempdir().unwrap();
    let (asn, country) = common::networks::databases(dir.path());

    // A database that cannot be read stops `run` before it calls anything, naming the file.
    let missing = dir.path().join("missing.mmdb");
    let extra = format!("[enrich]\nasn_database = \"{}\"\n", missing.display());
    let config = write_config(dir.path(), &moto, "restricted", "AKIDADMIN", "admin-secret", &extra);
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("cannot read the ASN database") && stderr.contains("missing.mmdb"),
        "{stderr}"
    );
    assert!(!dir.path().join("events.ndjson").exists(), "nothing was read");

    let extra = format!(
        "[enrich]\nasn_database = \"{}\"\ncountry_database = \"{}\"\n",
        asn.display(),
        country.display()
    );
    let config = write_config(dir.path(), &moto, "restricted", "AKIDADMIN", "admin-secret", &extra);
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let events = common::lines(&std::fs::read(dir.path().join("events.ndjson")).unwrap());
    let events: Vec<_> = events.iter().filter(|e| e["kind"] == "event").collect();
    assert_eq!(events.len(), 6);
    for e in events {
        assert_eq!(
            e["source_network"],
            serde_json::json!({"scope":"public","asn":64500,"as_org":"Example Telecom","country":"GB"}),
            "{e}"
        );
        assert!(e["delivery"]["bucket"].is_string(), "the delivery member stays: {e}");
    }
}
