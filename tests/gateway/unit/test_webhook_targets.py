"""Where webhooks may go (SSRF rules): each kind of refused URL and address, names checked by
what they resolve to, private addresses let through only when allowed, and a delivery pinned
to the address that was checked."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from paycore.gateway.webhook_targets import TargetRefused, WebhookTargets, non_public


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # cloud metadata services
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-global"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("93.184.215.14", None),
        ("8.8.8.8", None),
        ("::ffff:8.8.8.8", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
    ],
)
def test_addresses_are_judged_by_kind(address: str, kind: str | None) -> None:
    assert non_public(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://shop.example/hook", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("https://user:pw@shop.example/hook", "must not carry a user name or password"),
        ("https://token@shop.example/hook", "must not carry a user name or password"),
        ("http://xn--moa-gga6313dzj25c/", "host is not a valid name"),  # ¶ in a name
        ("http://127.0.0.1:8080/hook", "host 127.0.0.1 is a loopback address"),
        ("http://[::1]/hook", "host ::1 is a loopback address"),
        ("http://[::ffff:7f00:1]/hook", "host ::ffff:7f00:1 is a loopback address"),
        ("http://0.0.0.0/hook", "host 0.0.0.0 is an unspecified address"),
        ("http://10.1.2.3/hook", "host 10.1.2.3 is a private address"),
        ("http://169.254.169.254/latest", "host 169.254.169.254 is a link-local address"),
        ("http://224.0.0.1/hook", "host 224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/hook", "host 240.0.0.1 is a reserved address"),
        ("http://localhost:8000/hook", "host localhost resolves to 127.0.0.1, a loopback"),
        ("https://intranet.example/hook", "resolves to 10.1.2.3, a private address"),
        ("https://metadata.example/", "resolves to 169.254.169.254, a link-local address"),
        ("https://split.example/hook", "resolves to 192.168.0.9, a private address"),
        ("https://mapped.example/hook", "resolves to ::ffff:127.0.0.1, a loopback address"),
        (
            "https://mapped-metadata.example/",
            "resolves to ::ffff:169.254.169.254, a link-local address",
        ),
    ],
)
async def test_refused_urls_say_why(fake_dns: Any, url: str, message: str) -> None:
    targets = WebhookTargets(allow_private=False, resolve=fake_dns)
    with pytest.raises(TargetRefused, match=message.replace("(", r"\(")) as refused:
        await targets.check(url)
    if "address" in message:
        assert "PAYCORE_GATEWAY_WEBHOOK_ALLOW_PRIVATE=true" in str(refused.value)
    with pytest.raises(TargetRefused):
        await targets.pin(url)  # and at send time


@pytest.mark.parametrize(
    "url",
    ["https://shop.example/hook", "http://93.184.215.14:8080/h?x=1", "https://v6.example/"],
)
async def test_public_urls_pass(fake_dns: Any, url: str) -> None:
    await WebhookTargets(allow_private=False, resolve=fake_dns).check(url)


async def test_a_name_that_does_not_resolve_yet_is_accepted_but_not_sent_to(
    fake_dns: Any,
) -> None:
    targets = WebhookTargets(allow_private=False, resolve=fake_dns)
    await targets.check("https://not-yet.example/hook")
    with pytest.raises(OSError, match="not known"):
        await targets.pin("https://not-yet.example/hook")


async def test_allowing_private_addresses_keeps_the_url_rules(fake_dns: Any) -> None:
    targets = WebhookTargets(allow_private=True, resolve=fake_dns)
    for url in ("http://127.0.0.1:9000/hook", "http://localhost/h", "https://intranet.example/"):
        await targets.check(url)
        assert (await targets.pin(url)).url == url  # sent as is
    for url in ("ftp://127.0.0.1/", "http://u:p@127.0.0.1/"):
        with pytest.raises(TargetRefused):
            await targets.check(url)
    assert fake_dns.asked == []


async def test_a_delivery_is_pinned_to_the_checked_address(fake_dns: Any) -> None:
    targets = WebhookTargets(allow_private=False, resolve=fake_dns)
    https = await targets.pin("https://shop.example:8443/hooks?k=1")
    assert https.url == "https://93.184.215.14:8443/hooks?k=1"
    assert https.headers == {"host": "shop.example:8443", "connection": "close"}
    assert https.extensions == {"sni_hostname": "shop.example"}
    v6 = await targets.pin("http://v6.example/h")
    assert v6.url == "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/h"
    assert v6.headers["host"] == "v6.example"
    assert v6.extensions == {}  # plain http: no TLS
    assert fake_dns.asked == ["shop.example", "v6.example"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:8000/hook", "host localhost resolves to"),  # /etc/hosts: loopback
        ("http://127.0.0.1/hook", "is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "is a link-local address"),
        ("http://[::ffff:169.254.169.254]/latest", "is a link-local address"),
        ("http://[::ffff:127.0.0.1]:8000/", "is a loopback address"),
        ("http://2130706433/hook", "resolves to 127.0.0.1, a loopback"),  # one number
    ],
)
async def test_the_system_resolver_is_held_to_the_same_rules(url: str, message: str) -> None:
    """The attack with the resolver deliveries use (no fake DNS), at set and at send time."""
    targets = WebhookTargets(allow_private=False)
    with pytest.raises(TargetRefused, match=message):
        await targets.check(url)
    with pytest.raises(TargetRefused, match=message):
        await targets.pin(url)
