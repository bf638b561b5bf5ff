"""The gateway's part of ``paycore up``."""

from __future__ import annotations

from paycore.platform.settings import Settings


def banner(settings: Settings, base: str, simulated: bool) -> list[str]:
    return [f"gateway    {base}/gateway/dashboard   (merchant dashboard)"]
