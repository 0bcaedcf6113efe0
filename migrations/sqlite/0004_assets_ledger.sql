-- Every object a run made or used, with its lineage (run, scene, generation round).
CREATE TABLE assets (
    run        TEXT    NOT NULL REFERENCES runs (id),
    object_key TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    media_type TEXT    NOT NULL,
    scene      INTEGER,
    round      INTEGER,
    PRIMARY KEY (run, object_key, kind)
);

-- Every model call of a run and what it cost (zero for local models, still recorded).
CREATE TABLE cost_ledger (
    run        TEXT    NOT NULL REFERENCES runs (id),
    position   INTEGER NOT NULL,
    node       TEXT    NOT NULL,
    scene      INTEGER,
    capability TEXT    NOT NULL,
    model      TEXT    NOT NULL,
    usd        REAL    NOT NULL,
    cached     INTEGER NOT NULL,
    PRIMARY KEY (run, position)
);
