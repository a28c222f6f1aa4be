"""`keeper risk`: raises the WETH haircut when the market says collateral in WETH is riskier.

Two inputs, both read from the chain:
- WETH's realized volatility: the log returns between the oracle's WETH price updates in the last
  `window_s` seconds, as an annualized standard deviation (sqrt(sum r^2 / elapsed seconds x
  seconds a year)), so updates at any cadence give the same figure for the same path;
- wrong-way exposure: of all WETH collateral (valued at the oracle price), the share backing
  long positions in markets on the WETH oracle (ETH-PERP): when ETH falls, that collateral and
  those positions lose together.

`target_haircut` maps them to a haircut (the thresholds below, documented in the README); the
keeper sends `raiseHaircut(target)` through the risk-keeper path when the target is above the
current haircut, never lower (the contract refuses a lower one: only the risk admin lowers it),
and logs each decision with its inputs.
"""

from __future__ import annotations

import logging
import math
import time

from venue.chain import Deployment, contract, read_markets

from .sender import TxFailed, TxSender

log = logging.getLogger("keeper.risk")

SECONDS_A_YEAR = 365 * 24 * 3600
# (annualized volatility at or above, haircut in bps): the highest row that applies wins.
VOL_STEPS = ((0.0, 0), (1.0, 2_000), (2.0, 3_500), (4.0, 5_000))
# Wrong-way exposure (share of WETH collateral behind ETH-PERP longs) at or above, bps added.
WRONG_WAY_STEPS = ((0.0, 0), (0.5, 1_000))


def realized_vol(observations: list[tuple[int, int]]) -> float:
    """Annualized realized volatility of (timestamp, price) observations, oldest first."""
    if len(observations) < 2:
        return 0.0
    elapsed = observations[-1][0] - observations[0][0]
    if elapsed <= 0:
        return 0.0
    squares = sum(math.log(b / a) ** 2 for (_, a), (_, b) in zip(observations, observations[1:]) if a > 0 and b > 0)
    return math.sqrt(squares / elapsed * SECONDS_A_YEAR)


def target_haircut(vol: float, wrong_way_share: float, max_bps: int) -> int:
    """The haircut the inputs call for (bps), at most `max_bps`."""
    base = max(bps for at, bps in VOL_STEPS if vol >= at)
    extra = max(bps for at, bps in WRONG_WAY_STEPS if wrong_way_share >= at)
    return min(base + extra, max_bps)


class RiskKeeper:
    def __init__(self, w3, deployment: Deployment, key: str, *, window_s: int = 300, poll_s: float = 0.5,
                 priority_fee_gwei: float = 2.0):
        self.w3 = w3
        self.ch = contract(w3, "ClearingHouse", deployment.clearing_house)
        self.oracle = contract(w3, "Oracle", deployment.oracle)
        self.sender = TxSender(w3, key, "risk", priority_fee_gwei=priority_fee_gwei)
        self.markets = read_markets(self.ch, deployment.markets)
        self.weth_oracle_id = self.ch.functions.wethOracleId().call()
        self.max_bps = self.ch.functions.maxHaircutBps().call()
        self.window_s, self.poll_s = window_s, poll_s
        self.observations: list[tuple[int, int]] = []  # (timestamp, WETH price), oldest first
        self.weth_holders: set[str] = set()
        self.last_block = -1
        self.raises = 0
        self.in_flight: dict | None = None  # the raise sent and not yet mined

    def wrong_way_share(self, price: int) -> float:
        """Share of WETH collateral value behind longs in markets on the WETH oracle."""
        markets = [m for m, p in enumerate(self.markets) if p.oracle_id == self.weth_oracle_id]
        total = wrong = 0
        for account in self.weth_holders:
            weth_value = self.ch.functions.balances(account).call()[1] * price // 10**18
            if not weth_value:
                continue
            total += weth_value
            long_notional = sum(max(0, self.ch.functions.position(account, m).call()[0]) * price // 10**8
                                for m in markets)
            wrong += min(weth_value, long_notional)
        return wrong / total if total else 0.0

    def poll(self) -> None:
        if self.in_flight is not None:  # a raise on its way: wait for it before deciding again
            try:
                receipt = self.sender.poll(self.in_flight)
            except TxFailed as exc:
                log.info("risk: raise not done: %s", exc)
                receipt, self.in_flight = None, None
            if receipt is not None:
                self.in_flight = None
                self.raises += 1
            if self.in_flight is not None:
                return
        head = self.w3.eth.block_number
        if head <= self.last_block:
            return
        frm, self.last_block = self.last_block + 1, head
        for e in self.oracle.events.PriceUpdated().get_logs(from_block=frm, to_block=head):
            if e.args.id == self.weth_oracle_id:
                self.observations.append((e.args.timestamp, e.args.price))
        for e in self.ch.events.Deposited().get_logs(from_block=frm, to_block=head):
            if e.args.token == self.ch.functions.weth().call():
                self.weth_holders.add(e.args.account)
        if not self.observations:
            return
        latest = self.observations[-1][0]
        self.observations = [o for o in self.observations if o[0] >= latest - self.window_s]
        price = self.observations[-1][1]
        vol, share = realized_vol(self.observations), self.wrong_way_share(price)
        current = self.ch.functions.haircutBps().call()
        target = target_haircut(vol, share, self.max_bps)
        if target <= current:
            return
        log.info("risk: WETH volatility %.0f %% a year over %d updates in %d s, wrong-way share %.0f %%: haircut "
                 "%d -> %d bps", vol * 100, len(self.observations), self.window_s, share * 100, current, target)
        try:
            self.in_flight = self.sender.send(self.ch.functions.raiseHaircut(target), gas=200_000,
                                              label=f"raiseHaircut {target}")
        except Exception as exc:  # noqa: BLE001: the next poll decides again
            log.info("risk: raise to %d not sent: %s", target, exc)

    def start(self) -> None:
        """Loads WETH holders and price history up to now; `poll` follows from there."""
        self.last_block = self.w3.eth.block_number
        for e in self.ch.events.Deposited().get_logs(from_block=0, to_block=self.last_block):
            if e.args.token == self.ch.functions.weth().call():
                self.weth_holders.add(e.args.account)
        for e in self.oracle.events.PriceUpdated().get_logs(from_block=0, to_block=self.last_block):
            if e.args.id == self.weth_oracle_id:
                self.observations.append((e.args.timestamp, e.args.price))
        log.info("risk watching %d WETH holders from block %d (window %d s)", len(self.weth_holders), self.last_block,
                 self.window_s)

    def run(self, stop) -> None:
        self.start()
        while not stop.is_set():
            try:
                self.poll()
            except Exception:
                log.exception("risk: poll failed")
                time.sleep(0.5)
            stop.wait(self.poll_s)
