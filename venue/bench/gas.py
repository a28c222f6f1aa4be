"""Gas per fill of ClearingHouse.settle.

Workload: a fresh Anvil, the devnet deployment, 4 market-maker accounts and 64 taker accounts,
all of which have deposited. Every fill carries a new maker order (makers drawn round-robin
from the 4) and a new taker order from a distinct taker; both signatures are verified on-chain.
Batches of 1, 16 and 64 fills, each its own transaction, alternating buy and sell so positions
stay small. Reported for takers' first trade ever (fresh position and order-state slots), for
takers that have traded before growing their positions back (the steady state of an active venue,
the headline figure), and for the batch before it, where every maker and taker reduces its
position and so passes the closing rule (equity and maintenance margin before and after).
"""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from web3.logs import DISCARD

from venue.chain import REPO_ROOT, Fill, contract, deploy, pack_fills, settle_access_list
from venue.devchain import Anvil, dev_keys
from venue.domain import base, usdc
from venue.signing import Order, address_of, sign_order

ETH_PRICE = 3_000 * 10**6
SIZES = (1, 16, 64)
N_TAKERS, N_MAKERS = 64, 4
SNAPSHOT = REPO_ROOT / "snapshots" / "gas.json"


class GasWorkload:
    """The benchmark's chain and traders: a fresh Anvil with the devnet deployment, 4 makers and 64
    takers that have deposited, and `run(n)` to settle one batch of `n` fills."""

    def __init__(self, anvil: Anvil):
        keys = dev_keys(2) + [f"0x{(0xC0FFEE0000 + i):064x}" for i in range(N_MAKERS + N_TAKERS)]
        self.w3 = w3 = anvil.web3()
        owner, self.operator = (address_of(k) for k in keys[:2])
        d = deploy(w3, owner, operator=self.operator, keepers=(owner,))
        self.deployment = d
        self.ch, orc = contract(w3, "ClearingHouse", d.clearing_house), contract(w3, "Oracle", d.oracle)
        tok = contract(w3, "MockERC20", d.usdc)
        self.makers, self.takers = keys[2:2 + N_MAKERS], keys[2 + N_MAKERS:]
        for k in self.makers + self.takers:
            addr = address_of(k)
            w3.eth.send_transaction({"from": owner, "to": addr, "value": 10**18})
            w3.provider.make_request("anvil_impersonateAccount", [addr])
            for fn in (tok.functions.mint(addr, usdc(1_000_000)), tok.functions.approve(d.clearing_house, 2**256 - 1),
                       self.ch.functions.deposit(d.usdc, usdc(1_000_000))):
                w3.eth.wait_for_transaction_receipt(fn.transact({"from": addr}))
        ts = w3.eth.get_block("latest").timestamp
        w3.eth.wait_for_transaction_receipt(
            orc.functions.setPrices([0, 1], [ETH_PRICE, 60_000 * 10**6], ts).transact({"from": owner}))
        self.separator = bytes(self.ch.functions.domainSeparator().call())
        self.nonces = {k: -1 for k in self.makers + self.takers}  # each account numbers its orders 0, 1, 2, ...
        self.batch = 0
        self.round = 0

    def _order(self, key: str, is_buy: bool, size: int) -> tuple[Order, bytes]:
        self.nonces[key] += 1
        o = Order(address_of(key), 0, is_buy, ETH_PRICE, size, 0, 0, self.nonces[key])
        return o, sign_order(o, self.separator, key)

    def run(self, n: int):
        """Settles one batch of `n` fills; returns its receipt. Round 0 opens 0.1 ETH longs for the
        takers; later rounds alternate selling and buying 0.05 ETH, so every taker keeps a
        position, as active traders do."""
        size = base("0.1") if self.round == 0 else base("0.05")
        taker_buys = self.round % 2 == 0
        self.round += 1
        fills = []
        for i in range(n):
            mo, ms = self._order(self.makers[i % N_MAKERS], not taker_buys, size)
            to, ts = self._order(self.takers[i], taker_buys, size)
            fills.append(Fill(mo, ms, to, ts, size, ETH_PRICE))
        data = pack_fills(fills)
        tx = self.ch.functions.settle(self.batch, data).transact({
            "from": self.operator, "gas": 25_000_000,
            "accessList": settle_access_list(self.deployment.clearing_house, data, self.operator)})  # as the venue sends it
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        self.batch += 1
        rejected = self.ch.events.FillRejected().process_receipt(receipt, errors=DISCARD)
        if receipt.status != 1 or rejected:
            raise SystemExit(f"batch of {n} failed: status {receipt.status}, rejected {rejected}")
        return receipt


def main() -> int:
    with Anvil(accounts=2) as anvil:
        work = GasWorkload(anvil)
        first = {64: work.run(64).gasUsed / 64}  # every taker's first trade
        steady, reducing = {}, {}
        for n in SIZES:
            # Every taker and maker reduces (the closing rule runs for both), then grows back.
            reducing[n] = work.run(n).gasUsed / n
            steady[n] = work.run(n).gasUsed / n

    table = Table(title="ClearingHouse.settle gas per fill (2 signatures verified on-chain per fill)")
    table.add_column("fills per batch", justify="right")
    table.add_column("steady state: takers traded before", justify="right")
    table.add_column("both sides reducing (closing rule)", justify="right")
    table.add_column("first trade of every taker", justify="right")
    for n in SIZES:
        table.add_row(str(n), f"{steady[n]:,.0f}", f"{reducing[n]:,.0f}", f"{first[n]:,.0f}" if n in first else "-")
    Console().print(table)
    print("workload: 4 makers (new order per fill), 64 distinct takers that deposited before, "
          "0.05 ETH per fill at 3,000 USDC, per-account sequential nonces; 'gas per fill' = receipt gasUsed / fills, 21k base included")
    figures = {"gas_per_fill_1": round(steady[1]), "gas_per_fill_16": round(steady[16]),
               "gas_per_fill_64": round(steady[64]), "gas_per_fill_64_reducing": round(reducing[64]),
               "gas_per_fill_64_first_trade": round(first[64])}
    # The gas snapshot lives in the repository, so a diff shows when a change moves it.
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"snapshot written to {SNAPSHOT.relative_to(REPO_ROOT)}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
