//! Finding the plugin to use: every `*.wasm` in the plugin directories, and the plugin built into
//! the binary; the newest compatible one (on a tie, the one in a directory: it was put there on
//! purpose).

use std::path::{Path, PathBuf};

use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use super::cache::{sha256_hex, CompileCache};
use super::trust::TrustPolicy;
use super::CONTRACT_VERSION;

/// The core plugin this binary was built with (see `build.rs`).
pub static BUILTIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/builtin-plugin.wasm"));

/// What stands for the built-in plugin where a path would.
pub const BUILTIN_PATH: &str = "(built into trailwatch)";

/// Where plugins are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSearch {
    /// Directories, in order.
    pub dirs: Vec<PathBuf>,
    /// The directories were asked for (flag, environment, config): one that cannot be read is
    /// an error. Default directories that do not exist are passed over.
    pub explicit: bool,
    /// Also consider the built-in plugin.
    pub builtin: bool,
    /// `[plugin] require_signature`: plugins from the directories must be pinned or signed.
    pub trust: Option<TrustPolicy>,
}

impl PluginSearch {
    /// Only `dir`, and the built-in plugin.
    pub fn dir(dir: &Path) -> Self {
        PluginSearch {
            dirs: vec![dir.to_owned()],
            explicit: true,
            builtin: true,
            trust: None,
        }
    }

    /// The directories, for messages.
    pub fn describe(&self) -> String {
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        dirs.join(", ")
    }
}

/// A plugin chosen for use.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// Where it was loaded from ([`BUILTIN_PATH`] for the built-in plugin).
    pub path: PathBuf,
    /// Whether it is the plugin built into the binary.
    pub builtin: bool,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Why the trust policy let it run (`None`: no policy, or the plugin built into the binary).
    pub trusted: Option<String>,
    /// Its name, as it reports it.
    pub name: String,
    /// Its own version.
    pub version: String,
    /// The contract version it implements.
    pub contract_version: String,
    /// The optional interfaces of the contract it does not export, each with what that means.
    pub missing: Vec<Missing>,
    /// The compiled component.
    pub component: Component,
}

/// An optional interface of the contract that a plugin does not export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The interface, as `trailwatch:plugin/<name>`.
    pub interface: String,
    /// What the host does without it.
    pub effect: &'static str,
}

/// The optional interfaces, and what the host does when a plugin lacks one.
const OPTIONAL: [(&str, &str); 9] = [
    (
        "documents",
        "events cross the sandbox as typed records and the host renders their documents (slower, same output)",
    ),
    (
        "selection",
        "write-only mode drops every read-only event in the host: Insight events, sign-ins, denied calls and secret reads included",
    ),
    (
        "trail-check",
        "the trail's configuration is not checked: `trailwatch check` fails and `run` reads the configured bucket as it is",
    ),
    (
        "integrity",
        "log files are not validated against CloudTrail's digests: `trailwatch verify` fails and `run` says integrity validation is off",
    ),
    (
        "hashing",
        "a hashed file's text between two kept events stays in the sandbox until the second (a long run of left-out records can meet the memory limit)",
    ),
    (
        "scoring",
        "events are not scored against their identities' pattern of life: no score, reasons or incidents",
    ),
    (
        "scoring-memory",
        "each scored batch hands the plugin every stored entry it reads, decoded again each time (slower, same scores)",
    ),
    (
        "scoring-write-back",
        "`replay` hands every entry a scored batch changed to the state with each file, rather than once in a while (slower, same scores)",
    ),
    (
        "observing",
        "the host reads what scoring needs back out of each rendered document and hands it over field by field (slower, same scores)",
    ),
];

/// The optional interfaces `component` does not export.
fn missing_interfaces(engine: &Engine, component: &Component) -> Vec<Missing> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    OPTIONAL
        .iter()
        .filter(|(name, _)| {
            let prefix = format!("trailwatch:plugin/{name}@");
            !exports.iter().any(|e| e.starts_with(&prefix))
        })
        .map(|(name, effect)| Missing {
            interface: format!("trailwatch:plugin/{name}"),
            effect,
        })
        .collect()
}

