#!/usr/bin/env bash
# The Rinha de Backend 2025 official final script (300 s) against paycore's Rinha deployment,
# right after the peer when one is given (docs/benchmarks.md, "Rinha beside the peer"):
#
#   bench/rinha_official.sh OFFICIAL_CHECKOUT [PEER_DIR] [OUT_DIR]
#
# OFFICIAL_CHECKOUT: a checkout of the public repository villanidev/rinha-de-backend-2025 (its
# rinha-test/ is read, nothing of it enters paycore). Its rinha-final.js is saved in a scratch
# folder as rinha-final-fixed.js with its remote imports pointed at ../vendor/: the stand-ins in
# bench/k6/official/ and big.js 7.0.1 from npm. PEER_DIR: a built checkout of the peer
# (bench/rinha_peer.py), run first. Each backend is started fresh; ../shared/rinha/run-bench.sh
# --official starts the processors (fees 7 % / 10 %) and runs k6. Prints one line per backend:
# p99_ms=… inconsistencies=… lag=… profit=…; the JSON results go to OUT_DIR (default a temp dir).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OFFICIAL=$(realpath "${1:?a checkout of villanidev/rinha-de-backend-2025}")
PEER=${2:-}
OUT=${3:-$(mktemp -d /tmp/rinha-official-out.XXXXXX)}
HARNESS="$ROOT/../shared/rinha/run-bench.sh"
[[ -x "$HARNESS" ]] || { echo "the shared harness $HARNESS is missing" >&2; exit 2; }
[[ -f "$OFFICIAL/rinha-test/rinha-final.js" ]] || { echo "$OFFICIAL has no rinha-test/rinha-final.js" >&2; exit 2; }

WORK=$(mktemp -d /tmp/rinha-official.XXXXXX)
mkdir -p "$OUT" "$WORK/vendor"
cp -r "$OFFICIAL/rinha-test" "$WORK/rinha-test"
cp "$ROOT"/bench/k6/official/*.js "$WORK/vendor/"
(cd "$WORK" && npm pack --silent big.js@7.0.1 >/dev/null && tar xzf big.js-7.0.1.tgz \
  && cp package/big.mjs vendor/big.mjs)
sed -e 's#https://jslib.k6.io/k6-summary/0.1.0/index.js#../vendor/k6-summary.js#' \
    -e 's#https://jslib.k6.io/k6-utils/1.4.0/index.js#../vendor/k6-utils.js#' \
    -e 's#https://cdn.jsdelivr.net/npm/big.js@7.0.1/big.min.js#../vendor/big.mjs#' \
    "$WORK/rinha-test/rinha-final.js" >"$WORK/rinha-test/rinha-final-fixed.js"
sed -i 's#https://jslib.k6.io/httpx/0.1.0/index.js#../vendor/httpx.js#' "$WORK/rinha-test/requests.js"
if grep -q 'https://' "$WORK/rinha-test/rinha-final-fixed.js" "$WORK/rinha-test/requests.js"; then
  echo "the official script has remote imports this script does not know" >&2; exit 2
fi
export RINHA_OFFICIAL_DIR="$WORK/rinha-test"

if [[ -n "$PEER" ]]; then
  "$ROOT/../shared/rinha/peer.sh" start "$PEER" >"$OUT/peer-start.log" 2>&1
  echo -n "peer     "
  "$HARNESS" --official --out "$OUT/peer.json" 2>"$OUT/peer.log" | tail -1
  "$ROOT/../shared/rinha/peer.sh" stop "$PEER" >/dev/null 2>&1
  sleep 5
fi

"$ROOT/deploy/rinha/run-local" --fresh --report-every 30 >"$OUT/paycore-run.log" 2>&1 &
deployment=$!
trap 'kill -TERM $deployment 2>/dev/null || true; wait $deployment || true' EXIT
echo -n "paycore  "
"$HARNESS" --official --out "$OUT/paycore.json" 2>"$OUT/paycore.log" | tail -1
kill -TERM $deployment && wait $deployment || true
trap - EXIT
grep 'stopped after' "$OUT/paycore-run.log" || true
echo "results in $OUT"
