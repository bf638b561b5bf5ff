"""The same commerce flow with the broker chosen by PAYCORE_BROKER_URL alone: API and analytics
worker as separate processes on PostgreSQL, over RabbitMQ, Kafka, Redis Streams and NATS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import SECRETS, Proc, paycore_env, until
from servers import Server, free_port

from paycore.schema import upgrade

BROKERS = ["rabbitmq", "kafka", "redis", "nats"]


@pytest.fixture(params=BROKERS)
def services(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> Iterator[tuple[str, str]]:
    broker: Server = request.getfixturevalue(f"{request.param}_server")
    upgrade(postgres_url)
    api_port, worker_port = free_port(), free_port()
    env = paycore_env(
        database_url=postgres_url,
        broker_url=broker.url,
        data_dir=tmp_path / "data",
        api_port=api_port,
        worker_port=worker_port,
        **SECRETS,  # every context runs: PostgreSQL needs each secret set
    )
    worker = Proc(
        ["worker"], env, tmp_path / "worker.log", f"http://127.0.0.1:{worker_port}/readyz"
    )
    api = Proc(["api"], env, tmp_path / "api.log", f"http://127.0.0.1:{api_port}/readyz")
    worker.start()
    api.start()
    try:
        yield f"http://127.0.0.1:{api_port}", request.param
    finally:
        api.stop()
        worker.stop()


def test_an_order_reaches_the_analytics_service_through_the_chosen_broker(
    services: tuple[str, str],
) -> None:
    base, broker = services
    with httpx.Client(base_url=base, timeout=10) as http:
        customer = http.post(
            "/commerce/customers", json={"email": f"{broker}@example.com", "username": broker}
        )
        assert customer.status_code == 201, customer.text
        product = http.post("/commerce/products", json={"name": "caneta", "value": 2.50})
        assert product.status_code == 201, product.text
        order = http.post(
            "/commerce/orders",
            json={
                "email": f"{broker}@example.com",
                "products": [{"name": "caneta", "quantity": 4}],
            },
        )
        assert order.status_code == 201, order.text
        order_id, customer_id = order.json()["id"], order.json()["customerId"]

        total = until(
            lambda: (r := http.get(f"/commerce/orders/{order_id}/total")).status_code == 200 and r
        )
        assert total.text == f'{{"orderId":{order_id},"total":10.00}}'
        page = http.get(f"/commerce/customers/{customer_id}/orders").json()
        assert page["summary"] == {"totalOnOrders": 10.0}
        assert page["pagination"]["totalElements"] == 1
