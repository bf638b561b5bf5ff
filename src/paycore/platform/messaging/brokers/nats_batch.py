"""Many JetStream publishes (each acknowledged) and many consumer acks, each batch written as
the NATS protocol's own commands in one buffer.

The client's ``publish_async`` costs about 30 µs of this process's CPU per message: a
semaphore taken under a timeout, a random reply token, a regex on the subject and on every
header, a future with a callback, and on return the acknowledgement parsed into a dataclass.
For the ledger worker, which relays 2,000 ``banking.transfer.posted`` events per batch, that
was a fifth of its time. Here each message of a batch becomes one ``HPUB`` command with a reply
subject under this publisher's own inbox, the batch goes to the client's write buffer at once,
and an acknowledgement only resolves its message's future (its JSON is read only when it says
``error``): about a third of the CPU (``bench/nats_publish.py``). A refusal is raised to the
caller (the client's own reply handler raises it inside its callback instead, and the
publish's future never resolves).

The buffer is the client's (``_send_command``, ``_flush_pending``): what it sends and when is
the client's, as for its own publishes; while disconnected, the client's public ``publish``
is used instead (it knows how much it may buffer meanwhile).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from nats.js.errors import APIError, NoStreamResponseError

Message = tuple[str, bytes, dict[str, str]]
"""A message to publish: subject, body and headers."""

_NO_BREAKS = str.maketrans("\r\n", "  ")
_NO_RESPONDERS = "503"


def _header_block(headers: dict[str, str]) -> bytes:
    """The ``NATS/1.0`` header block; a line break in a key or value (which would end the
    block early) becomes a space, as the client does."""
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers):
        lines = "".join(
            f"{k.translate(_NO_BREAKS)}: {v.translate(_NO_BREAKS)}\r\n" for k, v in headers.items()
        )
    return f"NATS/1.0\r\n{lines}\r\n".encode()


class Publisher:
    """Publishes batches to JetStream and waits for every message's acknowledgement (the
    stream stored it, or said why not)."""

    def __init__(self, nc: Any, timeout: float) -> None:
        self._nc = nc
        self._timeout = timeout
        self._inbox = ""
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._sent = 0

    async def open(self) -> None:
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)

    async def _on_ack(self, msg: Any) -> None:
        future = self._waiting.pop(msg.subject[len(self._inbox) + 1 :], None)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            future.set_exception(NoStreamResponseError())
        elif b'"error"' in msg.data:
            try:  # the client's errors by code; it raises the one it finds
                APIError.from_error(orjson.loads(msg.data)["error"])
            except APIError as refused:
                future.set_exception(refused)
        else:
            future.set_result(None)

    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish ``messages`` in order; returns once each is stored. Raises the first
        refusal, or ``TimeoutError`` if an acknowledgement does not come in time (publishing
        again is safe: the stream drops a repeated message id)."""
        for _, body, _ in messages:
            if len(body) > self._nc.max_payload:
                raise ValueError(f"a message of {len(body)} bytes is over the server's limit")
        loop = asyncio.get_running_loop()
        futures, tokens = [], []
        commands = bytearray()
        buffered = self._nc.is_connected
        try:
            for subject, body, headers in messages:
                self._sent += 1
                token = str(self._sent)
                future: asyncio.Future[None] = loop.create_future()
                self._waiting[token] = future
                futures.append(future)
                tokens.append(token)
                reply = f"{self._inbox}.{token}"
                if buffered:
                    block = _header_block(headers)
                    size = len(block) + len(body)
                    commands += f"HPUB {subject} {reply} {len(block)} {size}\r\n".encode()
                    commands += block
                    commands += body
                    commands += b"\r\n"
                else:
                    await self._nc.publish(subject, body, reply=reply, headers=headers)
            if buffered:
                await self._nc._send_command(bytes(commands))
                await self._nc._flush_pending()
            async with asyncio.timeout(self._timeout):
                outcomes = await asyncio.gather(*futures, return_exceptions=True)
        finally:  # answered or not, these tokens are done with (a late answer finds none)
            for token in tokens:
                self._waiting.pop(token, None)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


async def ack_all(nc: Any, msgs: Sequence[Any]) -> None:
    """Acknowledge JetStream deliveries: one empty ``PUB`` to each one's reply subject."""
    if not nc.is_connected:
        for m in msgs:
            await m.ack()
        return
    await nc._send_command(b"".join(b"PUB %s 0\r\n\r\n" % m.reply.encode() for m in msgs))
    await nc._flush_pending()
