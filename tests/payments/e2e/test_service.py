"""The payments service as the Rinha test meets it: two `paycore api --context payments --root`
instances and one `paycore worker --context payments` on NATS and a shared SQLite file, with
`paycore processors`; driven over HTTP, its summary compared with the processors' own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from procs import until
from rinha import Deployment, Processors, backend_summary, deployment

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def service(tmp_path: Path, processors: Processors) -> Iterator[Deployment]:
    processors.reset()
    with deployment(tmp_path, processors) as running:
        yield running


JSON_TYPE = {"content-type": "application/json"}


def post(base: str, correlation_id: str, amount: str = "19.90") -> int:
    body = f'{{"correlationId":"{correlation_id}","amount":{amount}}}'
    return httpx.post(base + "/payments", content=body, headers=JSON_TYPE, timeout=10).status_code


def test_payments_through_both_instances_match_the_processors_summary(
    service: Deployment, processors: Processors
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(400)]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda i: post(service.base(i % 2), ids[i]), range(len(ids))))
    assert set(statuses) == {202}
    assert post(service.base(1), ids[0]) == 202  # the same payment again: taken, counted once

    expected = {"default": (400, Decimal("7960.00")), "fallback": (0, Decimal("0.00"))}
    until(lambda: backend_summary(service.base(0)) == expected, timeout=30)
    assert processors.summaries() == expected
    assert backend_summary(service.base(1)) == expected

    window = {"from": "2000-01-01T00:00:00.000Z", "to": "2000-01-02T00:00:00.000Z"}
    assert backend_summary(service.base(0), window) == {
        "default": (0, Decimal(0)),
        "fallback": (0, Decimal(0)),
    }

    assert httpx.post(service.base(1) + "/purge-payments").status_code == 200
    assert httpx.post(service.base(0) + "/payments-purge").status_code == 200
    assert backend_summary(service.base(0))["default"] == (0, Decimal(0))


def test_default_failing_mid_run_moves_payments_to_the_fallback_consistently(
    service: Deployment, processors: Processors
) -> None:
    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(lambda _: post(service.base(0), str(uuid.uuid4())), range(100)))
        processors.set("default", failure=True)
        second = list(pool.map(lambda _: post(service.base(1), str(uuid.uuid4())), range(100)))
    assert set(first + second) == {202}
    until(lambda: sum(n for n, _ in backend_summary(service.base(0)).values()) == 200, timeout=60)
    assert backend_summary(service.base(0)) == processors.summaries()
    assert processors.summary("fallback")[0] > 0


BAD = [
    (b"{not json", 400, "malformed-json"),
    (b'{"correlationId":"nope","amount":1}', 422, "validation-error"),
    (b'{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":1.001}', 422, None),
    (b'{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":-1}', 422, None),
    (b'{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":"1"}', 422, None),
    (b'{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"}', 422, "validation-error"),
    (b"[" * 10_000, 413, "body-too-large"),
    (
        b'{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":'
        + b"[" * 2000
        + b"]" * 2000
        + b"}",
        400,
        "malformed-json",
    ),
]


def test_bad_payments_get_a_clear_error_and_nothing_is_processed(
    service: Deployment, processors: Processors
) -> None:
    for body, status, code in BAD:
        answer = httpx.post(
            service.base(0) + "/payments", content=body, headers=JSON_TYPE, timeout=10
        )
        assert answer.status_code == status, (body[:80], answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        if code:
            assert answer.json()["code"] == code
    assert httpx.get(service.base(0) + "/payments-summary?from=bad").status_code == 422
    assert post(service.base(0), str(uuid.uuid4()), "1.00") == 202  # a good one still goes
    until(lambda: backend_summary(service.base(0))["default"][0] == 1, timeout=30)
    assert processors.summaries()["default"] == (1, Decimal("1.00"))


def test_an_instance_on_sqlite_never_loads_the_postgresql_driver(
    tmp_path: Path, processors: Processors
) -> None:
    """The Rinha deployment counts each instance's memory: one on SQLite maps no part of
    asyncpg, not even after it has taken, recorded and dispatched payments (ADR 0023)."""
    processors.reset()
    with deployment(tmp_path, processors, accept="local") as running:
        ids = [str(uuid.uuid4()) for _ in range(20)]
        assert {post(running.base(i % 2), ids[i]) for i in range(len(ids))} == {202}
        until(lambda: backend_summary(running.base(0))["default"][0] == len(ids), timeout=30)
        for api in running.apis:
            assert api.popen is not None
            assert api.popen.poll() is None
            mapped = Path(f"/proc/{api.popen.pid}/maps").read_text()
            assert "libpython" in mapped or "/python" in mapped  # the running instance's map
            assert "asyncpg" not in mapped
