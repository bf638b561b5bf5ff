"""The paycore processes of deploy/k8s run as their manifests say, on this machine: each
container's command, the ConfigMap's settings and only the Secret keys it references, on a real
PostgreSQL, NATS and Redis. The init container's ``paycore migrate --check`` holds until the
migrations Job has run; then every API and worker starts and answers ``/readyz``. (Addresses and
ports are this machine's instead of the cluster's names; nothing else is changed.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from deploy_kit import K8S, load_yaml_documents, run, tool
from procs import SECRETS, Proc, paycore_run, wait_ready
from servers import Server, free_port

from paycore import contexts

PORT_SETTING = {"api": "PAYCORE_API_PORT", "worker": "PAYCORE_WORKER_PORT"}


def rendered() -> list[dict[str, Any]]:
    return load_yaml_documents(
        run(tool("kubectl"), "kustomize", str(K8S / "overlays" / "dev")).stdout
    )


def environment(
    container: dict[str, Any], config: dict[str, str], secret: dict[str, str], **local: str
) -> dict[str, str]:
    """The container's environment as the kubelet makes it (ConfigMap, then its own entries,
    Secret keys it does not mark optional required), with this machine's addresses on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYCORE_")}
    if container.get("envFrom"):
        env |= config
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        if ref["key"] in secret:
            env[entry["name"]] = secret[ref["key"]]
        else:
            assert ref.get("optional"), f"{container['name']}: {ref['key']} is required"
    return env | local


def test_every_process_of_the_manifests_waits_for_the_migrations_then_is_ready(
    tmp_path: Path, postgres_url: str, nats_server: Server, redis_server: Server
) -> None:
    objects = rendered()
    [config] = [
        o["data"]
        for o in objects
        if o["kind"] == "ConfigMap" and "PAYCORE_HOST" in o.get("data", {})
    ]
    secret = {
        "PAYCORE_DATABASE_URL": postgres_url,
        "PAYCORE_BROKER_URL": nats_server.url,
        "PAYCORE_REDIS_URL": redis_server.url,
        "PAYCORE_CARD_KEYS": SECRETS["card_keys"],
        "PAYCORE_SECRET_PEPPER": SECRETS["secret_pepper"],
        "PAYCORE_SERVICE_TOKEN": SECRETS["service_token"],
        "PAYCORE_ADMIN_TOKEN": "manifests-admin-token",
    }
    deployments = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] == "Deployment" and o["spec"]["template"]["spec"].get("initContainers")
    }
    [job] = [o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Job"]
    local = {"PAYCORE_HOST": "127.0.0.1", "PAYCORE_DATA_DIR": str(tmp_path / "data")}

    [wait] = deployments["gateway-api"]["initContainers"]
    waiting = environment(wait, config, secret, **local)
    held, _ = paycore_run(waiting, *wait["args"])
    assert held.returncode == 1, held.stderr
    assert "run `paycore migrate`" in held.stderr
    [migrate] = job["containers"]
    done, _ = paycore_run(environment(migrate, config, secret, **local), *migrate["args"])
    assert done.returncode == 0, done.stderr
    passed, _ = paycore_run(waiting, *wait["args"])
    assert passed.returncode == 0, passed.stderr

    ports = {name: free_port() for name in deployments}
    procs: dict[str, Proc] = {}
    try:
        for name, spec in sorted(deployments.items()):
            [container] = spec["containers"]
            kind = container["args"][0]
            here = local | {
                PORT_SETTING[kind]: str(ports[name]),
                "PAYCORE_DATA_DIR": str(tmp_path / name),
                "PAYCORE_COMMERCE_ANALYTICS_URL": f"http://127.0.0.1:{ports['commerce-worker']}",
            }
            env = environment(container, config, secret, **here)
            procs[name] = Proc(container["args"], env, tmp_path / f"{name}.log").start()
        for name, proc in procs.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}/readyz", proc, timeout=120)
        for name in procs:
            answer = httpx.get(f"http://127.0.0.1:{ports[name]}/healthz", timeout=5)
            assert answer.status_code == 200, name
        assert set(procs) == {f"{c}-{k}" for c in contexts.NAMES for k in PORT_SETTING}
    finally:
        for proc in procs.values():
            proc.stop()
