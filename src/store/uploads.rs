//! Files people uploaded, kept for their runs, and finding any stored object by its checksum.

use super::{Database, StoreError, damaged};
use crate::objects::ObjectRef;
use serde::Serialize;

/// An uploaded file, checked and stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredUpload {
    /// Its id, for runs to name it.
    pub id: String,
    /// The file's name as uploaded (data, never interpreted).
    pub name: String,
    /// `audio` or `image`.
    pub kind: String,
    /// The stored bytes.
    pub object: ObjectRef,
    /// Upload time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The user who uploaded it.
    pub owner: String,
}

type UploadTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<String>,
);

fn size_of(size: i64) -> Result<u64, StoreError> {
    u64::try_from(size).map_err(|e| damaged(e.to_string()))
}

impl Database {
    /// Keeps a checked upload.
    pub async fn record_upload(&self, upload: &StoredUpload) -> Result<(), StoreError> {
        let size = i64::try_from(upload.object.size).map_err(|e| damaged(e.to_string()))?;
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO uploads (id, name, kind, object_key, sha256, size, media_type, created_at_ms, owner) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&upload.id)
        .bind(&upload.name)
        .bind(&upload.kind)
        .bind(&upload.object.key)
        .bind(&upload.object.sha256)
        .bind(size)
        .bind(&upload.object.media_type)
        .bind(upload.created_at_ms)
        .bind(&upload.owner)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// One upload, if it exists.
    pub async fn upload(&self, id: &str) -> Result<Option<StoredUpload>, StoreError> {
        let row: Option<UploadTuple> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, kind, object_key, sha256, size, media_type, created_at_ms, owner \
             FROM uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        row.map(
            |(id, name, kind, key, sha256, size, media_type, created_at_ms, owner)| {
                Ok(StoredUpload {
                    id,
                    name,
                    kind,
                    object: ObjectRef {
                        key,
                        sha256,
                        size: size_of(size)?,
                        media_type,
                    },
                    created_at_ms,
                    owner: owner.unwrap_or_default(),
                })
            },
        )
        .transpose()
    }

    /// The object with checksum `sha256` that one of `owner`'s runs made or `owner`
    /// uploaded, if any.
    pub async fn object_by_sha(
        &self,
        owner: &str,
        sha256: &str,
    ) -> Result<Option<ObjectRef>, StoreError> {
        let row: Option<(String, i64, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT assets.object_key, assets.size, assets.media_type FROM assets \
             JOIN runs ON runs.id = assets.run WHERE assets.sha256 = $1 AND runs.owner = $2 \
             UNION ALL SELECT object_key, size, media_type FROM uploads \
             WHERE sha256 = $1 AND owner = $2 LIMIT 1",
        )
        .bind(sha256)
        .bind(owner)
        .fetch_optional(pool)
        .await)?;
        row.map(|(key, size, media_type)| {
            Ok(ObjectRef {
                key,
                sha256: sha256.to_owned(),
                size: size_of(size)?,
                media_type,
            })
        })
        .transpose()
    }
}
