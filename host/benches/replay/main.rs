//! The replay benchmark: `cargo bench -p trailwatch --bench replay`.
//!
//! Generates a deterministic CloudTrail file set laid out like a trail bucket (gzip, a realistic
//! mix of services and record sizes) plus a small and a big single file, then measures in one
//! run: gunzip alone, the plugin's parser built natively, the same parser inside wasmtime,
//! `trailwatch replay` end to end with one job and with every core, its peak memory on the small
//! and the big file, and what a user would otherwise run (`zcat | jq`, a Python script).
//! Markdown tables go to stdout, progress to stderr. Numbers compare only within one run.
//!
//! `TRAILWATCH_BENCH_EVENTS` sets the size of the file set (default 100 000 events); the big
//! file holds twice as many. `TRAILWATCH_BENCH_KEEP=DIR` keeps the generated files in DIR.
//! `TRAILWATCH_BENCH_THROUGHPUT_ONLY=1` prints the throughput table alone (no memory, `run` or
//! queue parts).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use flate2::read::MultiGzDecoder;
use trailwatch::runtime::bindings::types::ObjectMeta;
use trailwatch::runtime::{cache::CompileCache, Limits, PluginRuntime};
use trailwatch_plugin::{model::OpenOptions, reader::LogFile};

const DEFAULT_EVENTS: u64 = 100_000;
const SMALL_EVENTS: u64 = 1_000;
const SEED: u64 = 0x7472_6169_6c77_6174;
const RUNS: usize = 3;
/// Pairs of `run --once` with integrity off and on: the difference is a few per cent, and
/// moto's work on the same two cores moves single runs by more than that.
const INTEGRITY_PAIRS: usize = 11;

#[path = "../../../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;
mod pipeline;
mod queue;
mod trail;

use trail::*;

/// Wall times of repeated runs, fastest first.
struct Timing(Vec<Duration>);

impl Timing {
    fn best(&self) -> f64 {
        self.0.first().map_or(f64::NAN, Duration::as_secs_f64)
    }
    fn median(&self) -> f64 {
        self.0.get(self.0.len() / 2).map_or(f64::NAN, Duration::as_secs_f64)
    }
}

type Counted = anyhow::Result<u64>;

/// Times `RUNS` runs of `run`; each must count `expected` (events, or bytes for gunzip).
fn measure(label: &str, expected: u64, mut run: impl FnMut() -> Counted) -> anyhow::Result<Timing> {
    let mut times = Vec::with_capacity(RUNS);
    for i in 1..=RUNS {
        eprintln!("  {label}: run {i}/{RUNS}");
        let started = Instant::now();
        let seen = run()?;
        times.push(started.elapsed());
        if seen != expected {
            bail!("{label}: counted {seen}, expected {expected}");
        }
    }
    times.sort();
    Ok(Timing(times))
}

/// Files read into memory once, so that the in-process stages measure no disk I/O.
type Inputs = Vec<(String, Vec<u8>)>;

/// Decompressed bytes.
fn gunzip(inputs: &Inputs) -> Counted {
    let mut bytes = 0;
    for (_, gz) in inputs {
        bytes += std::io::copy(&mut MultiGzDecoder::new(&gz[..]), &mut std::io::sink())?;
    }
    Ok(bytes)
}

/// The plugin's parser built natively; returns the events and how many it flagged. Each file's
/// bytes are copied first, as the wasm path copies them into the plugin's memory.
fn parse_native(inputs: &Inputs) -> anyhow::Result<(u64, u64)> {
    let (mut events, mut flagged) = (0, 0);
    for (key, bytes) in inputs {
        let opened = LogFile::open(bytes.clone(), key, OpenOptions::default());
        let mut file = opened.map_err(|e| anyhow!("{key}: {e}"))?;
        loop {
            let batch = file.next_batch(512).map_err(|e| anyhow!("{key}: {e}"))?;
            if batch.is_empty() {
                break;
            }
            events += batch.len() as u64;
            flagged += batch.iter().filter(|e| !e.problems.is_empty()).count() as u64;
        }
    }
    Ok((events, flagged))
}

