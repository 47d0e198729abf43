//! `trailwatch run` reading S3 notifications from an SQS queue in moto: 1, 2 and 3 instances on
//! one queue, each with its own state directory, draining the notifications of the file set
//! uploaded `COPIES` times (under other keys, with de-duplication off, so that every copy's
//! events are written). Timed from the instances' start until the queue is empty (every message
//! deleted, so every object's events acknowledged); the AWS requests are the instances' own
//! counts, printed as they exit.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::common::moto::{self, Moto};
use super::common::sqs;
use super::pipeline::{cpu_secs, events_of, peak_kib, BUCKET};
use super::trail::Corpus;
use super::Cli;

/// Copies of the file set behind the queue.
const COPIES: usize = 3;

/// What one count of instances did.
pub(crate) struct QueueRun {
    pub(crate) instances: usize,
    pub(crate) objects: usize,
    pub(crate) events: u64,
    /// Events written beyond one per event (a message handed to two instances at once).
    pub(crate) repeated: u64,
    pub(crate) wall: f64,
    pub(crate) peak_kib: u64,
    pub(crate) moto_cpu: f64,
    /// CPU seconds the instances used, together.
    pub(crate) own_cpu: f64,
    /// Requests of every instance, by operation.
    pub(crate) requests: BTreeMap<String, u64>,
}

/// The `requests` of the "AWS requests made" log line (JSON logs).
fn requests_of(stderr: &str) -> BTreeMap<String, u64> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "AWS requests made")
        .and_then(|l| l["fields"]["requests"].as_str().map(str::to_owned))
        .unwrap_or_default()
        .split(", ")
        .filter_map(|p| p.rsplit_once(' '))
        .filter_map(|(op, n)| Some((op.to_owned(), n.parse().ok()?)))
        .collect()
}

/// `key` with `_c<copy>` before `.json.gz`.
fn copy_key(key: &str, copy: usize) -> String {
    match key.strip_suffix(".json.gz") {
        Some(stem) => format!("{stem}_c{copy}.json.gz"),
        None => format!("{key}_c{copy}"),
    }
}

fn config(dir: &Path, moto: &Moto, queue: &str, instance: usize) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(format!("queue-{instance}.toml"));
    std::fs::write(
        &path,
        format!(
            "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{url}\"\naccess_key_id = \"AKIDBENCH\"\nsecret_access_key = \"secret\"\n\n\
             [source]\ntype = \"sqs\"\nqueue_url = \"{queue}\"\nbucket = \"{BUCKET}\"\nwait_time_secs = 1\ndedup_window_secs = 0\n\n\
             [trail]\ncheck = false\n\n[scoring]\nenabled = false\n\n[delete]\nenabled = false\n\n[state]\ndir = \"{state}\"\n\n[[sinks]]\ntype = \"stdout\"\n",
            url = moto.url,
            state = dir.join(format!("queue-state-{instance}")).display(),
        ),
    )?;
    Ok(path)
}

