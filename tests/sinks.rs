//! `trailwatch run` feeding real receivers on 127.0.0.1 (an NDJSON HTTP receiver and an OTLP
//! receiver that decodes every request with the OTLP protobuf JSON mapping) and a file at once,
//! through faults: retries, rejections, a sink that fails while the others work, a stalled
//! receiver, `kill -9`; and the metrics endpoint scraped with a real Prometheus parser.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::moto::{self, Moto};
use common::proxy::{error_response, Fault, Proxy};
use common::receiver::{Pki, Receiver};
use common::Daemon;

const BUCKET: &str = "trail-bucket";

/// A default-mode config over moto with `sinks` (TOML tables) and `extra`.
fn config(dir: &Path, moto: &Moto, sinks: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[aws]
region = "us-east-1"
endpoint_url = "{url}"
access_key_id = "AKIDTEST"
secret_access_key = "secret"
max_attempts = 3

[source]
bucket = "{BUCKET}"
start = "2024-03-01"
poll_interval_secs = 1

[delete]
enabled = false

[state]
dir = "{state}"

{sinks}
{extra}"#,
            url = moto.url,
            state = dir.join("state").display(),
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
        .arg(common::cache_dir())
        .args(args);
    c
}

fn files(n: usize, events: usize) -> Vec<moto::LogFile> {
    (0..n)
        .map(|f| {
            let day = if f % 2 == 0 { "2024-03-01" } else { "2024-03-02" };
            moto::log_file(
                "",
                "111122223333",
                "us-east-1",
                day,
                &format!("{:02}{:02}", f / 60, f % 60),
                &format!("s{f:03}"),
                events,
            )
        })
        .collect()
}

