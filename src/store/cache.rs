//! The generation cache: a whole model request's hash → the object it made, so an unchanged
//! scene is never generated twice, with the prompt's embedding for similarity look-ups
//! (pgvector's HNSW index on Postgres, cosine over stored vectors on SQLite). Embeddings are
//! kept apart by the model that made them: a look-up only ever compares vectors of one model.

use super::{Database, StoreError};
use crate::objects::ObjectRef;
use sha2::{Digest, Sha256};

/// pgvector stores vectors up to this length.
const MAX_DIMENSIONS: usize = 16_000;
/// pgvector's HNSW index takes vectors up to this length; longer ones are searched exactly.
const MAX_INDEXED_DIMENSIONS: usize = 2_000;

/// One cached generation.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEntry {
    /// Hash of the whole request.
    pub request_hash: String,
    /// What it made.
    pub object: ObjectRef,
    /// The model that made it (`provider/model`).
    pub model: String,
    /// Length in seconds, for audio.
    pub seconds: Option<f64>,
    /// When each word falls, for speech whose model says.
    pub words: Vec<montage_models::SpokenWord>,
    /// The prompt's embedding.
    pub embedding: Vec<f32>,
    /// The model that made the embedding (`provider/model`): vectors of different models
    /// are never compared.
    pub embedding_model: String,
}

/// A cache row without its embedding.
type Row = (
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<f64>,
    String,
    Option<String>,
);
/// A cache row with its embedding in the database's form.
type RowWith<E> = (
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<f64>,
    String,
    Option<String>,
    E,
);
/// A Postgres cache row with its embedding as text and its similarity to a query.
type ScoredRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<f64>,
    String,
    Option<String>,
    String,
    f64,
);

fn entry(row: Row, embedding: Vec<f32>) -> Result<CacheEntry, StoreError> {
    let (request_hash, key, sha256, size, media_type, model, seconds, embedding_model, words) = row;
    let words = match words {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| super::damaged(format!("word times of {request_hash}: {e}")))?,
        None => Vec::new(),
    };
    Ok(CacheEntry {
        request_hash,
        object: ObjectRef {
            key,
            sha256,
            size: u64::try_from(size).map_err(|e| super::damaged(e.to_string()))?,
            media_type,
        },
        model,
        seconds,
        words,
        embedding,
        embedding_model,
    })
}

/// `text` as an SQL string literal (for the partial index's predicate, which Postgres can
/// only match against a literal).
fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn to_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn from_blob(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// pgvector's text form, `[0.1,0.2,…]`.
fn to_pgvector(vector: &[f32]) -> String {
    let parts: Vec<String> = vector.iter().map(f32::to_string).collect();
    format!("[{}]", parts.join(","))
}

fn from_pgvector(text: &str) -> Result<Vec<f32>, StoreError> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.trim()
                .parse::<f32>()
                .map_err(|e| super::damaged(format!("vector {text:?}: {e}")))
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let n = norm(a) * norm(b);
    if n > 0.0 { dot / n } else { 0.0 }
}

const COLUMNS: &str = "request_hash, object_key, sha256, size, media_type, model, seconds, embedding_model, word_times";

