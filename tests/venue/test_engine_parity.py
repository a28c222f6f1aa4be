"""The compiled engine (venue/engine.py over venue/core.py) against the reference engine in plain
Python (venue/engine_ref.py): random command streams, every command kind, compared result by
result, event by event, and by state hash; the bulk path against calls one by one; the core's
exact int64 arithmetic against Python integers."""

import random
from dataclasses import replace

import numpy as np
import pytest

from venue import core
from venue.domain import DEVNET_MARKETS, FLAG_POST_ONLY, FLAG_REDUCE_ONLY, base, usdc
from venue.engine import (
    C_ACCT, C_BUY, C_EXPIRY, C_FLAGS, C_MARKET, C_OP, C_PRICE, C_SIZE, C_TIF, C_TS, COMMAND_COLUMNS, ERROR_CODES,
    OP_CANCEL, OP_PLACE, Engine, EngineError, Limits, UnknownOrder,
)
from venue.engine_ref import ReferenceEngine
from venue.journal import Journal, replay
from venue.risk import apply_trade

PX = {0: usdc(3_000), 1: usdc(60_000)}
ACCOUNTS = [f"0x{i:040x}" for i in range(1, 7)]


def fill_key(f):
    return (f.seq, f.market, f.price, f.size, f.taker_is_buy, f.ts, f.maker.id, f.maker.account, f.maker.price,
            f.maker.size, f.maker.flags, f.maker.expiry, f.taker.id, f.taker.account, f.taker.price, f.taker.size,
            f.maker_fill_total, f.taker_fill_total, f.maker.nonce, f.maker.signature, f.taker.nonce, f.taker.signature)


def event_key(e):
    if e[0] == "fill":
        return ("fill", fill_key(e[1]))
    o = e[1]
    return ("order", e[2], o.id, o.account, o.market, o.is_buy, o.price, o.size, o.remaining, o.filled, o.flags,
            o.expiry, o.client_id)


def result_key(value):
    if value is None:
        return None
    if isinstance(value, list):
        return [result_key(v) for v in value]
    if hasattr(value, "order_id"):  # Ack
        return ("ack", value.order_id, value.status, value.filled, value.remaining, value.cancel_reason,
                [fill_key(f) for f in value.fills])
    return ("order", value.id, value.account, value.remaining, value.filled)


