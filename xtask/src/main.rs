//! `cargo run -p xtask -- plugins`: builds the plugin for `wasm32-unknown-unknown` and encodes the
//! core module as a WASM component.
//!
//! A `wasm32-wasip2` build would import WASI interfaces the plugin never uses; an
//! `unknown-unknown` core module turned into a component imports only what the WIT world
//! declares, which is what the sandbox promises.
//!
//! Outputs: `plugins/trailwatch-core-<version>.wasm` (the plugin to ship) and
//! `target/fixture-plugins/sandbox-fixture.wasm` (for the host's sandbox tests; never shipped).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent dir")?
        .to_path_buf();
    match args.first().map(String::as_str) {
        Some("plugins") => build_plugins(&root),
        Some("demo") => {
            build_plugins(&root)?;
            run(&root, "cargo", &["build", "--release", "-p", "trailwatch"])?;
            let bin = root.join("target/release/trailwatch");
            run(
                &root,
                bin.to_str().context("non-UTF-8 path")?,
                &["replay", "--output", "target/sample-events.ndjson", "samples"],
            )?;
            eprintln!("events written to target/sample-events.ndjson; first one:");
            let text = std::fs::read_to_string(root.join("target/sample-events.ndjson"))?;
            println!("{}", text.lines().next().unwrap_or("(none)"));
            Ok(())
        }
        Some("test") => {
            ensure_moto()?;
            build_plugins(&root)?;
            let extra: Vec<String> = std::env::args().skip(2).collect();
            let mut args = vec!["test", "--workspace"];
            args.extend(extra.iter().map(String::as_str));
            run(&root, "cargo", &args)
        }
        _ => bail!("usage: cargo run -p xtask -- plugins | demo | test [cargo test args]"),
    }
}

/// Builds the shipped plugin and the test fixture plugins (sandbox misbehaviour; no `documents`).
fn build_plugins(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    let version = plugin_version(root)?;
    let core = cargo_build(root, &[])?;
    encode(
        &core,
        &root.join("plugins").join(format!("trailwatch-core-{version}.wasm")),
    )?;
    let fixture = cargo_build(root, &["--features", "sandbox-fixture"])?;
    encode(&fixture, &root.join("target/fixture-plugins/sandbox-fixture.wasm"))?;
    let parser_only = cargo_build(root, &["--features", "parser-only-fixture"])?;
    encode(
        &parser_only,
        &root.join("target/fixture-plugins/parser-only/trailwatch-core-parser-only.wasm"),
    )?;
    Ok(())
}

/// The moto release the end-to-end tests need: earlier 5.2 releases reject correctly signed S3
/// listings whose query holds an encoded `/` (`prefix=AWSLogs%2F`) once IAM is enforced.
const MOTO_VERSION: &str = "5.2.5";

/// What the test receivers need: the OTLP protobuf JSON mapping (the OTLP receiver decodes every
/// request with it), the Prometheus project's parser (metrics scrapes) and a JSON Schema
/// validator (the output documents).
const TEST_PACKAGES: [&str; 3] = [
    "opentelemetry-proto==1.45.2",
    "prometheus_client==0.26.0",
    "jsonschema==4.26.0",
];

/// Installs moto's server (the AWS-compatible endpoint the end-to-end tests start on
/// 127.0.0.1) and the receivers' packages when they are missing or not the pinned versions.
fn ensure_moto() -> Result<()> {
    let check = format!(
        "import moto, moto.server, flask, flask_cors, importlib.metadata as m; assert moto.__version__ == '{MOTO_VERSION}'; \
         import opentelemetry.proto.collector.logs.v1.logs_service_pb2, prometheus_client.openmetrics.parser, jsonschema; \
         assert all(m.version(p.split('==')[0]) == p.split('==')[1] for p in {TEST_PACKAGES:?})"
    );
    let present = Command::new("python3")
        .args(["-c", &check])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("moto[server]=={MOTO_VERSION}"),
            TEST_PACKAGES[0],
            TEST_PACKAGES[1],
            TEST_PACKAGES[2],
        ])
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install 'moto[server]' and the test receivers' packages failed ({status})");
    }
    Ok(())
}

/// Installs the wasm32 target for the pinned toolchain when it is missing (rustup does not
/// always add a toolchain file's targets on its own).
fn ensure_wasm_target() -> Result<()> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc")?;
    let sysroot = String::from_utf8(out.stdout)?.trim().to_owned();
    if Path::new(&sysroot).join("lib/rustlib/wasm32-unknown-unknown").exists() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .status()
        .context("running rustup")?;
    if !status.success() {
        bail!("rustup target add wasm32-unknown-unknown failed ({status})");
    }
    Ok(())
}

fn run(root: &Path, program: &str, args: &[&str]) -> Result<()> {
    let program = if program == "cargo" {
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
    } else {
        program.to_owned()
    };
    let status = Command::new(&program)
        .current_dir(root)
        .args(args)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn plugin_version(root: &Path) -> Result<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let in_package = manifest
        .split("[workspace.package]")
        .nth(1)
        .context("no [workspace.package]")?;
    let line = in_package
        .lines()
        .find(|l| l.trim_start().starts_with("version"))
        .context("no version")?;
    Ok(line.split('"').nth(1).context("version is not quoted")?.to_owned())
}

/// Builds the plugin crate for wasm32 and returns the core module's path.
fn cargo_build(root: &Path, extra: &[&str]) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "trailwatch-plugin",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .args(extra)
        .status()
        .context("running cargo build for the plugin")?;
    if !status.success() {
        bail!("cargo build of the plugin failed ({status})");
    }
    Ok(root.join("target/wasm32-unknown-unknown/release/trailwatch_plugin.wasm"))
}

/// Encodes a core module (with its embedded WIT) as a component at `out`.
fn encode(core: &Path, out: &Path) -> Result<()> {
    let module = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("reading the core module's component type")?
        .validate(true)
        .encode()
        .context("encoding the component")?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, &component).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} ({} bytes)", out.display(), component.len());
    Ok(())
}
