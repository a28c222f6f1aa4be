"""Exposure groups (per-pair caps): an account whose risk grows in a market of a group may hold
at most the group's cap of notional across the group's markets, at oracle prices. Enforced at
settlement (RejectReason.ExposureCap, on the fill path's single-market check and on the
multi-market `_health` path alike) and mirrored pre-trade by the venue's engine; the parity test
plays random fills through settlement, venue/risk.py's rule and the engine, and compares."""

import random
from dataclasses import replace

import ape
import pytest

from venue.domain import DEVNET_MARKETS, RejectReason, base, usdc
from venue.engine import Engine, Limits, OrderRejected
from venue import risk

from .conftest import BTC, BTC_PRICE, ETH, ETH_PRICE

GROUP = 1
CAP = usdc(100_000)
BOTH = 1 << ETH | 1 << BTC


def events(receipt, name):
    return [e for e in receipt.events if e.event_name == name]


@pytest.fixture
def capped(venue):
    """The devnet's group 1 (ETH-PERP and BTC-PERP) with a 100,000 USDC cap."""
    venue.ch.setExposureGroup(GROUP, CAP, BOTH, sender=venue.owner)
    return venue


def trade(venue, maker, taker, taker_buys: bool, size: int, market: int = ETH, price: int | None = None):
    price = price or (ETH_PRICE if market == ETH else BTC_PRICE)
    receipt = venue.settle(venue.fill(venue.order(maker, not taker_buys, price, size, market=market),
                                      venue.order(taker, taker_buys, price, size, market=market)))
    return venue.rejections(receipt)


def test_only_the_risk_admin_sets_groups_and_bad_groups_are_refused(venue):
    trader = venue.traders[0].account
    with ape.reverts(venue.ch.Unauthorized, caller=trader.address, role=3):
        venue.ch.setExposureGroup(GROUP, CAP, BOTH, sender=trader)
    for group, cap, mask in ((0, CAP, BOTH), (256, CAP, BOTH), (GROUP, 2**64, BOTH), (GROUP, CAP, 1 << 2),
                             (GROUP, 0, BOTH), (GROUP, CAP, 0)):
        with ape.reverts(venue.ch.InvalidExposureGroup, group=group, cap=cap, marketMask=mask):
            venue.ch.setExposureGroup(group, cap, mask, sender=venue.owner)
    receipt = venue.ch.setExposureGroup(2, CAP, 1 << ETH, sender=venue.owner)
    ev = events(receipt, "ExposureGroupSet")[0]
    assert (ev.group, ev.cap, ev.marketMask) == (2, CAP, 1 << ETH)
    # ETH moved to group 2; BTC stays in the devnet's group 1 with its cap.
    assert venue.ch.exposureGroup(2) == (CAP, 1 << ETH)
    assert venue.ch.exposureGroup(1) == (DEVNET_MARKETS[BTC].exposure_cap, 1 << BTC)
    assert (venue.ch.market(ETH).exposureGroup, venue.ch.market(ETH).exposureCap) == (2, CAP)
    venue.ch.setExposureGroup(2, 0, 0, sender=venue.owner)  # dissolved
    assert venue.ch.exposureGroup(2) == (0, 0)
    assert (venue.ch.market(ETH).exposureGroup, venue.ch.market(ETH).exposureCap) == (0, 0)


def test_a_single_market_account_is_held_to_the_cap(capped, maker, taker):
    v = capped
    other = v.traders[2]
    v.fund(other)
    assert trade(v, maker, taker, True, base(30)) == []  # 90,000 USDC of ETH
    assert v.ch.groupExposure(taker.address, GROUP) == (usdc(90_000), CAP)
    # 5 more ETH would make 105,000: refused, the taker named; nothing moves.
    assert trade(v, other, taker, True, base(5)) == [(0, RejectReason.EXPOSURE_CAP, taker.address)]
    assert v.position(taker).size == base(30) and v.position(other).size == 0
    # Up to the cap exactly is allowed (ceil(|size| * price / 1e8) <= cap).
    assert trade(v, other, taker, True, base("3.333")) == []
    assert v.ch.groupExposure(taker.address, GROUP)[0] == usdc(99_999)


def test_the_cap_sums_the_group_across_markets(capped, maker, taker):
    v = capped
    assert trade(v, maker, taker, True, base(1), market=BTC) == []  # 60,000
    assert trade(v, maker, taker, True, base(10)) == []  # + 30,000 ETH
    other = v.traders[2]
    v.fund(other)
    assert trade(v, other, taker, True, base(5)) == [(0, RejectReason.EXPOSURE_CAP, taker.address)]
    assert trade(v, other, taker, True, base(3)) == []  # 99,000
    assert v.ch.groupExposure(taker.address, GROUP)[0] == usdc(99_000)
    # Each side counts its own: the maker is short 1 BTC and 10 ETH, the other trader 3 ETH.
    assert v.ch.groupExposure(maker.address, GROUP)[0] == usdc(90_000)
    assert v.ch.groupExposure(other.address, GROUP)[0] == usdc(9_000)
    # Outside the group the cap does not apply: dissolve it and the same fill settles.
    v.ch.setExposureGroup(GROUP, 0, 0, sender=v.owner)
    assert trade(v, other, taker, True, base(5)) == []


