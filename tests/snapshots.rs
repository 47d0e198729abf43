//! The normalized, categorized events of every recorded fixture, through the real plugin.
//!
//! The snapshots (tests/snapshots/) are the specification of what each kind of CloudTrail
//! record turns into; `raw` is left out of them and checked separately against the input.

mod common;

use std::path::{Path, PathBuf};

use trailwatch::output::ndjson;
use trailwatch::runtime::bindings::types::{FileKind, ObjectMeta};
use trailwatch::runtime::cache::CompileCache;
use trailwatch::runtime::{Limits, PluginRuntime};

fn runtime() -> PluginRuntime {
    PluginRuntime::from_file(
        &common::plugin_path(),
        &CompileCache::in_dir(common::cache_dir()),
        Limits::default(),
    )
    .expect("loading the plugin")
}

fn fixtures() -> Vec<PathBuf> {
    let dir = common::root().join("tests/fixtures/logs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 14, "expected the recorded fixtures in {}", dir.display());
    files
}

/// Reads a file through the plugin; returns the kind and the output lines as JSON values.
fn read(runtime: &PluginRuntime, path: &Path) -> (Option<FileKind>, Vec<serde_json::Value>) {
    let bytes = std::fs::read(path).expect("reading fixture");
    let key = format!("fixtures/{}", path.file_name().unwrap().to_string_lossy());
    let meta = ObjectMeta {
        key: key.clone(),
        size: bytes.len() as u64,
        last_modified_ms: None,
    };
    let mut out = Vec::new();
    let report = runtime
        .read_file(Box::new(std::io::Cursor::new(bytes)), &meta, |batch| {
            for e in batch {
                ndjson::write_event(&mut out, e, &key)?;
            }
            Ok(())
        })
        .unwrap_or_else(|(_, e)| panic!("{}: {e}", path.display()));
    (report.kind, common::lines(&out))
}

#[test]
fn every_fixture_matches_its_snapshot() {
    let runtime = runtime();
    for path in fixtures() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (kind, mut events) = read(&runtime, &path);
        for e in &mut events {
            e.as_object_mut().unwrap().remove("raw");
        }
        insta::assert_json_snapshot!(
            name,
            serde_json::json!({ "kind": format!("{kind:?}"), "events": events })
        );
    }
}

#[test]
fn raw_is_the_input_record_unchanged() {
    let runtime = runtime();
    for path in fixtures() {
        let input: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let Some(records) = input.get("Records").and_then(|r| r.as_array()) else {
            continue;
        };
        let (_, events) = read(&runtime, &path);
        assert_eq!(events.len(), records.len(), "{}: one event per record", path.display());
        for (event, record) in events.iter().zip(records) {
            assert_eq!(
                event.get("raw"),
                Some(record),
                "{}: raw of record {}",
                path.display(),
                event["origin"]["index"]
            );
        }
    }
}

#[test]
fn every_event_is_categorized_never_blank() {
    let runtime = runtime();
    for path in fixtures() {
        for e in read(&runtime, &path).1 {
            let metric = e["metric"].as_str().unwrap();
            let parts: Vec<&str> = metric.split('.').collect();
            assert!(
                parts.len() == 3 && parts[0] == "aws" && !parts[1].is_empty() && !parts[2].is_empty(),
                "{metric}"
            );
            assert_eq!(parts[1], e["service"].as_str().unwrap());
            assert_eq!(parts[2], e["action"].as_str().unwrap());
        }
    }
}

#[test]
fn digest_and_insight_files_are_recognized() {
    let runtime = runtime();
    let root = common::root().join("tests/fixtures/logs");
    assert_eq!(
        read(&runtime, &root.join("digest.json")),
        (Some(FileKind::Digest), vec![])
    );
    let (kind, events) = read(&runtime, &root.join("insight.json"));
    assert_eq!(kind, Some(FileKind::Insight));
    assert!(events
        .iter()
        .all(|e| e["event_category"] == "insight" && e["action"] == "insight"));
}

#[test]
fn gzip_and_plain_json_give_the_same_events() {
    let runtime = runtime();
    let root = common::root().join("tests/fixtures/logs");
    let plain = read(&runtime, &root.join("ec2.json")).1;
    let gz = read(
        &runtime,
        &root.join("gz/210987654321_CloudTrail_us-east-1_20240301T1200Z_abcdEFGH12345678.json.gz"),
    )
    .1;
    let strip = |v: Vec<serde_json::Value>| {
        v.into_iter()
            .map(|mut e| {
                e.as_object_mut().unwrap().remove("origin");
                e
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(plain), strip(gz));
}

/// Every file under `dir` that may hold CloudTrail records (`.json`, `.json.gz`), recursively.
fn log_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.to_string_lossy();
        if path.is_dir() {
            log_files(&path, out);
        } else if name.ends_with(".json") || name.ends_with(".json.gz") {
            out.push(path);
        }
    }
}

/// A file's output lines and how its reading ended, through one of the plugin's two paths.
fn read_both_ways(runtime: &PluginRuntime, path: &Path) -> [(Vec<u8>, String); 2] {
    let bytes = std::fs::read(path).expect("reading a log file");
    let key = path.display().to_string();
    let meta = ObjectMeta {
        key: key.clone(),
        size: bytes.len() as u64,
        last_modified_ms: None,
    };
    let ended = |r: Result<_, (_, trailwatch::runtime::FileFailure)>| match r {
        Ok(_) => "complete".to_owned(),
        Err((_, e)) => e.to_string(),
    };
    let mut typed = Vec::new();
    let read = runtime.read_file(Box::new(std::io::Cursor::new(bytes.clone())), &meta, |batch| {
        for e in batch {
            ndjson::write_event(&mut typed, e, &key)?;
        }
        Ok(())
    });
    let typed_end = ended(read);
    let mut rendered = Vec::new();
    let read = runtime.read_batches(Box::new(std::io::Cursor::new(bytes)), &meta, |batch| {
        match batch {
            trailwatch::runtime::Batch::Documents(d, _) => rendered.extend_from_slice(&d.text),
            trailwatch::runtime::Batch::Typed(_) => panic!("the core plugin renders documents"),
        }
        Ok(())
    });
    [(typed, typed_end), (rendered, ended(read))]
}

/// The plugin's rendered documents are those the host renders from its typed events, byte for
/// byte, over every fixture and the shared corpus of real CloudTrail files (odd shapes, broken
/// records and files included), and a file that fails fails the same way after the same events.
#[test]
fn rendered_documents_are_the_typed_events_rendered_by_the_host() {
    let runtime = runtime();
    assert!(runtime.renders_documents());
    let mut files = Vec::new();
    log_files(&common::root().join("tests/fixtures/logs"), &mut files);
    log_files(&common::root().join("../shared/corpus"), &mut files);
    assert!(files.len() > 60, "{} files", files.len());
    let mut lines = 0;
    for path in &files {
        let [(typed, typed_end), (rendered, rendered_end)] = read_both_ways(&runtime, path);
        assert_eq!(typed_end, rendered_end, "{}", path.display());
        if typed != rendered {
            let typed = String::from_utf8_lossy(&typed);
            let rendered = String::from_utf8_lossy(&rendered);
            for (i, (a, b)) in typed.lines().zip(rendered.lines()).enumerate() {
                assert_eq!(a, b, "{} line {i}", path.display());
            }
            panic!(
                "{}: {} typed lines, {} rendered",
                path.display(),
                typed.lines().count(),
                rendered.lines().count()
            );
        }
        lines += typed.iter().filter(|&&b| b == b'\n').count();
    }
    assert!(lines > 500, "{lines} documents compared");
}
