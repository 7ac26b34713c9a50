-- Failed logins, per (account key, source address), so that every node counts the same attempts
-- (api.md §2 brute force). Keys hold no secret: an API key appears only as its SHA-256.

CREATE TABLE login_failures (
  key TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures(key, at);
