//! `trailwatch run` in the benchmark: a backfill of the file set from moto's S3 with one reader
//! and with every core, the HTTP sink into a local receiver (plain and gzip), and the peak memory
//! while that receiver stalls.
//!
//! The file set is uploaded under today's date (the events inside keep theirs), so that a
//! backfill from today lists one day per stream: the time measured is reading, not listing.

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::common::moto::{self, Moto};
use super::trail::Corpus;
use super::{run_child_ran, Cli, Ran};

pub(crate) const BUCKET: &str = "bench-trail";

/// Today, UTC: `(YYYY, MM, DD)`.
pub(crate) fn today() -> (i64, u32, u32) {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    trailwatch::layout::Day::of_ms(ms).ymd()
}

/// `key` with its day (`YYYY/MM/DD/` and the `YYYYMMDD` stamp in the name) moved to today.
fn restamp(key: &str, (y, m, d): (i64, u32, u32)) -> String {
    let parts: Vec<&str> = key.split('/').collect();
    // AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<name>
    let old = format!("{}{}{}", parts[4], parts[5], parts[6]);
    let name = parts[7].replacen(&format!("_{old}T"), &format!("_{y:04}{m:02}{d:02}T"), 1);
    format!(
        "{}/{}/{}/{}/{y:04}/{m:02}/{d:02}/{name}",
        parts[0], parts[1], parts[2], parts[3]
    )
}

/// moto holding the file set under today's date, and the keys.
pub(crate) async fn seed(set: &Corpus) -> anyhow::Result<(Moto, Vec<String>)> {
    let moto = Moto::start();
    let client = moto.client("AKIDBENCH", "secret");
    let day = today();
    let mut files = Vec::new();
    for path in &set.files {
        let key = path.strip_prefix(&set.arg)?.to_str().context("a UTF-8 key")?;
        files.push(moto::LogFile {
            key: restamp(key, day),
            body: std::fs::read(path)?,
            ids: Vec::new(),
        });
    }
    moto::seed(&client, BUCKET, &files).await;
    Ok((moto, files.into_iter().map(|f| f.key).collect()))
}

