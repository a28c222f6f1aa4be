"""The scenario lab's runner: one scenario on its own Anvil, in simulated time, block by block.

The chain: Anvil with `--order fees` (a block orders transactions by priority fee), genesis at a
fixed timestamp and, after set-up, automine off: the runner mines every block itself with
`evm_mine` and an explicit timestamp, so the mempool is real (a transaction waits for the next
block; a low block gas limit and filler transactions make congestion). The components are the
ones the devnet runs, driven by a `SimClock` (venue/clock.py) instead of the wall clock: the
`Venue` (engine, journal, settlement batches, receipts, chain ingestion), `keeper.oracle`
pushing the scenario's true prices with its lag, `keeper.liquidator` and `keeper adl`, and
`keeper risk` when a scenario asks for it. Each block:

  1. the clock moves to the block's time; the scenario's traders act (signed orders into the venue)
  2. the venue cuts and sends batches; the keepers step (oracle pushes, liquidations, ADL)
  3. the block is mined at that time
  4. the venue reads receipts and chain events; the runner records what happened

Same scenario, seed and parameters give the same chain, byte for byte: fixed keys, fixed
timestamps, no wall clock in any decision. `metrics.json` holds the figures; `events.jsonl`
every oracle update (observed and true price), fill, rejection, liquidation, ADL event and the
pending transactions' ages, block by block.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from keeper.funding import FundingKeeper
from keeper.liquidator import Deleverager, Liquidator
from keeper.oracle import OracleKeeper
from keeper.risk import RiskKeeper

from .. import risk
from ..chain import EventReader, contract, deploy, market_field
from ..cli import fund_traders
from ..clock import SimClock
from ..devchain import Anvil, dev_keys
from ..domain import DEVNET_MARKETS, FLAG_IOC, FLAG_POST_ONLY, RejectReason
from ..service import Venue
from ..settings import Settings
from ..signing import Order, address_of, sign_order
from .report import write_report

GENESIS = 1_700_000_000  # a fixed start: timestamps, and so the chain, repeat exactly
N_KEYS = 20
OWNER, OPERATOR, ORACLE_KEEPER, ADL_KEEPER, RISK_KEEPER, LIQUIDATOR, LIQUIDATOR_2, FILLER, FUNDING_KEEPER = range(9)
FIRST_TRADER = 9
SET_UP = 10**9  # the truth path's time origin sits this far ahead while traders set up: prices hold still
# A contract that burns the gas it is given (loops while more than 10,000 is left): congestion.
BURNER_INIT = "0x695b5a6127101060005700600052600a6016f3"
ETH, BTC = 0, 1


class TruthFeed:
    """The scenario's true prices, as the oracle keeper's feed (`price_at(t)` by oracle id)."""

    def __init__(self, truth):
        self.truth = truth

    def price_at(self, t: float) -> dict[int, int]:
        return self.truth(t)


@dataclass
class Trader:
    key: str
    address: str
    nonce: int = 0


@dataclass
class Record:
    """What the runner saw, block by block (the metrics are computed from it)."""

    events: list = field(default_factory=list)
    liquidatable_since: dict = field(default_factory=dict)  # account -> (block, time) first below MM at the oracle
    underwater_true_since: dict = field(default_factory=dict)  # account -> time first below MM at true prices
    latencies: list = field(default_factory=list)  # (blocks, seconds) from liquidatable to liquidated
    true_leads: list = field(default_factory=list)  # seconds underwater at true prices before the oracle showed it
    oracle_ages: list = field(default_factory=list)  # oracle age (s) at each liquidation
    insurance: list = field(default_factory=list)
    pending_since: dict = field(default_factory=dict)  # tx hash -> block first seen pending
    longest_pending: int = 0
    liquidations: int = 0
    adl_events: int = 0
    bad_debt: int = 0
    fills_settled: int = 0
    fills_rejected: dict = field(default_factory=dict)
    oracle_held: int = 0  # prints the oracle keeper's outlier guard held back


class LabMarketMaker:
    """The reference market maker (keeper/mm.py) in the lab: fed from the venue in-process each
    block (oracle prices, books, its fills and open orders), its plan signed with its agent key
    and sent through `Venue.bulk`, the call `POST /batch` makes. The strategy is the one
    `keeper mm` runs; only the transport differs."""

    def __init__(self, lab: "Lab", trader: Trader, config, markets: tuple[int, ...] = (ETH,), name: str = "mm"):
        from keeper.mm import MarketMaker, MarketSpec, Telemetry
        from keeper.mm_run import agent_key_for

        self.lab, self.trader, self.config = lab, trader, config
        self.agent = agent_key_for(trader.key)
        venue = lab.venue
        specs = {m: MarketSpec(m, p.symbol, p.tick_size, p.lot_size, p.maker_fee_bps)
                 for m, p in enumerate(venue.markets) if m in markets}
        self.telemetry = Telemetry(specs, lab.out / f"{name}-telemetry.jsonl")
        self.mm = MarketMaker(config, specs, self.telemetry, lab.now())
        self.funding = FundingWatch(lab.ch, list(specs))
        self.fill_seq = -1
        self.oracle: dict[int, int] = {}
        self.action_nonce = 0
        self.started = lab.now()

    async def step(self, t: float) -> None:
        from keeper.mm import Resting

        venue, mm, address = self.lab.venue, self.mm, self.trader.address
        for m in mm.markets:
            price = venue.engine.markets[m].oracle_price
            if price != self.oracle.get(m):
                mm.on_oracle(m, price, t)
                self.oracle[m] = price
            bids, asks = venue.engine.l2(m, 50)
            mm.on_book(m, bids, asks)
        for rec in venue.account_fills(address):
            f = rec.fill
            if f.seq <= self.fill_seq:
                continue
            self.fill_seq = f.seq
            if f.maker.account == address and f.market in mm.markets:
                mm.on_fill(f.market, f.maker.is_buy, f.price, f.size, t, f.maker.id)
        mm.sync_orders([Resting(o.id, o.market, o.is_buy, o.price, o.size, o.remaining)
                        for o in venue.engine.open_orders(address)])
        mm.observe(t)
        plan = mm.plan(t)
        if plan:
            await self.send(plan, t)
        if self.lab.block % 10 == 0:
            self.funding.read(self.telemetry, mm.position)
        self.telemetry.snapshot(t)

    async def send(self, plan, t: float) -> None:
        from ..domain import FLAG_REDUCE_ONLY
        from ..engine import EngineError
        from ..signing import sign_action

        venue, trader = self.lab.venue, self.trader
        sep = venue.domain_separator

        def signed(q):
            trader.nonce += 1
            order = Order(trader.address, q.market, q.is_buy, q.price, q.size,
                          FLAG_POST_ONLY | (FLAG_REDUCE_ONLY if q.reduce_only else 0), 0, trader.nonce)
            return order, sign_order(order, sep, self.agent)

        cancel = None
        if plan.cancels:
            self.action_nonce = max(int(t * 1000), self.action_nonce + 1)
            expiry = int(t) + 60
            sig = sign_action(trader.address, "cancel:" + ",".join(map(str, plan.cancels)), self.action_nonce,
                              expiry, venue.domain, self.agent)
            cancel = (trader.address, plan.cancels, self.action_nonce, expiry, bytes.fromhex(sig[2:]))
        modifies = [(oid, *signed(q), "Alo", None) for oid, q in plan.modifies]
        places = [(*signed(q), "Alo", None, 0) for q in plan.places]
        cancelled, modified, placed = await venue.bulk(cancel, modifies, places)

        def status(r):
            if isinstance(r, EngineError):
                return {"status": "error", "code": r.code, "msg": r.msg}
            return {"status": r.status, "orderId": r.order_id, "remaining": r.remaining}
        self.mm.applied(plan, [c for c in cancelled if c["status"] == "cancelled" or c.get("code") == "UNKNOWN_ORDER"],
                        [status(r) for r in modified], [status(r) for r in placed])

    def updates_per_s(self) -> float:
        return self.telemetry.updates / max(1e-9, self.lab.now() - self.started)


class FundingWatch:
    """Funding the market maker paid: its position times the change of each market's funding
    index between two reads (venue/risk.py's `funding_owed`)."""

    def __init__(self, ch, markets: list[int]):
        self.ch, self.markets, self.index = ch, markets, {}
        self.field = market_field(ch, "fundingIndex")

    def read(self, telemetry, position: dict[int, int]) -> None:
        for m in self.markets:
            index = self.ch.functions.market(m).call()[self.field]
            last = self.index.get(m)
            if last is not None and index != last:
                telemetry.on_funding(m, risk.funding_owed(position[m], index, last))
            self.index[m] = index


class Lab:
    def __init__(self, out: Path, *, seed: int, block_time: int = 1, gas_limit: int = 30_000_000):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "mm-telemetry.jsonl"):
            (self.out / stale).unlink(missing_ok=True)  # a run into a used folder starts afresh
        self.seed, self.block_time, self.gas_limit = seed, block_time, gas_limit
        self.keys = dev_keys(N_KEYS)
        self.anvil: Anvil | None = None
        self.record = Record()
        self.block = 0
        self.t0 = GENESIS
        self.origin = GENESIS + SET_UP  # scenarios read their paths at `now - origin`
        self.truth = None
        self.keepers: list = []
        self.fillers: list = []
        self.watch: list[str] = []  # funded traders
        self.run_blocks = 0  # blocks since the scenario's time 0
        self.on_block = None
        self.venue_silent = False  # operator-silence: the venue sends no more batches
        self.extra: dict = {}  # metrics a scenario adds
        self.makers: list[LabMarketMaker] = []  # market makers stepped every block
        self.fill_cursor = 0  # the venue's fills seen so far (their seq)
        self.open_fills: list[int] = []  # seen, not yet settled or rejected

    # ------------------------------------------------------------------ set-up
    def start_chain(self) -> None:
        self.anvil = Anvil(accounts=N_KEYS, extra_args=("--order", "fees", "--timestamp", str(GENESIS)),
                           log_path=self.out / "anvil.log").start()
        self.w3 = w3 = self.anvil.web3()
        # Set-up blocks one second apart whatever the wall clock does; the run mines its own.
        self.rpc("anvil_setBlockTimestampInterval", [1])
        addresses = [address_of(k) for k in self.keys]
        self.deployment = deploy(w3, addresses[OWNER], operator=addresses[OPERATOR],
                                 keepers=(addresses[ORACLE_KEEPER], addresses[ADL_KEEPER], addresses[RISK_KEEPER],
                                          addresses[FUNDING_KEEPER]))
        self.ch = contract(w3, "ClearingHouse", self.deployment.clearing_house)
        self.oracle = contract(w3, "Oracle", self.deployment.oracle)
        self.events = EventReader(w3, self.ch, self.oracle)
        self.oi_field = market_field(self.ch, "openInterest")
        self.traders = [Trader(k, address_of(k)) for k in self.keys[FIRST_TRADER:]]
        doc = {**self.deployment.to_json(), "rpc": self.anvil.url,
               "keys": {"operator": self.keys[OPERATOR], "keeper": self.keys[ORACLE_KEEPER]}}
        (self.out / "deployment.json").write_text(json.dumps(doc, indent=2))
        self.rpc("anvil_setBalance", [addresses[FILLER], hex(10**9 * 10**18)])  # congestion for a whole day
        receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
            {"from": addresses[FILLER], "data": BURNER_INIT}))
        self.burner = receipt.contractAddress

    def fund(self, traders, quote: int, weth_wei: int = 0) -> None:
        """Deposits for these traders; the runner watches them (margin, liquidations) from now."""
        fund_traders(self.w3, self.deployment, [t.key for t in traders], quote, weth_wei)
        self.watch += [t.address for t in traders if t.address not in self.watch]

    def fund_keepers(self, quote: int = 2_000_000 * 10**6) -> None:
        """Collateral for the liquidators (a liquidation hands them the slice they take over)."""
        fund_traders(self.w3, self.deployment, [self.keys[LIQUIDATOR], self.keys[LIQUIDATOR_2]], quote, 0)

    def deposit_insurance(self, quote: int) -> None:
        """Seeds the insurance fund (from the owner) during set-up."""
        owner = address_of(self.keys[OWNER])
        usdc = contract(self.w3, "MockERC20", self.deployment.usdc)
        for fn in (usdc.functions.mint(owner, quote), usdc.functions.approve(self.ch.address, quote),
                   self.ch.functions.depositInsurance(quote)):
            self.w3.eth.wait_for_transaction_receipt(fn.transact({"from": owner}))

    def elapsed(self, t: float) -> float:
        """Seconds of the scenario's own time at `t` (0 during set-up)."""
        return max(0.0, t - self.origin)

    def start_time(self) -> None:
        """The scenario's time 0 is now: set-up is over."""
        self.origin = self.now()

    def congest(self, count: int, tip_gwei: float, gas_each: int = 600_000, max_fee_gwei: float = 500.0) -> None:
        """`count` transactions that each burn `gas_each` gas, bidding `tip_gwei`: they fill the
        block ahead of the keepers that bid less (as the gas war of 2020-03-12 did). Like real
        demand they stop while the base fee is above `max_fee_gwei`, so full blocks cannot push
        it up forever (each full block raises it 12.5 %)."""
        w3, sender = self.w3, address_of(self.keys[FILLER])
        base = w3.eth.get_block("latest").get("baseFeePerGas", 0) * 9 // 8  # the next block's at most
        tip, cap = int(tip_gwei * 10**9), int(max_fee_gwei * 10**9)
        if base + tip > cap:
            return
        for _ in range(count):
            w3.eth.send_transaction({"from": sender, "to": self.burner, "gas": gas_each, "maxPriorityFeePerGas": tip,
                                     "maxFeePerGas": min(cap, 2 * base + tip)})

    def push_prices(self, prices: dict[int, int]) -> None:
        """A price push during set-up (the owner is an oracle keeper too)."""
        ids = sorted(prices)
        ts = self.w3.eth.get_block("latest").timestamp
        self.w3.eth.wait_for_transaction_receipt(self.oracle.functions.setPrices(
            ids, [prices[i] for i in ids], ts).transact({"from": address_of(self.keys[ORACLE_KEEPER])}))

    def rpc(self, method: str, params: list):
        """A raw JSON-RPC call that raises on an error answer (web3's make_request returns it)."""
        answer = self.w3.provider.make_request(method, params)
        if "error" in answer:
            raise RuntimeError(f"{method}{params}: {answer['error']}")
        return answer.get("result")

    async def begin(self, truth, *, oracle_delay_s: float = 0.0, heartbeat_s: float = 30.0, deviation_bps: int = 50,
              oracle_tip_gwei: float = 1.0, liquidator_tips: tuple[float, ...] = (2.0,), with_risk: bool = False,
              settings: dict | None = None, observed=None, funding_interval_s: float | None = None,
              guard_bps: int | None = 2_000, guard_confirm_s: float = 3.0) -> None:
        """Ends set-up: automine off, the clock at the last block's time, the venue and keepers up.
        `truth(t)`: the true prices by oracle id; `observed(t)`: what the oracle keeper's feed
        shows (the truth unless a scenario distorts it, as `bad-print` does). `guard_bps`,
        `guard_confirm_s`: the oracle keeper's outlier guard (None: off), as `keeper oracle` has it."""
        w3 = self.w3
        self.rpc("anvil_removeBlockTimestampInterval", [])
        self.rpc("evm_setAutomine", [False])
        self.rpc("anvil_setBlockGasLimit", [hex(self.gas_limit)])  # after set-up (deploying needs more)
        self.t0 = w3.eth.get_block("latest").timestamp
        self.origin = self.t0 + SET_UP
        self.clock = SimClock(self.t0)
        self.truth = truth
        self.venue = Venue(Settings(deployment=str(self.out / "deployment.json"), rpc_url=self.anvil.url,
                                    journal=str(self.out / "journal.sqlite"), recovery_workers=0,
                                    **(settings or {})), clock=self.clock)
        self.oracle_keeper = OracleKeeper(w3, self.deployment, self.keys[ORACLE_KEEPER], TruthFeed(observed or truth),
                                          heartbeat_s=heartbeat_s, deviation_bps=deviation_bps,
                                          delay_s=oracle_delay_s, priority_fee_gwei=oracle_tip_gwei,
                                          seed=self.seed, clock=self.clock, max_jump_bps=guard_bps,
                                          confirm_s=guard_confirm_s)
        self.oracle_keeper.observer = self._on_oracle_push
        self.oracle_keeper.guard.on_hold = self._on_oracle_held
        keys = (LIQUIDATOR, LIQUIDATOR_2)
        self.liquidators = [Liquidator(w3, self.deployment, self.keys[keys[i]], name=f"liquidator{i + 1}",
                                       priority_fee_gwei=tip) for i, tip in enumerate(liquidator_tips)]
        self.adl = Deleverager(w3, self.deployment, self.keys[ADL_KEEPER], name="adl")
        self.keepers = [*self.liquidators, self.adl]
        if with_risk:
            self.risk_keeper = RiskKeeper(w3, self.deployment, self.keys[RISK_KEEPER])
            self.keepers.append(self.risk_keeper)
        self.funding_keeper = None
        if funding_interval_s:
            self.funding_keeper = FundingKeeper(w3, self.deployment, self.keys[FUNDING_KEEPER], None,
                                                interval_s=funding_interval_s, clock=self.clock,
                                                book=lambda m: self.venue.book_json(m, 100))
        for k in self.keepers:
            k.start()
        self.gas_start = {k.sender.address: w3.eth.get_balance(k.sender.address) for k in self.keepers}
        for sender in [self.oracle_keeper.sender] + ([self.funding_keeper.sender] if self.funding_keeper else []):
            self.gas_start[sender.address] = w3.eth.get_balance(sender.address)
        self.equity_start = {k.sender.address: self.ch.functions.health(k.sender.address).call()[0]
                             for k in self.liquidators}
        self.insurance_start = self.ch.functions.insuranceFund().call()
        self.record.insurance.append(self.insurance_start)
        await self.venue.start(background=False)

    # ------------------------------------------------------------------ orders
    async def order(self, trader: Trader, market: int, is_buy: bool, price: int, size: int, tif: str = "Gtc"):
        """A signed order into the venue, as a client would send it (the flags its time in force
        needs); the acknowledgement, or None if refused (logged)."""
        flags = {"Alo": FLAG_POST_ONLY, "Ioc": FLAG_IOC}.get(tif, 0)
        trader.nonce += 1
        order = Order(trader.address, market, is_buy, price, size, flags, 0, trader.nonce)
        try:
            return await self.venue.place(order, sign_order(order, self.venue.domain_separator, trader.key), tif=tif)
        except Exception as exc:  # noqa: BLE001: refused orders are part of a scenario's story
            self.log("order_refused", account=trader.address, market=market, code=getattr(exc, "code", type(exc).__name__))
            return None

    # ------------------------------------------------------------------ the loop
    def now(self) -> float:
        return self.clock.now()

    async def step(self, on_block=None) -> None:
        """One block: traders, venue batches, keepers, fillers, mining, ingestion, records."""
        self.block += 1
        t = self.clock.now() + self.block_time
        self.clock.advance_to(t)
        for maker in self.makers:
            await maker.step(t)
        if on_block is not None:
            await on_block(self)
        if not self.venue_silent:
            self.venue.batch_step()
        await self.venue.settle_quiet()
        self.oracle_keeper.step(t)
        if self.funding_keeper is not None:
            self.funding_keeper.step(t)
        for k in self.keepers:
            k.poll()
        for filler in self.fillers:
            filler(self)
        self._pending_ages()
        self.rpc("evm_mine", [int(t)])
        await self.venue.receipt_step()
        await self.venue.settle_quiet()
        await self.venue.poll_once()
        await self.venue.tick_step()
        self._observe(t)
        for change in await self.venue.watch_step():  # the venue's alert rules, on the simulated clock
            a = change["alert"]
            self.log("alert", event=change["event"], rule=a["rule"], key=a["key"], message=a["message"],
                     at_risk_usdc=a["atRiskUsdc"])
        if t > self.origin:
            self.run_blocks += 1
        if self.on_block is not None:
            self.on_block(self)

    async def settle_all(self, max_blocks: int = 10) -> None:
        """Mines until every fill the venue made is settled or rejected."""
        for _ in range(max_blocks):
            if not self.venue.unbatched and all(t.done() for t in self.venue.settling):
                return
            await self.step()

    # ------------------------------------------------------------------ records
    def log(self, kind: str, **data) -> None:
        self.record.events.append({"block": self.block, "t": self.now() - self.origin if self.truth else 0,
                                   "kind": kind, **data})

    def _on_oracle_push(self, observed: int, sent: float, prices: dict[int, int]) -> None:
        true = self.truth(sent)
        self.log("oracle_push", observed_at=observed - self.origin, sent_at=sent - self.origin,
                 prices={str(k): str(v) for k, v in prices.items()}, true={str(k): str(v) for k, v in true.items()})

    def _on_oracle_held(self, oracle_id: int, price: int, accepted: int, now: float) -> None:
        self.record.oracle_held += 1
        self.log("oracle_held", oracle=oracle_id, price=str(price), accepted=str(accepted),
                 true=str(self.truth(now)[oracle_id]))

    def _pending_ages(self) -> None:
        content = self.rpc("txpool_content", [])
        pending = {tx["hash"]: tx for group in content.get("pending", {}).values() for tx in group.values()}
        for h in list(self.record.pending_since):
            if h not in pending:
                del self.record.pending_since[h]
        for h in pending:
            self.record.pending_since.setdefault(h, self.block)
        ages = {h: self.block - b for h, b in self.record.pending_since.items()}
        self.record.longest_pending = max([self.record.longest_pending, *ages.values()])
        if ages:
            self.log("pending", count=len(ages), oldest_blocks=max(ages.values()))

    def _observe(self, t: float) -> None:
        """The block just mined: its events, and each watched account against maintenance margin
        at the oracle and at the true prices."""
        rec, block = self.record, self.w3.eth.block_number
        events = self.events.read(block, block)  # one eth_getLogs for the block
        for ev in events.get("Liquidated", []):
            rec.liquidations += 1
            account = ev.args.account
            since = rec.liquidatable_since.pop(account, (block, t))
            rec.latencies.append((block - since[0], t - since[1]))
            updated = max(self.oracle.functions.getPrice(p.oracle_id).call()[1] for p in DEVNET_MARKETS)
            rec.oracle_ages.append(t - updated)
            lead = rec.underwater_true_since.pop(account, None)
            self.log("liquidation", account=account, market=ev.args.marketId, size=str(ev.args.size),
                     liquidator=ev.args.liquidator, latency_blocks=block - since[0], latency_s=t - since[1],
                     oracle_age_s=t - updated, underwater_true_s=None if lead is None else t - lead)
        for ev in events.get("Deleveraged", []):
            rec.adl_events += 1
            self.log("adl", account=ev.args.account, counterparty=ev.args.counterparty, size=str(ev.args.size),
                     price=str(ev.args.price), socialised=str(ev.args.socialised))
        for ev in events.get("FundingUpdated", []):
            self.log("funding", market=ev.args.marketId, rate_per_hour=str(ev.args.ratePerHour))
        for ev in events.get("BadDebt", []):
            rec.bad_debt += ev.args.amount
            self.log("bad_debt", account=ev.args.account, amount=str(ev.args.amount))
        for ev in events.get("BatchSettled", []):
            rec.fills_settled += ev.args.settled
            self.log("batch", index=ev.args.batchIndex, fills=ev.args.fills, settled=ev.args.settled)
        for ev in events.get("FillRejected", []):
            reason = RejectReason(ev.args.reason).name
            rec.fills_rejected[reason] = rec.fills_rejected.get(reason, 0) + 1
            self.log("fill_rejected", reason=reason, account=ev.args.account)
        self._log_fills()
        markets, insurance = self.venue.view_reader.markets()  # one JSON-RPC batch
        rec.insurance.append(insurance)
        true = self.truth(t)
        oracle = {str(m): str(ms.oracle_price) for m, ms in enumerate(self.venue.engine.markets)}
        mids = {}
        for m in range(len(DEVNET_MARKETS)):
            bids, asks = self.venue.engine.l2(m, 1)
            mids[str(m)] = str((bids[0][0] + asks[0][0]) // 2) if bids and asks else None
        self.log("block", insurance=str(rec.insurance[-1]), oracle=oracle, mid=mids,
                 true={str(m): str(true[p.oracle_id]) for m, p in enumerate(DEVNET_MARKETS)},
                 open_interest=[str(words[self.oi_field]) for words in markets])
        haircut = self.venue.haircut
        accounts = self.venue.view_reader.read(self.watch) if self.watch else {}  # one JSON-RPC batch for all
        for address in self.watch:
            (quote, weth_wei, _), (equity, _, mm), views = accounts[address]
            if equity < mm:
                if address not in rec.liquidatable_since:
                    rec.liquidatable_since[address] = (block, t)
                    lead = rec.underwater_true_since.get(address)
                    if lead is not None:
                        rec.true_leads.append(t - lead)
            else:
                rec.liquidatable_since.pop(address, None)
            if self._underwater_at(quote, weth_wei, views, true, haircut):
                rec.underwater_true_since.setdefault(address, t)
            else:
                rec.underwater_true_since.pop(address, None)

    def _log_fills(self) -> None:
        """A `fill` line for each fill the venue made, once its batch has settled or rejected it
        (in the order the venue made them)."""
        fills = self.venue.fills
        while self.fill_cursor + 1 in fills:
            self.fill_cursor += 1
            self.open_fills.append(self.fill_cursor)
        still = []
        for seq in self.open_fills:
            rec = fills.get(seq)
            if rec is None:  # forgotten (past fills_in_memory): never seen final
                continue
            if rec.status not in ("settled", "rejected"):
                still.append(seq)
                continue
            f = rec.fill
            self.log("fill", seq=seq, market=f.market, price=str(f.price), size=str(f.size),
                     taker_is_buy=f.taker_is_buy, maker=f.maker.account, taker=f.taker.account, status=rec.status,
                     reason=rec.reason, batch=rec.batch, made_t=rec.acked_at - self.origin)
        self.open_fills = still

    @staticmethod
    def _underwater_at(quote: int, weth_wei: int, views: dict, prices: dict[int, int], haircut: int) -> bool:
        """Below maintenance margin with the markets at `prices` (venue/risk.py's mirror), from
        the chain's views (size, open notional, entry, PnL, funding owed per market)."""
        positions = {m: (v[0], v[1] + v[4], 0) for m, v in views.items()}
        markets = {m: risk.MarketRisk(p.tier_cap_1, p.im_bps_1, p.im_bps_2) for m, p in enumerate(DEVNET_MARKETS)}
        market_prices = {m: prices[p.oracle_id] for m, p in enumerate(DEVNET_MARKETS)}
        h = risk.account_health(quote, weth_wei // 10**9, positions, market_prices, markets,
                                prices[DEVNET_MARKETS[ETH].oracle_id], haircut)
        return h.equity < h.maintenance_margin

    # ------------------------------------------------------------------ results
    def metrics(self, name: str, params: dict, wall_s: float) -> dict:
        rec, w3 = self.record, self.w3

        def dist(values):
            if not values:
                return {"p50": None, "p99": None, "max": None}
            ordered = sorted(values)
            return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
                    "max": ordered[-1]}

        gas = {}
        funding = [self.funding_keeper.sender] if self.funding_keeper is not None else []
        for sender in [self.oracle_keeper.sender] + [k.sender for k in self.keepers] + funding:
            gas[sender.name] = (self.gas_start[sender.address] - w3.eth.get_balance(sender.address)) / 1e18
        pnl = {k.name: (self.ch.functions.health(k.sender.address).call()[0] - self.equity_start[k.sender.address]) / 1e6
               for k in self.liquidators}
        return {
            "scenario": name, "seed": self.seed, "params": params,
            "sim_seconds": self.block * self.block_time, "wall_seconds": round(wall_s, 3), "blocks": self.block,
            "bad_debt_usdc": rec.bad_debt / 1e6,
            "insurance_fund_min_usdc": min(rec.insurance) / 1e6,
            "insurance_drawdown_usdc": (rec.insurance[0] - min(rec.insurance)) / 1e6,
            "liquidations": rec.liquidations,
            "liquidation_latency_blocks": dist([b for b, _ in rec.latencies]),
            "liquidation_latency_s": dist([s for _, s in rec.latencies]),
            "liquidatable_at_true_price_s": dist(rec.true_leads),
            "oracle_age_at_liquidation_s": {k: v for k, v in dist(rec.oracle_ages).items() if k != "p99"},
            "longest_pending_tx_blocks": rec.longest_pending,
            "fills_settled": rec.fills_settled, "fills_rejected": dict(sorted(rec.fills_rejected.items())),
            "adl_events": rec.adl_events, "oracle_prints_held": rec.oracle_held,
            "keeper_pnl_usdc": pnl, "keeper_gas_eth": gas,
            **self.mm_metrics(),
            "state_hash": self.state_hash(),
            **self.extra,
        }

    def mm_metrics(self) -> dict:
        """The first market maker's PnL and notional-weighted markouts against the mid (null
        without one, or for a horizon no fill reached)."""
        if not self.makers:
            return {"mm_pnl_usdc": None, "mm_markout_bps": {"1s": None, "5s": None, "30s": None, "60s": None}}
        tele = self.makers[0].telemetry
        return {"mm_pnl_usdc": round(tele.pnl()["total"], 6),
                "mm_markout_bps": {f"{h}s": None if (v := tele.markout(h)) is None else round(v, 6)
                                   for h in (1, 5, 30, 60)}}

    def approve_agent(self, trader: Trader, agent: str) -> None:
        """`trader` approves `agent` to sign for it (during set-up)."""
        self.w3.eth.wait_for_transaction_receipt(self.ch.functions.setAgent(agent, True).transact(
            {"from": trader.address}))

    def state_hash(self) -> str:
        """sha256 over the chain's money state: every trader's balances and positions, the
        insurance fund, fee and funding pools, open interest, the last block's hash."""
        ch = self.ch
        state = {"insurance": ch.functions.insuranceFund().call(), "fees": ch.functions.feePool().call(),
                 "funding": ch.functions.fundingPool().call(),
                 "oi": [ch.functions.market(m).call() for m in range(len(DEVNET_MARKETS))],
                 "accounts": {t.address: [ch.functions.balances(t.address).call(),
                                          [ch.functions.position(t.address, m).call() for m in range(len(DEVNET_MARKETS))]]
                              for t in self.traders},
                 "block": self.w3.eth.get_block("latest").hash.hex()}
        return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()

    def write(self, metrics: dict) -> None:
        (self.out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        with open(self.out / "events.jsonl", "w") as f:
            for ev in self.record.events:
                f.write(json.dumps(ev, sort_keys=True, default=str) + "\n")

    def stop(self) -> None:
        for maker in self.makers:
            maker.telemetry.close()
        if getattr(self, "venue", None) is not None:
            self.venue.journal.close()
            self.venue.view_reader.close()
            self.venue.view_pool.shutdown(wait=False)
        if self.anvil is not None:
            self.anvil.stop()


def run_scenario(scenario, *, seed: int, params: dict, out: Path, on_block=None) -> dict:
    """Runs one scenario to the end; writes and returns its metrics. `on_block(lab)` after
    every block (progress bars)."""
    lab = Lab(out, seed=seed, **scenario.lab_args(params))
    lab.on_block = on_block
    started = time.monotonic()
    try:
        lab.start_chain()
        asyncio.run(scenario.run(lab, params))
        metrics = lab.metrics(scenario.name, params, time.monotonic() - started)
        lab.write(metrics)
        write_report(out)
        return metrics
    finally:
        lab.stop()

