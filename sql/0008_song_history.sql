-- Song history of live streams: one row per title the source announced, written by the
-- node that relays the stream when the title changes (issue 12, "Now-playing everywhere").

CREATE TABLE stream_songs (
    song_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id   uuid NOT NULL REFERENCES streams (stream_id),
    -- The title as the source sent it (ICY StreamTitle or admin stats), and its parts when
    -- it reads "Artist - Title"; `artist` is null when it does not.
    text        text NOT NULL,
    artist      text,
    title       text NOT NULL,
    started_at  timestamptz NOT NULL,
    -- Null while it is playing (or until the stream's next title: a relay stopped with the
    -- stream leaves its last song open).
    ended_at    timestamptz
);
-- A stream's history, newest first; and its song playing now.
CREATE INDEX stream_songs_stream_idx ON stream_songs (stream_id, started_at DESC, song_id DESC);
CREATE UNIQUE INDEX stream_songs_open_idx ON stream_songs (stream_id) WHERE ended_at IS NULL;
