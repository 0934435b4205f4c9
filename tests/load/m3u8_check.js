// Checks of m3u8.js without a server: `k6 run tests/load/m3u8_check.js` fails (exit 99) when
// a URI resolves wrongly. The references are RFC 3986 §5.4's examples, plus the shapes of
// segment URIs players meet in our playlists (absolute, relative, with a grant).
import { check } from "k6";
import { parsePlaylist, resolveUrl } from "./m3u8.js";

export const options = { iterations: 1, thresholds: { checks: ["rate==1"] } };

const BASE = "http://a/b/c/d;p?q";
const RFC_3986 = {
  "g:h": "g:h",
  g: "http://a/b/c/g",
  "./g": "http://a/b/c/g",
  "g/": "http://a/b/c/g/",
  "/g": "http://a/g",
  "//g": "http://g",
  "?y": "http://a/b/c/d;p?y",
  "g?y": "http://a/b/c/g?y",
  "g;x?y": "http://a/b/c/g;x?y",
  "": "http://a/b/c/d;p?q",
  ".": "http://a/b/c/",
  "./": "http://a/b/c/",
  "..": "http://a/b/",
  "../": "http://a/b/",
  "../g": "http://a/b/g",
  "../..": "http://a/",
  "../../g": "http://a/g",
  "../../../g": "http://a/g",
  "/./g": "http://a/g",
  "g.": "http://a/b/c/g.",
  "..g": "http://a/b/c/..g",
  "./../g": "http://a/b/g",
  "g/./h": "http://a/b/c/g/h",
  "g/../h": "http://a/b/c/h",
  "http:g": "http:g",
};

const LIVE = "https://node-1.radio.example:8443/v1/streams/5f0c/live.m3u8?grant=abc";
const PLAYLIST = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:1733550000000
#EXTINF:5.982,
hls/1733550000000.ts
#EXTINF:5.982,Artist - Title, with a comma
hls/1733550006000.ts?grant=xyz
#EXT-X-DISCONTINUITY
#EXTINF:6.008,
https://node-2.radio.example/v1/streams/5f0c/hls/1733550012000.ts
#EXTINF:4.0,
/v1/streams/5f0c/hls/1733550018000.ts
`;

export default function () {
  for (const [reference, expected] of Object.entries(RFC_3986)) {
    check(resolveUrl(BASE, reference), { [`"${reference}" → ${expected}`]: (u) => u === expected });
  }
  const playlist = parsePlaylist(PLAYLIST, LIVE);
  check(playlist, {
    "target duration": (p) => p.targetDuration === 6,
    "not ended": (p) => !p.endlist,
    "sequence numbers": (p) => p.segments.map((s) => s.seq - 1733550000000).join() === "0,1,2,3",
    durations: (p) => p.segments.map((s) => s.duration).join() === "5.982,5.982,6.008,4",
    "segment URLs": (p) =>
      p.segments.map((s) => s.url).join("\n") ===
      [
        "https://node-1.radio.example:8443/v1/streams/5f0c/hls/1733550000000.ts",
        "https://node-1.radio.example:8443/v1/streams/5f0c/hls/1733550006000.ts?grant=xyz",
        "https://node-2.radio.example/v1/streams/5f0c/hls/1733550012000.ts",
        "https://node-1.radio.example:8443/v1/streams/5f0c/hls/1733550018000.ts",
      ].join("\n"),
  });
  check(parsePlaylist("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-ENDLIST\n", LIVE), {
    "an ended playlist": (p) => p.endlist && p.segments.length === 0,
  });
}
