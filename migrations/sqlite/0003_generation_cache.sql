-- The generation cache: the hash of a whole model request (capability, model, prompt, seed,
-- parameters) → the object it made, with the prompt's embedding for similarity look-ups
-- (little-endian f32s; searched by cosine in Montage).
CREATE TABLE generation_cache (
    request_hash TEXT    PRIMARY KEY,
    object_key   TEXT    NOT NULL,
    sha256       TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    media_type   TEXT    NOT NULL,
    model        TEXT    NOT NULL,
    seconds      REAL,
    embedding    BLOB    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
