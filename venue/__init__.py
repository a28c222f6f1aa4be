"""crossbook venue: off-chain matching, risk and settlement for the on-chain clearinghouse."""
