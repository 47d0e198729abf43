//! Shared test helpers: where the workspace, the plugins and the binary are.
#![allow(dead_code)]

pub mod digests;
pub mod moto;
pub mod networks;
pub mod poller;
pub mod proxy;
pub mod receiver;
pub mod recorded;
pub mod scenario;
pub mod signing;
pub mod sqs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host crate has a parent")
        .to_path_buf()
}

/// The directory the shipped plugin is built into by `cargo run -p xtask -- plugins`.
pub fn plugin_dir() -> PathBuf {
    let dir = root().join("plugins");
    assert!(
        dir.join(format!("trailwatch-core-{}.wasm", env!("CARGO_PKG_VERSION")))
            .exists(),
        "the plugin is not built: run `cargo run -p xtask -- plugins` (the README's test command does)"
    );
    dir
}

/// The shipped plugin file.
pub fn plugin_path() -> PathBuf {
    plugin_dir().join(format!("trailwatch-core-{}.wasm", env!("CARGO_PKG_VERSION")))
}

/// The sandbox fixture plugin (misbehaves on request; never shipped).
pub fn fixture_plugin_path() -> PathBuf {
    let p = root().join("target/fixture-plugins/sandbox-fixture.wasm");
    assert!(
        p.exists(),
        "the fixture plugin is not built: run `cargo run -p xtask -- plugins`"
    );
    p
}

/// A plugin directory `plugins` under `dir` holding a copy of the shipped plugin named `name`:
/// the directory and the copy.
pub fn plugin_copy(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let copy = plugins.join(name);
    std::fs::copy(plugin_path(), &copy).unwrap();
    (plugins, copy)
}

/// A compile cache shared by the tests (keeps each test from compiling the plugin again).
pub fn cache_dir() -> PathBuf {
    root().join("target/test-plugin-cache")
}

/// The `trailwatch` binary under test.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    c.env_remove("TRAILWATCH_CONFIG")
        .env_remove("TRAILWATCH_PLUGIN_DIR")
        .env("TRAILWATCH_LOG", "warn");
    c
}

/// `trailwatch --config <config>` with the shipped plugin and the shared compile cache; the
/// caller adds the command.
pub fn with_config(config: &Path) -> Command {
    let mut c = bin();
    c.arg("--config")
        .arg(config)
        .arg("--plugin-dir")
        .arg(plugin_dir())
        .arg("--cache-dir")
        .arg(cache_dir());
    c
}

/// Runs `command`: its exit code, stdout and stderr.
pub fn outcome(command: &mut Command) -> (i32, String, String) {
    let out = command.output().expect("running trailwatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A daemon started by a test, killed when the test ends however it ends (a failed assertion
/// must not leave it polling).
pub struct Daemon(pub std::process::Child);

impl Daemon {
    pub fn spawn(command: &mut Command) -> Self {
        Daemon(command.spawn().expect("starting trailwatch"))
    }

    /// Sends `signal` (`HUP`, `TERM`, …).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.0.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -{signal}");
    }

    /// Waits for the exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.0.wait().expect("waiting for trailwatch")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}

/// Runs `trailwatch --plugin-dir <dir> <args>` and returns its output.
pub fn run_with_plugins(dir: &Path, args: &[&str]) -> Output {
    bin()
        .arg("--plugin-dir")
        .arg(dir)
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(args)
        .output()
        .expect("running trailwatch")
}

/// Runs `trailwatch replay --no-progress <args>` with the shipped plugin.
pub fn replay(args: &[&str]) -> Output {
    let mut all = vec!["replay", "--no-progress"];
    all.extend_from_slice(args);
    run_with_plugins(&plugin_dir(), &all)
}

/// Parses NDJSON output into values.
pub fn lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("output line is not JSON ({e}): {l}")))
        .collect()
}

/// `trailwatch report --state-dir <state> --out <page>`.
pub fn report(state: &Path, page: &Path) -> Output {
    bin()
        .args([
            "report",
            "--state-dir",
            state.to_str().unwrap(),
            "--out",
            page.to_str().unwrap(),
        ])
        .output()
        .expect("running trailwatch report")
}

