"""The oracle keeper's outlier guard, in pure Python: a lone bad print is never pushed, a real
gap is pushed once the feed has confirmed it, a held market is left out of the push (its
on-chain price ages) while the others go on."""

from keeper.oracle import OutlierGuard

P = 3_000 * 10**6


def test_a_lone_outlier_and_a_1000x_print_are_held_and_the_feed_goes_on():
    g = OutlierGuard(max_jump_bps=2_000, confirm_s=3.0)
    assert g.filter({0: P, 1: 60_000 * 10**6}, 0.0) == {0: P, 1: 60_000 * 10**6}
    assert g.filter({0: P * 7 // 10, 1: 60_000 * 10**6}, 1.0) == {1: 60_000 * 10**6}  # 30 % below: held
    assert g.filter({0: P + 10**6, 1: 60_000 * 10**6}, 2.0) == {0: P + 10**6, 1: 60_000 * 10**6}
    assert g.filter({0: P * 1_000}, 3.0) == {}  # 1000x: held
    assert g.filter({0: P * 1_000}, 5.9) == {}  # still inside the confirmation window
    assert g.filter({0: P}, 6.0) == {0: P} and g.held == 3 and not g.suspect


def test_a_real_gap_is_pushed_once_confirmed():
    held = []
    g = OutlierGuard(max_jump_bps=2_000, confirm_s=3.0)
    g.on_hold = lambda *a: held.append(a)
    g.filter({0: P}, 0.0)
    gap = P * 6 // 10  # a 40 % gap that stays
    assert g.filter({0: gap}, 10.0) == {}
    assert g.filter({0: gap - 10**6}, 12.0) == {}  # still at the new level, not yet 3 s
    assert g.filter({0: gap + 10**6}, 13.0) == {0: gap + 10**6}  # confirmed: the new reference
    assert g.filter({0: gap}, 14.0) == {0: gap}
    assert [h[:3] for h in held] == [(0, gap, P), (0, gap - 10**6, P)]


def test_a_print_that_keeps_jumping_restarts_the_window_and_moves_within_the_band_pass():
    g = OutlierGuard(max_jump_bps=1_000, confirm_s=2.0)
    g.filter({0: P}, 0.0)
    assert g.filter({0: P * 2}, 1.0) == {}
    assert g.filter({0: P * 4}, 2.5) == {}  # a different level: the window starts again
    assert g.filter({0: P * 4}, 4.0) == {}
    assert g.filter({0: P * 4}, 4.5) == {0: P * 4}
    steps = [P * 4 * (100 - i) // 100 for i in range(1, 40, 5)]  # 5 % steps down: each within 10 %
    assert [g.filter({0: s}, 5.0 + i) for i, s in enumerate(steps)] == [{0: s} for s in steps]


def test_off_passes_everything():
    g = OutlierGuard(max_jump_bps=None)
    assert g.filter({0: P}, 0.0) == {0: P} and g.filter({0: P * 1_000}, 1.0) == {0: P * 1_000}
