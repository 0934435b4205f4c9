-- Foundation: users, refresh tokens, analytics, monetization plans and subscriptions.

CREATE TABLE users (
    user_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL,
    name           text NOT NULL,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('dj', 'listener', 'admin')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
-- Emails are unique case-insensitively among live accounts; a deleted account frees its email.
CREATE UNIQUE INDEX users_email_live_key ON users (lower(email)) WHERE deleted_at IS NULL;
CREATE INDEX users_created_at_idx ON users (created_at) WHERE deleted_at IS NULL;

-- Opaque refresh tokens, stored as SHA-256 hashes. A login starts a family; each rotation
-- adds a member and revokes its parent. Presenting a revoked member revokes the family.
CREATE TABLE refresh_tokens (
    token_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (user_id),
    family_id    uuid NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- Daily counters (backlog US-5.1): one row per resource, day and metric, upserted with +=.
CREATE TABLE analytics (
    analytics_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_type  varchar(10) NOT NULL,
    resource_id    uuid NOT NULL,
    date           date NOT NULL,
    metric         varchar(20) NOT NULL,
    value          bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT analytics_resource_date_metric_key UNIQUE (resource_type, resource_id, date, metric)
);

CREATE TABLE monetization_plans (
    plan_id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id           uuid NOT NULL REFERENCES users (user_id),
    name               text NOT NULL,
    price_cents        integer NOT NULL CHECK (price_cents >= 0),
    currency           char(3) NOT NULL,
    billing_interval   text NOT NULL CHECK (billing_interval IN ('monthly', 'yearly')),
    features           jsonb NOT NULL DEFAULT '[]'::jsonb,
    stripe_product_id  text NOT NULL,
    stripe_price_id    text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE INDEX monetization_plans_owner_idx ON monetization_plans (owner_id);

CREATE TABLE subscriptions (
    subscription_id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                 uuid NOT NULL REFERENCES users (user_id),
    plan_id                 uuid NOT NULL REFERENCES monetization_plans (plan_id),
    status                  text NOT NULL CHECK (status IN ('active', 'canceled', 'expired')),
    stripe_subscription_id  text NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    expires_at              timestamptz NOT NULL,
    canceled_at             timestamptz
);
CREATE INDEX subscriptions_user_active_idx ON subscriptions (user_id, expires_at) WHERE status = 'active';
-- One live subscription per user and plan.
CREATE UNIQUE INDEX subscriptions_user_plan_active_key ON subscriptions (user_id, plan_id) WHERE status = 'active';
