"""The memory (RSS) of each paycore process as the deployments run them: one context per
process, ``paycore api --context X`` and ``paycore worker --context X``, on PostgreSQL and
NATS JetStream (Redis for the commerce analytics worker), each with only the secrets its
context needs. The figures size the containers of ``deploy/compose`` and ``deploy/k8s``
(``docs/deploy.md``).

For every context, its worker and its API are started alone and measured:

- *ready*: RSS a few seconds after ``/readyz`` first answers 200 (idle);
- *peak*: the kernel's high-water mark (``VmHWM``) after ``--seconds`` of traffic from
  ``--clients`` concurrent HTTP clients at up to ``--rate`` requests/s on the context's hot
  routes (orders, card transactions, payments, transfers, order lookups), then a few seconds
  for the worker to catch up;
- ``paycore migrate`` on an empty database: its peak RSS (``ru_maxrss``).

Usage: ``.venv/bin/python bench/process_rss.py [--seconds 20] [--clients 16] [--rate 250]``.
Writes ``bench/results/process_rss.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

from harness import machine, rss_kib, scraped  # noqa: E402
from procs import SECRETS, Proc, paycore_env, paycore_process  # noqa: E402
from servers import (  # noqa: E402
    Server,
    create_database,
    free_port,
    start_nats,
    start_postgres,
    start_redis,
)

from paycore.fulfillment.generator import valid_order  # noqa: E402

ADMIN_TOKEN = "rss-admin-token"
NEEDS = {  # the secrets each context's processes take (as deploy/ gives them)
    "banking": ("card_keys", "secret_pepper", "service_token"),
    "commerce": ("service_token",),
    "fulfillment": (),
    "gateway": ("card_keys", "secret_pepper"),
    "payments": (),
}
Load = Callable[[httpx.AsyncClient, int], Awaitable[None]]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


async def setup_commerce(http: httpx.AsyncClient) -> Load:
    email = f"rss-{uuid.uuid4().hex[:8]}@example.com"
    (
        await http.post("/commerce/customers", json={"email": email, "username": "rss"})
    ).raise_for_status()
    product = f"pencil-{uuid.uuid4().hex[:6]}"
    (
        await http.post("/commerce/products", json={"name": product, "value": 1.10})
    ).raise_for_status()

    async def one(http: httpx.AsyncClient, n: int) -> None:
        if n % 20 == 0:  # the analytics service's internal API, through the order API
            (await http.get("/commerce/analytics")).raise_for_status()
            return
        order = {"email": email, "products": [{"name": product, "quantity": 1 + n % 3}]}
        (await http.post("/commerce/orders", json=order)).raise_for_status()

    return one


async def setup_fulfillment(http: httpx.AsyncClient) -> Load:
    rng = random.Random(7)
    uids: list[str] = []

    async def one(http: httpx.AsyncClient, n: int) -> None:
        if n % 2 and uids:
            await http.get(f"/fulfillment/orders/{uids[n % len(uids)]}")
            return
        order = valid_order(rng, n)
        uids.append(order["order_uid"])
        answer = await http.post(
            "/fulfillment/orders",
            content=orjson.dumps(order),
            headers={"Content-Type": "application/json"},
        )
        answer.raise_for_status()

    return one


async def setup_payments(http: httpx.AsyncClient) -> Load:
    async def one(http: httpx.AsyncClient, n: int) -> None:
        if n % 50 == 0:
            (await http.get("/payments/payments-summary")).raise_for_status()
            return
        body = {"correlationId": str(uuid.uuid4()), "amount": 19.90}
        (await http.post("/payments/payments", json=body)).raise_for_status()

    return one


async def setup_gateway(http: httpx.AsyncClient) -> Load:
    from gateway_kit import transaction

    answer = await http.post(
        "/gateway/accounts",
        json={"name": "rss merchant", "webhook_url": None},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    answer.raise_for_status()
    headers = {"Authorization": f"Bearer {answer.json()['secret']}"}

    async def one(http: httpx.AsyncClient, n: int) -> None:
        if n % 20 == 0:
            (await http.get("/gateway/stats", headers=headers)).raise_for_status()
            return
        answer = await http.post("/gateway/transactions", json=transaction(n), headers=headers)
        if answer.status_code >= 500:
            answer.raise_for_status()

    return one


async def setup_banking(http: httpx.AsyncClient) -> Load:
    from banking_kit import as_customer, body, cpf

    customers: list[tuple[str, str]] = []
    for n in range(20):
        made = await http.post(
            "/banking/customers",
            content=body(name=f"Customer {n}", cpf=cpf(n + 1000)),
            headers={"Content-Type": "application/json"},
        )
        made.raise_for_status()
        secret = made.json()["secret"]
        opened = await http.post("/banking/accounts", headers=as_customer(secret))
        opened.raise_for_status()
        account = opened.json()["id"]
        deposit = await http.post(
            f"/banking/accounts/{account}/deposits",
            content=body(amount=10_000_000),
            headers=as_customer(secret),
        )
        deposit.raise_for_status()
        customers.append((secret, account))

    async def one(http: httpx.AsyncClient, n: int) -> None:
        secret, source = customers[n % len(customers)]
        target = customers[(n * 7 + 1) % len(customers)][1]
        if n % 20 == 0:
            balance = await http.get(
                f"/banking/accounts/{source}/balance", headers=as_customer(secret)
            )
            balance.raise_for_status()
            return
        transfer = {"from_account_id": source, "to_account_id": target, "amount": 1}
        answer = await http.post(
            "/banking/transfers", content=orjson.dumps(transfer), headers=as_customer(secret)
        )
        answer.raise_for_status()

    return one


SETUPS: dict[str, Callable[[httpx.AsyncClient], Awaitable[Load]]] = {
    "banking": setup_banking,
    "commerce": setup_commerce,
    "fulfillment": setup_fulfillment,
    "gateway": setup_gateway,
    "payments": setup_payments,
}


async def drive(
    base: str, context: str, seconds: float, clients: int, rate: float
) -> dict[str, Any]:
    """``clients`` closed-loop clients on the context's routes for ``seconds``, together at
    most ``rate`` requests/s; how many requests were answered and failed."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        one = await SETUPS[context](http)
        counter = itertools.count()
        done, failed = 0, 0
        started = time.monotonic()
        deadline = started + seconds

        async def client() -> None:
            nonlocal done, failed
            while (now := time.monotonic()) < deadline:
                n = next(counter)
                if (wait := started + n / rate - now) > 0:
                    await asyncio.sleep(wait)
                try:
                    await one(http, n)
                    done += 1
                except httpx.HTTPError:
                    failed += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        return {"requests": done, "failed": failed, "per_s": round(done / seconds, 1)}


