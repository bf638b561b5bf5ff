"""The ``paycore`` command: run the platform, its services, migrations and operator tools."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from paycore import contexts
from paycore.platform.cli import Commands, console, explain, fail, load_settings
from paycore.platform.failures import OperatorError, redacted
from paycore.platform.ports import Listener, conflicts
from paycore.platform.settings import Settings

app = typer.Typer(
    cls=Commands, help="paycore: event-driven payments and orders platform.", no_args_is_help=True
)
dead_letters_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
app.add_typer(dead_letters_app, name="dead-letters")

ContextOpt = Annotated[
    list[str] | None,
    typer.Option("--context", "-c", help="Context to serve (repeatable); default all."),
]


def _serve(asgi: object, settings: Settings, port: int) -> None:
    import uvicorn

    from paycore.platform.web.server import server_options

    uvicorn.run(asgi, port=port, **server_options(settings))  # type: ignore[arg-type]


def _configure_logging(settings: Settings) -> None:
    from paycore.platform.observability import logging as plog

    plog.configure(settings.log_level, json=settings.log_json)


@app.command()
def api(
    context: ContextOpt = None,
    root: Annotated[bool, typer.Option(help="Serve the single chosen context at /.")] = False,
    port: Annotated[int | None, typer.Option(help="Default PAYCORE_API_PORT.")] = None,
) -> None:
    """Serve the public HTTP API (and relay its outbox)."""
    settings = load_settings()
    _configure_logging(settings)
    from paycore.bootstrap import build_api, reach_servers

    asyncio.run(reach_servers(settings))  # before secrets are made for a database not there
    try:
        asgi = build_api(settings, context or [], root=root)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    _serve(asgi, settings, port or settings.api_port)


@app.command()
def worker(
    context: ContextOpt = None,
    port: Annotated[int | None, typer.Option(help="Default PAYCORE_WORKER_PORT.")] = None,
) -> None:
    """Run the consumers (and internal services) of the chosen contexts."""
    settings = load_settings()
    _configure_logging(settings)
    from paycore.bootstrap import build_worker, reach_servers

    asyncio.run(reach_servers(settings))  # before secrets are made for a database not there
    try:
        asgi = build_worker(settings, context or [])
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    _serve(asgi, settings, port or settings.worker_port)


migrate_app = typer.Typer(
    help="Apply database migrations (every context's Alembic branch) up to their heads.",
    invoke_without_command=True,
)
app.add_typer(migrate_app, name="migrate")


@migrate_app.callback()
def migrate(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Change nothing: exit 0 if the database is at every head, else say what to do "
            "and exit 1 (new pods wait on it for the migrations of their release).",
        ),
    ] = False,
) -> None:
    """Apply database migrations (every context's Alembic branch) up to their heads."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    if check:
        from paycore.schema import check as at_heads

        at_heads(settings.effective_database_url)
        console.print(
            f"[green]the database is up to date[/green]: {_database_place(settings)}",
            highlight=False,
        )
        return
    from paycore.schema import upgrade

    upgrade(settings.effective_database_url)
    console.print(
        f"[green]the database is up to date[/green]: {_database_place(settings)}", highlight=False
    )


@migrate_app.command("new")
def migrate_new(
    context: Annotated[str, typer.Argument(help="The context whose branch gets the revision.")],
    message: Annotated[str, typer.Option("--message", "-m", help="What the revision does.")],
) -> None:
    """Generate a context's next migration from its tables (the database is migrated first)."""
    settings = load_settings()
    from paycore.schema import new_revision

    try:
        path = new_revision(settings.effective_database_url, context, message)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    console.print(f"[green]wrote[/green] {path}")


@dataclass(frozen=True)
class _Child:
    """A process ``up`` started, named as its messages name it."""

    name: str
    popen: subprocess.Popen[bytes]


@app.command()
def up(
    simulators: Annotated[
        bool,
        typer.Option(
            "--simulators/--no-simulators",
            "--processors/--no-processors",
            help="Also run the simulators that stand in for external systems (the two "
            "payment processors, on the ports of their URL settings).",
        ),
    ] = True,
) -> None:
    """Run everything on embedded defaults: NATS JetStream, SQLite, API and workers."""
    settings = load_settings()
    from paycore.bootstrap import ConfigurationError, generated_notice, load, with_secrets

    parts = [cli for name in contexts.NAMES if (cli := contexts.cli(name)) is not None]
    busy = list(conflicts(_listeners(settings, parts, simulators)))
    for listener, why in busy:
        fail(
            f"paycore did not start: {listener.what} could not listen on "
            f"{listener.host}:{listener.port} ({why}); stop what uses it or set {listener.setting}"
        )
    if busy:
        raise typer.Exit(1)
    try:
        # every context's settings checked, and the secrets they need made (on the embedded
        # platform) before anything starts: the processes started below read the same ones
        _, generated = with_secrets(settings, load([]).values())
    except ConfigurationError as exc:
        console.print(f"[red]configuration error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if generated is not None:
        console.print(f"[yellow]{generated_notice(generated)}[/yellow]", highlight=False)
    children: list[_Child] = []
    try:
        admin = _start(settings, parts, simulators, children)
    except (OperatorError, KeyboardInterrupt) as exc:
        _stop(children)
        if isinstance(exc, KeyboardInterrupt):
            raise typer.Exit(130) from None
        raise fail(f"paycore did not start: {explain(exc)}") from None
    base = f"http://{settings.host}:{settings.api_port}"
    lines = [f"API        {base}   (docs {base}/docs, metrics {base}/metrics)"]
    for part in parts:
        lines += getattr(part, "banner", lambda *_: [])(settings, base, simulators)
    lines += [
        f"admin      token {admin}",
        f"broker     {redacted(settings.effective_broker_url)}",
        f"database   {_database_place(settings)}",
        f"data       {settings.data_dir}   (PAYCORE_DATA_DIR)",
    ]
    console.print("[bold green]paycore is up[/bold green]")
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    console.print("Press Ctrl-C to stop.")
    _wait_and_stop(children)


def _listeners(settings: Settings, parts: Sequence[ModuleType], simulators: bool) -> list[Listener]:
    """Where the processes ``up`` starts will listen."""
    listeners = [
        Listener("the API", settings.host, settings.api_port, "PAYCORE_API_PORT"),
        Listener("the worker", settings.host, settings.worker_port, "PAYCORE_WORKER_PORT"),
    ]
    if not settings.broker_url:
        listeners.append(
            Listener(
                "the embedded NATS server", "127.0.0.1", settings.nats_port, "PAYCORE_NATS_PORT"
            )
        )
    if simulators:
        for part in parts:
            listeners += getattr(part, "simulator_ports", list)()
    return listeners


def _start(
    settings: Settings, parts: Sequence[ModuleType], simulators: bool, children: list[_Child]
) -> str:
    """Start the broker (unless one is set), migrate, start the simulators, the worker and the
    API, and wait until every one is ready; each process started is added to ``children`` at
    once (to be stopped if a later step fails). Returns the operator token of the run."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PAYCORE_DATA_DIR"] = str(settings.data_dir)
    if not settings.broker_url:
        from paycore.platform.messaging.embedded import start_nats

        nats = start_nats(settings.data_dir, port=settings.nats_port, sync=settings.nats_sync)
        children.append(_Child("the embedded NATS server", nats))
        env["PAYCORE_BROKER_URL"] = settings.effective_broker_url
    from paycore.schema import upgrade

    upgrade(settings.effective_database_url)
    admin = settings.admin_token and "from PAYCORE_ADMIN_TOKEN"
    if not admin:  # a fresh operator token for this run only, shown in the banner
        admin = env["PAYCORE_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
    cmd = [sys.executable, "-m", "paycore"]
    # Own sessions: Ctrl-C reaches only this process, which then stops the others in order.
    if simulators:
        for part in parts:
            for args in getattr(part, "simulators", list)():
                popen = subprocess.Popen([*cmd, *args], env=env, start_new_session=True)
                children.append(_Child("the simulators", popen))
    ready: list[tuple[_Child, str]] = []
    for role, name, port in (
        ("worker", "the worker", settings.worker_port),
        ("api", "the API", settings.api_port),
    ):
        child = _Child(name, subprocess.Popen([*cmd, role], env=env, start_new_session=True))
        children.append(child)
        ready.append((child, f"http://{settings.host}:{port}/readyz"))
    _wait_ready(ready, children)
    return admin


def _database_place(settings: Settings) -> str:
    """Where the database is: its URL without the password, or the SQLite file."""
    if settings.database_url:
        return redacted(settings.database_url)
    return str(settings.data_dir / "paycore.db")


def _wait_ready(
    ready: list[tuple[_Child, str]], children: list[_Child], timeout: float = 60
) -> None:
    """Until each ``/readyz`` of ``ready`` answers 200; an ``OperatorError`` if a child exits
    first or the time is up."""
    import httpx

    deadline = time.monotonic() + timeout
    pending = list(ready)
    while pending:
        for child in children:
            if (code := child.popen.poll()) is not None:
                raise OperatorError(
                    f"{child.name} exited with status {code} before paycore was ready "
                    "(its output is above)"
                )
        if time.monotonic() > deadline:
            raise OperatorError(f"{pending[0][0].name} was not ready within {timeout:g} s")
        try:
            if httpx.get(pending[0][1], timeout=1).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.1)


def _wait_and_stop(children: list[_Child]) -> None:
    """Run until Ctrl-C (or SIGTERM), or until a child exits; then stop them all."""
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(c.popen.poll() is None for c in children):
        time.sleep(0.2)
    died = [c for c in children if c.popen.poll() is not None]
    for child in died:
        fail(f"{child.name} exited with status {child.popen.returncode}; stopping paycore")
    console.print("stopping: draining services…")
    _stop(children)
    console.print("[green]stopped[/green]")
    if died and not stopping:
        raise typer.Exit(1)


def _stop(children: list[_Child]) -> None:
    """Stop the children, last started first: the API (it stops taking work), the worker
    (in-flight batches finish, the outbox is flushed), the simulators, then the broker."""
    for child in reversed(children):
        if child.popen.poll() is None:
            child.popen.send_signal(signal.SIGTERM)
            try:
                child.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.popen.kill()
                child.popen.wait()


def _migrated_database() -> str:
    """The database's URL, once it answers and is migrated (else an ``OperatorError``)."""
    settings = load_settings()
    from paycore.schema import check

    check(settings.effective_database_url)
    return settings.effective_database_url


@dead_letters_app.command("list")
def dead_letters_list(
    topic: Annotated[str | None, typer.Option(help="Only this topic.")] = None,
    include_replayed: Annotated[bool, typer.Option("--all", help="Include replayed ones.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, the newest.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List dead letters, newest first: each one's full id, topic, consumer, attempts and
    times, then its error on a line of its own (cut to the screen; whole with --json)."""
    url = _migrated_database()
    from paycore.platform.messaging import deadletters
    from paycore.platform.persistence.db import create_engine
    from paycore.platform.persistence.uow import Database

    async def run() -> Sequence[Any]:
        db = Database(create_engine(url))
        try:
            return await deadletters.list_letters(
                db, topic=topic, include_replayed=include_replayed, limit=limit
            )
        finally:
            await db.engine.dispose()

    rows = asyncio.run(run())
    if as_json:
        for r in rows:
            print(
                orjson.dumps(
                    {
                        "id": r.id,
                        "topic": r.topic,
                        "consumer": r.consumer,
                        "messageId": r.message_id,
                        "error": r.error,
                        "attempts": r.attempts,
                        "createdAt": r.created_at.isoformat(),
                        "replayedAt": r.replayed_at.isoformat() if r.replayed_at else None,
                        "body": r.body.decode("utf-8", "replace"),
                    }
                ).decode()
            )
        return
    out = Console(highlight=False)
    for r in rows:
        head = f"{r.id}  {r.topic}  consumer {r.consumer}  attempts {r.attempts}  "
        head += f"created {r.created_at.isoformat(timespec='seconds')}"
        if r.replayed_at:
            head += f"  replayed {r.replayed_at.isoformat(timespec='seconds')}"
        out.print(head, markup=False, soft_wrap=True)  # never cut: the id is copied from it
        out.print(f"    {r.error}", markup=False, no_wrap=True, overflow="ellipsis")
    if len(rows) == limit:
        said = f"the newest {limit} dead letters (--limit N shows more); --json shows each in full"
    elif rows:
        said = f"{len(rows)} dead letter(s); --json shows each in full, body included"
    else:
        said = f"no dead letters{f' on {topic}' if topic else ''}"
    console.print(said, markup=False, highlight=False, soft_wrap=True)


@dead_letters_app.command("replay")
def dead_letters_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids.")] = None,
    all_of_topic: Annotated[
        str | None, typer.Option("--topic", help="Replay every one of this topic.")
    ] = None,
) -> None:
    """Put dead letters back on their topic (through the outbox, under a new message id): all
    of those named, or none if any is unknown or was replayed already."""
    if not ids and not all_of_topic:
        raise fail("give dead letter ids or --topic", 2)
    url = _migrated_database()
    from paycore.platform.messaging import deadletters
    from paycore.platform.persistence.db import create_engine
    from paycore.platform.persistence.uow import Database

    async def run() -> int:
        db = Database(create_engine(url))
        try:
            chosen = list(ids or [])
            if all_of_topic:
                letters = await deadletters.list_letters(db, topic=all_of_topic, limit=100_000)
                chosen += [r.id for r in letters]
            return await deadletters.replay(db, chosen) if chosen else 0
        finally:
            await db.engine.dispose()

    count = asyncio.run(run())
    console.print(
        f"[green]{count} dead letter(s) queued for replay[/green] (the API or a worker relays them)"
    )


for _name in contexts.NAMES:
    if (_part := contexts.cli(_name)) is not None and hasattr(_part, "register"):
        _part.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
