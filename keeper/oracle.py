"""Oracle keeper: pushes feed prices on a heartbeat and whenever one moves past a deviation
threshold, through an outlier guard (a jump held back until the feed confirms it). Knobs for lag
on purpose (a fixed delay plus random jitter between observing and sending) and for gas bidding
(the tip)."""

from __future__ import annotations

import logging
import random

from venue.chain import Deployment, contract
from venue.clock import REAL, Clock, run_every

from .sender import TxFailed, TxSender

log = logging.getLogger("keeper.oracle")


class OutlierGuard:
    """Holds back a print that jumps more than `max_jump_bps` from the last accepted price of its
    market until the feed confirms it: the new level is accepted once every observation for
    `confirm_s` seconds has stayed within `max_jump_bps` of the first print at that level. A
    single bad print (a CEX outlier, a value 1000x off) is never pushed; a real gap is pushed
    `confirm_s` late. While a market is held the keeper leaves it out of its pushes, so the
    on-chain price ages and the staleness checks see it: nothing stale is stamped fresh.
    `max_jump_bps` None turns the guard off."""

    def __init__(self, max_jump_bps: int | None = 2_000, confirm_s: float = 3.0):
        self.max_jump_bps, self.confirm_s = max_jump_bps, confirm_s
        self.accepted: dict[int, int] = {}
        self.suspect: dict[int, tuple[float, int]] = {}  # market -> (first seen at, price)
        self.held = 0  # observations held back
        self.on_hold = None  # called with (market, price, last accepted, now) for each held print

    def _near(self, price: int, ref: int) -> bool:
        return abs(price - ref) * 10_000 <= ref * self.max_jump_bps

    def filter(self, prices: dict[int, int], now: float) -> dict[int, int]:
        """The prices fit to push: a market whose print is held is left out."""
        if self.max_jump_bps is None:
            return prices
        out = {}
        for k, price in prices.items():
            ref = self.accepted.get(k)
            if ref is None or self._near(price, ref):
                self.suspect.pop(k, None)
            else:
                since, level = self.suspect.get(k, (None, 0))
                if since is None or not self._near(price, level):
                    self.suspect[k] = since, level = now, price
                    log.warning("oracle %d: print %d is %+.1f %% from the last accepted %d: held until confirmed",
                                k, price, (price - ref) * 100 / ref if ref else float("inf"), ref)
                if now - since < self.confirm_s:
                    self.held += 1
                    if self.on_hold is not None:
                        self.on_hold(k, price, ref, now)
                    continue
                self.suspect.pop(k, None)
                log.warning("oracle %d: a jump to %d from %d confirmed over %.1f s", k, price, ref, now - since)
            self.accepted[k] = price
            out[k] = price
        return out


class OracleKeeper:
    """Never blocks: a step observes the feed, queues a push when one is due (to leave after the
    deliberate lag), sends what the lag has released, and checks the receipts of pushes in
    flight. On the devnet `run` steps it on the wall clock; the scenario lab steps it once a
    simulated block."""

    def __init__(self, w3, deployment: Deployment, key: str, feed, *, heartbeat_s: float = 30.0,
                 deviation_bps: int = 50, delay_s: float = 0.0, jitter_s: float = 0.0, priority_fee_gwei: float = 1.0,
                 seed: int = 1, poll_s: float = 0.2, clock: Clock = REAL, max_jump_bps: int | None = 2_000,
                 confirm_s: float = 3.0):
        self.w3 = w3
        self.oracle = contract(w3, "Oracle", deployment.oracle)
        self.sender = TxSender(w3, key, "oracle", priority_fee_gwei=priority_fee_gwei)
        self.feed = feed
        self.guard = OutlierGuard(max_jump_bps, confirm_s)
        self.heartbeat_s, self.deviation_bps = heartbeat_s, deviation_bps
        self.delay_s, self.jitter_s = delay_s, jitter_s
        self.rng = random.Random(seed)
        self.poll_s = poll_s
        self.clock = clock
        self.last_pushed: dict[int, int] = {}
        self.last_push_time = 0.0
        self.queued: list[tuple[float, int, dict[int, int]]] = []  # (send at, observed at, prices): at most one
        self.in_flight: list[dict] = []
        self.pushes = 0
        self.observer = None  # called with (observed at, sent at, prices) for each push sent (the lab's events)

    def due(self, prices: dict[int, int], now: float) -> bool:
        if now - self.last_push_time >= self.heartbeat_s or not self.last_pushed:
            return True
        return any(abs(p - self.last_pushed.get(k, p)) * 10_000 > self.last_pushed.get(k, p) * self.deviation_bps
                   for k, p in prices.items())

    def step(self, now: float | None = None) -> None:
        """One push at a time, as a keeper that waits for its transaction would: while a push is
        queued (its lag running) or in flight, nothing new is observed."""
        now = self.clock.now() if now is None else now
        self._check_in_flight()
        if self.in_flight:
            return
        if not self.queued:
            observed_prices = self.feed.price_at(now)
            self._seed_guard(observed_prices)
            prices = self.guard.filter(observed_prices, now)
            if not prices or not self.due(prices, now):
                return
            observed = self.clock.stamp(self.w3, now)
            lag = self.delay_s + self.rng.uniform(0, self.jitter_s)  # the observation ages before it is sent
            self.queued.append((now + lag, observed, prices))
        send_at, observed, prices = self.queued[0]
        if send_at > now:
            return
        self.queued.pop(0)
        ids = sorted(prices)
        try:
            self.in_flight.append(self.sender.send(
                self.oracle.functions.setPrices(ids, [prices[k] for k in ids], observed), gas=150_000,
                label=f"setPrices {dict(zip(ids, (prices[k] for k in ids)))}"))
            self.last_pushed, self.last_push_time = {**self.last_pushed, **prices}, now
            if self.observer is not None:
                self.observer(observed, now, prices)
        except Exception as exc:  # noqa: BLE001: not sent; the next step observes again
            log.info("oracle push not sent: %s", exc)

    def _seed_guard(self, prices: dict[int, int]) -> None:
        """A market's first print is judged against the price on-chain (a keeper restarted in
        the middle of a bad print must not take it as its reference)."""
        for k in prices.keys() - self.guard.accepted.keys():
            try:
                onchain = self.oracle.functions.getPrice(k).call()[0]
            except Exception:  # noqa: BLE001: never set (or unreadable): the first print is the reference
                onchain = 0
            if onchain:
                self.guard.accepted[k] = onchain

    def _check_in_flight(self) -> None:
        for pending in list(self.in_flight):
            try:
                receipt = self.sender.poll(pending)
            except TxFailed as exc:
                log.info("oracle push failed: %s", exc)
                self.in_flight.remove(pending)
                self.last_push_time = 0.0  # push again at the next step
                continue
            if receipt is not None:
                self.in_flight.remove(pending)
                self.pushes += 1

    def run(self, stop) -> None:
        run_every(self.step, self.poll_s, stop, lambda exc: log.exception("oracle step failed", exc_info=exc))
