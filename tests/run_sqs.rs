//! `trailwatch run` with `[source] type = "sqs"`, against moto on 127.0.0.1: moto delivers the
//! bucket's S3 event notifications to a real queue; the tests send the other formats
//! themselves. Several instances on one queue with one killed, poison messages and the
//! dead-letter queue, visibility extended for a slow object, restricted mode under IAM.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::moto::{self, LogFile, Moto};
use common::proxy::{Fault, Proxy};
use common::sqs;
use common::Daemon;
use futures::StreamExt;
use trailwatch::aws::AwsClient;

const BUCKET: &str = "trail-bucket";

/// A config reading `queue` through the endpoint `url`; `extra` is appended.
fn write_config(dir: &Path, url: &str, queue: &str, mode: &str, key: &str, secret: &str, extra: &str) -> PathBuf {
    let path = dir.join("trailwatch.toml");
    let trail = if mode == "restricted" {
        ""
    } else {
        "\n[trail]\ncheck = false\n"
    };
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
type = "sqs"
queue_url = "{queue}"
bucket = "{BUCKET}"
wait_time_secs = 1

[state]
dir = "{state}"

[output]
path = "{out}"
{trail}{extra}"#,
            state = dir.join("state").display(),
            out = dir.join("events.ndjson").display(),
        ),
    )
    .unwrap();
    path
}

fn trailwatch(config: &Path, args: &[&str]) -> std::process::Command {
    let mut c = common::with_config(config);
    c.args(args);
    c
}

