"""HLS: the playlist model and renderer (sans-IO), the PyAV packager and segment window for
live streams, the VOD segmenter for uploads, and the MP3 track joiner.

`hls/` may import `relay.mp3`, `relay.adts`, `relay.codec` and `relay.icy`, the codec cores
it shares with `relay/`, by design: the only arrow allowed between the two packages. It
imports nothing else from `relay/` and nothing from `control/` or `mediaserver/`: the object
store it writes VOD renditions to comes in as `hls.vodstore.VodStore`, a structural
interface the server's `ObjectStore` satisfies. `tests/unit/test_layering.py` checks these
rules.
"""
