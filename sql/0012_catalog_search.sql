-- Catalog and search (issue 13): what lets a listener find public tracks, playlists and
-- podcasts fast — a weighted full-text document per track, the indexes of every filter and
-- sort of `GET /v1/tracks`, and a lexicon for typo tolerance.
--
-- `unaccent` and `pg_trgm` are used when the server has them (Debian's PostgreSQL does);
-- the embedded server (pgserver) has neither, so both are optional: accents are then
-- folded by `translate()` of the common Latin letters, and the query code (control.catalog)
-- finds at start-up that there is no `pg_trgm` and searches without typo tolerance.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS unaccent;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'unaccent is available but may not be created here: accents folded by translate()';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm is available but may not be created here: no typo tolerance';
        END;
    END IF;
END
$$;

-- catalog_fold(text): lower case, accents removed. IMMUTABLE so that indexes and the
-- generated column can use it: `unaccent(text)` itself is only STABLE (it reads its
-- dictionary through the search path), the two-argument form with the dictionary named
-- is safe to wrap.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent') THEN
        EXECUTE format(
            'CREATE FUNCTION catalog_fold(value text) RETURNS text
                 LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
                 AS $f$ SELECT lower(%1$I.unaccent(%2$L::regdictionary, value)) $f$',
            (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = 'unaccent'),
            (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = 'unaccent') || '.unaccent');
    ELSE
        CREATE FUNCTION catalog_fold(value text) RETURNS text
            LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
            AS $f$ SELECT translate(lower(value),
                'àáâãäåāăąçćčďèéêëēėęěìíîïīįıñńňòóôõöøōőùúûüūůűųýÿžźżśšşřťţł',
                'aaaaaaaaacccdeeeeeeeeiiiiiiinnnoooooooouuuuuuuuyyzzzsssrttl') $f$;
    END IF;
END
$$;

-- Tags compared folded (`tags=House,deep` finds a track tagged `house`, `Deep`).
CREATE FUNCTION catalog_tags(tags text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT coalesce(array_agg(catalog_fold(tag)), '{}') FROM unnest(tags) AS tag $$;

-- The weighted document: title A > artist (and album) B > tags and genre C > description D,
-- `simple` configuration (DJ libraries are multilingual: no stemming, no stop words).
CREATE FUNCTION catalog_document(
    title text, artist text, album text, tags text[], genre text, description text
) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT setweight(to_tsvector('simple'::regconfig, coalesce(catalog_fold(title), '')), 'A')
        || setweight(to_tsvector('simple'::regconfig,
                     coalesce(catalog_fold(artist), '') || ' ' || coalesce(catalog_fold(album), '')), 'B')
        || setweight(to_tsvector('simple'::regconfig,
                     coalesce(catalog_fold(array_to_string(tags, ' ')), '') || ' '
                     || coalesce(catalog_fold(genre), '')), 'C')
        || setweight(to_tsvector('simple'::regconfig, coalesce(catalog_fold(description), '')), 'D')
    $$;

-- The two-field document of playlists and podcasts (title A, description D).
CREATE FUNCTION catalog_text_document(title text, description text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT setweight(to_tsvector('simple'::regconfig, coalesce(catalog_fold(title), '')), 'A')
        || setweight(to_tsvector('simple'::regconfig, coalesce(catalog_fold(description), '')), 'D')
    $$;

ALTER TABLE tracks ADD COLUMN search_document tsvector
    GENERATED ALWAYS AS (catalog_document(title, artist, album, tags, genre, description)) STORED;

-- Whether the track's upload is ready and not deleted: the upload's state, copied here so
-- that the listing's partial indexes can say "listed" in one table. Kept by the triggers
-- below, whoever writes uploads or tracks.
ALTER TABLE tracks ADD COLUMN upload_ready boolean NOT NULL DEFAULT false;

CREATE FUNCTION catalog_track_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT u.status = 'ready' AND u.deleted_at IS NULL INTO NEW.upload_ready
      FROM uploads u WHERE u.upload_id = NEW.track_id;
    NEW.upload_ready := coalesce(NEW.upload_ready, false);
    RETURN NEW;
END
$$;
CREATE TRIGGER tracks_upload_ready BEFORE INSERT ON tracks
    FOR EACH ROW EXECUTE FUNCTION catalog_track_ready();

CREATE FUNCTION catalog_upload_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tracks SET upload_ready = (NEW.status = 'ready' AND NEW.deleted_at IS NULL)
     WHERE track_id = NEW.upload_id
       AND upload_ready IS DISTINCT FROM (NEW.status = 'ready' AND NEW.deleted_at IS NULL);
    RETURN NULL;
END
$$;
CREATE TRIGGER uploads_track_ready AFTER UPDATE OF status, deleted_at ON uploads
    FOR EACH ROW EXECUTE FUNCTION catalog_upload_changed();

-- The words of every track's document, for typo tolerance: a query word found nowhere is
-- replaced by the closest words here (pg_trgm similarity), then searched as usual.
CREATE TABLE catalog_words (
    word  text PRIMARY KEY
);

CREATE FUNCTION catalog_learn_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO catalog_words (word)
    SELECT lexeme FROM unnest(NEW.search_document)
     WHERE length(lexeme) BETWEEN 3 AND 40 AND lexeme !~ '^[0-9]+$'
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER tracks_learn_words AFTER INSERT OR UPDATE OF search_document ON tracks
    FOR EACH ROW EXECUTE FUNCTION catalog_learn_words();

-- The folded values the filters compare and the title sort orders by, stored: folding
-- with `unaccent` costs microseconds a call, too much for every row of a listing.
ALTER TABLE tracks
    ADD COLUMN title_key text GENERATED ALWAYS AS (catalog_fold(title)) STORED,
    ADD COLUMN artist_key text GENERATED ALWAYS AS (catalog_fold(artist)) STORED,
    ADD COLUMN genre_key text GENERATED ALWAYS AS (catalog_fold(genre)) STORED,
    ADD COLUMN tag_keys text[] GENERATED ALWAYS AS (catalog_tags(tags)) STORED;

-- Listed = public, not deleted, upload ready: every filter and sort of `GET /v1/tracks`
-- (a btree serves both orders; the genre, the most used filter, has its own per sort).
-- The four sort indexes also carry every filtered column (INCLUDE): a listing walks one
-- in its order and tests its filters on the index entries alone (an index-only scan),
-- then reads the rows of its page only — a filter that keeps one track in 20 costs
-- microseconds per skipped track, not a read of its row.
CREATE INDEX tracks_listed_document_idx ON tracks USING gin (search_document)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_document_idx ON tracks USING gin (search_document)
    WHERE deleted_at IS NULL;
CREATE INDEX tracks_listed_created_idx ON tracks (created_at DESC, track_id DESC)
    INCLUDE (genre_key, tag_keys, artist_key, owner_id, duration_seconds, bpm, musical_key)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_plays_idx ON tracks (plays DESC, track_id DESC)
    INCLUDE (genre_key, tag_keys, artist_key, owner_id, duration_seconds, bpm, musical_key)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_duration_idx ON tracks (duration_seconds, track_id)
    INCLUDE (genre_key, tag_keys, artist_key, owner_id, bpm, musical_key)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_title_idx ON tracks (title_key, track_id)
    INCLUDE (genre_key, tag_keys, artist_key, owner_id, duration_seconds, bpm, musical_key)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_genre_idx ON tracks (genre_key, created_at DESC, track_id DESC)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_genre_plays_idx ON tracks (genre_key, plays DESC, track_id DESC)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_genre_duration_idx ON tracks (genre_key, duration_seconds, track_id)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_genre_title_idx ON tracks (genre_key, title_key, track_id)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_artist_idx ON tracks (artist_key, created_at DESC)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_key_idx ON tracks (musical_key, created_at DESC)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_bpm_idx ON tracks (bpm, created_at DESC)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_uploader_idx ON tracks (owner_id, created_at DESC)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_listed_tags_idx ON tracks USING gin (tag_keys)
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;

-- The playlist and podcast directories.
CREATE INDEX playlists_directory_idx ON playlists (created_at DESC, playlist_id DESC)
    WHERE deleted_at IS NULL AND visibility = 'public' AND hls_ready;
CREATE INDEX playlists_directory_document_idx ON playlists
    USING gin (catalog_text_document(title, description))
    WHERE deleted_at IS NULL AND visibility = 'public' AND hls_ready;
CREATE INDEX podcasts_directory_idx ON podcasts (created_at DESC, podcast_id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX podcasts_directory_document_idx ON podcasts
    USING gin (catalog_text_document(title || ' ' || author, description))
    WHERE deleted_at IS NULL;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX catalog_words_trgm_idx ON catalog_words USING gin (word gin_trgm_ops)';
    END IF;
END
$$;
