"""paycore's Rinha deployment and the peer, alternately, under the shared harness's own script
(``../shared/rinha/run-bench.sh --own``: ``rinha-like.js`` and its mock processors, fees 7 % /
10 %), each backend started fresh on :9999 before the harness starts its processors and k6:

    .venv/bin/python bench/rinha_harness.py --peer DIR [--rounds 3] [--duration 60] [--out F]

``bench/rinha.py --peer`` does the same with paycore's own script (``bench/k6/rinha.js``) and
simulators; this one measures with the script the issue's aim is stated in. Per run: the
harness's p99, inconsistencies, lag (payments asked for and not held by the processors at the
end) and profit, with the backend's peak summed RSS and CPU-seconds over the harness's run
(paycore's from ``run-local``'s own figures, the peer's sampled from ``/proc``). Prints each
run and ``ratio_p99=… paycore_p99=… peer_p99=… inconsistencies=… unprocessed=… rss_mb=…``
(medians of p99; paycore's sums and peak); writes ``bench/results/rinha-harness-<duration>s.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import rinha
from harness import machine

HARNESS = rinha.ROOT.parent / "shared" / "rinha" / "run-bench.sh"


def run_harness(duration: int, out: Path) -> dict[str, Any]:
    """The harness against whatever listens on :9999; its results (``rinha-like.js``'s)."""
    with (out.parent / "harness.log").open("ab") as log:
        subprocess.run(
            [str(HARNESS), "--own", "--duration", str(duration), "--out", str(out)],
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if not out.exists():
        raise RuntimeError(f"the harness wrote no results; see {out.parent / 'harness.log'}")
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def paycore_run(duration: int, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    result, backend = rinha.on_paycore(
        work, 9999, lambda: run_harness(duration, work / "results.json")
    )
    return {"harness": result, **backend}


def peer_run(duration: int, work: Path, checkout: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    result, backend = rinha.on_peer(
        checkout, work, lambda: run_harness(duration, work / "results.json")
    )
    return {"harness": result, **backend}


def line(run: dict[str, Any]) -> str:
    h = run["harness"]
    return (
        f"p99={h['p99_ms']} ms inconsistencies={h['inconsistencies']} unprocessed={h['lag']} "
        f"profit={h['profit']} rss_mb={run['peak_rss_mb']} cpu_s={run['cpu_seconds']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peer", type=Path, required=True, metavar="DIR", help="built checkout")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs (3)")
    parser.add_argument("--duration", type=int, default=60, help="the harness's --duration (60)")
    parser.add_argument("--out", type=Path, help="default bench/results/rinha-harness-<d>s.json")
    args = parser.parse_args()
    if not HARNESS.exists():
        sys.exit(f"rinha_harness: the shared harness {HARNESS} is missing")
    busy = [p for p in (rinha.DEFAULT_PORT, rinha.FALLBACK_PORT, 9999) if not rinha.port_free(p)]
    if busy:
        sys.exit(f"rinha_harness: port(s) {busy} already in use; stop what holds them")

    work = Path(tempfile.mkdtemp(prefix="paycore-rinha-harness-"))
    runs: dict[str, list[dict[str, Any]]] = {"paycore": [], "peer": []}
    try:
        for n in range(1, args.rounds + 1):
            for side in ("paycore", "peer"):
                where = work / f"{side}-{n}"
                if side == "paycore":
                    run = paycore_run(args.duration, where)
                else:
                    run = peer_run(args.duration, where, args.peer.resolve())
                run["finished"] = time.strftime("%H:%M:%S UTC", time.gmtime())
                runs[side].append(run)
                print(f"  {side:<8} #{n}  {line(run)}", flush=True)
    except RuntimeError as exc:
        sys.exit(f"rinha_harness: {exc} (logs kept in {work})")
    shutil.rmtree(work, ignore_errors=True)

    p99 = {s: statistics.median(float(r["harness"]["p99_ms"]) for r in runs[s]) for s in runs}
    ours = runs["paycore"]
    result = {
        "benchmark": f"../shared/rinha/run-bench.sh --own --duration {args.duration}",
        "machine": machine(),
        "rounds": args.rounds,
        "median_p99_ms": p99,
        "runs": runs,
    }
    out = args.out or rinha.ROOT / "bench" / "results" / f"rinha-harness-{args.duration}s.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"ratio_p99={p99['paycore'] / p99['peer']:.2f} paycore_p99={p99['paycore']} "
        f"peer_p99={p99['peer']} "
        f"inconsistencies={sum(r['harness']['inconsistencies'] for r in ours)} "
        f"unprocessed={sum(r['harness']['lag'] for r in ours)} "
        f"rss_mb={max(r['peak_rss_mb'] for r in ours)}"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