impl Database {
    /// The cached generation of a request, if any.
    pub async fn cache_get(&self, request_hash: &str) -> Result<Option<CacheEntry>, StoreError> {
        match self {
            Database::Sqlite(pool) => {
                let row: Option<RowWith<Vec<u8>>> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS}, embedding FROM generation_cache WHERE request_hash = $1"
                )))
                .bind(request_hash)
                .fetch_optional(pool)
                .await?;
                row.map(|(h, k, s, z, m, o, sec, em, w, e)| {
                    entry((h, k, s, z, m, o, sec, em, w), from_blob(&e))
                })
                .transpose()
            }
            Database::Postgres(pool) => {
                let row: Option<RowWith<String>> = sqlx::query_as(
                    sqlx::AssertSqlSafe(format!(
                        "SELECT {COLUMNS}, embedding::text FROM generation_cache WHERE request_hash = $1"
                    )),
                )
                .bind(request_hash)
                .fetch_optional(pool)
                .await?;
                row.map(|(h, k, s, z, m, o, sec, em, w, e)| {
                    entry((h, k, s, z, m, o, sec, em, w), from_pgvector(&e)?)
                })
                .transpose()
            }
        }
    }

    /// Remembers a generation (a second entry for the same request changes nothing).
    pub async fn cache_put(&self, entry: &CacheEntry) -> Result<(), StoreError> {
        let dimensions = entry.embedding.len();
        if dimensions == 0 || dimensions > MAX_DIMENSIONS {
            return Err(super::damaged(format!(
                "an embedding has 1 to {MAX_DIMENSIONS} dimensions, not {dimensions}"
            )));
        }
        if entry.embedding.iter().any(|v| !v.is_finite()) {
            return Err(super::damaged(
                "an embedding holds a number that is not finite".into(),
            ));
        }
        let size = i64::try_from(entry.object.size).map_err(|e| super::damaged(e.to_string()))?;
        let now = super::runs::now_ms();
        let words = match entry.words.is_empty() {
            true => None,
            false => Some(
                serde_json::to_string(&entry.words).map_err(|e| super::damaged(e.to_string()))?,
            ),
        };
        // The same statement for both; only the embedding's form and SQL type differ.
        macro_rules! insert {
            ($pool:expr, $embedding_sql:literal, $embedding:expr) => {
                sqlx::query(concat!(
                    "INSERT INTO generation_cache \
                     (request_hash, object_key, sha256, size, media_type, model, seconds, embedding, created_at_ms, embedding_model, word_times) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, ",
                    $embedding_sql,
                    ", $9, $10, $11) ON CONFLICT (request_hash) DO NOTHING"
                ))
                .bind(&entry.request_hash)
                .bind(&entry.object.key)
                .bind(&entry.object.sha256)
                .bind(size)
                .bind(&entry.object.media_type)
                .bind(&entry.model)
                .bind(entry.seconds)
                .bind($embedding)
                .bind(now)
                .bind(&entry.embedding_model)
                .bind(&words)
                .execute($pool)
                .await
                .map(|_| ())?
            };
        }
        match self {
            Database::Sqlite(pool) => insert!(pool, "$8", to_blob(&entry.embedding)),
            Database::Postgres(pool) => {
                insert!(pool, "$8::vector", to_pgvector(&entry.embedding));
                index_model(pool, &entry.embedding_model, dimensions).await?;
            }
        };
        Ok(())
    }

    /// The `limit` cached generations whose prompts are most like `embedding` (made by
    /// `embedding_model`), most similar first, with their cosine similarity. Only vectors of
    /// that model, and of that length, are compared.
    pub async fn cache_similar(
        &self,
        embedding_model: &str,
        embedding: &[f32],
        limit: usize,
    ) -> Result<Vec<(CacheEntry, f32)>, StoreError> {
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let dimensions = embedding.len();
        if dimensions == 0 || dimensions > MAX_DIMENSIONS {
            return Ok(Vec::new());
        }
        match self {
            Database::Sqlite(pool) => {
                let rows: Vec<RowWith<Vec<u8>>> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS}, embedding FROM generation_cache \
                     WHERE embedding_model = $1 AND length(embedding) = $2"
                )))
                .bind(embedding_model)
                .bind(i64::try_from(4 * dimensions).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?;
                let mut scored = rows
                    .into_iter()
                    .map(|(h, k, s, z, m, o, sec, em, w, e)| {
                        let vector = from_blob(&e);
                        let similarity = cosine(embedding, &vector);
                        entry((h, k, s, z, m, o, sec, em, w), vector)
                            .map(|entry| (entry, similarity))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                scored.sort_by(|a, b| b.1.total_cmp(&a.1));
                scored.truncate(limit);
                Ok(scored)
            }
            Database::Postgres(pool) => {
                // The model and length as literals, so that the model's partial index on
                // `embedding::vector(N)` serves the search.
                let rows: Vec<ScoredRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS}, embedding::text, 1 - (embedding::vector({dimensions}) <=> $1::vector({dimensions})) \
                     FROM generation_cache \
                     WHERE embedding_model = {model} AND vector_dims(embedding) = {dimensions} \
                     ORDER BY embedding::vector({dimensions}) <=> $1::vector({dimensions}) LIMIT $2",
                    model = sql_literal(embedding_model),
                )))
                .bind(to_pgvector(embedding))
                .bind(limit_sql)
                .fetch_all(pool)
                .await?;
                rows.into_iter()
                    .map(|(h, k, s, z, m, o, sec, em, w, e, similarity)| {
                        entry((h, k, s, z, m, o, sec, em, w), from_pgvector(&e)?)
                            .map(|entry| (entry, similarity as f32))
                    })
                    .collect()
            }
        }
    }
}

/// Gives `model`'s vectors their own HNSW index, once: a partial index over that model's rows
/// at its length, so that vectors of two models never share one.
async fn index_model(
    pool: &sqlx::PgPool,
    model: &str,
    dimensions: usize,
) -> Result<(), StoreError> {
    // The local embedder's index comes with the migration.
    let builtin = model == "local/hashing-256" && dimensions == 256;
    if builtin || dimensions > MAX_INDEXED_DIMENSIONS {
        return Ok(());
    }
    let digest = hex::encode(Sha256::digest(format!("{model}/{dimensions}").as_bytes()));
    let name = format!("generation_cache_embedding_{}", &digest[..16]);
    let known: Option<(String,)> =
        sqlx::query_as("SELECT indexname::text FROM pg_indexes WHERE indexname = $1")
            .bind(&name)
            .fetch_optional(pool)
            .await?;
    if known.is_none() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE INDEX IF NOT EXISTS {name} ON generation_cache \
             USING hnsw ((embedding::vector({dimensions})) vector_cosine_ops) \
             WHERE embedding_model = {literal} AND vector_dims(embedding) = {dimensions}",
            literal = sql_literal(model),
        )))
        .execute(pool)
        .await?;
        tracing::info!(model, dimensions, "an index for a new embedding model");
    }
    Ok(())
}
