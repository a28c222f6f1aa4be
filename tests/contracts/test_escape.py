"""The escape hatch: a user the operator ignores requests an exit; with no batch settled for the
escape delay anyone freezes the venue; every account then leaves with its equity at the frozen
marks, and the tokens the ClearingHouse held are accounted for to the unit."""

import ape
import pytest

from venue.domain import DEVNET_RISK, base, usdc

from .conftest import BTC, BTC_PRICE, ETH, ETH_PRICE

MAX_MARKETS = 32


@pytest.fixture
def book(venue):
    """Positions in both markets (one account with WETH collateral), fees in the pool, an
    insurance fund."""
    t = venue.traders
    venue.fund(t[0], usdc(100_000))
    venue.fund(t[1], usdc(5_000))
    venue.fund(t[2], usdc(3_000), weth_wei=2 * 10**18)
    venue.fund(t[3], usdc(50_000))
    venue.fund(t[4], usdc(700))  # deposits only
    for maker, taker, market, size, price in ((0, 1, ETH, base(6), ETH_PRICE), (0, 2, ETH, base(2), ETH_PRICE),
                                              (3, 2, BTC, base("0.1"), BTC_PRICE), (1, 3, BTC, base("0.05"), BTC_PRICE)):
        receipt = venue.settle(venue.fill(venue.order(t[maker], False, price, size, market=market),
                                          venue.order(t[taker], True, price, size, market=market)))
        assert venue.rejections(receipt) == []
    venue.usdc.mint(venue.owner, usdc(500), sender=venue.owner)
    venue.usdc.approve(venue.ch, usdc(500), sender=venue.owner)
    venue.ch.depositInsurance(usdc(500), sender=venue.owner)
    return t


def test_a_freeze_needs_a_pending_request_and_the_delay_without_settlement(venue, book):
    t = book
    with ape.reverts(venue.ch.NoExitRequest, requester=t[1].address):
        venue.ch.freeze(t[1].address, sender=t[4].account)
    receipt = venue.ch.requestExit(sender=t[1].account)
    requested = venue.ch.exitRequestedAt(t[1].address)
    assert [e.account for e in receipt.events if e.event_name == "ExitRequested"] == [t[1].address]
    with ape.reverts(venue.ch.EscapeNotDue, requester=t[1].address, dueAt=requested + DEVNET_RISK.escape_delay):
        venue.ch.freeze(t[1].address, sender=t[4].account)
    # The operator settles a batch: the clock starts again from there.
    venue.warp(DEVNET_RISK.escape_delay - 10)
    venue.push_prices()
    venue.settle(venue.fill(venue.order(t[0], False, ETH_PRICE, base(1)), venue.order(t[3], True, ETH_PRICE, base(1))))
    settled = venue.ch.lastSettledAt()
    assert settled > requested
    venue.warp(20)
    with ape.reverts(venue.ch.EscapeNotDue, requester=t[1].address, dueAt=settled + DEVNET_RISK.escape_delay):
        venue.ch.freeze(t[1].address, sender=t[4].account)
    venue.warp(DEVNET_RISK.escape_delay)
    receipt = venue.ch.freeze(t[1].address, sender=t[4].account)  # anyone may
    assert [e.requester for e in receipt.events if e.event_name == "Frozen"] == [t[1].address]
    assert venue.ch.frozenAt() > 0 and venue.ch.paused()


def freeze_now(venue, t):
    venue.ch.requestExit(sender=t[1].account)
    venue.warp(DEVNET_RISK.escape_delay + 1)
    venue.ch.freeze(t[1].address, sender=t[4].account)


def test_frozen_nothing_moves_but_exits(venue, book):
    t = book
    freeze_now(venue, t)
    with ape.reverts(venue.ch.VenuePaused):
        venue.settle(venue.fill(venue.order(t[0], False, ETH_PRICE, base(1)), venue.order(t[3], True, ETH_PRICE, base(1))))
    with ape.reverts(venue.ch.VenueFrozen):
        venue.ch.withdraw(venue.usdc, usdc(1), sender=t[4].account)
    with ape.reverts(venue.ch.VenueFrozen):
        venue.ch.unpause(sender=venue.guardian)
    with ape.reverts(venue.ch.VenueFrozen):
        venue.ch.liquidate(t[1].address, ETH, base(1), sender=t[0].account)
    with ape.reverts(venue.ch.VenueFrozen):
        venue.ch.updateFunding(ETH, 10**15, sender=venue.keeper)
    with ape.reverts(venue.ch.VenueFrozen):
        venue.ch.requestExit(sender=t[2].account)
    with ape.reverts(venue.ch.VenuePaused):
        venue.ch.deposit(venue.usdc, usdc(1), sender=t[4].account)
    venue.ch.exitFrozen(sender=t[4].account)
    with ape.reverts(venue.ch.AlreadyExited, account=t[4].address):
        venue.ch.exitFrozen(sender=t[4].account)


def test_every_account_leaves_with_its_equity_at_the_marks_and_the_tokens_add_up_to_the_unit(venue, book):
    t = book
    venue.push_prices(eth=usdc(2_750), btc=usdc(63_000))  # the marks the freeze will take
    freeze_now(venue, t)
    marks = {ETH: venue.ch.frozenPrice(ETH), BTC: venue.ch.frozenPrice(BTC)}
    assert marks == {ETH: usdc(2_750), BTC: usdc(63_000)} and venue.ch.frozenPrice(MAX_MARKETS) == usdc(2_750)
    venue.push_prices(eth=usdc(1_000), btc=usdc(10_000))  # later prices change nothing
    quote_held = venue.usdc.balanceOf(venue.ch)
    weth_held = venue.weth.balanceOf(venue.ch)
    paid, weth_paid = 0, 0
    for tr in t:
        quote, weth_wei, _ = venue.balances(tr)
        expected = quote
        for m in (ETH, BTC):
            size, open_notional, _, _, owed = venue.position(tr, m)
            expected += size * marks[m] // 10**8 - open_notional - owed  # floor, as positionValue
        before = (venue.usdc.balanceOf(tr.account), venue.weth.balanceOf(tr.account))
        receipt = venue.ch.exitFrozen(sender=tr.account)
        got = (venue.usdc.balanceOf(tr.account) - before[0], venue.weth.balanceOf(tr.account) - before[1])
        assert got == (max(expected, 0), weth_wei), tr.address  # nobody gets more than its equity at the marks
        ev = [e for e in receipt.events if e.event_name == "ExitedFrozen"][0]
        assert (ev.quote, ev.wethWei) == got
        paid, weth_paid = paid + got[0], weth_paid + got[1]
        assert all(venue.position(tr, m).size == 0 for m in (ETH, BTC))
    assert all(venue.ch.market(m).openInterest == 0 for m in (ETH, BTC))
    reserves = venue.ch.insuranceFund() + venue.ch.feePool() + venue.ch.fundingPool()
    assert paid + reserves == quote_held  # to the unit
    assert weth_paid + venue.ch.seizedWethGwei() * 10**9 == weth_held
    venue.ch.sweepFees(venue.owner, venue.ch.feePool(), sender=venue.owner)
    venue.ch.withdrawFrozenReserves(venue.owner, sender=venue.owner)
    assert venue.usdc.balanceOf(venue.ch) == 0 and venue.weth.balanceOf(venue.ch) == 0
