-- Who has played a track on a day: a play is counted once per listener, track and day.
-- `listener` is a digest of the user id (or, for anonymous listeners, the client address),
-- never the address itself. Old days can be pruned without touching the counts.
CREATE TABLE track_listeners (
    track_id  uuid NOT NULL REFERENCES tracks (track_id) ON DELETE CASCADE,
    day       date NOT NULL,
    listener  text NOT NULL,
    PRIMARY KEY (track_id, day, listener)
);
-- Related tracks: public ones by the same artist or in the same genre.
CREATE INDEX tracks_related_artist_idx ON tracks (lower(artist)) WHERE deleted_at IS NULL;
CREATE INDEX tracks_related_genre_idx ON tracks (lower(genre)) WHERE deleted_at IS NULL;
