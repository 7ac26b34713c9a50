-- Issue 20 (hardening): API keys at rest, the login lookup tag, an atomic login throttle and the
-- check value of the deployment's secret key. Portable SQL, as 001.

-- api_key_hash: the SHA-256 of the key, which api_auth looks up. api_key_sealed: the key under
-- AES-256-GCM, which GET .../api_key opens. A row whose api_key_sealed is NULL still holds the
-- plaintext key of a release before this one: the services seal it at start-up.
ALTER TABLE accounts RENAME COLUMN api_key TO api_key_hash;
ALTER TABLE accounts ADD COLUMN api_key_sealed TEXT;

-- HMAC-SHA256 of the user's credentials under the secret key: user_auth finds the one candidate
-- user before its one slow hash (services/auth.ts). NULL for hashes stored before this release.
ALTER TABLE users ADD COLUMN login_tag TEXT;
CREATE INDEX users_login_tag ON users(login_tag);

-- Every login attempt is counted before its slow work (a success removes its own row), per key
-- (an account, or the api_auth endpoint) and source address.
DROP TABLE login_failures;
CREATE TABLE login_attempts (
  attempt TEXT NOT NULL,
  key TEXT NOT NULL,
  source TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX login_attempts_key ON login_attempts(key, at);
CREATE INDEX login_attempts_attempt ON login_attempts(attempt);

-- Facts about the deployment itself, such as which secret key its sealed values need.
CREATE TABLE deployment (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