/// Uploads the copies, then drains a queue of their notifications with 1, 2 and 3 instances.
pub(crate) async fn measure(cli: &Cli, set: &Corpus, moto: &Moto, keys: &[String]) -> anyhow::Result<Vec<QueueRun>> {
    let client = moto.client("AKIDBENCH", "secret");
    eprintln!("  uploading {COPIES} copies of the file set for the queue");
    let mut objects = Vec::new();
    for copy in 0..COPIES {
        let files: Vec<moto::LogFile> = keys
            .iter()
            .zip(&set.files)
            .map(|(key, path)| {
                Ok(moto::LogFile {
                    key: copy_key(key, copy),
                    body: std::fs::read(path)?,
                    ids: Vec::new(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        moto::seed(&client, BUCKET, &files).await;
        objects.extend(files.into_iter().map(|f| f.key));
    }
    let expected = set.events * COPIES as u64;
    let mut runs = Vec::new();
    for instances in 1..=3 {
        eprintln!("  run on an SQS queue, {instances} instance(s)");
        let (queue, _) = sqs::queue(&client, &moto.url, &format!("bench-{instances}"), 60, None).await;
        // One notification per object, as S3 sends them.
        for key in &objects {
            sqs::send(&client, &moto.url, &queue, &sqs::s3_event(BUCKET, &[key])).await;
        }
        let moto_before = cpu_secs(moto.pid());
        let started = Instant::now();
        let mut children: Vec<(Child, std::path::PathBuf)> = Vec::new();
        for i in 0..instances {
            let stderr = cli.scratch.join(format!("queue-{instances}-{i}.log"));
            let config = config(&cli.scratch, moto, &queue, instances * 10 + i)?;
            let child = cli
                .run_command(&config, true)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr)?)
                .spawn()?;
            children.push((child, stderr));
        }
        let mut peak = 0;
        let wall = loop {
            for (c, _) in &children {
                peak = peak.max(peak_kib(c.id()));
            }
            if sqs::depth(&client, &moto.url, &queue).await == (0, 0) {
                break started.elapsed().as_secs_f64();
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("the queue of {instances} instance(s) did not drain in 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let moto_cpu = cpu_secs(moto.pid()) - moto_before;
        let mut events = 0;
        let mut own_cpu = 0.0;
        let mut requests = BTreeMap::new();
        for (mut c, log) in children {
            // Read before the wait reaps it (an exited child keeps its times until then).
            while !std::fs::read_to_string(format!("/proc/{}/stat", c.id()))
                .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            own_cpu += cpu_secs(c.id());
            let status = c.wait()?;
            let stderr = std::fs::read_to_string(&log)?;
            if !status.success() {
                bail!("an instance failed ({status}):\n{stderr}");
            }
            events += events_of(&stderr).with_context(|| format!("no poll done in {}", log.display()))?;
            for (op, n) in requests_of(&stderr) {
                *requests.entry(op).or_default() += n;
            }
        }
        if events < expected {
            bail!("{instances} instance(s) wrote {events} events, not {expected}");
        }
        runs.push(QueueRun {
            instances,
            objects: objects.len(),
            events: expected,
            repeated: events - expected,
            wall,
            peak_kib: peak,
            moto_cpu,
            own_cpu,
            requests,
        });
    }
    Ok(runs)
}

/// The SQS table.
pub(crate) fn print(runs: &[QueueRun], polling_wall: f64, files: usize) {
    let Some(first) = runs.first() else { return };
    println!(
        "\n`trailwatch run --once` on an SQS queue in moto: {} notifications (the file set {COPIES} times, {} events), \
         each instance with every core; timed until the queue is empty.\n",
        first.objects, first.events
    );
    println!("| Instances | Wall (s) | Objects/s | Events/s | Peak RSS of one (MiB) | trailwatch CPU (s) | moto CPU (s) | events repeated |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        println!(
            "| {} | {:.3} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
            r.instances,
            r.wall,
            r.objects as f64 / r.wall,
            r.events as f64 / r.wall,
            r.peak_kib as f64 / 1024.0,
            r.own_cpu,
            r.moto_cpu,
            r.repeated
        );
    }
    println!();
    for r in &runs[1..] {
        println!("- {} instances / 1: {:.2}", r.instances, first.wall / r.wall);
    }
    println!(
        "- trailwatch's own CPU per object: {:.1} ms with 1 instance (moto's: {:.1} ms)",
        first.own_cpu * 1000.0 / first.objects as f64,
        first.moto_cpu * 1000.0 / first.objects as f64
    );
    if polling_wall.is_finite() {
        println!(
            "- 1 instance on the queue / polling with every core (same objects per second): {:.2}",
            (first.objects as f64 / first.wall) / (files as f64 / polling_wall)
        );
    }
    println!("\nSQS requests per 1000 objects (all instances together):\n");
    let ops: std::collections::BTreeSet<&String> = runs.iter().flat_map(|r| r.requests.keys()).collect();
    println!(
        "| Instances | {} |",
        ops.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(" | ")
    );
    println!("|---:|{}", "---:|".repeat(ops.len()));
    for r in runs {
        let per: Vec<String> = ops
            .iter()
            .map(|op| {
                format!(
                    "{:.0}",
                    *r.requests.get(*op).unwrap_or(&0) as f64 * 1000.0 / r.objects as f64
                )
            })
            .collect();
        println!("| {} | {} |", r.instances, per.join(" | "));
    }
}