/// A config for a backfill of today from `moto` with `readers` reading at once into `sinks`.
fn config(dir: &Path, moto: &Moto, readers: usize, sinks: &str, extra: &str) -> anyhow::Result<PathBuf> {
    let state = dir.join(format!("state-{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
    let (y, m, d) = today();
    let path = dir.join("run.toml");
    std::fs::write(
        &path,
        format!(
            "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{url}\"\naccess_key_id = \"AKIDBENCH\"\nsecret_access_key = \"secret\"\n\n\
             [source]\nbucket = \"{BUCKET}\"\nstart = \"{y:04}-{m:02}-{d:02}\"\ninclude_insight = false\n\n\
             [trail]\ncheck = false\n\n[scoring]\nenabled = false\n\n[delete]\nenabled = false\n\n[state]\ndir = \"{state}\"\n\n[pipeline]\nmax_concurrent_files = {readers}\n\n{extra}\n{sinks}\n",
            url = moto.url,
            state = state.display(),
        ),
    )?;
    Ok(path)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The `events` of the `poll done` log line of a run (its stderr, JSON logs).
pub(crate) fn events_of(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "poll done")
        .and_then(|l| l["fields"]["events"].as_u64())
}

impl Cli {
    pub(crate) fn run_command(&self, config: &Path, once: bool) -> Command {
        let mut command = Command::new(&self.bin);
        command.arg("--config").arg(config);
        command.arg("--plugin-dir").arg(&self.plugin_dir);
        command.arg("--cache-dir").arg(self.scratch.join("cache"));
        command.args(["--log-format", "json", "run"]);
        if once {
            command.arg("--once");
        }
        command.env("TRAILWATCH_LOG", "info");
        command
    }

    /// `trailwatch run --once` over `config`; checks it wrote `events`. Wall seconds, peak KiB.
    fn run_once(&self, config: &Path, events: u64) -> anyhow::Result<(f64, u64)> {
        self.run_once_ran(config, events).map(|r| (r.wall, r.peak_kib))
    }

    /// The same, with the run's CPU time.
    fn run_once_ran(&self, config: &Path, events: u64) -> anyhow::Result<Ran> {
        let run = run_child_ran(&self.run_command(config, true), &self.scratch)?;
        let stderr = std::fs::read_to_string(self.scratch.join("stderr.txt"))?;
        match events_of(&stderr) {
            Some(n) if n == events => Ok(run),
            other => bail!("run wrote {other:?} events, not {events}:\n{stderr}"),
        }
    }
}

/// A receiver of NDJSON batches on 127.0.0.1: counts lines and bytes; while `stall` is set it
/// takes no request (the connections wait, as on a receiver that hangs).
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    pub(crate) lines: Arc<AtomicU64>,
    pub(crate) bytes: Arc<AtomicU64>,
    pub(crate) stall: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    pub(crate) fn start() -> anyhow::Result<Receiver> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (lines, bytes, stall) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (l, b, s) = (lines.clone(), bytes.clone(), stall.clone());
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (l, b, s) = (l.clone(), b.clone(), s.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (l, b, s) = (l.clone(), b.clone(), s.clone());
                        async move {
                            while s.load(Ordering::Relaxed) {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            let gzip = req.headers().get("content-encoding").is_some_and(|v| v == "gzip");
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let body = if gzip {
                                let mut out = Vec::new();
                                flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).ok();
                                Bytes::from(out)
                            } else {
                                body
                            };
                            l.fetch_add(memchr::memchr_iter(b'\n', &body).count() as u64, Ordering::Relaxed);
                            b.fetch_add(body.len() as u64, Ordering::Relaxed);
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"{}"))))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await
                        .ok();
                });
            }
        });
        Ok(Receiver {
            addr,
            lines,
            bytes,
            stall,
            _runtime: runtime,
        })
    }
}

/// What the `run` measurements found.
pub(crate) struct RunNumbers {
    pub(crate) one: (f64, u64),
    pub(crate) all: (f64, u64),
    pub(crate) http: (f64, u64, u64),
    pub(crate) http_gzip: (f64, u64, u64),
    pub(crate) stalled_peak_kib: u64,
    pub(crate) stalled_received: u64,
    pub(crate) stalled_inflight_mib: u64,
    /// CPU seconds moto's server used per run with every reader.
    pub(crate) moto_cpu: f64,
}

/// Best of `runs` of `f` by wall time.
fn best<T: Copy>(runs: usize, mut f: impl FnMut() -> anyhow::Result<T>, wall: impl Fn(&T) -> f64) -> anyhow::Result<T> {
    let mut best: Option<T> = None;
    for _ in 0..runs {
        let r = f()?;
        if best.as_ref().is_none_or(|b| wall(&r) < wall(b)) {
            best = Some(r);
        }
    }
    best.context("no run")
}

/// CPU seconds a process has used so far (user + system).
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(14) + ticks(15)) / hz
}

/// Peak resident memory of a process so far (VmHWM), KiB.
pub(crate) fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// What log-file integrity validation costs `run`: `run --once` with one reader over the file
/// set, with `[integrity] enabled` off and on (each file's decompressed content hashed as it is
/// read; the bucket has no digests, so nothing else is done), alternating, `runs` of each.
/// Wall seconds of each run, off and on.
pub(crate) fn measure_integrity(
    cli: &Cli,
    set: &Corpus,
    moto: &Moto,
    runs: usize,
) -> anyhow::Result<(Vec<Ran>, Vec<Ran>)> {
    let dir = &cli.scratch;
    let stdout = "[[sinks]]\ntype = \"stdout\"\n";
    let (mut off, mut on) = (Vec::new(), Vec::new());
    // A first pair warms what both share (the compiled plugin's cache entry, moto's listing, the
    // page cache) and is not counted: the first run alone once took 1.7 times the others.
    for i in 0..=runs {
        eprintln!("  run --once, 1 reader, integrity off and on ({i}/{runs})");
        let pair = (
            cli.run_once_ran(
                &config(dir, moto, 1, stdout, "[integrity]\nenabled = false\n")?,
                set.events,
            )?,
            cli.run_once_ran(
                &config(dir, moto, 1, stdout, "[integrity]\nenabled = true\n")?,
                set.events,
            )?,
        );
        if i > 0 {
            off.push(pair.0);
            on.push(pair.1);
        }
    }
    Ok((off, on))
}

