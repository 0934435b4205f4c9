// k6 scenario: the control API as signed-in listeners use it, open-loop at RATE requests a
// second. setup() registers ACCOUNTS listener accounts and logs each in; then every
// iteration is one request, drawn by weight: stream status (40 %), the stream directory
// (20 %), the stream's page (15 %), playlist reads (20 %: the caller's playlists, and
// PLAYLIST_ID's page when given) and a fresh login of the VU's account (LOGIN_PERCENT, 5 %).
// Each kind has its own latency thresholds; status keeps DESIGN's p99 ≤ 20 ms.
//
//   k6 run -e BASE_URL=https://radio.example.com -e STREAM_ID=<uuid> tests/load/control_mix.js
//   k6 run -e BASE_URL=... -e STREAM_ID=... -e PLAYLIST_ID=<uuid> -e RATE=300 -e DURATION=10m \
//     tests/load/control_mix.js
//
// The node's rate limits are per account and per address (100 reads a minute per account,
// 5 logins per account and 20 per address, 60 registrations per address): run against nodes
// with RATE_LIMIT_ENABLED=false or raised RATE_LIMIT_* figures; refused requests (429) fail
// the run.
import http from "k6/http";
import { check } from "k6";
import { BASE_URL, number, required, under, userAgent } from "./env.js";

const STREAM_ID = required("STREAM_ID", "<uuid of a public, live stream>");
const PLAYLIST_ID = __ENV.PLAYLIST_ID || "";
const ACCOUNTS = Math.max(1, number("ACCOUNTS", 10));
const LOGIN_PERCENT = number("LOGIN_PERCENT", 5);
const PASSWORD = "K6-Load-Passw0rd";

export const options = {
  scenarios: {
    mix: {
      executor: "constant-arrival-rate",
      rate: number("RATE", 100),
      timeUnit: "1s",
      duration: __ENV.DURATION || "1m",
      preAllocatedVUs: number("VUS", 32),
      maxVUs: 256,
    },
  },
  thresholds: {
    "http_req_duration{kind:status}": [under(99, 20)],
    "http_req_duration{kind:directory}": [under(95, 50), under(99, 100)],
    "http_req_duration{kind:stream}": [under(95, 50), under(99, 100)],
    "http_req_duration{kind:playlists}": [under(95, 50), under(99, 100)],
    // Password hashing (argon2) is slow on purpose.
    "http_req_duration{kind:login}": [under(95, 300), under(99, 600)],
    http_req_failed: ["rate<0.001"],
    checks: ["rate>0.999"],
    dropped_iterations: ["count==0"],
  },
};

const JSON_HEADERS = { "Content-Type": "application/json", "User-Agent": userAgent("api") };
const isList = (field) => (r) => Array.isArray(r.json(field));
const MIX = [
  read(40, "status", `/v1/streams/${STREAM_ID}/status`, (r) => r.json("relay_connected") != null),
  read(20, "directory", "/v1/streams?page=1&per_page=20", isList("streams")),
  read(15, "stream", `/v1/streams/${STREAM_ID}`, (r) => r.json("stream_id") === STREAM_ID),
  ...(PLAYLIST_ID
    ? [
        read(10, "playlists", "/v1/playlists", isList("playlists")),
        read(10, "playlists", `/v1/playlists/${PLAYLIST_ID}`, isList("tracks")),
      ]
    : [read(20, "playlists", "/v1/playlists", isList("playlists"))]),
];
const READ_WEIGHT = MIX.reduce((sum, r) => sum + r.weight, 0);

function read(weight, kind, path, valid) {
  return { weight, kind, url: `${BASE_URL}${path}`, valid };
}

function login(email, tags) {
  const body = JSON.stringify({ email, password: PASSWORD });
  const response = http.post(`${BASE_URL}/v1/auth/login`, body, {
    headers: JSON_HEADERS,
    tags: { name: "login", kind: "login", ...tags },
  });
  const ok = check(response, {
    "login 200": (r) => r.status === 200,
    "login gives a token": (r) => r.status === 200 && typeof r.json("access_token") === "string",
  });
  return ok ? response.json("access_token") : null;
}

// ACCOUNTS new listener accounts, each logged in: [{email, token}].
export function setup() {
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const accounts = [];
  for (let i = 0; i < ACCOUNTS; i++) {
    const email = `k6-${run}-${i}@example.com`;
    const body = { email, password: PASSWORD, name: `k6 listener ${i}`, role: "listener" };
    const registered = http.post(`${BASE_URL}/v1/auth/register`, JSON.stringify(body), {
      headers: JSON_HEADERS,
      tags: { name: "register", kind: "register" },
    });
    if (registered.status !== 201) {
      throw new Error(`POST /v1/auth/register answered ${registered.status}: ${registered.body}`);
    }
    const token = login(email, { phase: "setup" });
    if (!token) {
      throw new Error(`POST /v1/auth/login failed for ${email}`);
    }
    accounts.push({ email, token });
  }
  return { accounts };
}

let account = null; // this VU's account (module scope is per VU); its token changes on login

export default function (data) {
  if (account === null) {
    account = { ...data.accounts[(__VU - 1) % data.accounts.length] };
  }
  if (Math.random() * 100 < LOGIN_PERCENT) {
    account.token = login(account.email) || account.token;
    return;
  }
  let pick = Math.random() * READ_WEIGHT;
  const { kind, url, valid } = MIX.find((r) => (pick -= r.weight) < 0) || MIX[0];
  const response = http.get(url, {
    headers: { ...JSON_HEADERS, Authorization: `Bearer ${account.token}` },
    tags: { name: kind, kind },
  });
  check(response, {
    [`${kind} 200`]: (r) => r.status === 200,
    [`${kind} body`]: (r) => r.status === 200 && valid(r),
  });
}
