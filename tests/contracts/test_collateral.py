"""Deposits, withdrawals, WETH haircuts and roles around collateral."""

import ape

from venue.domain import base, usdc

from .conftest import ETH_PRICE


def test_deposit_credits_quote_and_weth(venue):
    t = venue.traders[0]
    venue.fund(t, usdc(1_000), 2 * 10**18)
    b = venue.balances(t)
    assert (b.quote, b.wethWei, b.marketMask) == (usdc(1_000), 2 * 10**18, 0)
    assert venue.usdc.balanceOf(venue.ch) == usdc(1_000)
    assert venue.weth.balanceOf(venue.ch) == 2 * 10**18


def test_deposit_rejects_zero_unsupported_token_and_sub_gwei_weth(venue):
    t = venue.traders[0].account
    with ape.reverts(venue.ch.ZeroAmount):
        venue.ch.deposit(venue.usdc, 0, sender=t)
    with ape.reverts(venue.ch.UnsupportedToken, token=venue.oracle.address):
        venue.ch.deposit(venue.oracle, 1, sender=t)
    with ape.reverts(venue.ch.NotGweiMultiple, amount=10**18 + 1):
        venue.ch.deposit(venue.weth, 10**18 + 1, sender=t)


def test_weth_counts_at_its_oracle_price_times_the_haircut_weight(venue):
    t = venue.traders[0]
    venue.fund(t, 0, 2 * 10**18)
    # 2 ETH * 3,000 * (1 - 10 %) = 5,400 USDC
    assert venue.ch.health(t.address).equity == usdc(5_400)
    venue.ch.setHaircut(2_000, sender=venue.owner)
    assert venue.ch.health(t.address).equity == usdc(4_800)


def test_weth_alone_backs_a_position(venue, maker):
    t = venue.traders[1]
    venue.fund(t, 0, 2 * 10**18)
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(10)), venue.order(t, True, ETH_PRICE, base(10))))
    assert venue.rejections(receipt) == []
    assert venue.position(t).size == base(10)
    assert venue.balances(t).quote == -usdc(15)  # the taker fee is owed against the WETH


def test_haircut_is_set_by_the_risk_admin_within_bounds(venue):
    with ape.reverts(venue.ch.HaircutOutOfBounds, haircutBps=6_000, minBps=500, maxBps=5_000):
        venue.ch.setHaircut(6_000, sender=venue.owner)
    with ape.reverts(venue.ch.Unauthorized, caller=venue.traders[0].address, role=3):
        venue.ch.setHaircut(2_000, sender=venue.traders[0].account)


def test_risk_keeper_may_only_raise_the_haircut(venue):
    venue.ch.raiseHaircut(1_500, sender=venue.keeper)
    assert venue.ch.haircutBps() == 1_500
    with ape.reverts(venue.ch.HaircutCanOnlyRise, currentBps=1_500, requestedBps=1_200):
        venue.ch.raiseHaircut(1_200, sender=venue.keeper)
    with ape.reverts(venue.ch.HaircutOutOfBounds):
        venue.ch.raiseHaircut(9_000, sender=venue.keeper)
    with ape.reverts(venue.ch.Unauthorized, caller=venue.traders[0].address, role=4):
        venue.ch.raiseHaircut(2_000, sender=venue.traders[0].account)


def test_withdraw_returns_tokens(venue):
    t = venue.traders[0]
    venue.fund(t, usdc(1_000), 10**18)
    venue.ch.withdraw(venue.usdc, usdc(400), sender=t.account)
    venue.ch.withdraw(venue.weth, 10**18, sender=t.account)
    assert venue.usdc.balanceOf(t.address) == usdc(400)
    assert venue.weth.balanceOf(t.address) == 10**18
    assert venue.balances(t).quote == usdc(600)


def test_withdraw_beyond_balance_reverts(venue):
    t = venue.traders[0]
    venue.fund(t, usdc(1_000))
    with ape.reverts(venue.ch.InsufficientBalance, account=t.address, balance=usdc(1_000), amount=usdc(1_001)):
        venue.ch.withdraw(venue.usdc, usdc(1_001), sender=t.account)


def test_withdrawal_leaving_account_below_initial_margin_reverts(venue, maker):
    t = venue.traders[1]
    venue.fund(t, usdc(1_000))
    venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(6)), venue.order(t, True, ETH_PRICE, base(6))))
    # 6 ETH = 18,000 notional needs 900 initial margin; equity is 1,000 - 9 fee = 991.
    with ape.reverts(venue.ch.InsufficientMargin, account=t.address, equity=usdc(891), initialMargin=usdc(900)):
        venue.ch.withdraw(venue.usdc, usdc(100), sender=t.account)
    venue.ch.withdraw(venue.usdc, usdc(91), sender=t.account)
    assert venue.ch.health(t.address).equity == usdc(900)


def test_withdrawal_with_a_stale_price_reverts(venue, maker):
    t = venue.traders[1]
    venue.fund(t, usdc(1_000))
    venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(t, True, ETH_PRICE, base(1))))
    venue.warp(120)
    with ape.reverts(venue.ch.StalePrice):
        venue.ch.withdraw(venue.usdc, usdc(1), sender=t.account)


def test_only_the_owner_sweeps_fees(venue, maker, taker):
    venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1))))
    pool = venue.ch.feePool()
    assert pool == usdc("1.2")
    with ape.reverts(venue.ch.Unauthorized):
        venue.ch.sweepFees(taker.address, pool, sender=taker.account)
    with ape.reverts(venue.ch.InsufficientFees, feePool=pool, amount=pool + 1):
        venue.ch.sweepFees(venue.owner.address, pool + 1, sender=venue.owner)
    venue.ch.sweepFees(venue.owner.address, pool, sender=venue.owner)
    assert venue.usdc.balanceOf(venue.owner.address) == pool
    assert venue.ch.feePool() == 0


def test_only_the_owner_lists_markets_and_bad_params_are_refused(venue):
    import dataclasses

    from venue.domain import DEVNET_MARKETS

    good = DEVNET_MARKETS[0]
    with ape.reverts(venue.ch.Unauthorized, caller=venue.traders[0].address, role=0):
        venue.ch.listMarket(good.as_tuple(), sender=venue.traders[0].account)
    bad = {
        1: dataclasses.replace(good, tick_size=0),
        3: dataclasses.replace(good, lot_size=3),
        5: dataclasses.replace(good, maker_fee_bps=-6),
        6: dataclasses.replace(good, im_bps_2=400),
        7: dataclasses.replace(good, liquidation_penalty_bps=300),
    }
    for code, params in bad.items():
        with ape.reverts(venue.ch.InvalidMarketParams, code=code):
            venue.ch.listMarket(params.as_tuple(), sender=venue.owner)
    assert venue.ch.marketCount() == 2