/// Prints the integrity measurement: the median of each, and the median of the per-pair ratios,
/// of the wall time and of trailwatch's own CPU time (moto's server shares the cores, so the
/// wall time varies with its work; the CPU time is what hashing adds to trailwatch).
pub(crate) fn print_integrity(set: &Corpus, off: &[Ran], on: &[Ran]) {
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let of = |v: &[Ran], f: fn(&Ran) -> f64| v.iter().map(f).collect::<Vec<f64>>();
    let (wall_off, wall_on) = (of(off, |r| r.wall), of(on, |r| r.wall));
    let (cpu_off, cpu_on) = (of(off, |r| r.cpu), of(on, |r| r.cpu));
    let ratios = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| b / a).collect::<Vec<f64>>();
    let events = set.events as f64;
    println!(
        "\nLog-file integrity in `run --once`, 1 reader, stdout sink, {} runs of each, alternating:\n",
        off.len()
    );
    println!(
        "| `run --once`, 1 reader | Wall (s), median | Events/s | trailwatch CPU (s), median | Events per CPU-second |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, wall, cpu) in [
        ("`[integrity] enabled = false`", &wall_off, &cpu_off),
        ("`[integrity] enabled = true` (every file hashed)", &wall_on, &cpu_on),
    ] {
        println!(
            "| {name} | {:.3} | {:.0} | {:.3} | {:.0} |",
            median(wall),
            events / median(wall),
            median(cpu),
            events / median(cpu)
        );
    }
    for (what, r, of_medians) in [
        (
            "wall time",
            ratios(&wall_off, &wall_on),
            median(&wall_on) / median(&wall_off),
        ),
        (
            "trailwatch's CPU time",
            ratios(&cpu_off, &cpu_on),
            median(&cpu_on) / median(&cpu_off),
        ),
    ] {
        println!(
            "- on / off, {what}: median of the pairs {:.3} (range {:.3}-{:.3}), of the medians {of_medians:.3}",
            median(&r),
            r.iter().copied().fold(f64::INFINITY, f64::min),
            r.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
    }
}

