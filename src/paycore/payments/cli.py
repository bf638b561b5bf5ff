"""The payments context's commands: ``paycore processors`` (the two Rinha payment processor
simulators), and its part of ``paycore up``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import typer

from paycore.payments.settings import PaymentsSettings
from paycore.platform.cli import console
from paycore.platform.ports import Listener
from paycore.platform.settings import Settings

PortOpt = Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port.")]
TokenOpt = Annotated[str, typer.Option(help="Admin token (X-Rinha-Token header).")]


def processors(
    host: Annotated[str, typer.Option(help="Address both processors listen on.")] = "127.0.0.1",
    default_port: PortOpt = 8001,
    fallback_port: PortOpt = 8002,
    default_fee: Annotated[str, typer.Option(help="Default processor fee, in [0, 1).")] = "0.05",
    fallback_fee: Annotated[str, typer.Option(help="Fallback processor fee, in [0, 1).")] = "0.15",
    token: TokenOpt = "123",  # noqa: S107 - the official processors' public default
    max_in_flight: Annotated[
        int, typer.Option(min=1, help="Payments in flight per processor before 429.")
    ] = 2000,
) -> None:
    """Run the default and fallback payment processor simulators (Rinha de Backend 2025)."""
    from paycore.payments.simulator import pair

    try:
        fees = pair.parse_fees(default_fee, fallback_fee)
        ports = (default_port, fallback_port)
        bound = pair.open_processors(host, ports, fees, token=token, max_in_flight=max_in_flight)
    except (ValueError, OSError) as exc:
        console.print(str(exc), style="red", markup=False, highlight=False)
        raise typer.Exit(2) from None
    console.print(pair.banner(bound), markup=False, highlight=False)
    pair.serve_processors(bound)
    console.print("processors stopped")


def register(app: typer.Typer) -> None:
    app.command()(processors)


def _processor_urls() -> tuple[str, str]:
    settings = PaymentsSettings()
    return settings.default_url, settings.fallback_url


def simulators() -> list[list[str]]:
    """What ``paycore up`` runs beside the platform: the processors, on the ports of
    ``PAYCORE_PAYMENTS_DEFAULT_URL`` and ``PAYCORE_PAYMENTS_FALLBACK_URL``."""
    ports = [str(listener.port) for listener in simulator_ports()]
    return [["processors", "--default-port", ports[0], "--fallback-port", ports[1]]]


def simulator_ports() -> list[Listener]:
    """Where the simulators ``paycore up`` runs will listen (checked before it starts)."""
    default, fallback = _processor_urls()
    return [
        Listener(
            f"the {name} payment processor simulator",
            "127.0.0.1",
            urlsplit(url).port or 80,
            f"PAYCORE_PAYMENTS_{name.upper()}_URL",
        )
        for name, url in (("default", default), ("fallback", fallback))
    ]


def banner(settings: Settings, base: str, simulated: bool) -> list[str]:
    urls = " and ".join(_processor_urls())
    return [
        f"payments   {base}/payments/payments-summary   (Rinha contract under /payments)",
        f"processors {urls}{'   (simulators)' if simulated else ''}",
    ]
