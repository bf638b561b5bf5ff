"""Banking's loans: a loan's repayment plan (``schedule``: Price or SAC, due dates, interest
rounded to the centavo), its effective yearly cost (``cost``: the CET), the IOF a natural
person pays on it (``iof``) and the three as one document (``simulation``); ``cli`` is the
operator's ``paycore banking loans simulate``. Those four are pure: standard library only.

On them, the customers' loans as a service: the lending rule and each loan's ledger transfers
(``domain``), its tables (``store``), events (``messages``), use cases (``service``,
``repayment``), routes (``api``, ``views``), and the banking worker's part (``worker``):
deciding applications and paying them out (``consumers``, ``underwriting``) and collecting
instalments on their due dates (``collector``). See docs/banking-loans.md."""
