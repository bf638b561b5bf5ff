"""docs/api-conventions.md, case by case, on every route of the apps ``paycore api`` and
``paycore worker`` build for every context (SQLite, a real NATS). The routes and what they take
(body fields, path and query parameters, credentials) are read from each app's own OpenAPI
document, so a new route is checked without an entry here; each case names the answer the
conventions give, and every answer that breaks one is reported together."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from servers import Server
from web_kit import migrated_settings, running

from paycore.bootstrap import build_api, build_worker
from paycore.platform.settings import Settings

ADMIN_TOKEN = "conventions-admin-token"
SERVICE_TOKEN = "conventions-service-token"
PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}
VALID_PATH_VALUES = {  # a well-formed value of each path parameter (naming nothing, mostly)
    "integer": "1",
    "uuid": "00000000-0000-7000-8000-000000000000",
    "month": "2026-01",
    "name": "report.json",
    "order_uid": "b563feb7b2b84b6test",
    "key": "ana@example.com",
    "txid": "PEDIDO42",
    "end_to_end_id": "E99999999202612061830abcDEF12345",
}
BAD_PATH_VALUES = {  # values that cannot name anything, by parameter kind
    "integer": ["1180591620717411303424", "abc", "0"],  # 2**70; not a number; not positive
    "uuid": ["nope", "00000000-0000-7000-8000-00000000000%00"],
    "month": ["2026-13", "2026-01%0A"],
    "name": ["state.json", "x%3Fy=1"],
    "order_uid": ["a%00b", "x" * 65],
    "key": ["a%00b", "x" * 101],
    "txid": ["a-b", "x" * 36],
    "end_to_end_id": ["E123", "D99999999202612061830abcDEF12345"],
}


@dataclass
class Case:
    method: str
    path: str
    what: str
    status: int
    code: str
    at: str | None = None  # the last element of errors[0].loc: the field or parameter
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def settings(tmp_path: Path, nats_server: Server, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PAYCORE_GATEWAY_RATE_PER_SECOND", "100000")
    monkeypatch.setenv("PAYCORE_GATEWAY_RATE_BURST", "100000")
    return migrated_settings(
        tmp_path, nats_server.url, admin_token=ADMIN_TOKEN, service_token=SERVICE_TOKEN
    )


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _kind(name: str, schema: dict[str, Any]) -> str:
    """Which of VALID_PATH_VALUES a path parameter is."""
    if schema.get("type") == "integer":
        return "integer"
    pattern = schema.get("pattern", "")
    if "{12}" in pattern:
        return "uuid"
    named = ("month", "name", "order_uid", "key", "txid", "end_to_end_id")
    return {kind: kind for kind in named}[name]


def _wrong_values(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Values of the wrong JSON type (or breaking the text rule) for a body field."""
    kinds = {s.get("type") for s in schema.get("anyOf", [schema])}
    if kinds & {"number", "integer"}:
        yield "a number sent as a string", "1.00"
        yield "a boolean for a number", True
    if "integer" in kinds:
        yield "an integer with a fraction", 1.5
    if "string" in kinds:
        yield "a number for a string", 5
        if "\\x00-\\x1f" in schema.get("pattern", ""):
            yield "a control character in text", "a\u0000b"
            yield "text with a leading space", " a"
    if kinds & {"array", "object"} or "$ref" in schema:
        yield "a string for a structure", "x"


def cases(document: dict[str, Any]) -> Iterator[Case]:
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            method = method.upper()
            parameters = operation.get("parameters", [])
            in_path = {p["name"]: p for p in parameters if p["in"] == "path"}
            kinds = {name: _kind(name, p["schema"]) for name, p in in_path.items()}
            path = template
            for name, kind in kinds.items():
                path = path.replace(f"{{{name}}}", VALID_PATH_VALUES[kind])
            for name, kind in kinds.items():
                for bad in BAD_PATH_VALUES[kind]:
                    where = template.replace(f"{{{name}}}", bad)
                    for other, other_kind in kinds.items():
                        where = where.replace(f"{{{other}}}", VALID_PATH_VALUES[other_kind])
                    yield Case(method, where, f"path {name}={bad}", 422, "validation-error", name)
            for query in (p for p in parameters if p["in"] == "query"):
                schema = query["schema"]
                types = {s.get("type") for s in schema.get("anyOf", [schema])}
                name = query["name"]
                if "integer" in types:
                    yield Case(method, path, f"{name}=abc", 422, "validation-error", name,
                               params={name: "abc"})  # fmt: skip
                    for limit, beyond in (("maximum", 1), ("minimum", -1)):
                        if limit in schema:
                            value = str(schema[limit] + beyond)
                            yield Case(method, path, f"{name}={value}", 422, "validation-error",
                                       name, params={name: value})  # fmt: skip
                if "string" in types and name in ("from", "to"):
                    yield Case(method, path, f"{name} not a time", 422, "validation-error", name,
                               params={name: "not-a-time"})  # fmt: skip
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            model = _resolve(document, body["schema"])
            yield Case(method, path, "a text/plain body", 415, "unsupported-media-type",
                       body=b'{"a": 1}', headers={"content-type": "text/plain"})  # fmt: skip
            yield Case(method, path, "no content type", 415, "unsupported-media-type",
                       body=b'{"a": 1}')  # fmt: skip
            for text in (b'{"a":', b"\xff", b"[" * 3000):  # 3000 levels, within 4 KiB
                yield Case(method, path, f"malformed {text[:10]!r}", 400, "malformed-json",
                           body=text, headers=JSON)  # fmt: skip
            yield Case(method, path, "a key given twice", 422, "validation-error", "zz",
                       body=b'{"zz": 1, "zz": 2}', headers=JSON)  # fmt: skip
            yield Case(method, path, "an unknown field", 422, "validation-error", "zz_unknown",
                       body=b'{"zz_unknown": 1}', headers=JSON)  # fmt: skip
            for name, schema in model.get("properties", {}).items():
                for what, wrong in _wrong_values(schema):
                    yield Case(method, path, f"{name}: {what}", 422, "validation-error", name,
                               body=orjson.dumps({name: wrong}), headers=JSON)  # fmt: skip


