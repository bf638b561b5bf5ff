"""Decoding consumed messages. A decoder is a pure function of a message's bytes (and of the
configuration: a card key): whatever it raises, the same bytes raise again on every attempt.
So a message that does not decode is refused at once (a dead letter with the reason), never
retried as a transient failure, whatever the exception: the decoder's own refusal, or one from
a layer below it that it did not foresee (a ``RecursionError`` from 100,000 nested arrays, a
``ValueError`` from a cipher given a nonce of the wrong size, a ``decimal.Overflow``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

S = TypeVar("S")
T = TypeVar("T")


@dataclass(slots=True)
class Decoded(Generic[T]):
    """Per input, None (decoded) or why it is refused; and the decoded values by input index."""

    verdicts: list[str | None]
    values: list[tuple[int, T]] = field(default_factory=list)


def decode_each(
    inputs: Sequence[S],
    decode: Callable[[S], T],
    *,
    own: type[Exception] | tuple[type[Exception], ...] = (),
    describe: Callable[[Any], str] = str,
) -> Decoded[T]:
    """Decode each input. A refusal of the decoder's own (``own``) is described by
    ``describe``; any other exception is named with its type."""
    decoded: Decoded[T] = Decoded([None] * len(inputs))
    for index, item in enumerate(inputs):
        try:
            decoded.values.append((index, decode(item)))
        except own as exc:
            decoded.verdicts[index] = describe(exc)
        except Exception as exc:  # deterministic too: see the module doc
            decoded.verdicts[index] = f"undecodable ({type(exc).__name__}): {exc}"
    return decoded
