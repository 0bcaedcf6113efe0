-- What each person may spend on paid models in a calendar month (UTC), and what each run has
-- committed to spending: its estimate while it makes its pictures, what it spent once ended.
ALTER TABLE users ADD COLUMN monthly_budget_usd REAL;
ALTER TABLE runs ADD COLUMN committed_usd REAL NOT NULL DEFAULT 0;
-- When each spoken word of a cached narration line falls (JSON), for captions that follow
-- the voice.
ALTER TABLE generation_cache ADD COLUMN word_times TEXT;
