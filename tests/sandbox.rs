//! Every limit on the plugin's store trips, the host survives, and the next file works.
//!
//! Uses the sandbox fixture plugin: the real plugin built with the `sandbox-fixture` feature,
//! which allocates without end, loops without end or panics when a file's key asks it to.

mod common;

use std::time::Duration;

use trailwatch::runtime::bindings::types::ObjectMeta;
use trailwatch::runtime::cache::CompileCache;
use trailwatch::runtime::{FileFailure, Limits, PluginRuntime, TrapReason};

fn limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        time_per_file: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn runtime() -> PluginRuntime {
    PluginRuntime::from_file(
        &common::fixture_plugin_path(),
        &CompileCache::in_dir(common::cache_dir()),
        limits(),
    )
    .expect("loading the fixture plugin")
}

/// The real plugin (not the fixture) under `limits`.
fn real_runtime(limits: Limits) -> PluginRuntime {
    PluginRuntime::from_file(
        &common::plugin_path(),
        &CompileCache::in_dir(common::cache_dir()),
        limits,
    )
    .expect("loading the plugin")
}

fn read(runtime: &PluginRuntime, key: &str) -> Result<u64, FileFailure> {
    read_bytes(runtime, key, common::good_log(key, 3).into_bytes())
}

fn read_bytes(runtime: &PluginRuntime, key: &str, bytes: Vec<u8>) -> Result<u64, FileFailure> {
    let meta = ObjectMeta {
        key: key.into(),
        size: bytes.len() as u64,
        last_modified_ms: None,
    };
    runtime
        .read_file(Box::new(std::io::Cursor::new(bytes)), &meta, |_| Ok(()))
        .map(|r| r.events)
        .map_err(|(_, e)| e)
}

