//! Embeds the core plugin in the binary, so that an installed `trailwatch` works without a
//! plugin directory (a newer plugin there still wins).
//!
//! The component embedded is, in order: the file named by `TRAILWATCH_EMBED_PLUGIN`; the one
//! `cargo run -p xtask -- plugins` wrote to `plugins/trailwatch-core-<version>.wasm`; or, when
//! neither exists (`cargo install --path host` on a fresh checkout), the plugin built here for
//! `wasm32-unknown-unknown` into its own target directory and encoded as a component.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("host/ is inside the workspace").to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    println!("cargo:rerun-if-env-changed=TRAILWATCH_EMBED_PLUGIN");
    let shipped = root.join("plugins").join(format!("trailwatch-core-{version}.wasm"));
    println!("cargo:rerun-if-changed={}", shipped.display());
    let component = match std::env::var_os("TRAILWATCH_EMBED_PLUGIN") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            std::fs::read(&path).unwrap_or_else(|e| panic!("TRAILWATCH_EMBED_PLUGIN={}: {e}", path.display()))
        }
        None if shipped.exists() => std::fs::read(&shipped).unwrap_or_else(|e| panic!("{}: {e}", shipped.display())),
        None => build(&root, &out_dir),
    };
    std::fs::write(out_dir.join("builtin-plugin.wasm"), component).expect("writing the embedded plugin");
}

/// Builds the plugin's core module and encodes it as a component.
fn build(root: &Path, out_dir: &Path) -> Vec<u8> {
    for watched in ["plugin/src", "plugin/Cargo.toml", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = out_dir.join("plugin-target");
    let build = || {
        Command::new(&cargo)
            .current_dir(root)
            // The outer build's flags are for the host, not for wasm32.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .args([
                "build",
                "--release",
                "-p",
                "trailwatch-plugin",
                "--lib",
                "--target",
                "wasm32-unknown-unknown",
            ])
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
    };
    let mut status = build().expect("running cargo to build the plugin");
    if !status.success() {
        // Most often the wasm target is missing: add it and try once more.
        let added = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status()
            .is_ok_and(|s| s.success());
        if added {
            status = build().expect("running cargo to build the plugin");
        }
    }
    assert!(
        status.success(),
        "building the built-in plugin failed; install the target with `rustup target add wasm32-unknown-unknown`, \
         or build it with `cargo run -p xtask -- plugins`"
    );
    let module = std::fs::read(target_dir.join("wasm32-unknown-unknown/release/trailwatch_plugin.wasm"))
        .expect("reading the plugin's core module");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("reading the core module's component type")
        .validate(true)
        .encode()
        .expect("encoding the plugin as a component")
}
