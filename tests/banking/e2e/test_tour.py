"""The README's banking tour, run as a user runs it, under ``paycore up`` and against banking
deployed alone: ``paycore api --context banking`` and ``paycore worker --context banking`` as
processes (SQLite, NATS). The tour's commands (curl, jq, ``paycore banking verify``) are taken
from the README and run by bash, each request failing the run if it is answered with an error;
then what they did is checked: two customers signed up, an account each, the deposit, the
transfer posted by the worker, the statement, the balance at an instant, the operator's
two-phase and linked batches, a loan simulated, applied for, paid out by the worker and its
first instalment paid, a verified ledger, and an insurance policy bought with a quote, issued
by the worker and its premium charged; under ``up``, banking's banner line."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from banking_kit import banking_up
from procs import paycore_env, paycore_process, until
from servers import Server, free_port

from paycore.schema import upgrade

README = Path(__file__).resolve().parents[3] / "README.md"
ADMIN_TOKEN = "tour-admin-token"


def tour() -> str:
    """The shell block of the README's banking tour."""
    text = README.read_text()
    section = text[text.index("### A banking tour") :]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert found is not None
    return found.group(1)


@pytest.fixture(params=["alone", "up"])
def banking(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Banking deployed alone (its API and worker as processes, SQLite, NATS), or the whole
    platform under ``paycore up`` as the README's tour has it; the API's address and the
    environment a user's shell would have."""
    if request.param == "up":
        yield from banking_up(tmp_path, ADMIN_TOKEN)
        return
    nats_server: Server = request.getfixturevalue("nats_server")
    database = f"sqlite+aiosqlite:///{tmp_path / 'paycore.db'}"
    upgrade(database)
    api_port, worker_port = free_port(), free_port()
    env = paycore_env(
        database_url=database,
        broker_url=nats_server.url,
        data_dir=tmp_path / "data",
        admin_token=ADMIN_TOKEN,
    )
    worker = paycore_process("worker", ["banking"], env, tmp_path, worker_port)
    api = paycore_process("api", ["banking"], env, tmp_path, api_port)
    worker.start()
    api.start()
    try:
        yield f"127.0.0.1:{api_port}", env
    finally:
        api.stop()
        worker.stop()


def test_the_readme_banking_tour(banking: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    address, env = banking
    script = tour()
    assert "localhost:8000" in script
    assert ".venv/bin/paycore " in script
    script = script.replace("localhost:8000", address).replace(
        ".venv/bin/paycore ", f"{shlex.quote(sys.executable)} -m paycore "
    )
    preamble = (
        "set -euo pipefail\n"
        # a request answered with an error fails the tour (its body still shown)
        'curl() { command curl --fail-with-body "$@"; }\n'
    )
    epilogue = (
        '\necho "tour: A=$A C=$C T=$T FEES=$FEES H=$H AT=$AT ANA=$ANA BIA=$BIA L=$L LOAN=$LOAN'
        ' E=$E P=$P DAVI=$DAVI"\n'
    )
    done = subprocess.run(
        ["bash", "-c", preamble + script + epilogue],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    said = done.stdout
    assert done.returncode == 0, said + done.stderr
    found = dict(
        part.split("=", 1) for part in said.strip().splitlines()[-1].removeprefix("tour: ").split()
    )
    assert "created\ncreated\nlinked-event-failed\ninsufficient-funds\n" in said, said
    verified = " ".join(done.stderr.split())
    [promised] = re.findall(r"^# (ledger intact: .*)$", tour(), re.MULTILINE)
    assert verified == promised  # what the README says it prints

    ana = {"Authorization": f"Bearer {found['ANA']}"}
    bia = {"Authorization": f"Bearer {found['BIA']}"}
    with httpx.Client(base_url=f"http://{address}/banking", timeout=10) as http:
        transfer = until(lambda: posted(http.get(f"/transfers/{found['T']}", headers=ana)))
        assert (transfer["amount"], transfer["to_account_id"]) == (30.25, found["C"])
        statement = http.get(f"/accounts/{found['A']}/statement", headers=ana).json()["data"]
        assert [(s["code"], s["kind"], s["side"], s["amount"]) for s in statement] == [
            ("deposit", "single", "credit", 100.00),
            ("transfer", "single", "debit", 30.25),
            ("transfer", "pending", "debit", 20.00),
            ("transfer", "post", "debit", 15.00),
        ]
        assert statement[-1]["balance"]["posted"] == 54.75  # 100 - 30.25 - 15
        assert statement[-1]["balance"]["held"] == 0
        then = http.get(f"/accounts/{found['A']}/balance", params={"at": found["AT"]}, headers=ana)
        assert then.json()["posted"] == 100.00
        assert http.get(f"/accounts/{found['C']}/balance", headers=bia).json()["posted"] == 30.25
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        hold = http.get(f"/ledger/transfers/{found['H']}", headers=admin).json()
        assert (hold["kind"], hold["amount"], hold["resolved_by"]["amount"]) == (
            "pending",
            20.00,
            15.00,
        )
        fees = http.get(f"/ledger/accounts/{found['FEES']}/balance", headers=admin).json()
        assert fees["posted"] == 15.00
        loan = http.get(f"/loans/{found['LOAN']}", headers=ana).json()
        assert (loan["account_id"], loan["status"], loan["principal"]) == (
            found["L"],
            "active",
            1000,
        )
        assert [i["status"] for i in loan["installments"]] == ["paid", "due", "due"]
        assert (loan["outstanding"], loan["installments"][0]["paid_by"]) == (673.21, "request")
        received = http.get(f"/accounts/{found['L']}/balance", headers=ana).json()["posted"]
        assert round(received, 2) == round(1000 - loan["iof"] - 346.69, 2)

        davi = {"Authorization": f"Bearer {found['DAVI']}"}
        policy = until(lambda: issued(http.get(f"/insurance/policies/{found['P']}", headers=davi)))
        assert (policy["premium"], policy["account_id"]) == (5285.80, found["E"])
        left = http.get(f"/accounts/{found['E']}/balance", headers=davi).json()
        assert left["posted"] == 714.20  # 6000.00 - 5285.80


def posted(answer: httpx.Response) -> Any:
    body = answer.json()
    return body if body.get("status") == "posted" else None


def issued(answer: httpx.Response) -> Any:
    body = answer.json()
    return body if body.get("status") == "issued" else None
