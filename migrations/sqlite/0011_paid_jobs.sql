-- Paid jobs (Replicate predictions, fal queue requests), written down before they are
-- submitted and the moment the provider names them, so that a request is never paid for
-- twice: a run resumed after a crash polls the job it submitted before.
CREATE TABLE paid_jobs (
    request_hash TEXT PRIMARY KEY,
    model        TEXT NOT NULL,
    estimate_usd REAL NOT NULL,
    job          TEXT,
    ended        TEXT,
    written_at_ms INTEGER NOT NULL
);
