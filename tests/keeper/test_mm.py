"""The market maker's strategy (keeper/mm.py) without a venue: GLFT quotes, the queue-keeping
diff, caps, adaptation, the rate limit, restart adoption and the telemetry's arithmetic."""

import math

import pytest

from keeper.mm import (
    CALM, PULLED, WIDE, MarketMaker, MarketSpec, MMConfig, Plan, Quote, Resting, Telemetry, diff, glft_depths,
)

ETH = MarketSpec(0, "ETH-PERP", 10_000, 100_000, -1)  # tick 0.01 USDC, lot 0.001 ETH
BTC = MarketSpec(1, "BTC-PERP", 100_000, 10_000, -1)
PRICE = 3_000 * 10**6


def maker(**kw) -> MarketMaker:
    mm = MarketMaker(MMConfig(**kw), {0: ETH, 1: BTC})
    mm.on_oracle(0, PRICE, 0.0)
    mm.on_oracle(1, 60_000 * 10**6, 0.0)
    return mm


def rest_all(mm: MarketMaker, plan: Plan, first_id: int = 1) -> None:
    """The venue accepts every change of `plan` (each order resting whole)."""
    ids = iter(range(first_id, first_id + 1000))
    mm.applied(plan, [{"status": "cancelled", "orderId": i} for i in plan.cancels],
               [{"status": "resting", "orderId": next(ids), "remaining": str(q.size)} for _, q in plan.modifies],
               [{"status": "resting", "orderId": next(ids), "remaining": str(q.size)} for q in plan.places])


def test_glft_depths_are_symmetric_when_flat_and_skew_against_inventory():
    c1 = math.log1p(0.05 / 0.5) / 0.05
    c2 = math.sqrt(0.05 / (2 * 1.0 * 0.5) * (1 + 0.05 / 0.5) ** (0.5 / 0.05 + 1))
    bid, ask = glft_depths(2.0, 0, 0.05, 1.0, 0.5)
    assert bid == ask == pytest.approx(c1 + c2 * 2.0 / 2)
    long_bid, long_ask = glft_depths(2.0, 3, 0.05, 1.0, 0.5)
    assert long_bid - bid == pytest.approx(3 * c2 * 2.0)  # a long bot bids lower...
    assert ask - long_ask == pytest.approx(3 * c2 * 2.0)  # ...and offers lower, by c2 sigma a unit
    assert glft_depths(4.0, 0, 0.05, 1.0, 0.5)[0] > bid  # more volatility, wider


def test_quotes_levels_a_side_on_ticks_and_lots_around_the_oracle():
    mm = maker(levels=3)
    mm.observe(0.0)
    plan = mm.plan(0.0)
    eth = [q for q in plan.places if q.market == 0]
    bids = sorted((q for q in eth if q.is_buy), key=lambda q: -q.price)
    asks = sorted((q for q in eth if not q.is_buy), key=lambda q: q.price)
    assert len(bids) == len(asks) == 3 and len(plan.places) == 12
    assert all(q.price % ETH.tick == 0 and q.size % ETH.lot == 0 and q.size > 0 for q in eth)
    assert bids[0].price < PRICE < asks[0].price
    half = MMConfig().min_half_spread_bps
    assert (PRICE - bids[0].price) / PRICE * 1e4 >= half and (asks[0].price - PRICE) / PRICE * 1e4 >= half
    assert bids[1].price < bids[0].price and asks[1].price > asks[0].price
    assert abs(bids[0].size * PRICE / 10**8 / 10**6 - 5_000) < 5  # the level notional