/// (event id, object key) of every event in an output file; a last line cut off by a kill is
/// left out.
fn events_in(path: &Path) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    complete
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|e| e["kind"] == "event")
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_owned(),
                e["origin"]["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn wait_for(mut done: impl FnMut() -> bool, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn wait_for_async<F: std::future::Future<Output = bool>>(
    mut done: impl FnMut() -> F,
    limit: Duration,
    what: &str,
) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` log files of `events` events each, in one stream.
fn files(n: usize, events: usize, tag: &str) -> Vec<LogFile> {
    (0..n)
        .map(|f| {
            let hhmm = format!("{:02}{:02}", (f / 60) % 24, f % 60);
            moto::log_file(
                "",
                "111122223333",
                "us-east-1",
                "2024-03-01",
                &hhmm,
                &format!("{tag}{f:04}"),
                events,
            )
        })
        .collect()
}

/// Uploads `files` eight at a time.
async fn upload(client: &AwsClient, files: &[LogFile]) {
    let s3 = trailwatch::aws::s3::S3::new(client, BUCKET);
    futures::stream::iter(files)
        .map(|f| s3.put(&f.key, bytes::Bytes::from(f.body.clone())))
        .buffer_unordered(8)
        .for_each(|r| async { r.unwrap() })
        .await;
}

/// The AWS request counts `run` reports as it exits.
fn requests(stderr: &str) -> BTreeMap<String, u64> {
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("trailwatch run: AWS requests: "))
        .unwrap_or_else(|| panic!("no request counts in: {stderr}"));
    line.split(", ")
        .filter_map(|p| p.rsplit_once(' '))
        .map(|(op, n)| (op.to_owned(), n.parse().unwrap()))
        .collect()
}

/// The (time, message id, objects) of every message a log says was received, and the (time,
/// message id) of every message it says was deleted (the queue answered the delete with
/// success for it). Times are the log's RFC 3339 stamps, which sort as text.
#[allow(clippy::type_complexity)]
fn receipts_and_deletions(log: &str) -> (Vec<(String, String, String)>, Vec<(String, String)>) {
    let mut receipts = Vec::new();
    let mut deletions = Vec::new();
    for l in log.lines() {
        let time = l.split(' ').next().unwrap_or("").to_owned();
        if l.contains("queue message received") {
            let id = l
                .split(" message_id=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned();
            let objects = l.split(" objects=").nth(1).unwrap().trim().to_owned();
            receipts.push((time, id, objects));
        } else if l.contains("deleted finished queue messages") {
            let ids = l
                .split(" messages=")
                .nth(1)
                .unwrap()
                .split(" answered_after_ms=")
                .next()
                .unwrap();
            deletions.extend(
                ids.split(' ')
                    .filter(|i| !i.is_empty())
                    .map(|i| (time.clone(), i.to_owned())),
            );
        }
    }
    (receipts, deletions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_a_queue_and_one_killed_loses_nothing() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    trailwatch::aws::s3::S3::new(&admin, BUCKET)
        .create_bucket()
        .await
        .unwrap();
    let (queue, _) = sqs::queue(&admin, &moto.url, "trail-files", 15, Some(10)).await;
    let arn = sqs::arn(&admin, &moto.url, &queue).await;
    sqs::notify(&admin, &moto.url, BUCKET, &arn).await;
    let files = files(1000, 3, "f");
    upload(&admin, &files).await;

    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut daemons: Vec<Daemon> = dirs
        .iter()
        .map(|d| {
            let config = write_config(
                d.path(),
                &moto.url,
                &queue,
                "default",
                "AKIDADMIN",
                "admin-secret",
                "\n[delete]\nenabled = false\n",
            );
            Daemon::spawn(
                trailwatch(&config, &["run"])
                    .env("TRAILWATCH_LOG", "info,trailwatch::source::sqs=debug")
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(d.path().join("stderr.log")).unwrap()),
            )
        })
        .collect();
    let out = |i: usize| dirs[i].path().join("events.ndjson");
    wait_for(
        || events_in(&out(0)).len() >= 150,
        Duration::from_secs(120),
        "the first instance's events",
    );
    daemons[0].0.kill().unwrap(); // SIGKILL, mid-stream
    daemons[0].wait();
    let killed: BTreeSet<(String, String)> = events_in(&out(0)).into_iter().collect();
    let expected: BTreeSet<&String> = files.iter().flat_map(|f| &f.ids).collect();
    assert!(killed.len() < expected.len(), "the kill must land midway");

    // The others finish, the killed one's messages included once their visibility ends.
    wait_for(
        || {
            let seen: BTreeSet<String> = (0..3).flat_map(|i| events_in(&out(i))).map(|(id, _)| id).collect();
            seen.len() == expected.len()
        },
        Duration::from_secs(240),
        "every event from the two instances left",
    );
    wait_for_async(
        || async { sqs::depth(&admin, &moto.url, &queue).await == (0, 0) },
        Duration::from_secs(60),
        "an empty queue",
    )
    .await;
    for d in &mut daemons[1..] {
        d.signal("TERM");
        assert!(d.wait().success());
    }

    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..3 {
        let events = events_in(&out(i));
        let mut own = BTreeSet::new();
        for (id, _) in &events {
            assert!(own.insert(id.clone()), "instance {i} wrote {id} twice");
            *count.entry(id.clone()).or_default() += 1;
        }
        if i > 0 {
            assert!(!events.is_empty(), "instance {i} took part");
        }
    }
    let got: BTreeSet<&String> = count.keys().collect();
    assert_eq!(got, expected, "every event came out");
    // Duplicates only from the killed instance's objects in flight: each is an event it wrote
    // and another instance wrote again.
    let repeated: BTreeSet<&String> = count.iter().filter(|(_, &n)| n > 1).map(|(id, _)| id).collect();
    let killed_ids: BTreeSet<&String> = killed.iter().map(|(id, _)| id).collect();
    // A live instance repeats nothing: its messages stay invisible to the others while it
    // extends them, and are deleted once done. The test's moto makes every queue operation
    // atomic as SQS's are (tests/receivers/moto_server.py), so a message handed to two
    // instances at once, or handed out again after its delete succeeded, would be trailwatch's
    // doing (a lapsed extension, a delete with a stale receipt); the logs name both.
    let logs: Vec<String> = (0..3)
        .map(|i| std::fs::read_to_string(dirs[i].path().join("stderr.log")).unwrap())
        .collect();
    let parsed: Vec<_> = logs.iter().map(|l| receipts_and_deletions(l)).collect();
    let at = |t: &str| humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    let mut twice: BTreeSet<&String> = BTreeSet::new();
    for (i, (mine, _)) in parsed.iter().enumerate() {
        for (theirs, _) in &parsed[i + 1..] {
            for (t1, id1, objects) in mine {
                for (t2, id2, _) in theirs {
                    let (a, b) = (at(t1), at(t2));
                    let apart = a.duration_since(b).or_else(|_| b.duration_since(a)).unwrap();
                    // At once: well inside the 15 s timeout (a receive after a lapse comes 15 s or
                    // more after the first; log stamps trail the queue's answers a little).
                    if id1 == id2 && apart < Duration::from_secs(10) {
                        twice.insert(objects);
                    }
                }
            }
        }
    }
    let deleted_at: BTreeMap<&String, &String> =
        parsed
            .iter()
            .flat_map(|(_, d)| d.iter().map(|(t, id)| (id, t)))
            .fold(BTreeMap::new(), |mut m, (id, t)| {
                let e = m.entry(id).or_insert(t);
                if t < *e {
                    *e = t;
                }
                m
            });
    let after_delete: BTreeSet<&String> = parsed
        .iter()
        .flat_map(|(r, _)| r.iter())
        .filter(|(t, id, _)| deleted_at.get(id).is_some_and(|d| *d < t))
        .map(|(_, _, objects)| objects)
        .collect();
    let key_of: BTreeMap<String, String> = (1..3).flat_map(|i| events_in(&out(i))).collect();
    let late: Vec<String> = logs
        .iter()
        .enumerate()
        .flat_map(|(i, log)| {
            log.lines()
                .filter(|l| l.contains("only after it may have run out"))
                .map(move |l| format!("instance {i}: {l}"))
        })
        .collect();
    for id in &repeated {
        if !killed_ids.contains(id) {
            let key = &key_of[*id];
            let ids_of_key: BTreeSet<&String> = parsed
                .iter()
                .flat_map(|(r, _)| r.iter())
                .filter(|(_, _, objects)| objects.split(' ').any(|o| o == key))
                .map(|(_, id, _)| id)
                .collect();
            let history: Vec<String> = logs
                .iter()
                .enumerate()
                .flat_map(|(i, log)| {
                    let ids = &ids_of_key;
                    log.lines()
                        .filter(move |l| ids.iter().any(|m| l.contains(m.as_str())))
                        .map(move |l| format!("instance {i}: {l}"))
                })
                .collect();
            panic!(
                "{id} of {key} repeated, yet the killed instance did not write it; messages delivered to two \
                 instances at once: {twice:?}; delivered again after their delete: {after_delete:?}; its \
                 message: {history:#?}; extensions that came late: {late:#?}"
            );
        }
    }
    assert!(
        twice.is_empty(),
        "messages delivered to two instances at once: {twice:?}; late extensions: {late:#?}"
    );
    assert!(
        after_delete.is_empty(),
        "messages delivered again after they were deleted: {after_delete:?}"
    );
    let objects: BTreeSet<&String> = killed
        .iter()
        .filter(|(id, _)| repeated.contains(id))
        .map(|(_, k)| k)
        .collect();
    // In flight at most: a receive of ten waiting for slots, six files read or fetched, and
    // the messages done but not yet deleted.
    assert!(objects.len() <= 30, "{} objects repeated: {objects:?}", objects.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notification_format_is_read_and_duplicates_are_left_out() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let fs = files(7, 4, "n");
    // Another trail delivered the same events as fs[0] under another key (an organization
    // trail beside the account's own): de-duplicated by eventID.
    let mut copy = fs[0].clone();
    copy.key = copy
        .key
        .replace("111122223333_CloudTrail", "111122223333_CloudTrail_copy");
    let spaced = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "2300", "with space", 2);
    assert!(spaced.key.contains(' '));
    let digest = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T010000Z.json.gz";
    let mut all = fs.clone();
    all.push(copy.clone());
    all.push(spaced.clone());
    moto::seed(&admin, BUCKET, &all).await;
    let s3 = trailwatch::aws::s3::S3::new(&admin, BUCKET);
    s3.put(digest, bytes::Bytes::from(common::gzip(b"{}"))).await.unwrap();
    let (queue, _) = sqs::queue(&admin, &moto.url, "formats", 30, Some(5)).await;
    let k: Vec<&str> = fs.iter().map(|f| f.key.as_str()).collect();
    let url = &moto.url;
    for body in [
        sqs::s3_event(BUCKET, &[k[0]]),
        sqs::sns(&sqs::s3_event(BUCKET, &[k[1]])),
        sqs::eventbridge(BUCKET, k[2]),
        // CloudTrail's own: one message, three files.
        sqs::cloudtrail(BUCKET, &[k[3], k[4], k[5]]),
        r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-03-01T01:00:00.000Z","Bucket":"trail-bucket"}"#
            .to_owned(),
        // S3 notifies at least once: the same object again, in the same receive.
        sqs::s3_event(BUCKET, &[k[0]]),
    ] {
        sqs::send(&admin, url, &queue, &body).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        url,
        &queue,
        "default",
        "AKIDADMIN",
        "admin-secret",
        "\n[delete]\nafter_hours = 1\n",
    );
    let log = dir.path().join("stderr.log");
    let mut daemon = Daemon::spawn(
        trailwatch(&config, &["run"])
            .env("TRAILWATCH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let events_path = dir.path().join("events.ndjson");
    let first: usize = fs[..6].iter().map(|f| f.ids.len()).sum();
    wait_for_async(
        || async { events_in(&events_path).len() >= first && sqs::depth(&admin, url, &queue).await == (0, 0) },
        Duration::from_secs(60),
        "the first messages done",
    )
    .await;
    // Later: the same object again, and the copy of its events under another key.
    sqs::send(&admin, url, &queue, &sqs::s3_event(BUCKET, &[k[0]])).await;
    sqs::send(
        &admin,
        url,
        &queue,
        &sqs::s3_event(BUCKET, &[&copy.key, &spaced.key, k[6], digest]),
    )
    .await;
    let total = first + fs[6].ids.len() + spaced.ids.len();
    wait_for_async(
        || async { events_in(&events_path).len() >= total && sqs::depth(&admin, url, &queue).await == (0, 0) },
        Duration::from_secs(60),
        "the later messages done",
    )
    .await;
    // Deletion of processed files comes after a cycle: the next one ends at an empty receive.
    let s3 = trailwatch::aws::s3::S3::new(&admin, BUCKET);
    let deadline = Instant::now() + Duration::from_secs(30);
    let left = loop {
        let left = s3.list_all("AWSLogs/", None, None).await.unwrap().objects;
        if left.len() == 1 || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    daemon.signal("TERM");
    assert!(daemon.wait().success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    let events = events_in(&events_path);
    let ids: Vec<&String> = events.iter().map(|(id, _)| id).collect();
    let unique: BTreeSet<&String> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no event twice: {stderr}");
    let expected: BTreeSet<&String> = fs.iter().chain([&spaced]).flat_map(|f| &f.ids).collect();
    assert_eq!(unique, expected);
    assert!(
        events.iter().all(|(_, key)| key != &copy.key),
        "the copy's events were all duplicates"
    );
    assert!(stderr.contains("duplicates=4"), "{stderr}");
    assert!(stderr.contains("S3's test event"), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    // The processed files were deleted (due an hour after 2024-03-01); the digest was not
    // read and is kept.
    let left: Vec<&str> = left.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(left, [digest], "read files deleted, the digest kept");
    let r = requests(&stderr);
    assert_eq!(r.get("s3:ListObjectsV2"), None, "the bucket is never listed: {r:?}");
    // Each file once: the second notification of fs[0] found it done.
    assert_eq!(r.get("s3:GetObject"), Some(&9), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_end_in_the_dead_letter_queue_with_a_clear_report() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let good = files(2, 3, "g");
    moto::seed(&admin, BUCKET, &good).await;
    let bad = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0900Z_bad.json.gz";
    let s3 = trailwatch::aws::s3::S3::new(&admin, BUCKET);
    let mut corrupt = common::gzip(br#"{"Records":[]}"#);
    corrupt.truncate(corrupt.len() / 2);
    s3.put(bad, bytes::Bytes::from(corrupt)).await.unwrap();
    let (queue, dlq) = sqs::queue(&admin, &moto.url, "poison", 2, Some(2)).await;
    let dlq = dlq.unwrap();
    let url = &moto.url;
    sqs::send(&admin, url, &queue, &sqs::s3_event(BUCKET, &[&good[0].key, bad])).await;
    sqs::send(&admin, url, &queue, r#"{"hello": "not a notification"}"#).await;
    sqs::send(&admin, url, &queue, &sqs::s3_event(BUCKET, &[&good[1].key])).await;

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), url, &queue, "restricted", "AKIDADMIN", "admin-secret", "");
    let log = dir.path().join("stderr.log");
    let mut daemon = Daemon::spawn(
        trailwatch(&config, &["run"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let mut in_dlq = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while in_dlq.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the dead-letter queue: {in_dlq:?}"
        );
        in_dlq.extend(sqs::receive(&admin, url, &dlq).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    daemon.signal("TERM");
    assert!(daemon.wait().success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(in_dlq.len(), 2, "{in_dlq:?}");
    assert!(in_dlq.iter().any(|b| b.contains("not a notification")), "{in_dlq:?}");
    assert!(in_dlq.iter().any(|b| b.contains("%5Fbad%2Ejson%2Egz")), "{in_dlq:?}");
    // The report names the message's id and start, and the object with why.
    assert!(
        stderr.contains("a queue message that is no notification of new files")
            && stderr.contains(r#"it starts: {"hello": "not a notification"}"#),
        "{stderr}"
    );
    let poison = stderr
        .lines()
        .find(|l| l.contains("poison message"))
        .unwrap_or_else(|| panic!("no poison report: {stderr}"));
    assert!(
        poison.contains("_bad.json.gz: quarantined") && poison.contains("receive=2"),
        "{poison}"
    );
    // The good files were read, each once, the good half of the poison message included.
    let ids: Vec<String> = events_in(&dir.path().join("events.ndjson"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: Vec<String> = good.iter().flat_map(|f| f.ids.clone()).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>(),
        expected.iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(ids.len(), expected.len(), "{ids:?}");
    assert_eq!(sqs::depth(&admin, url, &queue).await, (0, 0));
}

/// Slows every GET of an object whose key says `slow`.
/// `run --once` in restricted mode with the queue and S3 reached through `proxy`; its stderr,
/// once it exited 0.
fn run_once_through(proxy: &Proxy, moto: &Moto, queue: &str, dir: &Path) -> String {
    let config = write_config(
        dir,
        &proxy.url,
        &queue.replace(&moto.url, &proxy.url),
        "restricted",
        "AKIDADMIN",
        "admin-secret",
        "",
    );
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

fn slow_objects(_: u64, head: &str) -> Option<Fault> {
    let line = head.lines().next().unwrap_or("");
    (line.starts_with("GET ") && line.contains("slow")).then_some(Fault::Delay(Duration::from_secs(7)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_objects_message_is_extended_rather_than_read_twice() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let slow = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "0100", "slow", 5);
    let quick = files(3, 2, "q");
    let mut all = quick.clone();
    all.push(slow.clone());
    moto::seed(&admin, BUCKET, &all).await;
    // A visibility timeout of 3 s, and a download of 7 s.
    let (queue, _) = sqs::queue(&admin, &moto.url, "slow", 3, Some(5)).await;
    for f in &all {
        sqs::send(&admin, &moto.url, &queue, &sqs::s3_event(BUCKET, &[&f.key])).await;
    }
    let proxy = Proxy::start(&moto.url, slow_objects).await;
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_once_through(&proxy, &moto, &queue, dir.path());
    assert!(
        proxy.faults.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "the object was slow"
    );
    let ids: Vec<String> = events_in(&dir.path().join("events.ndjson"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: BTreeSet<String> = all.iter().flat_map(|f| f.ids.clone()).collect();
    assert_eq!(ids.len(), expected.len(), "each event once: {stderr}");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    let r = requests(&stderr);
    // Renewed every third of the timeout (1 s) through a 7 s download: six renewals, four at
    // the very least on a loaded machine.
    let extended = r.get("sqs:ChangeMessageVisibilityBatch").copied().unwrap_or(0);
    assert!(extended >= 4, "visibility extended {extended} times: {r:?}");
    assert_eq!(r.get("s3:GetObject"), Some(&4), "no object read twice: {r:?}");
    assert_eq!(sqs::depth(&admin, &moto.url, &queue).await, (0, 0));
}

fn slow_objects_and_extensions(_: u64, head: &str) -> Option<Fault> {
    if head.contains("AmazonSQS.ChangeMessageVisibility") {
        return Some(Fault::Delay(Duration::from_millis(2500)));
    }
    slow_objects(0, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_that_lands_after_the_visibility_ran_out_is_reported() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    let slow = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "0100", "slow", 5);
    moto::seed(&admin, BUCKET, std::slice::from_ref(&slow)).await;
    // A visibility timeout of 3 s; the first extension is sent after 1 s and reaches the queue
    // 2.5 s later, when the message has been visible for half a second.
    let (queue, _) = sqs::queue(&admin, &moto.url, "late", 3, Some(5)).await;
    sqs::send(&admin, &moto.url, &queue, &sqs::s3_event(BUCKET, &[&slow.key])).await;
    let proxy = Proxy::start(&moto.url, slow_objects_and_extensions).await;
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_once_through(&proxy, &moto, &queue, dir.path());
    let late: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("visibility was extended only after it may have run out"))
        .collect();
    assert!(!late.is_empty(), "the late extension is reported: {stderr}");
    for l in &late {
        assert!(l.contains("WARN"), "{l}");
        for field in [
            "message_id=",
            "late_ms=",
            "answered_after_ms=",
            "visibility_timeout_secs=3",
        ] {
            assert!(l.contains(field), "{field} in {l}");
        }
    }
    // Nothing lost, nothing repeated: the one instance skips the file it is already reading.
    let mut ids: Vec<String> = events_in(&dir.path().join("events.ndjson"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    let mut expected = slow.ids.clone();
    expected.sort();
    assert_eq!(ids, expected, "{stderr}");
    assert_eq!(sqs::depth(&admin, &moto.url, &queue).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_mode_reads_the_queue_with_only_the_queues_permissions_and_get_object() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    trailwatch::aws::s3::S3::new(&admin, BUCKET)
        .create_bucket()
        .await
        .unwrap();
    let (queue, _) = sqs::queue(&admin, &moto.url, "restricted", 10, Some(5)).await;
    let arn = sqs::arn(&admin, &moto.url, &queue).await;
    sqs::notify(&admin, &moto.url, BUCKET, &arn).await;
    let fs = files(12, 3, "r");
    upload(&admin, &fs).await;
    // What `trailwatch policy --mode restricted --queue-url …` prints, and nothing more.
    let printed = common::bin()
        .args([
            "policy",
            "--mode",
            "restricted",
            "--bucket",
            BUCKET,
            "--queue-url",
            &queue,
        ])
        .output()
        .unwrap();
    assert!(printed.status.success());
    let policy = String::from_utf8(printed.stdout).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let actions: BTreeSet<&str> = parsed["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from([
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "s3:GetObject"
        ])
    );
    let (key, secret) = moto::iam_user(&admin, &moto.url, "queue-reader", &policy).await;
    moto.enforce_auth();
    moto.start_recording();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &moto.url, &queue, "restricted", &key, &secret, "");
    let out = trailwatch(&config, &["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("restricted mode: only sqs:ReceiveMessage"), "{stderr}");
    assert!(!stderr.contains("denied"), "nothing refused: {stderr}");
    let ids: BTreeSet<String> = events_in(&dir.path().join("events.ndjson"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: BTreeSet<String> = fs.iter().flat_map(|f| f.ids.clone()).collect();
    assert_eq!(ids, expected);
    for (method, url, target) in moto.recording() {
        let allowed = (method == "GET" && url.contains(BUCKET)) || target.starts_with("AmazonSQS.");
        assert!(allowed, "only GetObject and the queue's calls: {method} {url} {target}");
        assert!(!target.to_ascii_lowercase().contains("cloudtrail"));
    }
    let reader = moto.client(&key, &secret);
    assert_eq!(sqs::depth(&reader, &moto.url, &queue).await, (0, 0));
}

/// Sharding for behaviour baselines: one queue per shard of accounts through the bucket's
/// notification prefix filters (`AWSLogs/<account>/`), each read by its own instance, so that
/// every event of an account (and so of its identities) reaches one instance and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_prefix_filters_shard_the_accounts_between_instances() {
    let moto = Moto::start();
    let admin = moto.client("AKIDADMIN", "admin-secret");
    trailwatch::aws::s3::S3::new(&admin, BUCKET)
        .create_bucket()
        .await
        .unwrap();
    let shards = [("111122223333", "shard-a"), ("444455556666", "shard-b")];
    let mut queues = Vec::new();
    for (_, name) in shards {
        let (queue, _) = sqs::queue(&admin, &moto.url, name, 30, None).await;
        let arn = sqs::arn(&admin, &moto.url, &queue).await;
        queues.push((queue, arn));
    }
    let filters: Vec<(&str, String)> = shards
        .iter()
        .zip(&queues)
        .map(|((account, _), (_, arn))| (arn.as_str(), format!("AWSLogs/{account}/")))
        .collect();
    let filters: Vec<(&str, &str)> = filters.iter().map(|(a, p)| (*a, p.as_str())).collect();
    sqs::notify_prefixes(&admin, &moto.url, BUCKET, &filters).await;
    let mut all = Vec::new();
    for (account, _) in shards {
        for region in ["us-east-1", "eu-west-1"] {
            for f in 0..10 {
                all.push(moto::log_file(
                    "",
                    account,
                    region,
                    "2024-03-01",
                    &format!("00{f:02}"),
                    &format!("{account}{f}"),
                    3,
                ));
            }
        }
    }
    upload(&admin, &all).await;

    for ((account, _), (queue, _)) in shards.iter().zip(&queues) {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            &moto.url,
            queue,
            "default",
            "AKIDADMIN",
            "admin-secret",
            "\n[delete]\nenabled = false\n",
        );
        let run = trailwatch(&config, &["run", "--once"]).output().unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let got: Vec<(String, String)> = events_in(&dir.path().join("events.ndjson"));
        let expected: BTreeSet<&String> = all
            .iter()
            .filter(|f| f.key.contains(&format!("/{account}/")))
            .flat_map(|f| &f.ids)
            .collect();
        assert_eq!(got.len(), expected.len(), "each event of the shard once");
        assert_eq!(got.iter().map(|(id, _)| id).collect::<BTreeSet<_>>(), expected);
        assert!(
            got.iter()
                .all(|(_, key)| key.starts_with(&format!("AWSLogs/{account}/"))),
            "{got:?}"
        );
        assert_eq!(sqs::depth(&admin, &moto.url, queue).await, (0, 0));
    }
}
