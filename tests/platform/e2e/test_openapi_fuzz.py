"""The whole OpenAPI document fuzzed with schemathesis, every check on, against the API and the
worker as processes (SQLite, a real NATS): no 5xx, no answer breaking its own schema, no status
or content type the document does not list, credentials enforced where declared, invalid
requests refused. A bounded number of examples per operation keeps it within CI's time.

Two adjustments, each for a reason the document cannot express:

- schemathesis's "valid data accepted" check wants a 2xx for every schema-valid request; but a
  valid shape may still break a rule the schema cannot state (an unknown product, a taken name,
  a reused Idempotency-Key, an L0 order whose sums disagree). In its place, ``agrees_on_shape``:
  a schema-valid request is never refused for its shape (``validation-error``,
  ``malformed-json`` or ``unsupported-media-type``), so the document and the body reader agree;
- JSON Schema counts ``53.0`` as an integer; paycore's rule (docs/api-conventions.md) is that
  an integer is written without a fraction, which no schema keyword says, so valid cases are
  written that way (``_integral_numbers_as_integers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from procs import Proc, paycore_env, paycore_process
from schemathesis.core.failures import FailureGroup
from servers import Server, free_port

ADMIN_TOKEN = "fuzz-admin-token"
SERVICE_TOKEN = "fuzz-service-token"
EXAMPLES = 30
SHAPE_REFUSALS = {"validation-error", "malformed-json", "unsupported-media-type"}

pytestmark = pytest.mark.slow


@schemathesis.check
def agrees_on_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request the schema finds valid is not refused for its shape."""
    if case.meta is None or case.meta.generation.mode != schemathesis.GenerationMode.POSITIVE:
        return None
    if response.status_code in (400, 415, 422):
        code = response.json().get("code")
        assert code not in SHAPE_REFUSALS, f"a schema-valid request refused: {response.text}"
    return None


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    return _integral_numbers_as_integers(body)


@schemathesis.hook
def map_query(ctx: Any, query: Any) -> Any:
    return _integral_numbers_as_integers(query)


def _integral_numbers_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_numbers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_numbers_as_integers(v) for v in value]
    return value


@dataclass
class Deployment:
    api: str
    worker: str
    config: Any  # schemathesis's, with a credential for each security scheme


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, nats_server: Server
) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("fuzz")
    api_port, worker_port = free_port(), free_port()
    env = paycore_env(
        data_dir=work,
        broker_url=nats_server.url,
        admin_token=ADMIN_TOKEN,
        service_token=SERVICE_TOKEN,
        worker_port=worker_port,
        commerce_analytics_url=f"http://127.0.0.1:{worker_port}",
        gateway_rate_per_second=100_000,
        gateway_rate_burst=100_000,
        gateway_auth_failures=1_000_000,
        gateway_stream_seconds=1,
        log_level="WARNING",
    )
    Proc(["migrate"], env, work / "migrate.log").start().popen.wait()  # type: ignore[union-attr]
    procs = [
        paycore_process("worker", [], env, work, worker_port).start(),
        paycore_process("api", [], env, work, api_port).start(),
    ]
    try:
        api = f"http://127.0.0.1:{api_port}"
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        shop = httpx.post(f"{api}/gateway/accounts", json={"name": "shop"}, headers=admin).json()
        login = httpx.post(f"{api}/gateway/dashboard/login", json={"secret": shop["secret"]})
        customer = httpx.post(
            f"{api}/banking/customers", json={"name": "Ana Lima", "cpf": "529.982.247-25"}
        ).json()
        config = schemathesis.Config.from_dict(
            {
                "auth": {
                    "openapi": {
                        "adminToken": {"bearer": ADMIN_TOKEN},
                        "merchantSecret": {"bearer": shop["secret"]},
                        "merchantToken": {"api_key": shop["secret"]},
                        "dashboardSession": {"api_key": login.cookies["paycore_session"]},
                        "serviceToken": {"bearer": SERVICE_TOKEN},
                        "customerSecret": {"bearer": customer["secret"]},
                    }
                },
                "headers": {"X-CSRF-Token": login.json()["csrf"]},
                "checks": {"positive_data_acceptance": {"enabled": False}},
            }
        )
        yield Deployment(api, f"http://127.0.0.1:{worker_port}", config)
    finally:
        for proc in reversed(procs):
            proc.stop()


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),
    database=None,
)


def fuzz(schema: Any) -> list[str]:
    """Every operation of ``schema``, with valid and with invalid data: what broke."""
    broken: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in schemathesis.GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @FUZZ
            def run(case: Any) -> None:
                case.call_and_validate(additional_checks=[agrees_on_shape])

            try:
                run()
            except Unsatisfiable:  # nothing invalid to make of it (no parameters, say)
                continue
            except FailureGroup as exc:  # checks failed: note them, go on with the others
                broken.append(f"{operation.label} ({mode.value}): {exc}")
    return broken


def test_the_api_keeps_to_its_document(deployment: Deployment) -> None:
    url = f"{deployment.api}/openapi.json"
    broken = fuzz(schemathesis.openapi.from_url(url, config=deployment.config))
    assert broken == [], "\n\n".join(broken)


def test_the_worker_keeps_to_its_document(deployment: Deployment) -> None:
    url = f"{deployment.worker}/openapi.json"
    broken = fuzz(schemathesis.openapi.from_url(url, config=deployment.config))
    assert broken == [], "\n\n".join(broken)
