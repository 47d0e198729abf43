//! Finding the plugin to use: every `*.wasm` in the plugin directory, the newest compatible one.

use std::path::{Path, PathBuf};

use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use super::cache::{sha256_hex, CompileCache};
use super::CONTRACT_VERSION;

/// A plugin chosen for use.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its name, as it reports it.
    pub name: String,
    /// Its own version.
    pub version: String,
    /// The contract version it implements.
    pub contract_version: String,
    /// The compiled component.
    pub component: Component,
}

/// A `.wasm` file in the plugin directory that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The file.
    pub path: PathBuf,
    /// Why it cannot be used.
    pub reason: String,
}

/// Why no plugin could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory cannot be read.
    #[error("cannot read the plugin directory {dir}: {source}")]
    Dir { dir: PathBuf, source: std::io::Error },
    /// There is no `.wasm` file in it.
    #[error("no plugin (*.wasm) in {dir}; build one with `cargo run -p xtask -- plugins` or set --plugin-dir")]
    Empty { dir: PathBuf },
    /// None of its plugins can be used.
    #[error("no compatible plugin in {dir} (this host speaks contract {CONTRACT_VERSION}): {}", list(.rejected))]
    NoneCompatible { dir: PathBuf, rejected: Vec<Rejected> },
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

/// Loads every plugin in `dir` and returns the newest compatible one, with the ones passed over.
pub fn load_newest(
    engine: &Engine,
    linker: &Linker<super::file::StoreState>,
    dir: &Path,
    cache: &CompileCache,
) -> Result<(LoadedPlugin, Vec<Rejected>), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Dir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(LoadError::Empty { dir: dir.to_owned() });
    }
    let mut rejected = Vec::new();
    let mut best: Option<LoadedPlugin> = None;
    for path in paths {
        match load_one(engine, linker, &path, cache) {
            Ok(plugin) => {
                let newer = match &best {
                    None => true,
                    Some(b) => parse_version(&plugin.version) > parse_version(&b.version),
                };
                if newer {
                    if let Some(old) = best.replace(plugin) {
                        rejected.push(Rejected {
                            reason: format!("older than the chosen plugin ({})", old.version),
                            path: old.path,
                        });
                    }
                } else {
                    rejected.push(Rejected {
                        reason: format!("older than the chosen plugin ({})", plugin.version),
                        path,
                    });
                }
            }
            Err(reason) => rejected.push(Rejected { path, reason }),
        }
    }
    match best {
        Some(b) => Ok((b, rejected)),
        None => Err(LoadError::NoneCompatible {
            dir: dir.to_owned(),
            rejected,
        }),
    }
}

/// Loads and checks one plugin file; the error says why it cannot be used.
pub fn load_one(
    engine: &Engine,
    linker: &Linker<super::file::StoreState>,
    path: &Path,
    cache: &CompileCache,
) -> Result<LoadedPlugin, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let component = cache
        .component(engine, &bytes)
        .map_err(|e| format!("not a valid WASM component: {e:#}"))?;
    let contract = exported_contract(engine, &component)
        .ok_or_else(|| "does not export trailwatch:plugin/parser (not a trailwatch plugin)".to_owned())?;
    if !compatible(CONTRACT_VERSION, &contract) {
        return Err(format!(
            "implements contract {contract}; this host speaks {CONTRACT_VERSION}"
        ));
    }
    let info =
        super::file::plugin_info(engine, linker, &component).map_err(|e| format!("cannot be instantiated: {e:#}"))?;
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
        sha256: sha256_hex(&bytes),
        name: info.name,
        version: info.version,
        contract_version: info.contract_version,
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
