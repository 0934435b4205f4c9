-- Accounts people can live with (issue 14): a status admins set, verified emails,
-- single-use mailed tokens, an audit log of account changes, and DJ public profiles.
-- (0008 is left to another branch's migration.)

-- 'disabled': the account cannot sign in and its tokens are refused; re-enabling restores
-- access, not the sessions that were ended.
ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'disabled'));
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
-- Accounts made before verification existed keep working as verified.
UPDATE users SET email_verified_at = created_at;

-- Password-reset and email-verification tokens: 256-bit random strings mailed to the user,
-- stored as SHA-256 hashes; each works once, until it expires.
CREATE TABLE account_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (user_id),
    purpose     text NOT NULL CHECK (purpose IN ('password_reset', 'verify_email')),
    -- The address the link was mailed to: verifying it after the email changed proves nothing.
    email       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id, purpose);

-- Who changed which account, how, when and from where (GET /v1/admin/audit).
CREATE TABLE audit_log (
    audit_id    bigserial PRIMARY KEY,
    actor_id    uuid REFERENCES users (user_id),
    action      text NOT NULL,
    target_id   uuid REFERENCES users (user_id),
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip          text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC, audit_id DESC);

-- What listeners see of a DJ (GET /v1/djs/{id}).
CREATE TABLE dj_profiles (
    user_id     uuid PRIMARY KEY REFERENCES users (user_id),
    stage_name  text NOT NULL,
    bio         text NOT NULL DEFAULT '',
    genres      jsonb NOT NULL DEFAULT '[]'::jsonb,
    links       jsonb NOT NULL DEFAULT '[]'::jsonb,
    avatar_key  text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