def migrate_peak(env: dict[str, str]) -> float:
    """``paycore migrate`` on an empty database: its peak RSS in MiB."""
    script = (
        "import resource, sys\n"
        "from paycore.__main__ import main\n"
        "sys.argv = ['paycore', 'migrate']\n"
        "try:\n    main()\n"
        "finally:\n"
        "    print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    line = next(ln for ln in done.stderr.splitlines() if ln.startswith("maxrss"))
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return mib(int(line.split()[1]))


def consumed(worker_port: int, topic: str) -> float:
    """Messages of ``topic`` the worker has handled, from its ``/metrics``."""
    found = scraped(worker_port, "paycore_messages_consumed_total")
    return sum(count for labels, count in found if labels.get("topic") == topic)


def warm_cache(
    procs: dict[str, Proc], orders: int, env: dict[str, str], worker_port: int
) -> dict[str, Any]:
    """Fulfillment's API keeps up to PAYCORE_FULFILLMENT_CACHE_SIZE orders in memory, warmed at
    start: ``orders`` more are published and stored, then the API is restarted and measured."""
    before = consumed(worker_port, "orders")
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "paycore",
            "publish",
            "orders",
            "--count",
            str(orders),
            "--bad-rate",
            "0",
        ],
        env=env,
        capture_output=True,
        check=True,
    )
    assert published.returncode == 0
    deadline = time.monotonic() + 600
    while consumed(worker_port, "orders") < before + orders and time.monotonic() < deadline:
        time.sleep(1)
    api = procs["api"]
    api.stop()
    api.start()
    time.sleep(3)
    assert api.popen is not None
    return {
        "api_with_cache": {
            "orders_in_database": orders + int(before),
            "cache_size": env.get("PAYCORE_FULFILLMENT_CACHE_SIZE", "100000"),
            "ready_mib": mib(rss_kib(api.popen.pid)),
            "peak_mib": mib(rss_kib(api.popen.pid, "VmHWM")),
        }
    }


