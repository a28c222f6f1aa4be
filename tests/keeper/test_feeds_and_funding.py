"""Feeds and the funding premium, in pure Python."""

import statistics

from keeper.feeds import DATA, CsvFeed, RandomWalkFeed, to_units
from keeper.funding import impact_price, premium_rate
from venue.domain import WAD


def test_random_walk_is_seeded_correlated_and_jumps():
    a = RandomWalkFeed({0: 3_000 * 10**6, 1: 60_000 * 10**6}, seed=4, vol_per_hour=0.05, jumps_per_hour=50)
    b = RandomWalkFeed({0: 3_000 * 10**6, 1: 60_000 * 10**6}, seed=4, vol_per_hour=0.05, jumps_per_hour=50)
    path_a = [a.price_at(t) for t in range(0, 3600, 10)]
    assert path_a == [b.price_at(t) for t in range(0, 3600, 10)]  # same seed, same path
    r0 = [path_a[i + 1][0] / path_a[i][0] - 1 for i in range(len(path_a) - 1)]
    assert max(abs(r) for r in r0) > 5 * statistics.median(abs(r) for r in r0)  # jumps stand out
    smooth = RandomWalkFeed({0: 3_000 * 10**6, 1: 60_000 * 10**6}, seed=4, jumps_per_hour=0, correlation=0.7)
    path = [smooth.price_at(t) for t in range(0, 3600, 10)]
    r0 = [path[i + 1][0] / path[i][0] - 1 for i in range(len(path) - 1)]
    r1 = [path[i + 1][1] / path[i][1] - 1 for i in range(len(path) - 1)]
    assert 0.5 < statistics.correlation(r0, r1) < 0.9  # the diffusions move together


def test_csv_replay_follows_black_thursday():
    feed = CsvFeed({0: DATA / "eth_usdt_perp_binance_1m_20200312-13.csv"}, start=1_000.0, speed=60.0)
    assert feed.price_at(1_000.0)[0] == to_units("195.28")
    assert feed.price_at(1_001.0)[0] == to_units("195.12")  # one data minute per second
    prices = [feed.price_at(1_000.0 + s)[0] for s in range(0, 1_500, 10)]
    assert min(prices) < to_units(120)  # the crash is in the data


def test_impact_prices_and_premium():
    book = {"bids": [["2999000000", "100000000"], ["2998000000", "100000000"]],
            "asks": [["3001000000", "100000000"], ["3003000000", "100000000"]]}
    assert impact_price(book["asks"], 1_000 * 10**6) == 3_001_000_000
    assert impact_price(book["asks"], 4_502 * 10**6) > 3_001_000_000  # walks into the second level
    assert impact_price(book["bids"], 10**12) is None  # too thin
    assert premium_rate(book, 3_000_000_000, 1_000 * 10**6) == 0  # mid equals the oracle
    rich = premium_rate(book, 2_970_000_000, 1_000 * 10**6)
    assert rich == (3_000_000_000 - 2_970_000_000) * WAD // 2_970_000_000 // 8 > 0  # longs pay
