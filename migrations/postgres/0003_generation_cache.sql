-- The generation cache: the hash of a whole model request (capability, model, prompt, seed,
-- parameters) → the object it made, with the prompt's embedding for similarity look-ups
-- (pgvector, HNSW by cosine distance).
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE generation_cache (
    request_hash  TEXT             PRIMARY KEY,
    object_key    TEXT             NOT NULL,
    sha256        TEXT             NOT NULL,
    size          BIGINT           NOT NULL,
    media_type    TEXT             NOT NULL,
    model         TEXT             NOT NULL,
    seconds       DOUBLE PRECISION,
    embedding     vector(256)      NOT NULL,
    created_at_ms BIGINT           NOT NULL
);

CREATE INDEX generation_cache_embedding ON generation_cache USING hnsw (embedding vector_cosine_ops);
