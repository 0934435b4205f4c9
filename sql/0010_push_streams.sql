-- Push streams: the DJ's encoder sends audio to the node (Icecast source protocol) instead
-- of the node pulling it. Their `server_kind` is 'push', `source_url` is empty, `mount` is
-- the mount the encoder sends to (unique among live push streams) and `stream_key_enc`
-- holds the sealed source password.
ALTER TABLE streams DROP CONSTRAINT streams_server_kind_check;
ALTER TABLE streams ADD CONSTRAINT streams_server_kind_check
    CHECK (server_kind IN ('shoutcast1', 'shoutcast2', 'icecast2', 'push'));
CREATE UNIQUE INDEX streams_push_mount_idx ON streams (mount)
    WHERE server_kind = 'push' AND deleted_at IS NULL;
