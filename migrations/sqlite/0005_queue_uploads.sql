-- What a queued run starts from, the answer a waiting run was given (until a worker takes it
-- up), the order runs were submitted in, and the first run of a family of revisions.
ALTER TABLE runs ADD COLUMN input TEXT;
ALTER TABLE runs ADD COLUMN answer TEXT;
ALTER TABLE runs ADD COLUMN submitted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN root TEXT;
CREATE INDEX runs_by_status ON runs (status, submitted);

-- Files people uploaded, checked by decoding them, for runs to use.
CREATE TABLE uploads (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    object_key    TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    media_type    TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX uploads_by_sha ON uploads (sha256);
CREATE INDEX assets_by_sha ON assets (sha256);