/// Measures `run` over the file set.
pub(crate) fn measure(cli: &Cli, set: &Corpus, moto: &Moto, cores: usize, runs: usize) -> anyhow::Result<RunNumbers> {
    let dir = &cli.scratch;
    let stdout = "[[sinks]]\ntype = \"stdout\"\n";
    eprintln!("  run --once, 1 reader");
    let one = best(
        runs,
        || cli.run_once(&config(dir, moto, 1, stdout, "")?, set.events),
        |r| r.0,
    )?;
    eprintln!("  run --once, {cores} readers");
    let moto_before = cpu_secs(moto.pid());
    let all = best(
        runs,
        || cli.run_once(&config(dir, moto, cores, stdout, "")?, set.events),
        |r| r.0,
    )?;
    let moto_cpu = (cpu_secs(moto.pid()) - moto_before) / runs as f64;

    let receiver = Receiver::start()?;
    let sink = |compression: &str| {
        format!(
            "[[sinks]]\ntype = \"http\"\nurl = \"http://{}/\"\ncompression = \"{compression}\"\n",
            receiver.addr
        )
    };
    let http_run = |compression: &str| -> anyhow::Result<(f64, u64, u64)> {
        let (lines0, bytes0) = (
            receiver.lines.load(Ordering::Relaxed),
            receiver.bytes.load(Ordering::Relaxed),
        );
        let (wall, peak) = cli.run_once(&config(dir, moto, cores, &sink(compression), "")?, set.events)?;
        let lines = receiver.lines.load(Ordering::Relaxed) - lines0;
        if lines != set.events {
            bail!("the receiver got {lines} events, not {}", set.events);
        }
        Ok((wall, receiver.bytes.load(Ordering::Relaxed) - bytes0, peak))
    };
    eprintln!("  run --once into the HTTP sink");
    let http = best(runs, || http_run("none"), |r| r.0)?;
    eprintln!("  run --once into the HTTP sink, gzip");
    let http_gzip = best(runs, || http_run("gzip"), |r| r.0)?;

    eprintln!("  run with the receiver stalled");
    receiver.stall.store(true, Ordering::Relaxed);
    let before = receiver.lines.load(Ordering::Relaxed);
    let config = config(dir, moto, cores, &sink("none"), "")?;
    let mut child = cli
        .run_command(&config, false)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(peak_kib(child.id()));
    }
    child.kill()?;
    child.wait()?;
    receiver.stall.store(false, Ordering::Relaxed);
    Ok(RunNumbers {
        one,
        all,
        http,
        http_gzip,
        stalled_peak_kib: peak,
        stalled_received: receiver.lines.load(Ordering::Relaxed) - before,
        stalled_inflight_mib: 64,
        moto_cpu,
    })
}

/// The `run` tables.
pub(crate) fn print(set: &Corpus, n: &RunNumbers, cores: usize, replay_one: f64) {
    let events = set.events as f64;
    let json = set.json_bytes as f64 / 1e6;
    println!("\n`trailwatch run --once`: a backfill of the same file set from moto's S3 on 127.0.0.1 (one GET per");
    println!(
        "file, {} files), best of the runs; the receiver is an HTTP server in the benchmark process.\n",
        set.files.len()
    );
    println!("| `run --once` | Readers | Wall (s) | Events/s | MB/s (JSON) | Peak RSS (MiB) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |what: &str, readers: usize, (wall, peak): (f64, u64)| {
        println!(
            "| {what} | {readers} | {wall:.3} | {:.0} | {:.0} | {:.0} |",
            events / wall,
            json / wall,
            peak as f64 / 1024.0
        );
    };
    row("stdout sink (to /dev/null)", 1, n.one);
    row("stdout sink (to /dev/null)", cores, n.all);
    row("HTTP sink, NDJSON", cores, (n.http.0, n.http.2));
    row("HTTP sink, NDJSON, gzip", cores, (n.http_gzip.0, n.http_gzip.2));
    println!();
    println!("- `run --once` with {cores} readers / with 1: {:.2}", n.one.0 / n.all.0);
    println!(
        "- moto's server, on the same {cores} cores, used {:.2} s of CPU per run with {cores} readers (serving the GETs and listings)",
        n.moto_cpu
    );
    println!(
        "- `run --once` with 1 reader / `replay --jobs 1` (same files from S3 instead of disk): {:.2}",
        replay_one / n.one.0
    );
    println!(
        "- HTTP sink: {:.0} events/s, {:.0} MB/s of NDJSON handed over ({:.2} of the stdout sink's rate); with gzip {:.0} events/s",
        events / n.http.0,
        n.http.1 as f64 / 1e6 / n.http.0,
        n.all.0 / n.http.0,
        events / n.http_gzip.0
    );
    println!(
        "- receiver stalled for 8 s (default cap of {} MiB in flight): peak RSS {:.0} MiB, {} events received",
        n.stalled_inflight_mib,
        n.stalled_peak_kib as f64 / 1024.0,
        n.stalled_received
    );
}
