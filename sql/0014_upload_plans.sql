-- Per-plan upload quotas (issue 13, the tracks spec's "Limites par plan"): each DJ's upload
-- plan, set by an admin. `basic` (the default) is today's limits, so nothing changes for
-- existing accounts. The plans' figures live in `control/tracks/quotas.py`.
ALTER TABLE users ADD COLUMN upload_plan text NOT NULL DEFAULT 'basic'
    CHECK (upload_plan IN ('free', 'basic', 'pro', 'artist'));
-- The monthly upload count: a DJ's tracks by creation time, deleted ones included.
CREATE INDEX tracks_owner_created_idx ON tracks (owner_id, created_at);
