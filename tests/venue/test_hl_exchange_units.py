"""The Hyperliquid facade's own arithmetic and rules, without a chain: decimal strings to
integers (refusing anything inexact or out of range), the IOC price pulled in to the oracle
band's edge, Hyperliquid's error texts, which way a trigger fires, and the gateway's nonces."""

import random
from types import SimpleNamespace

import pytest

from venue.domain import BPS, DEVNET_MARKETS
from venue.engine import OrderRejected
from venue.hl_exchange import GATEWAY_NONCE_BASE, HlGateway, parse_decimal
from venue.signing import Order
from venue.triggers import TRIGGER_ID_BASE, Trigger, TriggerBook


def gateway(eth_oracle: int = 3_000 * 10**6) -> HlGateway:
    venue = SimpleNamespace(markets=DEVNET_MARKETS,
                            engine=SimpleNamespace(markets=[SimpleNamespace(oracle_price=eth_oracle),
                                                            SimpleNamespace(oracle_price=60_000 * 10**6)],
                                                   l2=lambda m, depth: ([(2_990_500_000, 1)], [(3_001_000_000, 1)])),
                            gateway_next={})
    return HlGateway(venue, None)


@pytest.mark.parametrize("text, scale, value", [("3001.5", 6, 3_001_500_000), ("0.001", 8, 100_000), ("5", 8, 5 * 10**8),
                                                ("2995.000000", 6, 2_995_000_000), ("0", 8, 0)])
def test_decimal_strings_become_exact_integers(text, scale, value):
    assert parse_decimal(text, scale, "price") == value


@pytest.mark.parametrize("bad", ["-1", "NaN", "inf", "0.0000001", "1" * 41, str(2**70), "", "abc", 3001.5, None,
                                 "3001.5 "[:-1] + "x"])
def test_anything_inexact_or_out_of_range_is_an_invalid_order(bad):
    with pytest.raises(OrderRejected) as refused:
        parse_decimal(bad, 6, "price")
    assert refused.value.msg == "Order has invalid price."


def test_an_ioc_price_is_pulled_in_to_the_band_edge_on_a_tick_and_never_made_worse():
    rng = random.Random(7)
    p = DEVNET_MARKETS[0]
    for _ in range(2_000):
        oracle = rng.randrange(100 * 10**6, 10_000 * 10**6)
        g = gateway(oracle)
        buy = g.bounded(0, True, oracle * 2)
        sell = g.bounded(0, False, 1)
        for price in (buy, sell):
            assert price % p.tick_size == 0 and abs(price - oracle) * BPS <= oracle * p.band_bps
        assert abs(buy + p.tick_size - oracle) * BPS > oracle * p.band_bps  # the edge: one tick more is outside
        assert abs(sell - p.tick_size - oracle) * BPS > oracle * p.band_bps
        inside = oracle // p.tick_size * p.tick_size
        assert g.bounded(0, True, inside) == inside and g.bounded(0, False, inside) == inside  # inside: unchanged


def test_refusals_carry_hyperliquids_texts():
    g = gateway()
    cases = {"TICK_SIZE": "Price must be divisible by tick size. asset=0",
             "MIN_NOTIONAL": "Order must have minimum value of $10. asset=0",
             "INSUFFICIENT_MARGIN": "Insufficient margin to place order. asset=0",
             "REDUCE_ONLY": "Reduce only order would increase position. asset=0",
             "POST_ONLY_WOULD_CROSS": "Post only order would have immediately matched, bbo was 2990.5@3001. asset=0",
             "PRICE_BAND": "Order price cannot be more than 5% away from the reference price",
             "LOT_SIZE": "Order has invalid size."}
    for code, text in cases.items():
        assert g.error_text(OrderRejected(code, "x"), 0) == text
    assert g.error_text(OrderRejected("MARKET_HALTED", "ETH-PERP is halted"), 0) == "ETH-PERP is halted (MARKET_HALTED)"


def test_gateway_nonces_are_dense_per_account_from_two_to_the_63():
    g = gateway()
    assert [g.next_nonce("a"), g.next_nonce("a"), g.next_nonce("b")] == [GATEWAY_NONCE_BASE, GATEWAY_NONCE_BASE + 1,
                                                                          GATEWAY_NONCE_BASE]
    g.venue.gateway_next["a"] = GATEWAY_NONCE_BASE + 10  # the venue took more (a restart replayed them)
    assert g.next_nonce("a") == GATEWAY_NONCE_BASE + 10


@pytest.mark.parametrize("is_buy, tpsl, fires_at, holds_at", [
    (False, "sl", 2_900, 2_901),  # a long's stop: the mark at or below
    (False, "tp", 3_100, 3_099),  # a long's take-profit: at or above
    (True, "sl", 3_100, 3_099),  # a short's stop: at or above
    (True, "tp", 2_900, 2_901),  # a short's take-profit: at or below
])
def test_which_way_a_trigger_fires(is_buy, tpsl, fires_at, holds_at):
    trigger_price = (2_900 if (tpsl == "sl") != is_buy else 3_100) * 10**6
    t = Trigger(TRIGGER_ID_BASE, Order("0xA", 0, is_buy, 1, 1, 6, 0, 1), b"", 1, True, None, trigger_price, tpsl,
                False, None, 0)
    assert t.due(fires_at * 10**6) and not t.due(holds_at * 10**6)
    book = TriggerBook()
    book.add(t)
    assert book.due(0, fires_at * 10**6) == [t] and book.due(1, fires_at * 10**6) == []
    t.parent = 7  # waiting for its entry order: not due whatever the price
    assert book.due(0, fires_at * 10**6) == []
    assert Trigger.from_record(t.as_record()).as_record() == t.as_record()
    book.fire(t)
    assert book.end(t.id, "triggered", 42, 1) is t and book.get(t.id).child == 42 and not book.waiting
