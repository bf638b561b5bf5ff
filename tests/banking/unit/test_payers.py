"""Who pays a transfer request, without a database: a found pair (secret, account) is kept
and never read again; an unknown secret, or an account that is not the secret's customer's,
is read again each time; the cache holds at most ``most`` pairs. (The lookups themselves, on
both engines: tests/banking/integration/test_payer_lookups.py; through HTTP:
tests/banking/integration/test_bad_input.py and test_flow.py.)"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from paycore.banking.domain import Unauthorized
from paycore.banking.service import Payer, PayerKey, PayerRow, Payers
from paycore.platform.cards import Hasher
from paycore.platform.errors import NotFound
from paycore.platform.persistence.reads import GroupRead

HASHER = Hasher("pepper")


class Table:
    """``store.PAYER`` over a dict: secret hash -> (customer, {account: currency})."""

    def __init__(self, customers: dict[str, tuple[str, dict[str, str]]]) -> None:
        self.rows = {HASHER.secret(s): found for s, found in customers.items()}
        self.reads = 0

    async def many(self, keys: Sequence[PayerKey]) -> dict[PayerKey, PayerRow]:
        found = {}
        for secret_hash, account_id in keys:
            self.reads += 1
            if secret_hash in self.rows:
                customer, accounts = self.rows[secret_hash]
                currency = accounts.get(account_id)
                found[secret_hash, account_id] = (customer, currency and account_id, currency)
        return found


def payers_of(table: Table, most: int = 100) -> Payers:
    return Payers(GroupRead(table.many), most=most)


async def test_a_found_payer_is_read_once() -> None:
    table = Table({"bk_ana": ("ana", {"a1": "BRL"})})
    payers = payers_of(table)
    assert await payers.find(HASHER, "bk_ana", "a1") == Payer("ana", "BRL")
    assert await payers.find(HASHER, "bk_ana", "a1") == Payer("ana", "BRL")
    assert table.reads == 1


async def test_an_unknown_secret_or_anothers_account_is_read_every_time() -> None:
    table = Table({"bk_ana": ("ana", {"a1": "BRL"}), "bk_bia": ("bia", {"b1": "BRL"})})
    payers = payers_of(table)
    assert await payers.find(HASHER, "bk_bia", "b1") == Payer("bia", "BRL")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await payers.find(HASHER, "bk_nobody", "a1")
        with pytest.raises(NotFound):
            await payers.find(HASHER, "bk_bia", "a1")  # Ana's: Bia's secret does not open it
        with pytest.raises(NotFound):
            await payers.find(HASHER, "bk_ana", "unknown")
    assert table.reads == 1 + 6
    # what was refused is found once it exists: a new account is not refused from memory
    table.rows[HASHER.secret("bk_ana")][1]["a2"] = "BRL"
    assert await payers.find(HASHER, "bk_ana", "a2") == Payer("ana", "BRL")


async def test_at_most_most_pairs_are_kept() -> None:
    accounts = {f"a{n}": "BRL" for n in range(5)}
    table = Table({"bk_ana": ("ana", accounts)})
    payers = payers_of(table, most=3)
    for account in accounts:
        await payers.find(HASHER, "bk_ana", account)
    assert len(payers._found) <= 3
    reads = table.reads
    await payers.find(HASHER, "bk_ana", "a4")  # the last one found is still kept
    assert table.reads == reads
