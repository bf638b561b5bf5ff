"""The Prometheus alert rules (deploy/observability/rules), shipped to both deployments:
``promtool check rules`` (Debian's prometheus package) accepts them, ``promtool test rules``
shows each alert firing on the series it is written for (tests/deploy/alerts.test.yml), and
every metric they name is one paycore's processes export."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from deploy_kit import RULES, registered_series, run, tool

ASKED_FOR = {  # the alerts: consumer lag, dead letters, outbox, error rate, probes
    "PaycoreConsumerLagHigh",
    "PaycoreDeadLettersGrowing",
    "PaycoreOutboxBacklog",
    "PaycoreHighErrorRate",
    "PaycoreTargetDown",
    "PaycoreNotReady",
}
UNIT_TESTS = Path(__file__).with_name("alerts.test.yml")


def alerts() -> dict[str, dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_promtool_checks_the_rules() -> None:
    checked = run(tool("promtool"), "check", "rules", str(RULES))
    assert f"SUCCESS: {len(alerts())} rules found" in checked.stdout


def test_promtool_unit_tests_fire_every_alert() -> None:
    run(tool("promtool"), "test", "rules", str(UNIT_TESTS), cwd=UNIT_TESTS.parent)
    tested = set(re.findall(r"alertname: (\w+)", UNIT_TESTS.read_text()))
    assert tested == set(alerts())


def test_the_rules_cover_what_was_asked_with_metrics_paycore_exports() -> None:
    assert set(alerts()) >= ASKED_FOR
    exported = registered_series() | {"up"}
    for name, rule in alerts().items():
        expr = str(rule["expr"])
        used = set(re.findall(r"\b((?:paycore|process)_[a-z0-9_]+|up)\b(?=\s*[{\[)=<> ])", expr))
        assert used, name
        assert used <= exported, f"{name}: {used - exported}"
        assert rule["labels"]["severity"] in ("warning", "critical"), name  # type: ignore[index]
        assert rule["annotations"]["summary"], name  # type: ignore[index]


def test_every_prometheus_of_the_repository_loads_the_rules() -> None:
    """deploy/observability's Prometheus (next to `paycore up`) finds the rules relative to its
    config; deploy/compose's and deploy/k8s's mount them where theirs look
    (tests/deploy/test_compose.py, test_k8s.py)."""
    config = RULES.parents[1] / "prometheus.yml"
    checked = run(tool("promtool"), "check", "config", str(config))
    assert "SUCCESS: 1 rule files found" in checked.stdout
