"""Benchmark: the most ``POST /commerce/orders`` one API process takes per second with wrk,
each request with its own ``Idempotency-Key`` (the claim, the fenced write, the stored
answer), next to the same route without one; source trees alternated in one sitting.

    .venv/bin/python bench/idempotent_orders.py [--db sqlite postgres] [--seconds 15]
        [--rounds 3] [--tree DIR …]

``--tree`` names source trees to compare (each one's ``src`` goes first on the API's
``PYTHONPATH``; default: this one), run in turn each round, ABAB…, each on a fresh, migrated
database (this tree's migrations: an older tree ignores what it does not know). The API runs
alone (no worker), on NATS with fsync on every write, after a 3-second warm-up with keys.
Prints a table and writes ``bench/results/idempotent_orders.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from commerce_orders import CUSTOMERS, PRODUCTS, seed  # noqa: E402
from servers import start_nats, start_postgres  # noqa: E402

WRK_LUA = """
local keys, run = %s, "%s"
local threads, n = 0, 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
request = function()
  n = n + 1
  local body = string.format(
    '{"email":"bench%%d@example.com","products":[{"name":"product-%%d","quantity":1}]}',
    n %% %d, n %% %d)
  local headers = {["Content-Type"] = "application/json"}
  if keys then headers["Idempotency-Key"] = run .. "-" .. id .. "-" .. n end
  return wrk.format("POST", "/commerce/orders", headers, body)
end
"""
PYTHONPATH = os.environ.get("PYTHONPATH", "")


def orders(base: str, seconds: int, work: Path, *, keys: bool, run: str) -> dict[str, float]:
    """wrk on the orders route, every request with a key of its own (unless not ``keys``)."""
    script = work / f"{run}.lua"
    script.write_text(WRK_LUA % ("true" if keys else "false", run, CUSTOMERS, PRODUCTS))
    figures = harness.wrk(base, seconds, script)
    assert figures["non_2xx"] == 0, figures
    return figures


def run_tree(
    tree: Path, db: str, pg: Any, nats_url: str, work: Path, seconds: int
) -> dict[str, Any]:
    """One tree's API on a fresh database: warm-up, then with keys, then without."""
    url = harness.fresh_database(db, pg, work)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), PYTHONPATH])
    with harness.api_and_worker(
        ["commerce"], work, worker=False, database_url=url, broker_url=nats_url
    ) as api:
        seed(api)
        orders(api, 3, work, keys=True, run="warmup")  # connections, caches, id blocks
        with_keys = orders(api, seconds, work, keys=True, run="keys")
        plain = orders(api, seconds, work, keys=False, run="plain")
    return {"tree": str(tree), "db": db, "with_keys": with_keys, "without_keys": plain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", nargs="+", default=["sqlite"], choices=["sqlite", "postgres"])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", nargs="+", type=Path, default=[ROOT])
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="paycore-bench-") as folder:
        base = Path(folder)
        nats = start_nats(base / "nats")
        pg = start_postgres(base / "pg") if "postgres" in args.db else None
        try:
            for db in args.db:
                for round_ in range(args.rounds):
                    for n, tree in enumerate(args.tree):
                        work = base / f"{db}-{round_}-{n}"
                        run = run_tree(tree.resolve(), db, pg, nats.url, work, args.seconds)
                        runs.append({**run, "round": round_ + 1})
                        print(
                            f"{db} round {round_ + 1} {tree}: with keys "
                            f"{run['with_keys']['requests_per_s']:.0f}/s, without "
                            f"{run['without_keys']['requests_per_s']:.0f}/s",
                            flush=True,
                        )
        finally:
            if pg is not None:
                pg.stop()
            nats.stop()
    rows = []
    for db in args.db:
        for tree in args.tree:
            mine = [r for r in runs if r["db"] == db and r["tree"] == str(tree.resolve())]
            rows.append(
                (
                    db,
                    tree.resolve().name,
                    *(
                        f"{median(r[kind]['requests_per_s'] for r in mine):.0f}"
                        for kind in ("with_keys", "without_keys")
                    ),
                    f"{median(r['with_keys']['p99_ms'] for r in mine):.1f}",
                )
            )
    harness.print_table(["db", "tree", "keys req/s", "no key req/s", "keys p99 ms"], rows)
    harness.write_results(
        ROOT / "bench" / "results" / "idempotent_orders.json", "idempotent_orders", runs
    )


if __name__ == "__main__":
    main()
