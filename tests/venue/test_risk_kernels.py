"""The numba kernels equal the integer mirror (venue/risk.py), which the differential test ties
to the contracts."""

import random

import numpy as np

from venue import risk
from venue.domain import DEVNET_MARKETS


def test_kernels_match_the_integer_mirror_on_random_accounts():
    rng = random.Random(99)
    markets = list(DEVNET_MARKETS) * 8  # 16 markets
    m = len(markets)
    divisors = np.array([risk.lot_divisor(p.lot_size) for p in markets], dtype=np.int64)
    caps = np.array([p.tier_cap_1 for p in markets], dtype=np.int64)
    im1 = np.array([p.im_bps_1 for p in markets], dtype=np.int64)
    im2 = np.array([p.im_bps_2 for p in markets], dtype=np.int64)
    n = 400
    lots = np.zeros((n, m), dtype=np.int32)
    cash = np.zeros(n, dtype=np.int64)
    for trial in range(20):
        prices = np.array([rng.randrange(10**6, 10**11) + rng.randrange(0, 997) for _ in markets], dtype=np.int64)
        if trial % 2:  # extreme lots need modest prices to stay inside the documented range
            prices //= 10**6
        for i in range(n):
            for j in range(m):
                lots[i, j] = (rng.choice([rng.randrange(-2**31 + 1, 2**31), 1, -1]) if trial % 2 else
                              rng.randrange(-10**6, 10**6)) if rng.random() < 0.3 else 0
            cash[i] = rng.randrange(-10**12, 10**13)
        pq, pr = risk.split_prices(prices, divisors)
        excess = risk.scan_margin_excess(lots, cash, pq, pr, divisors, caps, im1, im2, np.empty(n, dtype=np.int64))
        for i in range(0, n, 7):
            positions = {j: (int(lots[i, j]) * markets[j].lot_size, 0, 0) for j in range(m)}
            h = risk.account_health(int(cash[i]), 0, positions, {j: int(prices[j]) for j in range(m)},
                                    {j: risk.MarketRisk(markets[j].tier_cap_1, markets[j].im_bps_1, markets[j].im_bps_2)
                                     for j in range(m)}, 0, 0)
            assert excess[i] == h.equity - h.maintenance_margin
            e, im, mm = risk.account_health_lots(lots[i], cash[i], pq, pr, divisors, caps, im1, im2)
            assert (e, im, mm) == (h.equity, h.initial_margin, h.maintenance_margin)


def test_liquidatable_scan_equals_the_exact_sign_even_at_the_boundary():
    """The float32 pass decides only what its error bound allows; accounts placed exactly at, one
    unit above and one unit below maintenance margin must go to the exact path and come out right."""
    rng = np.random.default_rng(5)
    for k in (1, 8):  # 2 and 16 markets: one compiled kernel each
        scan = risk.ScanMarkets(list(DEVNET_MARKETS) * k)
        n, m = 3_000, 2 * k
        prices = rng.integers(10**6, 10**11, size=m) + rng.integers(0, 997, size=m)
        lots = rng.integers(-10**6, 10**6, size=(n, m), dtype=np.int32)
        lots[rng.random((n, m)) > 0.4] = 0
        cash = rng.integers(-10**12, 10**13, size=n)
        # a third of the accounts sit at the boundary: cash such that the exact excess is -1, 0 or 1
        at_zero = scan.excess(lots, np.zeros(n, dtype=np.int64), prices)
        edge = np.arange(0, n, 3)
        cash[edge] = -at_zero[edge] + rng.integers(-1, 2, size=len(edge))
        exact = scan.excess(lots, cash, prices)
        assert set(exact[edge].tolist()) == {-1, 0, 1}
        flags, borderline = scan.liquidatable(lots, cash, prices)
        assert np.array_equal(flags.astype(bool), exact < 0)
        assert borderline >= len(edge)  # the boundary accounts were decided in integers
        assert borderline < len(edge) + n // 100  # and almost nothing else was


def test_scan_refuses_margin_rates_its_float_bound_does_not_cover():
    import dataclasses

    import pytest

    with pytest.raises(ValueError, match="100 %"):
        risk.ScanMarkets([dataclasses.replace(DEVNET_MARKETS[0], im_bps_2=15_000)])


def test_liquidation_price_worked_example_and_edges():
    eth = DEVNET_MARKETS[0]
    tiers = {0: risk.MarketRisk(eth.tier_cap_1, eth.im_bps_1, eth.im_bps_2)}
    long6 = {0: (6 * 10**8, 18_000 * 10**6, 0)}
    price = risk.liquidation_price(1_000 * 10**6, 0, long6, {0: 3_000 * 10**6}, tiers, 0, 0, 0)
    assert price == 2_905_982_905  # the docstring's example: 17,000 / 5.85
    h = risk.account_health(1_000 * 10**6, 0, long6, {0: price}, tiers, 0, 0)
    assert h.equity < h.maintenance_margin
    h = risk.account_health(1_000 * 10**6, 0, long6, {0: price + 1}, tiers, 0, 0)
    assert h.equity >= h.maintenance_margin
    # already below maintenance margin: the current price; no position: none
    assert risk.liquidation_price(1_000 * 10**6, 0, long6, {0: 2_800 * 10**6}, tiers, 0, 0, 0) == 2_800 * 10**6
    assert risk.liquidation_price(1_000 * 10**6, 0, {}, {0: 3_000 * 10**6}, tiers, 0, 0, 0) is None
    # a short: the lowest liquidatable price above
    short6 = {0: (-6 * 10**8, -18_000 * 10**6, 0)}
    up = risk.liquidation_price(1_000 * 10**6, 0, short6, {0: 3_000 * 10**6}, tiers, 0, 0, 0)
    assert 3_000 * 10**6 < up < 3_200 * 10**6
    h = risk.account_health(1_000 * 10**6, 0, short6, {0: up - 1}, tiers, 0, 0)
    assert h.equity >= h.maintenance_margin
