"""deploy/k8s, checked without a cluster: kubectl renders every overlay (kustomize), every object
is valid against the Kubernetes schemas (kubernetes-validate, strict: an unknown field fails), and
the rendered objects are what the deployment promises: a Deployment, Service, autoscaler and
disruption budget per process; real ``paycore`` commands; probes, requests and limits and a
locked-down security context on every container; only the public routes public."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_kit import K8S, ROOT, help_exit_codes, load_yaml_documents, run, tool

from paycore import contexts
from paycore.platform.keystore import VARIABLES

OVERLAYS = ("dev", "prod")
KUBERNETES_VERSIONS = (kubernetes_validate.latest_version(), "1.29")  # the newest, the oldest kept
PORTS = {"api": 8000, "worker": 8010}
PUBLIC = {"gateway-api", "banking-api", "grafana"}
SINGLETONS = {"payments-worker"}
POD_KINDS = {"Deployment", "StatefulSet", "Job"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Each overlay as ``kubectl kustomize`` renders it."""
    kubectl = tool("kubectl")
    return {
        overlay: load_yaml_documents(
            run(kubectl, "kustomize", str(K8S / "overlays" / overlay)).stdout
        )
        for overlay in OVERLAYS
    }


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] in POD_KINDS
    }


def paycore_containers(
    objects: list[dict[str, Any]], *, init: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, container)
        for name, spec in pod_specs(objects).items()
        for container in spec["containers"] + (spec.get("initContainers", []) if init else [])
        if "paycore" in container["image"].rsplit("/", 1)[-1].split(":")[0]
    ]


def test_the_generated_part_of_the_base_is_up_to_date() -> None:
    run(sys.executable, str(ROOT / "scripts" / "k8s-base"), "--check")


