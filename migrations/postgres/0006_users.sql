-- People and the API tokens they authenticate with (only a SHA-256 of each token is kept).
CREATE TABLE users (
    id            TEXT   PRIMARY KEY,
    name          TEXT   NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE tokens (
    hash          TEXT   PRIMARY KEY,
    user_id       TEXT   NOT NULL REFERENCES users (id),
    created_at_ms BIGINT NOT NULL
);

-- Whose runs and uploads they are.
ALTER TABLE runs ADD COLUMN owner TEXT REFERENCES users (id);
ALTER TABLE uploads ADD COLUMN owner TEXT REFERENCES users (id);
CREATE INDEX runs_by_owner ON runs (owner, created_at_ms);
CREATE INDEX uploads_by_owner ON uploads (owner);
