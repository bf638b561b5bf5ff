"""The operator's credential, shared by the admin routes of every context:
``Authorization: Bearer $PAYCORE_ADMIN_TOKEN``, compared in constant time. With no token
configured administration is off and admin routes answer 503."""

from __future__ import annotations

import hashlib
import hmac

from paycore.platform.errors import DomainError, Unauthorized


class AdminRequired(Unauthorized):
    """The admin token is required (missing or wrong)."""

    needed = "The admin token is required."


class AdminDisabled(DomainError):
    """Administration is off (no admin token is configured)."""

    code = "admin-disabled"
    status = 503


ADMIN_ERRORS = (AdminRequired, AdminDisabled)
"""What an admin route may answer for its credential (for its ``errors``)."""


def admin_allowed(configured: str, offered: str | None) -> bool:
    """Constant-time comparison with the configured admin token (never allowed when unset)."""
    return (
        bool(configured)
        and offered is not None
        and hmac.compare_digest(
            hashlib.sha256(configured.encode()).digest(), hashlib.sha256(offered.encode()).digest()
        )
    )


def require_admin(configured: str, authorization: str | None) -> None:
    """``AdminDisabled`` without a configured token, ``AdminRequired`` unless the request's
    ``Authorization`` header carries it as a bearer token."""
    if not configured:
        raise AdminDisabled("Administration is off: set PAYCORE_ADMIN_TOKEN to enable it.")
    scheme, _, value = (authorization or "").partition(" ")
    offered = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    if not admin_allowed(configured, offered):
        raise AdminRequired()
