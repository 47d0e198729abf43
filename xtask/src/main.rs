//! `cargo run -p xtask -- plugins`: builds the plugin for `wasm32-unknown-unknown` and encodes the
//! core module as a WASM component.
//!
//! A `wasm32-wasip2` build would import WASI interfaces the plugin never uses; an
//! `unknown-unknown` core module turned into a component imports only what the WIT world
//! declares, which is what the sandbox promises.
//!
//! Outputs: `plugins/trailwatch-core-<version>.wasm` (the plugin to ship) and
//! `target/fixture-plugins/sandbox-fixture.wasm` (for the host's sandbox tests; never shipped).
//!
//! `plugins --sign KEY` also writes `plugins/trailwatch-core-<version>.wasm.minisig`, a minisign
//! signature by the secret key file KEY (its password from `$TRAILWATCH_SIGN_PASSWORD`, else asked
//! for), for hosts that run with `[plugin] require_signature = true`. `keygen DIR` makes a key
//! pair (`DIR/trailwatch.key`, `DIR/trailwatch.pub`) in minisign's format.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod networks;
mod world;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent dir")?
        .to_path_buf();
    match args.first().map(String::as_str) {
        Some("plugins") => {
            let sign = match args.get(1).map(String::as_str) {
                Some("--sign") => Some(PathBuf::from(args.get(2).context("--sign needs a secret key file")?)),
                Some(other) => bail!("unknown argument {other:?}; usage: plugins [--sign KEY]"),
                None => None,
            };
            let shipped = build_plugins(&root)?;
            if let Some(key) = sign {
                let password = std::env::var("TRAILWATCH_SIGN_PASSWORD").ok();
                let sig = sign_file(&key, password, &shipped)?;
                eprintln!("wrote {}", sig.display());
            }
            Ok(())
        }
        Some("keygen") => {
            let dir = PathBuf::from(args.get(1).context("usage: keygen DIR [--unencrypted]")?);
            let unencrypted = args.get(2).is_some_and(|a| a == "--unencrypted");
            let password = std::env::var("TRAILWATCH_SIGN_PASSWORD").ok();
            let (public, id) = keygen(&dir, (!unencrypted).then_some(password))?;
            eprintln!(
                "wrote {} and {}; key ID {id}. In trailwatch.toml:\n[plugin]\nrequire_signature = true\ntrusted_keys = [\"{public}\"]",
                dir.join("trailwatch.key").display(),
                dir.join("trailwatch.pub").display()
            );
            Ok(())
        }
        Some("demo") => {
            build_plugins(&root)?;
            run(&root, "cargo", &["build", "--release", "-p", "trailwatch"])?;
            let bin = root.join("target/release/trailwatch");
            let mut args = vec!["replay", "--output", "target/sample-events.ndjson"];
            // Where activity comes from: free databases, downloaded once. Without a network
            // the demo goes on without them.
            let databases = match networks::install(&root.join("target/networks")) {
                Ok((asn, country)) => Some((asn.display().to_string(), country.display().to_string())),
                Err(e) => {
                    eprintln!("no source-network databases ({e:#}); replaying without them");
                    None
                }
            };
            if let Some((asn, country)) = &databases {
                args.extend(["--asn-database", asn, "--country-database", country]);
            }
            args.push("samples");
            run(&root, bin.to_str().context("non-UTF-8 path")?, &args)?;
            eprintln!("events written to target/sample-events.ndjson; first one:");
            let text = std::fs::read_to_string(root.join("target/sample-events.ndjson"))?;
            println!("{}", text.lines().next().unwrap_or("(none)"));
            Ok(())
        }
        Some("world-map") => world::write(&root.join("target/world-map"), &root.join("host/src/report/world.tsv")),
        Some("test") => {
            ensure_moto()?;
            ensure_chromium()?;
            build_plugins(&root)?;
            // The fuzz targets (a workspace of their own) must still compile: type-checked
            // without libFuzzer, into the one target directory. Their corpora run in the tests.
            run(
                &root,
                "cargo",
                &[
                    "check",
                    "--locked",
                    "--manifest-path",
                    "fuzz/Cargo.toml",
                    "--no-default-features",
                    "--bins",
                    "--target-dir",
                    "target",
                ],
            )?;
            let extra: Vec<String> = std::env::args().skip(2).collect();
            let mut args = vec!["test", "--workspace"];
            args.extend(extra.iter().map(String::as_str));
            run(&root, "cargo", &args)
        }
        _ => bail!("usage: cargo run -p xtask -- plugins [--sign KEY] | keygen DIR [--unencrypted] | demo | world-map | test [cargo test args]"),
    }
}

