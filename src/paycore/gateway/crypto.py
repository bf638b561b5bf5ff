"""The gateway's credentials: random secrets with a recognisable prefix (``pcsk_`` for account
secrets, ``whsec_`` for webhook signing secrets) and webhook signatures
(``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``). Card protection (sealing, keyed
hashes) is the platform's: :mod:`paycore.platform.cards`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

SECRET_PREFIX: Final = "pcsk_"  # noqa: S105 - a prefix, not a secret
WEBHOOK_SECRET_PREFIX: Final = "whsec_"  # noqa: S105


def new_secret(prefix: str = SECRET_PREFIX) -> str:
    """A fresh random credential: the prefix and 32 random bytes (base64url)."""
    return prefix + secrets.token_urlsafe(32)


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Paycore-Signature`` header value for a webhook body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_webhook(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    expected = sign_webhook(secret, timestamp, body).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, fields.get("v1", ""))
