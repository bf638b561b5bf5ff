"""The Rinha deployment (deploy/rinha): the compose file keeps to the contest's rules (1.5 CPU
and 350 MB in all, bridge network, no replicas, at least two APIs behind the load balancer on
port 9999) and the nginx config that both compose and run-local use points at the APIs."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

RINHA = Path(__file__).resolve().parents[3] / "deploy" / "rinha"
MAX_CPUS = Decimal("1.5")
MAX_MEMORY = 350 * 1024 * 1024
UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(value: str | int) -> int:
    """A compose memory size ("20M", "95m", "0.1g", "100mb", bytes) in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", str(value).strip().lower())
    assert match, f"unreadable memory size {value!r}"
    return int(Decimal(match.group(1)) * UNITS[match.group(2)])


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((RINHA / "docker-compose.yml").read_text())
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def limits(service: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = service.get("deploy", {}).get("resources", {}).get("limits", {})
    return found


def upstream_servers() -> list[str]:
    conf = (RINHA / "nginx.conf").read_text()
    block = re.search(r"upstream\s+\w+\s*\{(.*?)\}", conf, re.S)
    assert block, "nginx.conf has no upstream block"
    return re.findall(r"^\s*server\s+([\w.-]+):\d+", block.group(1), re.M)


def test_memory_sizes_are_read_like_compose() -> None:
    assert memory_bytes("20M") == 20 * 1024**2
    assert memory_bytes("0.5g") == 512 * 1024**2
    assert memory_bytes("100mb") == 100 * 1024**2
    assert memory_bytes(4096) == 4096


def test_every_service_has_cpu_and_memory_limits(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert {"cpus", "memory"} <= limits(service).keys(), f"{name} has no cpus/memory limit"


def test_limits_sum_to_at_most_1_5_cpu_and_350_mb(services: dict[str, dict[str, Any]]) -> None:
    cpus = sum(Decimal(str(limits(s)["cpus"])) for s in services.values())
    memory = sum(memory_bytes(limits(s)["memory"]) for s in services.values())
    assert cpus <= MAX_CPUS, f"{cpus} CPUs"
    assert memory <= MAX_MEMORY, f"{memory / 1024**2:.0f} MB"


def test_no_replicas_and_no_host_networking(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "replicas" not in service.get("deploy", {}), name
        assert "scale" not in service, name
        assert "network_mode" not in service, name


def test_networks_are_a_bridge_plus_the_processors_external_network(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    networks = compose["networks"]
    bridges = [n for n, spec in networks.items() if (spec or {}).get("driver") == "bridge"]
    assert bridges
    assert networks["payment-processor"] == {"external": True}
    for name, service in services.items():
        assert service.get("networks"), f"{name} is on no network"
    for host in upstream_servers():  # the APIs call the processors themselves
        api = services[host]
        assert "payment-processor" in api["networks"], host
        assert api["environment"]["PAYCORE_PAYMENTS_DEFAULT_URL"] == (
            "http://payment-processor-default:8080"
        )
        assert api["environment"]["PAYCORE_PAYMENTS_FALLBACK_URL"] == (
            "http://payment-processor-fallback:8080"
        )


def test_the_load_balancer_publishes_9999_and_uses_the_shared_nginx_conf(
    services: dict[str, dict[str, Any]],
) -> None:
    nginx = services["nginx"]
    assert any(str(p).split(":")[-2:] == ["9999", "9999"] for p in nginx["ports"])
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert "listen 9999" in (RINHA / "nginx.conf").read_text()


def test_at_least_two_api_instances_behind_the_load_balancer(
    services: dict[str, dict[str, Any]],
) -> None:
    servers = upstream_servers()
    assert len(servers) >= 2
    assert len(set(servers)) == len(servers)
    for host in servers:
        assert host in services, f"upstream {host} is not a compose service"
        command = " ".join(services[host]["command"])
        assert "api --context payments --root" in command, host
    assert set(servers) <= set(services["nginx"]["depends_on"])


def test_each_api_records_and_dispatches_its_own_payments_in_a_file_of_its_own(
    services: dict[str, dict[str, Any]],
) -> None:
    """ADR 0017: no broker and no worker; each API instance accepts locally under a name of
    its own into a SQLite file of its own on the shared volume, the others' files its
    siblings; the first migrates every file before the others start."""
    apis = upstream_servers()
    assert set(services) == {"nginx", *apis}
    environments = [services[host]["environment"] for host in apis]
    files = [env["PAYCORE_DATABASE_URL"] for env in environments]
    assert len(set(files)) == len(apis), files
    assert all(url.startswith("sqlite+aiosqlite:////data/") for url in files)
    instances = [env["PAYCORE_PAYMENTS_INSTANCE"] for env in environments]
    assert len(set(instances)) == len(apis), instances
    for host, env, own in zip(apis, environments, files, strict=True):
        assert env["PAYCORE_PAYMENTS_ACCEPT"] == "local", host
        assert env["PAYCORE_BROKER_URL"] == "none", host
        assert set(env["PAYCORE_PAYMENTS_SIBLINGS"].split(",")) == set(files) - {own}, host
        assert any(v.endswith(":/data") for v in services[host]["volumes"]), host
    migrating = [h for h in apis if "paycore migrate" in " ".join(services[h]["command"])]
    assert len(migrating) == 1
    command = " ".join(services[migrating[0]]["command"])
    for url in files:  # its own file by its environment, the others named in the command
        assert (
            url in command or url == services[migrating[0]]["environment"]["PAYCORE_DATABASE_URL"]
        )
    for host in apis:
        if host != migrating[0]:
            assert migrating[0] in services[host]["depends_on"], host


def run_local_module() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("rinha_run_local", str(RINHA / "run-local"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # its dataclasses look their module up there
    loader.exec_module(module)
    return module


def test_run_local_renders_the_same_nginx_conf_with_local_ports(tmp_path: Path) -> None:
    conf = run_local_module().render_nginx(9998, [9201, 9202], tmp_path)
    text = conf.read_text()
    assert "listen 127.0.0.1:9998 " in text
    assert "server 127.0.0.1:9201;" in text
    assert "server 127.0.0.1:9202;" in text
    assert "api1" not in text
    assert f"proxy_temp_path {tmp_path / 'proxy'};" in text
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if nginx:
        prefix = ["-p", str(tmp_path), "-e", str(tmp_path / "e.log")]
        checked = subprocess.run(
            [nginx, "-t", "-q", *prefix, "-c", str(conf)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr


def test_the_contest_deployment_opens_the_purge_its_test_calls(
    services: dict[str, dict[str, Any]],
) -> None:
    """Elsewhere the purge needs the admin token (issue 22, item 14); the contest's test
    purges without credentials, so its deployments (compose and run-local) open it."""
    for host in upstream_servers():
        assert services[host]["environment"]["PAYCORE_PAYMENTS_OPEN_PURGE"] == "true", host
    assert '"PAYCORE_PAYMENTS_OPEN_PURGE": "true"' in (RINHA / "run-local").read_text()
