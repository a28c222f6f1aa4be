"""Settlement gas stays within the venue's budget: 30,000 gas per fill in batches of 64, on the
`make bench-gas` workload (both signatures verified on-chain, new maker orders from 4 makers,
64 distinct takers that have traded before), so a change that gives the saving back fails here
rather than in a benchmark nobody ran."""

from venue.bench.gas import GasWorkload
from venue.devchain import Anvil

BUDGET = 30_000


def test_a_batch_of_64_fills_settles_within_30000_gas_per_fill():
    with Anvil(accounts=2) as anvil:
        work = GasWorkload(anvil)
        work.run(64)  # the takers' first trades
        work.run(64)
        per_fill = work.run(64).gasUsed / 64
    assert per_fill <= BUDGET, f"{per_fill:,.0f} gas per fill"
