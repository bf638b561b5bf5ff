"""`paycore publish orders` in this process, onto the in-memory broker: what was published is
shown (links to valid orders on the lookup page), with the seed that repeats it; a seed given
again says that its orders are the same as before."""

from __future__ import annotations

import json
import re

import pytest
from memory_bus import MemoryBus
from unit_fixtures import Cli

from paycore.fulfillment.generator import generate
from paycore.platform.messaging import brokers


@pytest.fixture
def memory_broker(monkeypatch: pytest.MonkeyPatch) -> MemoryBus:
    bus = MemoryBus()
    monkeypatch.setattr(brokers, "create_bus", lambda url, **_options: bus)
    return bus


def test_published_orders_are_shown_as_links_with_the_seed_that_repeats_them(
    memory_broker: MemoryBus, cli: Cli
) -> None:
    result = cli.run("publish", "orders", "--count", "20", "--bad-rate", "0.2")
    assert result.exit_code == 0, result.stderr
    seed = int(
        re.findall(r"seed (\d+) \(--seed \1 publishes these orders again\)", result.stderr)[0]
    )
    bodies = [e.body for e in memory_broker.published]
    assert bodies == [body for body, _ in generate(20, 0.2, seed)]
    orders = generate(20, 0.2, seed)
    valid = [json.loads(body)["order_uid"] for body, kind in orders if not kind]
    invalid = f", {20 - len(valid)} invalid (" if len(valid) < 20 else "\n"  # none: not said
    assert f"published 20 message(s) to orders: {len(valid)} valid{invalid}" in result.stderr
    links = re.findall(r"http://\S+", result.stderr)
    assert links == [f"http://127.0.0.1:8000/fulfillment/?order={uid}" for uid in valid[:3]]


def test_a_new_run_publishes_new_orders_and_a_given_seed_says_it_repeats(
    memory_broker: MemoryBus, cli: Cli
) -> None:
    def uids() -> set[str]:
        return {json.loads(e.body)["order_uid"] for e in memory_broker.published}

    assert cli.run("publish", "orders", "--count", "5").exit_code == 0
    first = uids()
    assert cli.run("publish", "orders", "--count", "5").exit_code == 0
    assert len(uids()) == 10  # no order of the first run again

    repeated = cli.run("publish", "orders", "--count", "5", "--seed", "7")
    again = cli.run("publish", "orders", "--count", "5", "--seed", "7")
    assert repeated.exit_code == again.exit_code == 0
    assert len(uids()) == 15
    assert first < uids()
    assert "seed 7 was given: these are the orders of every run with --seed 7" in again.stderr
    assert "an order stored before is not stored again" in again.stderr
