"""Stateful random sequences (Hypothesis, fixed seed) against the real contracts on their own
Anvil: deposits, withdrawals, batches of signed orders (several signed under one nonce), colluding
accounts closing at the band edges, partial closes, oracle jumps with a liquidator bot reacting,
funding rate updates at random times, liquidations of random sizes, guardian pauses and
reduce-only markets. After every step, in one eth_call (contracts/mocks/InvariantLens.sol):

- conservation, exact to the unit: the ClearingHouse's quote tokens = the sum over accounts of
  (quote - cost bases) + fee pool + funding pool + insurance fund; its WETH = the WETH balances;
- positions in each market sum to zero and open interest is the long side;
- no account holds a position with negative equity once the liquidator has reacted, and a flat
  account below zero has a BadDebt event (or WETH collateral that fell: see README);
- no fill leaves a party with negative equity; no liquidation of an account above maintenance
  margin; no withdrawal leaves an account below initial margin; no (account, nonce) settles more
  than the largest size signed under it; a paused venue settles nothing.

The run is sized by CROSSBOOK_INVARIANT_EXAMPLES x CROSSBOOK_INVARIANT_STEPS (at most that many
steps: Hypothesis ends some sequences early); the default 60 x 200 runs a little over 10,000
steps, about three minutes here, and requires CROSSBOOK_INVARIANT_MIN_STEPS (10,000) of them.
`make test-invariants-long` runs 250 x 400.
"""

from __future__ import annotations

import os
from collections import defaultdict

from hypothesis import HealthCheck, Phase, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from venue import risk
from venue.chain import Fill, artifact, deploy, pack_fills
from venue.devchain import Anvil, dev_keys
from venue.domain import DEVNET_MARKETS, RejectReason, usdc
from venue.signing import Order, address_of, sign_order

from ..rawcontract import RawContract

ETH, BTC = 0, 1
PRICES = {ETH: 3_000 * 10**6, BTC: 60_000 * 10**6}
N_TRADERS = 4
EXAMPLES = int(os.environ.get("CROSSBOOK_INVARIANT_EXAMPLES", "60"))
STEPS = int(os.environ.get("CROSSBOOK_INVARIANT_STEPS", "200"))
MIN_STEPS = int(os.environ.get("CROSSBOOK_INVARIANT_MIN_STEPS", "10000"))


class Chain:
    """One Anvil with the devnet deployment, a lens, and raw JSON-RPC bindings (a step is a few ms)."""

    def __init__(self, anvil: Anvil):
        self.w3 = w3 = anvil.web3()
        keys = dev_keys(10)
        self.owner, self.operator, self.keeper, self.guardian = (address_of(k) for k in keys[:4])
        self.trader_keys = keys[4:4 + N_TRADERS]
        self.traders = [address_of(k) for k in self.trader_keys]
        self.liquidator = address_of(keys[8])
        d = deploy(w3, self.owner, operator=self.operator, keepers=(self.keeper,), guardian=self.guardian)
        self.ch = RawContract(w3, d.clearing_house, artifact("ClearingHouse")["abi"])
        self.oracle = RawContract(w3, d.oracle, artifact("Oracle")["abi"])
        self.usdc = RawContract(w3, d.usdc, artifact("MockERC20")["abi"])
        self.weth = RawContract(w3, d.weth, artifact("MockERC20")["abi"])
        lens = artifact("InvariantLens")
        factory = w3.eth.contract(abi=lens["abi"], bytecode=lens["bytecode"])
        address = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": self.owner})).contractAddress
        self.lens = RawContract(w3, address, lens["abi"])
        self.separator = bytes(self.ch.call("domainSeparator"))
        self.accounts = self.traders + [self.liquidator]
        for a in self.accounts:
            for token in (self.usdc, self.weth):
                token.send("approve", self.ch.address, 2**256 - 1, sender=a)

    def now(self) -> int:
        return int(self.w3.provider.make_request("eth_getBlockByNumber", ["latest", False])["result"]["timestamp"], 16)

    def warp(self, seconds: int):
        self.w3.provider.make_request("evm_mine", [self.now() + seconds])

    def push(self, prices):
        ts = self.now() + 1
        self.w3.provider.make_request("anvil_setNextBlockTimestamp", [ts])
        assert self.oracle.send("setPrices", [ETH, BTC], [prices[ETH], prices[BTC]], ts, sender=self.keeper)["status"] == 1

    def fund(self, account, quote=0, weth=0):
        for token, amount in ((self.usdc, quote), (self.weth, weth)):
            if amount:
                token.send("mint", account, amount, sender=account)
                assert self.ch.send("deposit", token.address, amount, sender=account)["status"] == 1

    def health(self, account):
        return self.ch.call("health", account)

    def size(self, account, market):
        return self.ch.call("position", account, market)[0]

    def totals(self):
        return self.lens.call("totals", self.ch.address, self.accounts)


