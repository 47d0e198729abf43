//! Following a trail bucket on a real AWS-compatible server (moto on 127.0.0.1): every event
//! exactly once, late files, deletion by age, restricted mode's permissions, crash recovery,
//! throttling and faults, and a wrong secret.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::moto::{self, Moto};
use common::poller::{pipeline_settings, Poller};
use common::proxy::{Fault, Proxy};
use trailwatch::aws::s3::S3;
use trailwatch::layout::Day;
use trailwatch::pipeline::{Clock, CycleReport};
use trailwatch::runtime::cache::CompileCache;
use trailwatch::runtime::{Limits, PluginRuntime};
use trailwatch::source::s3_poll::{PollSettings, Start};
use trailwatch::state::checkpoint::CheckpointStore;

const BUCKET: &str = "trail-bucket";

/// A clock the test moves.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn ms(day: &str, hh: i64) -> i64 {
    Day::parse(day).unwrap().epoch_days * 86_400_000 + hh * 3_600_000
}

fn runtime() -> Arc<PluginRuntime> {
    Arc::new(
        PluginRuntime::from_file(
            &common::plugin_path(),
            &CompileCache::in_dir(common::cache_dir()),
            Limits::default(),
        )
        .unwrap(),
    )
}

fn settings(start: Start, delete_after: Option<Duration>) -> PollSettings {
    PollSettings {
        bucket: BUCKET.into(),
        prefix: String::new(),
        accounts: vec![],
        regions: vec![],
        include_insight: true,
        start,
        relist_days: 2,
        relist_interval: Duration::ZERO,
        max_object_bytes: 64 << 20,
        stream_above_bytes: trailwatch::run::STREAM_ABOVE_BYTES,
        delete_after,
        discovery_interval: Duration::from_secs(600),
    }
}

/// 2 accounts × 2 regions × 3 days × 20 files × 3 events.
fn bucket_files() -> Vec<moto::LogFile> {
    let mut files = Vec::new();
    for account in ["111122223333", "444455556666"] {
        for region in ["us-east-1", "eu-west-1"] {
            for day in ["2024-03-01", "2024-03-02", "2024-03-03"] {
                for f in 0..20 {
                    let hhmm = format!("{:02}{:02}", 1 + f / 2, (f % 2) * 30);
                    files.push(moto::log_file("", account, region, day, &hhmm, &format!("f{f:02}"), 3));
                }
            }
        }
    }
    files
}

/// A poller of `BUCKET` with its checkpoint in `state`.
fn poller(
    client: Arc<trailwatch::aws::AwsClient>,
    settings: PollSettings,
    state: &std::path::Path,
    clock: Arc<TestClock>,
) -> Poller {
    Poller::new(
        client,
        runtime(),
        settings,
        pipeline_settings(),
        CheckpointStore::open(state).unwrap(),
        clock,
    )
}

async fn poll(poller: &mut Poller) -> (CycleReport, Vec<serde_json::Value>) {
    let mut out: Vec<u8> = Vec::new();
    let report = poller.poll_once(&mut out, &AtomicBool::new(false)).await.unwrap();
    (report, common::lines(&out))
}

