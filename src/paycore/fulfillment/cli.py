"""The fulfillment context's commands: ``paycore publish orders`` (generated L0 orders, valid and
invalid, onto the topic), and its part of ``paycore up``."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Annotated
from urllib.parse import quote

import typer

from paycore.platform.cli import console, fail, load_settings
from paycore.platform.failures import describe, redacted
from paycore.platform.settings import Settings

SHOWN = 3
"""How many of the valid orders published are shown, as links to the lookup page."""


def publish_orders(
    count: Annotated[int, typer.Option(min=1, help="How many messages.")] = 1000,
    bad_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of invalid messages (every defect kind).")
    ] = 0.0,
    rate: Annotated[
        float | None,
        typer.Option(min=1.0, help="Messages per second (default: as fast as the broker acks)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Random seed: the same seed publishes the same orders again (the service "
            "stores each order once). Default: a new seed, printed.",
        ),
    ] = None,
    topic: Annotated[str, typer.Option(help="Topic to publish to.")] = "orders",
) -> None:
    """Generate realistic L0 orders (and a share of invalid ones) onto the orders topic; print
    links to a few of the valid ones on the lookup page, and the seed that repeats them."""
    settings = load_settings()
    from rich.progress import Progress

    from paycore.fulfillment.generator import generate
    from paycore.platform.ids import uuid7
    from paycore.platform.messaging.brokers import open_bus
    from paycore.platform.messaging.bus import Envelope

    chosen = secrets.randbelow(2**31) if seed is None else seed
    kinds: dict[str, int] = {}
    shown: list[str] = []  # order_uid of the first valid orders
    published = [0]

    async def run() -> None:
        bus = await open_bus(settings.effective_broker_url, client_name="paycore-publish")
        batch: list[Envelope] = []
        step = 1 if rate else 200
        started = time.monotonic()
        try:
            await bus.ensure_topic(topic)
            with Progress(console=console) as progress:
                task = progress.add_task(f"publishing to {topic}", total=count)
                for sent, (body, kind) in enumerate(generate(count, bad_rate, chosen), start=1):
                    kinds[kind or "valid"] = kinds.get(kind or "valid", 0) + 1
                    if kind is None and len(shown) < SHOWN:
                        shown.append(json.loads(body)["order_uid"])
                    batch.append(Envelope(topic, body, id=uuid7()))
                    if len(batch) >= step or sent == count:
                        await bus.publish(batch)
                        published[0] += len(batch)
                        progress.advance(task, len(batch))
                        batch = []
                        if rate:
                            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
        finally:
            await bus.close()

    try:
        asyncio.run(run())
    except (OSError, TimeoutError) as exc:  # the broker went away once connected
        raise fail(
            f"publishing to {redacted(settings.effective_broker_url)} failed after "
            f"{published[0]} of {count} message(s) ({describe(exc)})"
        ) from None
    valid = kinds.pop("valid", 0)
    summary = f"{valid} valid"
    if kinds:
        defects = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        summary += f", {sum(kinds.values())} invalid ({defects})"
    console.print(
        f"[green]published {count} message(s)[/green] to {topic}: {summary}",
        highlight=False,
        soft_wrap=True,
    )
    if seed is None:
        console.print(
            f"seed {chosen} (--seed {chosen} publishes these orders again)", soft_wrap=True
        )
    else:
        console.print(
            f"seed {chosen} was given: these are the orders of every run with --seed {chosen}; "
            "an order stored before is not stored again (leave --seed out for new orders)",
            highlight=False,
            soft_wrap=True,
        )
    if shown:
        console.print("look one up once the worker has stored it:")
        for uid in shown:
            link = f"  {lookup_link(settings, uid)}"
            console.print(link, markup=False, highlight=False, soft_wrap=True)  # one line each


def lookup_link(settings: Settings, order_uid: str) -> str:
    """The lookup page of ``paycore up``'s API, showing the order."""
    return f"http://{settings.host}:{settings.api_port}/fulfillment/?order={quote(order_uid)}"


def register(app: typer.Typer) -> None:
    publish = typer.Typer(
        help="Publish generated test messages to the broker.", no_args_is_help=True
    )
    publish.command("orders")(publish_orders)
    app.add_typer(publish, name="publish")


def banner(settings: Settings, base: str, simulated: bool) -> list[str]:
    return [f"orders     {base}/fulfillment/   (order lookup page)"]