def test_an_unchanged_price_sends_nothing_and_a_small_move_leaves_the_book_alone():
    mm = maker()
    mm.observe(0.0)
    rest_all(mm, mm.plan(0.0))
    for t in range(1, 31):  # thirty seconds of the same price
        mm.observe(float(t))
        assert not mm.plan(float(t))
    mm.on_oracle(0, PRICE + PRICE // 100_000, 31.0)  # 0.1 bp: below requote_bps
    mm.observe(31.0)
    assert not mm.plan(31.0)
    mm.on_oracle(0, PRICE + PRICE * 5 // 10_000, 32.0)  # 5 bp: the ETH quotes move, BTC's stay
    mm.observe(32.0)
    plan = mm.plan(32.0)
    assert plan.modifies and not plan.places and not plan.cancels
    assert {q.market for _, q in plan.modifies} == {0}


def test_the_diff_keeps_what_fits_shrinks_in_place_reprices_and_cancels():
    resting = [Resting(1, 0, True, 100, 10, 10), Resting(2, 0, True, 99, 10, 10), Resting(3, 0, True, 98, 10, 4),
               Resting(4, 0, False, 101, 10, 10), Resting(5, 0, False, 105, 10, 10)]
    desired = [Quote(0, True, 100, 10), Quote(0, True, 99, 6), Quote(0, True, 98, 10), Quote(0, True, 97, 10),
               Quote(0, False, 101, 10)]
    plan = diff(resting, desired, size_tolerance=0.5)
    assert not any(oid == 1 for oid, _ in plan.modifies)  # same price and size: untouched
    assert (2, Quote(0, True, 99, 6)) in plan.modifies  # smaller: in place
    assert (3, Quote(0, True, 98, 10)) in plan.modifies  # 4 left of 10: below the tolerance, refilled
    assert plan.places == [Quote(0, True, 97, 10)]  # no spare bid to reprice: a new order
    assert plan.cancels == [5]  # the unwanted ask
    assert len(plan) == 4
    assert not diff(resting[:1], [Quote(0, True, 100, 12)], 0.5)  # 10 of 12: within the tolerance
    repriced = diff([Resting(7, 0, False, 110, 10, 10)], [Quote(0, False, 111, 10)], 0.5)
    assert repriced.modifies == [(7, Quote(0, False, 111, 10))] and not repriced.cancels


def test_at_the_position_cap_only_the_reducing_side_is_quoted_reduce_only():
    cap = 2 * 10**8  # 2 ETH
    mm = maker(max_position={0: cap}, levels=3)
    mm.set_position(0, cap)
    mm.observe(0.0)
    eth = [q for q in mm.plan(0.0).places if q.market == 0]
    assert eth and all(not q.is_buy and q.reduce_only for q in eth)
    assert sum(q.size for q in eth) <= cap
    mm2 = maker(max_position={0: cap}, levels=5)
    mm2.set_position(0, cap - 10**8)  # 1 ETH of room: bids only up to it
    mm2.observe(0.0)
    bids = [q for q in mm2.plan(0.0).places if q.market == 0 and q.is_buy]
    assert sum(q.size for q in bids) <= 10**8 and not any(q.reduce_only for q in bids)


def test_the_group_cap_counts_correlated_longs_together():
    mm = maker(group=(0, 1), group_cap_usdc=100_000.0)
    mm.set_position(1, 2 * 10**8)  # 2 BTC long = 120,000 USDC: past the cap
    mm.observe(0.0)
    places = mm.plan(0.0).places
    assert not any(q.is_buy for q in places)  # no market may add to the long
    assert any(not q.is_buy and q.market == 0 for q in places)  # selling ETH reduces the net


def test_one_sided_fills_widen_then_pull_and_the_calm_returns_after_the_cooldown():
    mm = maker(one_sided_fills=3, cooldown_s=20.0, fill_window_s=10.0)
    mm.observe(0.0)
    calm_bid = max(q.price for q in mm.plan(0.0).places if q.market == 0 and q.is_buy)
    for i in range(3):
        mm.on_fill(0, True, PRICE - 10**6, 10**6, 1.0 + i)
    assert mm.markets[0].regime == WIDE and "3 more fills of its bids" in mm.markets[0].cause
    mm.observe(4.0)
    wide_bid = max(q.price for q in mm.plan(4.0).places if q.market == 0 and q.is_buy)
    assert (calm_bid - wide_bid) / PRICE * 1e4 >= 3 * MMConfig().min_half_spread_bps  # wider by widen_factor
    for i in range(3):
        mm.on_fill(0, True, PRICE - 10**6, 10**6, 5.0 + i)
    assert mm.markets[0].regime == PULLED
    mm.observe(8.0)
    pulled = mm.plan(8.0)
    assert not [q for q in pulled.places if q.market == 0] and not mm.markets[0].desired  # pulled: nothing in ETH
    mm.observe(20.0)
    assert mm.markets[0].regime == PULLED  # 13 s after the last fill
    mm.observe(28.0)
    assert mm.markets[0].regime == CALM
    assert [r["state"] for r in mm.telemetry.regimes] == [WIDE, PULLED, CALM]
    assert mm.markets[1].regime == CALM  # per market


def test_an_oracle_jump_and_a_volatility_burst_trigger_the_adaptation_a_static_bot_ignores():
    mm = maker(jump_bps=30.0)
    mm.on_oracle(0, PRICE * 10_040 // 10_000, 1.0)  # 40 bp
    assert mm.markets[0].regime == WIDE and "oracle jump 40 bps" in mm.markets[0].cause
    mm.on_oracle(0, PRICE, 2.0)  # 40 bp back is not 60
    mm.on_oracle(0, PRICE * 10_070 // 10_000, 3.0)
    assert mm.markets[0].regime == PULLED
    vol = maker()
    for t in range(60):
        vol.observe(float(t))
    price = PRICE
    for t in range(60, 66):
        price = price * 10_015 // 10_000
        vol.on_oracle(1, 60_000 * 10**6, float(t))
        vol.on_oracle(0, price, float(t))
        vol.observe(float(t))
    assert vol.markets[0].regime in (WIDE, PULLED) and "short volatility" in vol.markets[0].cause
    static = maker(adaptive=False)
    static.on_oracle(0, PRICE * 2, 1.0)
    for i in range(10):
        static.on_fill(0, True, PRICE, 10**6, 1.0)
    assert static.markets[0].regime == CALM and not static.telemetry.regimes


def test_the_rate_limit_holds_plans_back_but_never_a_pull():
    mm = maker(max_updates_per_s=10.0, burst=25, levels=5)
    mm.observe(0.0)
    first = mm.plan(0.0)
    assert len(first) == 20  # within the burst
    rest_all(mm, first)
    mm.on_oracle(0, PRICE * 10_010 // 10_000, 0.1)
    mm.observe(0.1)
    assert not mm.plan(0.1) and mm.deferred == 1  # 10 changes, 6 tokens
    mm.observe(0.5)
    assert len(mm.plan(0.5)) == 10  # 4 s... 0.4 s later there are 10 tokens
    mm.markets[0].regime = PULLED
    mm._trigger(mm.markets[0], 0.6, PULLED, "test")
    mm.observe(0.6)
    pull = mm.plan(0.6)
    assert pull.cancels  # no tokens left, still pulled


def test_a_restart_adopts_the_open_orders_instead_of_placing_new_ones():
    mm = maker(levels=2)
    mm.observe(0.0)
    plan = mm.plan(0.0)
    rest_all(mm, plan)
    open_orders = [Resting(r.id, r.market, r.is_buy, r.price, r.size, r.remaining) for r in mm.resting.values()]
    restarted = maker(levels=2)
    restarted.sync_orders(open_orders)
    restarted.observe(0.0)
    again = restarted.plan(0.0)
    assert not again  # the same quotes: nothing to send, nothing orphaned
    moved = maker(levels=2)
    moved.sync_orders(open_orders)
    moved.on_oracle(0, PRICE * 10_020 // 10_000, 0.0)
    moved.observe(0.0)
    p = moved.plan(0.0)
    assert not p.places and not p.cancels and {q.market for _, q in p.modifies} == {0}  # repriced in place


def test_telemetry_markouts_are_signed_and_the_pnl_split_adds_up():
    tele = Telemetry({0: ETH})
    tele.on_mark(0.0, 0, PRICE, PRICE)
    tele.on_fill(0.0, 0, True, PRICE - 3 * 10**6, 10**8, PRICE, PRICE)  # bought 1 ETH 3 USDC under the mid
    tele.on_mark(1.0, 0, PRICE - 6 * 10**6, PRICE - 6 * 10**6)  # the mid fell 6
    tele.on_mark(5.0, 0, PRICE - 6 * 10**6, PRICE - 9 * 10**6)
    f = tele.fills[0]
    assert f.markouts_mid[1] == pytest.approx(-3 / 2997 * 1e4)  # a loss is negative
    assert f.markouts_oracle[5] == pytest.approx(-6 / 2997 * 1e4)
    assert f.bps(f.mid) == pytest.approx(3 / 2997 * 1e4)  # the realized spread
    pnl = tele.pnl()
    assert pnl["spread"] == pytest.approx(3.0) and pnl["inventory"] == pytest.approx(-6.0)
    rebate = 2997 * 10**6 * 1 // 10_000 / 10**6  # maker fee -1 bp: a rebate rounded toward zero
    assert pnl["fees"] == pytest.approx(rebate)
    tele.on_funding(0, 2 * 10**6)  # paid 2 USDC
    assert tele.pnl()["funding"] == pytest.approx(-2.0)
    # total = marked-to-mid trading PnL + fees + funding
    assert tele.pnl()["total"] == pytest.approx((PRICE - 6 * 10**6 - (PRICE - 3 * 10**6)) / 10**6 + rebate - 2.0)
    assert tele.markout(1) == pytest.approx(f.markouts_mid[1])
    sell = Telemetry({0: ETH})
    sell.on_fill(0.0, 0, False, PRICE, 10**8, PRICE, PRICE)
    sell.on_mark(1.0, 0, PRICE + 3 * 10**6, PRICE)
    assert sell.fills[0].markouts_mid[1] < 0  # sold, and the price rose: a loss


def test_fills_through_order_updates_keep_the_resting_book_right():
    mm = maker(levels=1)
    mm.observe(0.0)
    plan = mm.plan(0.0)
    rest_all(mm, plan)
    bid = next(r for r in mm.resting.values() if r.market == 0 and r.is_buy)
    mm.on_fill(0, True, bid.price, bid.remaining // 4, 1.0, bid.id)
    assert mm.resting[bid.id].remaining == bid.size - bid.size // 4
    assert mm.position[0] == bid.size // 4
    mm.on_order_remaining(bid.id, 0)
    mm.on_order_gone(bid.id)
    assert bid.id not in mm.resting


def test_the_live_driver_keeps_the_book_from_deltas_and_calls_a_gap_a_gap():
    """keeper/mm_run.py's websocket handling without a socket: snapshots, numbered L2 deltas,
    oracle prices and own fills reach the strategy; a missing delta or a `lagged` notice raises
    GapError, which makes the listener reconnect for fresh snapshots."""
    import threading
    from types import SimpleNamespace

    from keeper.mm_run import GapError, LiveMarketMaker
    from venue.clock import SimClock

    bot = LiveMarketMaker.__new__(LiveMarketMaker)  # the message handling alone
    bot.lock, bot.wake, bot.books, bot.clock = threading.Lock(), threading.Event(), {}, SimClock(100.0)
    bot.price_seen, bot.connected = None, threading.Event()
    bot.mm = maker(levels=1)
    me = "0x00000000000000000000000000000000000000aa"
    bot.client = SimpleNamespace(address=me)
    bot.on_message({"channel": "book", "market": 0, "bookSeq": 7, "bids": [["2999000000", "100000"]],
                    "asks": [["3001000000", "100000"]]})
    bot.on_message({"channel": "l2", "market": 0, "bookSeq": 8, "data": {"changes": [["buy", "2999500000", "200000"],
                                                                                     ["sell", "3001000000", "0"]]}})
    assert bot.mm.markets[0].bids == [(2999500000, 200000), (2999000000, 100000)] and bot.mm.markets[0].asks == []
    bot.on_message({"channel": "oracle", "market": 0, "data": {"price": "3001000000", "ts": 1}})
    assert bot.mm.markets[0].oracle == 3001000000 and bot.price_seen is not None
    from collections import OrderedDict
    bot.fills_seen, bot.resync_needed, bot.telemetry = OrderedDict(), False, bot.mm.telemetry
    fill = {"seq": 1, "market": 0, "price": "2999500000", "size": "100000", "takerIsBuy": False, "maker": me,
            "taker": "0xbb", "makerOrderId": 5, "takerOrderId": 6, "status": "pending", "reason": None}
    # The venue sends a fill when it matches it and again when it settles: counted once.
    bot.on_message({"channel": "fills", "data": fill})
    bot.on_message({"channel": "fills", "data": dict(fill, status="settled")})
    assert bot.mm.position[0] == 100000 and len(bot.mm.telemetry.fills) == 1 and not bot.resync_needed
    # One rejected on-chain after it was counted: the position is to be read again from the venue.
    bot.on_message({"channel": "fills", "data": dict(fill, seq=2)})
    bot.on_message({"channel": "fills", "data": dict(fill, seq=2, status="rejected", reason="INSUFFICIENT_MARGIN")})
    assert bot.mm.position[0] == 200000 and bot.resync_needed
    # (Re)connected: a fill the websocket never brought (made while it was away) is counted from
    # the account view, the ones already counted are not, and the position is the venue's.
    bot.specs = {0: None}
    bot.client = SimpleNamespace(address=me, account_state=lambda: {
        "fills": [dict(fill, status="settled"), dict(fill, seq=3, status="settled")],
        "positions": [{"market": 0, "sizeWithPending": "300000"}]})
    bot.resync(count_missed=True)
    assert len(bot.mm.telemetry.fills) == 3 and bot.mm.position[0] == 300000
    with pytest.raises(GapError):
        bot.on_message({"channel": "l2", "market": 0, "bookSeq": 10, "data": {"changes": []}})  # 9 is missing
    with pytest.raises(GapError):
        bot.on_message({"channel": "lagged", "data": {}})
    bot.on_message({"channel": "openOrders", "data": [{"id": 3, "market": 0, "side": "buy", "price": "2999000000",
                                                       "size": "100000", "remaining": "100000"}]})
    assert list(bot.mm.resting) == [3] and bot.connected.is_set()
