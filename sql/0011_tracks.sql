-- The track catalog. A track is what an upload becomes: every track is an `uploads` row
-- (same id, same object-store prefix, same job queue and status) plus the catalog's
-- metadata here. Uploads made through /v1/uploads/audio have no tracks row and stay
-- private to their owner (playlists, episodes).
CREATE TABLE tracks (
    track_id          uuid PRIMARY KEY REFERENCES uploads (upload_id),
    owner_id          uuid NOT NULL REFERENCES users (user_id),
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    artist            text NOT NULL CHECK (length(artist) BETWEEN 1 AND 100),
    album             text,
    description       text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    tags              text[] NOT NULL DEFAULT '{}',
    genre             text CHECK (length(genre) <= 50),
    year              integer,
    bpm               integer CHECK (bpm BETWEEN 40 AND 300),
    musical_key       text CHECK (musical_key ~ '^[A-G][#b]?m?$'),
    visibility        text NOT NULL DEFAULT 'public'
                      CHECK (visibility IN ('public', 'unlisted', 'private')),
    is_downloadable   boolean NOT NULL DEFAULT false,
    license           text NOT NULL DEFAULT 'All Rights Reserved'
                      CHECK (license IN ('All Rights Reserved', 'Creative Commons BY',
                                         'Creative Commons BY-SA', 'Creative Commons BY-NC',
                                         'Public Domain')),
    -- What parsing the audio found (never the extension or Content-Type).
    source_format     text,     -- mp3, wav, flac, ogg, m4a, aac, aiff
    source_codec      text,     -- mp3, pcm_s16le, flac, vorbis, opus, aac, …
    sample_rate       integer,
    channels          integer,
    source_bitrate_kbps integer,
    lossless          boolean,
    duration_seconds  double precision,
    loudness_lufs     double precision,   -- EBU R128 integrated loudness
    -- Object-store keys under the upload's prefix, set when processing is done.
    artwork_key       text,
    waveform_key      text,
    hls_master_key    text,
    plays             bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE INDEX tracks_owner_idx ON tracks (owner_id, created_at DESC, track_id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX tracks_public_created_idx ON tracks (created_at DESC, track_id DESC)
    WHERE deleted_at IS NULL AND visibility = 'public';

-- One row per rendition of the quality ladder, each as HLS and as one progressive file.
CREATE TABLE track_renditions (
    track_id      uuid NOT NULL REFERENCES tracks (track_id) ON DELETE CASCADE,
    quality       text NOT NULL CHECK (quality IN ('low', 'medium', 'high', 'lossless')),
    format        text NOT NULL,      -- mp3, m4a, flac, wav, …
    codec         text NOT NULL,      -- mp3, aac, flac, pcm_s16le, …
    bitrate_kbps  integer,            -- NULL for lossless
    hls_prefix    text,               -- NULL when the rendition has no HLS (e.g. lossless original)
    file_key      text NOT NULL,
    size_bytes    bigint NOT NULL CHECK (size_bytes >= 0),
    PRIMARY KEY (track_id, quality, format)
);

-- Plays per track and day (a play is counted once per listener and track and day).
CREATE TABLE track_plays_daily (
    track_id          uuid NOT NULL REFERENCES tracks (track_id) ON DELETE CASCADE,
    day               date NOT NULL,
    plays             bigint NOT NULL DEFAULT 0,
    unique_listeners  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (track_id, day)
);
