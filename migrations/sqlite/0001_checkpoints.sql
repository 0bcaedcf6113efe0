-- Graph checkpoints: one row per saved step of a thread (run).
CREATE TABLE checkpoints (
    thread   TEXT    NOT NULL,
    step     INTEGER NOT NULL,
    id       TEXT    NOT NULL,
    parent   TEXT,
    snapshot BLOB,
    writes   BLOB    NOT NULL,
    meta     TEXT    NOT NULL,
    PRIMARY KEY (thread, step),
    UNIQUE (thread, id)
);

-- Finished tasks of a step not yet checkpointed, so a crash mid-step redoes none of them.
CREATE TABLE pending_writes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    thread TEXT NOT NULL,
    after  TEXT NOT NULL,
    task   TEXT NOT NULL,
    output BLOB NOT NULL,
    UNIQUE (thread, after, task)
);
