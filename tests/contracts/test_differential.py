"""venue/risk.py computes exactly what the contracts compute. A fixed-seed random walk of
trades (both markets, flips included), oracle moves, funding rate updates at random times and
WETH haircuts is played on the real contracts and, in parallel, through the Python mirror; after
every step the mirror's positions, balances, fees, funding (accrued continuously) and account
health equal the chain's, bit for bit, and every fill's verdict (settled, InsufficientMargin,
MaintenanceWorsened) is the mirror's. A scripted tail drives a thin account to the closing rule's
edge so both of its outcomes are exercised."""

import random

from venue import risk
from venue.domain import DEVNET_MARKETS, RejectReason, usdc

from .conftest import BTC, BTC_PRICE, ETH, ETH_PRICE

MARKETS = {i: risk.MarketRisk(m.tier_cap_1, m.im_bps_1, m.im_bps_2) for i, m in enumerate(DEVNET_MARKETS)}
GROUPS = {i: m.exposure_group for i, m in enumerate(DEVNET_MARKETS)}


class Mirror:
    """The Python side of the walk: balances, positions and funding advanced with venue/risk.py only."""

    def __init__(self, addresses, now):
        self.quote = {a: 0 for a in addresses}
        self.weth_gwei = {a: 0 for a in addresses}
        self.pos = {(a, m): [0, 0, 0] for a in addresses for m in MARKETS}  # size, basis, snapshot
        self.index = {m: 0 for m in MARKETS}
        self.funding_time = {m: now for m in MARKETS}
        self.rate = {m: 0 for m in MARKETS}
        self.fees = 0
        self.funding_pool = 0

    def accrued(self, m, price, now):
        return risk.accrue_funding(self.index[m], self.funding_time[m], self.rate[m], price, now)

    def accrue(self, m, price, now):
        self.index[m], self.funding_time[m] = self.accrued(m, price, now)

    def settle_funding(self, a, m):
        p = self.pos[(a, m)]
        owed = risk.funding_owed(p[0], self.index[m], p[2])
        self.quote[a] -= owed
        self.funding_pool += owed
        p[2] = self.index[m]

    def trade(self, a, m, delta, price):
        self.settle_funding(a, m)
        p = self.pos[(a, m)]
        p[0], p[1], realized = risk.apply_trade(p[0], p[1], delta, delta * price // 10**8)
        self.quote[a] += realized

    def fill(self, maker, taker, m, taker_buys, size, price):
        delta = size if taker_buys else -size
        self.trade(maker, m, -delta, price)
        self.trade(taker, m, delta, price)
        notional = size * price // 10**8
        params = DEVNET_MARKETS[m]
        tf, mf = risk.taker_fee(notional, params.taker_fee_bps), risk.maker_fee(notional, params.maker_fee_bps)
        self.quote[taker] -= tf
        self.quote[maker] -= mf
        self.fees += tf + mf

    def health(self, a, prices, haircut, now):
        positions = {m: tuple(self.pos[(a, m)]) for m in MARKETS}
        markets = {m: risk.MarketRisk(r.tier_cap_1, r.im_bps_1, r.im_bps_2, self.accrued(m, prices[m], now)[0])
                   for m, r in MARKETS.items()}
        return risk.account_health(self.quote[a], self.weth_gwei[a], positions, prices, markets, prices[ETH], haircut)

    def verdict(self, maker, taker, m, taker_buys, size, price, prices, haircut, now):
        """What the contract must do with this fill: RejectReason.NONE, or the margin reason with its
        culprit, maker first (initial margin, then the exposure group's cap, where risk grew; the
        closing rule where it did not)."""
        accrued_before = self.index[m], self.funding_time[m]
        self.accrue(m, prices[m], now)
        before = {a: (self.quote[a], list(self.pos[(a, m)])) for a in (maker, taker)}
        health_before = {a: self.health(a, prices, haircut, now) for a in (maker, taker)}
        fees, pool = self.fees, self.funding_pool
        self.fill(maker, taker, m, taker_buys, size, price)
        outcome = (RejectReason.NONE, None)
        for a in (maker, taker):
            old, new = before[a][1][0], self.pos[(a, m)][0]
            after = self.health(a, prices, haircut, now)
            grew = new != 0 and (old == 0 or (old > 0) != (new > 0) or abs(new) > abs(old))
            if grew and after.equity < after.initial_margin:
                outcome = (RejectReason.INSUFFICIENT_MARGIN, a)
                break
            group, cap = DEVNET_MARKETS[m].exposure_group, DEVNET_MARKETS[m].exposure_cap
            sizes = {mm: self.pos[(a, mm)][0] for mm in MARKETS}
            notional = risk.group_exposure(sizes, prices, GROUPS, group)
            if group and not risk.exposure_cap_holds(old, new, notional, cap):
                outcome = (RejectReason.EXPOSURE_CAP, a)
                break
            if not grew and not risk.closing_rule_holds(health_before[a], after):
                outcome = (RejectReason.MAINTENANCE_WORSENED, a)
                break
        if outcome[0] != RejectReason.NONE:  # undo: nothing of a rejected fill stays
            for a, (quote, pos) in before.items():
                self.quote[a], self.pos[(a, m)] = quote, pos
            self.fees, self.funding_pool = fees, pool
            # Nor its funding accrual: the contract stores the accrued index only with a fill
            # that settled, so the next accrual runs from the older time (and is capped at
            # MAX_FUNDING_STEP from there: it used to differ from the chain by the second over).
            self.index[m], self.funding_time[m] = accrued_before
        return outcome


class Walk:
    def __init__(self, venue, traders):
        self.venue, self.traders = venue, traders
        self.addresses = [t.address for t in traders]
        self.mirror = Mirror(self.addresses, venue.now())
        for m in MARKETS:
            self.mirror.funding_time[m] = venue.ch.market(m).lastFundingTime
        self.prices = {ETH: ETH_PRICE, BTC: BTC_PRICE}
        self.verdicts = []
        self.checks = 0

    def fund(self, i, amount, weth=0):
        self.venue.fund(self.traders[i], amount, weth)
        self.mirror.quote[self.addresses[i]] += amount
        self.mirror.weth_gwei[self.addresses[i]] += weth // 10**9

    def trade(self, mk, tk, m, taker_buys, size, price):
        venue = self.venue
        receipt = venue.settle(venue.fill(venue.order(self.traders[mk], not taker_buys, price, size, market=m),
                                          venue.order(self.traders[tk], taker_buys, price, size, market=m)))
        now = venue.chain.blocks[receipt.block_number].timestamp
        expected = self.mirror.verdict(self.addresses[mk], self.addresses[tk], m, taker_buys, size, price,
                                       self.prices, venue.ch.haircutBps(), now)
        got = [(r, a) for _, r, a in venue.rejections(receipt)]
        assert got == ([] if expected[0] == RejectReason.NONE else [expected])
        self.verdicts.append(expected[0])

    def push(self):
        self.venue.push_prices(self.prices[ETH], self.prices[BTC])

    def update_funding(self, m, rate):
        receipt = self.venue.ch.updateFunding(m, rate, sender=self.venue.keeper)
        event = receipt.events[0]
        self.mirror.accrue(m, self.prices[m], event.timestamp)
        self.mirror.rate[m] = event.ratePerHour
        self.mirror.funding_time[m] = event.timestamp
        assert event.fundingIndex == self.mirror.index[m] == self.venue.ch.market(m).fundingIndex

    def check(self):
        """Every view at one block (its number named in each call: the calls and `now` see the same
        block, whatever ape has cached as the head)."""
        venue, mirror = self.venue, self.mirror
        head = venue.chain.provider.web3.eth.get_block("latest")
        at, now = {"block_id": head.number}, head.timestamp
        haircut = venue.ch.haircutBps(**at)
        for m in MARKETS:
            assert venue.ch.currentFundingIndex(m, **at) == mirror.accrued(m, self.prices[m], now)[0]
        for a in self.addresses:
            assert venue.ch.balances(a, **at).quote == mirror.quote[a]
            for m in MARKETS:
                p = venue.ch.position(a, m, **at)
                size, basis, snapshot = mirror.pos[(a, m)]
                assert (p.size, p.openNotional) == (size, basis)
                assert p.fundingOwed == risk.funding_owed(size, mirror.accrued(m, self.prices[m], now)[0], snapshot)
                assert p.unrealizedPnl == risk.position_value(size, self.prices[m]) - basis
            h = venue.ch.health(a, **at)
            expected = mirror.health(a, self.prices, haircut, now)
            assert (h.equity, h.initialMargin, h.maintenanceMargin) == (
                expected.equity, expected.initial_margin, expected.maintenance_margin)
            self.checks += 1
        assert venue.ch.feePool() == mirror.fees
        assert venue.ch.fundingPool() == mirror.funding_pool


def test_python_mirror_matches_the_contracts_bit_for_bit(venue):
    rng = random.Random(2024)
    walk = Walk(venue, venue.traders[:6])
    for i in range(4):
        walk.fund(i, usdc(rng.randrange(50_000, 200_000)), rng.randrange(0, 5) * 10**18)
    for step in range(40):
        r = rng.random()
        if r < 0.6:  # a trade at a price inside the band, sized to flip positions sometimes
            m = rng.choice([ETH, BTC])
            params = DEVNET_MARKETS[m]
            mk, tk = rng.sample(range(4), 2)
            size = rng.randrange(1, 400) * params.lot_size * (10 if m == ETH else 5)
            price = (walk.prices[m] // params.tick_size + rng.randrange(-300, 300)) * params.tick_size
            walk.trade(mk, tk, m, rng.random() < 0.5, size, price)
        elif r < 0.8:  # oracle move, with an odd (not tick-aligned) price
            m = rng.choice([ETH, BTC])
            walk.prices[m] = walk.prices[m] * rng.randrange(9_600, 10_400) // 10_000 + rng.randrange(0, 999)
            walk.push()
        elif r < 0.93:  # a new funding rate at a random time (sometimes clamped); funding accrues between
            venue.warp(rng.randrange(60, 7_200))
            walk.push()
            walk.update_funding(rng.choice([ETH, BTC]), rng.randrange(-6 * 10**16, 6 * 10**16))
        else:  # the risk admin moves the WETH haircut
            venue.ch.setHaircut(rng.randrange(500, 5_001), sender=venue.owner)
        walk.check()
    # The walk really moved things: positions flipped, funding accrued, fees were paid.
    assert walk.checks == 240 and walk.mirror.fees > 0 and any(walk.mirror.index.values())

    # Scripted: a thin account (4) against a rich one (5), funding running, the oracle falling.
    walk.fund(4, usdc(700))
    walk.fund(5, usdc(100_000))
    tick = DEVNET_MARKETS[ETH].tick_size
    walk.prices[ETH] = ETH_PRICE
    walk.push()
    walk.trade(5, 4, ETH, True, 2 * 10**8, ETH_PRICE)  # thin goes long 2 ETH at 3,000 (IM 300)
    walk.trade(5, 4, ETH, True, 4 * 10**8, ETH_PRICE)  # 4 more: refused, initial margin (900 on 18,000)
    walk.check()
    venue.warp(600)
    walk.prices[ETH] = 2_750 * 10**6  # equity ~200 on 5,500 of notional: above MM (137.5), below the band's 5 %
    walk.push()
    walk.check()
    edge = walk.prices[ETH] * 9_500 // 10_000 // tick * tick
    walk.trade(5, 4, ETH, False, 2 * 10**8, edge)  # a full close at the band edge: equity < 0, refused
    walk.trade(5, 4, ETH, False, 1 * 10**8, edge)  # half of it: below MM and worse than before, refused
    walk.trade(5, 4, ETH, False, 1 * 10**8, walk.prices[ETH])  # at the oracle: allowed
    walk.check()
    assert walk.verdicts[-5:] == [RejectReason.NONE, RejectReason.INSUFFICIENT_MARGIN, RejectReason.MAINTENANCE_WORSENED,
                                  RejectReason.MAINTENANCE_WORSENED, RejectReason.NONE]
    assert RejectReason.INSUFFICIENT_MARGIN in walk.verdicts and RejectReason.NONE in walk.verdicts
