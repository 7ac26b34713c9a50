-- Issue 23: no write's cost grows with a table.
-- The change feed names what changed: for a trunk IP ACL change, the block (`4:cb007100/24`).
ALTER TABLE changes ADD COLUMN subject TEXT;
-- The audit sequence is MAX(seq) + 1 on every audited write.
CREATE INDEX audit_seq ON audit(seq);
-- Pruning old login attempts and expired tokens deletes only what has aged out.
CREATE INDEX login_attempts_at ON login_attempts(at);
CREATE INDEX tokens_expires ON tokens(expires_at);
