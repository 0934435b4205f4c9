-- On-demand playlists of uploads and external MP3s (backlog US-3.3 – US-3.8, US-11.1).

CREATE TABLE playlists (
    playlist_id           uuid PRIMARY KEY,
    owner_id              uuid NOT NULL REFERENCES users (user_id),
    title                 text NOT NULL,
    description           text NOT NULL DEFAULT '',
    visibility            text NOT NULL DEFAULT 'public'
                              CHECK (visibility IN ('public', 'private')),
    monetization_enabled  boolean NOT NULL DEFAULT false,
    -- True once every track is ready and the combined manifest (at manifest_key) is written.
    hls_ready             boolean NOT NULL DEFAULT false,
    manifest_key          text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);
-- A DJ's own playlists (`GET /v1/playlists`), newest first.
CREATE INDEX playlists_owner_idx ON playlists (owner_id, created_at DESC, playlist_id DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE playlist_tracks (
    playlist_id       uuid NOT NULL REFERENCES playlists (playlist_id),
    position          integer NOT NULL CHECK (position >= 0),
    -- Stable across edits that keep the track: segment URLs handed out stay valid.
    track_id          uuid NOT NULL UNIQUE,
    source_type       text NOT NULL CHECK (source_type IN ('upload', 'external')),
    -- An upload of the playlist owner's (no foreign key: uploads live in their own migration;
    -- the uploads service asks this domain before deleting one a playlist uses).
    upload_id         uuid,
    external_url      text,
    -- Where the fetched copy of an external track lives (its HLS rendition beside it).
    external_key      text,
    title             text NOT NULL,
    artist            text,
    status            text NOT NULL CHECK (status IN ('ready', 'processing', 'failed')),
    duration_seconds  double precision,
    error_message     text,
    PRIMARY KEY (playlist_id, position),
    CONSTRAINT playlist_tracks_source_check CHECK (
        (source_type = 'upload' AND upload_id IS NOT NULL AND external_url IS NULL)
        OR (source_type = 'external' AND external_url IS NOT NULL AND external_key IS NOT NULL
            AND upload_id IS NULL)
    )
);
CREATE INDEX playlist_tracks_upload_idx ON playlist_tracks (upload_id) WHERE upload_id IS NOT NULL;