fn count_ids(events: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for e in events {
        *seen.entry(e["event_id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_comes_out_exactly_once_including_a_late_file_with_an_older_key() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let files = bucket_files();
    moto::seed(&client, BUCKET, &files).await;
    let state = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-03", 23))));
    let mut poller = poller(
        client.clone(),
        settings(Start::Day(Day::parse("2024-03-01").unwrap()), None),
        state.path(),
        clock.clone(),
    );

    let (report, events) = poll(&mut poller).await;
    assert_eq!(report.files, 240);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let seen = count_ids(&events);
    let expected: Vec<&String> = files.iter().flat_map(|f| &f.ids).collect();
    assert_eq!(seen.len(), expected.len());
    assert!(seen.values().all(|&n| n == 1), "each event once");
    assert!(expected.iter().all(|id| seen.contains_key(id.as_str())));
    assert_eq!(
        poller.streams().len(),
        4,
        "2 accounts × 2 regions found by delimiter listings"
    );

    // Every event carries its delivery times.
    let e = &events[0];
    assert!(e["delivery"]["last_modified_ms"].as_i64().unwrap() > 0);
    assert_eq!(e["delivery"]["bucket"], BUCKET);
    assert_eq!(e["delivery"]["delayed"], true, "a 2024 event delivered now is late");

    // A file for yesterday delivered late, whose key sorts before everything seen that day.
    let late = moto::log_file("", "111122223333", "us-east-1", "2024-03-02", "0000", "late", 3);
    moto::seed(&client, BUCKET, std::slice::from_ref(&late)).await;
    let (report, events) = poll(&mut poller).await;
    assert_eq!(report.files, 1, "only the late file is new");
    let ids: Vec<&str> = events.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, late.ids.iter().map(String::as_str).collect::<Vec<_>>());

    // An idle poll reads nothing and costs only listings.
    let before = client.counts();
    let (report, events) = poll(&mut poller).await;
    assert_eq!((report.files, events.len()), (0, 0));
    let after = client.counts();
    assert_eq!(after.requests.get("s3:GetObject"), before.requests.get("s3:GetObject"));
    let lists = after.requests["s3:ListObjectsV2"] - before.requests["s3:ListObjectsV2"];
    assert_eq!(
        lists,
        4 * 2,
        "an idle poll lists today and yesterday of each of the 4 streams"
    );
}

/// ListObjectsV2 requests `client` has made so far.
fn lists(client: &trailwatch::aws::AwsClient) -> u64 {
    client.counts().requests.get("s3:ListObjectsV2").copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_of_years_walks_each_stream_once_instead_of_listing_every_day() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    // One stream: files on days spread over three and a half years, with long empty gaps,
    // the first and last of a month, and two in the days still open.
    let days = [
        ("2020-09-01", "0005"),
        ("2021-02-28", "2355"),
        ("2021-03-01", "0000"),
        ("2022-07-14", "1200"),
        ("2024-03-01", "0000"),
        ("2024-03-02", "0100"),
        ("2024-03-03", "0100"),
    ];
    let files: Vec<moto::LogFile> = days
        .iter()
        .enumerate()
        .map(|(i, (day, hhmm))| moto::log_file("", "111122223333", "us-east-1", day, hhmm, &format!("f{i}"), 2))
        .collect();
    moto::seed(&client, BUCKET, &files).await;
    let clock = || Arc::new(TestClock(AtomicI64::new(ms("2024-03-03", 23))));

    // What discovery and the open days cost, from a poller that starts now.
    let now_state = tempfile::tempdir().unwrap();
    let mut now = poller(client.clone(), settings(Start::Now, None), now_state.path(), clock());
    let before = lists(&client);
    poll(&mut now).await;
    let discovery_and_open_days = lists(&client) - before;

    let state = tempfile::tempdir().unwrap();
    let start = Day::parse("2020-09-01").unwrap();
    let mut poller = poller(client.clone(), settings(Start::Day(start), None), state.path(), clock());
    let before = lists(&client);
    let (report, events) = poll(&mut poller).await;
    let backfill = lists(&client) - before;
    assert_eq!(report.files, days.len() as u64);
    let seen = count_ids(&events);
    assert_eq!(seen.len(), 2 * days.len());
    assert!(files
        .iter()
        .flat_map(|f| &f.ids)
        .all(|id| seen.get(id.as_str()) == Some(&1)));
    assert_eq!(
        backfill,
        discovery_and_open_days + 1,
        "1 270 closed days of one stream under 1 000 keys: one listing (one per day would be 1 270)"
    );
    let stream = "AWSLogs/111122223333/CloudTrail/us-east-1/";
    assert_eq!(
        poller.checkpoint().cursor(stream),
        Some("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/02/"),
        "every closed day is closed: the cursor stands at the oldest open day"
    );

    // Then an idle poll lists the two open days only, and a late file in an open day is found.
    let before = lists(&client);
    let (report, _) = poll(&mut poller).await;
    assert_eq!((report.files, lists(&client) - before), (0, 2));
    let late = moto::log_file("", "111122223333", "us-east-1", "2024-03-02", "0000", "late", 1);
    moto::seed(&client, BUCKET, std::slice::from_ref(&late)).await;
    let (report, events) = poll(&mut poller).await;
    assert_eq!(report.files, 1);
    assert_eq!(events[0]["event_id"], late.ids[0].as_str());
}

/// The listings of one poller over `accounts` × `regions` streams with a file on four days of
/// a 31-day backfill: (streams, discovery, first poll, idle poll, idle poll with yesterday).
async fn listing_costs(accounts: usize, regions: usize) -> [u64; 5] {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let mut files = Vec::new();
    for a in 0..accounts {
        let account = format!("{:012}", 111_122_220_000u64 + a as u64);
        for r in 0..regions {
            let region = format!("test-region-{r}");
            for day in ["2024-03-01", "2024-03-15", "2024-03-30", "2024-03-31"] {
                files.push(moto::log_file("", &account, &region, day, "0100", "f", 1));
            }
        }
    }
    moto::seed(&client, BUCKET, &files).await;
    let n = (accounts * regions) as u64;
    let t0 = ms("2024-03-31", 12);
    let clock = Arc::new(TestClock(AtomicI64::new(t0)));
    let state = tempfile::tempdir().unwrap();
    let mut s = settings(Start::Day(Day::parse("2024-03-01").unwrap()), None);
    s.relist_interval = Duration::from_secs(300);
    let mut poller = poller(client.clone(), s, state.path(), clock.clone());
    let mut step = async |at_s: i64| {
        clock.0.store(t0 + at_s * 1000, Ordering::Relaxed);
        let before = lists(&client);
        let (report, events) = poll(&mut poller).await;
        (lists(&client) - before, report.files, events.len())
    };
    let first = step(0).await;
    assert_eq!((first.1, first.2), (4 * n, 4 * n as usize), "every file read once");
    let idle = step(60).await.0;
    let idle_yesterday = step(360).await.0;
    // Discovery is due again (600 s) while yesterday is not (260 s since its listing).
    let discovery = step(620).await.0 - n;
    assert_eq!(idle, n, "an idle poll lists today of each stream");
    assert_eq!(idle_yesterday, 2 * n, "and yesterday every relist interval");
    assert_eq!(
        first.0,
        discovery + 3 * n,
        "a 29-day backfill walks each stream once, then lists its two open days"
    );
    [n, discovery, first.0, idle, idle_yesterday]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_costs_for_1_10_and_100_streams_are_those_in_the_readme() {
    let mut table = String::from(
        "| streams | discovery | first poll: 29 closed days + 2 open (one listing per day, for comparison) | idle poll | idle poll listing yesterday (every `relist_interval_secs`) | a day of idle polls at 60 s, discovery included |\n\
         |---:|---:|---:|---:|---:|---:|\n",
    );
    for (accounts, regions) in [(1, 1), (2, 5), (10, 10)] {
        let [n, discovery, first, idle, yesterday] = listing_costs(accounts, regions).await;
        // Discovery every 10 minutes, today at each poll, yesterday every 5 minutes, and the
        // walk that closes a day.
        let per_day = |idle: u64, yesterday: u64| 144 * discovery + 1440 * idle + 288 * (yesterday - idle) + n;
        table.push_str(&format!(
            "| {n} ({accounts} × {regions}) | {discovery} | {first} ({}) | {idle} | {yesterday} | {} ({} listing yesterday at every poll) |\n",
            discovery + 31 * n,
            per_day(idle, yesterday),
            144 * discovery + 1440 * 2 * n
        ));
    }
    common::readme_block("listing-costs", &table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yesterday_is_listed_every_relist_interval_and_once_more_when_it_closes() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let file = |day: &str, hhmm: &str, tag: &str| moto::log_file("", "111122223333", "us-east-1", day, hhmm, tag, 1);
    moto::seed(
        &client,
        BUCKET,
        &[file("2024-03-02", "2350", "a"), file("2024-03-03", "0010", "b")],
    )
    .await;
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-03", 1))));
    let state = tempfile::tempdir().unwrap();
    let mut s = settings(Start::Day(Day::parse("2024-03-02").unwrap()), None);
    s.relist_interval = Duration::from_secs(300);
    let mut poller = poller(client.clone(), s, state.path(), clock.clone());
    let (report, _) = poll(&mut poller).await;
    assert_eq!(report.files, 2);

    // Within the interval: today only (1 listing for the one stream); a late file for
    // yesterday waits.
    let late = file("2024-03-02", "2355", "late");
    moto::seed(&client, BUCKET, std::slice::from_ref(&late)).await;
    clock.0.fetch_add(60_000, Ordering::Relaxed);
    let before = lists(&client);
    let (report, _) = poll(&mut poller).await;
    assert_eq!((report.files, lists(&client) - before), (0, 1));
    // The interval passed: yesterday is listed again and the late file found.
    clock.0.fetch_add(300_000, Ordering::Relaxed);
    let before = lists(&client);
    let (report, events) = poll(&mut poller).await;
    assert_eq!((report.files, lists(&client) - before), (1, 2));
    assert_eq!(events[0]["event_id"], late.ids[0].as_str());

    // A late file for yesterday just before midnight, then the day turns: yesterday closes
    // without waiting for the interval, and the walk of closed days finds the file.
    let later = file("2024-03-02", "2358", "later");
    moto::seed(&client, BUCKET, std::slice::from_ref(&later)).await;
    clock.0.store(ms("2024-03-04", 0) + 30_000, Ordering::Relaxed);
    let (report, events) = poll(&mut poller).await;
    assert_eq!(report.files, 1);
    assert_eq!(events[0]["event_id"], later.ids[0].as_str());
    assert_eq!(
        poller.checkpoint().cursor("AWSLogs/111122223333/CloudTrail/us-east-1/"),
        Some("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/03/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_day_with_a_file_not_done_stays_open_and_holds_the_days_after_it() {
    let moto = Moto::start();
    let direct = moto.client("AKIDTEST", "secret");
    let first = moto::log_file("", "111122223333", "us-east-1", "2023-06-01", "0100", "first", 2);
    let later = moto::log_file("", "111122223333", "us-east-1", "2023-09-01", "0100", "later", 2);
    moto::seed(&direct, BUCKET, &[first.clone(), later.clone()]).await;
    // The first day's file cannot be had while BLOCKED (every attempt reset): it is not done.
    static BLOCKED: AtomicBool = AtomicBool::new(true);
    fn reset_first(_: u64, head: &str) -> Option<Fault> {
        (BLOCKED.load(Ordering::Relaxed) && head.starts_with("GET ") && head.contains("_first.json.gz"))
            .then_some(Fault::Reset)
    }
    let proxy = Proxy::start(&moto.url, reset_first).await;
    let client = Arc::new(moto::client_for(&proxy.url, "AKIDTEST", "secret"));
    let state = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-03", 23))));
    let mut poller = poller(
        client.clone(),
        settings(Start::Day(Day::parse("2023-06-01").unwrap()), None),
        state.path(),
        clock,
    );
    // The walk goes on past it and the later file is read, but no day closes while the first
    // is not done.
    let (_, events) = poll(&mut poller).await;
    let ids: Vec<&str> = events.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, later.ids.iter().map(String::as_str).collect::<Vec<_>>());
    let stream = "AWSLogs/111122223333/CloudTrail/us-east-1/";
    assert_eq!(
        poller.checkpoint().cursor(stream),
        Some("AWSLogs/111122223333/CloudTrail/us-east-1/2023/06/01/")
    );
    BLOCKED.store(false, Ordering::Relaxed);
    let (_, events) = poll(&mut poller).await;
    let ids: Vec<&str> = events.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        first.ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "the first file is read; the later one is not read again"
    );
    assert_eq!(
        poller.checkpoint().cursor(stream),
        Some("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/02/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_now_reads_only_files_that_appear_later() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let old = moto::log_file("", "111122223333", "us-east-1", "2024-03-03", "0100", "old", 2);
    moto::seed(&client, BUCKET, std::slice::from_ref(&old)).await;
    let state = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-03", 12))));
    let mut poller = poller(client.clone(), settings(Start::Now, None), state.path(), clock);
    let (report, events) = poll(&mut poller).await;
    assert_eq!((report.skipped_existing, events.len()), (1, 0));
    let new = moto::log_file("", "111122223333", "us-east-1", "2024-03-03", "1205", "new", 2);
    moto::seed(&client, BUCKET, std::slice::from_ref(&new)).await;
    let (_, events) = poll(&mut poller).await;
    assert_eq!(count_ids(&events).into_keys().collect::<Vec<_>>(), new.ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_files_are_deleted_once_older_than_the_delay_and_not_before() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let old = moto::log_file("", "111122223333", "us-east-1", "2024-03-02", "0100", "old", 2);
    let young = moto::log_file("", "111122223333", "us-east-1", "2024-03-03", "1000", "young", 2);
    moto::seed(&client, BUCKET, &[old, young]).await;
    let state = tempfile::tempdir().unwrap();
    // 2024-03-03 11:00: the 03-02 01:00 file is 34 h old, the 03-03 10:00 file 1 h.
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-03", 11))));
    let mut poller = poller(
        client.clone(),
        settings(
            Start::Day(Day::parse("2024-03-01").unwrap()),
            Some(Duration::from_secs(24 * 3600)),
        ),
        state.path(),
        clock.clone(),
    );
    let (report, _) = poll(&mut poller).await;
    assert_eq!((report.files, report.deleted), (2, 1));
    let left: Vec<String> = S3::new(&client, BUCKET)
        .list_all("AWSLogs/", None, None)
        .await
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(left.len(), 1);
    assert!(left[0].contains("young"));
    assert_eq!(client.counts().requests["s3:DeleteObjects"], 1);

    // A day later the young one is due too.
    clock.0.store(ms("2024-03-04", 11), Ordering::Relaxed);
    let (report, _) = poll(&mut poller).await;
    assert_eq!(report.deleted, 1);
    assert!(S3::new(&client, BUCKET)
        .list_all("AWSLogs/", None, None)
        .await
        .unwrap()
        .objects
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_deleted_when_deletion_is_off() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let old = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "0100", "old", 2);
    moto::seed(&client, BUCKET, std::slice::from_ref(&old)).await;
    let state = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-09", 0))));
    let mut poller = poller(
        client.clone(),
        settings(Start::Day(Day::parse("2024-03-01").unwrap()), None),
        state.path(),
        clock,
    );
    let (report, _) = poll(&mut poller).await;
    assert_eq!((report.files, report.deleted), (1, 0));
    assert!(!client.counts().requests.contains_key("s3:DeleteObjects"));
    assert_eq!(
        S3::new(&client, BUCKET)
            .list_all("AWSLogs/", None, None)
            .await
            .unwrap()
            .objects
            .len(),
        1
    );
}

/// A record of `name` from `source`, with `readOnly` and an error code as given.
fn api_record(id: &str, source: &str, name: &str, read_only: bool, error: Option<&str>) -> String {
    let error = error.map(|e| format!(r#","errorCode":"{e}""#)).unwrap_or_default();
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/ops","accountId":"111122223333"}},"eventTime":"2024-03-03T01:00:00Z","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","eventID":"{id}","readOnly":{read_only},"eventType":"AwsApiCall","eventCategory":"Management"{error}}}"#
    )
}

/// Reads the bucket once in write-only mode with the plugin at `plugin`: the report and the
/// event ids handed over.
async fn write_only_poll(moto: &Moto, plugin: &std::path::Path) -> (CycleReport, Vec<String>) {
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let state = tempfile::tempdir().unwrap();
    let s = settings(Start::Day(Day::parse("2024-03-03").unwrap()), None);
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-03", 12))));
    let mut p = pipeline_settings();
    p.drop_read_only = true;
    let runtime =
        PluginRuntime::from_file(plugin, &CompileCache::in_dir(common::cache_dir()), Limits::default()).unwrap();
    let mut poller = Poller::new(
        client,
        Arc::new(runtime),
        s,
        p,
        CheckpointStore::open(state.path()).unwrap(),
        clock,
    );
    let (report, events) = poll(&mut poller).await;
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    (report, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_only_mode_keeps_writes_insights_and_the_reads_that_matter() {
    let moto = Moto::start();
    let client = moto.client("AKIDTEST", "secret");
    let plain = moto::log_file("", "111122223333", "us-east-1", "2024-03-03", "0100", "wo", 6);
    let records = [
        api_record("r1-describe", "ec2.amazonaws.com", "DescribeVpcs", true, None),
        api_record("r2-assume", "sts.amazonaws.com", "AssumeRole", true, None),
        api_record(
            "r3-denied",
            "s3.amazonaws.com",
            "ListBuckets",
            true,
            Some("AccessDenied"),
        ),
        api_record(
            "r4-secret",
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
            true,
            None,
        ),
        api_record("r5-parameter", "ssm.amazonaws.com", "GetParameter", true, None),
        api_record("r6-write", "iam.amazonaws.com", "CreateUser", false, None),
        api_record("r7-describe", "ec2.amazonaws.com", "DescribeSubnets", true, None),
    ];
    let mixed = moto::LogFile {
        key: plain.key.replace("_wo.json.gz", "_mixed.json.gz"),
        body: common::gzip(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes()),
        ids: vec![],
    };
    let insight_record = r#"{"eventVersion":"1.08","eventTime":"2024-03-03T01:00:00Z","awsRegion":"us-east-1","eventID":"i1-insight","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","sharedEventID":"s1","insightDetails":{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","insightType":"ApiCallRateInsight"},"eventCategory":"Insight"}"#;
    let insight = moto::LogFile {
        key: "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2024/03/03/111122223333_CloudTrail-Insight_us-east-1_20240303T0100Z_ins.json.gz".into(),
        body: common::gzip(format!(r#"{{"Records":[{insight_record}]}}"#).as_bytes()),
        ids: vec![],
    };
    moto::seed(&client, BUCKET, &[plain.clone(), mixed, insight]).await;

    // The plugin decides: writes, the Insight event, the sign-in, the denied read and the
    // secret read are kept; plain reads (the Parameter Store read included) are left out.
    let (report, ids) = write_only_poll(&moto, &common::plugin_path()).await;
    let mut want: Vec<String> = plain.ids.iter().skip(1).step_by(2).cloned().collect();
    want.extend(["i1-insight", "r2-assume", "r3-denied", "r4-secret", "r6-write"].map(String::from));
    want.sort();
    assert_eq!(ids, want);
    assert_eq!((report.events, report.dropped_read_only), (8, 6));

    // A plugin without the selection interface: the host drops every read-only event itself,
    // the Insight event included (the loader says so when it loads such a plugin).
    let parser_only = common::root().join("target/fixture-plugins/parser-only/trailwatch-core-parser-only.wasm");
    let (report, ids) = write_only_poll(&moto, &parser_only).await;
    let mut want: Vec<String> = plain.ids.iter().skip(1).step_by(2).cloned().collect();
    want.push("r6-write".into());
    want.sort();
    assert_eq!(ids, want);
    assert_eq!((report.events, report.dropped_read_only), (4, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_trails_prefixes_and_account_region_filters_are_followed() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let org = "logs/AWSLogs/o-abcdef1234/";
    // log_file builds `<prefix>AWSLogs/<account>/…`; move it under the organization id.
    let relocate = |f: moto::LogFile| moto::LogFile {
        key: f.key.replace("logs/AWSLogs/", org),
        ..f
    };
    let wanted = relocate(moto::log_file(
        "logs/",
        "111122223333",
        "us-east-1",
        "2024-03-03",
        "0100",
        "a",
        2,
    ));
    let other_region = relocate(moto::log_file(
        "logs/",
        "111122223333",
        "eu-west-1",
        "2024-03-03",
        "0100",
        "b",
        2,
    ));
    let other_account = relocate(moto::log_file(
        "logs/",
        "444455556666",
        "us-east-1",
        "2024-03-03",
        "0100",
        "c",
        2,
    ));
    moto::seed(&client, BUCKET, &[wanted, other_region, other_account]).await;
    let state = tempfile::tempdir().unwrap();
    let mut s = settings(Start::Day(Day::parse("2024-03-03").unwrap()), None);
    s.prefix = "logs".into();
    s.accounts = vec!["111122223333".into()];
    s.regions = vec!["us-east-1".into()];
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-03", 12))));
    let mut poller = poller(client, s, state.path(), clock);
    let (report, events) = poll(&mut poller).await;
    assert_eq!(
        poller.streams(),
        ["logs/AWSLogs/o-abcdef1234/111122223333/CloudTrail/us-east-1/"]
    );
    assert_eq!(report.files, 1);
    assert!(events.iter().all(|e| e["event_id"].as_str().unwrap().contains("-a-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_is_reported_kept_in_the_bucket_and_does_not_stop_the_others() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let good = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "0100", "good", 2);
    let mut bad = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "0000", "bad", 2);
    bad.body.truncate(bad.body.len() / 2);
    moto::seed(&client, BUCKET, &[good, bad]).await;
    let state = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-05", 0))));
    let mut poller = poller(
        client.clone(),
        settings(
            Start::Day(Day::parse("2024-03-01").unwrap()),
            Some(Duration::from_secs(24 * 3600)),
        ),
        state.path(),
        clock,
    );
    let (report, events) = poll(&mut poller).await;
    assert_eq!(report.files, 2);
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].0.contains("_bad.json.gz") && report.failed[0].1.contains("truncated"),
        "{:?}",
        report.failed
    );
    assert!(events
        .iter()
        .any(|e| e["event_id"].as_str().unwrap().contains("-good-")));
    assert_eq!(report.deleted, 1, "only the good file is deleted");
    let left: Vec<String> = S3::new(&client, BUCKET)
        .list_all("AWSLogs/", None, None)
        .await
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(left.len(), 1);
    assert!(left[0].contains("_bad.json.gz"), "the bad file stays for inspection");
    // It is not read again at every poll.
    let (report, _) = poll(&mut poller).await;
    assert_eq!((report.files, report.failed.len()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_over_the_size_limit_is_reported_without_being_fetched() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    let big = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "0100", "big", 2000);
    let small = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "0200", "small", 2);
    moto::seed(&client, BUCKET, &[big, small]).await;
    let state = tempfile::tempdir().unwrap();
    let mut s = settings(Start::Day(Day::parse("2024-03-01").unwrap()), None);
    s.max_object_bytes = 4096;
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-01", 12))));
    let mut poller = poller(client.clone(), s, state.path(), clock);
    let (report, events) = poll(&mut poller).await;
    assert_eq!(events.len(), 2);
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].1.contains("over the limit of 4096 bytes"),
        "{:?}",
        report.failed
    );
    assert_eq!(
        client.counts().requests["s3:GetObject"],
        1,
        "the big object was not downloaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_trips_the_plugin_is_retried_then_quarantined_and_the_others_go_on() {
    let moto = Moto::start();
    let client = Arc::new(moto.client("AKIDTEST", "secret"));
    // The sandbox fixture plugin panics on any key containing "panic".
    let bad = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "0000", "panic", 2);
    let good = moto::log_file("", "111122223333", "us-east-1", "2024-03-01", "0100", "good", 2);
    moto::seed(&client, BUCKET, &[bad, good]).await;
    let state = tempfile::tempdir().unwrap();
    let runtime = Arc::new(
        PluginRuntime::from_file(
            &common::fixture_plugin_path(),
            &CompileCache::in_dir(common::cache_dir()),
            Limits::default(),
        )
        .unwrap(),
    );
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2024-03-01", 12))));
    let mut poller = Poller::new(
        client,
        runtime,
        settings(Start::Day(Day::parse("2024-03-01").unwrap()), None),
        pipeline_settings(),
        CheckpointStore::open(state.path()).unwrap(),
        clock,
    );
    let mut failures = Vec::new();
    let mut events = 0;
    for _ in 0..4 {
        let (report, out) = poll(&mut poller).await;
        failures.push(report.failed.len());
        events += out.len();
    }
    assert_eq!(failures, vec![1, 1, 1, 0], "tried at three polls, then quarantined");
    assert_eq!(events, 2, "the good file's events, once");
    let recorded = &poller.checkpoint().failed;
    assert_eq!(recorded.len(), 1);
    let (key, f) = recorded.iter().next().unwrap();
    assert!(
        key.contains("_panic.json.gz") && f.quarantined && f.attempts == 3,
        "{key}: {f:?}"
    );
    assert!(f.reason.contains("plugin panicked"), "{}", f.reason);
}
