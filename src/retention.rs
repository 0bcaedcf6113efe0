//! Deleting runs, and keeping the disk from only growing: runs past `storage.retention_days`,
//! objects nothing uses any more, the encoded-segment cache beyond
//! `storage.segment_cache_mb`, and temporaries a crash left behind.
//!
//! An object is in use while a run's asset rows or a person's upload name it, or the latest
//! state of a run that has not completed holds it (completed runs have recorded all of theirs).
//! A run may have just made (or reused) an object it has not checkpointed yet, so nothing
//! written or reused within `storage.object_grace_secs` is deleted; a later sweep takes it.

use crate::app::App;
use crate::objects::ObjectError;
use crate::store::{RunStatus, StoreError, runs::now_ms};
use montage_graph::{GraphError, ThreadId};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Why a deletion or a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// No run has that id.
    #[error("no run {0}")]
    NotFound(String),
    /// A version of the video is still being made.
    #[error("{0}")]
    Busy(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The object store failed.
    #[error(transparent)]
    Objects(#[from] ObjectError),
    /// A run's state could not be read.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A local folder could not be cleaned.
    #[error("cleaning {path}: {source}")]
    Folder {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What a deletion or a sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Runs deleted.
    pub runs: usize,
    /// Objects deleted.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Unused objects kept for now because they were used within the grace period.
    pub kept_recent: usize,
    /// Encoded segments dropped from the cache.
    pub segments: usize,
    /// Temporary files a crash left behind.
    pub temporaries: usize,
}

/// Deletes run `id` with every object only it used. Refused while any version of its
/// video is queued, running or waiting for an answer (a version may need its pictures).
pub async fn delete_run(app: &App, id: &str) -> Result<Swept, RetentionError> {
    let database = &app.database;
    let versions = database.run_versions(id).await?;
    if !versions.iter().any(|run| run.id == id) {
        return Err(RetentionError::NotFound(id.to_owned()));
    }
    if let Some(busy) = versions.iter().find(|run| {
        matches!(
            run.status,
            RunStatus::Queued | RunStatus::Running | RunStatus::Waiting
        )
    }) {
        return Err(RetentionError::Busy(format!(
            "version {} of this video is {}: cancel it, or wait for it to finish, then delete",
            busy.version,
            busy.status.as_str()
        )));
    }
    let mut candidates = state_objects(app, id).await?;
    let successor = versions
        .iter()
        .filter(|run| run.id != id)
        .max_by_key(|run| run.version)
        .map(|run| run.id.clone());
    let removed = database.remove_run(id, successor.as_deref()).await?;
    candidates.extend(removed.objects);
    let mut swept = Swept {
        runs: 1,
        ..Swept::default()
    };
    collect(app, Some(&candidates), &mut swept).await?;
    tracing::info!(
        run = id,
        objects = swept.objects,
        bytes = swept.bytes,
        "deleted a run"
    );
    Ok(swept)
}

/// Removes every temporary a previous process left (uploads being received, renders being
/// made): call it before any run or request can be writing one.
pub fn clean_leftovers(app: &App) -> Result<usize, RetentionError> {
    temporaries(app, Duration::ZERO)
}

fn temporaries(app: &App, older_than: Duration) -> Result<usize, RetentionError> {
    let data = &app.config.storage.data_dir;
    Ok(remove_old(&data.join("incoming"), older_than, |_| true)?
        + remove_old(&data.join("renders"), older_than, |name| {
            name.starts_with(".tmp")
        })?)
}

/// One pass of retention: runs past the window (families still being made wait), objects
/// nothing uses, the segment cache beyond its size, and temporaries older than the grace
/// period.
pub async fn sweep(app: &App) -> Result<Swept, RetentionError> {
    let mut swept = Swept::default();
    if let Some(days) = app.config.storage.retention_days {
        let before = now_ms() - i64::from(days) * 24 * 3_600_000;
        for id in app.database.runs_ended_before(before).await? {
            match delete_run(app, &id).await {
                Ok(one) => add(&mut swept, &one),
                Err(RetentionError::Busy(_) | RetentionError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
    }
    collect(app, None, &mut swept).await?;
    let grace = grace(app);
    swept.temporaries += temporaries(app, grace)?;
    swept.segments += trim_segments(
        &app.config.storage.data_dir.join("segments"),
        app.config.storage.segment_cache_mb << 20,
        grace,
    )?;
    Ok(swept)
}

fn add(total: &mut Swept, one: &Swept) {
    total.runs += one.runs;
    total.objects += one.objects;
    total.bytes += one.bytes;
    total.kept_recent += one.kept_recent;
}

fn grace(app: &App) -> Duration {
    Duration::from_secs(app.config.storage.object_grace_secs)
}

/// Deletes the objects among `candidates` (every stored object when `None`) that nothing
/// uses and nothing touched within the grace period, and the cache entries that made them.
async fn collect(
    app: &App,
    candidates: Option<&BTreeSet<String>>,
    swept: &mut Swept,
) -> Result<(), RetentionError> {
    let mut in_use = app.database.recorded_objects().await?;
    for run in app.database.runs_not_completed().await? {
        in_use.extend(state_objects(app, &run).await?);
    }
    let fresh_after = SystemTime::now() - grace(app);
    for (key, touched, size) in app.objects.list().await? {
        if candidates.is_some_and(|c| !c.contains(&key)) || in_use.contains(&key) {
            continue;
        }
        if touched > fresh_after {
            swept.kept_recent += 1;
            continue;
        }
        app.database.forget_cached(&key).await?;
        app.objects.delete(&key).await?;
        swept.objects += 1;
        swept.bytes += size;
    }
    Ok(())
}

/// The object keys run `id`'s latest state holds (none when it never started).
async fn state_objects(app: &App, id: &str) -> Result<BTreeSet<String>, RetentionError> {
    let mut keys = BTreeSet::new();
    match app.pipeline.graph().state(&ThreadId::new(id)).await {
        Ok(thread) => {
            let state = serde_json::to_value(&thread.state).unwrap_or_default();
            object_keys(&state, &mut keys);
        }
        Err(GraphError::ThreadNotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    Ok(keys)
}

/// Every object reference (`{"key", "sha256", …}`) anywhere in `value`.
fn object_keys(value: &serde_json::Value, keys: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let (Some(serde_json::Value::String(key)), Some(serde_json::Value::String(_))) =
                (map.get("key"), map.get("sha256"))
            {
                keys.insert(key.clone());
            }
            map.values().for_each(|v| object_keys(v, keys));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| object_keys(v, keys)),
        _ => {}
    }
}

/// Removes the files directly in `folder` whose names `wanted` takes and that were last
/// written longer than `older_than` ago; how many.
fn remove_old(
    folder: &Path,
    older_than: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Result<usize, RetentionError> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(RetentionError::Folder {
                path: folder.to_owned(),
                source,
            });
        }
    };
    let cutoff = SystemTime::now() - older_than;
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified <= cutoff);
        if !wanted(&name) || !old {
            continue;
        }
        let path = entry.path();
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match gone {
            Ok(()) => removed += 1,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "could not remove a temporary")
            }
        }
    }
    Ok(removed)
}

