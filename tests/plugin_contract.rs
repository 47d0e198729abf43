//! The plugin imports only the contract, and the host refuses plugins it cannot speak to.

mod common;

use std::collections::BTreeSet;

use trailwatch::runtime::cache::CompileCache;

fn imports_of(path: &std::path::Path) -> BTreeSet<String> {
    let engine = trailwatch::runtime::file::engine().unwrap();
    let component = CompileCache::disabled()
        .component(&engine, &std::fs::read(path).unwrap())
        .unwrap();
    component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[test]
fn the_plugin_imports_nothing_but_the_contract() {
    let imports = imports_of(&common::plugin_path());
    let expected: BTreeSet<String> = [
        "trailwatch:plugin/host-log@0.2.0",
        "trailwatch:plugin/input@0.2.0",
        "trailwatch:plugin/types@0.2.0",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        imports, expected,
        "no WASI, no filesystem, network, clock or randomness"
    );
}

#[test]
fn the_plugin_reports_its_identity() {
    let dir = common::plugin_dir();
    let out = common::run_with_plugins(&dir, &["plugin"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.starts_with("using trailwatch-core 0.1.0 (contract 0.2.0) from "),
        "{stdout}"
    );
}

/// The shipped plugin with every `@0.2.0` in its interface names turned into `@0.3.0`: a plugin
/// for a contract this host does not speak.
fn future_plugin() -> Vec<u8> {
    let mut bytes = std::fs::read(common::plugin_path()).unwrap();
    let from = b"trailwatch:plugin/";
    let mut i = 0;
    while let Some(pos) = bytes[i..].windows(from.len()).position(|w| w == from) {
        let start = i + pos;
        let end = start + bytes[start..].iter().position(|&b| b == b'@').unwrap();
        if bytes[end + 1..end + 6] == *b"0.2.0" {
            bytes[end + 3] = b'3';
        }
        i = end;
    }
    bytes
}

#[test]
fn an_incompatible_contract_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("future.wasm"), future_plugin()).unwrap();
    let out = common::run_with_plugins(dir.path(), &["--no-builtin-plugin", "plugin"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no compatible plugin in"), "{stderr}");
    assert!(
        stderr.contains("future.wasm: implements contract 0.3.0; this host speaks 0.2.0"),
        "{stderr}"
    );
}

#[test]
fn a_compatible_plugin_is_chosen_over_incompatible_and_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-future.wasm"), future_plugin()).unwrap();
    std::fs::write(dir.path().join("b-garbage.wasm"), b"\0asm not really").unwrap();
    std::fs::copy(common::plugin_path(), dir.path().join("c-core.wasm")).unwrap();
    let out = common::run_with_plugins(dir.path(), &["plugin"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("c-core.wasm"), "{stdout}");
    assert!(
        stdout.contains("not using ") && stdout.contains("a-future.wasm: implements contract 0.3.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("b-garbage.wasm: not a valid WASM component"),
        "{stdout}"
    );
}

#[test]
fn without_the_built_in_plugin_an_empty_plugin_dir_says_how_to_build_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run_with_plugins(dir.path(), &["--no-builtin-plugin", "plugin"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("no plugin (*.wasm) in") && stderr.contains("cargo run -p xtask -- plugins"),
        "{stderr}"
    );
}

#[test]
fn the_compiled_plugin_is_cached_by_hash_and_a_broken_entry_is_replaced() {
    let cache = tempfile::tempdir().unwrap();
    let engine = trailwatch::runtime::file::engine().unwrap();
    let bytes = std::fs::read(common::plugin_path()).unwrap();
    let c = CompileCache::in_dir(cache.path());
    let entry = c.entry_path(&engine, &bytes).unwrap();
    assert!(!entry.exists());
    c.component(&engine, &bytes).unwrap();
    assert!(entry.exists(), "compiled form written to {}", entry.display());
    let written = std::fs::metadata(&entry).unwrap().modified().unwrap();
    c.component(&engine, &bytes).unwrap();
    assert_eq!(
        std::fs::metadata(&entry).unwrap().modified().unwrap(),
        written,
        "second load reads the cache"
    );
    std::fs::write(&entry, b"garbage").unwrap();
    c.component(&engine, &bytes).unwrap();
    assert!(
        std::fs::read(&entry).unwrap().len() > 1000,
        "a broken entry is recompiled and rewritten"
    );
    let mut other = bytes.clone();
    other.extend_from_slice(&[0, 0]);
    assert_ne!(
        c.entry_path(&engine, &other),
        Some(entry),
        "the key follows the plugin's bytes"
    );
}

#[test]
fn with_only_an_incompatible_plugin_in_the_directory_the_built_in_one_is_used_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("future.wasm"), future_plugin()).unwrap();
    let out = common::run_with_plugins(dir.path(), &["plugin"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.starts_with("using trailwatch-core 0.1.0 (contract 0.2.0) built into this binary"),
        "{stdout}"
    );
    assert!(stdout.contains("future.wasm: implements contract 0.3.0"), "{stdout}");
}

#[test]
fn a_plugin_in_the_directory_as_new_as_the_built_in_one_is_preferred() {
    // The fixture plugin reports the same version as the built-in one: the directory's wins.
    let dir = common::fixture_plugin_path().parent().unwrap().to_owned();
    let out = common::run_with_plugins(&dir, &["plugin"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("from ") && stdout.contains("sandbox-fixture.wasm"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not using (built into trailwatch): trailwatch-core 0.1.0, not newer than the chosen plugin"),
        "{stdout}"
    );
}

#[test]
fn an_installed_binary_works_from_any_directory_without_a_plugin_directory() {
    // As `cargo install` or a package leaves it: the binary alone, run elsewhere, with a home
    // that holds no plugins and no plugin directory in the environment.
    let install = tempfile::tempdir().unwrap();
    let bin = install.path().join("trailwatch");
    std::fs::copy(env!("CARGO_BIN_EXE_trailwatch"), &bin).unwrap();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs.json");
    std::fs::write(&logs, common::good_log("inst", 3)).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(&bin)
            .current_dir(work.path())
            .env_clear()
            .env("HOME", home.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["replay", "--no-progress", "logs.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::lines(&out.stdout).len(), 3);
    let out = run(&["plugin"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("built into this binary"), "{stdout}");
    assert!(
        stdout.contains(&format!("{}/.local/share/trailwatch/plugins", home.path().display())),
        "{stdout}"
    );
    // A plugin directory given explicitly that does not exist is an error, said once.
    let out = run(&["--plugin-dir", "nowhere", "plugin"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
}

/// A plugin with the parser and scoring only: no `documents` interface, so the host reads its
/// files as typed events and renders their documents.
fn parser_only_dir() -> std::path::PathBuf {
    let dir = common::root().join("target/fixture-plugins/parser-only");
    assert!(
        dir.join("trailwatch-core-parser-only.wasm").exists(),
        "the fixture plugins are not built: run `cargo run -p xtask -- plugins`"
    );
    dir
}

#[test]
fn a_plugin_without_the_documents_interface_is_used_and_the_host_renders_the_same_documents() {
    let dir = parser_only_dir();
    let out = common::run_with_plugins(&dir, &["--no-builtin-plugin", "plugin"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("trailwatch-core-parser-only.wasm"), "{said}");
    assert!(
        said.contains("does not export trailwatch:plugin/documents: events cross the sandbox as typed records"),
        "{said}"
    );
    assert!(
        said.contains("does not export trailwatch:plugin/trail-check: the trail's configuration is not checked"),
        "{said}"
    );
    assert!(
        said.contains(
            "does not export trailwatch:plugin/selection: write-only mode drops every read-only event in the host"
        ),
        "{said}"
    );
    // Without the interface, `check` cannot run, and says why.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "mode = \"restricted\"\n[source]\nbucket = \"b\"\n").unwrap();
    let out = common::run_with_plugins(
        &dir,
        &[
            "--no-builtin-plugin",
            "--config",
            config.path().to_str().unwrap(),
            "check",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("has no trail-check interface, so the trail cannot be checked"),
        "{stderr}"
    );
    // The core plugin says nothing is missing.
    let core = common::run_with_plugins(&common::plugin_dir(), &["--no-builtin-plugin", "plugin"]);
    assert!(!String::from_utf8_lossy(&core.stdout).contains("does not export"));

    let fixtures = common::root().join("tests/fixtures/logs");
    let fixtures = fixtures.to_str().unwrap();
    let replay = |dir: &std::path::Path| {
        let out = common::run_with_plugins(
            dir,
            &[
                "--no-builtin-plugin",
                "replay",
                "--no-progress",
                "--jobs",
                "1",
                fixtures,
            ],
        );
        (out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (typed, typed_said) = replay(&dir);
    let (rendered, rendered_said) = replay(&common::plugin_dir());
    assert!(typed.len() > 10_000, "{typed_said}");
    // The summaries agree but for the time taken.
    let counts = |said: &str| said.lines().skip(1).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(counts(&typed_said), counts(&rendered_said));
    assert!(typed_said.starts_with("replay: 17 files"), "{typed_said}");
    // Scored the same from typed events as from rendered documents.
    assert!(
        typed_said.contains("pattern of life: ") && !typed_said.contains("not scored"),
        "{typed_said}"
    );
    assert!(typed == rendered, "the documents differ between the two paths");
    assert!(common::lines(&typed).iter().any(|d| d["kind"] == "incident"));
}

#[test]
fn under_require_signature_a_plugin_file_must_be_signed_by_a_trusted_key_or_pinned() {
    use common::signing::{policy, signature_path, Key};
    let dir = tempfile::tempdir().unwrap();
    let (plugins, plugin) = common::plugin_copy(dir.path(), "release.wasm");
    let trusted = Key::new();
    let stranger = Key::new();
    let config = dir.path().join("trailwatch.toml");
    let plugin_cmd = |extra: &[&str]| {
        let mut c = common::bin();
        c.arg("--config")
            .arg(&config)
            .arg("--plugin-dir")
            .arg(&plugins)
            .arg("--cache-dir")
            .arg(common::cache_dir())
            .args(extra)
            .arg("plugin");
        common::outcome(&mut c)
    };
    std::fs::write(&config, policy(&[&trusted], &[])).unwrap();

    // Unsigned: refused, said with the file and its hash; the built-in plugin runs instead.
    let sha = trailwatch::runtime::cache::sha256_hex(&std::fs::read(&plugin).unwrap());
    let (code, _, stderr) = plugin_cmd(&["--no-builtin-plugin"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("release.wasm: refused by the trust policy")
            && stderr.contains("no signature")
            && stderr.contains(&sha),
        "{stderr}"
    );
    let (code, stdout, stderr) = plugin_cmd(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("built into this binary"), "{stdout}");
    assert!(stdout.contains("trusted: built into this binary"), "{stdout}");
    assert!(stdout.contains("release.wasm: refused by the trust policy"), "{stdout}");

    // Signed by a key not in trusted_keys: refused, naming both keys.
    stranger.sign(&plugin);
    let (code, _, stderr) = plugin_cmd(&["--no-builtin-plugin"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "signed by key {}, which is not in [plugin] trusted_keys ({})",
            stranger.id, trusted.id
        )),
        "{stderr}"
    );

    // Signed by the trusted key: used.
    trusted.sign(&plugin);
    let (code, stdout, stderr) = plugin_cmd(&["--no-builtin-plugin"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("release.wasm sha256:"), "{stdout}");
    assert!(
        stdout.contains(&format!("trusted: signed by trusted key {}", trusted.id)) && stdout.contains("test release"),
        "{stdout}"
    );

    // Changed after signing, into something that is not even a component: refused for the
    // signature, before anything tries to compile it.
    std::fs::write(&plugin, b"not a wasm component at all").unwrap();
    let (code, _, stderr) = plugin_cmd(&["--no-builtin-plugin"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("does not match the file") && !stderr.contains("not a valid WASM component"),
        "{stderr}"
    );

    // Pinned by its SHA-256, no signature needed.
    std::fs::copy(common::plugin_path(), &plugin).unwrap();
    std::fs::remove_file(signature_path(&plugin)).unwrap();
    std::fs::write(&config, policy(&[], &[&sha.to_uppercase()])).unwrap();
    let (code, stdout, stderr) = plugin_cmd(&["--no-builtin-plugin"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("trusted: its SHA-256 {sha} is pinned")),
        "{stdout}"
    );

    // Without a policy nothing is checked, and `plugin` says so.
    std::fs::write(&config, "").unwrap();
    let (code, stdout, stderr) = plugin_cmd(&["--no-builtin-plugin"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("trust policy: none"), "{stdout}");
}

/// The plugin hands over each rendered batch's observations in its compact form when asked
/// (`observing`), a scoring instance scores them, and bytes it cannot read are refused with
/// the observation named, the instance going on with the next batch.
#[test]
fn observations_in_the_compact_form_are_scored_and_unreadable_ones_refused() {
    use trailwatch::runtime::bindings::scoring::Settings;
    use trailwatch::runtime::bindings::types::ObjectMeta;
    use trailwatch::runtime::scoring::{Compact, ScoringError};
    use trailwatch::runtime::{Batch, Keep, Limits, PluginRuntime};

    let runtime =
        PluginRuntime::from_file(&common::plugin_path(), &CompileCache::disabled(), Limits::default()).unwrap();
    assert!(runtime.observes());
    let path = common::root().join("tests/fixtures/logs/iam.json");
    let bytes = std::fs::read(&path).unwrap();
    let meta = ObjectMeta {
        key: "iam.json".into(),
        size: bytes.len() as u64,
        last_modified_ms: None,
    };
    let mut batches = Vec::new();
    let input = Box::new(std::io::Cursor::new(bytes.clone()));
    runtime
        .read_batches_keeping(input, &meta, Keep::All, true, |batch| {
            match batch {
                Batch::Documents(d, Some(o)) => batches.push((d.events.len(), o)),
                _ => panic!("a batch came without its observations"),
            }
            Ok(())
        })
        .unwrap();
    assert!(!batches.is_empty());
    // Not asked: no observations.
    let input = Box::new(std::io::Cursor::new(bytes));
    runtime
        .read_batches_keeping(input, &meta, Keep::All, false, |batch| {
            assert!(matches!(batch, Batch::Documents(_, None)));
            Ok(())
        })
        .unwrap();

    let settings = Settings {
        threshold: 50,
        learning_ms: 0,
        learning_events: 0,
        incident_gap_ms: 7_200_000,
        forget_after_ms: 90 * 86_400_000,
    };
    let mut session = runtime.scoring_session().unwrap();
    let broken = Compact {
        bytes: vec![9, 1, 2],
        ends: vec![3],
        networks: Vec::new(),
        network_of: vec![0],
    };
    match runtime.score_compact(&mut session, settings, &broken, |_| Ok(Vec::new())) {
        Err(ScoringError::Observations(m)) => assert!(m.contains("observation 0: an observation is in form 9"), "{m}"),
        other => panic!("{other:?}"),
    }
    for (documents, observed) in batches {
        let compact = Compact {
            network_of: vec![0; observed.ends.len()],
            bytes: observed.bytes,
            ends: observed.ends,
            networks: Vec::new(),
        };
        let scored = runtime
            .score_compact(&mut session, settings, &compact, |_| Ok(Vec::new()))
            .unwrap();
        assert_eq!(scored.verdicts.len(), documents);
        assert!(scored.verdicts.iter().any(|v| !v.identity.is_empty()));
    }
}
