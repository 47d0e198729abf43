//! Which files a `replay` reads: the files named, and the log files under the directories named.

use std::path::{Path, PathBuf};

/// Whether a file found in a directory tree looks like a CloudTrail object.
pub fn is_log_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".json.gz") || name.ends_with(".json") || name.ends_with(".gz")
}

/// A path given on the command line that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", .path.display())]
pub struct WalkError {
    /// The path.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Files to read, in a stable order: each argument in the order given; within a directory,
/// sorted by the delivery time in their CloudTrail names (`…_20240301T1205Z_…`), then by path,
/// so that identities' baselines learn in time order across regions and accounts (files
/// without such a time come first, by path). Files named directly are taken whatever their name; files found in a
/// directory only when they end in `.json`, `.json.gz` or `.gz`. Returns the files and how many
/// others were passed over.
pub fn collect(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, u64), WalkError> {
    let mut files = Vec::new();
    let mut skipped = 0;
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| WalkError {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk_dir(path, &mut found, &mut skipped)?;
            found.sort_by_cached_key(|p| {
                let time = p
                    .file_name()
                    .and_then(|n| crate::layout::file_time_ms(&n.to_string_lossy()));
                (time, p.clone())
            });
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok((files, skipped))
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>, skipped: &mut u64) -> Result<(), WalkError> {
    let entries = std::fs::read_dir(dir).map_err(|source| WalkError {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| WalkError {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|source| WalkError {
            path: path.clone(),
            source,
        })?;
        if kind.is_dir() {
            walk_dir(&path, out, skipped)?;
        } else if is_log_name(&path) {
            out.push(path);
        } else {
            *skipped += 1;
        }
    }
    Ok(())
}
