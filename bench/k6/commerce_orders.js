// Order creation at a constant arrival rate against POST /commerce/orders.
// Env: BASE (API base URL), RATE (orders/s), DURATION (e.g. "30s"), CUSTOMERS, PRODUCTS.
import http from "k6/http";
import { check } from "k6";

const RATE = parseInt(__ENV.RATE || "500");
const CUSTOMERS = parseInt(__ENV.CUSTOMERS || "100");
const PRODUCTS = parseInt(__ENV.PRODUCTS || "20");
// One URL string and a fixed name tag: k6 derives tags from every new URL string it is
// given, and that per-request work shows up in its own latency figures (p99 +2-3 ms here).
const URL = `${__ENV.BASE}/commerce/orders`;
const PARAMS = { headers: { "Content-Type": "application/json" }, tags: { name: "POST /commerce/orders" } };

export const options = {
  discardResponseBodies: true,
  scenarios: {
    orders: {
      executor: "constant-arrival-rate",
      rate: RATE,
      timeUnit: "1s",
      duration: __ENV.DURATION || "30s",
      preAllocatedVUs: Math.max(50, Math.ceil(RATE / 5)),
      maxVUs: Math.max(200, RATE),
    },
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
