"""Matching engine throughput and latency, side by side with the `limit-order-book` package
(a C++ price-time engine called through ctypes) on the same operation stream.

Workload: 200,000 operations from a fixed seed on ETH-PERP (tick 0.01 USDC, lot 0.001 ETH,
oracle 3,000): 50 % passive limit adds within 2 % of the oracle, 25 % cancels of live
orders, 25 % limits that cross the spread, from 50 accounts. Our engine runs with everything
on: validation (tick, lot, notional, band, open orders, rate limit), pre-trade margin with
open orders, and self-trade prevention.

Three ways through our engine: `Engine.run` on groups of 100 commands (one compiled loop per
group, as the API's batch route enters it with up to 100 orders), the same with the SQLite
journal (WAL, one commit per group, acknowledged only after it), and a Python call per command
(`place` / `cancel`, as the single-order route enters it). The peer has no bulk entry: it is called per
operation, as its API offers. The reference engine in plain Python (venue/engine_ref.py) runs
the stream once for comparison.
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
import numpy as np

from venue.engine import (
    C_ACCT, C_BUY, C_OP, C_PRICE, C_SIZE, C_TS, COMMAND_COLUMNS, OP_CANCEL, OP_PLACE, Engine, EngineError, Limits,
)
from venue.engine_ref import ReferenceEngine
from venue.journal import Journal

N_OPS = 200_000
N_ACCOUNTS = 50
ORACLE = 3_000_000_000
TICK = DEVNET_MARKETS[0].tick_size
LOT = DEVNET_MARKETS[0].lot_size
GROUP = 100


def make_stream(seed: int = 42, n: int = N_OPS) -> list[tuple]:
    """(kind, stream id, account, is_buy, price ticks, size lots); a cancel names the account of
    the order it cancels. The live-order set is tracked with the peer library, independent of
    our engine."""
    from limit_order_book import LimitOrderBook

    rng = random.Random(seed)
    peer = LimitOrderBook()
    accounts = [f"0x{i:040x}" for i in range(1, N_ACCOUNTS + 1)]
    live: list[int] = []
    owner: dict[int, str] = {}
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
                ops.append(("cancel", oid, owner.pop(oid), None, None, None))
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
            owner[next_id] = account
    return ops


def new_engine(cls, journal: Journal | None):
    engine = cls(DEVNET_MARKETS, Limits(max_open_orders=100_000), journal=journal)
    engine.set_oracle_price(0, 0, ORACLE)
    engine.set_oracle_price(0, 1, 60_000_000_000)
    for i in range(1, N_ACCOUNTS + 1):
        engine.set_account(0, f"0x{i:040x}", 10**15, {})
    if journal:
        journal.commit()
    return engine


def run_calls(ops, cls=Engine, timed: bool = False) -> tuple[float, list[int], int]:
    """A Python call per command."""
    engine = new_engine(cls, None)
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
                cancel(ts, account, ids[sid])
        except (EngineError, KeyError):
            errors += 1
        if timed:
            lat.append(clock() - s)
    return time.perf_counter() - t0, lat, errors


def run_bulk(ops, journal: Journal | None) -> tuple[float, int]:
    """Groups of GROUP commands through `Engine.run`; with a journal, each group is committed
    before the next one starts (its acknowledgement point). Turning the stream into command
    rows is inside the clock. A cancel names its order by the row that placed it: in the same
    group as -(row + 1), which the core resolves, otherwise by the id that row got."""
    engine = new_engine(Engine, journal)
    account_ids = {a: engine.account_id(a) for a in {op[2] for op in ops}}
    errors = 0
    t0 = time.perf_counter()
    n = len(ops)
    cmds = np.zeros((n, COMMAND_COLUMNS), dtype=np.int64)
    cancels = np.array([op[0] == "cancel" for op in ops])
    cmds[:, C_OP] = np.where(cancels, OP_CANCEL, OP_PLACE)
    cmds[:, C_TS] = 1 + np.arange(n) // 10  # 10 operations per millisecond: 20 s of venue time
    cmds[:, C_ACCT] = np.array([account_ids[op[2]] for op in ops], dtype=np.int64)
    cmds[:, C_BUY] = np.array([op[3] is True for op in ops], dtype=np.int64)
    cmds[:, C_PRICE] = np.array([op[4] or 0 for op in ops], dtype=np.int64) * TICK
    cmds[:, C_SIZE] = np.array([op[5] or 0 for op in ops], dtype=np.int64) * LOT
    sids = np.array([op[1] for op in ops], dtype=np.int64)
    # stream ids of limits count up from 1 in stream order: the row of limit `sid`
    row_of_sid = np.nonzero(~cancels)[0]
    refs = np.full(n, -1, dtype=np.int64)
    refs[cancels] = row_of_sid[sids[cancels] - 1]
    ids_by_row = np.zeros(n, dtype=np.int64)
    for g in range(0, n, GROUP):
        group = cmds[g:g + GROUP]
        ref = refs[g:g + GROUP]
        cancels = ref >= 0
        group[cancels, C_SIZE] = np.where(ref[cancels] >= g, -(ref[cancels] - g + 1), ids_by_row[ref[cancels]])
        out = engine.run(group)
        ids_by_row[g:g + GROUP] = out[:, 1]
        errors += int(np.count_nonzero(out[:, 0]))
        if journal is not None:
            journal.commit()
    return time.perf_counter() - t0, errors


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
    run_bulk(ops[:20_000], None)  # compile and warm up
    bulk_s, errors = min((run_bulk(ops, None) for _ in range(3)), key=lambda r: r[0])
    with tempfile.TemporaryDirectory() as d:
        journal = Journal(os.path.join(d, "bench.sqlite"))
        journal_s, _ = run_bulk(ops, journal)
        journal.close()
    calls_s, _, call_errors = min((run_calls(ops) for _ in range(3)), key=lambda r: r[0])
    _, lat, _ = run_calls(ops, timed=True)
    ref_s, _, _ = run_calls(ops, ReferenceEngine)
    ops_s, ops_j, ops_c, peer_ops, ref_ops = n / bulk_s, n / journal_s, n / calls_s, n / peer_s, n / ref_s
    table = Table(title=f"matching engine: {n:,} operations (limits {mix['limit']:,}, cancels {mix['cancel']:,})")
    for col in ("engine", "ops/s", "µs/op", "vs peer"):
        table.add_column(col, justify="right")
    for name, rate in ((f"crossbook, Engine.run in groups of {GROUP}, journal off", ops_s),
                       (f"crossbook, Engine.run in groups of {GROUP}, journal on (SQLite WAL, commit per group)", ops_j),
                       ("crossbook, a Python call per command, journal off", ops_c),
                       ("crossbook reference engine (plain Python), a call per command", ref_ops),
                       ("limit-order-book 2.0.0 (C++ via ctypes), a call per operation", peer_ops)):
        table.add_row(name, f"{rate:,.0f}", f"{1e6 / rate:.2f}", f"{rate / peer_ops:.2f}")
    Console().print(table)
    print(f"latency per command, a call each, journal off: p50 {pct(lat, 0.5):.2f} µs, p99 {pct(lat, 0.99):.2f} µs; "
          f"engine rejections {errors} bulk / {call_errors} calls (validation on)")
    print("workload: fixed seed 42, 50% passive adds, 25% cancels of live orders, 25% crossing limits, 50 accounts, "
          "validation + margin + self-trade prevention on; best of 3 runs without journal")
    print(json.dumps({"ops_per_s": round(ops_s), "ops_per_s_journal": round(ops_j), "ops_per_s_calls": round(ops_c),
                      "ops_per_s_reference": round(ref_ops), "peer_ops_per_s": round(peer_ops),
                      "ratio_vs_peer": round(ops_s / peer_ops, 3), "ratio_vs_peer_calls": round(ops_c / peer_ops, 3),
                      "p50_us": round(pct(lat, 0.5), 2), "p99_us": round(pct(lat, 0.99), 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