def test_every_object_is_valid_against_the_kubernetes_schemas_strictly(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """Every object of every overlay against the newest schemas; each distinct object (by kind
    and name, prod's first) against the oldest Kubernetes release kept in mind, too."""
    example = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    newest, *older = KUBERNETES_VERSIONS
    distinct: dict[tuple[str, str], dict[str, Any]] = {}
    for overlay in reversed(OVERLAYS):
        objects = rendered[overlay]
        assert objects, overlay
        for obj in [*objects, example]:
            kubernetes_validate.validate(obj, newest, strict=True)
            distinct.setdefault((obj["kind"], obj["metadata"]["name"]), obj)
    for version in older:
        for obj in distinct.values():
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_validation_would_refuse_a_wrong_object(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = copy.deepcopy(by_kind(rendered["prod"], "Deployment")["gateway-api"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    del deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_deployment_service_autoscaler_and_budget_per_process(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    objects = rendered[overlay]
    deployments = by_kind(objects, "Deployment")
    services = by_kind(objects, "Service")
    autoscalers = by_kind(objects, "HorizontalPodAutoscaler")
    budgets = by_kind(objects, "PodDisruptionBudget")
    processes = {f"{n}-{k}" for n in contexts.NAMES for k in PORTS}
    for name in sorted(processes):
        kind = name.rsplit("-", 1)[1]
        context = name.rsplit("-", 1)[0]
        deployment = deployments[name]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [kind, "--context", context]
        assert container["ports"] == [
            {"name": "http", "containerPort": PORTS[kind], "protocol": "TCP"}
        ]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"].items() <= labels.items()
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        if name in SINGLETONS:
            assert name not in autoscalers
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}
            continue
        assert "replicas" not in deployment["spec"]  # the autoscaler owns it
        scaler = autoscalers[name]["spec"]
        assert scaler["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        [metric] = scaler["metrics"]
        assert metric["resource"]["name"] == "cpu"
    assert set(autoscalers) == processes - SINGLETONS
    assert set(budgets) == processes


def test_every_paycore_command_is_a_real_one(rendered: dict[str, list[dict[str, Any]]]) -> None:
    commands = [
        c["args"]
        for objects in rendered.values()
        for _, c in paycore_containers(objects, init=True)
    ]
    assert ["migrate"] in commands
    assert ["migrate", "--check"] in commands
    codes = help_exit_codes(commands)
    assert codes == dict.fromkeys(codes, 0)
    for command in commands:
        named = [command[i + 1] for i, arg in enumerate(command) if arg == "--context"]
        assert set(named) <= set(contexts.NAMES), command


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_probes_resources_and_a_locked_down_security_context(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    for name, spec in pod_specs(rendered[overlay]).items():
        pod = spec.get("securityContext", {})
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        for container in spec["containers"] + spec.get("initContainers", []):
            where = f"{overlay} {name} {container['name']}"
            resources = container["resources"]
            for what in ("cpu", "memory"):
                assert resources["requests"][what], where
                assert resources["limits"][what], where
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            assert security.get("runAsUser", pod.get("runAsUser", 0)) > 0, where
            if not name.startswith("Job/") and container in spec["containers"]:
                assert container["livenessProbe"], where
                assert container["readinessProbe"], where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_paycore_probes_are_the_health_routes_of_the_process_port(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    for name, container in paycore_containers(rendered[overlay]):
        if name.startswith("Job/"):
            continue
        [port] = container["ports"]
        assert port["containerPort"] == PORTS[container["args"][0]], name
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, name


def test_each_process_gets_the_secrets_its_context_needs(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    example = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    for objects in rendered.values():
        for name, container in paycore_containers(objects):
            refs = {
                e["name"]: e["valueFrom"]["secretKeyRef"]
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            assert {r["key"] for r in refs.values()} <= set(example["stringData"]), name
            assert refs["PAYCORE_DATABASE_URL"]["name"] == "paycore-secrets"
            if container["args"][0] not in PORTS:
                continue
            context = container["args"][2]
            needed = {VARIABLES[s] for s in contexts.processes(context).secrets}
            required = {k for k, r in refs.items() if not r.get("optional")}
            assert needed <= required, name
            assert required - needed == {"PAYCORE_DATABASE_URL", "PAYCORE_BROKER_URL"}, name
        for spec in pod_specs(objects).values():  # and no secret is written in a manifest
            for container in spec["containers"]:
                for entry in container.get("env", []):
                    if "value" in entry:
                        assert entry["name"] not in {*VARIABLES.values(), "PAYCORE_ADMIN_TOKEN"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_public_apis_and_the_dashboards_are_reachable_from_outside(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    objects = rendered[overlay]
    policies = by_kind(objects, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    labels = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] in POD_KINDS
    }

    def selects(selector: dict[str, Any], pod: dict[str, str]) -> bool:
        if any(pod.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
            return False
        for expression in selector.get("matchExpressions", []):
            inside = pod.get(expression["key"]) in expression["values"]
            if inside != (expression["operator"] == "In"):
                return False
        return True

    open_to_all = {
        pod
        for policy in policies.values()
        for rule in policy["spec"].get("ingress", [])
        if "from" not in rule
        for pod, pod_labels in labels.items()
        if selects(policy["spec"]["podSelector"], pod_labels)
    }
    assert open_to_all == PUBLIC
    [ingress] = by_kind(objects, "Ingress").values()
    paths = [
        (rule.get("host"), path["path"], path["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert {backend for _, _, backend in paths} == PUBLIC

    def routed(url: str) -> bool:  # Prefix matching: whole path elements
        return any(
            host is None and (url == p or url.startswith(p.rstrip("/") + "/"))
            for host, p, _ in paths
        )

    for public in ("/gateway/transactions", "/gateway/dashboard/events", "/banking/transfers/x"):
        assert routed(public), public
    for internal in (
        "/gateway/accounts",
        "/banking/ledger/transfers",
        "/banking/card-authorizations",
        "/metrics",
        "/docs",
        "/commerce/orders",
        "/fulfillment/orders/x",
        "/payments/payments",
    ):
        assert not routed(internal), internal


def test_dev_runs_one_replica_with_its_database_and_broker_in_the_cluster(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    dev = rendered["dev"]
    for scaler in by_kind(dev, "HorizontalPodAutoscaler").values():
        assert scaler["spec"]["minReplicas"] == scaler["spec"]["maxReplicas"] == 1
    assert set(by_kind(dev, "StatefulSet")) == {"postgres", "nats"}
    assert {o["metadata"].get("namespace") for o in dev if o["kind"] != "Namespace"} == {
        "paycore-dev"
    }


def test_prod_scales_and_spreads_and_keeps_its_data_outside(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    prod = rendered["prod"]
    assert not by_kind(prod, "StatefulSet")  # PostgreSQL and the broker are external, by URL
    scalers = by_kind(prod, "HorizontalPodAutoscaler")
    for name, scaler in scalers.items():
        assert scaler["spec"]["minReplicas"] >= 2, name
        assert scaler["spec"]["maxReplicas"] >= scaler["spec"]["minReplicas"], name
    deployments = by_kind(prod, "Deployment")
    for name in scalers:
        template = deployments[name]["spec"]["template"]
        terms = template["spec"]["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ]
        assert {t["podAffinityTerm"]["topologyKey"] for t in terms} >= {"kubernetes.io/hostname"}
        for term in terms:
            selector = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
            assert selector.items() <= template["metadata"]["labels"].items(), name
    images = {c["image"] for _, c in paycore_containers(prod)}
    assert images == {"registry.example.com/paycore:0.1.0"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_new_pods_wait_for_the_migrations_and_old_ones_serve_meanwhile(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    for name, deployment in by_kind(rendered[overlay], "Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        if not any(c["args"][0] in PORTS for c in spec["containers"] if "args" in c):
            continue  # Prometheus, Grafana
        [wait] = spec["initContainers"]
        assert wait["args"] == ["migrate", "--check"], name
        if name in SINGLETONS:
            continue
        rolling = deployment["spec"]["strategy"]["rollingUpdate"]
        assert rolling["maxUnavailable"] == 0, name


def test_the_migrations_job_is_applied_alone_with_what_it_reads(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """``kubectl apply -k OVERLAY -l 'app.kubernetes.io/component in (config,migrate)'`` (docs/
    deploy.md "Upgrades") applies the Job and the ConfigMap it reads, nothing else."""
    for objects in rendered.values():
        chosen = [
            o
            for o in objects
            if o["metadata"].get("labels", {}).get("app.kubernetes.io/component")
            in ("config", "migrate")
        ]
        names = {o["metadata"]["name"] for o in chosen}
        [config] = [o for o in chosen if o["kind"] == "ConfigMap"]
        assert {o["kind"] for o in chosen} == {"Job", "ConfigMap"}
        assert names == {"paycore-migrate", config["metadata"]["name"]}
        [container] = by_kind(objects, "Job")["paycore-migrate"]["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]


def test_the_migrations_job_runs_paycore_migrate_once(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for objects in rendered.values():
        job = by_kind(objects, "Job")["paycore-migrate"]
        spec = job["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never"
        [container] = spec["containers"]
        assert container["args"] == ["migrate"]
        assert job["spec"].get("parallelism", 1) == 1


def test_prometheus_and_grafana_get_the_shared_rules_and_dashboards(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for objects in rendered.values():
        maps = {
            o["metadata"]["name"].rsplit("-", 1)[0]: o for o in objects if o["kind"] == "ConfigMap"
        }
        rules = ROOT / "deploy" / "observability" / "rules" / "paycore.rules.yml"
        assert maps["prometheus-rules"]["data"] == {rules.name: rules.read_text()}
        dashboards = ROOT / "deploy" / "observability" / "grafana" / "dashboards"
        assert set(maps["grafana-dashboards"]["data"]) == {
            p.name for p in dashboards.glob("*.json")
        }
        config = yaml.safe_load(maps["prometheus-config"]["data"]["prometheus.yml"])
        assert config["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
        deployments = by_kind(objects, "Deployment")
        mounts = {
            m["mountPath"]: m["name"]
            for m in deployments["prometheus"]["spec"]["template"]["spec"]["containers"][0][
                "volumeMounts"
            ]
        }
        volumes = {
            v["name"]: v.get("configMap", {}).get("name")
            for v in deployments["prometheus"]["spec"]["template"]["spec"]["volumes"]
        }
        assert (
            volumes[mounts["/etc/prometheus/rules"]] == maps["prometheus-rules"]["metadata"]["name"]
        )


def test_the_k8s_prometheus_config_as_far_as_debian_s_promtool_can_check_it(
    tmp_path: Path,
) -> None:
    """Debian's prometheus package is built without Kubernetes service discovery, so promtool
    refuses ``kubernetes_sd_configs``: it checks everything else of the file with the
    discovery replaced by a static target (the relabelling, the rule files, the globals)."""
    config = yaml.safe_load((K8S / "base" / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        [sd] = job.pop("kubernetes_sd_configs")
        assert sd == {"role": "pod", "namespaces": {"own_namespace": True}}
        job["static_configs"] = [{"targets": ["127.0.0.1:8000"]}]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    run(tool("promtool"), "check", "config", str(checked))
