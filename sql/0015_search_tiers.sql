-- Search in two tiers (issue 13): a track whose title, artist and album alone hold every
-- word of a search ranks above one that needs its tags, genre or description for it, and
-- the head tier has its own full-text index, so that a broad search finds and ranks every
-- title and artist match however many tag and description matches there are (it used to
-- rank the first 500 matches in the table's order: the oldest tracks).
--
-- The same words and weights as `catalog_document` (title A, artist and album B), so that
-- `catalog_head(…) @@ q` holds exactly when the document matches `q` with every word
-- restricted to weights A and B (`house:AB`): the search tells its tiers apart on the
-- document it reads anyway. No extension needed (catalog_fold is 0012's, either version).
CREATE FUNCTION catalog_head(title text, artist text, album text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT setweight(to_tsvector('simple'::regconfig, coalesce(catalog_fold(title), '')), 'A')
        || setweight(to_tsvector('simple'::regconfig,
                     coalesce(catalog_fold(artist), '') || ' ' || coalesce(catalog_fold(album), '')), 'B')
    $$;

CREATE INDEX tracks_listed_head_idx ON tracks USING gin (catalog_head(title, artist, album))
    WHERE deleted_at IS NULL AND visibility = 'public' AND upload_ready;
CREATE INDEX tracks_head_idx ON tracks USING gin (catalog_head(title, artist, album))
    WHERE deleted_at IS NULL;
