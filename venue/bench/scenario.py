"""How fast the scenario lab simulates (`make bench-scenario`).

Workload, each on its own Anvil with the real venue and keepers in simulated time:
  1. (second) `black-thursday` over the full 24 hours of 2020-03-12 (UTC, the day's 1-minute ETH path
     at its real speed) in 12-second blocks (7,200 blocks: mainnet's cadence that day was ~13 s),
     with the reference market maker quoting (`mm=1`), congestion fillers in 70 % of the blocks
     and four levered longs; sim_speedup = simulated seconds / wall seconds.
  2. (first: its workers fork from a process that has not started numba's OpenMP threads, as
     `venue scenario sweep`'s do) a sweep of `calm` over 20 seeds, an hour each in 12-second blocks (300 blocks), on 2 local
     worker processes (`venue scenario sweep`'s pool); runs per hour = 20 / wall hours.
peak_rss_mb: the largest resident set of this process and of its children (the sweep's workers,
the Anvils), from getrusage.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..scenario.cli import _one
from ..scenario.lab import run_scenario
from ..scenario.scenarios import SCENARIOS, parse_params

BLOCK_S, DAY_S, HOUR_S, SEEDS, WORKERS = 12, 24 * 3600, 3600, 20, 2


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        calm = SCENARIOS["calm"]
        cparams = parse_params(calm, [f"block_time={BLOCK_S}", f"blocks={HOUR_S // BLOCK_S}"])
        jobs = [("calm", seed, cparams, str(Path(tmp) / "calm" / f"seed{seed}")) for seed in range(1, SEEDS + 1)]
        started = time.monotonic()
        with ProcessPoolExecutor(WORKERS) as pool:
            runs = list(pool.map(_one, jobs))
        sweep_wall = time.monotonic() - started
        bt = SCENARIOS["black-thursday"]
        params = parse_params(bt, [f"block_time={BLOCK_S}", "speed=1", "offset_min=0", f"blocks={DAY_S // BLOCK_S}",
                                   "mm=1", f"heartbeat_s={5 * BLOCK_S}"])
        started = time.monotonic()
        progress = {"last": started}

        def on_block(lab) -> None:
            if time.monotonic() - progress["last"] > 30:
                progress["last"] = time.monotonic()
                print(f"  black-thursday: block {lab.block}, {lab.elapsed(lab.now()) / 3600:.1f} simulated hours, "
                      f"{time.monotonic() - started:.0f} s", flush=True)
        day = run_scenario(bt, seed=1, params=params, out=Path(tmp) / "black-thursday", on_block=on_block)
        day_wall = time.monotonic() - started
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    speedup = day["sim_seconds"] / day_wall
    per_hour = len(runs) / (sweep_wall / 3600)
    table = Table(title="scenario lab speed (2-core machine)")
    for col in ("run", "simulated", "wall", "figure"):
        table.add_column(col, justify="left" if col == "run" else "right")
    table.add_row(f"black-thursday, 24 h, {BLOCK_S} s blocks, market maker", f"{day['sim_seconds']:,} s "
                  f"({day['blocks']:,} blocks)", f"{day_wall:,.0f} s", f"{speedup:,.0f}x")
    table.add_row(f"calm sweep, {SEEDS} seeds x 1 h, {WORKERS} workers", f"{SEEDS} x {HOUR_S:,} s",
                  f"{sweep_wall:,.0f} s", f"{per_hour:,.0f} runs/h")
    Console().print(table)
    print(f"black-thursday: {day['liquidations']} liquidations, {day['adl_events']} ADL events, bad debt "
          f"{day['bad_debt_usdc']} USDC, market maker PnL {day['mm_pnl_usdc']} USDC; calm: "
          f"{sum(r['fills_settled'] for r in runs)} fills settled over the sweep")
    print(json.dumps({"bench": "scenario", "sim_speedup_black_thursday": round(speedup, 1),
                      "sweep_runs_per_hour": round(per_hour), "peak_rss_mb": round(rss / 1024, 1),
                      "black_thursday_wall_s": round(day_wall, 1), "sweep_wall_s": round(sweep_wall, 1),
                      "targets": {"sim_speedup_black_thursday": 144, "sweep_runs_per_hour": 200}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
