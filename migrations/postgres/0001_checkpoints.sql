-- Graph checkpoints: one row per saved step of a thread (run).
CREATE TABLE checkpoints (
    thread   TEXT   NOT NULL,
    step     BIGINT NOT NULL,
    id       TEXT   NOT NULL,
    parent   TEXT,
    snapshot BYTEA,
    writes   BYTEA  NOT NULL,
    meta     JSONB  NOT NULL,
    PRIMARY KEY (thread, step),
    UNIQUE (thread, id)
);

-- Finished tasks of a step not yet checkpointed, so a crash mid-step redoes none of them.
CREATE TABLE pending_writes (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    thread TEXT  NOT NULL,
    after  TEXT  NOT NULL,
    task   TEXT  NOT NULL,
    output BYTEA NOT NULL,
    UNIQUE (thread, after, task)
);
