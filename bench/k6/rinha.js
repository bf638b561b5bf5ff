// Rinha de Backend 2025 load test, written from the facts in SPEC 004 (not the public script).
//
// Scenarios (all run together):
//   payments     ramping VUs 1 -> MAX_VUS over PROFILE seconds; each VU sends one
//                POST /payments per second (fresh uuid, amount AMOUNT), 2xx = accepted.
//   chaos        the processors' delay/failure schedule, 10 steps, one every PROFILE/10 s.
//   consistency  about every 10 s: the backend's /payments-summary and both processors'
//                /admin/payments-summary for the same window ending 2 s ago; a difference in
//                totalRequests is an inconsistency.
// teardown waits for in-flight payments (until the summaries stop changing, at most GRACE s),
// compares the final summaries and records the processors' totals; handleSummary scores the
// run: profit = amounts minus fees, bonus (11 - p99 ms) x 2% when positive, -35% on any
// inconsistency, lost = accepted payments the processors do not hold.
//
// Env: PROFILE (300 or 60 seconds, default 300), MAX_VUS (600), BACKEND_URL
// (http://127.0.0.1:9999), DEFAULT_URL (http://127.0.0.1:8001), FALLBACK_URL
// (http://127.0.0.1:8002), ADMIN_TOKEN (123), AMOUNT (19.90), WINDOW (seconds of each
// consistency window, 10; 0 = since the start), GRACE (10), RESULTS (JSON output path).
import http from "k6/http";
import { check, sleep } from "k6";
import { Counter, Gauge, Trend } from "k6/metrics";

const PROFILE = parseInt(__ENV.PROFILE || "300", 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || "600", 10);
const BACKEND = (__ENV.BACKEND_URL || "http://127.0.0.1:9999").replace(/\/$/, "");
const PROCESSORS = {
  default: (__ENV.DEFAULT_URL || "http://127.0.0.1:8001").replace(/\/$/, ""),
  fallback: (__ENV.FALLBACK_URL || "http://127.0.0.1:8002").replace(/\/$/, ""),
};
const TOKEN = __ENV.ADMIN_TOKEN || "123";
const AMOUNT = parseFloat(__ENV.AMOUNT || "19.90");
const WINDOW_MS = parseFloat(__ENV.WINDOW || "10") * 1000;
const GRACE_S = parseFloat(__ENV.GRACE || "10");
const STEP_S = PROFILE / 10;
const SUCCESS = new Set([200, 201, 202, 204]);
const JSON_HEADERS = { "Content-Type": "application/json" };

// [default delay ms, default failing, fallback delay ms, fallback failing], one per step.
const SCHEDULE = [
  [0, false, 0, false],
  [1000, false, 0, false],
  [500, false, 0, false],
  [2000, true, 1000, false],
  [5000, true, 5, false],
  [0, false, 5, true],
  [100, false, 5, false],
  [50, false, 0, false],
  [103, false, 10, false],
  [2000, false, 0, false],
];

const accepted = new Counter("payments_accepted");
const rejected = new Counter("payments_rejected");
const backendDuration = new Trend("backend_req_duration", true); // successful backend requests
const backendRequests = new Counter("backend_requests_ok");
const checksDone = new Counter("consistency_checks");
const inconsistencies = new Counter("inconsistencies");
const inconsistentPayments = new Counter("inconsistent_payments"); // summed |difference|
const finalMismatch = new Gauge("final_mismatch");
const finals = {};
for (const side of ["proc", "backend"]) {
  for (const name of ["default", "fallback"]) {
    for (const field of ["requests", "amount", "fee"]) {
      if (side === "backend" && field === "fee") continue;
      finals[`${side}_${name}_${field}`] = new Gauge(`final_${side}_${name}_${field}`);
    }
  }
}

export const options = {
  discardResponseBodies: true,
  setupTimeout: "30s",
  teardownTimeout: `${GRACE_S + 30}s`,
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(99)", "max"],
  thresholds: {
    // A threshold makes k6 report this sub-metric: every successful request of the test.
    "http_req_duration{expected_response:true}": ["max>=0"],
  },
  scenarios: {
    payments: {
      executor: "ramping-vus",
      exec: "payments",
      startVUs: 1,
      stages: [{ duration: `${PROFILE}s`, target: MAX_VUS }],
      gracefulRampDown: "0s",
      gracefulStop: "10s",
    },
    chaos: {
      executor: "per-vu-iterations",
      exec: "chaos",
      vus: 1,
      iterations: 1,
      maxDuration: `${PROFILE + 10}s`,
    },
    consistency: {
      executor: "constant-arrival-rate",
      exec: "consistency",
      rate: 1,
      timeUnit: "10s",
      startTime: "10s",
      duration: `${Math.max(PROFILE - 10, 1)}s`,
      preAllocatedVUs: 2,
      maxVUs: 4,
    },
  },
};

