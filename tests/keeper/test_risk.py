"""`keeper risk`'s inputs and its rule: realized volatility from oracle updates, the haircut
the thresholds call for, never above the contract's maximum."""

import math

from keeper.risk import SECONDS_A_YEAR, realized_vol, target_haircut


def test_realized_volatility_is_annualized_and_independent_of_the_update_cadence():
    assert realized_vol([]) == realized_vol([(0, 3_000)]) == 0.0
    assert realized_vol([(0, 3_000), (60, 3_000), (120, 3_000)]) == 0.0
    # 1 % a minute for ten minutes; then a price that alternates by 1 % a minute: the same figure.
    per_minute = [(60 * k, round(3_000e6 * 1.01 ** k)) for k in range(11)]
    expected = math.sqrt(math.log(1.01) ** 2 / 60 * SECONDS_A_YEAR)
    assert abs(realized_vol(per_minute) - expected) / expected < 1e-6
    alternating = [(60 * k, 3_000 if k % 2 == 0 else 3_030) for k in range(11)]
    assert abs(realized_vol(alternating) - math.sqrt(math.log(1.01) ** 2 / 60 * SECONDS_A_YEAR)) < 1e-3


def test_the_haircut_follows_the_thresholds_and_stops_at_the_maximum():
    assert target_haircut(0.5, 0.0, 5_000) == 0
    assert target_haircut(1.0, 0.0, 5_000) == 2_000
    assert target_haircut(2.5, 0.0, 5_000) == 3_500
    assert target_haircut(2.5, 0.6, 5_000) == 4_500
    assert target_haircut(9.0, 0.9, 5_000) == 5_000
    assert target_haircut(0.0, 0.5, 5_000) == 1_000
