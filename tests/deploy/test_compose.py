"""deploy/compose, checked without a Docker engine: Debian's docker-compose validates the file
and resolves it (anchors, interpolation from the env file, profiles); then the resolved services
are checked against what paycore is: every context's API and worker from the one image, real
``paycore`` commands, migrations first, a readiness healthcheck everywhere, secrets only from the
env file and only where a context needs them."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from deploy_kit import COMPOSE, OBSERVABILITY, ROOT, help_exit_codes, run, tool

from paycore import contexts
from paycore.platform.keystore import VARIABLES
from paycore.platform.settings import Settings
from paycore.platform.web.app import create_app, install_probes

PROFILES = ("simulators", "rabbitmq", "kafka")
PORTS = {"api": 8000, "worker": 8010}
ALL_SECRETS = {*VARIABLES.values(), "PAYCORE_ADMIN_TOKEN"}


def env_file(tmp: Path) -> Path:
    """``.env.example`` with every empty value filled, as a user fills it."""
    lines = []
    for line in (COMPOSE / ".env.example").read_text().splitlines():
        if re.fullmatch(r"[A-Z_]+=", line):
            line += "fill-" + line[:-1].lower().replace("_", "-")
        lines.append(line)
    path = tmp / "compose.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def compose(env: Path, *args: str, profiles: tuple[str, ...] = PROFILES) -> str:
    chosen = [a for p in profiles for a in ("--profile", p)]
    command = [tool("docker-compose"), "--env-file", str(env), "-f", "compose.yaml", *chosen]
    return run(*command, *args, cwd=COMPOSE).stdout


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``docker-compose config`` of the file with every profile: what compose would run."""
    env = env_file(tmp_path_factory.mktemp("compose"))
    config: dict[str, Any] = yaml.safe_load(compose(env, "config"))
    return config


