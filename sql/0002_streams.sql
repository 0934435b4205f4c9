-- Live streams (backlog US-2.1 – US-2.5) and their ad markers (US-6.4).

CREATE TABLE streams (
    stream_id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id              uuid NOT NULL REFERENCES users (user_id),
    name                  text NOT NULL,
    -- scheme://host[:port] of the DJ's SHOUTcast/Icecast server, and the stream's path on it.
    source_url            text NOT NULL,
    mount                 text NOT NULL,
    server_kind           text NOT NULL CHECK (server_kind IN ('shoutcast1', 'shoutcast2', 'icecast2')),
    sid                   integer CHECK (sid >= 1),
    -- AES-256-GCM: 12-byte nonce ‖ ciphertext ‖ tag, associated data = stream_id (mediaserver.crypto).
    stream_key_enc        bytea NOT NULL,
    genre                 text,
    description           text,
    visibility            text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
    monetization_enabled  boolean NOT NULL DEFAULT false,
    enabled               boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);
-- A DJ's own streams (`?mine=true`), newest first.
CREATE INDEX streams_owner_idx ON streams (owner_id, created_at DESC) WHERE deleted_at IS NULL;
-- The public directory, newest first.
CREATE INDEX streams_directory_idx ON streams (created_at DESC, stream_id DESC)
    WHERE visibility = 'public' AND enabled AND deleted_at IS NULL;

CREATE TABLE streams_ads (
    ad_id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stream_id         uuid NOT NULL REFERENCES streams (stream_id),
    position_seconds  integer NOT NULL CHECK (position_seconds >= 0),
    duration_seconds  integer NOT NULL CHECK (duration_seconds > 0),
    ad_type           text NOT NULL CHECK (ad_type IN ('pre-roll', 'mid-roll', 'post-roll')),
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX streams_ads_stream_idx ON streams_ads (stream_id, position_seconds);
