"""The observability config (deploy/observability): every file loads; every metric a dashboard
panel queries is one paycore's processes register; the pieces point at each other (scrape
targets at paycore's default ports, panels at the provisioned data source, the dashboard
provider at the folder compose mounts). There is no Docker engine on the build machine: the
files are checked here, not run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_kit import OBSERVABILITY, registered_series

from paycore import contexts
from paycore.platform.settings import Settings

METRIC_NAME = re.compile(r"\bpaycore_[a-z0-9_]+\b")
ASKED_FOR = (  # the issues' panels: HTTP, outbox, consumers, dead letters, lag, gateway, payments,
    # banking
    "paycore_http_requests_total",
    "paycore_http_request_seconds_bucket",
    "paycore_outbox_backlog",
    "paycore_outbox_published_total",
    "paycore_messages_consumed_total",
    "paycore_dead_letters_total",
    "paycore_consumer_lag_seconds",
    "paycore_gateway_transactions_accepted_total",
    "paycore_gateway_decisions_total",
    "paycore_gateway_decision_seconds_bucket",
    "paycore_payments_accepted_total",
    "paycore_payments_processed_total",
    "paycore_processor_calls_total",
    "paycore_banking_transfers_accepted_total",
    "paycore_banking_transfers_total",
    "paycore_banking_posting_seconds_bucket",
    "paycore_banking_held_cents",
    "paycore_banking_card_authorizations_total",
)


def load(path: Path) -> Any:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


@pytest.fixture(scope="module")
def files() -> dict[str, Any]:
    """Every YAML and JSON file under deploy/observability, parsed, by relative path."""
    found = sorted(p for p in OBSERVABILITY.rglob("*") if p.suffix in (".yml", ".yaml", ".json"))
    return {str(p.relative_to(OBSERVABILITY)): load(p) for p in found}


@pytest.fixture(scope="module")
def panels(files: dict[str, Any]) -> list[dict[str, Any]]:
    dashboards = [data for name, data in files.items() if name.endswith(".json")]
    assert dashboards
    return [panel for board in dashboards for panel in board["panels"]]


def queries(panels: list[dict[str, Any]]) -> list[str]:
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_every_file_loads(files: dict[str, Any]) -> None:
    assert set(files) == {
        "prometheus.yml",
        "docker-compose.yml",
        "kustomization.yaml",  # the rules and dashboards as ConfigMaps for deploy/k8s
        "rules/paycore.rules.yml",  # checked by tests/deploy/test_alerts.py
        "grafana/provisioning/datasources/prometheus.yml",
        "grafana/provisioning/dashboards/paycore.yml",
        "grafana/dashboards/paycore.json",
    }
    assert all(isinstance(data, dict) and data for data in files.values())


def test_every_metric_a_panel_queries_is_registered(panels: list[dict[str, Any]]) -> None:
    used = {name for expr in queries(panels) for name in METRIC_NAME.findall(expr)}
    assert used - registered_series() == set()
    assert set(ASKED_FOR) <= used


def test_every_context_has_a_row_of_its_own(panels: list[dict[str, Any]]) -> None:
    rows = {p["title"].lower() for p in panels if p["type"] == "row"}
    assert set(contexts.NAMES) <= rows


def test_the_kustomization_ships_the_files_compose_mounts(files: dict[str, Any]) -> None:
    generated = {
        g["name"]: [f.split("=", 1)[-1] for f in g["files"]]
        for g in files["kustomization.yaml"]["configMapGenerator"]
    }
    assert generated == {
        "prometheus-rules": ["rules/paycore.rules.yml"],
        "grafana-dashboard-provider": ["grafana/provisioning/dashboards/paycore.yml"],
        "grafana-dashboards": ["grafana/dashboards/paycore.json"],
    }
    assert {f for names in generated.values() for f in names} <= set(files)


def test_queries_are_well_formed(panels: list[dict[str, Any]]) -> None:
    pairs = {")": "(", "]": "[", "}": "{"}
    for expr in queries(panels):
        stack: list[str] = []
        for char in re.sub(r'"[^"]*"', '""', expr):  # brackets inside label values do not count
            if char in "([{":
                stack.append(char)
            elif char in pairs:
                assert stack, expr
                assert stack.pop() == pairs[char], expr
        assert not stack, expr
        for counter in re.findall(r"\bpaycore_[a-z0-9_]+_(?:total|bucket)\b", expr):
            assert re.search(rf"\b(rate|increase)\({counter}\b", expr), f"{counter} raw in {expr}"
        if re.search(r"\bpaycore_[a-z0-9_]+_bucket\b", expr):
            assert expr.startswith("histogram_quantile("), expr
            assert "by (le" in expr, expr


def test_panels_use_the_provisioned_data_source_and_do_not_overlap(
    files: dict[str, Any], panels: list[dict[str, Any]]
) -> None:
    [source] = files["grafana/provisioning/datasources/prometheus.yml"]["datasources"]
    assert (source["type"], source["isDefault"]) == ("prometheus", True)
    assert len({p["id"] for p in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["title"]
        assert panel["targets"]
        assert panel["datasource"]["uid"] == source["uid"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]
            assert target["refId"]
            assert target["expr"]


def test_prometheus_scrapes_paycore_on_its_default_ports(files: dict[str, Any]) -> None:
    config = files["prometheus.yml"]
    jobs = {
        job["job_name"]: [t for group in job["static_configs"] for t in group["targets"]]
        for job in config["scrape_configs"]
    }
    defaults = Settings.model_fields
    assert jobs == {
        "paycore-api": [f"127.0.0.1:{defaults['api_port'].default}"],
        "paycore-worker": [f"127.0.0.1:{defaults['worker_port'].default}"],
    }
    assert {job.get("metrics_path", "/metrics") for job in config["scrape_configs"]} == {"/metrics"}
    # the "processes up" panel selects these jobs
    panel_jobs = files["grafana/dashboards/paycore.json"]["panels"][1]["targets"][0]["expr"]
    assert all(re.fullmatch("paycore-.*", job) for job in jobs)
    assert 'up{job=~"paycore-.*"}' in panel_jobs


def test_compose_mounts_what_grafana_and_prometheus_are_told_to_read(
    files: dict[str, Any],
) -> None:
    services = files["docker-compose.yml"]["services"]
    mounts = {
        name: dict(volume.removesuffix(":ro").split(":", 1) for volume in service["volumes"])
        for name, service in services.items()
    }
    for sources in mounts.values():
        assert all((OBSERVABILITY / source).exists() for source in sources)
    prometheus = services["prometheus"]["command"]
    config_path = next(a.split("=", 1)[1] for a in prometheus if a.startswith("--config.file="))
    assert mounts["prometheus"]["./prometheus.yml"] == config_path
    listen = next(a.split("=", 1)[1] for a in prometheus if a.startswith("--web.listen-address="))
    [source] = files["grafana/provisioning/datasources/prometheus.yml"]["datasources"]
    assert source["url"] == f"http://{listen}"
    [provider] = files["grafana/provisioning/dashboards/paycore.yml"]["providers"]
    assert mounts["grafana"]["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["grafana"]["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert {s["network_mode"] for s in services.values()} == {"host"}  # paycore is on 127.0.0.1