/// Drops the least recently written segments until the cache holds at most `limit` bytes,
/// sparing those written within `grace` (a render may be using them); how many.
fn trim_segments(folder: &Path, limit: u64, grace: Duration) -> Result<usize, RetentionError> {
    let mut files = Vec::new();
    let mut stack = vec![folder.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if let Ok(modified) = meta.modified() {
                files.push((modified, meta.len(), entry.path()));
            }
        }
    }
    let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
    files.sort();
    let spare_after = SystemTime::now() - grace;
    let mut removed = 0;
    for (modified, size, path) in files {
        if total <= limit || modified > spare_after {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= size;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_references_are_found_anywhere_in_a_state() {
        let state = serde_json::json!({
            "request": { "audio": { "name": "a.wav", "object": { "key": "uploads/a.wav", "sha256": "aa", "size": 1, "media_type": "audio/wav" } } },
            "assets": { "0": { "object": { "key": "images/b.png", "sha256": "bb", "size": 1, "media_type": "image/png" } } },
            "notes": [{ "key": "not an object" }],
        });
        let mut keys = BTreeSet::new();
        object_keys(&state, &mut keys);
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            ["images/b.png", "uploads/a.wav"]
        );
    }

    #[test]
    fn the_segment_cache_loses_its_oldest_files_first() {
        let dir = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        for (name, age) in [("a", 100), ("b", 200), ("c", 300)] {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0_u8; 1000]).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(old + Duration::from_secs(age)).unwrap();
        }
        std::fs::write(dir.path().join("fresh"), vec![0_u8; 1000]).unwrap();
        let removed = trim_segments(dir.path(), 2000, Duration::from_secs(60)).unwrap();
        assert_eq!(removed, 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["c", "fresh"]);
    }
}
