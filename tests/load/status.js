// k6 scenario for DESIGN's control API target: GET /v1/streams/{id}/status at a constant
// 500 requests a second, p99 under 20 ms. The same load as tests/bench/bench_status.py
// (open-loop: k6 starts each iteration on schedule, however slow the last one was).
//
//   k6 run -e BASE_URL=https://radio.example.com -e STREAM_ID=<uuid> tests/load/status.js
//   k6 run -e BASE_URL=... -e STREAM_ID=... -e RATE=1000 -e DURATION=5m tests/load/status.js
//
// Run it from the load generator's own address range, or with RATE_LIMIT_ENABLED=false on
// the nodes: 500 req/s from one address is far over the per-user metadata limit.
import http from "k6/http";
import { check } from "k6";

const BASE_URL = __ENV.BASE_URL || "http://127.0.0.1:8080";
const STREAM_ID = __ENV.STREAM_ID;
if (!STREAM_ID) {
  throw new Error("set STREAM_ID (-e STREAM_ID=<uuid of a public, live stream>)");
}

export const options = {
  scenarios: {
    status: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.RATE || 500),
      timeUnit: "1s",
      duration: __ENV.DURATION || "1m",
      preAllocatedVUs: 64,
      maxVUs: 256,
    },
  },
  thresholds: {
    http_req_duration: ["p(99)<20"],
    http_req_failed: ["rate<0.001"],
    dropped_iterations: ["count==0"],
  },
};

export default function () {
  const response = http.get(`${BASE_URL}/v1/streams/${STREAM_ID}/status`);
  check(response, {
    "status 200": (r) => r.status === 200,
    "reports the relay": (r) => r.json("relay_connected") !== undefined,
  });
}
