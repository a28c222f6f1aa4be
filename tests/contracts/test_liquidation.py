"""Liquidation: who may be liquidated, how much, at what price, and who absorbs losses."""

import ape

from venue import risk
from venue.domain import DEVNET_MARKETS, DEVNET_RISK, base, usdc

from .conftest import ETH, ETH_PRICE

ETH_MARKET = DEVNET_MARKETS[ETH]


def open_long(venue, maker, collateral=usdc(1_000), size=base(6)):
    """A trader with `collateral` goes long `size` ETH at 3,000 against `maker`."""
    t = venue.traders[1]
    venue.fund(t, collateral)
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, size), venue.order(t, True, ETH_PRICE, size)))
    assert venue.rejections(receipt) == []
    return t


def liquidator(venue):
    lq = venue.traders[2]
    venue.fund(lq, usdc(100_000))
    return lq


def test_account_above_maintenance_margin_cannot_be_liquidated(venue, maker):
    t = open_long(venue, maker)
    lq = liquidator(venue)
    venue.push_prices(eth=usdc(2_910))
    h = venue.ch.health(t.address)
    assert h.equity >= h.maintenanceMargin
    with ape.reverts(venue.ch.AccountNotLiquidatable, account=t.address, equity=h.equity,
                     maintenanceMargin=h.maintenanceMargin):
        venue.ch.liquidate(t.address, ETH, base(6), sender=lq.account)


def test_partial_liquidation_closes_only_what_restores_maintenance_plus_buffer(venue, maker):
    t = open_long(venue, maker)
    lq = liquidator(venue)
    price = usdc(2_900)
    venue.push_prices(eth=price)
    h = venue.ch.health(t.address)
    assert 0 < h.equity < h.maintenanceMargin
    expected = risk.max_liquidation(base(6), h.equity, h.maintenanceMargin, price, ETH_MARKET.lot_size,
                                    ETH_MARKET.im_bps_1, ETH_MARKET.liquidation_penalty_bps,
                                    DEVNET_RISK.liquidation_buffer_bps, DEVNET_RISK.full_close_threshold_bps)
    assert 0 < expected < base(6)
    venue.ch.liquidate(t.address, ETH, base(6), sender=lq.account)
    assert venue.position(t).size == base(6) - expected
    after = venue.ch.health(t.address)
    assert after.equity >= after.maintenanceMargin * (10_000 + DEVNET_RISK.liquidation_buffer_bps) // 10_000


def test_liquidator_takes_the_slice_at_the_penalised_price_and_insurance_gets_its_share(venue, maker):
    t = open_long(venue, maker)
    lq = liquidator(venue)
    price = usdc(2_868)  # equity below half of maintenance (full close allowed) yet above the penalty
    venue.push_prices(eth=price)
    h = venue.ch.health(t.address)
    assert h.equity * 10_000 < h.maintenanceMargin * DEVNET_RISK.full_close_threshold_bps
    lq_quote = venue.balances(lq).quote
    receipt = venue.ch.liquidate(t.address, ETH, base(6), sender=lq.account)
    exec_notional = base(6) * price * 9_900 // (10**8 * 10_000)  # oracle price moved 1 % against the long
    penalty = base(6) * price // 10**8 - exec_notional
    cut = penalty * DEVNET_RISK.insurance_share_bps // 10_000
    event = [e for e in receipt.events if e.event_name == "Liquidated"][0]
    assert (event.size, event.penalty, event.insuranceCut) == (-base(6), penalty, cut)
    assert venue.position(t).size == 0
    assert venue.position(lq).size == base(6)
    assert venue.position(lq).openNotional == exec_notional
    assert venue.balances(lq).quote == lq_quote - cut
    assert venue.ch.insuranceFund() == cut
    # The liquidator's share is its mark-to-market gain at the oracle price.
    assert venue.position(lq).unrealizedPnl == penalty
    assert venue.balances(t).quote > 0
    assert not [e for e in receipt.events if e.event_name in ("InsuranceUsed", "BadDebt")]


def test_insurance_fund_covers_negative_equity_and_reports_the_rest_as_bad_debt(venue, maker):
    t = open_long(venue, maker)
    lq = liquidator(venue)
    venue.usdc.mint(venue.owner, usdc(100), sender=venue.owner)
    venue.usdc.approve(venue.ch, usdc(100), sender=venue.owner)
    venue.ch.depositInsurance(usdc(100), sender=venue.owner)
    venue.push_prices(eth=usdc(2_800))
    assert venue.ch.health(t.address).equity < 0
    receipt = venue.ch.liquidate(t.address, ETH, base(6), sender=lq.account)
    used = [e.amount for e in receipt.events if e.event_name == "InsuranceUsed"]
    bad = [e.amount for e in receipt.events if e.event_name == "BadDebt"]
    cut = [e.insuranceCut for e in receipt.events if e.event_name == "Liquidated"][0]
    assert used == [usdc(100) + cut]
    assert venue.ch.insuranceFund() == 0
    assert len(bad) == 1 and bad[0] > 0
    assert venue.balances(t).quote == -bad[0]
    assert venue.position(t).size == 0


def test_liquidation_with_a_stale_oracle_reverts(venue, maker):
    t = open_long(venue, maker)
    lq = liquidator(venue)
    venue.push_prices(eth=usdc(2_800))
    venue.warp(61)
    with ape.reverts(venue.ch.StalePrice):
        venue.ch.liquidate(t.address, ETH, base(6), sender=lq.account)


def test_liquidation_size_must_be_whole_lots_and_not_self(venue, maker):
    t = open_long(venue, maker)
    venue.push_prices(eth=usdc(2_800))
    lq = liquidator(venue)
    with ape.reverts(venue.ch.InvalidLiquidationSize, size=1, lotSize=ETH_MARKET.lot_size):
        venue.ch.liquidate(t.address, ETH, 1, sender=lq.account)
    with ape.reverts(venue.ch.SelfLiquidation, account=t.address):
        venue.ch.liquidate(t.address, ETH, base(6), sender=t.account)


def test_liquidator_without_margin_cannot_take_the_position(venue, maker):
    t = open_long(venue, maker)
    poor = venue.traders[3]
    venue.fund(poor, usdc(10))
    venue.push_prices(eth=usdc(2_850))
    with ape.reverts(venue.ch.InsufficientMargin):
        venue.ch.liquidate(t.address, ETH, base(6), sender=poor.account)
    assert venue.position(t).size == base(6)
