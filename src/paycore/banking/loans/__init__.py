"""Banking's loans: a loan's repayment plan (``schedule``: Price or SAC, due dates, interest
rounded to the centavo), its effective yearly cost (``cost``: the CET) and the IOF a natural
person pays on it (``iof``); ``cli`` is the operator's ``paycore banking loans simulate``. The
first three are pure: standard library only. See docs/banking-loans.md."""
