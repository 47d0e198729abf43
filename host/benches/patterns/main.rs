//! The pattern-of-life evaluation (README, "Pattern of life"): a labelled scenario of four weeks
//! of a small organisation with seven attack chains injected (tests/common/scenario.rs) replayed
//! with source-network databases. Prints the detection of each chain, false anomalies and false
//! incidents per 10 000 benign events, what scoring adds to `replay --jobs 1` (CPU per event, in
//! the same run against `--no-scoring`), and the state it keeps per 1 000 identities.
//!
//! `cargo bench -p trailwatch --bench patterns` (`TRAILWATCH_BENCH_DAYS=N` for another length).

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use common::scenario::{self, Scenario};

/// Runs per setting; the median is reported.
const RUNS: usize = 5;

/// Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of one child.
fn measured(command: &mut Command) -> anyhow::Result<(f64, f64, u64)> {
    let started = Instant::now();
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet reaped; both pointers are to live locals.
    while unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waiting for trailwatch");
        }
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{command:?} failed");
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((
        started.elapsed().as_secs_f64(),
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
        usage.ru_maxrss as u64,
    ))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

struct Setup {
    bin: PathBuf,
    plugin_dir: PathBuf,
    cache: PathBuf,
    trail: PathBuf,
    dbs: (PathBuf, PathBuf),
}

impl Setup {
    fn replay(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--plugin-dir").arg(&self.plugin_dir);
        c.arg("--no-builtin-plugin");
        c.arg("--cache-dir").arg(&self.cache);
        c.args(["replay", "--no-progress", "--jobs", "1", "--asn-database"]);
        c.arg(&self.dbs.0).arg("--country-database").arg(&self.dbs.1);
        c.args(extra);
        c.arg(&self.trail);
        c
    }
}

/// Set in the child that writes the scenario, so that the process measuring stays small (a
/// child's peak RSS counts what it shared with its parent before `exec`).
const GENERATE_ENV: &str = "TRAILWATCH_PATTERNS_GENERATE";

/// What the generating child reports.
#[derive(serde::Serialize, serde::Deserialize)]
struct Generated {
    files: usize,
    events: usize,
    identities: usize,
    labels: BTreeMap<String, String>,
}

