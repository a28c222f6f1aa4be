"""Oracle pushes and ages; the funding index, its clamp, and lazy payment."""

import ape
import pytest

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
    receipt = venue.ch.updateFunding(ETH, 10**14, sender=venue.keeper)  # 0.01 % per hour from now on
    start = receipt.events[0].timestamp
    assert receipt.events[0].fundingIndex == 0  # no rate was in force before
    venue.warp(3_600)
    venue.push_prices()
    elapsed = venue.now() - start
    expected_index = risk.funding_index_delta(ETH_PRICE, 10**14, elapsed)
    assert venue.ch.currentFundingIndex(ETH) == expected_index
    long_owes = risk.funding_owed(base(2), expected_index, 0)
    assert venue.position(taker).fundingOwed == long_owes > 0
    short_owes = risk.funding_owed(-base(2), expected_index, 0)
    assert venue.position(maker).fundingOwed == short_owes
    # Both sides round up: the short receives what the long pays, less at most one unit of dust.
    assert short_owes in (-long_owes, -long_owes + 1)
    # About 0.60 USDC for an hour: 2 ETH * 3,000 * 0.0001.
    assert abs(long_owes - usdc("0.6")) <= usdc("0.001")
    # Touching the positions pays it (the taker closes half), into the funding pool.
    quote_before = venue.balances(taker).quote
    receipt = venue.settle(venue.fill(venue.order(maker, True, ETH_PRICE, base(1)), venue.order(taker, False, ETH_PRICE, base(1))))
    touched = venue.chain.blocks[receipt.block_number].timestamp
    index = risk.funding_index_delta(ETH_PRICE, 10**14, touched - start)
    assert venue.ch.market(ETH).fundingIndex == index and venue.ch.market(ETH).lastFundingTime == touched
    fee = usdc(3_000) * 5 // 10_000
    paid = risk.funding_owed(base(2), index, 0)
    assert venue.balances(taker).quote == quote_before - paid - fee
    assert venue.position(taker).fundingOwed == 0
    assert venue.ch.fundingPool() == paid + risk.funding_owed(-base(2), index, 0)


def test_funding_cannot_be_sniped_by_opening_just_before_an_update(venue, maker, taker):
    """A short opened 2 s before the hourly update earns 2 s of funding, not the hour since the
    last update (the leak: 12,003 USDC instead of about 7)."""
    receipt = venue.ch.updateFunding(ETH, -4 * WAD // 100, sender=venue.keeper)  # shorts pay 4 %/h from here
    venue.warp(3_598)
    venue.push_prices()
    receipt = venue.settle(venue.fill(venue.order(maker, True, ETH_PRICE, base(100)),
                                      venue.order(taker, False, ETH_PRICE, base(100))))
    opened = venue.chain.blocks[receipt.block_number].timestamp
    venue.chain.pending_timestamp = opened + 2
    receipt = venue.ch.updateFunding(ETH, 4 * WAD // 100, sender=venue.keeper)  # now longs pay 4 %/h
    assert receipt.events[0].timestamp == opened + 2
    # The short held 2 s at -4 %/h: it paid (not earned) 2 s of 4 % on 300,000 USDC, about 6.67 USDC.
    owed = venue.position(taker).fundingOwed
    assert owed == risk.funding_owed(-base(100), risk.funding_index_delta(ETH_PRICE, -4 * WAD // 100, 2), 0)
    assert usdc(6) < owed < usdc(7)
    # An hour later at +4 %/h the short earns an hour (12,000 USDC on 300,000), paid by the long.
    venue.warp(3_600)
    venue.push_prices()
    elapsed = venue.now() - (opened + 2)
    hour = risk.funding_owed(-base(100), risk.funding_index_delta(ETH_PRICE, 4 * WAD // 100, elapsed), 0)
    short, long_ = venue.position(taker).fundingOwed, venue.position(maker).fundingOwed
    assert short - owed - hour in (-1, 0, 1)  # the two steps each round up once
    assert -hour == pytest.approx(usdc(12_000) * elapsed / 3_600, abs=2) and long_ + short in (0, 1)


def test_funding_accrues_at_most_one_step_of_a_stale_rate(venue, maker, taker):
    venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1))))
    start = venue.ch.updateFunding(ETH, 10**14, sender=venue.keeper).events[0].timestamp
    venue.warp(5 * 3_600)
    venue.push_prices()
    assert venue.now() - start > 3_600
    assert venue.ch.currentFundingIndex(ETH) == risk.funding_index_delta(ETH_PRICE, 10**14, risk.MAX_FUNDING_STEP)


def test_funding_rate_is_clamped_to_the_market_cap(venue):
    receipt = venue.ch.updateFunding(ETH, WAD, sender=venue.keeper)
    assert receipt.events[0].ratePerHour == 4 * WAD // 100
    receipt = venue.ch.updateFunding(ETH, -WAD, sender=venue.keeper)
    assert receipt.events[0].ratePerHour == -4 * WAD // 100


def test_funding_update_with_a_stale_price_reverts(venue):
    venue.warp(61)
    with ape.reverts(venue.ch.StalePrice):
        venue.ch.updateFunding(ETH, 10**14, sender=venue.keeper)