/// Parses NDJSON output into its event documents and the last revision of each incident, by
/// id.
pub fn events_and_incidents(
    stdout: &[u8],
) -> (
    Vec<serde_json::Value>,
    std::collections::BTreeMap<String, serde_json::Value>,
) {
    let mut events = Vec::new();
    let mut incidents = std::collections::BTreeMap::new();
    for d in lines(stdout) {
        match d["kind"].as_str() {
            Some("event") => events.push(d),
            Some("incident") => {
                incidents.insert(d["incident_id"].as_str().unwrap().to_owned(), d);
            }
            other => panic!("unexpected document kind {other:?}"),
        }
    }
    (events, incidents)
}

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

/// The decompressed bytes of gzip `data`.
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gzip in memory");
    out
}

/// A small valid CloudTrail log file with `n` records.
pub fn good_log(tag: &str, n: usize) -> String {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::210987654321:user/ci","accountId":"210987654321","userName":"ci"}},"eventTime":"2024-03-01T12:00:{:02}Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.10","userAgent":"test","requestID":"req-{tag}-{i}","eventID":"{tag}-{i}","readOnly":true,"eventType":"AwsApiCall","recipientAccountId":"210987654321"}}"#,
                i % 60
            )
        })
        .collect();
    format!(r#"{{"Records":[{}]}}"#, records.join(","))
}

/// Every line of the NDJSON `file` against `schema/<schema>` with a real validator (Python's
/// `jsonschema`, draft 2020-12; `tests/receivers/validate_schema.py`).
pub fn validate_schema(schema: &str, file: &Path) {
    let out = Command::new("python3")
        .arg(root().join("tests/receivers/validate_schema.py"))
        .arg(root().join("schema").join(schema))
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Keeps the README's generated block `<!-- name -->…<!-- /name -->` equal to `content`;
/// with `TRAILWATCH_BLESS=1`, writes it instead.
pub fn readme_block(name: &str, content: &str) {
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (open, close) = (format!("<!-- {name} -->\n"), format!("<!-- /{name} -->"));
    let start = readme
        .find(&open)
        .unwrap_or_else(|| panic!("README.md has no {open:?} block"))
        + open.len();
    let end = readme[start..].find(&close).expect("the block's end") + start;
    if std::env::var_os("TRAILWATCH_BLESS").is_some() {
        std::fs::write(&path, format!("{}{content}{}", &readme[..start], &readme[end..])).unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        content,
        "README.md's {name} block differs: run the test with TRAILWATCH_BLESS=1"
    );
}

/// The checkpoint a stopped trailwatch left in `state_dir` (`None`: none yet).
pub fn checkpoint_in(state_dir: &Path) -> Option<trailwatch::state::checkpoint::Checkpoint> {
    if !state_dir.join("state.redb").exists() {
        return None;
    }
    let mut store = trailwatch::state::checkpoint::CheckpointStore::open(state_dir).expect("the state store opens");
    store.load_existing().expect("the checkpoint reads")
}

/// Every line of the NDJSON `file` against the schema of its `kind` (`event`, `incident`,
/// `finding`).
pub fn validate_documents(file: &Path) {
    let text = std::fs::read_to_string(file).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for kind in ["event", "incident", "finding"] {
        let prefix = format!("{{\"kind\":\"{kind}\"");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
        if lines.is_empty() {
            continue;
        }
        let part = dir.path().join(format!("{kind}.ndjson"));
        std::fs::write(&part, lines.join("\n") + "\n").unwrap();
        validate_schema(&format!("{kind}.schema.json"), &part);
    }
    let known = text
        .lines()
        .filter(|l| {
            ["event", "incident", "finding"]
                .iter()
                .any(|k| l.starts_with(&format!("{{\"kind\":\"{k}\"")))
        })
        .count();
    assert_eq!(known, text.lines().count(), "every document has a known kind first");
}

/// Scrapes `/metrics` on `port` with the Prometheus project's parser (`prometheus_client`).
pub fn scrape(port: u16) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(root().join("tests/receivers/prom_parse.py"))
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
