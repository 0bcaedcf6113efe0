-- Every object a run made or used, with its lineage (run, scene, generation round).
CREATE TABLE assets (
    run        TEXT    NOT NULL REFERENCES runs (id),
    object_key TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size       BIGINT  NOT NULL,
    media_type TEXT    NOT NULL,
    scene      BIGINT,
    round      BIGINT,
    PRIMARY KEY (run, object_key, kind)
);

-- Every model call of a run and what it cost (zero for local models, still recorded).
CREATE TABLE cost_ledger (
    run        TEXT    NOT NULL REFERENCES runs (id),
    position   BIGINT  NOT NULL,
    node       TEXT    NOT NULL,
    scene      BIGINT,
    capability TEXT    NOT NULL,
    model      TEXT    NOT NULL,
    usd        DOUBLE PRECISION NOT NULL,
    cached     BOOLEAN NOT NULL,
    PRIMARY KEY (run, position)
);