fn main() -> anyhow::Result<()> {
    let days: u32 = match std::env::var("TRAILWATCH_BENCH_DAYS") {
        Ok(v) => v.parse().with_context(|| format!("TRAILWATCH_BENCH_DAYS={v:?}"))?,
        Err(_) => Scenario::full().days,
    };
    let scenario = Scenario {
        days,
        ..Scenario::full()
    };
    if let Some(dir) = std::env::var_os(GENERATE_ENV) {
        let dir = PathBuf::from(dir);
        let written = scenario::write(&dir.join("trail"), &scenario);
        common::networks::databases_for(&dir, scenario::NETWORKS);
        let generated = Generated {
            files: written.files,
            events: written.events,
            identities: written.identities,
            labels: written.labels.into_iter().map(|(k, v)| (k, v.to_owned())).collect(),
        };
        std::fs::write(dir.join("labels.json"), serde_json::to_vec(&generated)?)?;
        return Ok(());
    }
    let plugin_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    if !plugin_dir
        .join(format!("trailwatch-core-{}.wasm", trailwatch_plugin::VERSION))
        .is_file()
    {
        bail!("the core plugin is not built: run `cargo run -p xtask -- plugins`");
    }
    let tmp = tempfile::tempdir()?;
    eprintln!("generating {days} days of the scenario in {}", tmp.path().display());
    let status = Command::new(std::env::current_exe()?)
        .env(GENERATE_ENV, tmp.path())
        .status()?;
    if !status.success() {
        bail!("generating the scenario failed ({status})");
    }
    let setup = Setup {
        bin: env!("CARGO_BIN_EXE_trailwatch").into(),
        plugin_dir,
        cache: tmp.path().join("cache"),
        trail: tmp.path().join("trail"),
        dbs: (tmp.path().join("asn.mmdb"), tmp.path().join("country.mmdb")),
    };

    // Cost: CPU per event with and without scoring, alternated, while this process is small.
    let (mut off, mut on, mut off_wall, mut on_wall, mut off_peak, mut on_peak) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0, 0);
    measured(&mut setup.replay(&["--no-scoring"]))?; // warm-up (compile cache, page cache)
    for _ in 0..RUNS {
        let (w, c, p) = measured(&mut setup.replay(&["--no-scoring"]))?;
        off.push(c);
        off_wall.push(w);
        off_peak = off_peak.max(p);
        let (w, c, p) = measured(&mut setup.replay(&[]))?;
        on.push(c);
        on_wall.push(w);
        on_peak = on_peak.max(p);
    }
    let (off, on) = (median(off), median(on));

    let generated: Generated = serde_json::from_slice(&std::fs::read(tmp.path().join("labels.json"))?)?;
    let labels = &generated.labels;

    // Detection, from one scored replay's documents.
    let documents = tmp.path().join("documents.ndjson");
    measured(&mut setup.replay(&["--output", documents.to_str().unwrap()]))?;
    let mut events = 0u64;
    let mut benign = 0u64;
    let mut benign_anomalies = 0u64;
    let mut anomalies_by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut incidents: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(std::fs::File::open(&documents)?)) {
        let d: serde_json::Value = serde_json::from_str(&line?)?;
        match d["kind"].as_str() {
            Some("event") => {
                events += 1;
                let id = d["event_id"].as_str().unwrap_or("");
                if !labels.contains_key(id) {
                    benign += 1;
                    if d["anomalous"] == true {
                        benign_anomalies += 1;
                        if let Some(code) = d["reasons"][0]["code"].as_str() {
                            *anomalies_by_reason.entry(code.to_owned()).or_default() += 1;
                        }
                    }
                }
            }
            Some("incident") => {
                incidents.insert(d["incident_id"].as_str().unwrap_or("").to_owned(), d);
            }
            _ => {}
        }
    }
    let mut detected: BTreeMap<&str, Vec<&serde_json::Value>> = BTreeMap::new();
    let mut false_incidents = Vec::new();
    for incident in incidents.values() {
        let chains: BTreeSet<&str> = incident["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| labels.get(id.as_str().unwrap_or("")).map(String::as_str))
            .collect();
        if chains.is_empty() {
            false_incidents.push(incident);
        }
        for c in chains {
            detected.entry(c).or_default().push(incident);
        }
    }

    // State: what the baselines take, per identity.
    let state = tmp.path().join("state");
    measured(&mut setup.replay(&["--state-dir", state.to_str().unwrap()]))?;
    let mut store = trailwatch::state::checkpoint::CheckpointStore::open(&state)?;
    drop(store.load_existing());
    let entries = trailwatch::score::state::ScoreState::on_disk(store.database().clone(), store.path().to_owned())?;
    let (mut identities, mut identity_bytes, mut all_bytes, mut after) = (0u64, 0u64, 0u64, None::<String>);
    loop {
        let (page, next) = entries.page("", after.as_deref(), 512)?;
        for e in &page {
            all_bytes += (e.key.len() + e.value.len()) as u64;
            if e.key.starts_with("i/") {
                identities += 1;
                identity_bytes += (e.key.len() + e.value.len()) as u64;
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let file_bytes = std::fs::metadata(state.join("state.redb"))?.len();

    println!(
        "\npattern of life: {days} days, {} files, {events} events ({benign} benign), {} identities",
        generated.files, generated.identities
    );
    println!("\n| chain | detected | incident score | tactics |");
    println!("|---|---|---:|---|");
    let injected: BTreeSet<&str> = labels.values().map(String::as_str).collect();
    for chain in &injected {
        match detected.get(chain) {
            Some(found) => {
                let best = found.iter().max_by_key(|i| i["score"].as_u64()).unwrap();
                let tactics: Vec<&str> = best["tactics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|t| t.as_str())
                    .collect();
                println!("| {chain} | yes | {} | {} |", best["score"], tactics.join(", "));
            }
            None => println!("| {chain} | **no** | | |"),
        }
    }
    let per_10k = |n: u64| n as f64 * 10_000.0 / benign.max(1) as f64;
    println!(
        "\ndetection: {} of {} chains; false anomalies {benign_anomalies} ({:.2} per 10 000 benign events; first reasons {anomalies_by_reason:?}); false incidents {} ({:.2} per 10 000)",
        detected.len(),
        injected.len(),
        per_10k(benign_anomalies),
        false_incidents.len(),
        per_10k(false_incidents.len() as u64)
    );
    for f in &false_incidents {
        println!("  false incident: {}", f["summary"].as_str().unwrap_or(""));
    }
    println!(
        "cost, replay --jobs 1 (median of {RUNS}, CPU): {:.3} s without scoring, {:.3} s with: +{:.1} % ({:.2} µs per event); wall {:.3} s / {:.3} s; peak RSS {} / {} MiB",
        off,
        on,
        (on / off - 1.0) * 100.0,
        (on - off) / events as f64 * 1e6,
        median(off_wall),
        median(on_wall),
        off_peak / 1024,
        on_peak / 1024
    );
    println!(
        "state: {} entries' bytes ({identities} identities: {:.0} KiB per 1 000 identities); state.redb {:.1} MiB",
        all_bytes,
        identity_bytes as f64 / identities.max(1) as f64 * 1000.0 / 1024.0,
        file_bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}
