"""Ports checked before ``paycore up`` starts anything: one in use, one set twice."""

from __future__ import annotations

import socket

from servers import free_port

from paycore.platform.ports import Listener, conflicts


def test_a_port_in_use_or_set_twice_is_named_with_why() -> None:
    api, worker, spare = free_port(), free_port(), free_port()
    listeners = [
        Listener("the API", "127.0.0.1", api, "PAYCORE_API_PORT"),
        Listener("the worker", "127.0.0.1", worker, "PAYCORE_WORKER_PORT"),
        Listener("the broker", "127.0.0.1", spare, "PAYCORE_NATS_PORT"),
        Listener("a simulator", "127.0.0.1", spare, "PAYCORE_PAYMENTS_DEFAULT_URL"),
    ]
    assert [(x.what, why) for x, why in conflicts(listeners)] == [
        ("a simulator", "the broker is set to use it too")
    ]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", api))
        taken.listen()
        assert [(x.what, why) for x, why in conflicts(listeners[:3])] == [
            ("the API", "address in use")
        ]
    assert list(conflicts(listeners[:3])) == []  # free again: nothing held by the check
