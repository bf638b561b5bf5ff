// Order creation at a constant arrival rate against POST /commerce/orders.
// Env: BASE (API base URL), RATE (orders/s), DURATION (e.g. "30s"), WARMUP (seconds),
// CUSTOMERS, PRODUCTS.
import http from "k6/http";
import { check } from "k6";
import { constantArrivals } from "./arrivals.js";

const CUSTOMERS = parseInt(__ENV.CUSTOMERS || "100");
const PRODUCTS = parseInt(__ENV.PRODUCTS || "20");
// One URL string and a fixed name tag: k6 derives tags from every new URL string it is
// given, and that per-request work shows up in its own latency figures (p99 +2-3 ms here).
const URL = `${__ENV.BASE}/commerce/orders`;
const PARAMS = { headers: { "Content-Type": "application/json" }, tags: { name: "POST /commerce/orders" } };

export const options = constantArrivals("orders", 500);

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
