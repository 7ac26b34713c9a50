-- ipwarden schema, version 1. Portable SQL: SQLite and PostgreSQL run this file as written.
-- Timestamps are ISO 8601 text; booleans are 0/1 integers; documents are JSON text.

CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  name_key TEXT NOT NULL,
  realm TEXT NOT NULL UNIQUE,
  parent_id TEXT REFERENCES accounts(id),
  -- '/root/.../id/': an account's descendants are the rows whose path starts with its own.
  path TEXT NOT NULL UNIQUE,
  superduper INTEGER NOT NULL DEFAULT 0,
  api_key TEXT NOT NULL UNIQUE,
  access_list TEXT,
  extra TEXT NOT NULL DEFAULT '{}',
  revision TEXT NOT NULL,
  created TEXT NOT NULL,
  modified TEXT NOT NULL
);
CREATE INDEX accounts_name_key ON accounts(name_key);
CREATE INDEX accounts_parent ON accounts(parent_id);

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  username TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  priv_level TEXT NOT NULL,
  extra TEXT NOT NULL DEFAULT '{}',
  revision TEXT NOT NULL,
  created TEXT NOT NULL,
  modified TEXT NOT NULL,
  UNIQUE (account_id, username)
);

CREATE TABLE tokens (
  hash TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  owner_id TEXT,
  method TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE INDEX tokens_account ON tokens(account_id);

CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  sip_username TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  access_list TEXT,
  extra TEXT NOT NULL DEFAULT '{}',
  revision TEXT NOT NULL,
  created TEXT NOT NULL,
  modified TEXT NOT NULL,
  UNIQUE (account_id, sip_username)
);

CREATE TABLE ips (
  ip TEXT PRIMARY KEY,
  zone TEXT NOT NULL,
  host TEXT NOT NULL,
  assigned_to TEXT REFERENCES accounts(id),
  revision TEXT NOT NULL,
  created TEXT NOT NULL,
  modified TEXT NOT NULL
);
CREATE INDEX ips_assigned ON ips(assigned_to);

CREATE TABLE trunks (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  revision TEXT NOT NULL,
  created TEXT NOT NULL,
  modified TEXT NOT NULL
);
CREATE INDEX trunks_account ON trunks(account_id);

CREATE TABLE ip_acls (
  id TEXT PRIMARY KEY,
  trunk_id TEXT NOT NULL REFERENCES trunks(id) ON DELETE CASCADE,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  ip_address TEXT NOT NULL,
  family INTEGER NOT NULL,
  -- First and last address of the block as fixed-width lowercase hex, so overlap is a range test.
  range_lo TEXT NOT NULL,
  range_hi TEXT NOT NULL,
  prefix INTEGER NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  enabled INTEGER NOT NULL DEFAULT 1,
  revision TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX ip_acls_trunk ON ip_acls(trunk_id);
CREATE INDEX ip_acls_account ON ip_acls(account_id);
CREATE INDEX ip_acls_range ON ip_acls(family, range_lo);

CREATE TABLE audit (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  timestamp TEXT NOT NULL,
  account_id TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  before_doc TEXT,
  after_doc TEXT
);
CREATE INDEX audit_account ON audit(account_id, seq);

-- Every committed change that the decision index may care about, in commit order: other nodes
-- (and a server sharing its SQLite file with the CLI) catch up by reading past their last id.
CREATE TABLE changes (
  id INTEGER PRIMARY KEY,
  account_id TEXT,
  kind TEXT NOT NULL,
  at TEXT NOT NULL
);
