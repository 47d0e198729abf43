//! The report as a user meets it: a labelled scenario (tests/common/scenario.rs) replayed with
//! `--report`, the page opened in headless Chromium (Debian's package, driven by Playwright:
//! tests/browser/report.py); and `trailwatch report` reading the same state directory later.
//! The screenshot is left in target/test-artefacts/.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::scenario::{self, Scenario};
use serde_json::Value;

/// What the browser saw (see tests/browser/report.py).
fn browse(page: &Path, shot: &Path, filter: Option<&str>) -> Value {
    let mut c = Command::new("python3");
    c.arg(common::root().join("tests/browser/report.py"))
        .arg(page)
        .arg(shot);
    if let Some(f) = filter {
        c.arg(f);
    }
    let out = c.output().expect("running python3 tests/browser/report.py");
    assert!(
        out.status.success(),
        "the browser could not show the report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("report.py prints JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The `<p class="meta">Made … from ….` header line differs between two renderings.
fn without_header_line(page: &str) -> String {
    let start = page.find("<p class=\"meta\">Made ").expect("header line");
    let end = start + page[start..].find("</p>").unwrap();
    format!("{}{}", &page[..start], &page[end..])
}

use common::report;

struct Scored {
    events: Vec<Value>,
    incidents: BTreeMap<String, Value>,
}

fn replay(trail: &Path, dbs: &(PathBuf, PathBuf), extra: &[&str]) -> Scored {
    let mut args = vec![
        "--asn-database",
        dbs.0.to_str().unwrap(),
        "--country-database",
        dbs.1.to_str().unwrap(),
        "--jobs",
        "2",
    ];
    args.extend_from_slice(extra);
    args.push(trail.to_str().unwrap());
    let out = common::replay(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (events, incidents) = common::events_and_incidents(&out.stdout);
    Scored { events, incidents }
}

#[test]
fn a_scenarios_report_opens_in_chromium_with_its_map_identities_anomalies_and_incident_chains() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("trail");
    scenario::write(&trail, &Scenario::small());
    let dbs = common::networks::databases_for(dir.path(), scenario::NETWORKS);
    let page = dir.path().join("report.html");
    let scored = replay(&trail, &dbs, &["--report", page.to_str().unwrap()]);
    assert!(!scored.incidents.is_empty(), "the scenario makes incidents");

    let artefacts = common::root().join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let shot = artefacts.join("report.png");
    std::fs::remove_file(&shot).ok();
    let first = scored.incidents.values().next().unwrap();
    let filter = first["identity"].as_str().unwrap();
    let seen = browse(&page, &shot, Some(filter));
    let by_country = &seen["by_country"];

    // It loads without errors and asks nothing of the network.
    assert_eq!(seen["title"], "trailwatch report");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen:#}");
    assert_eq!(seen["requests"], serde_json::json!([]), "{seen:#}");

    // Every incident, as its last document says it: its tactics lit on the chain, one timeline
    // mark per anomaly, the events it lists in its table.
    let shown: BTreeMap<String, &Value> = seen["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap().to_owned(), i))
        .collect();
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        scored.incidents.keys().collect::<Vec<_>>()
    );
    let label = |tactic: &str| {
        let mut l = tactic.replace('-', " ");
        l[..1].make_ascii_uppercase();
        l
    };
    for (id, doc) in &scored.incidents {
        let s = shown[id];
        assert_eq!(s["visible"], true, "{id}");
        assert_eq!(s["summary"], doc["summary"], "{id}");
        let tactics: Vec<String> = strings(&doc["tactics"]).iter().map(|t| label(t)).collect();
        assert_eq!(strings(&s["tactics"]), tactics, "{id}");
        let listed: BTreeSet<String> = strings(&doc["events"]).into_iter().collect();
        let events: BTreeSet<String> = strings(&s["events"]).into_iter().collect();
        assert_eq!(events, listed, "{id}: every event of the incident is on its timeline");
        assert_eq!(s["marks"].as_u64().unwrap() as usize, listed.len(), "{id}");
    }

    // The map: countries with events shaded, the ones anomalies came from marked.
    assert!(seen["countries_drawn"].as_u64().unwrap() > 150, "{seen:#}");
    let country_of = |e: &Value| e["source_network"]["country"].as_str().map(str::to_owned);
    let with_events: BTreeSet<String> = scored
        .events
        .iter()
        .filter(|e| e["identity"].is_string())
        .filter_map(country_of)
        .collect();
    let anomalous_from: BTreeSet<String> = scored
        .events
        .iter()
        .filter(|e| e["anomalous"] == true)
        .filter_map(country_of)
        .collect();
    assert!(
        !anomalous_from.is_empty(),
        "the scenario's attacks come from known networks"
    );
    let shaded: BTreeSet<String> = strings(&seen["countries_with_events"]).into_iter().collect();
    let marked: BTreeSet<String> = strings(&seen["countries_marked"]).into_iter().collect();
    assert_eq!(shaded, with_events);
    assert_eq!(marked, anomalous_from);

    // Identities, the anomalous first; the top anomalies; the totals.
    let anomalous: Vec<&Value> = scored.events.iter().filter(|e| e["anomalous"] == true).collect();
    let identities = strings(&seen["identities"]);
    for doc in scored.incidents.values() {
        let who = doc["identity"].as_str().unwrap();
        let role = who
            .rsplit_once('/')
            .filter(|_| who.contains(":assumed-role/"))
            .map_or(who, |r| r.0);
        assert!(
            identities.iter().any(|i| i == who || i == role),
            "{who} not among {identities:?}"
        );
    }
    assert_eq!(seen["anomalies"].as_u64().unwrap() as usize, anomalous.len().min(100));
    let total = |k: &str| seen["totals"][k].as_str().unwrap().replace('\u{202f}', "");
    assert_eq!(total("anomalies"), anomalous.len().to_string());
    assert_eq!(
        total("events"),
        scored
            .events
            .iter()
            .filter(|e| e["identity"].is_string())
            .count()
            .to_string()
    );
    assert_eq!(total("incidents"), scored.incidents.len().to_string());

    // The filter leaves the rows of what was typed, and those only.
    let filtered = strings(&seen["filtered"]);
    let expected = anomalous
        .iter()
        .filter(|e| e["identity"].as_str().is_some_and(|i| i.contains(filter)))
        .count()
        .min(100);
    assert!(expected > 0);
    assert!(filtered.iter().all(|row| row.contains(filter)), "{filtered:#?}");
    assert_eq!(filtered.len(), expected);

    // A country's dot shows the anomalies from there, and those only.
    let cc = by_country["cc"].as_str().expect("a dot was clicked");
    let from_there = anomalous
        .iter()
        .filter(|e| e["source_network"]["country"] == cc)
        .count()
        .min(100);
    assert!(from_there > 0);
    let rows = strings(&by_country["rows"]);
    assert_eq!(rows.len(), from_there, "{by_country:#}");
    assert!(rows.iter().all(|r| r == cc), "{by_country:#}");

    // The screenshot is in the artefacts.
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 50_000, "a page's worth of pixels: {} bytes", png.len());
}

#[test]
fn report_reads_what_a_replays_state_directory_kept() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("trail");
    scenario::write(&trail, &Scenario::small());
    let dbs = common::networks::databases_for(dir.path(), scenario::NETWORKS);
    let state = dir.path().join("state");
    let during = dir.path().join("during.html");
    replay(
        &trail,
        &dbs,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--report",
            during.to_str().unwrap(),
        ],
    );
    let after = dir.path().join("after.html");
    let out = report(&state, &after);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("incidents)"), "{stderr}");
    let (during_page, after_page) = (
        std::fs::read_to_string(&during).unwrap(),
        std::fs::read_to_string(&after).unwrap(),
    );
    assert!(after_page.contains(&format!("from the state directory {}.", state.display())));
    assert!(during_page.contains(&format!("from a replay with the state directory {}.", state.display())));
    assert_eq!(without_header_line(&after_page), without_header_line(&during_page));

    // A state directory in use is refused (it would be read half-written), naming it.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(state.join("lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let busy = report(&state, &after);
    assert!(!busy.status.success());
    let why = String::from_utf8_lossy(&busy.stderr);
    assert!(why.contains("in use") && why.contains(state.to_str().unwrap()), "{why}");
    drop(lock);

    // A directory without a state store is named, and nothing is written.
    let empty = dir.path().join("nothing-here");
    std::fs::create_dir_all(&empty).unwrap();
    let missing = dir.path().join("missing.html");
    let out = report(&empty, &missing);
    assert!(!out.status.success());
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(why.contains("no state store") && why.contains("nothing-here"), "{why}");
    assert!(!missing.exists());
}

#[test]
fn replay_report_needs_scoring() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("r.html");
    let out = common::replay(&[
        "--no-scoring",
        "--report",
        page.to_str().unwrap(),
        common::root().join("samples").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--report needs events scored"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!page.exists());
}
