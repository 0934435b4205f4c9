"""Who may push what (`relay.ingest.IngestGate`): an encoder's mount and source password
against the push streams in PostgreSQL; its audio goes to the stream's relay on this node,
which takes the stream over in a cluster (push wins over hashing)."""

from __future__ import annotations

from control.streams.service import StreamsService
from mediaserver.cluster import Cluster
from relay.ingest import Refusal, RequestHead
from relay.manager import Relay, RelayManager
from relay.source import SourceSink

#: One answer for a wrong password and an unknown mount: nothing tells them apart.
UNAUTHORIZED = Refusal(401, "Authentication required: source:<password> of the mount")


class PushIngest:
    def __init__(self, streams: StreamsService, manager: RelayManager, cluster: Cluster) -> None:
        self._streams = streams
        self._manager = manager
        self._cluster = cluster

    async def open_source(
        self, mount: str, password: str, head: RequestHead
    ) -> SourceSink | Refusal:
        source = await self._streams.push_source(mount, password)
        if source is None:
            return UNAUTHORIZED
        current = self._manager.relay(source.stream_id)
        if current is not None and current.pushing:
            return Refusal(403, f"Mountpoint {mount} in use: another encoder is live on it")
        await self._cluster.claim(source)
        relay = await self._manager.push(source)
        relay.pushing = True
        return relay

    def accepting(self, sink: SourceSink) -> bool:
        assert isinstance(sink, Relay)
        return self._manager.relay(sink.source.stream_id) is sink

    def close_source(self, mount: str, sink: SourceSink) -> None:
        assert isinstance(sink, Relay)
        sink.pushing = False

    async def update_metadata(self, mount: str, password: str, title: str) -> Refusal | None:
        source = await self._streams.push_source(mount, password)
        if source is None:
            return UNAUTHORIZED
        if not await self._cluster.set_title(source.stream_id, title):
            return Refusal(400, f"Mountpoint {mount} is not live: connect the encoder first")
        return None
