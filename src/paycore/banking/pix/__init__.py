"""Pix BR Codes: the EMV® structure (``emv``: data objects, CRC16, the fields' names), Pix's
codes on it (``brcode``: ``BrCode``, ``decode``), Pix keys (``keys``) and the QR image
(``qr``). See docs/banking-pix.md."""
