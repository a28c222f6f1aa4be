"""venue/risk.py computes exactly what the contracts compute. A fixed-seed random walk of
trades (both markets, flips included), oracle moves, funding updates and WETH haircuts is
played on the real contracts and, in parallel, through the Python mirror; after every step the
mirror's positions, balances, fees, funding and account health equal the chain's, bit for bit."""

import random

from venue import risk
from venue.domain import DEVNET_MARKETS, usdc

from .conftest import BTC, BTC_PRICE, ETH, ETH_PRICE

MARKETS = {i: risk.MarketRisk(m.tier_cap_1, m.im_bps_1, m.im_bps_2) for i, m in enumerate(DEVNET_MARKETS)}


class Mirror:
    """The Python side of the walk: balances and positions advanced with venue/risk.py only."""

    def __init__(self, addresses):
        self.quote = {a: 0 for a in addresses}
        self.weth_gwei = {a: 0 for a in addresses}
        self.pos = {(a, m): [0, 0, 0] for a in addresses for m in MARKETS}  # size, basis, snapshot
        self.index = {m: 0 for m in MARKETS}
        self.fees = 0

    def settle_funding(self, a, m):
        p = self.pos[(a, m)]
        self.quote[a] -= risk.funding_owed(p[0], self.index[m], p[2])
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

    def health(self, a, prices, haircut):
        positions = {m: tuple(self.pos[(a, m)]) for m in MARKETS}
        markets = {m: risk.MarketRisk(r.tier_cap_1, r.im_bps_1, r.im_bps_2, self.index[m]) for m, r in MARKETS.items()}
        return risk.account_health(self.quote[a], self.weth_gwei[a], positions, prices, markets, prices[ETH], haircut)


def test_python_mirror_matches_the_contracts_bit_for_bit(venue):
    rng = random.Random(2024)
    traders = venue.traders[:4]
    addresses = [t.address for t in traders]
    mirror = Mirror(addresses)
    prices = {ETH: ETH_PRICE, BTC: BTC_PRICE}
    for t in traders:
        amount, weth = usdc(rng.randrange(50_000, 200_000)), rng.randrange(0, 5) * 10**18
        venue.fund(t, amount, weth)
        mirror.quote[t.address] += amount
        mirror.weth_gwei[t.address] += weth // 10**9
    checks = 0
    for step in range(40):
        r = rng.random()
        if r < 0.6:  # a trade at a price inside the band, sized to flip positions sometimes
            m = rng.choice([ETH, BTC])
            params = DEVNET_MARKETS[m]
            mk, tk = rng.sample(range(4), 2)
            taker_buys = rng.random() < 0.5
            size = rng.randrange(1, 400) * params.lot_size * (10 if m == ETH else 5)
            price = (prices[m] // params.tick_size + rng.randrange(-300, 300)) * params.tick_size
            receipt = venue.settle(venue.fill(venue.order(traders[mk], not taker_buys, price, size, market=m),
                                              venue.order(traders[tk], taker_buys, price, size, market=m)))
            if not venue.rejections(receipt):
                mirror.fill(addresses[mk], addresses[tk], m, taker_buys, size, price)
        elif r < 0.8:  # oracle move, with an odd (not tick-aligned) price
            m = rng.choice([ETH, BTC])
            prices[m] = prices[m] * rng.randrange(9_600, 10_400) // 10_000 + rng.randrange(0, 999)
            venue.push_prices(prices[ETH], prices[BTC])
        elif r < 0.93:  # funding over a random interval with a random (sometimes clamped) rate
            m = rng.choice([ETH, BTC])
            venue.warp(rng.randrange(60, 7_200))
            venue.push_prices(prices[ETH], prices[BTC])
            receipt = venue.ch.updateFunding(m, rng.randrange(-6 * 10**16, 6 * 10**16), sender=venue.keeper)
            mirror.index[m] = receipt.events[0].fundingIndex
            assert mirror.index[m] == venue.ch.market(m).fundingIndex
        else:  # the risk admin moves the WETH haircut
            venue.ch.setHaircut(rng.randrange(500, 5_001), sender=venue.owner)
        haircut = venue.ch.haircutBps()
        for a in addresses:
            b = venue.ch.balances(a)
            assert b.quote == mirror.quote[a]
            for m in MARKETS:
                p = venue.ch.position(a, m)
                size, basis, snapshot = mirror.pos[(a, m)]
                assert (p.size, p.openNotional) == (size, basis)
                assert p.fundingOwed == risk.funding_owed(size, mirror.index[m], snapshot)
                assert p.unrealizedPnl == risk.position_value(size, prices[m]) - basis
            h = venue.ch.health(a)
            expected = mirror.health(a, prices, haircut)
            assert (h.equity, h.initialMargin, h.maintenanceMargin) == (
                expected.equity, expected.initial_margin, expected.maintenance_margin)
            checks += 1
        assert venue.ch.feePool() == mirror.fees
    # The walk really moved things: positions flipped, funding accrued, fees were paid.
    assert checks == 160 and mirror.fees > 0 and any(mirror.index.values())
