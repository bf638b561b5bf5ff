"""Where webhooks may go: ``http``/``https`` URLs without a user name or password, whose host
is (and resolves only to) public addresses, so that a merchant's webhook URL cannot make the
gateway POST into the operator's own network (SSRF): no loopback, private, link-local,
multicast, reserved, unspecified or otherwise non-global address, IPv4 inside IPv6 included.

The rules are checked when an account's URL is set and again before every delivery, since a
name may resolve differently later. A delivery then connects to the very address it checked,
keeping the URL's host in the ``Host`` header and for TLS (SNI and certificate), so a name
re-pointed between the check and the connection (DNS rebinding) gains nothing.
``allow_private`` (``PAYCORE_GATEWAY_WEBHOOK_ALLOW_PRIVATE``) lifts the address rule, for
receivers on a private network and for tests; the URL rules stay.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; raises ``OSError`` when the name does not resolve."""
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_PRIVATE_SETTING = "PAYCORE_GATEWAY_WEBHOOK_ALLOW_PRIVATE"


class TargetRefused(ValueError):
    """The URL may not receive webhooks; the message says why."""


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (an IP literal gives itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def non_public(address: Address) -> str | None:
    """What kind of non-public address this is (``"loopback"``, ``"private"`` …), or None
    for a public one. IPv4 carried in IPv6 (mapped, 6to4) is judged as the IPv4 it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour
        if carried is not None:
            return non_public(carried)
    kinds = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),  # 240.0.0.0/4 counts as private too
        ("private", address.is_private),
    )
    found = next((kind for kind, hit in kinds if hit), None)
    return found or (None if address.is_global else "non-global")


@dataclass(frozen=True, slots=True)
class Target:
    """How to send one delivery: the URL to connect to, and the headers and request
    extensions that keep the original host for the receiver and for TLS."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


class WebhookTargets:
    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolve) -> None:
        self.allow_private = allow_private
        self._resolve = resolve

    async def check(self, url: str) -> None:
        """When a URL is set: ``TargetRefused`` if it breaks a rule. A name that does not
        resolve (yet) is accepted; every delivery checks again."""
        parsed = _parsed(url)
        if self.allow_private:
            return
        try:
            addresses = await self._addresses(parsed)
        except OSError:
            return
        _refuse_non_public(parsed, addresses)

    async def pin(self, url: str) -> Target:
        """Before a delivery: where to connect. ``TargetRefused`` if the URL breaks a rule
        (now); ``OSError`` if its name does not resolve (a failed attempt, retried)."""
        parsed = _parsed(url)
        if self.allow_private:
            return Target(url)
        addresses = await self._addresses(parsed)
        _refuse_non_public(parsed, addresses)
        pinned = parsed.copy_with(host=addresses[0])
        # a fresh connection each time: the pool keys connections by address, not by host
        headers = {"host": parsed.netloc.decode("ascii"), "connection": "close"}
        extensions = {"sni_hostname": _ascii_host(parsed)} if parsed.scheme == "https" else {}
        return Target(str(pinned), headers, extensions)

    async def _addresses(self, parsed: httpx.URL) -> list[str]:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = await self._resolve(_ascii_host(parsed), port)
        if not addresses:
            raise OSError(f"{parsed.host} has no address")
        return addresses


def _parsed(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise TargetRefused(f"the webhook URL is not valid: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("a webhook URL must start with http:// or https://")
    if parsed.userinfo:
        raise TargetRefused("a webhook URL must not carry a user name or password")
    try:
        host = parsed.host  # an internationalised name is decoded here, and may not be one
    except UnicodeError as exc:
        raise TargetRefused(f"the webhook URL's host is not a valid name: {exc}") from None
    if not host:
        raise TargetRefused("a webhook URL must name a host")
    return parsed


def _ascii_host(parsed: httpx.URL) -> str:
    return parsed.raw_host.decode("ascii")


def _refuse_non_public(parsed: httpx.URL, addresses: list[str]) -> None:
    for text in addresses:
        kind = non_public(ipaddress.ip_address(text.split("%", 1)[0]))  # no IPv6 zone
        if kind is not None:
            where = "is" if text == parsed.host else f"resolves to {text},"
            article = "an" if kind[0] in "aeiou" else "a"
            raise TargetRefused(
                f"the webhook URL's host {parsed.host} {where} {article} {kind} address; "
                f"webhooks go to public addresses only (unless {ALLOW_PRIVATE_SETTING}=true)"
            )
