"""A BR Code's QR image, as PNG bytes or SVG text (segno), at error correction level M."""

from __future__ import annotations

import io

import segno

ERROR_CORRECTION = "m"
"""Level M: a QR symbol still reads with about 15% of it damaged."""


def png(payload: str, *, scale: int = 8, border: int = 4) -> bytes:
    """The QR code of ``payload`` as a PNG image: ``scale`` pixels a module, a quiet zone of
    ``border`` modules (4, as the QR standard asks)."""
    out = io.BytesIO()
    symbol(payload).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def svg(payload: str, *, scale: int = 8, border: int = 4) -> str:
    """The QR code of ``payload`` as an SVG document."""
    out = io.BytesIO()
    symbol(payload).save(out, kind="svg", scale=scale, border=border, encoding="utf-8")
    return out.getvalue().decode()


def symbol(payload: str) -> segno.QRCode:
    """The QR symbol of ``payload``: the smallest version that holds it at level M."""
    if not payload:
        raise ValueError("there is no payload to draw")
    return segno.make_qr(payload, error=ERROR_CORRECTION, boost_error=False, encoding="utf-8")
