"""Price feeds for the oracle keeper: a seeded random walk with jumps, correlated across markets,
and replay of CSVs of timestamped prices (keeper/data/prices holds real crash-day paths)."""

from __future__ import annotations

import bisect
import csv
import math
import random
from decimal import Decimal
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "prices"


def to_units(price: str | float, decimals: int = 6) -> int:
    return int(Decimal(str(price)) * 10**decimals)


class RandomWalkFeed:
    """Geometric Brownian motion plus a compound Poisson jump process per market, with the
    Brownian parts correlated (`correlation` between every pair). Prices in quote units."""

    def __init__(self, initial: dict[int, int], *, vol_per_hour: float = 0.02, jumps_per_hour: float = 2.0,
                 jump_stdev: float = 0.03, correlation: float = 0.7, seed: int = 1, step_s: float = 1.0):
        self.prices = {k: float(v) for k, v in initial.items()}
        self.sigma = vol_per_hour / math.sqrt(3600)
        self.jump_rate = jumps_per_hour / 3600
        self.jump_stdev = jump_stdev
        self.rho = correlation
        self.rng = random.Random(seed)
        self.step_s = step_s
        self.t: float | None = None

    def price_at(self, t: float) -> dict[int, int]:
        if self.t is None:
            self.t = t
        while self.t + self.step_s <= t:
            self.t += self.step_s
            common = self.rng.gauss(0, 1)
            for k in self.prices:
                z = self.rho * common + math.sqrt(1 - self.rho**2) * self.rng.gauss(0, 1)
                r = -0.5 * self.sigma**2 * self.step_s + self.sigma * math.sqrt(self.step_s) * z
                if self.rng.random() < self.jump_rate * self.step_s:
                    r += self.rng.gauss(0, self.jump_stdev)
                self.prices[k] *= math.exp(r)
        return {k: int(v) for k, v in self.prices.items()}


class CsvFeed:
    """Replays `timestamp,price` CSVs (one per oracle id) from their first row, `speed` data
    seconds per wall second; the price at a time is the last row at or before it."""

    def __init__(self, files: dict[int, Path], start: float, speed: float = 1.0, offset_s: float = 0.0):
        """`offset_s`: data seconds to skip, to start the replay right before the interesting part."""
        self.offset_s = offset_s
        self.series = {}
        for k, path in files.items():
            rows = list(csv.DictReader(open(path)))
            self.series[k] = ([int(r["timestamp"]) for r in rows], [to_units(r["price"]) for r in rows])
        self.start, self.speed = start, speed

    def price_at(self, t: float) -> dict[int, int]:
        out = {}
        for k, (times, prices) in self.series.items():
            data_t = times[0] + self.offset_s + (t - self.start) * self.speed
            out[k] = prices[max(0, bisect.bisect_right(times, data_t) - 1)]
        return out