def test_above_the_cap_a_position_may_shrink_but_not_grow_or_flip_past_it(capped, maker, taker):
    v = capped
    big, sink = v.traders[2], v.traders[3]
    for t in (big, sink):
        v.fund(t, usdc(1_000_000))
    # Counterparties that only reduce: `big` short 60 ETH, `sink` long 60 (built under a wider cap).
    v.ch.setExposureGroup(GROUP, usdc(1_000_000), BOTH, sender=v.owner)
    assert trade(v, big, sink, True, base(60)) == []
    v.ch.setExposureGroup(GROUP, CAP, BOTH, sender=v.owner)
    assert trade(v, maker, taker, True, base(30)) == []  # 90,000
    price = 3_600 * 10**6
    v.push_prices(eth=price)  # now 108,000: above the cap by the price alone
    assert trade(v, sink, taker, True, base("0.1"), price=price) == [(0, RejectReason.EXPOSURE_CAP, taker.address)]
    assert trade(v, big, taker, False, base(1), price=price) == []  # reduces: allowed above the cap
    # A flip is growth: from long 29, selling 59 leaves short 30 (108,000): refused; 55 leaves 26 (93,600).
    assert trade(v, big, taker, False, base(59), price=price) == [(0, RejectReason.EXPOSURE_CAP, taker.address)]
    assert trade(v, big, taker, False, base(55), price=price) == []
    assert v.position(taker).size == -base(26) and v.position(big).size == -base(4)


def test_group_exposure_view_is_the_python_mirror(capped, maker, taker):
    v = capped
    trade(v, maker, taker, True, base("0.7777"), market=BTC)
    trade(v, maker, taker, False, base("1.234"))
    sizes = {m: v.position(taker, m).size for m in (ETH, BTC)}
    groups = {ETH: GROUP, BTC: GROUP}
    prices = {ETH: ETH_PRICE, BTC: BTC_PRICE}
    assert v.ch.groupExposure(taker.address, GROUP)[0] == risk.group_exposure(sizes, prices, groups, GROUP)
    assert v.ch.groupExposure(taker.address, 7) == (0, 0)  # no such group


def test_settlement_the_python_rule_and_the_venue_engine_agree_on_random_fills(capped):
    """Parity, seed 7: 60 random fills between four accounts in both markets, prices moving.
    Each fill's outcome at settlement (settled, or ExposureCap naming the maker or the taker) is
    predicted by risk.exposure_cap_holds on the accounts' positions; the venue's engine, holding
    the taker's chain state, accepts the taker's order pre-trade exactly when settlement does
    (flips aside, where it may only be stricter)."""
    v = capped
    rng = random.Random(7)
    traders = v.traders[:4]
    for t in traders:
        v.fund(t, usdc(2_000_000))  # initial margin never binds: only the cap decides
    markets = tuple(replace(p, exposure_cap=CAP) for p in DEVNET_MARKETS)
    prices = {ETH: ETH_PRICE, BTC: BTC_PRICE}
    lots = {ETH: base("0.5"), BTC: base("0.05")}
    outcomes = {"settled": 0, "maker": 0, "taker": 0, "venue_stricter": 0}
    for step in range(60):
        if step % 10 == 9:
            prices = {ETH: prices[ETH] * rng.choice((90, 110)) // 100 // 10**4 * 10**4,
                      BTC: prices[BTC] * rng.choice((95, 105)) // 100 // 10**6 * 10**6}  # on the ticks
            v.push_prices(eth=prices[ETH], btc=prices[BTC])
        maker, taker = rng.sample(traders, 2)
        market = rng.choice((ETH, BTC))
        taker_buys = rng.random() < 0.5
        size = lots[market] * rng.randint(1, 24)
        delta = size if taker_buys else -size
        sizes = {t.address: {m: v.position(t, m).size for m in (ETH, BTC)} for t in traders}

        def holds(t, d):
            after = dict(sizes[t.address])
            after[market] += d
            return risk.exposure_cap_holds(sizes[t.address][market], after[market],
                                           risk.group_exposure(after, prices, {ETH: GROUP, BTC: GROUP}, GROUP), CAP)

        expected = [] if holds(maker, -delta) and holds(taker, delta) else [
            (0, RejectReason.EXPOSURE_CAP, maker.address if not holds(maker, -delta) else taker.address)]
        # The venue's pre-trade check for the taker's order, alone on an empty book (it rests).
        engine = Engine(markets, Limits())
        for m in (ETH, BTC):
            engine.set_oracle_price(0, m, prices[m])
        engine.set_account(0, taker.address, usdc(2_000_000), {
            m: (s, v.position(taker, m).openNotional) for m, s in sizes[taker.address].items()})
        try:
            engine.place(1, taker.address, market, taker_buys, prices[market], size)
            venue_ok = True
        except OrderRejected as exc:
            assert exc.code == "EXPOSURE_CAP", exc
            venue_ok = False
        got = trade(v, maker, taker, taker_buys, size, market=market, price=prices[market])
        assert got == expected, (step, got, expected)
        taker_ok = holds(taker, delta)
        old, new = sizes[taker.address][market], sizes[taker.address][market] + delta
        if old and (old > 0) != (new > 0) and new:  # a flip: the venue counts the whole worst case
            assert taker_ok or not venue_ok
            outcomes["venue_stricter"] += venue_ok != taker_ok
        else:
            assert venue_ok == taker_ok, (step, venue_ok, taker_ok)
        outcomes["settled" if not got else "maker" if got[0][2] == maker.address else "taker"] += 1
    # The run exercised both outcomes for both parties.
    assert outcomes["settled"] >= 5 and outcomes["maker"] >= 2 and outcomes["taker"] >= 2, outcomes
