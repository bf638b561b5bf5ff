"""Banking's cards: debit and credit cards on customers' accounts, their authorizations (holds
on the ledger), captures and voids. See docs/banking-cards.md."""