def measure(
    context: str,
    servers: dict[str, Server],
    processors: tuple[int, int],
    work: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    url = create_database(servers["postgres"], f"rss_{context}")
    settings: dict[str, Any] = {
        "database_url": url,
        "broker_url": servers["nats"].url,
        "admin_token": ADMIN_TOKEN,
        "log_level": "WARNING",
        "payments_default_url": f"http://127.0.0.1:{processors[0]}",
        "payments_fallback_url": f"http://127.0.0.1:{processors[1]}",
        "fulfillment_cache_size": args.fulfillment_cache,
        **{name: SECRETS[name] for name in NEEDS[context]},
    }
    migrate = migrate_peak(paycore_env(**settings))
    worker_port, api_port = free_port(), free_port()
    worker_env = dict(settings)
    if context == "commerce":  # the analytics service keeps its rankings in Redis when it scales
        worker_env["redis_url"] = servers["redis"].url
    settings["commerce_analytics_url"] = f"http://127.0.0.1:{worker_port}"
    worker = paycore_process("worker", [context], paycore_env(**worker_env), work, worker_port)
    api = paycore_process("api", [context], paycore_env(**settings), work, api_port)
    procs: dict[str, Proc] = {"worker": worker.start(), "api": api.start()}
    try:
        time.sleep(3)
        ready = {role: mib(rss_kib(p.popen.pid)) for role, p in procs.items() if p.popen}
        cpu = {role: cpu_seconds(p.popen.pid) for role, p in procs.items() if p.popen}
        load = asyncio.run(
            drive(f"http://127.0.0.1:{api_port}", context, args.seconds, args.clients, args.rate)
        )
        cores = {
            role: round((cpu_seconds(p.popen.pid) - cpu[role]) / args.seconds, 2)
            for role, p in procs.items()
            if p.popen
        }
        time.sleep(3)
        after = {role: mib(rss_kib(p.popen.pid)) for role, p in procs.items() if p.popen}
        peak = {role: mib(rss_kib(p.popen.pid, "VmHWM")) for role, p in procs.items() if p.popen}
        cached = {}
        if context == "fulfillment" and args.fulfillment_orders:
            cached = warm_cache(
                procs, args.fulfillment_orders, paycore_env(**settings), worker_port
            )
    finally:
        for proc in reversed(procs.values()):
            proc.stop()
    return {
        "migrate_peak_mib": migrate,
        "load": load,
        **cached,
        **{
            role: {
                "ready_mib": ready[role],
                "after_load_mib": after[role],
                "peak_mib": peak[role],
                "cores_under_load": cores[role],
            }
            for role in procs
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=250.0)
    parser.add_argument("--context", action="append", choices=sorted(SETUPS))
    parser.add_argument(
        "--fulfillment-cache",
        type=int,
        default=20_000,
        help="PAYCORE_FULFILLMENT_CACHE_SIZE, as deploy/ sets it",
    )
    parser.add_argument(
        "--fulfillment-orders",
        type=int,
        default=25_000,
        help="orders stored before fulfillment's API is measured again with its cache warm",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "process_rss.json")
    args = parser.parse_args()
    chosen = args.context or sorted(SETUPS)
    results: dict[str, Any] = {"machine": machine(), "settings": vars(args) | {"out": None}}
    with tempfile.TemporaryDirectory(prefix="paycore-rss-") as tmp:
        base = Path(tmp)
        servers = {
            "postgres": start_postgres(base),
            "nats": start_nats(base),
            "redis": start_redis(base),
        }
        default, fallback = free_port(), free_port()
        simulators = Proc(
            ["processors", "--default-port", str(default), "--fallback-port", str(fallback)],
            paycore_env(),
            base / "processors.log",
        ).start()
        time.sleep(2)
        try:
            results["contexts"] = {
                name: measure(name, servers, (default, fallback), base, args) for name in chosen
            }
        finally:
            simulators.stop()
            for server in servers.values():
                server.stop()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'process':<22}{'ready':>8}{'after':>8}{'peak':>8}  MiB   load")
    for name, got in results["contexts"].items():
        for role in ("api", "worker"):
            figures = got[role]
            print(
                f"{name + ' ' + role:<22}{figures['ready_mib']:>8}{figures['after_load_mib']:>8}"
                f"{figures['peak_mib']:>8}  {figures['cores_under_load']:>5} cores  {got['load']}"
            )
        print(f"{name + ' migrate':<22}{'':>8}{'':>8}{got['migrate_peak_mib']:>8}")
        if cached := got.get("api_with_cache"):
            print(
                f"{name + ' api, cache':<22}{cached['ready_mib']:>8}{'':>8}"
                f"{cached['peak_mib']:>8}  {cached}"
            )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
