"""Funding keeper: the premium of the venue's impact bid and ask over the oracle price, posted on
the funding schedule. premium = (impact mid - oracle) / oracle, where the impact bid (ask) is the
average price of selling (buying) `impact_notional` into the book; the hourly rate posted is
premium / 8, as venues with an 8-hour premium paid hourly do. The contract clamps it."""

from __future__ import annotations

import logging

import httpx

from venue.chain import Deployment, contract, read_markets
from venue.clock import REAL, Clock, run_every
from venue.domain import SIZE_SCALE, WAD

from .sender import TxFailed, TxSender

log = logging.getLogger("keeper.funding")


def impact_price(levels: list[list[str]], notional: int) -> int | None:
    """Size-weighted average price (quote units per whole base) of taking `notional` from these
    levels, or None if they hold less."""
    remaining, weighted, size = notional, 0, 0
    for price_s, size_s in levels:
        price, level_size = int(price_s), int(size_s)
        take = min(level_size, -(-remaining * SIZE_SCALE // price))  # enough size to cover what is left
        weighted += take * price
        size += take
        remaining -= take * price // SIZE_SCALE
        if remaining <= 0:
            return weighted // size
    return None


def premium_rate(book: dict, oracle_price: int, impact_notional: int) -> int:
    """Hourly funding rate (WAD) from a book snapshot; 0 when a side is too thin."""
    bid, ask = impact_price(book["bids"], impact_notional), impact_price(book["asks"], impact_notional)
    if bid is None or ask is None or oracle_price <= 0:
        return 0
    return ((bid + ask) // 2 - oracle_price) * WAD // oracle_price // 8


class FundingKeeper:
    """Posts every market's premium rate each `interval_s` (the first at its first step), never
    blocking on the transactions. The book comes from the venue's API, or from `book(market)`
    (the scenario lab passes the in-process venue's)."""

    def __init__(self, w3, deployment: Deployment, key: str, api_url: str | None, *, interval_s: float = 3600,
                 impact_notional: int = 1_000 * 10**6, priority_fee_gwei: float = 1.0, clock: Clock = REAL,
                 book=None, poll_s: float = 1.0):
        self.ch = contract(w3, "ClearingHouse", deployment.clearing_house)
        self.oracle = contract(w3, "Oracle", deployment.oracle)
        self.sender = TxSender(w3, key, "funding", priority_fee_gwei=priority_fee_gwei)
        if book is None:
            api = httpx.Client(base_url=api_url, timeout=10)
            book = lambda m: api.get(f"/book/{m}", params={"depth": 100}).json()  # noqa: E731
        self.book = book
        self.interval_s, self.impact_notional = interval_s, impact_notional
        self.markets = read_markets(self.ch, deployment.markets)
        self.clock, self.poll_s = clock, poll_s
        self.next_at = 0.0
        self.in_flight: list[dict] = []
        self.updates = 0

    def step(self, now: float | None = None) -> None:
        now = self.clock.now() if now is None else now
        for pending in list(self.in_flight):
            try:
                if self.sender.poll(pending) is None:
                    continue
                self.updates += 1
            except TxFailed as exc:
                log.info("funding update failed: %s", exc)
            self.in_flight.remove(pending)
        if now < self.next_at or self.in_flight:
            return
        self.next_at = now + self.interval_s
        for m, params in enumerate(self.markets):
            oracle_price = self.oracle.functions.getPrice(params.oracle_id).call()[0]
            rate = premium_rate(self.book(m), oracle_price, self.impact_notional)
            try:
                self.in_flight.append(self.sender.send(self.ch.functions.updateFunding(m, rate), gas=150_000,
                                                       label=f"updateFunding {params.symbol} {rate / WAD:.6%}/h"))
            except Exception as exc:  # noqa: BLE001: the next interval tries again
                log.info("funding update not sent: %s", exc)

    def run(self, stop) -> None:
        run_every(self.step, min(self.poll_s, self.interval_s), stop,
                  lambda exc: log.exception("funding step failed", exc_info=exc))