function admin(name, method, path, body) {
  const res = http.request(
    method,
    `${PROCESSORS[name]}${path}`,
    body === undefined ? null : JSON.stringify(body),
    {
      headers: { ...JSON_HEADERS, "X-Rinha-Token": TOKEN },
      responseType: "text",
      tags: { target: "processor", name: `${method} ${path}` },
    },
  );
  if (res.status !== 200) {
    console.error(`${name} processor: ${method} ${path} -> ${res.status} ${res.body || res.error}`);
  }
  return res;
}

function configure(name, delay, failure) {
  admin(name, "PUT", "/admin/configurations/delay", { delay });
  admin(name, "PUT", "/admin/configurations/failure", { failure });
}

function windowQuery(fromMs, toMs) {
  return `from=${new Date(fromMs).toISOString()}&to=${new Date(toMs).toISOString()}`;
}

// The backend's summary ({default: {totalRequests, totalAmount}, fallback: ...}) or null.
function backendSummary(query, record = true) {
  const res = http.get(`${BACKEND}/payments-summary?${query}`, {
    responseType: "text",
    tags: { target: "backend", name: "GET /payments-summary" },
  });
  if (!SUCCESS.has(res.status)) {
    console.error(`backend summary -> ${res.status} ${res.error || ""}`);
    return null;
  }
  if (record) {
    backendDuration.add(res.timings.duration);
    backendRequests.add(1);
  }
  try {
    return JSON.parse(res.body);
  } catch (e) {
    console.error(`backend summary is not JSON: ${res.body}`);
    return null;
  }
}

// Both processors' admin summaries ({default: {...}, fallback: {...}}) or null.
function processorSummaries(query) {
  const out = {};
  for (const name of ["default", "fallback"]) {
    const res = admin(name, "GET", `/admin/payments-summary?${query}`);
    if (res.status !== 200) return null;
    out[name] = JSON.parse(res.body);
  }
  return out;
}

function difference(backend, processors) {
  let diff = 0;
  for (const name of ["default", "fallback"]) {
    const mine = (backend[name] || {}).totalRequests || 0;
    diff += Math.abs(mine - (processors[name].totalRequests || 0));
  }
  return diff;
}

export function setup() {
  for (const name of ["default", "fallback"]) {
    admin(name, "POST", "/admin/purge-payments");
    configure(name, 0, false);
  }
  const purge = http.post(`${BACKEND}/purge-payments`, null, {
    tags: { target: "backend", name: "POST /purge-payments" },
  });
  if (!SUCCESS.has(purge.status)) {
    throw new Error(`backend purge failed: ${purge.status} ${purge.error || ""}`);
  }
  return { startMs: Date.now() };
}

export function payments() {
  const began = Date.now();
  const res = http.post(
    `${BACKEND}/payments`,
    JSON.stringify({ correlationId: crypto.randomUUID(), amount: AMOUNT }),
    { headers: JSON_HEADERS, tags: { target: "backend", name: "POST /payments" } },
  );
  const ok = SUCCESS.has(res.status);
  check(res, { "payment accepted (2xx)": () => ok });
  if (ok) {
    accepted.add(1);
    backendDuration.add(res.timings.duration);
    backendRequests.add(1);
  } else {
    rejected.add(1);
  }
  const spent = (Date.now() - began) / 1000;
  if (spent < 1) sleep(1 - spent);
}

export function chaos() {
  const began = Date.now();
  SCHEDULE.forEach(([delay, failing, fbDelay, fbFailing], step) => {
    const wait = began + step * STEP_S * 1000 - Date.now();
    if (wait > 0) sleep(wait / 1000);
    configure("default", delay, failing);
    configure("fallback", fbDelay, fbFailing);
  });
}

export function consistency(data) {
  const to = Date.now() - 2000;
  const from = WINDOW_MS > 0 ? Math.max(data.startMs, to - WINDOW_MS) : data.startMs;
  const query = windowQuery(from, to);
  const mine = backendSummary(query);
  const theirs = processorSummaries(query);
  if (mine === null || theirs === null) return;
  checksDone.add(1);
  const diff = difference(mine, theirs);
  if (diff > 0) {
    inconsistencies.add(1);
    inconsistentPayments.add(diff);
    console.warn(`inconsistency in ${query}: ${diff} payment(s)`);
  }
}

