-- Access tokens are self-contained JWTs; this cutoff is how a node refuses the ones a user
-- has signed out of: a token whose `iat` is before it is no longer accepted. Set when the
-- account is deleted and when its password changes.
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;
