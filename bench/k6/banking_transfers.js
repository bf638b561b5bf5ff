// Transfers at a constant arrival rate against POST /banking/transfers, each from one of a
// customer's own accounts to any other account.
// Env: BASE (API base URL), RATE (transfers/s), DURATION (e.g. "30s"), WARMUP (seconds),
// SEED (a JSON file: {"customers": [[secret, [account ids]], ...], "accounts": [ids]}).
import http from "k6/http";
import { check } from "k6";
import { SharedArray } from "k6/data";
import exec from "k6/execution";
import { constantArrivals } from "./arrivals.js";

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

// Each transfer's description names its scenario, so that the lag of the counted ones can be
// read from the database.
export const options = constantArrivals("transfers", 1000);

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
