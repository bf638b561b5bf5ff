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

A subject whose stream allows it gets its messages as JetStream *atomic batches* (server
2.12 on): up to ``MAX_ATOMIC`` messages stored together or not at all, with one
acknowledgement, the last message's. On a stream that syncs every write to disk (paycore's
default), the server syncs once per batch instead of once per message: a stream then stores
several times more messages a second, with a fraction of the server's CPU (ADR 0025).

The buffer is the client's (``_send_command``, ``_flush_pending``): what it sends and when is
the client's, as for its own publishes; while disconnected, the client's public ``publish``
is used instead (it knows how much it may buffer meanwhile), one message at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container, Sequence
from typing import Any

import orjson
from nats.js.errors import APIError, NoStreamResponseError

Message = tuple[str, bytes, dict[str, str]]
"""A message to publish: subject, body and headers."""

_NO_BREAKS = str.maketrans("\r\n", "  ")
_NO_RESPONDERS = "503"
MAX_ATOMIC = 1000
"""Messages in one atomic batch: the server's limit."""
ATOMIC_FROM = 16
"""Fewer messages than this go one by one. An atomic batch costs the server about 2.5 ms
whatever its size, a synced message about 0.2 ms: on the development host they break even at
about 16 messages, and a batch of 2,000 is stored 9 times faster (``bench/nats_publish.py``)."""
BATCH_ID, BATCH_SEQUENCE, BATCH_COMMIT = "Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit"
BATCH_HEADERS = frozenset({BATCH_ID, BATCH_SEQUENCE, BATCH_COMMIT})
"""How a message says it belongs to an atomic batch. Only the publisher sets them: a message
that carried them in from elsewhere (a delivery published again) would be taken for part of a
batch never committed, and acknowledged without being stored."""


def _header_block(headers: dict[str, str]) -> bytes:
    """The ``NATS/1.0`` header block; a line break in a key or value (which would end the
    block early) becomes a space, as the client does."""
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers):
        lines = "".join(
            f"{k.translate(_NO_BREAKS)}: {v.translate(_NO_BREAKS)}\r\n" for k, v in headers.items()
        )
    return f"NATS/1.0\r\n{lines}\r\n".encode()


def _hpub(subject: str, reply: str, headers: dict[str, str], body: bytes) -> bytes:
    """A message as the protocol's ``HPUB`` command (``reply`` empty: none)."""
    block = _header_block(headers)
    to = f"{subject} {reply}" if reply else subject
    size = len(block) + len(body)
    return f"HPUB {to} {len(block)} {size}\r\n".encode() + block + body + b"\r\n"


class Publisher:
    """Publishes batches to JetStream and waits until the stream stored every message (or said
    why not)."""

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

    async def publish(self, messages: Sequence[Message], atomic: Container[str] = ()) -> None:
        """Publish ``messages``, each subject's in order; returns once each is stored. Those
        of a subject in ``atomic`` (its stream allows atomic batches) go as atomic batches if
        they are at least ``ATOMIC_FROM``. Raises the first refusal, or ``TimeoutError`` if an
        acknowledgement does not come in time (publishing again is safe: the stream drops a
        repeated message id)."""
        for _, body, _ in messages:
            if len(body) > self._nc.max_payload:
                raise ValueError(f"a message of {len(body)} bytes is over the server's limit")
        by_subject: dict[str, list[Message]] = {}
        for message in messages:
            by_subject.setdefault(message[0], []).append(message)
        batched = {
            subject: mine
            for subject, mine in by_subject.items()
            if subject in atomic and len(mine) >= ATOMIC_FROM
        }
        if not batched or not self._nc.is_connected:
            await self._send(messages)
            return
        plain = [m for m in messages if m[0] not in batched]
        sends = [self._send(plain)] if plain else []
        sends += [self._send_atomic(mine) for mine in batched.values()]
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _send_atomic(self, messages: Sequence[Message]) -> None:
        """One subject's messages as atomic batches, one after another (in order, whatever
        becomes of each). A batch refused is stored not at all; usually it holds a message id
        the stream has stored already (a publish repeated after a lost acknowledgement or a
        crash), which refuses the whole batch, so it is sent again one message at a time, each
        repeat dropped alone and any other refusal raised."""
        for start in range(0, len(messages), MAX_ATOMIC):
            batch = messages[start : start + MAX_ATOMIC]
            try:
                await self._send(batch, atomic=len(batch) >= ATOMIC_FROM)
            except APIError:
                await self._send(batch)

    async def _send(self, messages: Sequence[Message], *, atomic: bool = False) -> None:
        """Send ``messages`` in one buffer, each with a reply subject for its acknowledgement,
        or, ``atomic``, as one batch with the last one's acknowledgement for all."""
        if not messages:
            return
        loop = asyncio.get_running_loop()
        futures, tokens = [], []
        commands = bytearray()
        buffered = self._nc.is_connected
        batch_id = f"{self._inbox}.{self._sent}" if atomic else ""
        try:
            for n, (subject, body, headers) in enumerate(messages, start=1):
                if not BATCH_HEADERS.isdisjoint(headers):
                    headers = {k: v for k, v in headers.items() if k not in BATCH_HEADERS}
                reply = ""
                if atomic:
                    headers = {**headers, BATCH_ID: batch_id, BATCH_SEQUENCE: str(n)}
                    if n == len(messages):
                        headers[BATCH_COMMIT] = "1"
                if not atomic or n == len(messages):
                    self._sent += 1
                    token = str(self._sent)
                    future: asyncio.Future[None] = loop.create_future()
                    self._waiting[token] = future
                    futures.append(future)
                    tokens.append(token)
                    reply = f"{self._inbox}.{token}"
                if buffered:
                    commands += _hpub(subject, reply, headers, body)
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
