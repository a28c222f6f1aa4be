"""Liquidation: who may be liquidated, how much, at what price, and who absorbs losses."""

import ape

from venue import risk
from venue.domain import DEVNET_MARKETS, DEVNET_RISK, base, usdc

from .conftest import BTC, BTC_PRICE, ETH, ETH_PRICE

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


def test_insurance_fund_covers_negative_equity_and_a_shortfall_beyond_it_is_left_to_adl(venue, maker):
    t = open_long(venue, maker)
    lq = liquidator(venue)

    def insure(amount):
        venue.usdc.mint(venue.owner, amount, sender=venue.owner)
        venue.usdc.approve(venue.ch, amount, sender=venue.owner)
        venue.ch.depositInsurance(amount, sender=venue.owner)

    insure(usdc(100))
    venue.push_prices(eth=usdc(2_800))
    shortfall = -venue.ch.health(t.address).equity
    assert shortfall > usdc(100)
    with ape.reverts(venue.ch.ShortfallNeedsAdl, account=t.address, shortfall=shortfall,
                     insuranceAvailable=usdc(100)):
        venue.ch.liquidate(t.address, ETH, base(6), sender=lq.account)
    insure(usdc(900))
    receipt = venue.ch.liquidate(t.address, ETH, base(6), sender=lq.account)
    used = [e.amount for e in receipt.events if e.event_name == "InsuranceUsed"]
    cut = [e.insuranceCut for e in receipt.events if e.event_name == "Liquidated"][0]
    penalty = [e.penalty for e in receipt.events if e.event_name == "Liquidated"][0]
    assert used == [shortfall + penalty]  # the account's loss and the whole penalty
    assert venue.ch.insuranceFund() == usdc(1_000) + cut - used[0]
    assert not [e for e in receipt.events if e.event_name == "BadDebt"]
    assert venue.balances(t).quote == 0
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


def liquidation_price(venue, t, market):
    """The venue's liquidation price (risk.position_liquidation_prices) from the account's state as
    the contract reports it; None without a position in `market`."""
    quote, weth_wei, _ = venue.ch.balances(t.address)
    views = {m: (v.size, v.openNotional, v.entryPrice, v.unrealizedPnl, v.fundingOwed)
             for m in range(len(DEVNET_MARKETS)) for v in [venue.ch.position(t.address, m)]}
    prices = {m: venue.oracle.getPrice(p.oracle_id)[0] for m, p in enumerate(DEVNET_MARKETS)}
    return risk.position_liquidation_prices(quote, weth_wei, views, prices, DEVNET_MARKETS, prices[ETH],
                                            venue.ch.haircutBps(), venue.ch.wethOracleId()).get(market)


def liquidatable_at(venue, t, eth, btc=BTC_PRICE):
    venue.push_prices(eth=eth, btc=btc)
    h = venue.ch.health(t.address)
    return h.equity < h.maintenanceMargin


def test_liquidation_price_of_a_long_is_where_the_contract_starts_to_liquidate(venue, maker):
    t = open_long(venue, maker)  # 1,000 USDC, 6 ETH long at 3,000
    price = liquidation_price(venue, t, ETH)
    assert usdc(2_800) < price < usdc(3_000)
    assert liquidatable_at(venue, t, price)
    assert not liquidatable_at(venue, t, price + 1)


def test_liquidation_price_of_a_short_backed_by_weth_is_where_the_contract_starts_to_liquidate(venue, maker):
    t = venue.traders[1]
    venue.fund(t, usdc(500), weth_wei=10**18)  # 500 USDC and 1 WETH (valued at the ETH oracle, after haircut)
    size = base(1)
    receipt = venue.settle(venue.fill(venue.order(maker, True, BTC_PRICE, size // 10, market=BTC),
                                      venue.order(t, False, BTC_PRICE, size // 10, market=BTC)))
    assert venue.rejections(receipt) == []
    price = liquidation_price(venue, t, BTC)  # short 0.1 BTC: rising BTC price liquidates
    assert BTC_PRICE < price < usdc(100_000)
    assert liquidatable_at(venue, t, ETH_PRICE, price)
    assert not liquidatable_at(venue, t, ETH_PRICE, price - 1)
    assert liquidation_price(venue, t, ETH) is None  # no ETH position: nothing to price


def test_a_fully_collateralised_long_has_no_liquidation_price(venue, maker):
    t = open_long(venue, maker, collateral=usdc(50_000), size=base(1))
    assert liquidation_price(venue, t, ETH) is None


def test_liquidation_price_of_a_long_backed_by_weth_moves_the_collateral_with_the_price(venue, maker):
    t = venue.traders[1]
    venue.fund(t, usdc(10), weth_wei=10**18)
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(3)), venue.order(t, True, ETH_PRICE, base(3))))
    assert venue.rejections(receipt) == []
    price = liquidation_price(venue, t, ETH)  # WETH is priced by the ETH oracle: both legs fall together
    assert liquidatable_at(venue, t, price)
    assert not liquidatable_at(venue, t, price + 1)
    venue.push_prices()
    quote, weth_wei, _ = venue.ch.balances(t.address)
    held = {ETH: (venue.position(t).size, venue.position(t).openNotional, 0)}
    tiers = {m: risk.MarketRisk(p.tier_cap_1, p.im_bps_1, p.im_bps_2) for m, p in enumerate(DEVNET_MARKETS)}
    collateral_held = risk.liquidation_price(quote, weth_wei // 10**9, held, {ETH: ETH_PRICE, BTC: BTC_PRICE}, tiers,
                                             ETH_PRICE, venue.ch.haircutBps(), ETH, weth_follows_market=False)
    assert collateral_held < price  # ignoring the collateral's fall would promise too much room
