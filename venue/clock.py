"""The clock every component that waits reads: real time on the devnet, simulated time in the
scenario lab, the same code in both.

Components take a `Clock` and ask it the time (`now()`, seconds since the epoch as a float). Their
loops are a `step(now)` method and a driver: on the devnet `run_every` calls the step on a wall
clock; in the lab the scenario runner calls every component's step once per simulated block, in
a fixed order, and mines the block with that time (venue/scenario/lab.py). So a keeper's logic
exists once, and a lab run with the same seed is the same run.
"""

from __future__ import annotations

import time


class Clock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def stamp(self, w3, now: float) -> int:
        """The time to stamp an observation made at `now` with, for a transaction sent now: the
        observation's own second, but never past the chain's clock (the pending block's time: a
        chain whose genesis lies in the past runs behind the wall), since contracts refuse a
        timestamp after the block's. Not the latest block's time: on an idle chain that is as old
        as the last transaction, and a fresh price would arrive looking old."""
        return min(int(now), w3.eth.get_block("pending").timestamp)


class SimClock(Clock):
    """Simulated time, moved only by whoever drives the simulation (`advance_to`)."""

    def __init__(self, start: float):
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def stamp(self, w3, now: float) -> int:
        """The block the lab mines next has the simulated time: an observation made now is stamped now."""
        return int(now)

    def advance_to(self, t: float) -> None:
        if t < self.t:
            raise ValueError(f"time runs forward: {t} < {self.t}")
        self.t = float(t)


REAL = Clock()


def run_every(step, interval_s: float, stop, on_error) -> None:
    """Calls `step()` every `interval_s` of wall time until `stop` (a threading.Event) is set;
    an exception is passed to `on_error` and the loop goes on."""
    while not stop.is_set():
        try:
            step()
        except Exception as exc:  # noqa: BLE001: a keeper outlives one bad step
            on_error(exc)
        stop.wait(interval_s)
