"""The stock ledger: lots, append-only movements, balances, FEFO picking, donor traceability."""
