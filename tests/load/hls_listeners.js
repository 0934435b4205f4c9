// k6 scenario: HLS listeners of a live stream. Each VU is one player (RFC 8216 §6.3): it
// loads live.m3u8, starts three segments from the live edge (§6.3.3), then reloads the
// playlist once per target duration (§6.3.4) and fetches each new segment exactly once, in
// order, resolving segment URIs against the playlist's final URL (after redirects: in a
// cluster a node that does not own the stream answers 307 to the one that does, and k6
// follows it). Each VU sends its own User-Agent, so the node counts it as one listener.
//
//   k6 run -e BASE_URL=https://radio.example.com -e STREAM_ID=<uuid> tests/load/hls_listeners.js
//   k6 run -e BASE_URL=... -e STREAM_ID=... -e VUS=2000 -e RAMP=2m -e DURATION=10m \
//     tests/load/hls_listeners.js
//   k6 run -e HLS_URL=<any media playlist: a play_urls.hls with its grant, an upload's
//     or a playlist's .m3u8> tests/load/hls_listeners.js
//
// A failure is a playlist or segment that does not arrive as it should (404 included: a
// segment gone before the player got to it) or a stall: the player's buffer (the media it
// fetched less the time since playback started) ran dry. An on-demand playlist (ENDLIST)
// is loaded once and its segments fetched as playback needs them, three target durations
// ahead; at its end the player starts over. `TOKEN` (an access token) is sent as
// `Authorization: Bearer` to every URL, for private streams.
import http from "k6/http";
import { check, sleep } from "k6";
import { Counter, Rate } from "k6/metrics";
import { BASE_URL, listenersJoining, required, under, userAgent } from "./env.js";
import { parsePlaylist } from "./m3u8.js";

const LIVE_HINT = "<uuid of a live stream>, or -e HLS_URL=<a media playlist's URL>";
const PLAYLIST_URL =
  __ENV.HLS_URL ||
  `${BASE_URL}/v1/streams/${required("STREAM_ID", LIVE_HINT)}/live.m3u8`;
const START_SEGMENTS = 3; // §6.3.3: start no less than three target durations from the end
const MPEG_TS_SYNC = 0x47;

export const options = {
  // The last iterations may run on for a poll and its wait: at most a target duration (≤ 10 s).
  scenarios: { listeners: listenersJoining("15s") },
  thresholds: {
    hls_failures: ["rate<0.01"],
    hls_segments: ["count>0"],
    "http_req_duration{kind:segment}": [under(95, 200), under(99, 500)],
    "http_req_duration{kind:playlist}": [under(95, 100), under(99, 250)],
  },
};

const failures = new Rate("hls_failures"); // per playlist poll (stall included) and segment
const stalls = new Counter("hls_stalls");
const segments = new Counter("hls_segments");
const segmentBytes = new Counter("hls_segment_bytes");

const headers = { "User-Agent": userAgent("hls") };
if (__ENV.TOKEN) {
  headers.Authorization = `Bearer ${__ENV.TOKEN}`;
}
const PLAYLIST_REQUEST = { headers, tags: { name: "playlist", kind: "playlist" } };
const SEGMENT_REQUEST = {
  headers,
  responseType: "binary",
  tags: { name: "segment", kind: "segment" },
};

// This VU's player (module scope is per VU): the playlist, the next media sequence number
// to fetch, and the playback clock.
let player = newPlayer();

function newPlayer() {
  return { playlist: null, nextSeq: null, buffered: 0, playingSince: null };
}

const now = () => Date.now() / 1000;

export default function () {
  const started = now();
  const wait = listen(player);
  sleep(Math.max(0, started + wait - now()));
}

// One reload (live) or one buffering step (on demand); the seconds to wait before the next.
function listen(p) {
  if (p.playlist === null || !p.playlist.endlist) {
    const response = http.get(PLAYLIST_URL, PLAYLIST_REQUEST);
    const parsed = response.status === 200 ? parseOrNull(response) : null;
    const loaded = check(response, {
      "playlist 200": (r) => r.status === 200,
      "playlist is a media playlist": () => parsed !== null,
    });
    if (!loaded) {
      failures.add(true);
      return p.playlist ? p.playlist.targetDuration / 2 : 2;
    }
    p.playlist = parsed;
  }
  const playlist = p.playlist;
  failures.add(stalled(p));
  const fresh = newSegments(p, playlist);
  for (const segment of fresh) {
    fetchSegment(p, segment);
  }
  if (playlist.endlist && p.nextSeq >= playlist.mediaSequence + playlist.segments.length) {
    const rest = level(p);
    player = newPlayer(); // all fetched: play the rest, then this listener starts again
    return Math.max(0, rest);
  }
  // §6.3.4: an unchanged playlist is reloaded after half the target duration.
  return fresh.length ? playlist.targetDuration : playlist.targetDuration / 2;
}

// The playlist of a 200 response, resolved against its final URL; null if it is none.
function parseOrNull(response) {
  try {
    return parsePlaylist(response.body, response.url);
  } catch (error) {
    console.warn(`${response.url}: ${error.message}`);
    return null;
  }
}

// Seconds of fetched media not yet played.
function level(p) {
  return p.playingSince === null ? 0 : p.buffered - (now() - p.playingSince);
}

// Whether playback ran out of media since the last poll; playback then resumes from now.
function stalled(p) {
  if (level(p) >= 0) {
    return false;
  }
  stalls.add(1);
  p.playingSince = now() - p.buffered;
  return true;
}

// The segments to fetch now: live, every one not fetched yet (the last three on the first
// load); on demand, enough to be three target durations ahead.
function newSegments(p, playlist) {
  const listed = playlist.segments;
  if (!listed.length) {
    return [];
  }
  if (p.nextSeq === null) {
    const first = playlist.endlist ? 0 : Math.max(0, listed.length - START_SEGMENTS);
    p.nextSeq = listed[first].seq;
  }
  const fresh = listed.filter((s) => s.seq >= p.nextSeq);
  if (listed[0].seq > p.nextSeq) {
    failures.add(true); // segments left the window before this player got to them
  }
  if (!playlist.endlist) {
    return fresh;
  }
  const ahead = [];
  let buffer = level(p);
  for (const segment of fresh) {
    if (buffer >= START_SEGMENTS * playlist.targetDuration) break;
    ahead.push(segment);
    buffer += segment.duration;
  }
  return ahead;
}

function fetchSegment(p, segment) {
  const response = http.get(segment.url, SEGMENT_REQUEST);
  const body = response.body ? new Uint8Array(response.body) : new Uint8Array(0);
  const ok = check(response, {
    "segment 200": (r) => r.status === 200,
    "segment is MPEG-TS": () => body.length > 0 && body[0] === MPEG_TS_SYNC,
  });
  failures.add(!ok);
  p.nextSeq = segment.seq + 1; // a player skips a segment it could not get
  if (ok) {
    segments.add(1);
    segmentBytes.add(body.length);
    p.buffered += segment.duration;
    if (p.playingSince === null) {
      p.playingSince = now();
    }
  }
}
