// k6 scenario: MP3 listeners of a live stream. Each VU is one listener holding a GET of
// live.mp3 open for LISTEN_SECONDS, then reconnecting; redirects are followed (in a cluster
// a node that does not own the stream answers 307 to the one that does).
//
//   k6 run -e BASE_URL=https://radio.example.com -e STREAM_ID=<uuid> tests/load/mp3_listeners.js
//   k6 run -e BASE_URL=... -e STREAM_ID=... -e VUS=1000 -e LISTEN_SECONDS=60 \
//     tests/load/mp3_listeners.js
//   k6 run -e MP3_URL=<a play_urls.mp3 with its grant> -e BITRATE_KBPS=128 \
//     tests/load/mp3_listeners.js
//
// k6's HTTP client does not stream: a response is read whole before the script sees it. So a
// listen is a GET bounded by `timeout` (LISTEN_SECONDS), judged when it ends. k6 keeps the
// bytes that arrived before the timeout, and the script checks them: MP3 frames, at least
// MIN_SHARE of the stream's bitrate over the listen (the node's initial burst counts too),
// and that the stream did not end early. Limits that follow: no per-chunk timing (a listener
// that got its audio late but within the window passes); every listen ends in k6's "request
// timeout", so `http_req_failed` and `http_req_duration` say nothing here and k6 logs a
// "Request Failed" warning per listen (`--log-output=none` hides them); and k6 holds each
// body in memory, LISTEN_SECONDS × bitrate / 8 per VU (480 kB at 128 kbps for 30 s), so
// thousands of listeners need shorter listens or several load generators.
import http from "k6/http";
import { check } from "k6";
import { Counter, Rate, Trend } from "k6/metrics";
import { BASE_URL, listenersJoining, number, required, under, userAgent } from "./env.js";

const STREAM_ID = __ENV.MP3_URL
  ? __ENV.STREAM_ID
  : required("STREAM_ID", "<uuid of a live stream>, or -e MP3_URL=<its live.mp3 URL>");
const MP3_URL = __ENV.MP3_URL || `${BASE_URL}/v1/streams/${STREAM_ID}/live.mp3`;
const LISTEN_SECONDS = number("LISTEN_SECONDS", 30);
const MIN_SHARE = number("MIN_SHARE", 0.95);
const REQUEST_TIMEOUT = 1050; // k6's error_code for a request that hit its timeout

export const options = {
  scenarios: { listeners: listenersJoining(`${LISTEN_SECONDS + 5}s`) }, // last listens end
  thresholds: {
    mp3_failures: ["rate<0.01"],
    mp3_bytes: ["count>0"],
    mp3_first_byte: [under(95, 250), under(99, 500)],
  },
};

const failures = new Rate("mp3_failures"); // per listen
const received = new Counter("mp3_bytes");
const kbps = new Trend("mp3_kbps"); // average over each listen, burst included
const firstByte = new Trend("mp3_first_byte", true);

const REQUEST = {
  headers: { "User-Agent": userAgent("mp3") },
  responseType: "binary",
  timeout: `${LISTEN_SECONDS}s`,
  tags: { name: "live.mp3", kind: "mp3" },
};
if (__ENV.TOKEN) {
  REQUEST.headers.Authorization = `Bearer ${__ENV.TOKEN}`;
}

// The stream's bitrate in kbit/s: BITRATE_KBPS, else what its status reports.
export function setup() {
  if (__ENV.BITRATE_KBPS) {
    return { bitrate: number("BITRATE_KBPS", 0) };
  }
  if (!STREAM_ID) {
    throw new Error("set BITRATE_KBPS (-e BITRATE_KBPS=128) or STREAM_ID with MP3_URL");
  }
  const status = http.get(`${BASE_URL}/v1/streams/${STREAM_ID}/status`, {
    headers: REQUEST.headers,
  });
  const bitrate = status.status === 200 ? parseInt(status.json("bitrate"), 10) : NaN;
  if (!(bitrate > 0)) {
    const answer = `${status.status} ${status.body}`;
    throw new Error(`no bitrate in the stream's status (${answer}): set BITRATE_KBPS`);
  }
  return { bitrate };
}

export default function (data) {
  const response = http.get(MP3_URL, REQUEST);
  const body = response.body ? new Uint8Array(response.body) : new Uint8Array(0);
  const rate = (body.length * 8) / response.timings.duration; // bit/ms = kbit/s
  const ok = check(response, {
    // A 4xx/5xx answers at once; a stream that ended before the timeout dropped its listener.
    "listened until the timeout": (r) => r.error_code === REQUEST_TIMEOUT,
    "MP3 frames": () => hasFrameSync(body),
    "at least the bitrate": () => rate >= MIN_SHARE * data.bitrate,
  });
  failures.add(!ok);
  received.add(body.length);
  kbps.add(rate);
  firstByte.add(response.timings.waiting);
}

// An MPEG audio frame header (11 set sync bits) near the start (ISO/IEC 11172-3 §2.4.1.3).
function hasFrameSync(body) {
  const end = Math.min(body.length - 1, 2048);
  for (let i = 0; i < end; i++) {
    if (body[i] === 0xff && (body[i + 1] & 0xe0) === 0xe0) {
      return true;
    }
  }
  return false;
}
