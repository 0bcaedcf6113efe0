-- The checkpoint a queued answer answers: once the thread has moved past it, the answer was
-- taken (before a crash, say) and must not be applied again.
ALTER TABLE runs ADD COLUMN answer_to TEXT;

-- Users who may read the server-wide figures of /metrics.
ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
