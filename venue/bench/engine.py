"""Matching engine throughput and latency, side by side with the `limit-order-book` package
(a C++ price-time engine called through ctypes) on the same operation stream.

Workload: 200,000 operations from a fixed seed on ETH-PERP (tick 0.01 USDC, lot 0.001 ETH,
oracle 3,000): 50 % passive limit adds within 2 % of the oracle, 25 % cancels of live
orders, 25 % limits that cross the spread, from 50 accounts. Our engine runs as the venue runs
it: validation (tick, lot, notional, band, open orders, rate limit), pre-trade margin with
open orders, and self-trade prevention on. The journal run commits to SQLite (WAL) in groups of
256 commands, acknowledging only after each commit.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table

from venue.domain import DEVNET_MARKETS
from venue.engine import Engine, EngineError, Limits
from venue.journal import Journal

N_OPS = 200_000
N_ACCOUNTS = 50
ORACLE = 3_000_000_000
TICK = DEVNET_MARKETS[0].tick_size
LOT = DEVNET_MARKETS[0].lot_size
GROUP = 256


def make_stream(seed: int = 42, n: int = N_OPS) -> list[tuple]:
    """(kind, stream id, account, is_buy, price ticks, size lots). The live-order set is tracked
    with the peer library, independent of our engine."""
    from limit_order_book import LimitOrderBook

    rng = random.Random(seed)
    peer = LimitOrderBook()
    accounts = [f"0x{i:040x}" for i in range(1, N_ACCOUNTS + 1)]
    live: list[int] = []
    ops = []
    mid = ORACLE // TICK
    next_id = 0
    for _ in range(n):
        r = rng.random()
        if r < 0.25 and live:
            j = rng.randrange(len(live))
            live[j], live[-1] = live[-1], live[j]
            oid = live.pop()
            if not peer.has(oid):
                continue_ok = False
                # filled meanwhile: pick another live one (or fall through to an add)
                while live and not continue_ok:
                    j = rng.randrange(len(live))
                    live[j], live[-1] = live[-1], live[j]
                    oid = live.pop()
                    continue_ok = peer.has(oid)
                if not continue_ok:
                    r = 0.5
            if r < 0.25:
                ops.append(("cancel", oid, None, None, None, None))
                peer.cancel(oid)
                continue
        next_id += 1
        is_buy = rng.random() < 0.5
        account = accounts[rng.randrange(N_ACCOUNTS)]
        lots = rng.randrange(10, 200)
        if r < 0.75:  # passive: behind the touch
            offset = rng.randrange(1, 600)
            price = mid - offset if is_buy else mid + offset
        else:  # crossing
            price = mid + 700 if is_buy else mid - 700
        ops.append(("limit", next_id, account, is_buy, price, lots))
        peer.limit(is_buy, next_id, lots, price)
        if peer.has(next_id):
            live.append(next_id)
    return ops


def run_ours(ops, journal: Journal | None, timed: bool) -> tuple[float, list[int], int]:
    engine = Engine(DEVNET_MARKETS, Limits(max_open_orders=100_000), journal=journal)
    engine.set_oracle_price(0, 0, ORACLE)
    engine.set_oracle_price(0, 1, 60_000_000_000)
    for i in range(1, N_ACCOUNTS + 1):
        engine.set_account(0, f"0x{i:040x}", 10**15, {})
    if journal:
        journal.commit()
    ids: dict[int, int] = {}
    place, cancel = engine.place, engine.cancel
    lat: list[int] = []
    errors = 0
    clock = time.perf_counter_ns
    t0 = time.perf_counter()
    for i, (kind, sid, account, is_buy, price, lots) in enumerate(ops):
        ts = 1 + i // 10  # 10 operations per millisecond: 20 s of venue time
        s = clock() if timed else 0
        try:
            if kind == "limit":
                ids[sid] = place(ts, account, 0, is_buy, price * TICK, lots * LOT).order_id
            else:
                oid = ids.get(sid)
                order = engine.orders.get(oid)
                if order is not None:
                    cancel(ts, order.account, oid)
        except EngineError:
            errors += 1
        if journal is not None and (i + 1) % GROUP == 0:
            journal.commit()  # group commit: the last GROUP commands are acknowledged now
        if timed:
            lat.append(clock() - s)
    if journal is not None:
        journal.commit()
    return time.perf_counter() - t0, lat, errors


def run_peer(ops) -> float:
    from limit_order_book import LimitOrderBook

    book = LimitOrderBook()
    limit, cancel, has = book.limit, book.cancel, book.has
    t0 = time.perf_counter()
    for kind, sid, _account, is_buy, price, lots in ops:
        if kind == "limit":
            limit(is_buy, sid, lots, price)
        elif has(sid):
            cancel(sid)
    return time.perf_counter() - t0


def pct(values: list[int], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000


def main() -> int:
    ops = make_stream()
    n = len(ops)
    mix = {k: sum(1 for o in ops if o[0] == k) for k in ("limit", "cancel")}
    peer_s = min(run_peer(ops) for _ in range(3))
    ours_s, _, errors = min((run_ours(ops, None, False) for _ in range(3)), key=lambda r: r[0])
    with tempfile.TemporaryDirectory() as d:
        journal = Journal(os.path.join(d, "bench.sqlite"))
        journal_s, _, _ = run_ours(ops, journal, False)
        journal.close()
    _, lat, _ = run_ours(ops, None, True)
    ops_s, ops_j, peer_ops = n / ours_s, n / journal_s, n / peer_s
    table = Table(title=f"matching engine: {n:,} operations (limits {mix['limit']:,}, cancels {mix['cancel']:,})")
    for col in ("engine", "ops/s", "µs/op"):
        table.add_column(col, justify="right")
    table.add_row("crossbook, journal off", f"{ops_s:,.0f}", f"{1e6 / ops_s:.2f}")
    table.add_row("crossbook, journal on (SQLite WAL, group commit 256)", f"{ops_j:,.0f}", f"{1e6 / ops_j:.2f}")
    table.add_row("limit-order-book 2.0.0 (C++ via ctypes)", f"{peer_ops:,.0f}", f"{1e6 / peer_ops:.2f}")
    Console().print(table)
    print(f"latency per operation, journal off: p50 {pct(lat, 0.5):.2f} µs, p99 {pct(lat, 0.99):.2f} µs; "
          f"ratio vs peer {ops_s / peer_ops:.2f}; engine rejections {errors} (validation on)")
    print("workload: fixed seed 42, 50% passive adds, 25% cancels of live orders, 25% crossing limits, 50 accounts, "
          "validation + margin + self-trade prevention on; best of 3 runs without journal")
    print(json.dumps({"ops_per_s": round(ops_s), "ops_per_s_journal": round(ops_j), "peer_ops_per_s": round(peer_ops),
                      "ratio_vs_peer": round(ops_s / peer_ops, 3), "p50_us": round(pct(lat, 0.5), 2),
                      "p99_us": round(pct(lat, 0.99), 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