async def _credentials(http: httpx.AsyncClient, worker: bool) -> dict[str, dict[str, str]]:
    """Headers carrying each credential the document names."""
    if worker:
        return {"serviceToken": {"Authorization": f"Bearer {SERVICE_TOKEN}"}}
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    shop = (await http.post("/gateway/accounts", json={"name": "shop"}, headers=admin)).json()
    merchant = {"Authorization": f"Bearer {shop['secret']}"}
    login = await http.post("/gateway/dashboard/login", json={"secret": shop["secret"]})
    assert login.status_code == 200, login.text  # the client keeps the session cookie
    session = {"x-csrf-token": login.json()["csrf"]}
    signed_up = await http.post(
        "/banking/customers", json={"name": "Ana Lima", "cpf": "123.456.789-09"}
    )
    assert signed_up.status_code == 201, signed_up.text
    return {
        "customerSecret": {"Authorization": f"Bearer {signed_up.json()['secret']}"},
        "adminToken": admin,
        "serviceToken": {"Authorization": f"Bearer {SERVICE_TOKEN}"},  # the card network's
        "merchantSecret": merchant,
        "merchantToken": {"x-token": shop["secret"]},
        "dashboardSession": session,
    }


def _broken(case: Case, answer: httpx.Response) -> str | None:
    """What in the answer breaks the convention, or None."""
    if answer.status_code != case.status:
        return f"status {answer.status_code}, not {case.status}: {answer.text[:200]}"
    if answer.headers.get("content-type") != PROBLEM:
        return f"content type {answer.headers.get('content-type')}"
    problem = answer.json()
    if problem.get("code") != case.code:
        return f"code {problem.get('code')}, not {case.code}"
    if "instance" in problem:
        return "names a path (instance)"
    if case.at is not None:
        errors = problem.get("errors") or [{}]
        if (errors[0].get("loc") or [None])[-1] != case.at:
            return f"errors do not name {case.at}: {errors}"
    return None


@pytest.mark.parametrize("role", ["api", "worker"])
async def test_every_route_answers_bad_input_as_the_conventions_say(
    settings: Settings, role: str
) -> None:
    app = build_api(settings) if role == "api" else build_worker(settings)
    async with running(app) as http:
        document = (await http.get("/openapi.json")).json()
        credentials = await _credentials(http, worker=role == "worker")
        checked, broken = 0, []
        for case in cases(document):
            operation = document["paths"]
            security = [
                name
                for template, operations in operation.items()
                for requirement in operations.get(case.method.lower(), {}).get("security", [])
                for name in requirement
                if _matches(template, case.path)
            ]
            headers = {**(credentials[security[0]] if security else {}), **case.headers}
            answer = await http.request(
                case.method, case.path, content=case.body, headers=headers, params=case.params
            )
            checked += 1
            if (why := _broken(case, answer)) is not None:
                broken.append(f"{case.method} {case.path} [{case.what}]: {why}")
    assert checked > (150 if role == "api" else 20), checked  # the document was read whole
    assert broken == [], "\n".join(broken)


def _matches(template: str, path: str) -> bool:
    """Whether a concrete path (percent-encoded or not) is an instance of the template."""
    parts, concrete = template.split("/"), path.split("/")
    return len(parts) == len(concrete) and all(
        p == c or (p.startswith("{") and p.endswith("}"))
        for p, c in zip(parts, concrete, strict=True)
    )
