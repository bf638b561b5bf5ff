// Order creation at a constant arrival rate against POST /commerce/orders.
// Env: BASE (API base URL), RATE (orders/s), DURATION (e.g. "30s"), WARMUP (seconds),
// CUSTOMERS, PRODUCTS.
import http from "k6/http";
import { check } from "k6";

const RATE = parseInt(__ENV.RATE || "500");
const CUSTOMERS = parseInt(__ENV.CUSTOMERS || "100");
const PRODUCTS = parseInt(__ENV.PRODUCTS || "20");
// One URL string and a fixed name tag: k6 derives tags from every new URL string it is
// given, and that per-request work shows up in its own latency figures (p99 +2-3 ms here).
const URL = `${__ENV.BASE}/commerce/orders`;
const PARAMS = { headers: { "Content-Type": "application/json" }, tags: { name: "POST /commerce/orders" } };

// The first WARMUP seconds (default 5) run at the same rate but are not counted: k6 opens its
// connections and the servers fill their caches then. Only the "orders" scenario's figures are
// the run's; the thresholds below only make k6 export them (they cannot fail).
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
    orders: { ...arrivals, duration: __ENV.DURATION || "30s", startTime: `${WARMUP}s` },
  },
  thresholds: {
    "http_req_duration{scenario:orders}": ["max>=0"],
    "http_reqs{scenario:orders}": ["count>=0"],
    "checks{scenario:orders}": ["rate>=0"],
  },
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(99)", "max"],
};

export default function () {
  const n = __ITER;
  const body = JSON.stringify({
    email: `bench${n % CUSTOMERS}@example.com`,
    products: [
      { name: `product-${n % PRODUCTS}`, quantity: 1 + (n % 3) },
      { name: `product-${(n + 7) % PRODUCTS}`, quantity: 1 },
    ],
  });
  const res = http.post(URL, body, PARAMS);
  check(res, { "201 created": (r) => r.status === 201 });
}
