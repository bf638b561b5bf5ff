// Stand-in for jslib's k6-summary 0.1.0 textSummary: each metric's values, one line each.
export function textSummary(data) {
  const lines = Object.entries(data.metrics).map(
    ([name, metric]) => `${name}: ${JSON.stringify(metric.values)}`,
  );
  return lines.join("\n") + "\n";
}
