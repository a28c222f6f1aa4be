"""Oracle pushes and ages; the funding index, its clamp, and lazy payment."""

import ape

from venue import risk
from venue.domain import WAD, base, usdc

from .conftest import BTC, ETH, ETH_PRICE


def test_only_a_keeper_pushes_prices(venue):
    intruder = venue.traders[0]
    with ape.reverts(venue.oracle.NotKeeper, caller=intruder.address):
        venue.oracle.setPrices([ETH], [1], venue.now(), sender=intruder.account)


def test_oracle_refuses_bad_updates(venue):
    now = venue.now()
    with ape.reverts(venue.oracle.LengthMismatch, ids=2, prices=1):
        venue.oracle.setPrices([ETH, BTC], [1], now, sender=venue.keeper)
    venue.warp(5)
    with ape.reverts(venue.oracle.InvalidPrice, id=ETH, price=0):
        venue.oracle.setPrices([ETH], [0], now + 1, sender=venue.keeper)
    with ape.reverts(venue.oracle.TimestampInFuture):
        venue.oracle.setPrices([ETH], [1], now + 3_600, sender=venue.keeper)
    stored = venue.oracle.getPrice(ETH)[1]
    with ape.reverts(venue.oracle.PriceNotNewer, id=ETH, timestamp=stored, storedTimestamp=stored):
        venue.oracle.setPrices([ETH], [1], stored, sender=venue.keeper)
    with ape.reverts(venue.oracle.NoPrice, id=7):
        venue.oracle.getPrice(7)


def test_readers_get_price_and_age(venue):
    venue.warp(20)
    venue.push_prices(eth=ETH_PRICE + usdc(5), age=10)
    price, updated = venue.oracle.getPrice(ETH)
    assert price == ETH_PRICE + usdc(5)
    assert venue.oracle.priceAge(ETH) == venue.now() - updated == 10


def test_only_the_funding_keeper_updates_funding(venue):
    with ape.reverts(venue.ch.Unauthorized, caller=venue.traders[0].address, role=2):
        venue.ch.updateFunding(ETH, 10**14, sender=venue.traders[0].account)


def test_funding_index_follows_the_formula_and_is_paid_when_touched(venue, maker, taker):
    venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(2)), venue.order(taker, True, ETH_PRICE, base(2))))
    last = venue.ch.market(ETH).lastFundingTime
    venue.warp(3_600)
    venue.push_prices()
    receipt = venue.ch.updateFunding(ETH, 10**14, sender=venue.keeper)  # 0.01 % per hour
    event = receipt.events[0]
    elapsed = event.timestamp - last
    expected_index = risk.funding_index_delta(ETH_PRICE, 10**14, elapsed)
    assert event.fundingIndex == expected_index == venue.ch.market(ETH).fundingIndex
    long_owes = risk.funding_owed(base(2), expected_index, 0)
    assert venue.position(taker).fundingOwed == long_owes > 0
    short_owes = risk.funding_owed(-base(2), expected_index, 0)
    assert venue.position(maker).fundingOwed == short_owes
    # Both sides round up: the short receives what the long pays, less at most one unit of dust.
    assert short_owes in (-long_owes, -long_owes + 1)
    # About 0.60 USDC for an hour: 2 ETH * 3,000 * 0.0001.
    assert abs(long_owes - usdc("0.6")) <= usdc("0.001")
    # Touching the positions pays it: the taker closes half.
    quote_before = venue.balances(taker).quote
    venue.settle(venue.fill(venue.order(maker, True, ETH_PRICE, base(1)), venue.order(taker, False, ETH_PRICE, base(1))))
    fee = usdc(3_000) * 5 // 10_000
    assert venue.balances(taker).quote == quote_before - long_owes - fee
    assert venue.position(taker).fundingOwed == 0


def test_funding_rate_is_clamped_to_the_market_cap(venue):
    receipt = venue.ch.updateFunding(ETH, WAD, sender=venue.keeper)
    assert receipt.events[0].ratePerHour == 4 * WAD // 100
    receipt = venue.ch.updateFunding(ETH, -WAD, sender=venue.keeper)
    assert receipt.events[0].ratePerHour == -4 * WAD // 100


def test_funding_update_with_a_stale_price_reverts(venue):
    venue.warp(61)
    with ape.reverts(venue.ch.StalePrice):
        venue.ch.updateFunding(ETH, 10**14, sender=venue.keeper)
