"""How many times a JetStream message was delivered, read from its reply subject as the NATS
client's own ``metadata`` reads it (both forms of the subject), and the client's error for a
message that is no JetStream delivery."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg
from nats.errors import NotJSMessageError

from paycore.platform.messaging.brokers.nats import deliveries_so_far

NANOS = "1765000000000000000"


@pytest.mark.parametrize(
    "reply",
    [
        f"$JS.ACK.ORDERS.worker.3.10.7.{NANOS}.5",  # stream, consumer, delivered, ...
        f"$JS.ACK._.ACCOUNT.ORDERS.worker.4.10.7.{NANOS}.5",  # domain and account first
        f"$JS.ACK.hub.ACCOUNT.ORDERS.worker.2.10.7.{NANOS}.5.token",  # and a trailing token
        f"$JS.ACK.ORDERS.worker.1.1.1.{NANOS}.0",
    ],
)
def test_the_count_is_the_clients(reply: str) -> None:
    msg = Msg(_client=None, subject="orders", reply=reply, data=b"")  # type: ignore[arg-type]
    assert deliveries_so_far(msg) == msg.metadata.num_delivered


@pytest.mark.parametrize("reply", ["", "_INBOX.abc.1", "$JS.ACK.too.short"])
def test_what_is_no_delivery_gets_the_clients_error(reply: str) -> None:
    msg = Msg(_client=None, subject="orders", reply=reply, data=b"")  # type: ignore[arg-type]
    with pytest.raises(NotJSMessageError):
        deliveries_so_far(msg)
