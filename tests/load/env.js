// Inputs of the k6 scenarios: `-e NAME=value` on the command line (`k6 run` also passes the
// shell's environment). A missing or bad one stops k6 before the test starts (exit 107).

export function required(name, hint) {
  const value = __ENV[name];
  if (!value) {
    throw new Error(`set ${name} (-e ${name}=${hint})`);
  }
  return value;
}

export function number(name, fallback) {
  const value = __ENV[name] === undefined || __ENV[name] === "" ? fallback : Number(__ENV[name]);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number, not ${__ENV[name]}`);
  }
  return value;
}

// BASE_URL without a trailing slash: the node, or the cluster's Service / ingress.
export const BASE_URL = (__ENV.BASE_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");

// Every latency threshold is multiplied by this: 1 holds the targets; the repository's own
// test raises it, since k6 and the node share two busy cores there.
export const LATENCY_SCALE = number("LATENCY_SCALE", 1);

// `<metric>: ["p(95)<X"]`-style threshold with X in milliseconds, scaled.
export function under(percentile, ms) {
  return `p(${percentile})<${ms * LATENCY_SCALE}`;
}

// A distinct player name per VU, as a crowd of real players sends: the node counts HLS
// listeners by address and User-Agent. The random part keeps VUs of several load
// generators apart.
export function userAgent(kind) {
  const session = Math.random().toString(36).slice(2, 10);
  return `mediaserver-k6-${kind}/${__VU}-${session}`;
}

// The listener scripts' scenario: VUS listeners (100) joining over RAMP (30s), then all of
// them for DURATION (5m). `stop` is how long the last iterations may run on (a poll, a listen).
export function listenersJoining(stop) {
  const vus = number("VUS", 100);
  return {
    executor: "ramping-vus",
    startVUs: 0,
    stages: [
      { duration: __ENV.RAMP || "30s", target: vus },
      { duration: __ENV.DURATION || "5m", target: vus },
    ],
    gracefulRampDown: stop,
    gracefulStop: stop,
  };
}
