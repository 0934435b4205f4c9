"""Which node owns which stream. The one place that decides it: today a single node owns
every stream; the multi-node issue replaces `owns` with consistent hashing over the live
members (Redis) without touching its callers."""

from __future__ import annotations

import uuid


class Cluster:
    def __init__(self, node_name: str) -> None:
        self.node_name = node_name

    def owns(self, stream_id: uuid.UUID) -> bool:
        """Whether this node runs the relay of `stream_id`."""
        return True
