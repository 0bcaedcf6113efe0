-- Embeddings of any length, kept apart by the model that made them: vectors of two models never
-- meet in one index or one similarity. Each model's rows get their own HNSW index over its
-- dimensions (Montage makes it the first time it stores that model's vectors; pgvector indexes
-- up to 2,000 dimensions, longer vectors are searched exactly within their model's rows).
DROP INDEX IF EXISTS generation_cache_embedding;
ALTER TABLE generation_cache ALTER COLUMN embedding TYPE vector;
ALTER TABLE generation_cache ADD COLUMN embedding_model TEXT NOT NULL DEFAULT 'local/hashing-256';
ALTER TABLE generation_cache ALTER COLUMN embedding_model DROP DEFAULT;
CREATE INDEX generation_cache_embedding_local_hashing_256 ON generation_cache
    USING hnsw ((embedding::vector(256)) vector_cosine_ops)
    WHERE embedding_model = 'local/hashing-256' AND vector_dims(embedding) = 256;
