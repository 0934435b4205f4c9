-- Uploaded audio turned into HLS (backlog US-3.1, US-3.2) and the generic job queue that
-- processes it (mediaserver/jobs.py).

CREATE TABLE uploads (
    upload_id         uuid PRIMARY KEY,
    owner_id          uuid NOT NULL REFERENCES users (user_id),
    -- As the client named it; shown only, never used to build a path or key.
    filename          text NOT NULL,
    title             text NOT NULL,
    artist            text,
    content_type      text NOT NULL,
    size_bytes        bigint NOT NULL CHECK (size_bytes >= 0),
    duration_seconds  double precision,
    bitrate_kbps      integer,
    status            text NOT NULL DEFAULT 'processing'
                      CHECK (status IN ('processing', 'ready', 'failed')),
    error_message     text,
    -- Object-store keys, built from upload_id only: uploads/<id>/source.mp3, uploads/<id>/hls.
    source_key        text NOT NULL,
    hls_prefix        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    deleted_at        timestamptz
);
-- A DJ's own uploads, newest first.
CREATE INDEX uploads_owner_idx ON uploads (owner_id, created_at DESC, upload_id DESC)
    WHERE deleted_at IS NULL;

-- Background work, claimed with SELECT … FOR UPDATE SKIP LOCKED by the workers of any node.
-- A claim bumps `attempts` and sets a lease the worker renews while it runs; a 'running' job
-- whose lease has passed belongs to a node that died and is claimed again.
CREATE TABLE jobs (
    job_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind          text NOT NULL,
    subject_id    uuid NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}'::jsonb,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    last_error    text,
    lease_until   timestamptz,
    run_after     timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_pick_idx ON jobs (status, run_after);
CREATE INDEX jobs_lease_idx ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_subject_idx ON jobs (subject_id);
