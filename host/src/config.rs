//! The configuration file (TOML), typed and validated once at start-up.
//!
//! Unknown keys are errors; a bad value names its key, the value and what was expected.
//! Command-line flags override the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::runtime::Limits;

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the plugin comes from and the limits it runs under.
    #[serde(default)]
    pub plugin: PluginConfig,
}

/// `[plugin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Directory holding plugin `.wasm` files; the newest compatible one is used.
    #[serde(default = "default_plugin_dir")]
    pub dir: PathBuf,
    /// Directory for compiled plugins; empty string turns the cache off.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: Option<PathBuf>,
    /// Cap on the plugin's memory per file, in MiB.
    #[serde(default = "default_memory_limit_mib")]
    pub memory_limit_mib: u64,
    /// Time the plugin may spend on one file, in seconds.
    #[serde(default = "default_time_limit_secs")]
    pub time_limit_secs: u64,
    /// A file that decompresses to more than this many MiB is refused (gzip bombs).
    #[serde(default = "default_max_decompressed_mib")]
    pub max_decompressed_mib: u64,
    /// A single record larger than this many MiB is skipped and flagged.
    #[serde(default = "default_max_record_mib")]
    pub max_record_mib: u32,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            dir: default_plugin_dir(),
            cache_dir: default_cache_dir(),
            memory_limit_mib: default_memory_limit_mib(),
            time_limit_secs: default_time_limit_secs(),
            max_decompressed_mib: default_max_decompressed_mib(),
            max_record_mib: default_max_record_mib(),
        }
    }
}

/// `$TRAILWATCH_PLUGIN_DIR`, else `./plugins`.
pub fn default_plugin_dir() -> PathBuf {
    std::env::var_os("TRAILWATCH_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("plugins"))
}

/// `$XDG_CACHE_HOME/trailwatch`, else `$HOME/.cache/trailwatch`, else no cache.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("trailwatch"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache/trailwatch"))
}

fn default_memory_limit_mib() -> u64 {
    512
}
fn default_time_limit_secs() -> u64 {
    120
}
fn default_max_decompressed_mib() -> u64 {
    4096
}
fn default_max_record_mib() -> u32 {
    16
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML or has an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value out of range.
    #[error("config key {key} = {value}: expected {expected}")]
    Value {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if config
            .plugin
            .cache_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            config.plugin.cache_dir = None;
        }
        config.plugin.validate()?;
        Ok(config)
    }
}

impl PluginConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(16..=65_536).contains(&self.memory_limit_mib) {
            return Err(ConfigError::Value {
                key: "plugin.memory_limit_mib",
                value: self.memory_limit_mib.to_string(),
                expected: "16 to 65536 (MiB)",
            });
        }
        if !(1..=86_400).contains(&self.time_limit_secs) {
            return Err(ConfigError::Value {
                key: "plugin.time_limit_secs",
                value: self.time_limit_secs.to_string(),
                expected: "1 to 86400 (seconds)",
            });
        }
        if self.max_decompressed_mib == 0 {
            return Err(ConfigError::Value {
                key: "plugin.max_decompressed_mib",
                value: "0".into(),
                expected: "at least 1 (MiB)",
            });
        }
        if !(1..=1024).contains(&self.max_record_mib) {
            return Err(ConfigError::Value {
                key: "plugin.max_record_mib",
                value: self.max_record_mib.to_string(),
                expected: "1 to 1024 (MiB)",
            });
        }
        Ok(())
    }

    /// The limits every plugin store gets.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_limit_mib << 20,
            time_per_file: Duration::from_secs(self.time_limit_secs),
            max_decompressed_bytes: self.max_decompressed_mib << 20,
            max_record_bytes: self.max_record_mib << 20,
            max_depth: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let e = Config::parse("[plugin]\nmemory_limit = 5\n", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("memory_limit"), "{e}");
    }

    #[test]
    fn out_of_range_values_name_key_value_and_expectation() {
        let e = Config::parse("[plugin]\nmemory_limit_mib = 1\n", Path::new("t.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key plugin.memory_limit_mib = 1: expected 16 to 65536 (MiB)"
        );
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = Config::parse("", Path::new("t.toml")).unwrap();
        assert_eq!(c.plugin.memory_limit_mib, 512);
        assert_eq!(c.plugin.limits().time_per_file, Duration::from_secs(120));
    }
}
