"""Oracle keeper: pushes feed prices on a heartbeat and whenever one moves past a deviation
threshold. Knobs for lag on purpose (a fixed delay plus random jitter between observing and
sending) and for gas bidding (the tip)."""

from __future__ import annotations

import logging
import random
import time

from venue.chain import Deployment, contract

from .sender import TxFailed, TxSender

log = logging.getLogger("keeper.oracle")


class OracleKeeper:
    def __init__(self, w3, deployment: Deployment, key: str, feed, *, heartbeat_s: float = 30.0,
                 deviation_bps: int = 50, delay_s: float = 0.0, jitter_s: float = 0.0, priority_fee_gwei: float = 1.0,
                 seed: int = 1, poll_s: float = 0.2):
        self.w3 = w3
        self.oracle = contract(w3, "Oracle", deployment.oracle)
        self.sender = TxSender(w3, key, "oracle", priority_fee_gwei=priority_fee_gwei)
        self.feed = feed
        self.heartbeat_s, self.deviation_bps = heartbeat_s, deviation_bps
        self.delay_s, self.jitter_s = delay_s, jitter_s
        self.rng = random.Random(seed)
        self.poll_s = poll_s
        self.last_pushed: dict[int, int] = {}
        self.last_push_time = 0.0
        self.pushes = 0

    def due(self, prices: dict[int, int], now: float) -> bool:
        if now - self.last_push_time >= self.heartbeat_s or not self.last_pushed:
            return True
        return any(abs(p - self.last_pushed.get(k, p)) * 10_000 > self.last_pushed.get(k, p) * self.deviation_bps
                   for k, p in prices.items())

    def step(self, now: float) -> None:
        prices = self.feed.price_at(now)
        if not self.due(prices, now):
            return
        observed = min(int(now), self.w3.eth.get_block("latest").timestamp)
        lag = self.delay_s + self.rng.uniform(0, self.jitter_s)
        if lag:
            time.sleep(lag)  # deliberate oracle lag: the observation ages before it is sent
        ids = sorted(prices)
        try:
            self.sender.transact(self.oracle.functions.setPrices(ids, [prices[k] for k in ids], observed),
                                 gas=150_000, label=f"setPrices {dict(zip(ids, (prices[k] for k in ids)))}")
            self.last_pushed, self.last_push_time = prices, now
            self.pushes += 1
        except TxFailed as exc:
            log.info("oracle push failed: %s", exc)

    def run(self, stop) -> None:
        while not stop.is_set():
            try:
                self.step(time.time())
            except Exception:
                log.exception("oracle step failed")
            stop.wait(self.poll_s)
