//! Pattern of life as a user meets it: a labelled scenario (tests/common/scenario.rs) replayed
//! with source-network databases; its chains become incidents, its scores are pinned, and
//! baselines kept in `--state-dir` carry over from one replay to the next.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::scenario::{self, Scenario};
use serde_json::Value;

struct Replayed {
    events: Vec<Value>,
    /// The last revision of each incident, by id.
    incidents: BTreeMap<String, Value>,
    stderr: String,
}

fn replay(paths: &[&Path], dbs: &(PathBuf, PathBuf), extra: &[&str]) -> Replayed {
    let mut args = vec![
        "--asn-database",
        dbs.0.to_str().unwrap(),
        "--country-database",
        dbs.1.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let out = common::replay(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let (events, incidents) = common::events_and_incidents(&out.stdout);
    Replayed {
        events,
        incidents,
        stderr,
    }
}

fn setup(dir: &Path) -> (scenario::Written, (PathBuf, PathBuf)) {
    let written = scenario::write(&dir.join("trail"), &Scenario::small());
    let dbs = common::networks::databases_for(dir, scenario::NETWORKS);
    (written, dbs)
}

#[test]
fn a_small_scenarios_chains_become_incidents_and_its_scores_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let (written, dbs) = setup(dir.path());
    let r = replay(&[&dir.path().join("trail")], &dbs, &["--jobs", "2"]);
    assert_eq!(r.events.len(), written.events, "{}", r.stderr);

    // Every chain is an incident, and no incident is made of benign events only.
    let mut detected = BTreeSet::new();
    let mut false_incidents = Vec::new();
    for incident in r.incidents.values() {
        let chains: BTreeSet<&str> = incident["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|id| written.labels.get(id.as_str().unwrap()).copied())
            .collect();
        if chains.is_empty() {
            false_incidents.push(incident["summary"].as_str().unwrap().to_owned());
        }
        detected.extend(chains);
    }
    let injected: BTreeSet<&str> = written.labels.values().copied().collect();
    assert_eq!(detected, injected, "{:#?}", r.incidents);
    assert!(false_incidents.is_empty(), "{false_incidents:#?}");

    // Anomalies among benign events stay rare.
    let benign_anomalies: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| e["anomalous"] == true && !written.labels.contains_key(e["event_id"].as_str().unwrap_or("")))
        .collect();
    assert!(
        benign_anomalies.len() * 10_000 <= 5 * (r.events.len() - written.labels.len()),
        "{} benign anomalies: {:#?}",
        benign_anomalies.len(),
        benign_anomalies
            .iter()
            .take(5)
            .map(|e| &e["reasons"])
            .collect::<Vec<_>>()
    );

    // Pinned: each incident as last sent, and how often each reason was given.
    let incidents: Vec<Value> = r
        .incidents
        .values()
        .map(|i| {
            serde_json::json!({
                "identity": i["identity"], "status": i["status"], "revision": i["revision"],
                "severity": i["severity"], "score": i["score"], "tactics": i["tactics"],
                "reasons": i["reasons"], "anomalies": i["anomalies"], "countries": i["countries"],
                "asns": i["asns"], "summary": i["summary"],
            })
        })
        .collect();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for e in &r.events {
        for reason in e["reasons"].as_array().unwrap() {
            *reasons.entry(reason["code"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    insta::assert_json_snapshot!(
        "small_scenario",
        serde_json::json!({"incidents": incidents, "reasons": reasons})
    );
}

/// The scenario's log files in the order replay reads a directory: by the time in their
/// names, then by path.
fn in_time_order(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        (name.split('_').nth(3).unwrap().to_owned(), p.clone())
    });
    files
}

#[test]
fn baselines_kept_in_a_state_dir_score_the_next_replay_as_one_long_replay_would() {
    let dir = tempfile::tempdir().unwrap();
    let (_, dbs) = setup(dir.path());
    let files = in_time_order(&dir.path().join("trail"));
    // The last day (both regions) apart.
    let (earlier, last): (Vec<&PathBuf>, Vec<&PathBuf>) = files
        .iter()
        .partition(|p| !p.file_name().unwrap().to_string_lossy().contains("_20240312T"));
    assert!(!last.is_empty() && earlier.len() > 100);
    let earlier: Vec<&Path> = earlier.iter().map(|p| p.as_path()).collect();
    let last: Vec<&Path> = last.iter().map(|p| p.as_path()).collect();
    let state = dir.path().join("state");

    let whole = replay(&[&dir.path().join("trail")], &dbs, &["--jobs", "2"]);
    let learned = replay(&earlier, &dbs, &["--jobs", "2", "--state-dir", state.to_str().unwrap()]);
    assert!(state.join("state.redb").exists());
    let next = replay(&last, &dbs, &["--jobs", "2", "--state-dir", state.to_str().unwrap()]);
    let fresh = replay(&last, &dbs, &["--jobs", "2"]);
    assert_eq!(learned.events.len() + next.events.len(), whole.events.len());

    let scores = |events: &[Value]| -> Vec<(String, Value, Value)> {
        events
            .iter()
            .map(|e| {
                (
                    e["event_id"].as_str().unwrap_or("").to_owned(),
                    e["score"].clone(),
                    e["reasons"].clone(),
                )
            })
            .collect()
    };
    let tail = scores(&whole.events[learned.events.len()..]);
    let next_scores = scores(&next.events);
    let differing = next_scores.iter().zip(&tail).filter(|(a, b)| a != b).count();
    assert_eq!(
        differing, 0,
        "the last day scored as in one long replay: {differing} events differ"
    );
    assert!(next.events.iter().any(|e| e["anomalous"] == true));
    // Without the baselines every identity is still learning: nothing new to it is raised.
    let fresh_scores = scores(&fresh.events);
    assert!(fresh_scores != tail);
    assert!(!fresh.events.iter().any(|e| e["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["code"] == "new_asn_for_identity")));
}

/// The shipped plugin hands scoring its observations in its compact form (`observing`), and the
/// host reads back from the documents' heads only what the report needs whole; a plugin
/// without `documents` (a test fixture) has the host build every observation from typed
/// events. Both give the same output and the same report, byte for byte.
///
/// The shipped plugin's scoring instance also remembers entries and, in `replay`, holds its
/// writes (`scoring-memory`, `scoring-write-back`); the fixture has neither: every batch is
/// handed its entries and hands back every one it changed. The state each leaves is the same,
/// entry for entry, and so is a replay without a state directory.
#[test]
fn compact_observations_score_and_report_as_observations_built_by_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let (written, dbs) = setup(dir.path());
    let trail = dir.path().join("trail");
    let (asn, country) = (dbs.0.to_str().unwrap(), dbs.1.to_str().unwrap());
    let parser_only = common::root().join("target/fixture-plugins/parser-only");
    let run = |plugins: &Path, name: &str| {
        let (state, page) = (
            dir.path().join(format!("state-{name}")),
            dir.path().join(format!("{name}.html")),
        );
        let args = [
            "--no-builtin-plugin",
            "replay",
            "--no-progress",
            "--jobs",
            "1",
            "--asn-database",
            asn,
            "--country-database",
            country,
            "--state-dir",
            state.to_str().unwrap(),
            "--report",
            page.to_str().unwrap(),
            trail.to_str().unwrap(),
        ];
        let out = common::run_with_plugins(plugins, &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The page names the state directory it came from and when it was made.
        let mut page = std::fs::read_to_string(&page)
            .unwrap()
            .replace(state.to_str().unwrap(), "STATE");
        let made = page.find("Made ").unwrap() + "Made ".len();
        let made_end = made + page[made..].find(" UTC from").unwrap();
        page.replace_range(made..made_end, "TIME");
        (out.stdout, page)
    };
    let (compact, compact_page) = run(&common::plugin_dir(), "compact");
    let (typed, typed_page) = run(&parser_only, "typed");
    let entries = |name: &str| -> BTreeMap<String, Vec<u8>> {
        use redb::{ReadableDatabase, ReadableTable};
        let db = redb::Database::open(dir.path().join(format!("state-{name}/state.redb"))).unwrap();
        let tx = db.begin_read().unwrap();
        let table = tx
            .open_table(redb::TableDefinition::<&str, &[u8]>::new("scoring"))
            .unwrap();
        table
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_owned(), v.value().to_vec())
            })
            .collect()
    };
    let (held, written_through) = (entries("compact"), entries("typed"));
    assert!(held.keys().any(|k| k.starts_with("i/")) && held.keys().any(|k| k.starts_with("v/")));
    let differ: BTreeSet<&String> = held
        .keys()
        .chain(written_through.keys())
        .filter(|k| held.get(*k) != written_through.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "the states differ under {} keys, among them {:?}",
        differ.len(),
        differ.iter().take(5).collect::<Vec<_>>()
    );
    let plain = |plugins: &Path| {
        let args = [
            "--no-builtin-plugin",
            "replay",
            "--no-progress",
            "--asn-database",
            asn,
            "--country-database",
            country,
            trail.to_str().unwrap(),
        ];
        let out = common::run_with_plugins(plugins, &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    assert!(
        plain(&common::plugin_dir()) == plain(&parser_only),
        "the replays without a state differ"
    );
    let (events, incidents) = common::events_and_incidents(&compact);
    assert_eq!(events.len(), written.events);
    assert!(!incidents.is_empty() && events.iter().any(|e| e["anomalous"] == true));
    assert!(
        compact == typed,
        "the two replays differ: {} and {} bytes",
        compact.len(),
        typed.len()
    );
    let at = compact_page
        .bytes()
        .zip(typed_page.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(compact_page.len().min(typed_page.len()));
    let around = |p: &str| {
        p.get(at.saturating_sub(120)..(at + 120).min(p.len()))
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        compact_page == typed_page,
        "the two reports differ at byte {at}:\n{}\n---\n{}",
        around(&compact_page),
        around(&typed_page)
    );
}
