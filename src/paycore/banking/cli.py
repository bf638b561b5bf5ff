"""The banking context's commands: ``paycore banking verify`` (the journal's hash chain and
every balance, checked from the first entry), ``paycore banking pix`` (BR Codes encoded and
decoded, ``pix/cli.py``), ``paycore banking loans simulate`` (a loan's plan and cost,
``loans/cli.py``), and its part of ``paycore up``."""

from __future__ import annotations

import asyncio

import typer

from paycore.banking.loans import cli as loans
from paycore.banking.pix import cli as pix
from paycore.platform.cli import console, fail, load_settings
from paycore.platform.failures import describe
from paycore.platform.settings import Settings


def verify() -> None:
    """Walk the ledger's journal: every entry's hash and the one before it, every balance it
    records, every stored balance against the entries. Exit status 1 at the first problem."""
    settings = load_settings()
    from rich.progress import Progress
    from sqlalchemy.exc import DBAPIError

    from paycore.banking.ledger import store
    from paycore.banking.ledger.verify import Report
    from paycore.banking.ledger.verify import verify as walk
    from paycore.platform.persistence.db import create_engine

    async def run() -> Report:
        engine = create_engine(settings.effective_database_url)
        try:
            async with engine.connect() as conn:
                total = await store.entry_count(conn)
                with Progress(console=console, transient=True) as progress:
                    task = progress.add_task("verifying the journal", total=total)
                    return await walk(conn, progress=lambda n: progress.advance(task, n))
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except (DBAPIError, OSError) as exc:
        raise fail(
            f"cannot read the ledger ({describe(exc)}); has `paycore migrate` run?"
        ) from None
    if report.problem is not None:
        console.print(
            f"[red]ledger NOT intact[/red] after {report.entries} good entries: {report.problem}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    console.print(
        f"[green]ledger intact[/green]: {report.entries} entries chained and hashed, "
        f"{report.accounts} accounts' balances match their entries, debits equal credits",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    banking = typer.Typer(help="The banking context's operator tools.", no_args_is_help=True)
    banking.command("verify")(verify)
    pix.register(banking)
    loans.register(banking)
    app.add_typer(banking, name="banking")


def banner(settings: Settings, base: str, simulated: bool) -> list[str]:
    return [f"banking    {base}/docs#/banking   (customers, accounts, transfers, ledger)"]
