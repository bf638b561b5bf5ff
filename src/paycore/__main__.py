"""The ``paycore`` command: run the platform, its services, migrations and operator tools."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from paycore import contexts
from paycore.platform.cli import console, load_settings
from paycore.platform.settings import Settings

app = typer.Typer(help="paycore: event-driven payments and orders platform.", no_args_is_help=True)
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
    from paycore.bootstrap import build_api

    try:
        asgi = build_api(settings, context or [], root=root)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    _serve(asgi, settings, port or settings.api_port)


@app.command()
def worker(
    context: ContextOpt = None,
    port: Annotated[int | None, typer.Option(help="Default PAYCORE_WORKER_PORT.")] = None,
) -> None:
    """Run the consumers (and internal services) of the chosen contexts."""
    settings = load_settings()
    _configure_logging(settings)
    from paycore.bootstrap import build_worker

    try:
        asgi = build_worker(settings, context or [])
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    _serve(asgi, settings, port or settings.worker_port)


migrate_app = typer.Typer(
    help="Apply database migrations (every context's Alembic branch) up to their heads.",
    invoke_without_command=True,
)
app.add_typer(migrate_app, name="migrate")


@migrate_app.callback()
def migrate(ctx: typer.Context) -> None:
    """Apply database migrations (every context's Alembic branch) up to their heads."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    from paycore.schema import upgrade

    upgrade(settings.effective_database_url)
    console.print("[green]database is up to date[/green]")


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
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"[green]wrote[/green] {path}")


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

    try:
        # every context's settings checked, and the secrets they need made (on the embedded
        # platform) before anything starts: the processes started below read the same ones
        _, generated = with_secrets(settings, load([]).values())
    except ConfigurationError as exc:
        console.print(f"[red]configuration error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if generated is not None:
        console.print(f"[yellow]{generated_notice(generated)}[/yellow]", highlight=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ)
    env["PAYCORE_DATA_DIR"] = str(settings.data_dir.resolve())
    if not settings.broker_url:
        from paycore.platform.messaging.embedded import start_nats

        children.append(
            start_nats(settings.data_dir, port=settings.nats_port, sync=settings.nats_sync)
        )
        env["PAYCORE_BROKER_URL"] = settings.effective_broker_url
    from paycore.schema import upgrade

    upgrade(settings.effective_database_url)
    admin = "from PAYCORE_ADMIN_TOKEN"
    if not settings.admin_token:  # a fresh operator token for this run only, shown below
        admin = env["PAYCORE_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
    cmd = [sys.executable, "-m", "paycore"]
    parts = [cli for name in contexts.NAMES if (cli := contexts.cli(name)) is not None]
    if simulators:
        for part in parts:
            for args in getattr(part, "simulators", list)():
                children.append(subprocess.Popen([*cmd, *args], env=env, start_new_session=True))
    # Own sessions: Ctrl-C reaches only this process, which then stops the others in order.
    services = [
        subprocess.Popen([*cmd, role], env=env, start_new_session=True)
        for role in ("worker", "api")
    ]
    children.extend(services)
    base = f"http://{settings.host}:{settings.api_port}"
    _wait_ready(
        [f"{base}/readyz", f"http://{settings.host}:{settings.worker_port}/readyz"], services
    )
    lines = [f"API        {base}   (docs {base}/docs, metrics {base}/metrics)"]
    for part in parts:
        lines += getattr(part, "banner", lambda *_: [])(settings, base, simulators)
    lines += [
        f"admin      token {admin}",
        f"broker     {env.get('PAYCORE_BROKER_URL', settings.effective_broker_url)}",
        f"database   {settings.database_url or settings.data_dir.resolve() / 'paycore.db'}",
    ]
    console.print("[bold green]paycore is up[/bold green]")
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False)
    console.print("Press Ctrl-C to stop.")
    _wait_and_stop(children, services)


def _wait_ready(
    urls: list[str], services: list[subprocess.Popen[bytes]], timeout: float = 60
) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        if any(p.poll() is not None for p in services):
            break
        try:
            if httpx.get(pending[0], timeout=1).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    if pending:
        console.print(f"[red]services did not become ready: {pending}[/red]")


def _wait_and_stop(
    children: list[subprocess.Popen[bytes]], services: list[subprocess.Popen[bytes]]
) -> None:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(p.poll() is None for p in services):
        time.sleep(0.2)
    console.print("stopping: draining services…")
    for proc in reversed(services):  # API first (stops taking work), then the worker
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    for proc in children:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    console.print("[green]stopped[/green]")
    if any(p.returncode not in (0, -signal.SIGTERM) for p in services) and not stopping:
        raise typer.Exit(1)


@dead_letters_app.command("list")
def dead_letters_list(
    topic: Annotated[str | None, typer.Option(help="Only this topic.")] = None,
    include_replayed: Annotated[bool, typer.Option("--all", help="Include replayed ones.")] = False,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List dead letters, newest first."""
    settings = load_settings()
    from paycore.platform.messaging import deadletters
    from paycore.platform.persistence.db import create_engine
    from paycore.platform.persistence.uow import Database

    async def run() -> None:
        db = Database(create_engine(settings.effective_database_url))
        rows = await deadletters.list_letters(
            db, topic=topic, include_replayed=include_replayed, limit=limit
        )
        await db.engine.dispose()
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
        table = Table("id", "topic", "consumer", "error", "attempts", "created", "replayed")
        for r in rows:
            table.add_row(
                r.id,
                r.topic,
                r.consumer,
                r.error[:80],
                str(r.attempts),
                r.created_at.isoformat(timespec="seconds"),
                r.replayed_at.isoformat(timespec="seconds") if r.replayed_at else "",
            )
        Console().print(table)

    asyncio.run(run())


@dead_letters_app.command("replay")
def dead_letters_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids.")] = None,
    all_of_topic: Annotated[
        str | None, typer.Option("--topic", help="Replay every one of this topic.")
    ] = None,
) -> None:
    """Put dead letters back on their topic (through the outbox, under a new message id)."""
    settings = load_settings()
    from paycore.platform.messaging import deadletters
    from paycore.platform.persistence.db import create_engine
    from paycore.platform.persistence.uow import Database

    if not ids and not all_of_topic:
        console.print("[red]give dead letter ids or --topic[/red]")
        raise typer.Exit(2)

    async def run() -> int:
        db = Database(create_engine(settings.effective_database_url))
        chosen = list(ids or [])
        if all_of_topic:
            chosen += [
                r.id for r in await deadletters.list_letters(db, topic=all_of_topic, limit=100_000)
            ]
        count = await deadletters.replay(db, chosen)
        await db.engine.dispose()
        return count

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