export function teardown(data) {
  // Grace period: wait until neither the backend's nor the processors' totals move.
  const query = () => windowQuery(data.startMs - 1000, Date.now() + 1000);
  let last = "";
  let mine = null;
  let theirs = null;
  const deadline = Date.now() + GRACE_S * 1000;
  for (;;) {
    const q = query();
    mine = backendSummary(q, false);
    theirs = processorSummaries(q);
    const now = JSON.stringify([mine, theirs]);
    if ((now === last && mine !== null && theirs !== null) || Date.now() > deadline) break;
    last = now;
    sleep(1);
  }
  if (theirs !== null) {
    for (const name of ["default", "fallback"]) {
      finals[`proc_${name}_requests`].add(theirs[name].totalRequests || 0);
      finals[`proc_${name}_amount`].add(theirs[name].totalAmount || 0);
      finals[`proc_${name}_fee`].add(theirs[name].totalFee || 0);
    }
  }
  if (mine !== null) {
    for (const name of ["default", "fallback"]) {
      finals[`backend_${name}_requests`].add((mine[name] || {}).totalRequests || 0);
      finals[`backend_${name}_amount`].add((mine[name] || {}).totalAmount || 0);
    }
  }
  finalMismatch.add(mine !== null && theirs !== null && difference(mine, theirs) === 0 ? 0 : 1);
}

function metric(data, name, stat = "value") {
  const m = data.metrics[name];
  return m && m.values[stat] !== undefined ? m.values[stat] : 0;
}

const cents = (x) => Math.round(x * 100) / 100;
const ms = (x) => Math.round(x * 100) / 100;

export function handleSummary(data) {
  const proc = {};
  const backend = {};
  for (const name of ["default", "fallback"]) {
    proc[name] = {
      requests: metric(data, `final_proc_${name}_requests`),
      amount: cents(metric(data, `final_proc_${name}_amount`)),
      fee: cents(metric(data, `final_proc_${name}_fee`)),
    };
    backend[name] = {
      requests: metric(data, `final_backend_${name}_requests`),
      amount: cents(metric(data, `final_backend_${name}_amount`)),
    };
  }
  const acceptedCount = metric(data, "payments_accepted", "count");
  const held = proc.default.requests + proc.fallback.requests;
  const gross = proc.default.amount + proc.fallback.amount;
  const fees = proc.default.fee + proc.fallback.fee;
  const profit = gross - fees;
  const p99 = metric(data, "backend_req_duration", "p(99)");
  const bonus = Math.max(0, (11 - p99) * 0.02);
  const periodic = metric(data, "inconsistencies", "count");
  const mismatch = metric(data, "final_mismatch");
  const penalty = periodic + mismatch > 0 ? 0.35 : 0;
  const all = data.metrics["http_req_duration{expected_response:true}"];
  const result = {
    profile_s: PROFILE,
    max_vus: MAX_VUS,
    amount: AMOUNT,
    backend_url: BACKEND,
    payments: {
      sent: acceptedCount + metric(data, "payments_rejected", "count"),
      accepted: acceptedCount,
      rejected: metric(data, "payments_rejected", "count"),
      held_by_processors: held,
      lost: acceptedCount - held,
    },
    backend_latency_ms: {
      requests: metric(data, "backend_requests_ok", "count"),
      avg: ms(metric(data, "backend_req_duration", "avg")),
      p50: ms(metric(data, "backend_req_duration", "med")),
      p90: ms(metric(data, "backend_req_duration", "p(90)")),
      p99: ms(p99),
      max: ms(metric(data, "backend_req_duration", "max")),
    },
    all_successful_requests_p99_ms: all ? ms(all.values["p(99)"]) : null,
    processors: proc,
    backend_summary: backend,
    consistency: {
      checks: metric(data, "consistency_checks", "count"),
      inconsistent_checks: periodic,
      inconsistent_payments: metric(data, "inconsistent_payments", "count"),
      final_mismatch: mismatch > 0,
    },
    score: {
      gross: cents(gross),
      fees: cents(fees),
      profit: cents(profit),
      p99_ms: ms(p99),
      bonus_pct: Math.round(bonus * 10000) / 100,
      penalty_pct: penalty * 100,
      final: cents(profit * (1 + bonus) * (1 - penalty)),
    },
  };
  const text =
    `\nrinha ${PROFILE}s: ${acceptedCount} payments accepted, ${held} held by processors ` +
    `(default ${proc.default.requests}, fallback ${proc.fallback.requests}), ` +
    `lost ${result.payments.lost}\n` +
    `backend p50 ${result.backend_latency_ms.p50} ms, p99 ${result.backend_latency_ms.p99} ms; ` +
    `inconsistent checks ${periodic}/${result.consistency.checks}` +
    `${mismatch > 0 ? " + final mismatch" : ""}\n` +
    `profit ${result.score.profit} (gross ${result.score.gross} - fees ${result.score.fees}), ` +
    `bonus ${result.score.bonus_pct}%, penalty ${result.score.penalty_pct}%, ` +
    `score ${result.score.final}\n`;
  const out = { stdout: text };
  if (__ENV.RESULTS) out[__ENV.RESULTS] = JSON.stringify(result, null, 2) + "\n";
  return out;
}
