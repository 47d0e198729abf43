//! Taking a new plugin without a restart: `run` looks at the plugin directory between polls, and
//! when it changed, loads the newest compatible plugin there, as at start-up. A plugin that does
//! not load (half copied, incompatible, broken) changes nothing: the one in use stays, and the log
//! says why. No file is ever read half by one plugin and half by another: the switch happens
//! between polls. Under a trust policy, signatures (`.minisig`) count as part of the directory:
//! a signature copied in after its plugin is a change, and the plugin is then taken.

use std::path::PathBuf;
use std::time::SystemTime;

use super::cache::CompileCache;
use super::loader::{LoadedPlugin, PluginSearch, Rejected};
use super::PluginRuntime;

/// What a directory listing shows of one plugin file.
type Seen = (PathBuf, u64, Option<SystemTime>);

/// Watches the plugin directories.
pub struct PluginWatch {
    search: PluginSearch,
    cache: CompileCache,
    seen: Vec<Seen>,
    /// A changed listing waiting to hold still for one more look.
    changing: Option<Vec<Seen>>,
}

/// Why `plugin` may run, for logs: what the trust policy accepted it for, or that it is built
/// in, or that there is no policy.
pub fn trust_label(search: &PluginSearch, plugin: &LoadedPlugin) -> String {
    match (&search.trust, &plugin.trusted) {
        (_, Some(why)) => why.clone(),
        (Some(_), None) => "built into this binary".to_owned(),
        (None, None) => "no trust policy".to_owned(),
    }
}

/// Logs the plugins passed over: a warning for each refused one (broken, incompatible,
/// untrusted), an info line for a usable one a newer plugin superseded.
pub fn log_rejected(rejected: &[Rejected]) {
    for r in rejected {
        if r.superseded {
            tracing::info!(path = %r.path.display(), reason = %r.reason, "plugin not used");
        } else {
            tracing::warn!(path = %r.path.display(), reason = %r.reason, "plugin refused");
        }
    }
}

/// The `.wasm` files (and their `.minisig` signatures) of the directories with their sizes and
/// modification times, sorted.
fn listing(search: &PluginSearch) -> Vec<Seen> {
    let mut seen: Vec<Seen> = search
        .dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm" || x == "minisig"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| (e.path(), meta.len(), meta.modified().ok()))
        })
        .collect();
    seen.sort();
    seen
}

impl PluginWatch {
    /// Watches what `search` looks at; its plugins as they are now are the ones considered.
    pub fn new(search: &PluginSearch, cache: CompileCache) -> Self {
        PluginWatch {
            search: search.clone(),
            cache,
            seen: listing(search),
            changing: None,
        }
    }

    /// When the directory changed, then held still until this look, and its newest compatible
    /// plugin is not the one `current` runs, a runtime for that plugin; `None` otherwise. (A
    /// file being copied in changes between two looks: it is not loaded half written, and an
    /// older plugin is not chosen meanwhile because the newer one does not load yet.)
    pub fn check(&mut self, current: &PluginRuntime) -> Option<PluginRuntime> {
        let now = listing(&self.search);
        if now == self.seen {
            self.changing = None;
            return None;
        }
        if self.changing.as_ref() != Some(&now) {
            self.changing = Some(now);
            return None;
        }
        self.changing = None;
        self.seen = now;
        let old = current.plugin();
        match current.reload(&self.search, &self.cache) {
            // The file the plugin in use came from was replaced by one that is refused (unsigned,
            // broken, incompatible): the plugin in use stays, rather than whatever ranks next.
            Ok((Some(_), rejected)) if !old.builtin && rejected.iter().any(|r| !r.superseded && r.path == old.path) => {
                log_rejected(&rejected);
                tracing::warn!(
                    path = %old.path.display(),
                    keeping = %format!("{} {} sha256:{}", old.name, old.version, old.sha256),
                    "the plugin file in use was replaced by one that is refused; keeping the plugin in use"
                );
                None
            }
            Ok((Some(new), rejected)) => {
                log_rejected(&rejected);
                let p = new.plugin();
                tracing::info!(
                    from = %format!("{} {} sha256:{}", old.name, old.version, old.sha256),
                    to = %format!("{} {} sha256:{}", p.name, p.version, p.sha256),
                    path = %p.path.display(),
                    trusted = %trust_label(&self.search, p),
                    "plugin upgraded without a restart; the next file is read with it"
                );
                Some(new)
            }
            Ok((None, rejected)) => {
                // The one in use stays; a plugin that was refused says why (an unsigned or
                // wrongly signed upgrade must not go unnoticed).
                if rejected.iter().any(|r| !r.superseded) {
                    log_rejected(&rejected);
                    tracing::warn!(
                        keeping = %format!("{} {} sha256:{}", old.name, old.version, old.sha256),
                        "the plugin directory changed; keeping the plugin in use"
                    );
                }
                None
            }
            Err(e) => {
                tracing::warn!(
                    dirs = %self.search.describe(),
                    error = %format!("{e:#}"),
                    keeping = %format!("{} {} sha256:{}", old.name, old.version, old.sha256),
                    "the plugin directory changed but holds no usable new plugin; keeping the one in use"
                );
                None
            }
        }
    }
}