/// The same parser built natively, rendering each event's document as the plugin's `documents`
/// interface does (what `replay` uses).
fn render_native(inputs: &Inputs) -> Counted {
    let mut events = 0;
    let mut batch = trailwatch_plugin::documents::Batch::default();
    for (key, bytes) in inputs {
        let opened = LogFile::open(bytes.clone(), key, OpenOptions::default());
        let mut file = opened.map_err(|e| anyhow!("{key}: {e}"))?;
        loop {
            let n = file
                .next_documents(128, &mut batch)
                .map_err(|e| anyhow!("{key}: {e}"))?;
            if n == 0 {
                break;
            }
            events += n as u64;
        }
    }
    Ok(events)
}

/// The plugin in wasmtime through its `documents` interface: rendered batches copied out.
fn render_wasm(runtime: &PluginRuntime, inputs: &Inputs) -> Counted {
    if !runtime.renders_documents() {
        bail!("the plugin does not export the documents interface");
    }
    let mut events = 0;
    for (key, bytes) in inputs {
        let meta = ObjectMeta {
            key: key.clone(),
            size: bytes.len() as u64,
            last_modified_ms: None,
        };
        let read = runtime.read_batches(Box::new(std::io::Cursor::new(bytes.clone())), &meta, |_| Ok(()));
        events += read.map_err(|(_, failure)| anyhow!("{}: {failure}", meta.key))?.events;
    }
    Ok(events)
}

fn parse_wasm(runtime: &PluginRuntime, inputs: &Inputs) -> Counted {
    let mut events = 0;
    for (key, bytes) in inputs {
        let (key, size) = (key.clone(), bytes.len() as u64);
        let meta = ObjectMeta {
            key,
            size,
            last_modified_ms: None,
        };
        // The plugin pulls the bytes through its input import; the copy costs a memcpy.
        let read = runtime.read_file(Box::new(std::io::Cursor::new(bytes.clone())), &meta, |_| Ok(()));
        events += read.map_err(|(_, failure)| anyhow!("{}: {failure}", meta.key))?.events;
    }
    Ok(events)
}

/// Set to a file path, turns this binary into the helper that runs one child (its arguments) and
/// writes `<wall seconds> <peak RSS KiB>` there. Linux counts into a child's peak RSS the peak of
/// the address space it replaced at exec, which after vfork is the parent's: so the parent must
/// be a small fresh process, not the benchmark holding its data.
const HELPER_ENV: &str = "TRAILWATCH_BENCH_PEAK_TO";

fn helper(report: &Path) -> anyhow::Result<ExitCode> {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let (program, args) = args.split_first().context("the helper needs a command")?;
    let started = Instant::now();
    let child = Command::new(program).args(args).env_remove(HELPER_ENV).spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child and not yet reaped (std reaps only in `wait`, never on drop);
    // both pointers are to live locals.
    while unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waiting for the child");
        }
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    // Linux reports ru_maxrss in KiB.
    std::fs::write(
        report,
        format!(
            "{} {} {}",
            started.elapsed().as_secs_f64(),
            usage.ru_maxrss,
            seconds(usage.ru_utime) + seconds(usage.ru_stime)
        ),
    )?;
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// What one run of a child cost.
#[derive(Debug, Clone, Copy)]
struct Ran {
    /// Wall time, seconds.
    wall: f64,
    /// Peak RSS, KiB.
    peak_kib: u64,
    /// CPU time (user and system) of the child itself, seconds: unlike the wall time, not
    /// lengthened by other processes on the same cores (moto's server, in `run`'s measurements).
    cpu: f64,
}

/// Runs `command` through the helper, output to /dev/null: its wall time in seconds and its
/// peak RSS in KiB.
fn run_child(command: &Command, scratch: &Path) -> anyhow::Result<(f64, u64)> {
    run_child_ran(command, scratch).map(|r| (r.wall, r.peak_kib))
}

/// The same, with the child's CPU time.
fn run_child_ran(command: &Command, scratch: &Path) -> anyhow::Result<Ran> {
    let (report, stderr) = (scratch.join("peak.txt"), scratch.join("stderr.txt"));
    let mut helper = Command::new(std::env::current_exe()?);
    helper
        .env(HELPER_ENV, &report)
        .arg(command.get_program())
        .args(command.get_args());
    // The helper's child inherits its environment: pass the command's own on.
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => helper.env(key, v),
            None => helper.env_remove(key),
        };
    }
    helper.stdout(File::create("/dev/null")?).stderr(File::create(&stderr)?);
    let status = helper.status()?;
    if !status.success() {
        let said = std::fs::read_to_string(&stderr).unwrap_or_default();
        bail!("{command:?} failed ({status}):\n{said}");
    }
    let report = std::fs::read_to_string(&report)?;
    let mut fields = report.split(' ');
    let mut next = || fields.next().context("the helper's report");
    Ok(Ran {
        wall: next()?.parse()?,
        peak_kib: next()?.parse()?,
        cpu: next()?.parse()?,
    })
}

