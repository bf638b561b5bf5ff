// Card transactions at a constant arrival rate against POST /gateway/transactions.
// Env: BASE (API base URL), RATE (transactions/s), DURATION (e.g. "30s"),
// SECRETS (comma-separated merchant secrets, used in turn).
import http from "k6/http";
import { check } from "k6";

const RATE = parseInt(__ENV.RATE || "1000");
const SECRETS = (__ENV.SECRETS || "").split(",");
const CARDS = [
  ["4556737586899855", "123"],
  ["5105105105105100", "456"],
  ["371449635398431", "7890"],
  ["6011000990139424", "321"],
  ["6362970000457013", "111"],
  ["4556737586899856", "123"], // Luhn digit wrong: rejected
];
const AMOUNTS = [0.99, 1.0, 25.9, 310.45, 1000.0, 1000.01];
// One URL string, request parameters built once per merchant, and a fixed name tag: k6
// derives tags from every new URL string, and that work shows up in its own latency figures.
const URL = `${__ENV.BASE}/gateway/transactions`;
const PARAMS = SECRETS.map((secret) => ({
  headers: { "Content-Type": "application/json", Authorization: `Bearer ${secret}` },
  tags: { name: "POST /gateway/transactions" },
}));

export const options = {
  discardResponseBodies: true,
  scenarios: {
    transactions: {
      executor: "constant-arrival-rate",
      rate: RATE,
      timeUnit: "1s",
      duration: __ENV.DURATION || "30s",
      preAllocatedVUs: Math.max(50, Math.ceil(RATE / 10)),
      maxVUs: Math.max(200, RATE),
    },
  },
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(99)", "max"],
};

export default function () {
  const n = __ITER;
  const [number, cvv] = CARDS[n % CARDS.length];
  const body = JSON.stringify({
    amount: AMOUNTS[Math.floor(n / CARDS.length) % AMOUNTS.length],
    credit_card_number: number,
    credit_card_name: `Holder ${n % 100}`,
    credit_card_expiration_month: 1 + (n % 12),
    credit_card_expiration_year: 2031,
    credit_card_cvv: cvv,
  });
  const res = http.post(URL, body, PARAMS[n % PARAMS.length]);
  check(res, { "202 accepted": (r) => r.status === 202 });
}
