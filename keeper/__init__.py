"""crossbook keeper bots: oracle, funding and liquidation keepers."""