/// How to start the release binary.
struct Cli {
    bin: PathBuf,
    plugin_dir: PathBuf,
    scratch: PathBuf,
}

impl Cli {
    /// `trailwatch replay` over `corpus`, NDJSON to /dev/null; checks the summary's counts.
    /// Returns the wall time in seconds and the peak RSS in KiB.
    fn replay(&self, corpus: &Corpus, jobs: usize) -> anyhow::Result<(f64, u64)> {
        let summary = self.scratch.join("summary.json");
        let mut command = Command::new(&self.bin);
        command.arg("--plugin-dir").arg(&self.plugin_dir);
        command.arg("--cache-dir").arg(self.scratch.join("cache"));
        // The read path alone, as the baselines do no scoring either (scoring's own cost is the
        // patterns bench's).
        command.args(["replay", "--no-progress", "--no-scoring", "--jobs", &jobs.to_string()]);
        command.arg("--summary-json").arg(&summary).arg(&corpus.arg);
        let run = run_child(&command, &self.scratch)?;
        let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary)?)?;
        let (events, flagged) = (&summary["events"], &summary["flagged_events"]);
        if events.as_u64() != Some(corpus.events) || flagged.as_u64() != Some(0) {
            bail!("replay saw {events} events ({flagged} flagged), not {}", corpus.events);
        }
        Ok(run)
    }
}

/// `zcat FILES | jq -c '.Records[]' > /dev/null`.
fn jq_baseline(corpus: &Corpus) -> Counted {
    let mut zcat = Command::new("zcat");
    let mut zcat = zcat.args(&corpus.files).stdout(Stdio::piped()).spawn()?;
    let mut jq = Command::new("jq");
    jq.args(["-c", ".Records[]"])
        .stdin(zcat.stdout.take().context("zcat's stdout")?);
    let jq = jq.stdout(File::create("/dev/null")?).status()?;
    if !zcat.wait()?.success() || !jq.success() {
        bail!("zcat | jq failed");
    }
    Ok(corpus.events)
}

/// What a user would write: gunzip, parse, a service and verb-prefix category per record, NDJSON
/// out. `{LOAD}` and `{DUMP}` are filled in for `json` and for `orjson`.
const PYTHON: &str = r#"
import gzip, sys
{IMPORT}
VERBS = (("Describe", "read"), ("Get", "read"), ("List", "read"), ("Head", "read"),
         ("Create", "create"), ("Run", "create"), ("Put", "modify"), ("Update", "modify"),
         ("Delete", "delete"), ("Terminate", "delete"))
def category(record):
    name = record.get("eventName") or ""
    service = (record.get("eventSource") or "unknown").split(".")[0]
    for prefix, action in VERBS:
        if name.startswith(prefix):
            return f"aws.{service}.{action}"
    return f"aws.{service}.other"
count = 0
with open(sys.argv[1]) as paths, open("/dev/null", "{MODE}") as out:
    for path in paths:
        with gzip.open(path.rstrip("\n"), "rb") as f:
            doc = {LOAD}
        for record in doc["Records"]:
            record["metric"] = category(record)
            out.write({DUMP})
            out.write({NEWLINE})
            count += 1
print(count)
"#;

/// The script with `json` from the standard library.
fn python_json() -> String {
    PYTHON
        .replace("{IMPORT}", "import json")
        .replace("{MODE}", "w")
        .replace("{LOAD}", "json.load(f)")
        .replace("{DUMP}", "json.dumps(record)")
        .replace("{NEWLINE}", "\"\\n\"")
}

/// The script with `orjson`, the fastest JSON library for Python.
fn python_orjson() -> String {
    PYTHON
        .replace("{IMPORT}", "import orjson")
        .replace("{MODE}", "wb")
        .replace("{LOAD}", "orjson.loads(f.read())")
        .replace("{DUMP}", "orjson.dumps(record)")
        .replace("{NEWLINE}", "b\"\\n\"")
}