#[test]
fn instances_are_reused_only_after_a_clean_end_and_keep_every_limit() {
    let runtime = runtime();
    assert_eq!(runtime.idle_instances(), 0);
    assert_eq!(read(&runtime, "ok-1.json").unwrap(), 3);
    assert_eq!(
        runtime.idle_instances(),
        1,
        "a file read to its end leaves its instance idle"
    );
    assert_eq!(read(&runtime, "ok-2.json").unwrap(), 3);
    assert_eq!(
        runtime.idle_instances(),
        1,
        "the next file took the idle instance and gave it back"
    );
    // A bad file is the plugin's answer, not a fault: the instance stays usable.
    match read_bytes(&runtime, "bad.json", b"{\"Records\": [ {\"eventVersion\": ".to_vec()) {
        Err(FileFailure::Input(_)) => {}
        other => panic!("expected a bad-file error, got {other:?}"),
    }
    assert_eq!(runtime.idle_instances(), 1);
    assert_eq!(
        read(&runtime, "ok-3.json").unwrap(),
        3,
        "an instance reused after a bad file reads as a fresh one"
    );
    // A reused instance still has its whole time limit, and trapping retires it.
    let started = std::time::Instant::now();
    match read(&runtime, "infinite-loop.json") {
        Err(FileFailure::Trap(TrapReason::Time { .. })) => {}
        other => panic!("expected a time-limit trap, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the deadline, not something else, ended it"
    );
    assert_eq!(runtime.idle_instances(), 0, "a trapped instance is never reused");
    assert_eq!(read(&runtime, "ok-4.json").unwrap(), 3);
    assert_eq!(runtime.idle_instances(), 1);
    match read(&runtime, "memory-bomb.json") {
        Err(FileFailure::Trap(TrapReason::Memory { .. })) => {}
        other => panic!("expected a memory trap, got {other:?}"),
    }
    assert_eq!(runtime.idle_instances(), 0);
    assert_eq!(read(&runtime, "ok-5.json").unwrap(), 3);
    match read(&runtime, "panic.json") {
        Err(FileFailure::Trap(TrapReason::Panic { .. })) => {}
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(runtime.idle_instances(), 0);
    assert_eq!(read(&runtime, "ok-6.json").unwrap(), 3);
    assert_eq!(runtime.idle_instances(), 1);
}

#[test]
fn a_memory_bomb_trips_the_memory_cap_and_the_next_file_works() {
    let runtime = runtime();
    match read(&runtime, "memory-bomb.json") {
        Err(FileFailure::Trap(TrapReason::Memory { limit_bytes })) => assert_eq!(limit_bytes, 64 << 20),
        other => panic!("expected a memory trap, got {other:?}"),
    }
    assert_eq!(read(&runtime, "ok.json").unwrap(), 3);
}

#[test]
fn an_infinite_loop_trips_the_time_limit_and_the_next_file_works() {
    let runtime = runtime();
    let started = std::time::Instant::now();
    match read(&runtime, "infinite-loop.json") {
        Err(FileFailure::Trap(TrapReason::Time { limit })) => assert_eq!(limit, Duration::from_secs(2)),
        other => panic!("expected a time-limit trap, got {other:?}"),
    }
    // Not a timing assertion on speed: only that the deadline, not something else, ended it.
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(read(&runtime, "ok.json").unwrap(), 3);
}

#[test]
fn a_panic_is_reported_with_its_message_and_the_next_file_works() {
    let runtime = runtime();
    match read(&runtime, "panic.json") {
        Err(FileFailure::Trap(TrapReason::Panic { message })) => {
            assert!(
                message.contains("sandbox fixture panics on purpose for panic.json"),
                "{message}"
            )
        }
        other => panic!("expected a panic trap, got {other:?}"),
    }
    assert_eq!(read(&runtime, "ok.json").unwrap(), 3);
}

#[test]
fn replay_reports_each_trapped_file_keeps_going_and_exits_non_zero() {
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(common::fixture_plugin_path(), plugins.path().join("fixture.wasm")).unwrap();
    let logs = tempfile::tempdir().unwrap();
    for name in [
        "a-memory-bomb.json",
        "b-infinite-loop.json",
        "c-panic.json",
        "d-ok.json",
    ] {
        std::fs::write(logs.path().join(name), common::good_log(name, 2)).unwrap();
    }
    let out = common::run_with_plugins(
        plugins.path(),
        &[
            "--plugin-memory-mib",
            "64",
            "--plugin-time-limit-secs",
            "1",
            "replay",
            "--no-progress",
            logs.path().to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("a-memory-bomb.json: plugin exceeded its memory limit of 64 MiB"),
        "{stderr}"
    );
    assert!(
        stderr.contains("b-infinite-loop.json: plugin exceeded its time limit of 1s"),
        "{stderr}"
    );
    assert!(stderr.contains("c-panic.json: plugin panicked"), "{stderr}");
    assert!(stderr.contains("sandbox fixture panics on purpose"), "{stderr}");
    let events = common::lines(&out.stdout);
    assert_eq!(events.len(), 2, "only the good file's events: {stderr}");
    assert!(events
        .iter()
        .all(|e| e["origin"]["key"].as_str().unwrap().ends_with("d-ok.json")));
}

#[test]
fn a_slow_consumer_does_not_count_against_the_plugins_time_limit() {
    let runtime = real_runtime(Limits {
        time_per_file: Duration::from_secs(3),
        ..Limits::default()
    });
    let bytes = common::good_log("slow", 1600).into_bytes();
    let meta = ObjectMeta {
        key: "slow.json".into(),
        size: bytes.len() as u64,
        last_modified_ms: None,
    };
    // Each batch held by the consumer for 1.2 s: 4.8 s in all (four batches of up to 512
    // events; the consumer gets no empty batch at the end), over the 3 s budget (which is wide:
    // the plugin's own ~20 ms must not fail it on a loaded machine).
    let mut held = Duration::ZERO;
    let report = runtime
        .read_file(Box::new(std::io::Cursor::new(bytes)), &meta, |events| {
            assert!(!events.is_empty(), "an empty batch was handed over");
            std::thread::sleep(Duration::from_millis(1200));
            held += Duration::from_millis(1200);
            Ok(())
        })
        .map_err(|(_, e)| e)
        .expect("the plugin itself needs well under its budget");
    assert_eq!(report.events, 1600);
    assert!(
        held > Duration::from_secs(4),
        "the consumer held only {held:?}: not over the budget"
    );
}

/// Hands out `chunk` bytes per read, after `pause`: a slow download.
struct SlowInput {
    bytes: std::io::Cursor<Vec<u8>>,
    chunk: usize,
    pause: Duration,
}

impl std::io::Read for SlowInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(self.pause);
        let n = buf.len().min(self.chunk);
        self.bytes.read(&mut buf[..n])
    }
}

#[test]
fn time_spent_waiting_for_a_slow_input_is_not_the_plugins() {
    // 2 s of waiting for input against a 1 s budget for the plugin's own time (a few ms: the
    // budget is wide so that a loaded machine does not fail it).
    let limits = Limits {
        time_per_file: Duration::from_secs(1),
        ..limits()
    };
    let runtime = real_runtime(limits);
    let bytes = common::good_log("slow", 40).into_bytes();
    let meta = ObjectMeta {
        key: "slow.json".into(),
        size: bytes.len() as u64,
        last_modified_ms: None,
    };
    let pauses = bytes.len().div_ceil(2048) as u32;
    assert!(pauses >= 8, "{pauses} reads");
    let input = SlowInput {
        bytes: std::io::Cursor::new(bytes),
        chunk: 2048,
        pause: Duration::from_secs(2) / pauses,
    };
    let read = runtime.read_file(Box::new(input), &meta, |_| Ok(()));
    match read {
        Ok(report) => assert_eq!(report.events, 40),
        Err((_, failure)) => panic!("the slow input was charged to the plugin: {failure}"),
    }
}

/// A hashed file whose kept events are far apart: in write-only mode, one write, then ~110 MB of
/// reads the selection leaves out, then another write, read under a 48 MiB memory limit. The
/// plugin hands the text over step by step (its `hashing` interface), so the sandbox never holds
/// the run of reads: the file is read, both writes come out, and the hash is the content's.
#[test]
fn a_hashed_file_with_kept_events_far_apart_stays_within_the_memory_limit() {
    use sha2::Digest as _;
    let runtime = real_runtime(Limits {
        memory_bytes: 48 << 20,
        time_per_file: Duration::from_secs(60),
        ..Limits::default()
    });
    assert!(runtime.validates());
    let reads = common::good_log("far", 256_000);
    let reads = &reads[r#"{"Records":["#.len()..reads.len() - "]}".len()];
    let write = |i: u32| {
        common::good_log(&format!("write-{i}"), 1)
            .trim_start_matches(r#"{"Records":["#)
            .trim_end_matches("]}")
            .replace("DescribeInstances", "RunInstances")
            .replace(r#""readOnly":true"#, r#""readOnly":false"#)
    };
    let text = format!(r#"{{"Records":[{},{reads},{}]}}"#, write(1), write(2));
    assert!(text.len() > 100 << 20, "{} bytes", text.len());
    let expected = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let meta = ObjectMeta {
        key: "far-apart.json".into(),
        size: text.len() as u64,
        last_modified_ms: None,
    };
    let mut ids = Vec::new();
    let report = runtime
        .read_batches_hashed(
            Box::new(std::io::Cursor::new(text.into_bytes())),
            &meta,
            trailwatch::runtime::Keep::WriteOnly,
            false,
            |batch| {
                if let trailwatch::runtime::Batch::Documents(d, _) = batch {
                    for line in d.text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        let doc: serde_json::Value = serde_json::from_slice(line).unwrap();
                        ids.push(doc["event_id"].as_str().unwrap().to_owned());
                    }
                }
                Ok(())
            },
        )
        .map_err(|(_, e)| e)
        .expect("the file is read within the memory limit");
    assert_eq!(ids, ["write-1-0", "write-2-0"]);
    assert_eq!((report.events, report.left_out), (2, 256_000));
    assert_eq!(report.sha256.map(|s| *s), Some(Ok(expected)));
}

#[test]
fn a_trap_while_scoring_held_writes_is_reported_its_events_go_out_and_later_files_are_scored() {
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(common::fixture_plugin_path(), plugins.path().join("fixture.wasm")).unwrap();
    let logs = tempfile::tempdir().unwrap();
    // In time order (and name order): the middle file's batch makes the scoring instance panic
    // (an event id with `scoring-trap`); its key does not trouble the reader.
    for (name, tag, time) in [
        ("a-first.json", "first", "T11:55:"),
        ("b-trap-while-scoring.json", "scoring-trap", "T12:00:"),
        ("c-last.json", "last", "T12:05:"),
    ] {
        let log = common::good_log(tag, 3).replace("T12:00:", time);
        std::fs::write(logs.path().join(name), log).unwrap();
    }
    // A plain replay holds the scoring instance's writes until it ends.
    let out = common::run_with_plugins(
        plugins.path(),
        &["replay", "--no-progress", logs.path().to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the scoring instance stopped: what it learned from the last files and had not handed over is lost from the baselines"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sandbox fixture panics on purpose while scoring"),
        "{stderr}"
    );
    assert!(
        stderr.contains("scoring failed; the batch's events are sent without scores"),
        "{stderr}"
    );
    // Nothing lost: every event goes out, the trapped batch's without scores, the later file's
    // scored by a new instance.
    let events = common::lines(&out.stdout);
    assert_eq!(events.len(), 9, "{stderr}");
    for e in &events {
        let id = e["event_id"].as_str().unwrap();
        let scored = e.get("score").is_some();
        assert_eq!(scored, !id.starts_with("scoring-trap"), "{id}: {e}");
        if scored {
            assert_eq!(e["identity"], "arn:aws:iam::210987654321:user/ci", "{e}");
        }
    }
    // The summary counts the unscored batch, and the exit code says the output is incomplete.
    assert!(
        stderr.contains("pattern of life: 1 batches of events went out without scores"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}
