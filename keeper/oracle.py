"""Oracle keeper: pushes feed prices on a heartbeat and whenever one moves past a deviation
threshold. Knobs for lag on purpose (a fixed delay plus random jitter between observing and
sending) and for gas bidding (the tip)."""

from __future__ import annotations

import logging
import random

from venue.chain import Deployment, contract
from venue.clock import REAL, Clock, run_every

from .sender import TxFailed, TxSender

log = logging.getLogger("keeper.oracle")


class OracleKeeper:
    """Never blocks: a step observes the feed, queues a push when one is due (to leave after the
    deliberate lag), sends what the lag has released, and checks the receipts of pushes in
    flight. On the devnet `run` steps it on the wall clock; the scenario lab steps it once a
    simulated block."""

    def __init__(self, w3, deployment: Deployment, key: str, feed, *, heartbeat_s: float = 30.0,
                 deviation_bps: int = 50, delay_s: float = 0.0, jitter_s: float = 0.0, priority_fee_gwei: float = 1.0,
                 seed: int = 1, poll_s: float = 0.2, clock: Clock = REAL):
        self.w3 = w3
        self.oracle = contract(w3, "Oracle", deployment.oracle)
        self.sender = TxSender(w3, key, "oracle", priority_fee_gwei=priority_fee_gwei)
        self.feed = feed
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
            prices = self.feed.price_at(now)
            if not self.due(prices, now):
                return
            observed = min(int(now), self.w3.eth.get_block("latest").timestamp)
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
            self.last_pushed, self.last_push_time = prices, now
            if self.observer is not None:
                self.observer(observed, now, prices)
        except Exception as exc:  # noqa: BLE001: not sent; the next step observes again
            log.info("oracle push not sent: %s", exc)

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