/// orjson's version, installed from PyPI when it is missing (the bench's own set-up).
fn ensure_orjson() -> anyhow::Result<String> {
    let version = || {
        Command::new("python3")
            .args(["-c", "import orjson; print(orjson.__version__)"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(v) = version() {
        return Ok(v);
    }
    eprintln!("installing orjson from PyPI for the Python baseline");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "orjson",
        ])
        .status()?;
    if !status.success() {
        bail!("pip install orjson failed ({status})");
    }
    version().context("orjson does not import after installing it")
}

/// The Python script over the files listed in `list`; returns the records it wrote.
fn python_baseline(script: &Path, list: &Path) -> Counted {
    let out = Command::new("python3")
        .arg(script)
        .arg(list)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("the Python baseline failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// The stages of the throughput table, in the order they run; `N` is the number of cores.
const STAGES: [&str; 10] = [
    "gunzip only (flate2, native)",
    "plugin parser built natively, typed events (`LogFile::next_batch`)",
    "plugin parser built natively, rendered documents (`LogFile::next_documents`)",
    "plugin in wasmtime, typed events (`PluginRuntime::read_file`)",
    "plugin in wasmtime, rendered documents (`PluginRuntime::read_batches`)",
    "`trailwatch replay --jobs 1`, NDJSON to /dev/null",
    "`trailwatch replay --jobs N`, NDJSON to /dev/null",
    "`zcat FILES \\| jq -c '.Records[]'` (two processes)",
    "Python: `gzip`, `json`, a verb-prefix category, NDJSON out",
    "Python: `gzip`, `orjson`, a verb-prefix category, NDJSON out",
];
const GUNZIP: usize = 0;
const NATIVE: usize = 1;
const NATIVE_DOCS: usize = 2;
const WASM: usize = 3;
const WASM_DOCS: usize = 4;
const JOBS_1: usize = 5;
const JOBS_N: usize = 6;
const JQ: usize = 7;
const PYTHON_JSON: usize = 8;
const PYTHON_ORJSON: usize = 9;

/// Timings of the stages in `STAGES` (`None`: the tool is not installed), and the peak RSS in
/// KiB of `replay --jobs 1` and `--jobs N` over the file set.
type Throughput = ([Option<Timing>; 10], [u64; 2]);

/// Measures every stage over the file set.
fn throughput(set: &Corpus, cli: &Cli, plugin: &Path, cores: usize) -> anyhow::Result<Throughput> {
    let read = |p: &PathBuf| Ok((p.display().to_string(), std::fs::read(p)?));
    let inputs: Inputs = set.files.iter().map(read).collect::<anyhow::Result<_>>()?;
    let (_, flagged) = parse_native(&inputs)?;
    if flagged > 0 {
        bail!("the parser flagged {flagged} generated records: the generator writes what it should not");
    }
    let orjson = ensure_orjson()?;
    eprintln!("  orjson {orjson}");
    let gunzip = measure("gunzip", set.json_bytes, || gunzip(&inputs))?;
    let native = measure("native parser", set.events, || Ok(parse_native(&inputs)?.0))?;
    let native_docs = measure("native parser, documents", set.events, || render_native(&inputs))?;
    let runtime = PluginRuntime::from_file(plugin, &CompileCache::disabled(), Limits::default())?;
    let wasm = measure("plugin in wasmtime", set.events, || parse_wasm(&runtime, &inputs))?;
    let wasm_docs = measure("plugin in wasmtime, documents", set.events, || {
        render_wasm(&runtime, &inputs)
    })?;
    drop((runtime, inputs));

    let mut peaks = [0; 2];
    let mut replay = |i: usize, jobs: usize| {
        measure(&format!("replay --jobs {jobs}"), set.events, || {
            peaks[i] = peaks[i].max(cli.replay(set, jobs)?.1);
            Ok(set.events)
        })
    };
    let (one, all) = (replay(0, 1)?, replay(1, cores)?);
    let installed = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    let jq = if installed("jq") && installed("zcat") {
        Some(measure("zcat | jq", set.events, || jq_baseline(set))?)
    } else {
        None
    };
    let list = cli.scratch.join("files.txt");
    let names: String = set.files.iter().map(|p| format!("{}\n", p.display())).collect();
    std::fs::write(&list, names)?;
    let python = |name: &str, script: String| {
        let path = cli.scratch.join(format!("baseline_{name}.py"));
        std::fs::write(&path, script)?;
        measure(&format!("python {name}"), set.events, || python_baseline(&path, &list))
    };
    let (json, orjson) = (python("json", python_json())?, python("orjson", python_orjson())?);
    let timings = [
        Some(gunzip),
        Some(native),
        Some(native_docs),
        Some(wasm),
        Some(wasm_docs),
        Some(one),
        Some(all),
        jq,
        Some(json),
        Some(orjson),
    ];
    Ok((timings, peaks))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn print_throughput(set: &Corpus, timings: &[Option<Timing>; 10], cores: usize) {
    let (n, files, gz, json) = (set.events, set.files.len(), mb(set.gz_bytes), mb(set.json_bytes));
    let per_record = set.json_bytes / n.max(1);
    println!("File set: {n} events in {files} files, {gz:.1} MB gzip, {json:.1} MB JSON ({per_record} B/record);");
    println!("{cores} cores; best and median of {RUNS} runs; MB/s of decompressed JSON.\n");
    println!("| Stage | Threads | Best (s) | Median (s) | Events/s | MB/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, timing) in timings.iter().enumerate() {
        let stage = STAGES[i].replace("--jobs N", &format!("--jobs {cores}"));
        // `zcat | jq` is two processes.
        let threads = if i == JOBS_N {
            cores
        } else if i == JQ {
            2
        } else {
            1
        };
        match timing {
            Some(t) => {
                let (best, median, rate) = (t.best(), t.median(), n as f64 / t.best());
                let row = format!("| {stage} | {threads} | {best:.3} | {median:.3} | {rate:.0}");
                println!("{row} | {:.0} |", json / best);
            }
            None => println!("| {stage} | {threads} | – | – | not installed | – |"),
        }
    }
    // How many times faster stage `a` is than stage `b`, from their best runs.
    let ratio = |a: usize, b: usize| match (&timings[a], &timings[b]) {
        (Some(a), Some(b)) => format!("{:.2}", b.best() / a.best()),
        _ => "–".into(),
    };
    println!();
    println!(
        "- `replay --jobs 1` / Python with orjson: {} (target ≥ 2)",
        ratio(JOBS_1, PYTHON_ORJSON)
    );
    println!(
        "- `replay --jobs 1` / Python with json: {} (target ≥ 4)",
        ratio(JOBS_1, PYTHON_JSON)
    );
    println!(
        "- wasm / native, the same parser rendering documents: {} (target ≥ 0.7); typed events: {}",
        ratio(WASM_DOCS, NATIVE_DOCS),
        ratio(WASM, NATIVE)
    );
    println!(
        "- `replay --jobs 1` / gunzip alone (the ceiling per core): {}",
        ratio(JOBS_1, GUNZIP)
    );
    println!(
        "- `replay --jobs {cores}` / `replay --jobs 1`: {}",
        ratio(JOBS_N, JOBS_1)
    );
    println!("- `replay --jobs 1` / `zcat | jq`: {}", ratio(JOBS_1, JQ));
}

/// A line of the memory table.
fn print_memory_row(what: &str, jobs: usize, corpus: &Corpus, wall: Option<f64>, peak_kib: u64) {
    let (events, gz, json) = (corpus.events, mb(corpus.gz_bytes), mb(corpus.json_bytes));
    let wall = wall.map_or("see above".to_owned(), |w| format!("{w:.2}"));
    let rss = peak_kib as f64 / 1024.0;
    println!("| {what} | {jobs} | {events} | {gz:.1} | {json:.1} | {rss:.0} | {wall} |");
}

fn main() -> anyhow::Result<ExitCode> {
    if let Some(report) = std::env::var_os(HELPER_ENV) {
        return helper(Path::new(&report));
    }
    let scale = std::env::var("TRAILWATCH_BENCH_EVENTS").ok();
    let events = match &scale {
        Some(v) => v
            .parse()
            .with_context(|| format!("TRAILWATCH_BENCH_EVENTS={v:?}: expected a number"))?,
        None => DEFAULT_EVENTS,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plugin_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let plugin = plugin_dir.join(format!("trailwatch-core-{}.wasm", trailwatch_plugin::VERSION));
    if !plugin.is_file() {
        bail!(
            "{} is missing: build it with `cargo run -p xtask -- plugins`",
            plugin.display()
        );
    }
    let tmp = tempfile::tempdir()?;
    // `TRAILWATCH_BENCH_KEEP=DIR` writes the generated files there and keeps them (for profiling).
    let root = std::env::var_os("TRAILWATCH_BENCH_KEEP").map_or_else(|| tmp.path().to_owned(), PathBuf::from);
    let scratch = root.clone();
    let cli = Cli {
        bin: env!("CARGO_BIN_EXE_trailwatch").into(),
        plugin_dir,
        scratch,
    };

    eprintln!(
        "generating {events} events and a file of {} in {}",
        2 * events,
        root.display()
    );
    let mut rng = Rng(SEED);
    let set = generate_bucket(&root.join("bucket"), events, &mut rng)?;
    let small = generate_single(&root.join("small"), "small", SMALL_EVENTS, &mut rng)?;
    let big = generate_single(&root.join("big"), "big", 2 * events, &mut rng)?;

    if std::env::var_os("TRAILWATCH_BENCH_INTEGRITY_ONLY").is_some() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (moto, _) = rt.block_on(pipeline::seed(&set))?;
        let (off, on) = pipeline::measure_integrity(&cli, &set, &moto, INTEGRITY_PAIRS)?;
        pipeline::print_integrity(&set, &off, &on);
        return Ok(ExitCode::SUCCESS);
    }
    if std::env::var_os("TRAILWATCH_BENCH_QUEUE_ONLY").is_some() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (moto, keys) = rt.block_on(pipeline::seed(&set))?;
        let queue = rt.block_on(queue::measure(&cli, &set, &moto, &keys))?;
        queue::print(&queue, f64::NAN, set.files.len());
        return Ok(ExitCode::SUCCESS);
    }
    // The first run compiles the plugin into the cache, as a user's first run does.
    let (cold_start, _) = cli.replay(&small, 1)?;
    let (timings, peaks) = throughput(&set, &cli, &plugin, cores)?;
    if std::env::var_os("TRAILWATCH_BENCH_THROUGHPUT_ONLY").is_some() {
        print_throughput(&set, &timings, cores);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("  peak memory: small file, big file");
    let (small_wall, small_peak) = cli.replay(&small, 1)?;
    let (big_wall, big_peak) = cli.replay(&big, 1)?;
    eprintln!("uploading the file set to moto for `run`");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (moto, keys) = rt.block_on(pipeline::seed(&set))?;
    let run = pipeline::measure(&cli, &set, &moto, cores, RUNS)?;
    let (integrity_off, integrity_on) = pipeline::measure_integrity(&cli, &set, &moto, INTEGRITY_PAIRS)?;
    let queue = rt.block_on(queue::measure(&cli, &set, &moto, &keys))?;
    drop(moto);

    let env = scale
        .map(|v| format!("TRAILWATCH_BENCH_EVENTS={v} "))
        .unwrap_or_default();
    println!("Command: `{env}cargo bench -p trailwatch --bench replay`\n");
    print_throughput(&set, &timings, cores);
    println!("- `replay` times include starting the process and loading the cached compiled plugin;");
    println!(
        "  the first run, which compiled it, took {:.2} s on the small file.\n",
        cold_start
    );
    println!("| `trailwatch replay` over | Jobs | Events | MB gzip | MB JSON | Peak RSS (MiB) | Wall (s) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    print_memory_row("small file", 1, &small, Some(small_wall), small_peak);
    print_memory_row("big file", 1, &big, Some(big_wall), big_peak);
    let files = format!("file set, {} files", set.files.len());
    print_memory_row(&files, 1, &set, None, peaks[0]);
    print_memory_row(&files, cores, &set, None, peaks[1]);
    let replay_one = timings[JOBS_1].as_ref().map_or(f64::NAN, Timing::best);
    pipeline::print(&set, &run, cores, replay_one);
    pipeline::print_integrity(&set, &integrity_off, &integrity_on);
    queue::print(&queue, run.all.0, set.files.len());
    Ok(ExitCode::SUCCESS)
}
