"""Auto-deleveraging: a bankrupt account the insurance fund cannot cover is closed against the
most profitable, most levered positions on the other side, at its bankruptcy price, and the
contract refuses any other order."""

import ape
import pytest

from venue import risk
from venue.domain import base, usdc

from .conftest import ETH, ETH_PRICE

CRASH = usdc(2_800)


@pytest.fixture
def book(venue):
    """Trader 1 long 6 ETH at 3,000 on 1,000 USDC against trader 0 (short 6, 100,000 USDC);
    trader 2 short 2 on 2,000 USDC against trader 3; trader 4 short 3 on 50,000 USDC against
    trader 5. Then ETH falls to 2,800: trader 1 is bankrupt, every short is in profit."""
    t = venue.traders
    for i, quote in ((0, usdc(100_000)), (1, usdc(1_000)), (2, usdc(2_000)), (3, usdc(100_000)),
                     (4, usdc(50_000)), (5, usdc(100_000))):
        venue.fund(t[i], quote)
    for short, long, size in ((0, 1, base(6)), (2, 3, base(2)), (4, 5, base(3))):
        receipt = venue.settle(venue.fill(venue.order(t[short], False, ETH_PRICE, size),
                                          venue.order(t[long], True, ETH_PRICE, size)))
        assert venue.rejections(receipt) == []
    venue.push_prices(eth=CRASH)
    assert venue.ch.health(t[1].address).equity < 0 and venue.ch.insuranceFund() == 0
    return t


def equities(venue, traders) -> list[int]:
    return [venue.ch.health(tr.address).equity for tr in traders]


def test_the_score_is_pnl_times_effective_leverage_computed_alike_by_contract_and_keeper(venue, book):
    for tr in book:
        size, open_notional, *_ = venue.position(tr)
        equity = venue.ch.health(tr.address).equity
        assert venue.ch.adlScore(tr.address, ETH) == risk.adl_score(size, open_notional, CRASH, equity)
    scores = {i: venue.ch.adlScore(book[i].address, ETH) for i in (0, 2, 4)}
    assert scores[2] > scores[0] > scores[4] > 0  # the 2,000 USDC short is the most levered
    assert venue.ch.adlScore(book[3].address, ETH) == 0  # a long: not in profit


def test_a_bankrupt_account_is_not_liquidated_and_adl_closes_exactly_its_shortfall(venue, book):
    bankrupt = book[1].address
    with ape.reverts(venue.ch.ShortfallNeedsAdl):
        venue.ch.liquidate(bankrupt, ETH, base(6), sender=book[2].account)
    equity_before = venue.ch.health(bankrupt).equity
    total_before = sum(equities(venue, book))
    oi_before = venue.ch.market(ETH).openInterest
    receipt = venue.ch.deleverage(bankrupt, ETH, [book[2].address, book[0].address], [base(2), base(4)],
                                  sender=venue.keeper)
    events = [(e.counterparty, e.size, e.socialised) for e in receipt.events if e.event_name == "Deleveraged"]
    assert [(c, s) for c, s, _ in events] == [(book[2].address, base(2)), (book[0].address, base(4))]
    shares = [s for _, _, s in events]
    assert shares == [-equity_before * 2 // 6 + (-equity_before * 2 % 6 > 0),
                      -equity_before * 4 // 6 + (-equity_before * 4 % 6 > 0)]  # pro rata, rounded up
    assert not [e for e in receipt.events if e.event_name == "BadDebt"]
    assert venue.position(book[1]).size == 0
    assert 0 <= venue.ch.health(bankrupt).equity < len(events)  # the shortfall, exactly (rounded up)
    assert venue.position(book[2]).size == 0 and venue.position(book[0]).size == -base(2)
    assert venue.position(book[4]).size == -base(3)  # ranked last: untouched
    assert sum(venue.position(tr).size for tr in book) == 0
    assert sum(equities(venue, book)) == total_before  # zero-sum: the shortfall moved, nothing was made
    assert venue.ch.market(ETH).openInterest == oi_before - base(6)
    assert venue.ch.insuranceFund() == 0


@pytest.mark.parametrize("names,sizes,error", [
    ((0, 2), (base(4), base(2)), "AdlOutOfOrder"),  # the lower score first
    ((2, 0), (base(1), base(5)), "AdlOutOfOrder"),  # the first not closed whole, yet the next touched
    ((3,), (base(2),), "AdlNotEligible"),  # a long: the bankrupt's own side
    ((2, 0, 4), (base(2), base(3), base(3)), "AdlExceedsPosition"),
    ((2,), (base(3),), "InvalidAdlEntry"),  # more than it holds
    ((2,), (123,), "InvalidAdlEntry"),  # off the lot
])
def test_a_keeper_that_names_the_wrong_order_or_sizes_is_refused(venue, book, names, sizes, error):
    with ape.reverts(getattr(venue.ch, error)):
        venue.ch.deleverage(book[1].address, ETH, [book[i].address for i in names], list(sizes), sender=venue.keeper)


def test_only_the_risk_keeper_deleverages_and_only_a_shortfall_the_fund_cannot_cover(venue, book):
    with ape.reverts(venue.ch.Unauthorized):
        venue.ch.deleverage(book[1].address, ETH, [book[2].address], [base(2)], sender=book[2].account)
    with ape.reverts(venue.ch.NoShortfall):  # not bankrupt
        venue.ch.deleverage(book[3].address, ETH, [book[2].address], [base(2)], sender=venue.keeper)
    shortfall = -venue.ch.health(book[1].address).equity
    venue.usdc.mint(venue.owner, shortfall, sender=venue.owner)
    venue.usdc.approve(venue.ch, shortfall, sender=venue.owner)
    venue.ch.depositInsurance(shortfall, sender=venue.owner)
    with ape.reverts(venue.ch.NoShortfall):  # the fund covers it: liquidation's case
        venue.ch.deleverage(book[1].address, ETH, [book[2].address], [base(2)], sender=venue.keeper)
    venue.ch.liquidate(book[1].address, ETH, base(6), sender=book[3].account)
    assert venue.position(book[1]).size == 0
