"""The README's Pix tour, run as a user runs it against ``paycore api --context banking`` as a
process (SQLite, NATS) and under ``paycore up``: its commands (curl, jq) taken from the README
and run by bash, each request failing the run if it is answered with an error, every answer the
README shows (``…`` standing for what differs from run to run) printed as shown; then what they
did is checked: the charge paid by the other customer with its code, the refund, the
balances."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from banking_kit import banking_up
from procs import paycore_env, paycore_process
from servers import Server, free_port

from paycore.banking.pix import brcode
from paycore.schema import upgrade

README = Path(__file__).resolve().parents[3] / "README.md"


def tour() -> str:
    """The shell block of the README's Pix section."""
    text = README.read_text()
    section = text[text.index("### Pix\n") :]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert found is not None
    return found.group(1)


def shown(script: str) -> list[str]:
    """The answers the README shows (comment lines that are JSON or a BR Code)."""
    return [line[2:] for line in script.splitlines() if re.match(r"# (\{|000201)", line)]


@pytest.fixture(params=["alone", "up"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Banking's API alone, as a process, on a migrated SQLite file, or the whole platform
    under ``paycore up`` as the README has it: its address."""
    if request.param == "up":
        for address, _ in banking_up(tmp_path, "pix-tour-admin-token"):
            yield address
        return
    nats_server: Server = request.getfixturevalue("nats_server")
    database = f"sqlite+aiosqlite:///{tmp_path / 'paycore.db'}"
    upgrade(database)
    port = free_port()
    env = paycore_env(database_url=database, broker_url=nats_server.url, data_dir=tmp_path / "d")
    process = paycore_process("api", ["banking"], env, tmp_path, port)
    process.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.stop()


def test_the_readme_pix_tour(api: str, tmp_path: Path) -> None:
    script = tour()
    preamble = (
        "set -euo pipefail\n"
        'curl() { command curl --fail-with-body "$@"; }\n'
        f"B={api}/banking; J='content-type: application/json'\n"
    )
    epilogue = '\necho "tour: EVA=$EVA S=$S E2E=$E2E"\n'
    done = subprocess.run(
        ["bash", "-c", preamble + script + epilogue],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    said = done.stdout
    assert done.returncode == 0, said + done.stderr
    lines = said.splitlines()
    for answer in shown(script):
        pattern = ".*".join(re.escape(part) for part in answer.split("…"))
        assert any(re.fullmatch(pattern, line) for line in lines), (answer, said)
    [code] = [line for line in lines if line.startswith("000201")]
    charge = brcode.decode(code)
    assert (charge.is_dynamic, charge.amount) == (True, 1234)
    found = dict(part.split("=", 1) for part in lines[-1].removeprefix("tour: ").split())

    eva = {"Authorization": f"Bearer {found['EVA']}"}
    with httpx.Client(base_url=f"http://{api}/banking", timeout=10) as http:
        payment = http.get(f"/pix/payments/{found['E2E']}", headers=eva).json()
        assert (payment["role"], payment["status"]) == ("payer", "partially-refunded")
        assert (payment["amount"], payment["refunded"]) == (12.34, 2.34)
        balance = http.get(f"/accounts/{found['S']}/balance", headers=eva).json()
        assert balance["posted"] == 40.00  # 50.00 - 12.34 + 2.34
