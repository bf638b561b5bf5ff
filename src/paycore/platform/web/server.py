"""How paycore's HTTP servers (uvicorn) run: the options ``paycore api`` and ``paycore worker``
give them."""

from __future__ import annotations

from typing import Any

from paycore.platform.settings import Settings


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for a paycore process (the port aside).

    ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed only from the proxies in
    ``PAYCORE_TRUSTED_PROXIES`` (none by default): uvicorn's own default believes them from
    127.0.0.1, so anything on the host, or a proxy that passes the client's header through,
    could choose the client address the failed-secret lockout counts by."""
    proxies = settings.trusted_proxy_list
    return {
        "host": settings.host,
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 15,
        # longer than a load balancer's idle upstream connections, which then never race our
        # close (a reset answered as 502)
        "timeout_keep_alive": settings.http_keepalive_seconds,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }
