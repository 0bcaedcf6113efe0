-- What each person may spend on paid models in a calendar month (UTC), and what each run has
-- committed to spending: its estimate while it makes its pictures, what it spent once ended.
ALTER TABLE users ADD COLUMN monthly_budget_usd DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN committed_usd DOUBLE PRECISION NOT NULL DEFAULT 0;
