-- Podcasts, their episodes (backlog US-4.1 – US-4.6) and custom domains (US-4.7, US-4.8).

CREATE TABLE podcasts (
    podcast_id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id              uuid NOT NULL REFERENCES users (user_id),
    title                 text NOT NULL,
    description           text NOT NULL,
    author                text NOT NULL,
    language              text NOT NULL CHECK (language ~ '^[a-z]{2}-[a-z]{2}$'),
    image_url             text NOT NULL,
    -- An Apple Podcasts top-level category (itunes:category text).
    category              text NOT NULL,
    explicit              boolean NOT NULL DEFAULT false,
    podcast_type          text NOT NULL DEFAULT 'episodic'
                              CHECK (podcast_type IN ('episodic', 'serial')),
    -- itunes:owner (Apple writes to this address to confirm ownership).
    owner_name            text NOT NULL,
    owner_email           text NOT NULL,
    -- Lower-case host name of a verified domain of the owner (domains.podcast_id mirrors it).
    custom_domain         text,
    monetization_enabled  boolean NOT NULL DEFAULT false,
    -- Podcasting 2.0 podcast:guid: uuidv5 of the feed URL at creation, never changed after.
    feed_guid             uuid NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);
CREATE UNIQUE INDEX podcasts_custom_domain_live_key ON podcasts (custom_domain)
    WHERE deleted_at IS NULL AND custom_domain IS NOT NULL;
-- A DJ's own podcasts (`GET /v1/podcasts`), newest first.
CREATE INDEX podcasts_owner_idx ON podcasts (owner_id, created_at DESC) WHERE deleted_at IS NULL;

CREATE TABLE episodes (
    episode_id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    podcast_id             uuid NOT NULL REFERENCES podcasts (podcast_id),
    title                  text NOT NULL,
    description            text NOT NULL DEFAULT '',
    episode_number         integer CHECK (episode_number >= 1),
    season                 integer CHECK (season >= 1),
    episode_type           text NOT NULL DEFAULT 'full'
                               CHECK (episode_type IN ('full', 'trailer', 'bonus')),
    publication_date       timestamptz NOT NULL,
    source_type            text NOT NULL CHECK (source_type IN ('upload', 'external')),
    -- An upload of the podcast's owner (no foreign key: uploads live in their own migration;
    -- the uploads service asks this domain before deleting one that an episode uses).
    upload_id              uuid,
    external_url           text,
    -- The `<enclosure length>`: size of the media in bytes.
    media_size_bytes       bigint NOT NULL CHECK (media_size_bytes >= 0),
    duration_seconds       integer CHECK (duration_seconds >= 0),
    explicit               boolean NOT NULL DEFAULT false,
    monetization_required  boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at             timestamptz,
    CONSTRAINT episodes_source_check CHECK (
        (source_type = 'upload' AND upload_id IS NOT NULL AND external_url IS NULL)
        OR (source_type = 'external' AND external_url IS NOT NULL AND upload_id IS NULL)
    )
);
CREATE UNIQUE INDEX episodes_number_live_key ON episodes (podcast_id, episode_number)
    WHERE deleted_at IS NULL AND episode_number IS NOT NULL;
-- The feed and the podcast page: newest publication first.
CREATE INDEX episodes_podcast_idx ON episodes (podcast_id, publication_date DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX episodes_upload_idx ON episodes (upload_id)
    WHERE deleted_at IS NULL AND upload_id IS NOT NULL;

CREATE TABLE domains (
    domain_id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id              uuid NOT NULL REFERENCES users (user_id),
    -- Lower case, no trailing dot.
    hostname              text NOT NULL,
    podcast_id            uuid REFERENCES podcasts (podcast_id),
    status                text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified')),
    tls_status            text NOT NULL DEFAULT 'pending' CHECK (tls_status IN ('pending', 'issued')),
    -- The value of the TXT record `_mediaserver-challenge.<hostname>` the owner publishes.
    dns_challenge_record  text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    verified_at           timestamptz,
    deleted_at            timestamptz
);
CREATE UNIQUE INDEX domains_hostname_live_key ON domains (hostname) WHERE deleted_at IS NULL;
CREATE INDEX domains_owner_idx ON domains (owner_id, created_at DESC) WHERE deleted_at IS NULL;
