//! Media lives in an object store (object_store; a local folder by default), addressed by its
//! content: the key of an object is its kind and SHA-256, so the same bytes are stored once
//! and a run's state holds only references.

use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A stored object: where it is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Its key in the store.
    pub key: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The store refused or failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A local file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// The media store of one Montage installation.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    root: PathBuf,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").field("root", &self.root).finish()
    }
}

fn extension(media_type: &str) -> &'static str {
    match media_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "audio/wav" => "wav",
        "audio/mpeg" => "mp3",
        "audio/flac" => "flac",
        "audio/ogg" => "ogg",
        "audio/mp4" => "m4a",
        "video/mp4" => "mp4",
        "text/vtt" => "vtt",
        "application/x-subrip" => "srt",
        "application/json" => "json",
        _ => "bin",
    }
}

impl Objects {
    /// A store in a local folder (created when missing).
    pub fn local(root: &Path) -> Result<Objects, ObjectError> {
        std::fs::create_dir_all(root).map_err(|source| ObjectError::Io {
            context: format!("creating {}", root.display()),
            source,
        })?;
        let root = root.canonicalize().map_err(|source| ObjectError::Io {
            context: format!("resolving {}", root.display()),
            source,
        })?;
        Ok(Objects {
            store: Arc::new(LocalFileSystem::new_with_prefix(&root)?),
            root,
        })
    }

    /// Stores bytes under `<kind>/<sha256>.<ext>`; storing the same bytes again is free.
    pub async fn put(
        &self,
        kind: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<ObjectRef, ObjectError> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let key = format!("{kind}/{sha256}.{}", extension(media_type));
        let size = bytes.len() as u64;
        let path = StorePath::from(key.as_str());
        if self.store.head(&path).await.is_err() {
            self.store.put(&path, PutPayload::from(bytes)).await?;
        } else {
            // In use again: a deletion sweeping now must see it as fresh (retention keeps
            // objects touched within its grace period).
            self.touch(&key);
        }
        Ok(ObjectRef {
            key,
            sha256,
            size,
            media_type: media_type.to_owned(),
        })
    }

    /// Stores a local file (read whole; media files here are at most a few hundred MB).
    pub async fn put_file(
        &self,
        kind: &str,
        media_type: &str,
        file: &Path,
    ) -> Result<ObjectRef, ObjectError> {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|source| ObjectError::Io {
                context: format!("reading {}", file.display()),
                source,
            })?;
        self.put(kind, media_type, bytes).await
    }

    /// The bytes of an object.
    pub async fn get(&self, object: &ObjectRef) -> Result<Vec<u8>, ObjectError> {
        let result = self
            .store
            .get(&StorePath::from(object.key.as_str()))
            .await?;
        Ok(result.bytes().await?.to_vec())
    }

    /// Marks the object as just used.
    fn touch(&self, key: &str) {
        let path = self.root.join(key);
        let touched = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(std::time::SystemTime::now()));
        if let Err(error) = touched {
            tracing::warn!(%error, key, "could not mark an object as used");
        }
    }

    /// Every stored object: its key, when it was last written or reused, and its size.
    pub async fn list(&self) -> Result<Vec<(String, std::time::SystemTime, u64)>, ObjectError> {
        use futures::TryStreamExt;
        let listed: Vec<object_store::ObjectMeta> = self.store.list(None).try_collect().await?;
        Ok(listed
            .into_iter()
            .map(|meta| {
                let key = meta.location.to_string();
                (key, meta.last_modified.into(), meta.size)
            })
            .collect())
    }

    /// Deletes the object stored under `key` (gone already is fine).
    pub async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        match self.store.delete(&StorePath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// A file path holding the object, for tools that read files (the compositor, the
    /// beat analysis).
    pub fn local_path(&self, object: &ObjectRef) -> PathBuf {
        self.root.join(&object.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_are_addressed_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path()).unwrap();
        let a = objects
            .put("images", "image/png", b"pixels".to_vec())
            .await
            .unwrap();
        let b = objects
            .put("images", "image/png", b"pixels".to_vec())
            .await
            .unwrap();
        assert_eq!(a, b);
        assert!(a.key.starts_with("images/") && a.key.ends_with(".png"));
        assert_eq!(objects.get(&a).await.unwrap(), b"pixels");
        assert_eq!(std::fs::read(objects.local_path(&a)).unwrap(), b"pixels");
    }
}