/// Builds the shipped plugin and the test fixture plugins (sandbox misbehaviour; no
/// `documents`); returns the shipped plugin's path.
fn build_plugins(root: &Path) -> Result<PathBuf> {
    ensure_wasm_target()?;
    let version = plugin_version(root)?;
    let core = cargo_build(root, &[])?;
    let shipped = root.join("plugins").join(format!("trailwatch-core-{version}.wasm"));
    encode(&core, &shipped)?;
    // A signature of an older build would no longer match: never leave one beside new bytes.
    let stale = signature_path(&shipped);
    if stale.exists() {
        std::fs::remove_file(&stale).with_context(|| format!("removing {}", stale.display()))?;
    }
    let fixture = cargo_build(root, &["--features", "sandbox-fixture"])?;
    encode(&fixture, &root.join("target/fixture-plugins/sandbox-fixture.wasm"))?;
    let parser_only = cargo_build(root, &["--features", "parser-only-fixture"])?;
    encode(
        &parser_only,
        &root.join("target/fixture-plugins/parser-only/trailwatch-core-parser-only.wasm"),
    )?;
    Ok(shipped)
}

/// Where minisign (and trailwatch) look for a file's signature: its name with `.minisig` added.
fn signature_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

/// Signs `file` with the minisign secret key file `key` (decrypted with `password`, asked for
/// when it is encrypted and none is given); writes and returns `<file>.minisig`. The trusted
/// comment names the file and its SHA-256.
fn sign_file(key: &Path, password: Option<String>, file: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(key).with_context(|| format!("reading the secret key {}", key.display()))?;
    let sk_box = || {
        minisign::SecretKeyBox::from_string(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a minisign secret key: {e}", key.display()))
    };
    // An unencrypted key (`keygen --unencrypted`, `minisign -G -W`) needs no password.
    let sk = match sk_box()?.into_unencrypted_secret_key() {
        Ok(sk) => sk,
        Err(_) => sk_box()?
            .into_secret_key(password)
            .map_err(|e| anyhow::anyhow!("cannot use the secret key {}: {e}", key.display()))?,
    };
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("plugin");
    let sha = sha256_hex(&bytes);
    let comment = format!("file:{name} sha256:{sha}");
    let signature = minisign::sign(None, &sk, std::io::Cursor::new(&bytes), Some(&comment), None)
        .map_err(|e| anyhow::anyhow!("signing {}: {e}", file.display()))?;
    let out = signature_path(file);
    std::fs::write(&out, signature.into_string()).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// Makes a minisign key pair in `dir`: `trailwatch.key` (encrypted with `password` when given
/// as `Some`; `Some(None)` asks for one) and `trailwatch.pub`. Returns the public key's base64
/// line and its key ID.
fn keygen(dir: &Path, password: Option<Option<String>>) -> Result<(String, String)> {
    let minisign::KeyPair { pk, sk } = match password {
        Some(p) => minisign::KeyPair::generate_encrypted_keypair(p),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| anyhow::anyhow!("generating a key pair: {e}"))?;
    std::fs::create_dir_all(dir)?;
    let key_path = dir.join("trailwatch.key");
    if key_path.exists() {
        bail!("{} exists; not overwriting a secret key", key_path.display());
    }
    let sk_text = sk
        .to_box(None)
        .map_err(|e| anyhow::anyhow!("encoding the secret key: {e}"))?
        .into_string();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .with_context(|| format!("creating {}", key_path.display()))?;
        f.write_all(sk_text.as_bytes())?;
    }
    let pk_box = pk
        .to_box()
        .map_err(|e| anyhow::anyhow!("encoding the public key: {e}"))?;
    let pk_text = pk_box.into_string();
    std::fs::write(dir.join("trailwatch.pub"), &pk_text)?;
    let id = pk_text
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("?")
        .to_owned();
    Ok((pk.to_base64(), id))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The moto release the end-to-end tests need: earlier 5.2 releases reject correctly signed S3
/// listings whose query holds an encoded `/` (`prefix=AWSLogs%2F`) once IAM is enforced.
const MOTO_VERSION: &str = "5.2.5";

/// What the test receivers need: the OTLP protobuf JSON mapping (the OTLP receiver decodes every
/// request with it), the Prometheus project's parser (metrics scrapes), a JSON Schema
/// validator (the output documents) and Playwright (drives Debian's Chromium for the report;
/// its own browser downloads are not used).
const TEST_PACKAGES: [&str; 4] = [
    "opentelemetry-proto==1.45.2",
    "prometheus_client==0.26.0",
    "jsonschema==4.26.0",
    "playwright==1.58.0",
];

/// Installs moto's server (the AWS-compatible endpoint the end-to-end tests start on
/// 127.0.0.1) and the receivers' packages when they are missing or not the pinned versions.
fn ensure_moto() -> Result<()> {
    let check = format!(
        "import moto, moto.server, flask, flask_cors, importlib.metadata as m; assert moto.__version__ == '{MOTO_VERSION}'; \
         import opentelemetry.proto.collector.logs.v1.logs_service_pb2, prometheus_client.openmetrics.parser, jsonschema, playwright.sync_api; \
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
            TEST_PACKAGES[3],
        ])
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install 'moto[server]' and the test receivers' packages failed ({status})");
    }
    Ok(())
}

