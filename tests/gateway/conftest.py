"""Fixtures of the gateway tests: a fake DNS for the webhook target rules."""

from __future__ import annotations

import ipaddress
import socket

import pytest

PUBLIC_IP = "93.184.215.14"
NAMES = {
    "shop.example": [PUBLIC_IP],
    "hooks.example": [PUBLIC_IP],
    "v6.example": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "localhost": ["127.0.0.1", "::1"],
    "intranet.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "split.example": [PUBLIC_IP, "192.168.0.9"],  # one public, one private record
    "mapped.example": ["::ffff:127.0.0.1"],  # IPv4 loopback inside an AAAA record
    "mapped-metadata.example": ["::ffff:169.254.169.254"],
}


class FakeDNS:
    """A resolver for :class:`WebhookTargets`: the names above (``names`` can be changed,
    as a DNS record would), IP literals as themselves, anything else unknown."""

    def __init__(self) -> None:
        self.names = {name: list(addresses) for name, addresses in NAMES.items()}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.names[host]


@pytest.fixture
def fake_dns() -> FakeDNS:
    return FakeDNS()
