"""Live ingest and fan-out (MP3, AAC): source → hub → listeners and the live HLS packager.

`relay.icy` (ICY metadata demuxer, block codec, interleaver), `relay.mp3` (MPEG audio
frame reader), `relay.adts` (AAC ADTS frame reader) and `relay.codec` (which codecs a stream
may carry) are sans-IO codec cores shared by `relay/` and `hls/`: `hls/` may import them
by design (today it imports `relay.mp3`), the one arrow allowed between the two packages.
The rest of `relay/` imports nothing from `hls/` (data flows source → hub → packager), and
nothing here imports `control/` or `mediaserver/`, which sit on top;
`tests/unit/test_layering.py` checks both. Known exception, still to be removed:
`relay/manager.py` builds each relay's `hls.live.LiveHls`.
"""
