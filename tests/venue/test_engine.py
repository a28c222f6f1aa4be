"""Matching rules, order types, self-trade prevention, validation and pre-trade risk."""

import pytest

from venue.domain import DEVNET_MARKETS, FLAG_POST_ONLY, FLAG_REDUCE_ONLY, base, usdc
from venue.engine import (
    CANCELLED, FILLED, FOK, IOC, RESTING, STP_CANCEL_BOTH, STP_CANCEL_TAKER, Engine, Limits, OrderRejected,
    RateLimited, UnknownOrder,
)

ETH = 0
PX = usdc(3_000)
A, B, C = "0x" + "a" * 40, "0x" + "b" * 40, "0x" + "c" * 40


@pytest.fixture
def eng():
    e = Engine(DEVNET_MARKETS)
    e.set_oracle_price(0, 0, PX)
    e.set_oracle_price(0, 1, usdc(60_000))
    for who in (A, B, C):
        e.set_account(0, who, usdc(1_000_000), {})
    return e


def test_price_time_priority_fills_best_price_first_then_oldest(eng):
    first = eng.place(1, A, ETH, False, PX + usdc(1), base(1)).order_id
    second = eng.place(2, B, ETH, False, PX + usdc(1), base(1)).order_id
    better = eng.place(3, A, ETH, False, PX, base(1)).order_id
    ack = eng.place(4, C, ETH, True, PX + usdc(1), base(2))
    assert ack.status == FILLED
    assert [(f.maker.id, f.price) for f in ack.fills] == [(better, PX), (first, PX + usdc(1))]
    assert list(eng.orders) == [second]


def test_gtc_rests_the_remainder_and_ioc_cancels_it(eng):
    eng.place(1, A, ETH, False, PX, base(1))
    gtc = eng.place(2, B, ETH, True, PX, base(3))
    assert (gtc.status, gtc.filled, gtc.remaining) == (RESTING, base(1), base(2))
    eng.place(3, A, ETH, True, PX - usdc(1), base(1))
    ioc = eng.place(4, C, ETH, False, PX - usdc(1), base(5), tif=IOC)
    assert (ioc.status, ioc.filled, ioc.remaining, ioc.cancel_reason) == (CANCELLED, base(3), base(2), "ioc")
    assert ioc.order_id not in eng.orders


def test_fok_fills_completely_or_not_at_all(eng):
    eng.place(1, A, ETH, False, PX, base(1))
    with pytest.raises(OrderRejected) as e:
        eng.place(2, B, ETH, True, PX, base(2), tif=FOK)
    assert e.value.code == "FOK_NOT_FILLED"
    assert eng.place(3, B, ETH, True, PX, base(1), tif=FOK).status == FILLED


def test_post_only_is_rejected_if_it_would_cross(eng):
    eng.place(1, A, ETH, False, PX, base(1))
    with pytest.raises(OrderRejected) as e:
        eng.place(2, B, ETH, True, PX, base(1), flags=FLAG_POST_ONLY)
    assert e.value.code == "POST_ONLY_WOULD_CROSS"
    assert eng.place(3, B, ETH, True, PX - usdc(1), base(1), flags=FLAG_POST_ONLY).status == RESTING


def test_reduce_only_never_opens_or_grows_a_position(eng):
    with pytest.raises(OrderRejected) as e:
        eng.place(1, A, ETH, False, PX, base(1), flags=FLAG_REDUCE_ONLY)
    assert e.value.code == "REDUCE_ONLY"
    eng.place(2, B, ETH, False, PX, base(2))
    eng.place(3, A, ETH, True, PX, base(2))  # A is long 2
    with pytest.raises(OrderRejected):
        eng.place(4, A, ETH, True, PX, base(1), flags=FLAG_REDUCE_ONLY)  # would grow
    with pytest.raises(OrderRejected):
        eng.place(5, A, ETH, False, PX, base(3), flags=FLAG_REDUCE_ONLY)  # would flip
    assert eng.place(6, A, ETH, False, PX, base(2), flags=FLAG_REDUCE_ONLY).status == RESTING


def test_market_order_is_an_ioc_capped_by_slippage_from_the_oracle(eng):
    eng.place(1, A, ETH, False, PX + usdc(100), base(1))  # within the 5 % cap
    ack = eng.place(3, B, ETH, True, 0, base(2), is_market=True)
    assert (ack.filled, ack.status) == (base(1), CANCELLED)
    assert ack.fills[0].price == PX + usdc(100)


def test_market_order_keeps_a_tighter_signed_limit(eng):
    eng.place(1, A, ETH, False, PX + usdc(10), base(1))
    eng.place(2, A, ETH, False, PX + usdc(20), base(1))
    ack = eng.place(3, B, ETH, True, PX + usdc(15), base(2), is_market=True)  # the oracle cap is PX + 5 %
    assert (ack.filled, ack.status) == (base(1), CANCELLED)
    assert [f.price for f in ack.fills] == [PX + usdc(10)]


def test_self_trade_prevention_expires_the_maker_by_default(eng):
    own = eng.place(1, A, ETH, False, PX, base(1)).order_id
    other = eng.place(2, B, ETH, False, PX, base(1)).order_id
    ack = eng.place(3, A, ETH, True, PX, base(1))
    assert own not in eng.orders and other not in eng.orders
    assert [f.maker.id for f in ack.fills] == [other]


