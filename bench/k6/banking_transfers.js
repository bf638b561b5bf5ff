// Transfers at a constant arrival rate against POST /banking/transfers, each from one of a
// customer's own accounts to any other account.
// Env: BASE (API base URL), RATE (transfers/s), DURATION (e.g. "30s"), WARMUP (seconds),
// SEED (a JSON file: {"customers": [[secret, [account ids]], ...], "accounts": [ids]}).
import http from "k6/http";
import { check } from "k6";
import exec from "k6/execution";
import { SharedArray } from "k6/data";

const RATE = parseInt(__ENV.RATE || "1000");
// One copy of the seed for all VUs (each VU would otherwise parse its own).
const CUSTOMERS = new SharedArray("customers", () => JSON.parse(open(__ENV.SEED)).customers);
const ACCOUNTS = new SharedArray("accounts", () => JSON.parse(open(__ENV.SEED)).accounts);
// One URL string and a fixed name tag: k6 derives tags from every new URL string it is
// given, and that per-request work shows up in its own latency figures.
const URL = `${__ENV.BASE}/banking/transfers`;
const PARAMS = CUSTOMERS.map(([secret]) => ({
  headers: { "Content-Type": "application/json", Authorization: `Bearer ${secret}` },
  tags: { name: "POST /banking/transfers" },
}));

// The first WARMUP seconds (default 5) run at the same rate but are not counted: k6 opens its
// connections and the servers fill their caches then. Each transfer's description names its
// scenario, so that the lag of the counted ones can be read from the database. The thresholds
// only make k6 export the "transfers" scenario's figures (they cannot fail).
const WARMUP = parseInt(__ENV.WARMUP || "5");
const arrivals = {
  executor: "constant-arrival-rate",
  rate: RATE,
  timeUnit: "1s",
  preAllocatedVUs: Math.max(50, Math.ceil(RATE / 5)),
  maxVUs: Math.max(200, RATE),
};

export const options = {
  discardResponseBodies: true,
  scenarios: {
    ...(WARMUP > 0 ? { warmup: { ...arrivals, duration: `${WARMUP}s` } } : {}),
    transfers: { ...arrivals, duration: __ENV.DURATION || "30s", startTime: `${WARMUP}s` },
  },
  thresholds: {
    "http_req_duration{scenario:transfers}": ["max>=0"],
    "checks{scenario:transfers}": ["rate>=0"],
  },
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(99)", "max"],
};

export default function () {
  const n = exec.scenario.iterationInTest;
  const c = n % CUSTOMERS.length;
  const own = CUSTOMERS[c][1];
  const from = own[Math.floor(n / CUSTOMERS.length) % own.length];
  let to = ACCOUNTS[(n * 7919) % ACCOUNTS.length];
  if (to === from) to = ACCOUNTS[(n * 7919 + 1) % ACCOUNTS.length];
  const body = JSON.stringify({
    from_account_id: from,
    to_account_id: to,
    amount: 1 + (n % 9), // whole reais: a JSON integer, exact
    description: exec.scenario.name,
  });
  const res = http.post(URL, body, PARAMS[c]);
  check(res, { "202 accepted": (r) => r.status === 202 });
}
