// What the constant-rate k6 scripts share: a counted scenario at RATE per second for DURATION,
// after WARMUP seconds (default 5) at the same rate that are not counted (k6 opens its
// connections and the servers fill their caches then). Only the counted scenario's figures are
// the run's; the thresholds only make k6 export them (they cannot fail).
export function constantArrivals(name, defaultRate) {
  const rate = parseInt(__ENV.RATE || String(defaultRate));
  const warmup = parseInt(__ENV.WARMUP || "5");
  const arrivals = {
    executor: "constant-arrival-rate",
    rate: rate,
    timeUnit: "1s",
    preAllocatedVUs: Math.max(50, Math.ceil(rate / 5)),
    maxVUs: Math.max(200, rate),
  };
  return {
    discardResponseBodies: true,
    scenarios: {
      ...(warmup > 0 ? { warmup: { ...arrivals, duration: `${warmup}s` } } : {}),
      [name]: { ...arrivals, duration: __ENV.DURATION || "30s", startTime: `${warmup}s` },
    },
    thresholds: {
      [`http_req_duration{scenario:${name}}`]: ["max>=0"],
      [`http_reqs{scenario:${name}}`]: ["count>=0"],
      [`checks{scenario:${name}}`]: ["rate>=0"],
    },
    summaryTrendStats: ["avg", "min", "med", "p(90)", "p(99)", "max"],
  };
}