/// Installs Debian's Chromium (the report's browser test opens the page in it) when missing.
fn ensure_chromium() -> Result<()> {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let apt = |args: &[&str]| -> Result<bool> {
        let mut c = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        c.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        Ok(c.status().context("running apt-get")?.success())
    };
    let install = ["install", "-y", "-q", "--no-install-recommends", "chromium"];
    let installed = apt(&install)? || (apt(&["update", "-q"])? && apt(&install)?);
    if !installed {
        bail!("apt-get install chromium failed: the report's browser test needs /usr/bin/chromium");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_then_sign_makes_a_signature_minisign_verifies_and_a_changed_file_fails() {
        let dir = tempfile_dir();
        let (public, id) = keygen(&dir, Some(Some("pw".into()))).unwrap();
        assert_eq!(id.len(), 16, "{id}");
        let file = dir.join("p.wasm");
        std::fs::write(&file, b"plugin bytes").unwrap();
        let sig = sign_file(&dir.join("trailwatch.key"), Some("pw".into()), &file).unwrap();
        assert_eq!(sig, dir.join("p.wasm.minisig"));
        let pk = minisign::PublicKey::from_base64(&public).unwrap();
        let sig_box = minisign::SignatureBox::from_file(&sig).unwrap();
        assert!(sig_box.trusted_comment().unwrap().contains("file:p.wasm sha256:"));
        minisign::verify(&pk, &sig_box, std::io::Cursor::new(b"plugin bytes"), true, false, false).unwrap();
        assert!(minisign::verify(&pk, &sig_box, std::io::Cursor::new(b"plugin bytez"), true, false, false).is_err());
        let wrong = sign_file(&dir.join("trailwatch.key"), Some("not it".into()), &file).unwrap_err();
        assert!(format!("{wrong:#}").contains("cannot use the secret key"), "{wrong:#}");
        assert!(keygen(&dir, None).unwrap_err().to_string().contains("not overwriting"));
        // An unencrypted key signs without a password.
        let plain = dir.join("plain");
        keygen(&plain, None).unwrap();
        sign_file(&plain.join("trailwatch.key"), None, &file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-keygen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