fn count(ids: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for id in ids {
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

/// The event ids an NDJSON receiver got (the trail check's finding documents left out).
fn ndjson_ids(r: &Receiver) -> BTreeMap<String, usize> {
    count(
        r.received()
            .iter()
            .filter(|e| e["kind"] == "event")
            .map(|e| e["event_id"].as_str().unwrap().to_owned()),
    )
}

/// The event ids the OTLP receiver decoded, from each record's body.
/// (The trail check's findings, which have no `event_id`, left out.)
fn otlp_ids(r: &Receiver) -> BTreeMap<String, usize> {
    count(r.received().iter().filter_map(|rec| {
        let values = rec["record"]["body"]["kvlistValue"]["values"].as_array().unwrap();
        let id = values.iter().find(|kv| kv["key"] == "event_id")?;
        Some(id["value"]["stringValue"].as_str().unwrap().to_owned())
    }))
}

fn expected(files: &[moto::LogFile]) -> BTreeMap<String, usize> {
    count(files.iter().flat_map(|f| f.ids.clone()))
}

fn wait_for(mut done: impl FnMut() -> bool, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of `sample` with `labels` in a scrape (0 when absent).
fn sample(scrape: &serde_json::Value, family: &str, sample: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(f) = scrape["families"].get(family) else {
        return 0.0;
    };
    f["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == sample && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

/// GET on the metrics port; status 0 while nothing listens yet.
fn get(port: u16, path: &str) -> (u16, String) {
    moto::http(&format!("http://127.0.0.1:{port}{path}"), "GET", "").unwrap_or((0, String::new()))
}

fn sigterm(child: &Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_file_http_and_otlp_sinks_each_get_every_event_exactly_once_through_retries() {
    let moto = Moto::start();
    let files = files(12, 25);
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &files).await;
    let http = Receiver::start("ndjson");
    let otlp = Receiver::start("otlp");
    // Passing troubles on both: they are retried, and nothing arrives twice.
    http.control(r#"{"fail": [503, 429, 500], "retry_after": 1, "reset": 2, "delay_secs": 0.1}"#);
    otlp.control(r#"{"fail": [503, 429], "retry_after": 1, "reset": 1, "partial_reject": 2}"#);
    let dir = tempfile::tempdir().unwrap();
    let sinks = format!(
        r#"[[sinks]]
type = "http"
url = "{}/ingest"
compression = "gzip"
batch_max_events = 40
retry_initial_backoff_ms = 50
headers = {{ Authorization = "Bearer ${{env:TW_TEST_TOKEN}}" }}

[[sinks]]
type = "otlp"
endpoint = "{}"
batch_max_events = 100
retry_initial_backoff_ms = 50

[[sinks]]
type = "file"
path = "{}"

[[sinks]]
type = "stdout"
"#,
        http.url,
        otlp.url,
        dir.path().join("events.ndjson").display()
    );
    let config = config(dir.path(), &moto, &sinks, "");
    let out = trailwatch(&config, &["run", "--once"])
        .env("TW_TEST_TOKEN", "tok-123")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("tok-123"), "the token is never logged: {stderr}");

    let want = expected(&files);
    assert_eq!(ndjson_ids(&http), want, "HTTP: every event exactly once");
    assert_eq!(otlp_ids(&otlp), want, "OTLP: every event exactly once");
    assert_eq!(
        otlp.errors(),
        "",
        "every OTLP request decodes with the protobuf JSON mapping"
    );
    let file_docs = common::lines(&std::fs::read(dir.path().join("events.ndjson")).unwrap());
    let (findings, file_events): (Vec<_>, Vec<_>) = file_docs.clone().into_iter().partition(|d| d["kind"] == "finding");
    assert_eq!(
        count(file_events.iter().map(|e| e["event_id"].as_str().unwrap().to_owned())),
        want
    );
    // The start-up trail check's finding (moto has no trail), ahead of the events, once.
    assert_eq!(file_docs[0]["kind"], "finding");
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["code"], "no-trail");

    let stats = http.stats();
    assert!(stats["failed_requests"].as_u64().unwrap() >= 5, "{stats}");
    assert_eq!(stats["last_headers"]["authorization"], "Bearer tok-123");
    assert_eq!(stats["last_headers"]["content-type"], "application/x-ndjson");
    assert!(stats["content_encodings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e == "gzip"));
    assert!(stats["max_request_lines"].as_u64().unwrap() <= 40, "{stats}");

    // The OTLP records: event time, severity, resource and attributes.
    let received = otlp.received();
    let has_event_id = |r: &&serde_json::Value| {
        r["record"]["body"]["kvlistValue"]["values"]
            .as_array()
            .is_some_and(|v| v.iter().any(|kv| kv["key"] == "event_id"))
    };
    let rec = received.iter().find(has_event_id).unwrap();
    assert_eq!(rec["resource"]["service.name"], "trailwatch");
    assert_eq!(rec["scope"]["name"], "trailwatch");
    let body = rec["record"]["body"]["kvlistValue"]["values"].as_array().unwrap();
    let field = |k: &str| body.iter().find(|kv| kv["key"] == k).unwrap()["value"].clone();
    let ms: u128 = field("event_time_ms")["intValue"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        rec["record"]["timeUnixNano"].as_str().unwrap(),
        (ms * 1_000_000).to_string()
    );
    assert!(rec["record"]["observedTimeUnixNano"].as_str().is_some());
    assert!(rec["record"]["severityText"].is_string());
    let attrs = rec["record"]["attributes"].as_array().unwrap();
    assert!(attrs.iter().any(|a| a["key"] == "trailwatch.metric"));
    assert!(
        stderr.contains("the collector rejected some log records (partial success)") && stderr.contains("rejected=2"),
        "a partial success is reported: {stderr}"
    );
    let from_stdout = common::lines(&out.stdout);
    assert_eq!(
        count(
            from_stdout
                .iter()
                .filter(|e| e["kind"] == "event")
                .map(|e| e["event_id"].as_str().unwrap().to_owned())
        ),
        want,
        "stdout: every event exactly once"
    );

    // The file sink's documents are replay's, but for the delivery record: replay a copy of the
    // bucket laid out as `aws s3 sync` leaves it, from its root so that the keys match.
    let copy = tempfile::tempdir().unwrap();
    for f in &files {
        let p = copy.path().join(&f.key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &f.body).unwrap();
    }
    let replayed = common::bin()
        .current_dir(copy.path())
        .arg("--plugin-dir")
        .arg(common::plugin_dir())
        .arg("--cache-dir")
        .arg(common::cache_dir())
        .args(["replay", "--no-progress", "AWSLogs"])
        .output()
        .unwrap();
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let mut from_run: Vec<serde_json::Value> = file_events
        .into_iter()
        .map(|mut e| {
            assert!(e["delivery"].is_object());
            e.as_object_mut().unwrap().remove("delivery");
            e
        })
        .collect();
    let mut from_replay = common::lines(&replayed.stdout);
    let by_id = |e: &serde_json::Value| e["event_id"].as_str().unwrap().to_owned();
    from_run.sort_by_key(by_id);
    from_replay.sort_by_key(by_id);
    assert_eq!(from_run, from_replay, "run and replay write the same documents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_rejects_is_reported_with_its_answer_and_nothing_is_marked_done() {
    let moto = Moto::start();
    let files = files(4, 5);
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &files).await;
    let http = Receiver::start("ndjson");
    http.control(r#"{"reject": 400}"#);
    let dir = tempfile::tempdir().unwrap();
    let sinks = format!("[[sinks]]\ntype = \"http\"\nname = \"siem\"\nurl = \"{}/\"\n", http.url);
    let config = config(dir.path(), &moto, &sinks, "");
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("siem") && stderr.contains("400") && stderr.contains("rejected by test receiver"),
        "the rejection names the sink and carries the receiver's answer: {stderr}"
    );
    assert_eq!(http.received().len(), 0);
    let done = common::checkpoint_in(&dir.path().join("state")).map_or(0, |c| c.done.len());
    assert_eq!(done, 0, "nothing marked done");

    // Once the receiver takes them, every event arrives, once.
    http.control(r#"{"reject": null}"#);
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ndjson_ids(&http), expected(&files));
}

/// One request in five to S3 faulted, by a hash of its number: a 503 SlowDown, a 500, a reset
/// before any answer, an answer 300 ms late, or an answer cut off halfway through its body.
fn one_in_five(n: u64, _: &str) -> Option<Fault> {
    let mut h = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    if h % 100 >= 20 {
        return None;
    }
    Some(match (h / 100) % 5 {
        0 => Fault::Answer(error_response("503 Slow Down", "SlowDown")),
        1 => Fault::Answer(error_response("500 Internal Server Error", "InternalError")),
        2 => Fault::Reset,
        3 => Fault::Delay(Duration::from_millis(300)),
        _ => Fault::Truncate,
    })
}

/// The fault soak (issue: crash and fault soaks): 20 % of S3 requests and 20 % of the HTTP
/// receiver's requests fail in every way they can; `run` keeps going until every event is in
/// both sinks. `TRAILWATCH_SOAK_FILES` (default 40) sets the bucket's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_soak_one_request_in_five_failing_at_s3_and_at_the_receiver_loses_nothing() {
    let n: usize = std::env::var("TRAILWATCH_SOAK_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let moto = Moto::start();
    let files = files(n, 25);
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &files).await;
    let proxy = Proxy::start(&moto.url, one_in_five).await;
    let http = Receiver::start("ndjson");
    http.control(r#"{"fault_rate": 0.2}"#);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.ndjson");
    let sinks = format!(
        "[[sinks]]\ntype = \"http\"\nname = \"siem\"\nurl = \"{}/in\"\nbatch_max_events = 100\n\
         retry_initial_backoff_ms = 50\nretry_max_backoff_secs = 2\nmax_retries = 20\n\n\
         [[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        http.url,
        out.display()
    );
    let cfg = config(dir.path(), &moto, &sinks, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(&moto.url, &proxy.url);
    std::fs::write(&cfg, text).unwrap();
    let stderr = dir.path().join("stderr.log");
    let mut daemon = Daemon::spawn(
        trailwatch(&cfg, &["run"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap()),
    );
    let want = expected(&files);
    let file_ids = || {
        let bytes = std::fs::read(&out).unwrap_or_default();
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        count(
            common::lines(&bytes[..complete])
                .iter()
                .filter(|e| e["kind"] == "event")
                .map(|e| e["event_id"].as_str().unwrap().to_owned()),
        )
    };
    let all_in = |got: &BTreeMap<String, usize>| want.keys().all(|k| got.contains_key(k));
    wait_for(
        || all_in(&ndjson_ids(&http)) && all_in(&file_ids()),
        Duration::from_secs(600),
        "every event in both sinks",
    );
    let peak_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", daemon.0.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    daemon.signal("TERM");
    assert!(daemon.wait().success());
    let log = std::fs::read_to_string(&stderr).unwrap();
    let report = |prefix: &str| {
        log.lines()
            .rev()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {log}"))
            .to_owned()
    };
    let retries = report("trailwatch run: retries: ");
    let requests = report("trailwatch run: AWS requests: ");
    let stats = http.stats();
    let received = ndjson_ids(&http);
    let in_file = file_ids();
    let repeats = |got: &BTreeMap<String, usize>| got.values().map(|&c| c - 1).sum::<usize>();
    eprintln!(
        "fault soak: {n} files, {} events; S3 requests through the proxy {}, faulted {}; receiver requests {}, \
         random faults {}; AWS requests: {requests}; retries: {retries}; repeated at the receiver {}, in the \
         file {}; peak RSS {} MiB",
        want.len(),
        proxy.seen.load(std::sync::atomic::Ordering::Relaxed),
        proxy.faults.load(std::sync::atomic::Ordering::Relaxed),
        stats["requests"],
        stats["random_faults"],
        repeats(&received),
        repeats(&in_file),
        peak_kib / 1024
    );
    // Nothing lost, nothing made up.
    assert!(received.keys().eq(want.keys()) && in_file.keys().eq(want.keys()));
    // The faults happened, were retried, and the report says so per operation and per sink.
    assert!(
        proxy.faults.load(std::sync::atomic::Ordering::Relaxed) >= 5,
        "S3 faults injected"
    );
    assert!(
        retries.contains("s3:GetObject ") && retries.contains("sink siem "),
        "{retries}"
    );
    // Repeats at the receiver come only from answers cut off after it took the lines (at most
    // a request's worth each); the file sink repeats only what a file re-read after a failure
    // carried, which the receiver's retries did not cause.
    let cut = stats["random_faults"]["cut"].as_u64().unwrap_or(0) as usize;
    assert!(
        repeats(&received) <= cut * 100,
        "{} repeats for {cut} cut answers",
        repeats(&received)
    );
    assert_eq!(repeats(&in_file), 0, "the file sink got each event once");
    // Memory stays bounded while requests fail and are retried.
    assert!(peak_kib < 256 * 1024, "peak RSS {} MiB", peak_kib / 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_sinks_trust_a_private_ca_and_present_a_client_certificate_to_receivers_that_require_one() {
    let moto = Moto::start();
    let files = files(4, 5);
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &files).await;
    let pki = Pki::new();
    let http = Receiver::start_tls("ndjson", &pki, true);
    let otlp = Receiver::start_tls("otlp", &pki, true);
    let dir = tempfile::tempdir().unwrap();
    let sinks = |ca: &str, client: bool| {
        let tls = |name: &str| {
            let mut t = format!("tls_ca_file = \"{}\"\n", pki.path(ca));
            if client {
                t += &format!(
                    "tls_client_cert_file = \"{}\"\ntls_client_key_file = \"{}\"\n",
                    pki.path("client.pem"),
                    pki.path("client.key")
                );
            }
            format!("name = \"{name}\"\nmax_retries = 1\nretry_initial_backoff_ms = 10\n{t}")
        };
        format!(
            "[[sinks]]\ntype = \"http\"\nurl = \"{}/in\"\n{}\n[[sinks]]\ntype = \"otlp\"\nendpoint = \"{}\"\n{}",
            http.url,
            tls("siem"),
            otlp.url,
            tls("collector")
        )
    };
    assert!(http.url.starts_with("https://127.0.0.1:"), "{}", http.url);

    // A CA that did not sign the receiver's certificate: refused, said so, nothing sent.
    let cfg = config(dir.path(), &moto, &sinks("other-ca.pem", true), "");
    let out = trailwatch(&cfg, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("siem") && stderr.contains(&http.url) && stderr.contains("UnknownIssuer"),
        "the refusal names the sink, the receiver and the certificate's trouble: {stderr}"
    );
    assert_eq!(http.received().len() + otlp.received().len(), 0);

    // The right CA but no client certificate: the receivers refuse the connection.
    let cfg = config(dir.path(), &moto, &sinks("ca.pem", false), "");
    let out = trailwatch(&cfg, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&http.url) || stderr.contains(&otlp.url), "{stderr}");
    assert_eq!(http.received().len() + otlp.received().len(), 0);

    // Both: every event reaches both receivers, once.
    let cfg = config(dir.path(), &moto, &sinks("ca.pem", true), "");
    let out = trailwatch(&cfg, &["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ndjson_ids(&http), expected(&files));
    assert_eq!(otlp_ids(&otlp), expected(&files));

    // A file that is not what its key says is named at start-up.
    std::fs::write(dir.path().join("not-a-cert.pem"), "hello\n").unwrap();
    let bad = sinks("ca.pem", true).replace(
        &pki.path("ca.pem"),
        &dir.path().join("not-a-cert.pem").display().to_string(),
    );
    let cfg = config(dir.path(), &moto, &bad, "");
    let out = trailwatch(&cfg, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("sink siem: tls_ca_file") && stderr.contains("not-a-cert.pem"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_sink_failing_the_checkpoint_waits_and_after_it_recovers_no_sink_has_lost_or_doubled_anything() {
    let moto = Moto::start();
    let files = files(10, 20);
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &files).await;
    let good = Receiver::start("ndjson");
    let bad = Receiver::start("ndjson");
    bad.control(r#"{"reject": 400}"#);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sinks = format!(
        "[[sinks]]\ntype = \"http\"\nname = \"good\"\nurl = \"{}/\"\n\n[[sinks]]\ntype = \"http\"\nname = \"bad\"\nurl = \"{}/\"\n",
        good.url, bad.url
    );
    let config = config(
        dir.path(),
        &moto,
        &sinks,
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let child = trailwatch(&config, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let want = expected(&files);
    wait_for(
        || ndjson_ids(&good) == want,
        Duration::from_secs(60),
        "the good sink to get everything",
    );
    // Polls go on (backing off) while the bad sink refuses; the good one gets nothing twice.
    wait_for(
        || bad.stats()["failed_requests"].as_u64().unwrap_or(0) >= 2,
        Duration::from_secs(30),
        "a second attempt at the bad sink",
    );
    assert_eq!(
        ndjson_ids(&good),
        want,
        "no duplicates at the good sink while the other fails"
    );
    let m = common::scrape(port);
    assert_eq!(
        sample(&m, "trailwatch_files", "trailwatch_files_total", &[("result", "done")]),
        0.0,
        "the checkpoint waits for every sink"
    );
    let (status, text) = get(port, "/readyz");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("bad"), "{text}");
    let m = common::scrape(port);
    assert!(
        sample(
            &m,
            "trailwatch_sink_rejections",
            "trailwatch_sink_rejections_total",
            &[("sink", "bad")]
        ) >= 1.0
    );

    bad.control(r#"{"reject": null}"#);
    wait_for(
        || ndjson_ids(&bad) == want,
        Duration::from_secs(60),
        "the bad sink to recover and get everything",
    );
    wait_for(
        || {
            sample(
                &common::scrape(port),
                "trailwatch_files",
                "trailwatch_files_total",
                &[("result", "done")],
            ) >= files.len() as f64
        },
        Duration::from_secs(30),
        "the checkpoint to move",
    );
    assert_eq!(ndjson_ids(&good), want, "still no duplicates at the good sink");
    assert_eq!(ndjson_ids(&bad), want, "the recovered sink got each event once");
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The files were scored in every cycle the bad sink refused, and learned (and reported)
    // only in the one that committed them: the report counts each event once.
    let by_identity = good
        .received()
        .iter()
        .filter(|e| e["kind"] == "event" && e["identity"].is_string())
        .count();
    assert!(
        by_identity > 0 && by_identity < 1000,
        "{by_identity} (written without a group separator)"
    );
    let page = dir.path().join("report.html");
    let state = dir.path().join("state");
    let out = common::report(&state, &page);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    let shown = format!("<b id=\"n-events\">{by_identity}</b>");
    assert!(html.contains(&shown), "{shown} not in the report's totals");

    // The baselines learned each event once, though the scoring instance (which remembers
    // entries between batches) scored the files in every refused cycle: they are those of a
    // run whose one sink took everything at once. (That run also sweeps, once event time
    // passes a day; this bucket's calls come from no public network and make no incident, so
    // the sweep changes nothing here: a difference is learning, not the sweep.)
    let once = tempfile::tempdir().unwrap();
    let receiver = Receiver::start("ndjson");
    let sinks = format!(
        "[[sinks]]\ntype = \"http\"\nname = \"good\"\nurl = \"{}/\"\n",
        receiver.url
    );
    let config = self::config(once.path(), &moto, &sinks, "");
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ndjson_ids(&receiver), want);
    let learned = scoring_entries(&state);
    assert!(learned.keys().any(|k| k.starts_with("i/")), "{:?}", learned.keys());
    assert!(
        learned == scoring_entries(&once.path().join("state")),
        "the refused cycles left their mark on the baselines"
    );
}

/// Scoring's entries in the state store of `state_dir`.
fn scoring_entries(state_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let store = trailwatch::state::checkpoint::CheckpointStore::open(state_dir).unwrap();
    let state =
        trailwatch::score::state::ScoreState::on_disk(store.database().clone(), store.path().to_owned()).unwrap();
    let (entries, more) = state.page("", None, 1_000_000).unwrap();
    assert!(more.is_none());
    entries.into_iter().map(|e| (e.key, e.value)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints_say_what_the_run_did() {
    let moto = Moto::start();
    let files = files(6, 10);
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &files).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sinks = format!(
        "[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        dir.path().join("out.ndjson").display()
    );
    let config = config(
        dir.path(),
        &moto,
        &sinks,
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let child = trailwatch(&config, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let total: usize = files.iter().map(|f| f.ids.len()).sum();
    wait_for(|| get(port, "/readyz").0 == 200, Duration::from_secs(60), "readiness");
    wait_for(
        || {
            sample(
                &common::scrape(port),
                "trailwatch_files",
                "trailwatch_files_total",
                &[("result", "done")],
            ) == files.len() as f64
        },
        Duration::from_secs(30),
        "every file counted",
    );
    let m = common::scrape(port);
    assert_eq!(
        sample(&m, "trailwatch_events", "trailwatch_events_total", &[]),
        total as f64
    );
    // The start-up trail check: moto has no trail at all.
    assert_eq!(
        sample(
            &m,
            "trailwatch_trail_findings",
            "trailwatch_trail_findings",
            &[("code", "no-trail"), ("severity", "error")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "trailwatch_events",
            "trailwatch_events_total",
            &[("metric", "aws.ec2.create")]
        ) + sample(
            &m,
            "trailwatch_events",
            "trailwatch_events_total",
            &[("metric", "aws.ec2.read")]
        ),
        total as f64,
        "the generated events are EC2 reads and creates"
    );
    assert_eq!(
        sample(
            &m,
            "trailwatch_s3_requests",
            "trailwatch_s3_requests_total",
            &[("operation", "s3:GetObject")]
        ),
        files.len() as f64
    );
    assert_eq!(
        sample(
            &m,
            "trailwatch_delivery_delay_seconds",
            "trailwatch_delivery_delay_seconds_count",
            &[]
        ),
        total as f64
    );
    assert!(
        sample(
            &m,
            "trailwatch_last_successful_poll_timestamp_seconds",
            "trailwatch_last_successful_poll_timestamp_seconds",
            &[]
        ) > 1.7e9
    );
    let plugin = &m["families"]["trailwatch_plugin_info"]["samples"][0]["labels"];
    assert_eq!(plugin["name"], "trailwatch-core", "{plugin}");
    assert_eq!(plugin["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(get(port, "/healthz").0, 200);
    assert_eq!(get(port, "/nope").0, 404);
    sigterm(&child);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(0));
}

/// The resident memory of a process, from /proc.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_receiver_holds_memory_under_the_cap_and_kill_9_mid_batch_loses_nothing() {
    let moto = Moto::start();
    // ~36 MB of events, against a 2 MiB in-flight cap.
    let files = files(120, 200);
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &files).await;
    let http = Receiver::start("ndjson");
    http.control(r#"{"stall": true}"#);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sinks = format!(
        "[[sinks]]\ntype = \"http\"\nurl = \"{}/\"\nbatch_max_bytes = 262144\n",
        http.url
    );
    let extra = format!("[pipeline]\nmax_inflight_mib = 2\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    let config = config(dir.path(), &moto, &sinks, &extra);
    let mut child = trailwatch(&config, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        || http.stats()["stalled_now"].as_u64().unwrap_or(0) > 0,
        Duration::from_secs(60),
        "a stalled request",
    );
    // Reading stops at the cap: the in-flight gauge stays under it and memory stays flat.
    std::thread::sleep(Duration::from_secs(3));
    let inflight = sample(
        &common::scrape(port),
        "trailwatch_inflight_bytes",
        "trailwatch_inflight_bytes",
        &[],
    );
    assert!(inflight > 0.0 && inflight <= (2 << 20) as f64, "in flight: {inflight}");
    let rss = rss_mib(child.id());
    assert!(rss < 150, "resident memory {rss} MiB with a stalled receiver");

    child.kill().unwrap(); // SIGKILL, mid-batch
    child.wait().unwrap();
    http.control(r#"{"stall": false}"#);
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let got = ndjson_ids(&http);
    let want = expected(&files);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "every event at least once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_writes_one_object_per_line_with_stable_messages() {
    let moto = Moto::start();
    let files = files(2, 3);
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &files).await;
    let dir = tempfile::tempdir().unwrap();
    let sinks = format!(
        "[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        dir.path().join("out.ndjson").display()
    );
    let config = config(dir.path(), &moto, &sinks, "");
    let out = trailwatch(&config, &["--log-format", "json", "run", "--once"])
        .env("TRAILWATCH_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let poll = logs
        .iter()
        .find(|l| l["fields"]["message"] == "poll done")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(poll["level"], "INFO");
    assert_eq!(poll["fields"]["files"], 2);
    assert_eq!(poll["fields"]["events"], 6);
    assert!(logs.iter().any(|l| l["fields"]["message"] == "AWS requests made"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_cap_smaller_than_what_a_sink_gathers_slows_delivery_but_never_stops_it() {
    let moto = Moto::start();
    // One file of 3000 events: six plugin batches, each larger than the 1 MiB cap and than the
    // sink's 1 MiB requests, so the sink holds part of a batch while the writer waits for room.
    let files = vec![moto::log_file(
        "",
        "111122223333",
        "us-east-1",
        "2024-03-01",
        "0100",
        "big",
        3000,
    )];
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &files).await;
    let http = Receiver::start("ndjson");
    let dir = tempfile::tempdir().unwrap();
    let sinks = format!(
        "[[sinks]]\ntype = \"http\"\nurl = \"{}/\"\nbatch_timeout_ms = 200\n",
        http.url
    );
    let config = config(dir.path(), &moto, &sinks, "[pipeline]\nmax_inflight_mib = 1\n");
    let mut child = trailwatch(&config, &["run", "--once"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("run --once did not finish: the writer and the sink wait for each other");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert_eq!(ndjson_ids(&http), expected(&files));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomalies_and_incidents_are_counted_by_severity_and_learned_with_the_checkpoint() {
    let moto = Moto::start();
    // The root user signing in to the console without MFA: an anomaly that is an incident by
    // itself, with no baseline needed.
    let record = r#"{"eventVersion":"1.09","userIdentity":{"type":"Root","principalId":"111122223333","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"},"eventTime":"2024-03-01T03:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"No"},"eventID":"root-login-1","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0300Z_root.json.gz";
    let mut all = files(2, 5);
    all.push(moto::LogFile {
        key: key.into(),
        body: common::gzip(format!(r#"{{"Records":[{record}]}}"#).as_bytes()),
        ids: vec!["root-login-1".into()],
    });
    moto::seed(&moto.client("AKIDTEST", "secret"), BUCKET, &all).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().join("out.ndjson");
    let sinks = format!("[[sinks]]\ntype = \"file\"\npath = \"{}\"\n", out.display());
    let live = dir.path().join("live.html");
    let config = config(
        dir.path(),
        &moto,
        &sinks,
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[report]\npath = \"{}\"\nevery_minutes = 1\n",
            live.display()
        ),
    );
    let child = trailwatch(&config, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        || get(port, "/healthz").0 == 200,
        Duration::from_secs(60),
        "the metrics endpoint",
    );
    wait_for(
        || {
            sample(
                &common::scrape(port),
                "trailwatch_files",
                "trailwatch_files_total",
                &[("result", "done")],
            ) == all.len() as f64
        },
        Duration::from_secs(60),
        "every file done",
    );
    // While it runs (`trailwatch report` cannot open the store it holds), run keeps the page
    // of what it committed: the anomaly, once.
    wait_for(
        || std::fs::read_to_string(&live).is_ok_and(|p| p.contains("<b id=\"n-anomalies\">1</b>")),
        Duration::from_secs(90),
        "run's report page with the anomaly",
    );
    let m = common::scrape(port);
    assert_eq!(
        sample(
            &m,
            "trailwatch_anomalies",
            "trailwatch_anomalies_total",
            &[("severity", "high")]
        ),
        1.0
    );
    assert_eq!(
        sample(&m, "trailwatch_anomalies", "trailwatch_anomalies_total", &[]),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "trailwatch_incidents",
            "trailwatch_incidents_total",
            &[("severity", "high"), ("change", "opened")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "trailwatch_incidents",
            "trailwatch_incidents_total",
            &[("severity", "high"), ("change", "closed")]
        ),
        1.0
    );
    sigterm(&child);
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(0));

    let docs = common::lines(&std::fs::read(&out).unwrap());
    let login = docs
        .iter()
        .find(|d| d["event_id"] == "root-login-1")
        .expect("the sign-in");
    assert_eq!(login["anomalous"], true, "{login}");
    assert_eq!(login["severity"], "high");
    let codes: Vec<&str> = login["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["console_login_without_mfa", "root_usage"]);
    // Reported at once; closed by the sweep when a file of the next day moved event time on
    // past the incident gap.
    let incidents: Vec<&serde_json::Value> = docs.iter().filter(|d| d["kind"] == "incident").collect();
    assert_eq!(incidents.len(), 2, "{incidents:#?}");
    assert_eq!(incidents[0]["events"], serde_json::json!(["root-login-1"]));
    assert_eq!(login["incident"], incidents[0]["incident_id"]);
    assert_eq!(
        (&incidents[0]["status"], &incidents[0]["revision"]),
        (&serde_json::json!("open"), &serde_json::json!(1))
    );
    assert_eq!(
        (&incidents[1]["status"], &incidents[1]["revision"]),
        (&serde_json::json!("closed"), &serde_json::json!(2))
    );
    assert_eq!(incidents[0]["incident_id"], incidents[1]["incident_id"]);
    // The other events are scored too, and not anomalous.
    assert!(docs
        .iter()
        .filter(|d| d["kind"] == "event")
        .all(|d| d["score"].is_u64()));
    assert_eq!(docs.iter().filter(|d| d["anomalous"] == true).count(), 1);

    // What scoring learned is in the state store, committed with the checkpoint.
    let state_dir = dir.path().join("state");
    let mut store = trailwatch::state::checkpoint::CheckpointStore::open(&state_dir).unwrap();
    let checkpoint = store.load_existing().unwrap().expect("a checkpoint");
    assert!(checkpoint.is_done(key));
    let state =
        trailwatch::score::state::ScoreState::on_disk(store.database().clone(), store.path().to_owned()).unwrap();
    let root = "arn:aws:iam::111122223333:root";
    let got = state.get(&[format!("i/{root}"), format!("n/{root}")]).unwrap();
    let keys: Vec<&str> = got.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [format!("i/{root}")],
        "the root's baseline; its incident closed and gone"
    );
    // The report's entries commit with them: `trailwatch report` shows the closed incident
    // and the anomaly, once each.
    drop((state, store));
    let page = dir.path().join("report.html");
    let out = common::report(&state_dir, &page);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    let id = incidents[1]["incident_id"].as_str().unwrap();
    assert_eq!(html.matches(&format!("data-incident=\"{id}\"")).count(), 1);
    // run wrote its page once more as it stopped: the same incident, closed.
    let last = std::fs::read_to_string(&live).unwrap();
    assert!(last.contains("running trailwatch"), "its origin");
    assert_eq!(last.matches(&format!("data-incident=\"{id}\"")).count(), 1);
    assert!(last.contains("<span class=\"status closed\">closed</span>"));
    assert!(html.contains("<span class=\"status closed\">closed</span>"));
    assert!(
        html.contains("<b id=\"n-anomalies\">1</b>"),
        "one anomaly, counted once"
    );
    assert_eq!(
        html.matches(&format!("<tr data-event=\"{}\"", login["event_id"].as_str().unwrap()))
            .count(),
        2,
        "in the incident and the top anomalies"
    );
}
