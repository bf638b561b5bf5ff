"""Benchmark: the Rinha de Backend 2025 test, run locally. Starts the two payment processors
(``paycore processors``), the Rinha deployment (``deploy/rinha/run-local``: nginx on :9999 in
front of two APIs that record their payments in a SQLite file each and call the processors
themselves, ADR 0017), runs ``bench/k6/rinha.js``
(1 -> 600 VUs, one payment per VU per second, the processors' delay/failure schedule, a
consistency check about every 10 s), stops everything and scores the run.

    .venv/bin/python bench/rinha.py [--duration 60|300] [--final-fees] [--keep [DIR]]
        [--peer DIR [--rounds 3]]

Prints a table and writes ``bench/results/rinha-<duration>s.json``. With ``--peer`` (a built
checkout of the contest's best entry, ``rinha_peer``), runs paycore and the peer alternately,
``--rounds`` times each, every backend started fresh on :9999 against the same processors and
k6 script; prints each run, then ``ratio_p99=… paycore_p99=… peer_p99=… inconsistencies=…
unprocessed=… rss_mb=…`` (medians of p99; paycore's totals and peak), and writes
``bench/results/rinha-peer-<duration>s.json``. Fees are the SPEC's
defaults (default 5%, fallback 15%) or, with ``--final-fees``, the final's (7% / 10%).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import rinha_peer  # noqa: E402
from harness import machine  # noqa: E402
from harness import run_k6 as harness_k6  # noqa: E402
from procs import Proc, paycore_env  # noqa: E402

HOST = "127.0.0.1"
DEFAULT_PORT, FALLBACK_PORT = 8001, 8002
TOKEN = "123"
T = TypeVar("T")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_for(
    url: str, exited: Any, what: str, headers: dict[str, str] | None = None, timeout: float = 90
) -> None:
    """Poll ``url`` until it answers 200; ``exited()`` says whether the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited():
            raise RuntimeError(f"{what} exited while starting")
        try:
            if httpx.get(url, headers=headers, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s ({url})")


def start_processors(work: Path, fees: tuple[float, float]) -> Proc:
    proc = Proc(
        [
            "processors",
            "--host",
            HOST,
            "--default-port",
            str(DEFAULT_PORT),
            "--fallback-port",
            str(FALLBACK_PORT),
            "--default-fee",
            str(fees[0]),
            "--fallback-fee",
            str(fees[1]),
            "--token",
            TOKEN,
        ],
        paycore_env(log_level="WARNING"),
        work / "processors.log",
    ).start()
    assert proc.popen is not None
    popen = proc.popen
    for port in (DEFAULT_PORT, FALLBACK_PORT):
        try:
            wait_for(
                f"http://{HOST}:{port}/admin/payments-summary",
                lambda: popen.poll() is not None,
                "paycore processors",
                headers={"X-Rinha-Token": TOKEN},
            )
        except RuntimeError as exc:
            proc.stop()
            raise RuntimeError(f"{exc}:\n{proc.log_tail()}") from None
    return proc


def start_backend(work: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PAYCORE_PAYMENTS_DEFAULT_URL": f"http://{HOST}:{DEFAULT_PORT}",
        "PAYCORE_PAYMENTS_FALLBACK_URL": f"http://{HOST}:{FALLBACK_PORT}",
    }
    log = open(work / "run-local.log", "ab")  # noqa: SIM115 - owned by the child process
    popen = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "deploy" / "rinha" / "run-local"),
            "--port",
            str(port),
            "--data-dir",
            str(work / "backend"),
            "--fresh",
            "--stats-file",
            str(work / "backend-stats.json"),
        ],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        wait_for(f"http://{HOST}:{port}/readyz", lambda: popen.poll() is not None, "run-local")
        deadline = time.monotonic() + 15  # run-local writes its stats once it is all up
        while not (work / "backend-stats.json").exists():
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("run-local did not report its resource use")
            time.sleep(0.1)
    except RuntimeError as exc:
        stop_backend(popen)
        tail = "\n".join((work / "run-local.log").read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{exc}:\n{tail}") from None
    return popen


def stop_backend(popen: subprocess.Popen[bytes]) -> None:
    """SIGTERM run-local, which stops its services; SIGKILL its group if it hangs."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()


def run_k6(duration: int, port: int, max_vus: int, work: Path) -> dict[str, Any]:
    results = work / "k6-results.json"
    env = {
        "PROFILE": str(duration),
        "MAX_VUS": str(max_vus),
        "BACKEND_URL": f"http://{HOST}:{port}",
        "DEFAULT_URL": f"http://{HOST}:{DEFAULT_PORT}",
        "FALLBACK_URL": f"http://{HOST}:{FALLBACK_PORT}",
        "ADMIN_TOKEN": TOKEN,
        "RESULTS": str(results),
    }
    completed = harness_k6(ROOT / "bench" / "k6" / "rinha.js", env)
    if not results.exists():
        raise RuntimeError(f"k6 exited with code {completed.returncode} and wrote no results")
    data: dict[str, Any] = json.loads(results.read_text())
    return data


def on_paycore(work: Path, port: int, load: Callable[[], T]) -> tuple[T, dict[str, Any]]:
    """``load()`` against a fresh deployment on ``port``: its result, and the deployment's peak
    RSS and CPU over it (``run-local``'s own figures)."""
    backend = start_backend(work, port)
    try:
        began = time.monotonic()
        before = json.loads((work / "backend-stats.json").read_text())
        result = load()
        wall = time.monotonic() - began
    finally:
        stop_backend(backend)
    stats = json.loads((work / "backend-stats.json").read_text())
    cpu = stats["cpu_seconds"] - before["cpu_seconds"]
    return result, {
        "peak_rss_mb": stats["peak_rss_mb"],
        "peak_rss_by_service_mb": stats["peak_rss_by_service_mb"],
        "cpu_seconds": round(cpu, 1),
        "cpu_cores_avg": round(cpu / wall, 2),
        "cpu_seconds_by_service": {
            name: round(seconds - before["cpu_seconds_by_service"].get(name, 0), 1)
            for name, seconds in stats["cpu_seconds_by_service"].items()
        },
    }


def on_peer(checkout: Path, work: Path, load: Callable[[], T]) -> tuple[T, dict[str, Any]]:
    """``load()`` against the peer (``rinha_peer``) started fresh on :9999: its result, and the
    peer's peak RSS and CPU over it (sampled from ``/proc``)."""
    urls = (f"http://{HOST}:{DEFAULT_PORT}", f"http://{HOST}:{FALLBACK_PORT}")
    with rinha_peer.peer(checkout, work / "peer", *urls) as usage:
        began = time.monotonic()
        usage.start()
        result = load()
        usage.stop()
        wall = time.monotonic() - began
    return result, {
        "peak_rss_mb": round(usage.peak_kib / 1024, 1),
        "cpu_seconds": round(usage.cpu_seconds, 1),
        "cpu_cores_avg": round(usage.cpu_seconds / wall, 2),
    }


def bench(duration: int, port: int, max_vus: int, fees: tuple[float, float], work: Path) -> Any:
    work.mkdir(parents=True, exist_ok=True)
    processors = start_processors(work, fees)
    try:
        k6, backend = on_paycore(work, port, lambda: run_k6(duration, port, max_vus, work))
    finally:
        processors.stop()
    return report(
        "Rinha de Backend 2025, local (bench/k6/rinha.js)",
        "nginx -> 2 x paycore api (accept=local: each records its payments in a SQLite WAL file "
        "of its own, fsync on every commit, and dispatches them)",
        duration,
        fees,
        k6,
        backend,
    )


def bench_peer(
    duration: int, max_vus: int, fees: tuple[float, float], work: Path, checkout: Path
) -> Any:
    """The same run against the peer (``rinha_peer``) on :9999."""
    work.mkdir(parents=True, exist_ok=True)
    processors = start_processors(work, fees)
    try:
        k6, backend = on_peer(checkout, work, lambda: run_k6(duration, 9999, max_vus, work))
    finally:
        processors.stop()
    return report(
        "Rinha de Backend 2025, local (bench/k6/rinha.js): the peer",
        "nginx -> 2 x node (ricassiocosta/backend-para-rinha-2025-node 2b51393), Redis over a "
        "unix socket",
        duration,
        fees,
        k6,
        backend,
    )


def report(
    benchmark: str,
    topology: str,
    duration: int,
    fees: tuple[float, float],
    k6: dict[str, Any],
    backend: dict[str, Any],
) -> dict[str, Any]:
    """A run's results as written to the JSON file."""
    return {
        "benchmark": benchmark,
        "topology": f"{topology}; all on this machine, no container limits",
        "duration_s": duration,
        "fees": {"default": fees[0], "fallback": fees[1]},
        "machine": machine(),
        "k6": k6,
        "backend": backend,
    }


def beside_the_peer(
    rounds: int, duration: int, max_vus: int, fees: tuple[float, float], work: Path, peer: Path
) -> dict[str, Any]:
    """``rounds`` of paycore then the peer, each started fresh; both sides' figures per run."""
    runs: dict[str, list[dict[str, Any]]] = {"paycore": [], "peer": []}
    for n in range(1, rounds + 1):
        for side in ("paycore", "peer"):
            run_dir = work / f"{side}-{n}"
            if side == "paycore":
                result = bench(duration, 9999, max_vus, fees, run_dir)
            else:
                result = bench_peer(duration, max_vus, fees, run_dir, peer)
            runs[side].append(result)
            print(f"  {side:<8} #{n}  {summary(result)}", flush=True)
    p99 = {side: statistics.median(r["k6"]["backend_latency_ms"]["p99"] for r in runs[side])
           for side in runs}  # fmt: skip
    return {"rounds": rounds, "median_p99_ms": p99, "runs": runs}


def summary(result: dict[str, Any]) -> str:
    k6, backend = result["k6"], result["backend"]
    return (
        f"p99={k6['backend_latency_ms']['p99']} ms "
        f"inconsistencies={k6['consistency']['inconsistent_checks']} "
        f"unprocessed={k6['payments']['lost']} profit={k6['score']['profit']:.2f} "
        f"rss_mb={backend['peak_rss_mb']} cpu_s={backend['cpu_seconds']}"
    )


def table(result: dict[str, Any]) -> str:
    k6, backend = result["k6"], result["backend"]
    pay, lat, score = k6["payments"], k6["backend_latency_ms"], k6["score"]
    proc, cons = k6["processors"], k6["consistency"]
    rows = [
        ("payments sent / accepted", f"{pay['sent']} / {pay['accepted']}"),
        ("backend requests (2xx)", lat["requests"]),
        ("backend latency p50 / p99", f"{lat['p50']} / {lat['p99']} ms"),
        (
            "default: payments, amount, fee",
            f"{proc['default']['requests']}, {proc['default']['amount']:.2f}, "
            f"{proc['default']['fee']:.2f}",
        ),
        (
            "fallback: payments, amount, fee",
            f"{proc['fallback']['requests']}, {proc['fallback']['amount']:.2f}, "
            f"{proc['fallback']['fee']:.2f}",
        ),
        ("fees", f"{score['fees']:.2f}"),
        ("profit", f"{score['profit']:.2f}"),
        (
            "inconsistent checks",
            f"{cons['inconsistent_checks']} of {cons['checks']}"
            + (" + final mismatch" if cons["final_mismatch"] else ""),
        ),
        ("payments lost", pay["lost"]),
        ("p99 bonus", f"{score['bonus_pct']}%"),
        ("inconsistency penalty", f"{score['penalty_pct']}%"),
        ("score", f"{score['final']:.2f}"),
        (
            "backend peak RSS (summed)",
            f"{backend['peak_rss_mb']} MB ("
            + ", ".join(f"{k} {v}" for k, v in backend["peak_rss_by_service_mb"].items())
            + ")",
        ),
        (
            "backend CPU",
            f"{backend['cpu_seconds']} s ({backend['cpu_cores_avg']} cores avg; "
            + ", ".join(f"{k} {v}" for k, v in backend["cpu_seconds_by_service"].items())
            + ")",
        ),
        (
            "machine",
            f"{result['machine']['cores']} x {result['machine']['cpu']}, "
            f"load {result['machine']['load_avg_1m_at_start']} at start",
        ),
        ("date", result["machine"]["date"]),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=int, default=60, help="test profile in seconds: 60 or 300 (default 60)"
    )
    parser.add_argument("--max-vus", type=int, default=600, help="VUs at the end (default 600)")
    parser.add_argument("--port", type=int, default=9999, help="load balancer port (9999)")
    parser.add_argument(
        "--final-fees", action="store_true", help="the final's fees: default 7%%, fallback 10%%"
    )
    parser.add_argument(
        "--keep",
        nargs="?",
        const="",
        metavar="DIR",
        help="keep logs and data (in DIR, or in a temp dir that is printed)",
    )
    parser.add_argument("--out", type=Path, help="default bench/results/rinha-<duration>s.json")
    parser.add_argument(
        "--peer",
        type=Path,
        metavar="DIR",
        help="also run the peer from its built checkout DIR, alternating with paycore",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --peer: pairs of runs (3)")
    args = parser.parse_args()
    if args.duration < 20:
        parser.error("--duration must be at least 20 seconds")
    fees = (0.07, 0.10) if args.final_fees else (0.05, 0.15)
    busy = [p for p in (DEFAULT_PORT, FALLBACK_PORT, args.port) if not port_free(p)]
    if busy:
        sys.exit(f"rinha: port(s) {busy} already in use on {HOST}; stop what holds them")

    if args.keep:
        work = Path(args.keep).resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="paycore-rinha-bench-"))
    if args.peer is not None:
        if args.port != 9999:
            parser.error("--peer runs both on :9999 (the peer's nginx listens there)")
        try:
            compared = beside_the_peer(
                args.rounds, args.duration, args.max_vus, fees, work, args.peer.resolve()
            )
        finally:
            if args.keep is None:
                shutil.rmtree(work, ignore_errors=True)
        out = args.out or ROOT / "bench" / "results" / f"rinha-peer-{args.duration}s.json"
        out.write_text(json.dumps(compared, indent=2) + "\n")
        mine, theirs = compared["median_p99_ms"]["paycore"], compared["median_p99_ms"]["peer"]
        ours = compared["runs"]["paycore"]
        wrong = sum(r["k6"]["consistency"]["inconsistent_checks"] for r in ours)
        lost = sum(r["k6"]["payments"]["lost"] for r in ours)
        rss = max(r["backend"]["peak_rss_mb"] for r in ours)
        print(
            f"ratio_p99={mine / theirs:.2f} paycore_p99={mine} peer_p99={theirs} "
            f"inconsistencies={wrong} unprocessed={lost} rss_mb={rss}"
        )
        print(f"written to {out}")
        return
    try:
        result = bench(args.duration, args.port, args.max_vus, fees, work)
    except RuntimeError as exc:
        if args.keep is None:
            args.keep = str(work)  # keep the logs of a failed run
        sys.exit(f"rinha: {exc}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs and data kept in {work}")
    out = args.out or ROOT / "bench" / "results" / f"rinha-{args.duration}s.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nRinha {args.duration}s, fees {fees[0]:.0%} / {fees[1]:.0%}\n{table(result)}")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