def make_machine(chain: Chain, seen: dict):
    class ClearingHouseMachine(RuleBasedStateMachine):
        @initialize()
        def setup(self):
            self.snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
            self.batch = chain.ch.call("nextBatchIndex")
            self.prices = dict(PRICES)
            chain.push(self.prices)
            for t in chain.traders:
                chain.fund(t, usdc(500), 10**17)
            chain.fund(chain.liquidator, usdc(2_000_000))
            self.nonces = defaultdict(int)
            self.signed = defaultdict(int)  # (account, nonce) -> the largest size signed under it
            self.settled = defaultdict(int)  # (account, nonce) -> size settled under it
            self.bad_debt: set[str] = set()
            self.awaiting_adl: set[str] = set()
            self.paused = False
            self.reduce_only = {ETH: False, BTC: False}

        def teardown(self):
            if hasattr(self, "snapshot"):
                chain.w3.provider.make_request("evm_revert", [self.snapshot])

        # --- helpers -----------------------------------------------------------------------
        def order(self, who, market, is_buy, price, size, reuse):
            account = chain.traders[who]
            if reuse and self.nonces[account]:
                nonce = self.nonces[account]  # the last nonce again: a second order signed under it
            else:
                self.nonces[account] += 1
                nonce = self.nonces[account]
            o = Order(account, market, is_buy, price, size, 0, 0, nonce)
            self.signed[(account, nonce)] = max(self.signed[(account, nonce)], size)
            return o, sign_order(o, chain.separator, chain.trader_keys[who])

        def settle(self, fills: list[Fill]):
            receipt = chain.ch.send("settle", self.batch, pack_fills(fills), sender=chain.operator)
            if self.paused:
                assert receipt["status"] == 0  # VenuePaused: nothing settles
                seen["paused_refusals"] += 1
                return
            assert receipt["status"] == 1
            self.batch += 1
            rejected = {e["fillIndex"]: RejectReason(e["reason"]) for e in chain.ch.logs(receipt, "FillRejected")}
            for i, f in enumerate(fills):
                if i in rejected:
                    seen[rejected[i].name] += 1
                    continue
                seen["settled"] += 1
                for o in (f.maker, f.taker):
                    self.settled[(o.account, o.nonce)] += f.size
                    assert self.settled[(o.account, o.nonce)] <= self.signed[(o.account, o.nonce)]
                    # No fill leaves a party with negative equity.
                    assert chain.health(o.account)[0] >= 0, o.account
                if self.reduce_only[f.maker.market]:
                    seen["reduce_only_fills"] += 1
            self._record_events(receipt)

        def _record_events(self, receipt):
            for e in chain.ch.logs(receipt, "BadDebt"):
                self.bad_debt.add(e["account"].lower())
                seen["bad_debt"] += 1
            seen["insurance_used"] += len(chain.ch.logs(receipt, "InsuranceUsed"))

        def price_at(self, market, eighths):
            """A tick-aligned price `eighths` eighths of the band away from the oracle (+-8: the edge)."""
            params = DEVNET_MARKETS[market]
            oracle = self.prices[market]
            target = oracle + oracle * params.band_bps * eighths // (8 * 10_000)
            tick = params.tick_size
            price = target // tick * tick if eighths >= 0 else -(-target // tick) * tick
            return max(price, tick)

        def liquidator_bot(self):
            """What `keeper liquidator` does after a price or funding move: every account below
            maintenance margin is liquidated, market by market, until it is above or flat."""
            for t in chain.traders:
                for _ in range(4):
                    equity, _, maintenance = chain.health(t)
                    sizes = {m: chain.size(t, m) for m in (ETH, BTC)}
                    if equity >= maintenance or not any(sizes.values()):
                        break
                    market = max(sizes, key=lambda m: abs(sizes[m]) * self.prices[m])
                    floor = chain.ch.call("riskParams")[4]
                    real = equity + self.haircut_part(t)
                    if real < 0 and -real > chain.ch.call("insuranceFund") - floor:
                        if not self.deleverage(t, market, sizes[market]):
                            self.awaiting_adl.add(t.lower())  # nobody on the other side is in profit
                            break
                        continue
                    receipt = chain.ch.send("liquidate", t, market, 10**12, sender=chain.liquidator)
                    if receipt["status"] != 1:
                        # Block times follow the wall clock here: funding accrued between the view
                        # and the transaction can lift the account above maintenance, or push its
                        # shortfall past the insurance fund (ShortfallNeedsAdl). Only those excuse
                        # a revert; the next pass takes the ADL path or stops.
                        equity, _, maintenance = chain.health(t)
                        real = equity + self.haircut_part(t)
                        beyond_fund = real < 0 and -real > chain.ch.call("insuranceFund") - floor
                        assert equity >= maintenance or beyond_fund, f"liquidation of {t} reverted"
                        continue
                    seen["liquidations"] += 1
                    self._record_events(receipt)

        def haircut_part(self, t) -> int:
            """What the haircut takes off the account's WETH value (the shortfall ADL pays is
            measured without it)."""
            gwei = chain.ch.call("balances", t)[1] // 10**9
            price, haircut = self.prices[ETH], chain.ch.call("haircutBps")
            return risk.weth_value(gwei, price, 0) - risk.weth_value(gwei, price, haircut)

        def deleverage(self, t, market, size) -> bool:
            """What `keeper adl` does for a bankrupt account: the other side ranked by the contract's
            score, highest first, each closed whole but the last."""
            candidates = []
            for other in chain.accounts:
                o_size = chain.size(other, market)
                if other != t and o_size and (o_size > 0) != (size > 0):
                    score = chain.ch.call("adlScore", other, market)
                    if score:
                        candidates.append((other, abs(o_size), score))
            names, sizes = risk.adl_queue(candidates, abs(size))
            if not names:
                return False
            receipt = chain.ch.send("deleverage", t, market, names, sizes, sender=chain.keeper)
            assert receipt["status"] == 1
            assert not chain.ch.logs(receipt, "BadDebt")
            seen["deleveraged"] += len(chain.ch.logs(receipt, "Deleveraged"))
            self._record_events(receipt)
            return True

        # --- rules -------------------------------------------------------------------------
        @rule(who=st.integers(0, N_TRADERS - 1), amount=st.integers(1, 500))
        def deposit(self, who, amount):
            chain.usdc.send("mint", chain.traders[who], usdc(amount), sender=chain.traders[who])
            receipt = chain.ch.send("deposit", chain.usdc.address, usdc(amount), sender=chain.traders[who])
            assert receipt["status"] == (0 if self.paused else 1)

        @rule(who=st.integers(0, N_TRADERS - 1), amount=st.integers(1, 1_000), weth=st.booleans())
        def withdraw(self, who, amount, weth):
            t = chain.traders[who]
            token, value = (chain.weth, 10**16) if weth else (chain.usdc, usdc(amount))
            before = chain.ch.call("balances", t)
            receipt = chain.ch.send("withdraw", token.address, value, sender=t)
            if receipt["status"] == 0:
                assert chain.ch.call("balances", t) == before
                return
            seen["withdrawals"] += 1
            equity, initial, _ = chain.health(t)
            assert equity >= initial

        @rule(fills=st.lists(st.tuples(st.integers(0, N_TRADERS - 1), st.integers(0, N_TRADERS - 1),
                                       st.sampled_from([ETH, BTC]), st.booleans(), st.sampled_from([20, 10, 5, 1]),
                                       st.integers(-8, 8), st.booleans(), st.sampled_from([4, 2])),
                            min_size=1, max_size=3))
        def settle_batch(self, fills):
            """Fills of whole orders or half of the taker's (a partial fill leaves its nonce open:
            a second order signed under it may settle only what is left)."""
            built = []
            for m, t, market, taker_buys, lots, eighths, reuse, quarters in fills:
                if m == t:
                    t = (t + 1) % N_TRADERS
                size = lots * DEVNET_MARKETS[market].lot_size * 100  # 0.1 ETH / 0.01 BTC a lot
                price = self.price_at(market, eighths)
                mo = self.order(m, market, not taker_buys, price, size, False)
                to = self.order(t, market, taker_buys, price, size, reuse)
                lot = DEVNET_MARKETS[market].lot_size
                built.append(Fill(*mo, *to, max(size * quarters // 4 // lot * lot, lot), price))
            self.settle(built)

        @rule(who=st.integers(0, N_TRADERS - 1), other=st.integers(0, N_TRADERS - 1),
              market=st.sampled_from([ETH, BTC]), quarters=st.sampled_from([4, 2, 1]))
        def colluders_close_at_the_band_edge(self, who, other, market, quarters):
            """`who` closes a share of its position at the band edge against itself, `other`
            taking the gain: the closing rule must refuse what would leave `who` underwater."""
            if who == other:
                other = (other + 1) % N_TRADERS
            held = chain.size(chain.traders[who], market)
            lot = DEVNET_MARKETS[market].lot_size
            size = abs(held) * quarters // 4 // lot * lot
            if size == 0:
                return
            sells = held > 0
            price = self.price_at(market, -8 if sells else 8)
            mo = self.order(other, market, sells, price, size, False)
            to = self.order(who, market, not sells, price, size, False)
            self.settle([Fill(*mo, *to, size, price)])
            seen["band_edge_closes"] += 1

        @rule(market=st.sampled_from([ETH, BTC]), move_bps=st.sampled_from([-1_500, 1_500, -800, 800, -300, 300, 0]))
        def oracle_jump(self, market, move_bps):
            self._jump(market, move_bps)

        @rule(who=st.integers(0, N_TRADERS - 1), move_bps=st.sampled_from([1_200, 600]))
        def adverse_jump(self, who, move_bps):
            """The price moves against the trader's biggest position."""
            t = chain.traders[who]
            sizes = {m: chain.size(t, m) for m in (ETH, BTC)}
            market = max(sizes, key=lambda m: abs(sizes[m]))
            self._jump(market, -move_bps if sizes[market] > 0 else move_bps)

        def _jump(self, market, move_bps):
            self.prices[market] = max(self.prices[market] * (10_000 + move_bps) // 10_000, 10**6)
            chain.push(self.prices)
            self.liquidator_bot()

        @rule(market=st.sampled_from([ETH, BTC]), rate=st.integers(-4 * 10**16, 4 * 10**16),
              seconds=st.integers(1, 7_200))
        def funding(self, market, rate, seconds):
            chain.warp(seconds)
            chain.push(self.prices)
            assert chain.ch.send("updateFunding", market, rate, sender=chain.keeper)["status"] == 1
            seen["funding_updates"] += 1
            self.liquidator_bot()

        @rule(who=st.sampled_from(["weakest", 0, 1, 2, 3]), market=st.sampled_from([ETH, BTC]),
              lots=st.integers(1, 10**6))
        def liquidate(self, who, market, lots):
            if who == "weakest":  # what a liquidator bot would pick: the lowest equity over maintenance
                t = min(chain.traders, key=lambda a: (lambda h: h[0] - h[2])(chain.health(a)))
                market = max((ETH, BTC), key=lambda m: abs(chain.size(t, m)))
            else:
                t = chain.traders[who]
            equity, _, maintenance = chain.health(t)
            size = lots * DEVNET_MARKETS[market].lot_size
            receipt = chain.ch.send("liquidate", t, market, size, sender=chain.liquidator)
            if receipt["status"] == 0:
                return
            assert equity < maintenance  # it went through, so the account was below maintenance margin
            seen["liquidations"] += 1
            self._record_events(receipt)

        @rule(dice=st.integers(0, 7))
        def guardian_pause_then_unpause(self, dice):
            if dice != 7:  # one draw in eight (not the minimal one): a pause now and then
                return
            assert chain.ch.send("pause", sender=chain.guardian)["status"] == 1
            self.paused = True
            self.settle_batch([(0, 1, ETH, True, 1, 0, False, 4)])  # refused whole: the venue is paused
            assert chain.ch.send("unpause", sender=chain.guardian)["status"] == 1
            self.paused = False

        @rule(market=st.sampled_from([ETH, BTC]), on=st.booleans(), dice=st.integers(0, 3))
        def guardian_reduce_only(self, market, on, dice):
            if dice and on:  # reduce-only is switched on less often than off
                return
            assert chain.ch.send("setMarketReduceOnly", market, on, sender=chain.guardian)["status"] == 1
            self.reduce_only[market] = on

        # --- invariants ----------------------------------------------------------------------
        @invariant()
        def conservation_positions_and_equity(self):
            if not hasattr(self, "snapshot"):
                return
            seen["steps"] += 1
            t = chain.totals()
            (quote_held, claims, pools, weth_held, weth_balances, size_sums, long_sums, open_interest,
             equity, _initial, _maintenance, masks, weth_wei) = t
            assert quote_held == claims + pools  # exact: funding dust sits in the funding pool
            assert weth_held == weth_balances
            assert all(s == 0 for s in size_sums)
            assert list(long_sums) == list(open_interest)
            for i, account in enumerate(chain.accounts):
                if equity[i] < 0 and account.lower() in self.awaiting_adl:
                    seen["awaiting_adl"] += 1  # bankrupt, and nobody on the other side in profit (yet)
                elif equity[i] < 0:
                    assert masks[i] == 0, f"{account} holds a position with negative equity {equity[i]}"
                    assert account.lower() in self.bad_debt or weth_wei[i] > 0, account

    return ClearingHouseMachine


def test_random_sequences_keep_the_clearinghouse_solvent_and_balanced():
    seen: dict = defaultdict(int)
    with Anvil(accounts=10) as anvil:
        chain = Chain(anvil)
        machine = make_machine(chain, seen)
        run_state_machine_as_test(machine, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True,
            suppress_health_check=list(HealthCheck), database=None,
            phases=[Phase.explicit, Phase.generate],  # shrinking against a chain takes minutes; the seed is fixed
        ))
    # The sequences really did what they are for (the test is not vacuous), over the steps asked for.
    print(dict(seen))
    assert seen["steps"] >= MIN_STEPS, seen["steps"]
    for what in ("settled", "liquidations", "deleveraged", "funding_updates", "band_edge_closes", "withdrawals",
                 "MAINTENANCE_WORSENED", "INSUFFICIENT_MARGIN", "OVERFILL", "MARKET_REDUCE_ONLY", "paused_refusals"):
        assert seen[what] >= 1, (what, dict(seen))