def test_self_trade_prevention_cancel_taker_and_cancel_both(eng):
    own = eng.place(1, A, ETH, False, PX, base(1)).order_id
    ack = eng.place(2, A, ETH, True, PX, base(1), stp=STP_CANCEL_TAKER)
    assert (ack.status, ack.cancel_reason, ack.fills) == (CANCELLED, "self_trade", [])
    assert own in eng.orders
    ack = eng.place(3, A, ETH, True, PX, base(1), stp=STP_CANCEL_BOTH)
    assert ack.status == CANCELLED and own not in eng.orders


def test_cancel_by_id_by_client_id_and_all(eng):
    o1 = eng.place(1, A, ETH, False, PX + usdc(1), base(1), client_id="q1").order_id
    eng.place(2, A, ETH, False, PX + usdc(2), base(1), client_id="q2")
    eng.place(3, A, 1, False, usdc(60_100), base("0.01"))
    eng.cancel(4, A, o1)
    eng.cancel(5, A, client_id="q2")
    assert [o.market for o in eng.open_orders(A)] == [1]
    with pytest.raises(UnknownOrder):
        eng.cancel(6, B, client_id="q2")
    eng.place(7, A, ETH, False, PX + usdc(1), base(1))
    eng.cancel_all(8, A, market=ETH)
    assert [o.market for o in eng.open_orders(A)] == [1]
    eng.cancel_all(9, A)
    assert eng.open_orders(A) == []


def test_modify_keeps_priority_only_when_the_size_goes_down(eng):
    a = eng.place(1, A, ETH, False, PX, base(2)).order_id
    eng.place(2, B, ETH, False, PX, base(1))
    eng.modify(3, A, a, PX, base(1))
    ack = eng.place(4, C, ETH, True, PX, base(1))
    assert ack.fills[0].maker.id == a  # still first
    b = next(o for o in eng.open_orders(B))
    eng.place(5, A, ETH, False, PX, base(1))
    moved = eng.modify(6, B, b.id, PX, base(2))  # size up: back of the queue
    ack = eng.place(7, C, ETH, True, PX, base(1))
    assert ack.fills[0].maker.account == A and moved.order_id != b.id


def test_orders_expire_and_the_dead_mans_switch_cancels_everything(eng):
    eng.place(1, A, ETH, False, PX, base(1), expiry=100)
    eng.place(2, B, ETH, False, PX + usdc(1), base(1))
    eng.schedule_cancel(3, B, at=500)
    eng.tick(100)
    assert [o.account for o in eng.orders.values()] == [B]
    eng.schedule_cancel(400, B, at=900)  # renewed before it fired
    eng.tick(600)
    assert len(eng.orders) == 1
    eng.tick(900)
    assert eng.orders == {}


@pytest.mark.parametrize("kwargs, code", [
    (dict(market=7), "UNKNOWN_MARKET"),
    (dict(price=PX + 1), "TICK_SIZE"),
    (dict(size=base(1) + 1), "LOT_SIZE"),
    (dict(size=base("0.001")), "MIN_NOTIONAL"),
    (dict(price=PX * 106 // 100), "PRICE_BAND"),
    (dict(size=0), "INVALID_SIZE"),
    (dict(expiry=1), "EXPIRED"),
])
def test_validation_errors_are_distinct_and_change_nothing(eng, kwargs, code):
    args = dict(market=ETH, price=PX, size=base(1))
    args.update(kwargs)
    before = eng.state_hash()
    with pytest.raises(OrderRejected) as e:
        eng.place(5, A, args.pop("market"), True, args.pop("price"), args.pop("size"), **args)
    assert e.value.code == code
    assert eng.state_hash() == before


def test_halted_market_too_many_orders_and_rate_limit(eng):
    eng.set_halted(1, ETH, True)
    with pytest.raises(OrderRejected) as e:
        eng.place(1, A, ETH, True, PX, base(1))
    assert e.value.code == "MARKET_HALTED"
    eng.set_halted(1, ETH, False)
    small = Engine(DEVNET_MARKETS, Limits(max_open_orders=2, rate_per_s=1, burst=3))
    small.set_oracle_price(0, 0, PX)
    small.set_account(0, A, usdc(1_000_000), {})
    small.place(1, A, ETH, True, PX - usdc(1), base(1))
    small.place(1, A, ETH, True, PX - usdc(2), base(1))
    with pytest.raises(OrderRejected) as e:
        small.place(1, A, ETH, True, PX - usdc(3), base(1))
    assert e.value.code == "TOO_MANY_OPEN_ORDERS"
    with pytest.raises(RateLimited):
        small.place(1, A, ETH, True, PX - usdc(3), base(1))


def test_pre_trade_margin_counts_the_worst_case_of_open_orders(eng):
    eng.set_account(1, A, usdc(1_000), {})
    # 1,000 USDC at 20x carries 20,000 of notional: 6 ETH (18,000) fits, a second 1 ETH order does too,
    # a third would make the worst case 8 ETH = 24,000 > 20,000.
    eng.place(2, A, ETH, True, PX - usdc(1), base(6))
    eng.place(3, A, ETH, True, PX - usdc(1), base("0.6"))
    with pytest.raises(OrderRejected) as e:
        eng.place(4, A, ETH, True, PX - usdc(1), base(1))
    assert e.value.code == "INSUFFICIENT_MARGIN"
    # The sell side offsets the long worst case: a sell of 6 is fine.
    eng.place(5, A, ETH, False, PX + usdc(1), base(6))
