"""Banking's auto insurance (seed 002): quotes, priced from configurable rates with every
component shown (``quote``), and a policy's term and what its cancellation refunds
(``policy``). Pure rules, standard library only. See docs/banking-insurance.md."""
