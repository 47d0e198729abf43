//! The files under `examples/` and the Dockerfile: trailwatch's own configurations load as
//! trailwatch loads them, and each receiver's configuration parses and matches the sink that
//! feeds it (address, path, framing). Vector, Fluent Bit and the OpenTelemetry Collector are not
//! installable on the machines these tests run on, so they are checked, not run; the systemd
//! unit goes through `systemd-analyze verify` where systemd is present.

mod common;

use std::path::PathBuf;
use std::process::Command;

use trailwatch::config::{Config, SinkConfig};

fn example(name: &str) -> PathBuf {
    common::root().join("examples").join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(example(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A YAML file as JSON, parsed by PyYAML (moto's dependency, installed with it).
fn yaml(name: &str) -> serde_json::Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(example(name))
        .output()
        .unwrap();
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `examples/trailwatch.toml`, loaded (its HTTP sink's token comes from the environment).
fn main_example() -> Config {
    std::env::set_var("TRAILWATCH_HTTP_TOKEN", "example-token");
    Config::parse(&text("trailwatch.toml"), &example("trailwatch.toml")).unwrap()
}

fn sinks(config: &Config) -> (Option<String>, Option<String>) {
    let mut http = None;
    let mut otlp = None;
    for s in &config.sinks {
        match s {
            SinkConfig::Http(h) => http = h.url.clone(),
            SinkConfig::Otlp(h) => otlp = h.endpoint.clone(),
            _ => {}
        }
    }
    (http, otlp)
}

#[test]
fn trailwatchs_example_configurations_load_as_trailwatch_loads_them() {
    std::env::set_var("TRAILWATCH_HTTP_TOKEN", "example-token");
    for name in ["trailwatch.toml", "trailwatch-restricted.toml"] {
        Config::parse(&text(name), &example(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        // And the binary takes it (the `plugin` command loads and checks the whole file).
        let out = common::bin()
            .env("TRAILWATCH_HTTP_TOKEN", "example-token")
            .arg("--config")
            .arg(example(name))
            .arg("--plugin-dir")
            .arg(common::plugin_dir())
            .arg("--cache-dir")
            .arg(common::cache_dir())
            .arg("plugin")
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn the_vector_example_listens_where_the_http_sink_sends_with_newline_delimited_json() {
    let (http, _) = sinks(&main_example());
    let url = http.expect("the example has an http sink");
    let vector: toml::Value = toml::from_str(&text("vector.toml")).unwrap();
    let source = &vector["sources"]["trailwatch"];
    assert_eq!(source["type"].as_str(), Some("http_server"));
    assert_eq!(source["decoding"]["codec"].as_str(), Some("json"));
    assert_eq!(source["framing"]["method"].as_str(), Some("newline_delimited"));
    let address = source["address"].as_str().unwrap();
    let path = source["path"].as_str().unwrap_or("/");
    assert_eq!(
        url,
        format!("http://{address}{path}"),
        "the sink posts where Vector listens"
    );
    assert!(vector["sinks"]["console"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i.as_str() == Some("trailwatch")));
}

#[test]
fn the_fluent_bit_examples_take_json_over_http_as_the_sink_can_send_it() {
    let y = yaml("fluent-bit.yaml");
    let input = &y["pipeline"]["inputs"][0];
    assert_eq!(input["name"], "http");
    assert_eq!(input["port"], 8888);
    assert_eq!(y["pipeline"]["outputs"][0]["name"], "stdout");
    // The classic format says the same.
    let conf = text("fluent-bit.conf");
    let mut section = String::new();
    let mut input_keys = std::collections::BTreeMap::new();
    for line in conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if line.starts_with('[') {
            assert!(line.ends_with(']'), "{line}");
            section = line.to_owned();
            continue;
        }
        let (k, v) = line
            .split_once(char::is_whitespace)
            .unwrap_or_else(|| panic!("not a key and value: {line}"));
        if section == "[INPUT]" {
            input_keys.insert(k.to_owned(), v.trim().to_owned());
        }
    }
    assert_eq!(input_keys["Name"], "http");
    assert_eq!(input_keys["Port"], "8888");
    // Fluent Bit's http input only takes `application/json`: the README's sink for it says so.
    let readme = text("README.md");
    assert!(
        readme.contains("content_type = \"application/json\""),
        "examples/README.md shows the sink for Fluent Bit"
    );
    let c = Config::parse(
        "[[sinks]]\ntype = \"http\"\nurl = \"http://127.0.0.1:8888/trailwatch\"\ncontent_type = \"application/json\"\n",
        &example("(fluent-bit sink)"),
    )
    .unwrap();
    assert_eq!(c.sinks.len(), 1);
}

#[test]
fn the_collector_example_receives_otlp_http_where_the_otlp_sink_sends() {
    let y = yaml("otelcol.yaml");
    let endpoint = y["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
        .as_str()
        .unwrap();
    let logs = &y["service"]["pipelines"]["logs"];
    assert_eq!(logs["receivers"][0], "otlp");
    assert!(logs["exporters"].as_array().unwrap().iter().any(|e| e == "debug"));
    if let (_, Some(sink)) = sinks(&main_example()) {
        assert_eq!(sink, format!("http://{endpoint}"));
    } else {
        assert!(text("trailwatch.toml").contains(&format!("endpoint = \"http://{endpoint}\"")));
    }
}

#[test]
fn the_systemd_unit_runs_the_installed_binary_with_its_state_and_a_sandbox() {
    let unit = text("trailwatch.service");
    for wanted in [
        "ExecStart=/usr/local/bin/trailwatch --config /etc/trailwatch/trailwatch.toml run",
        "StateDirectory=trailwatch",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "MemoryDenyWriteExecute=no",
    ] {
        assert!(unit.contains(wanted), "the unit has {wanted}");
    }
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        return;
    };
    if !probe.status.success() {
        return;
    }
    // Verified with the binary under test in place of /usr/local/bin/trailwatch.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("trailwatch.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/trailwatch", env!("CARGO_BIN_EXE_trailwatch")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("System has not been booted with systemd"),
        "{stderr}"
    );
}

#[test]
fn the_dockerfile_builds_the_plugin_and_the_host_and_runs_trailwatch() {
    let docker = std::fs::read_to_string(common::root().join("Dockerfile")).unwrap();
    for wanted in [
        "-p xtask -- plugins",
        "--release -p trailwatch",
        "ENTRYPOINT [\"trailwatch\"]",
        "TRAILWATCH_PLUGIN_DIR",
        "EXPOSE 9464",
    ] {
        assert!(docker.contains(wanted), "the Dockerfile has {wanted}");
    }
    // Every instruction is a Dockerfile instruction (a typo would fail `docker build`).
    let known = [
        "FROM",
        "RUN",
        "COPY",
        "ADD",
        "ENV",
        "ARG",
        "WORKDIR",
        "USER",
        "EXPOSE",
        "VOLUME",
        "ENTRYPOINT",
        "CMD",
        "LABEL",
        "HEALTHCHECK",
        "STOPSIGNAL",
        "SHELL",
    ];
    let mut continued = false;
    for line in docker.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !continued {
            let word = t.split_whitespace().next().unwrap();
            assert!(known.contains(&word), "not an instruction: {line}");
        }
        continued = t.ends_with('\\');
    }
}