def random_command(rng: random.Random, ts: int, live: list[int], oracle: dict | None = None):
    """(method name, args, kwargs) of one random command. With `oracle` (the current prices),
    orders are priced anywhere in the band around it and the oracle moves in steps of up to 3 %,
    so accounts reach maintenance margin and close at the band's edges."""
    a = rng.choice(ACCOUNTS)
    r = rng.random()
    market = 0 if rng.random() < 0.8 else 1
    tick, lot = DEVNET_MARKETS[market].tick_size, DEVNET_MARKETS[market].lot_size
    if r < 0.55:
        price = PX[market] + rng.randrange(-40, 40) * tick * (1 if market == 0 else 10)
        if oracle is not None:
            price = oracle[market] * rng.randrange(9_520, 10_480) // 10_000 // tick * tick
        if rng.random() < 0.03:
            price += rng.choice((1, PX[market]))  # off tick or outside the band
        size = rng.randrange(1, 60) * lot * (10 if market == 0 else 1) + (1 if rng.random() < 0.02 else 0)
        kwargs = {}
        if rng.random() < 0.15:
            kwargs["tif"] = rng.choice((1, 2))
        if rng.random() < 0.1:
            kwargs["flags"] = rng.choice((FLAG_POST_ONLY, FLAG_REDUCE_ONLY))
        if rng.random() < 0.2:
            kwargs["client_id"] = f"c{rng.randrange(30)}"
        if rng.random() < 0.2:
            kwargs["stp"] = rng.choice((1, 2))
        if rng.random() < 0.15:
            kwargs["expiry"] = ts + rng.randrange(-5, 300)
        if rng.random() < 0.05:
            kwargs["is_market"] = True
            price = 0 if rng.random() < 0.5 else price
        if rng.random() < 0.3:
            kwargs["nonce"], kwargs["signature"] = rng.randrange(1, 10**9), rng.randbytes(65)
        return "place", (ts, a, market, rng.random() < 0.5, price, size), kwargs
    if r < 0.7 and live:
        return "cancel", (ts, a if rng.random() < 0.2 else None, rng.choice(live)), {}
    if r < 0.75:
        return "cancel", (ts, a, None), {"client_id": f"c{rng.randrange(30)}"}
    if r < 0.8 and live:
        return "modify", (ts, None, rng.choice(live), None, rng.randrange(1, 30) * 100_000), {}
    if r < 0.83:
        return "schedule_cancel", (ts, a, ts + rng.randrange(0, 400) if rng.random() < 0.8 else 0), {}
    if r < 0.86:
        return "cancel_all", (ts, a, rng.choice((None, 0, 1))), {}
    if r < 0.9:
        m = rng.choice((0, 1))
        if oracle is not None:
            return "set_oracle_price", (ts, m, oracle[m] * rng.randrange(9_700, 10_300) // 10_000), {}
        return "set_oracle_price", (ts, m, PX[m] + rng.randrange(-100, 100) * DEVNET_MARKETS[m].tick_size), {}
    if r < 0.92:
        return "set_account", (ts, a, usdc(rng.choice((500, 5_000, 200_000))), {}), {}
    if r < 0.93:
        return "set_halted", (ts, 1, rng.random() < 0.5), {}
    if r < 0.96:
        return "unwind", (ts,), {}
    return "tick", (ts,), {}


def run_both(seed: int, n: int, limits: Limits, collateral_usdc=(2_000, 50_000, 1_000_000), follow_oracle=False):
    rng = random.Random(seed)
    engines = [ReferenceEngine(DEVNET_MARKETS, limits), Engine(DEVNET_MARKETS, limits)]
    events = [[], []]
    fills = []
    codes = set()
    most_live = 0
    for e, sink in zip(engines, events):
        e.listeners.append(lambda ev, sink=sink: sink.append(event_key(ev)))
    collateral = {a: usdc(rng.choice(collateral_usdc)) for a in ACCOUNTS}
    for e in engines:
        e.set_oracle_price(0, 0, PX[0])
        e.set_oracle_price(0, 1, PX[1])
        for a in ACCOUNTS:
            e.set_account(0, a, collateral[a], {})
    for i in range(n):
        ts = 1 + i * 3
        live = list(engines[0].orders)
        most_live = max(most_live, len(live))
        oracle = {m: ms.oracle_price for m, ms in enumerate(engines[0].markets)} if follow_oracle else None
        name, args, kwargs = random_command(rng, ts, live, oracle)
        if name == "cancel" and args[1] is None:  # the owner cancels
            order = engines[0].orders[args[2]]
            args = (ts, order.account, args[2])
        if name == "modify":
            order = engines[0].orders[args[2]]
            args = (ts, order.account, args[2], order.price if rng.random() < 0.7 else order.price + 10_000, args[4])
        if name == "unwind":
            if not fills:
                continue
            f = rng.choice(fills)
            name = "on_fill_rejected"
            args = (ts, f[0], f[1], rng.random() < 0.5, f[2], f[3], f[4], f[5], f[6], f[7])
        results = []
        for e in engines:
            try:
                results.append(("ok", result_key(getattr(e, name)(*args, **kwargs))))
            except EngineError as exc:
                results.append(("error", type(exc).__name__, exc.code, exc.msg))
        assert results[0] == results[1], (i, name, args, kwargs)
        if results[0][0] == "error":
            codes.add(results[0][2])
        if results[0][0] == "ok" and name == "place":
            for fk in results[0][1][6]:
                fills.append((fk[0], fk[6], fk[3], fk[1], fk[7], fk[13], fk[2], fk[4]))
        assert events[0] == events[1], (i, name, args, kwargs)
        if i % 50 == 0:
            assert engines[0].state_hash() == engines[1].state_hash(), i
    assert engines[0].state_hash() == engines[1].state_hash()
    assert engines[0].l2(0) == engines[1].l2(0)
    for address in ACCOUNTS:
        ref, ours = engines[0].accounts[address], engines[1].accounts[address]
        assert (ref.collateral, ref.fees, ref.positions, ref.open_buy, ref.open_sell, ref.open_orders) == \
               (ours.collateral, ours.fees, ours.positions, ours.open_buy, ours.open_sell, ours.open_orders)
    return engines, events[0], most_live, codes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_engine_matches_the_reference_command_by_command(seed):
    engines, events, most_live, codes = run_both(seed, 3_000, Limits(rate_per_s=45, burst=25, max_open_orders=3))
    kinds = {e[1] if e[0] == "order" else "fill" for e in events}
    # the streams really exercised matching, self-trade prevention, expiry and the switch
    assert {"fill", "resting", "filled", "cancelled", "self_trade", "expired"} <= kinds
    assert most_live > 10
    assert {"TICK_SIZE", "LOT_SIZE", "PRICE_BAND", "EXPIRED", "POST_ONLY_WOULD_CROSS", "REDUCE_ONLY", "RATE_LIMITED",
            "TOO_MANY_OPEN_ORDERS", "FOK_NOT_FILLED", "UNKNOWN_ORDER", "DUPLICATE_CLIENT_ID"} <= codes, codes


def test_margin_path_matches_the_reference_with_small_accounts():
    _, events, _, codes = run_both(7, 2_000, Limits(rate_per_s=10**6, burst=10**6), (300, 1_000, 5_000))
    assert sum(1 for e in events if e[0] == "fill") > 100
    assert "INSUFFICIENT_MARGIN" in codes


def test_closing_rule_matches_the_reference_with_moving_prices():
    """Orders priced across the band around a moving oracle, accounts falling toward maintenance
    margin: both engines agree command by command."""
    _, events, _, codes = run_both(11, 3_000, Limits(rate_per_s=10**6, burst=10**6), (300, 1_000, 5_000),
                                   follow_oracle=True)
    assert sum(1 for e in events if e[0] == "fill") > 100 and "INSUFFICIENT_MARGIN" in codes


def test_both_engines_refuse_a_close_at_the_band_edge_into_negative_equity():
    """The contracts' closing rule, pre-trade: an account just below maintenance margin may not
    sell at the band edge (equity would go below zero) nor half of it (below maintenance and worse
    than before), yet may sell at the oracle price."""
    outcomes = []
    for engine in (ReferenceEngine(DEVNET_MARKETS, Limits()), Engine(DEVNET_MARKETS, Limits())):
        engine.set_oracle_price(0, 0, usdc(3_000))
        engine.set_oracle_price(0, 1, usdc(60_000))
        engine.set_account(0, "thin", usdc(1_000), {})
        engine.set_account(0, "rich", usdc(1_000_000), {})
        engine.place(1, "rich", 0, False, usdc(3_000), base(6))
        assert engine.place(2, "thin", 0, True, usdc(3_000), base(6)).filled == base(6)
        engine.set_oracle_price(3, 0, usdc(2_880))  # equity ~271 against maintenance margin 432
        engine.place(4, "rich", 0, True, usdc(2_740), base(6))  # bids down to the band edge
        engine.place(4, "rich", 0, True, usdc(2_880), base(1))
        result = []
        for ts, (price, size, flags) in enumerate([(usdc(2_740), base(6), FLAG_REDUCE_ONLY),
                                                   (usdc(2_740), base(3), FLAG_REDUCE_ONLY),
                                                   (usdc(2_740), base(3), 0),
                                                   (usdc(2_880), base(1), FLAG_REDUCE_ONLY)], start=5):
            try:
                ack = engine.place(ts, "thin", 0, False, price, size, flags=flags)
                result.append(("ok", ack.filled))
            except EngineError as exc:
                result.append((exc.code, exc.msg))
        outcomes.append(result)
    assert outcomes[0] == outcomes[1]
    # Below initial margin a plain order is refused first by the worst case of open orders (the
    # position itself); reduce-only closes are held to the closing rule.
    assert [r[0] for r in outcomes[0]] == ["MAINTENANCE_WORSENED"] * 2 + ["INSUFFICIENT_MARGIN", "ok"]
    assert outcomes[0][3] == ("ok", base(1))


def bulk_stream(rng: random.Random, engine: Engine, n: int) -> tuple[np.ndarray, list]:
    """Random places and cancels as `Engine.run` rows, cancels naming orders placed earlier, and
    their metadata (a client order id, nonce and signature on some places)."""
    rows, meta = [], []
    for i in range(n):
        row = [0] * COMMAND_COLUMNS
        row[C_TS] = 1 + i // 4
        row[C_ACCT] = engine.account_id(rng.choice(ACCOUNTS))
        if rng.random() < 0.25 and i > 10:
            row[C_OP], row[C_SIZE] = OP_CANCEL, rng.randrange(1, i)
        else:
            row[C_OP], row[C_MARKET], row[C_BUY] = OP_PLACE, 0, rng.random() < 0.5
            row[C_PRICE] = PX[0] + rng.randrange(-30, 30) * 10_000
            row[C_SIZE] = rng.randrange(1, 40) * 100_000
            row[C_TIF] = 1 if rng.random() < 0.1 else 0
            row[C_FLAGS] = FLAG_POST_ONLY if rng.random() < 0.1 else 0
            row[C_EXPIRY] = row[C_TS] + rng.randrange(5, 100) if rng.random() < 0.1 else 0
        rows.append(row)
        meta.append((f"b{i}" if rng.random() < 0.5 else None, i + 1, rng.randbytes(64))
                    if row[C_OP] == OP_PLACE and rng.random() < 0.4 else None)
    return np.array(rows, dtype=np.int64), meta


def fresh(journal=None, capacity=None) -> Engine:
    e = Engine(DEVNET_MARKETS, Limits(rate_per_s=10**6, burst=10**6), journal=journal, capacity=capacity)
    e.set_oracle_price(0, 0, PX[0])
    for a in ACCOUNTS:
        e.set_account(0, a, usdc(100_000), {})
    return e


def test_bulk_run_equals_the_same_commands_one_by_one_and_replays(tmp_path):
    journal = Journal(tmp_path / "bulk.sqlite")
    bulk, single = fresh(journal), fresh()
    seen_bulk, seen_single = [], []
    bulk.listeners.append(lambda ev: seen_bulk.append(event_key(ev)))
    single.listeners.append(lambda ev: seen_single.append(event_key(ev)))
    cmds, meta = bulk_stream(random.Random(11), bulk, 4_000)
    out = np.concatenate([bulk.run(cmds[g:g + 256], meta[g:g + 256]) for g in range(0, len(cmds), 256)])
    for row, res, extra in zip(cmds.tolist(), out.tolist(), meta):
        account = bulk.addresses[row[C_ACCT]]
        client_id, nonce, signature = extra or (None, 0, b"")
        try:
            if row[C_OP] == OP_PLACE:
                ack = single.place(row[C_TS], account, row[C_MARKET], bool(row[C_BUY]), row[C_PRICE], row[C_SIZE],
                                   tif=row[C_TIF], flags=row[C_FLAGS], expiry=row[C_EXPIRY], client_id=client_id,
                                   nonce=nonce, signature=signature)
                assert (res[0], res[1], res[3], res[4]) == (0, ack.order_id, ack.filled, ack.remaining)
            else:
                assert single.cancel(row[C_TS], account, row[C_SIZE]).id == res[1] and res[0] == 0
        except EngineError as exc:
            assert ERROR_CODES[res[0]] == exc.code
    assert seen_bulk == seen_single
    assert bulk.state_hash() == single.state_hash()
    assert bulk.client_ids == single.client_ids and bulk.meta == single.meta
    assert any(e[0] == "fill" and e[1][-1] for e in seen_bulk)  # signatures reached the fills
    assert {"expired", "fill"} <= {e[1] if e[0] == "order" else e[0] for e in seen_bulk}
    journal.commit()
    rebuilt = Engine(DEVNET_MARKETS)
    replay(rebuilt, Journal(tmp_path / "bulk.sqlite"))
    assert rebuilt.state_hash() == bulk.state_hash()
    assert rebuilt.client_ids == bulk.client_ids and rebuilt.meta == bulk.meta
    assert len(Journal(tmp_path / "bulk.sqlite").fills()) == sum(1 for e in seen_bulk if e[0] == "fill")


def test_the_arena_grows_without_losing_anything():
    """Start tiny (every region at its first capacity) and rest far more than fits."""
    e = fresh(capacity=dict(pcap=2, lcap=2, ocap=2, idcap=4, acap=2, evcap=2))
    ids = [e.place(1, ACCOUNTS[i % 6], 0, i % 2 == 0, PX[0] + (-1 if i % 2 == 0 else 1) * (1 + i) * 10_000,
                   base("0.01") * (1 + i % 5)).order_id for i in range(300)]
    assert list(e.orders) == ids
    assert len(e.books[0].bids.prices) == 150 and len(e.books[0].asks.prices) == 150
    assert e.cancel_all(2, ACCOUNTS[0]) and not e.open_orders(ACCOUNTS[0])
    assert len(e.orders) == 250


@pytest.mark.parametrize("seed", range(3))
def test_muldiv_and_apply_trade_are_exact_against_python_integers(seed):
    rng = random.Random(seed)
    for _ in range(20_000):
        a = rng.randrange(-10**13, 10**13)
        b = rng.randrange(1, 10**12)
        c = rng.choice((10**8, 10**4, rng.randrange(1, 10**12), -rng.randrange(1, 10**12)))
        if abs(a * b // c) > 2**60:
            continue
        assert core.muldiv(a, b, c) == a * b // c, (a, b, c)
    for _ in range(5_000):
        size, notional = rng.randrange(-10**11, 10**11), rng.randrange(-10**13, 10**13)
        delta = rng.randrange(-10**11, 10**11) or 1
        quote = delta * rng.randrange(10**6, 10**11) // 10**8
        assert core.apply_trade(size, notional, delta, quote) == apply_trade(size, notional, delta, quote)


def test_bulk_refuses_a_client_id_twice_in_one_call_and_malformed_rows():
    e = fresh()
    row = [0] * COMMAND_COLUMNS
    row[C_TS], row[C_ACCT], row[C_PRICE], row[C_SIZE] = 1, e.account_id(ACCOUNTS[0]), PX[0] - 10_000, base("0.01")
    out = e.run([row, row], [("q", 1, b"s"), ("q", 2, b"t")])
    assert out[:, 0].tolist() == [0, core.E_DUPLICATE_CLIENT_ID]
    assert e.client_ids == {(ACCOUNTS[0], "q"): int(out[0, 1])}
    with pytest.raises(UnknownOrder):
        e.cancel(2, ACCOUNTS[1], int(out[0, 1]))  # not that account's order
    before = e.state_hash()
    broken = [list(row), list(row)]
    broken[0][C_MARKET], broken[1][C_ACCT] = 2, 99
    assert e.run(broken)[:, 0].tolist() == [core.E_UNKNOWN_MARKET, core.E_UNKNOWN_ACCOUNT]
    unknown = e.rejection(core.E_UNKNOWN_MARKET, 2, PX[0], base("0.01"))
    assert (type(unknown).__name__, unknown.code, unknown.msg) == ("OrderRejected", "UNKNOWN_MARKET", "no market 2")
    assert e.state_hash() == before
    with pytest.raises(ValueError):
        e.run(np.zeros((2, 3), dtype=np.int64))
    assert e.run(np.zeros((0, COMMAND_COLUMNS), dtype=np.int64)).shape == (0, core.RF)


def test_both_engines_hold_an_exposure_group_to_its_cap_with_the_worst_case_of_open_orders():
    """ETH-PERP and BTC-PERP in one group capped at 100,000 USDC: open orders count at their worst
    case across the group, an order that cannot grow its position is never refused by the cap,
    and a change of the group (ExposureGroupSet) applies to the next order."""
    outcomes = []
    markets = tuple(replace(p, exposure_cap=usdc(100_000)) for p in DEVNET_MARKETS)
    for engine in (ReferenceEngine(markets, Limits()), Engine(markets, Limits())):
        engine.set_oracle_price(0, 0, usdc(3_000))
        engine.set_oracle_price(0, 1, usdc(60_000))
        engine.set_account(0, "a", usdc(1_000_000), {1: (base(1), usdc(60_000))})  # long 1 BTC: 60,000
        result = []
        for ts, (market, is_buy, price, size, flags) in enumerate([
            (0, True, usdc(2_999), base(13), 0),  # worst case 60,000 + 39,000: fits
            (0, True, usdc(2_999), base(1), 0),  # 102,000: refused
            (0, False, usdc(3_001), base(13), 0),  # the other side: worst case unchanged, fits
            (0, False, usdc(3_001), base(1), 0),  # short 14 ETH if all sells fill: 102,000, refused
            (1, False, usdc(60_010), base("0.5"), FLAG_REDUCE_ONLY),  # reduces: never refused by the cap
            (1, False, usdc(60_010), base("0.5"), 0),  # also reduces (to 0.5 BTC): fits
            (1, False, usdc(60_010), base("1.5"), 0),  # flips to short 1.5 BTC: 90,000 + 39,000, refused
        ], start=1):
            try:
                engine.place(ts, "a", market, is_buy, price, size, flags=flags)
                result.append("ok")
            except EngineError as exc:
                result.append(exc.code)
        engine.set_exposure_group(20, 0, 0, 0)  # ETH-PERP leaves the group
        engine.set_exposure_group(20, 1, 0, 0)
        engine.place(21, "a", 0, True, usdc(2_999), base(10))
        result.append("ok")
        outcomes.append(result)
    assert outcomes[0] == outcomes[1] == ["ok", "EXPOSURE_CAP", "ok", "EXPOSURE_CAP", "ok", "ok", "EXPOSURE_CAP",
                                          "ok"]