/// A `.wasm` file in the plugin directory that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The file.
    pub path: PathBuf,
    /// Why it cannot be used.
    pub reason: String,
    /// It can be used, but a newer one (or an equal one in a directory) was chosen: nothing
    /// wrong with it.
    pub superseded: bool,
}

/// Why no plugin could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory cannot be read.
    // `cause` rather than `source`: the message already says it, and a source would make
    // `{:#}` say it twice.
    #[error("cannot read the plugin directory {dir}: {cause}")]
    Dir { dir: PathBuf, cause: std::io::Error },
    /// There is no `.wasm` file in it.
    #[error("no plugin (*.wasm) in {dir}; build one with `cargo run -p xtask -- plugins` or set --plugin-dir")]
    Empty { dir: String },
    /// None of its plugins can be used.
    #[error("no compatible plugin in {dir} (this host speaks contract {CONTRACT_VERSION}): {}", list(.rejected))]
    NoneCompatible { dir: String, rejected: Vec<Rejected> },
}

fn list(rejected: &[Rejected]) -> String {
    rejected
        .iter()
        .map(|r| format!("{}: {}", r.path.display(), r.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `major.minor.patch` as numbers; pre-release and build suffixes ignored.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let out = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(out)
}

/// Whether a plugin implementing contract `theirs` can be used by a host speaking `ours`:
/// same major, and for 0.x also the same minor (0.x minors are breaking).
pub fn compatible(ours: &str, theirs: &str) -> bool {
    match (parse_version(ours), parse_version(theirs)) {
        (Some((0, a, _)), Some((0, b, _))) => a == b,
        (Some((a, _, _)), Some((b, _, _))) => a == b,
        _ => false,
    }
}

/// The contract version a component's exports carry, e.g. `0.1.0` of `trailwatch:plugin/parser@0.1.0`.
fn exported_contract(engine: &Engine, component: &Component) -> Option<String> {
    component
        .component_type()
        .exports(engine)
        .find_map(|(name, _)| name.strip_prefix("trailwatch:plugin/parser@").map(str::to_owned))
}

/// The `.wasm` files of `dir`, sorted; `None` when the directory does not exist and need not.
fn wasm_files(dir: &Path, explicit: bool) -> Result<Vec<PathBuf>, LoadError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(cause) => {
            return Err(LoadError::Dir {
                dir: dir.to_owned(),
                cause,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    paths.sort();
    Ok(paths)
}

/// Loads every plugin `search` finds and returns the newest compatible one, with the ones
/// passed over.
pub fn load_newest(
    engine: &Engine,
    linker: &Linker<super::store::StoreState>,
    search: &PluginSearch,
    cache: &CompileCache,
) -> Result<(LoadedPlugin, Vec<Rejected>), LoadError> {
    let mut candidates: Vec<Result<LoadedPlugin, Rejected>> = Vec::new();
    for dir in &search.dirs {
        for path in wasm_files(dir, search.explicit)? {
            candidates.push(
                load_one(engine, linker, &path, cache, search.trust.as_ref()).map_err(|reason| Rejected {
                    path,
                    reason,
                    superseded: false,
                }),
            );
        }
    }
    if candidates.is_empty() && !search.builtin {
        return Err(LoadError::Empty { dir: search.describe() });
    }
    // The built-in plugin, unless a directory holds the very same bytes (no need to load it twice).
    let builtin_sha = sha256_hex(BUILTIN);
    if search.builtin
        && !candidates
            .iter()
            .any(|c| c.as_ref().is_ok_and(|p| p.sha256 == builtin_sha))
    {
        candidates.push(
            load_bytes(engine, linker, BUILTIN, Path::new(BUILTIN_PATH), cache)
                .map(|mut p| {
                    p.builtin = true;
                    p
                })
                .map_err(|reason| Rejected {
                    path: PathBuf::from(BUILTIN_PATH),
                    reason,
                    superseded: false,
                }),
        );
    }
    let mut rejected = Vec::new();
    let mut best: Option<LoadedPlugin> = None;
    for candidate in candidates {
        match candidate {
            Ok(plugin) => {
                // Strictly newer only: on a tie the earlier one (a directory's) stays.
                let newer = match &best {
                    None => true,
                    Some(b) => parse_version(&plugin.version) > parse_version(&b.version),
                };
                let (keep, pass) = if newer {
                    (Some(plugin), best.take())
                } else {
                    (None, Some(plugin))
                };
                if let Some(p) = keep {
                    best = Some(p);
                }
                if let Some(old) = pass {
                    let chosen = best.as_ref().map_or(String::new(), |b| b.version.clone());
                    rejected.push(Rejected {
                        reason: format!(
                            "{} {}, not newer than the chosen plugin ({chosen})",
                            old.name, old.version
                        ),
                        path: old.path,
                        superseded: true,
                    });
                }
            }
            Err(r) => rejected.push(r),
        }
    }
    match best {
        Some(b) => Ok((b, rejected)),
        None => Err(LoadError::NoneCompatible {
            dir: search.describe(),
            rejected,
        }),
    }
}

/// Loads and checks one plugin file; the error says why it cannot be used. Under a trust
/// policy the bytes read are checked before they are compiled, and those same bytes are used.
pub fn load_one(
    engine: &Engine,
    linker: &Linker<super::store::StoreState>,
    path: &Path,
    cache: &CompileCache,
    trust: Option<&TrustPolicy>,
) -> Result<LoadedPlugin, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let trusted = match trust {
        Some(policy) => Some(policy.check(path, &bytes, &sha256_hex(&bytes))?),
        None => None,
    };
    let mut plugin = load_bytes(engine, linker, &bytes, path, cache)?;
    plugin.trusted = trusted;
    Ok(plugin)
}

/// Loads and checks a plugin's bytes; `path` says where they came from.
pub fn load_bytes(
    engine: &Engine,
    linker: &Linker<super::store::StoreState>,
    bytes: &[u8],
    path: &Path,
    cache: &CompileCache,
) -> Result<LoadedPlugin, String> {
    let component = cache
        .component(engine, bytes)
        .map_err(|e| format!("not a valid WASM component: {e:#}"))?;
    let contract = exported_contract(engine, &component)
        .ok_or_else(|| "does not export trailwatch:plugin/parser (not a trailwatch plugin)".to_owned())?;
    if !compatible(CONTRACT_VERSION, &contract) {
        return Err(format!(
            "implements contract {contract}; this host speaks {CONTRACT_VERSION}"
        ));
    }
    let info =
        super::store::plugin_info(engine, linker, &component).map_err(|e| format!("cannot be instantiated: {e:#}"))?;
    if info.contract_version != contract {
        return Err(format!(
            "reports contract {} but exports {contract}",
            info.contract_version
        ));
    }
    if parse_version(&info.version).is_none() {
        return Err(format!("reports version {:?}, which is not semver", info.version));
    }
    Ok(LoadedPlugin {
        path: path.to_owned(),
        builtin: false,
        sha256: sha256_hex(bytes),
        trusted: None,
        name: info.name,
        version: info.version,
        contract_version: info.contract_version,
        missing: missing_interfaces(engine, &component),
        component,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_x_minors_are_breaking_patches_are_not() {
        assert!(compatible("0.1.0", "0.1.7"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(compatible("1.0.0", "1.4.0"));
        assert!(!compatible("1.0.0", "2.0.0"));
        assert!(!compatible("0.1.0", "garbage"));
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("0.10.0") > parse_version("0.9.9"));
        assert_eq!(parse_version("1.2.3-rc.1"), Some((1, 2, 3)));
        assert_eq!(parse_version("1.2"), None);
    }
}
