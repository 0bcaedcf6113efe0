-- Runs: one row per run (a graph thread), with its status and resolved configuration.
CREATE TABLE runs (
    id            TEXT    PRIMARY KEY,
    status        TEXT    NOT NULL,
    prompt        TEXT    NOT NULL,
    config        TEXT    NOT NULL,
    parent        TEXT    REFERENCES runs (id),
    version       INTEGER NOT NULL DEFAULT 1,
    error         TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

-- Every event of a run, in order: what reconnecting clients replay.
CREATE TABLE events (
    run   TEXT    NOT NULL REFERENCES runs (id),
    seq   INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    kind  TEXT    NOT NULL,
    body  TEXT    NOT NULL,
    PRIMARY KEY (run, seq)
);