@pytest.fixture(scope="module")
def services(resolved: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = resolved["services"]
    return found


def paycore_services(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if s.get("image", "").startswith("paycore:")}


def test_docker_compose_validates_the_file(tmp_path: Path) -> None:
    env = env_file(tmp_path)
    compose(env, "config", "-q")  # every profile
    compose(env, "config", "-q", profiles=())  # the default services alone
    # without the secrets the file refuses, naming the variable
    empty = tmp_path / "empty.env"
    empty.write_text("")
    command = [tool("docker-compose"), "--env-file", str(empty), "-f", "compose.yaml", "config"]
    refused = run(*command, "-q", cwd=COMPOSE, check=False)
    assert refused.returncode != 0
    assert "POSTGRES_PASSWORD" in refused.stderr


def test_every_context_runs_its_api_and_its_worker_from_the_one_image(
    services: dict[str, Any],
) -> None:
    ours = paycore_services(services)
    for name in contexts.NAMES:
        for kind in ("api", "worker"):
            service = ours[f"{name}-{kind}"]
            assert service["command"] == [kind, "--context", name]
            assert service["build"]["context"] == str(ROOT)
    assert {s["image"] for s in ours.values()} == {"paycore:latest"}
    assert ours["migrate"]["command"] == ["migrate"]


def test_every_paycore_command_is_a_real_one(services: dict[str, Any]) -> None:
    commands = [s["command"] for s in paycore_services(services).values()]
    codes = help_exit_codes(commands)
    assert codes == dict.fromkeys(codes, 0)
    for command in commands:  # a context named is one the registry knows
        named = [command[i + 1] for i, arg in enumerate(command) if arg == "--context"]
        assert set(named) <= set(contexts.NAMES), command


def test_the_check_of_commands_would_see_a_wrong_one() -> None:
    codes = help_exit_codes([["api", "--contexts", "banking"], ["wroker"], ["api"]])
    assert codes == {("api", "--contexts", "banking"): 2, ("wroker",): 2, ("api",): 0}


def test_migrations_run_once_before_every_paycore_process(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in paycore_services(services).items():
        if service["command"][0] in PORTS:
            assert service["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"
            }, name


def test_every_service_has_a_healthcheck_on_its_readiness(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name == "migrate":  # one shot: it runs and exits
            assert "healthcheck" not in service
            continue
        check = " ".join(service["healthcheck"]["test"])
        kind = service.get("command", [""])[0] if name in paycore_services(services) else ""
        if kind in PORTS:
            assert f"/dev/tcp/127.0.0.1/{PORTS[kind]}" in check, name
            assert "GET /readyz" in check, name
        assert service["healthcheck"]["retries"] >= 3, name


def test_the_readiness_healthcheck_works_against_paycore_s_server(
    services: dict[str, Any],
) -> None:
    """The healthcheck command of the API services, run by bash against paycore's own
    ``/readyz`` on uvicorn: 0 while the checks pass, not 0 once one fails."""
    test = services["gateway-api"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    healthy = {"ok": True}

    async def database() -> None:
        if not healthy["ok"]:
            raise ConnectionError("down")

    app = create_app("probe")
    install_probes(app, {"database": database})
    with serving(app) as port:
        script = test[3].replace("/dev/tcp/127.0.0.1/8000", f"/dev/tcp/127.0.0.1/{port}")
        assert subprocess.run(["bash", "-c", script], timeout=10, check=False).returncode == 0
        healthy["ok"] = False
        assert subprocess.run(["bash", "-c", script], timeout=10, check=False).returncode != 0


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # in a thread: the test process keeps its own
        pass


@contextlib.contextmanager
def serving(app: Any) -> Iterator[int]:
    """The app on uvicorn on a free port of 127.0.0.1, in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def test_secrets_come_from_the_env_file_each_to_the_contexts_that_need_it(
    services: dict[str, Any],
) -> None:
    raw = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    for name, service in raw["services"].items():  # as written: never a value, only ${…}
        for key, value in (service.get("environment") or {}).items():
            if key in ALL_SECRETS | {"POSTGRES_PASSWORD", "RABBITMQ_DEFAULT_PASS"}:
                assert str(value).startswith("${"), (name, key)
    for name, service in paycore_services(services).items():
        kind, *rest = service["command"]
        if kind not in PORTS:
            continue
        context = rest[1]
        needed = {VARIABLES[s] for s in contexts.processes(context).secrets}
        given = set(service["environment"]) & set(VARIABLES.values())
        assert needed <= given, name
        extra = given - needed
        assert extra <= ({VARIABLES["service_token"]} if context == "banking" else set()), name
    ignored = run("git", "check-ignore", "-q", "deploy/compose/.env", check=False)
    assert ignored.returncode == 0, "deploy/compose/.env must be in .gitignore"
    example = run("git", "check-ignore", "-q", "deploy/compose/.env.example", check=False)
    assert example.returncode == 1, "the example is committed"
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in dockerignore
    assert "**/.env" in dockerignore


def test_optional_brokers_are_profiles_named_by_their_url() -> None:
    raw = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    example = (COMPOSE / ".env.example").read_text()
    urls = dict(re.findall(r"PAYCORE_BROKER_URL=(([a-z]+)://\S+)", example))
    by_scheme = {scheme: url for url, scheme in urls.items()}
    assert set(by_scheme) == {"nats", "amqp", "kafka"}
    for profile, scheme in (("rabbitmq", "amqp"), ("kafka", "kafka")):
        assert raw["services"][profile]["profiles"] == [profile]
        assert f"@{profile}:" in by_scheme[scheme] or f"//{profile}:" in by_scheme[scheme]
        assert f"add {profile} to COMPOSE_PROFILES" in example
    assert "profiles" not in raw["services"]["nats"]
    for url in by_scheme.values():  # each is a URL paycore takes
        Settings(_env_file=None, broker_url=url.replace("<RABBITMQ_PASSWORD>", "x"))  # type: ignore[call-arg]


def test_prometheus_and_grafana_watch_every_process(services: dict[str, Any]) -> None:
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    ours = paycore_services(services)
    for job in config["scrape_configs"]:
        kind = job["job_name"].removeprefix("paycore-")
        [sd] = job["dns_sd_configs"]
        assert sd["port"] == PORTS[kind]
        assert sorted(sd["names"]) == sorted(n for n in ours if n.endswith(f"-{kind}"))
    assert config["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    mounts = volumes(services["prometheus"])
    assert mounts["/etc/prometheus/rules"] == OBSERVABILITY / "rules"
    grafana = volumes(services["grafana"])
    assert grafana["/var/lib/grafana/dashboards"] == OBSERVABILITY / "grafana" / "dashboards"
    provider = OBSERVABILITY / "grafana" / "provisioning" / "dashboards"
    assert grafana["/etc/grafana/provisioning/dashboards"] == provider
    source = yaml.safe_load((COMPOSE / "grafana" / "datasources.yml").read_text())
    assert source["datasources"][0]["uid"] == "paycore-prometheus"
    assert source["datasources"][0]["url"] == "http://prometheus:9090"


def volumes(service: dict[str, Any]) -> dict[str, Path]:
    """The service's mounts, target: source (``docker-compose config`` writes them short)."""
    found = {}
    for volume in service["volumes"]:
        source, target = str(volume).split(":")[:2]
        found[target] = Path(source)
    return found


def test_nginx_routes_every_context_to_its_api_and_nothing_else() -> None:
    config = (COMPOSE / "nginx.conf").read_text()
    upstreams = dict(re.findall(r"upstream (\w+)\s*{\s*server ([\w-]+):8000;", config))
    routed = dict(re.findall(r"location /(\w+)/\s*{\s*proxy_pass http://(\w+);", config))
    assert upstreams == {name: f"{name}-api" for name in contexts.NAMES}
    assert routed == {name: name for name in contexts.NAMES}
    assert "location / { return 404; }" in config


def test_promtool_checks_the_prometheus_config() -> None:
    run(tool("promtool"), "check", "config", str(COMPOSE / "prometheus.yml"))
