"""Pix. BR Codes: the EMV® structure (``emv``: data objects, CRC16, the fields' names), Pix's
codes on it (``brcode``: ``BrCode``, ``decode``), Pix keys (``keys``) and the QR image
(``qr``). On them, the customers' Pix: the rules (``domain``), the tables (``store``), keys
and charges (``service``), payments and refunds settled through the ledger (``payments``),
the routes (``api``, ``views``). See docs/banking-pix.md."""
