-- Runs: one row per run (a graph thread), with its status and resolved configuration.
CREATE TABLE runs (
    id            TEXT    PRIMARY KEY,
    status        TEXT    NOT NULL,
    prompt        TEXT    NOT NULL,
    config        JSONB   NOT NULL,
    parent        TEXT    REFERENCES runs (id),
    version       INTEGER NOT NULL DEFAULT 1,
    error         TEXT,
    created_at_ms BIGINT  NOT NULL,
    updated_at_ms BIGINT  NOT NULL
);

-- Every event of a run, in order: what reconnecting clients replay.
CREATE TABLE events (
    run   TEXT   NOT NULL REFERENCES runs (id),
    seq   BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind  TEXT   NOT NULL,
    body  JSONB  NOT NULL,
    PRIMARY KEY (run, seq)
);
