-- Embeddings kept apart by the model that made them: vectors of two models never meet in one
-- similarity.
ALTER TABLE generation_cache ADD COLUMN embedding_model TEXT NOT NULL DEFAULT 'local/hashing-256';
