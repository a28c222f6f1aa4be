"""The clearinghouse's margin math in Python integers, bit for bit.

Each function mirrors one in contracts/libraries (MarginLib, FundingLib, PositionLib) or in
ClearingHouse.sol and rounds the same way; tests/contracts/test_differential.py proves it
against the deployed contracts on random states.
"""

from __future__ import annotations

from dataclasses import dataclass

from .domain import BPS, GWEI_PER_ETH, SIZE_SCALE

FUNDING_INDEX_SCALE = 10**9
SECONDS_PER_HOUR = 3600


def floor_div(a: int, d: int) -> int:
    """Toward negative infinity (MathLib.floorDiv)."""
    return a // d


def ceil_div(a: int, d: int) -> int:
    """Toward positive infinity (MathLib.ceilDiv)."""
    return -((-a) // d)


def position_value(size: int, price: int) -> int:
    """Mark value of a signed position, rounded down."""
    return (size * price) // SIZE_SCALE


def notional_up(abs_size: int, price: int) -> int:
    return ceil_div(abs_size * price, SIZE_SCALE)


def margin_raw(notional: int, tier_cap: int, im_bps_1: int, im_bps_2: int) -> int:
    if notional <= tier_cap:
        return notional * im_bps_1
    return tier_cap * im_bps_1 + (notional - tier_cap) * im_bps_2


def initial_margin(raw: int) -> int:
    return ceil_div(raw, BPS)


def maintenance_margin(raw: int) -> int:
    return ceil_div(raw, 2 * BPS)


def weth_value(weth_gwei: int, price: int, haircut_bps: int) -> int:
    return (weth_gwei * price * (BPS - haircut_bps)) // (GWEI_PER_ETH * BPS)


def clamp_rate(rate: int, cap: int) -> int:
    return max(-cap, min(cap, rate))


def funding_index_delta(price: int, rate: int, elapsed: int) -> int:
    return floor_div(price * rate * elapsed, SECONDS_PER_HOUR * FUNDING_INDEX_SCALE)


MAX_FUNDING_STEP = 7200  # ClearingHouseBase.MAX_FUNDING_STEP


def accrue_funding(index: int, last_time: int, rate: int, price: int, now: int) -> tuple[int, int]:
    """(index, time) brought up to `now` at `rate` (ClearingHouseBase._accrue): at most
    MAX_FUNDING_STEP seconds per step; a zero rate (or no price) changes nothing, time included."""
    if rate == 0 or price == 0 or now == last_time:
        return index, last_time
    return index + funding_index_delta(price, rate, min(now - last_time, MAX_FUNDING_STEP)), now


def closing_rule_holds(before: "Health", after: "Health") -> bool:
    """Whether a fill that did not grow an account's risk may settle (ClearingHouseBase.
    _closingRuleHolds): at or above maintenance margin afterwards, or equity - maintenance margin
    not lower than before and equity not below zero."""
    if after.equity >= after.maintenance_margin:
        return True
    return after.equity >= 0 and (
        after.equity - after.maintenance_margin >= before.equity - before.maintenance_margin)


def closing_message(price: int, equity_after: int, maintenance_after: int) -> str:
    """The engines' message for an order the closing rule refuses (MAINTENANCE_WORSENED)."""
    return (f"closing at {price} would leave equity {equity_after} below maintenance margin "
            f"{maintenance_after} and worse than before (or below zero)")


def funding_owed(size: int, index: int, snapshot: int) -> int:
    """Positive: the account pays. Rounded up, against the account."""
    return ceil_div(size * (index - snapshot), SIZE_SCALE * FUNDING_INDEX_SCALE)


def taker_fee(notional: int, fee_bps: int) -> int:
    return ceil_div(notional * fee_bps, BPS)


def maker_fee(notional: int, fee_bps: int) -> int:
    """Positive fee rounded up; a rebate (negative) rounded toward zero."""
    if fee_bps >= 0:
        return ceil_div(notional * fee_bps, BPS)
    return -((notional * -fee_bps) // BPS)


def apply_trade(size: int, open_notional: int, delta: int, quote: int) -> tuple[int, int, int]:
    """(new size, new cost basis, realized PnL) after a trade of `delta` costing `quote`;
    a trade through zero closes then opens, splitting `quote` pro rata (ClearingHouse._applyTrade)."""
    if size != 0 and (size > 0) != (delta > 0) and abs(delta) > abs(size):
        close_quote = floor_div(quote * -size, delta)
        s1, o1, r1 = apply_trade(size, open_notional, -size, close_quote)
        s2, o2, r2 = apply_trade(s1, o1, delta + size, quote - close_quote)
        return s2, o2, r1 + r2
    new_size = size + delta
    if size == 0 or (size > 0) == (delta > 0):
        return new_size, open_notional + quote, 0
    new_open = floor_div(open_notional * new_size, size)
    return new_size, new_open, new_open - open_notional - quote


@dataclass(frozen=True, slots=True)
class MarketRisk:
    """What margin needs of a market: its tiers and funding index."""

    tier_cap_1: int
    im_bps_1: int
    im_bps_2: int
    funding_index: int = 0


@dataclass(frozen=True, slots=True)
class Health:
    equity: int
    initial_margin: int
    maintenance_margin: int


def account_health(
    quote: int,
    weth_gwei: int,
    positions: dict[int, tuple[int, int, int]],
    prices: dict[int, int],
    markets: dict[int, MarketRisk],
    eth_price: int,
    haircut_bps: int,
) -> Health:
    """Equity and margins of one account (ClearingHouse._health). `positions` maps a market id to
    (size, open notional, funding snapshot)."""
    equity = quote
    if weth_gwei:
        equity += weth_value(weth_gwei, eth_price, haircut_bps)
    raw = 0
    for market_id, (size, open_notional, snapshot) in positions.items():
        if size == 0:
            continue
        m, price = markets[market_id], prices[market_id]
        equity += position_value(size, price) - open_notional - funding_owed(size, m.funding_index, snapshot)
        raw += margin_raw(notional_up(abs(size), price), m.tier_cap_1, m.im_bps_1, m.im_bps_2)
    return Health(equity, initial_margin(raw), maintenance_margin(raw))


def group_exposure(sizes: dict[int, int], prices: dict[int, int], groups: dict[int, int], group: int) -> int:
    """The account's notional across exposure group `group` (ClearingHouseBase._groupExposure):
    |size| * oracle price, each rounded up, summed over the markets whose group it is. `sizes`
    and `prices` map a market id to the position's size and the price; `groups` to the group."""
    return sum(notional_up(abs(size), prices[m]) for m, size in sizes.items()
               if size and group and groups[m] == group)


def risk_grew(old_size: int, new_size: int) -> bool:
    """A position opened, grew or flipped (ClearingHouseBase._riskGrew); a pure reduction did not."""
    if new_size == 0:
        return False
    if old_size == 0 or (old_size ^ new_size) < 0:
        return True
    return new_size > old_size if old_size > 0 else new_size < old_size


def exposure_cap_holds(old_size: int, new_size: int, notional_after: int, cap: int | None) -> bool:
    """Settlement's rule for one party of a fill (ClearingHouse._marginCheck and the fill path's
    single-market check): where its risk grew, the group's notional after the fill at oracle
    prices may not exceed the cap (`None`: the market is in no group). A fill that only reduces
    is never refused by the cap, so a position above a cap lowered later (or pushed above it by
    the price) can always shrink."""
    return cap is None or not risk_grew(old_size, new_size) or notional_after <= cap


def exposure_message(params, exposure: int, cap: int) -> str:
    """The engines' message for an order the exposure cap refuses (EXPOSURE_CAP)."""
    return (f"{params.symbol} is in exposure group {params.exposure_group}: with open orders the account's "
            f"notional across the group would be {exposure}, above the cap {cap}")


MAX_ORACLE_PRICE = 2**64 - 1  # the Oracle stores prices as uint64


def liquidation_price(
    quote: int,
    weth_gwei: int,
    positions: dict[int, tuple[int, int, int]],
    prices: dict[int, int],
    markets: dict[int, MarketRisk],
    eth_price: int,
    haircut_bps: int,
    market: int,
    weth_follows_market: bool = False,
) -> int | None:
    """The oracle price of `market`, every other price held, at which the account is below
    maintenance margin: for a long the highest such price, for a short the lowest; the current
    price if it already is; None if no price the oracle can report gets there. Exact: it
    searches the integers with `account_health`, the contracts' own math. `weth_follows_market`
    when WETH collateral is valued by this market's oracle (it then moves with the price).

    Equity is linear in the price and maintenance margin is convex (its tiers only steepen), so
    equity - maintenance margin is concave: on each side of the current price the liquidatable
    prices form one interval, and a binary search finds its edge: a price at which the account
    is liquidatable next to one (toward the current price) at which it is not. The integer
    floors and ceilings can make that edge ragged by a unit or two of price.

    Worked example (ETH-PERP, 5 % initial so 2.5 % maintenance margin below the 1M tier): 1,000
    USDC of cash, long 6 ETH bought for 18,000 USDC, no other position. At price P, equity is
    1,000 + 6P - 18,000 and maintenance margin 6P x 2.5 % = 0.15P, so the account is liquidatable
    while 5.85P < 17,000, i.e. P < 2,905.982905...: the function returns 2,905,982,905 (USDC
    units), the highest price at which equity < maintenance margin."""
    size = positions.get(market, (0, 0, 0))[0]
    if size == 0:
        return None

    def liquidatable(price: int) -> bool:
        h = account_health(quote, weth_gwei, positions, {**prices, market: price}, markets,
                           price if weth_follows_market else eth_price, haircut_bps)
        return h.equity < h.maintenance_margin

    current = prices[market]
    if liquidatable(current):
        return current
    if size > 0:  # the highest liquidatable price below the current one
        if not liquidatable(1):
            return None
        lo, hi = 1, current  # liquidatable(lo), not liquidatable(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if liquidatable(mid) else (lo, mid)
        return lo
    if not liquidatable(MAX_ORACLE_PRICE):  # a short: the lowest liquidatable price above
        return None
    lo, hi = current, MAX_ORACLE_PRICE  # not liquidatable(lo), liquidatable(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if liquidatable(mid) else (mid, hi)
    return hi


def position_liquidation_prices(
    quote: int,
    weth_wei: int,
    views: dict[int, tuple],
    prices: dict[int, int],
    markets,
    eth_price: int,
    haircut_bps: int,
    weth_oracle_id: int,
) -> dict[int, int | None]:
    """`liquidation_price` of every held position from the ClearingHouse's own views: `views`
    maps a market id to `position()` (size, open notional, entry price, unrealized PnL, funding
    owed), `markets` are the MarketParams by id, `prices` the markets' oracle prices. Funding
    owed is fixed in quote; a market with no price yet has none."""
    cash = quote - sum(v[4] for v in views.values())
    held = {m: (v[0], v[1], 0) for m, v in views.items() if v[0]}
    tiers = {m: MarketRisk(p.tier_cap_1, p.im_bps_1, p.im_bps_2) for m, p in enumerate(markets)}
    return {m: liquidation_price(cash, weth_wei // GWEI_PER_ETH, held, prices, tiers, eth_price, haircut_bps, m,
                                 weth_follows_market=markets[m].oracle_id == weth_oracle_id) if prices.get(m) else None
            for m in held}


def adl_score(size: int, open_notional: int, price: int, equity: int) -> int:
    """The auto-deleveraging rank score of a position (LiquidationModule._adlScore): unrealized
    PnL x notional / equity at the oracle price, 0 when not in profit, equity below 1 as 1."""
    pnl = position_value(size, price) - open_notional
    if pnl <= 0:
        return 0
    return pnl * notional_up(abs(size), price) // (equity if equity > 1 else 1)


def adl_lights(score: int, ranked: list[int]) -> int:
    """Binance's five lights: the quantile of a profitable position's ADL score among `ranked`,
    the sorted positive scores of the positions on its side of the market (5: the top fifth,
    first to be deleveraged); 0 for a position not in profit (never deleveraged)."""
    from bisect import bisect_right

    if score <= 0:
        return 0
    at_or_below = bisect_right(ranked, score)
    n = len(ranked) + (0 if at_or_below and ranked[at_or_below - 1] == score else 1)  # itself, if absent
    at_or_below += 0 if at_or_below and ranked[at_or_below - 1] == score else 1
    return max(1, -(-5 * at_or_below // n))


def adl_queue(candidates: list[tuple[str, int, int]], held: int) -> tuple[list[str], list[int]]:
    """Counterparties and sizes for `deleverage`: `candidates` are (account, |size|, score) on the
    other side and in profit; highest score first, each closed whole but the last, until `held`
    is covered (the order the contract checks)."""
    names, sizes = [], []
    for account, size, _ in sorted(candidates, key=lambda c: -c[2]):
        if held <= 0:
            break
        take = min(size, held)
        names.append(account)
        sizes.append(take)
        held -= take
    return names, sizes


def max_liquidation(
    held: int, equity: int, maintenance: int, price: int, lot_size: int, im_bps_1: int,
    penalty_bps: int, buffer_bps: int, full_close_threshold_bps: int,
) -> int:
    """Largest size one liquidation call may close (ClearingHouse._maxLiquidation)."""
    if equity * BPS < maintenance * full_close_threshold_bps:
        return held
    buffered = BPS + buffer_bps
    numerator = 2 * BPS * (maintenance * buffered - equity * BPS)
    denominator = im_bps_1 * buffered - 2 * BPS * penalty_bps
    notional = ceil_div(numerator, denominator)
    needed = ceil_div(notional * SIZE_SCALE, price)
    needed = ceil_div(needed, lot_size) * lot_size
    return min(needed, held)


# ---------------------------------------------------------------------------------------------
# numba kernels over int64 arrays. Positions are held in lots (size = lots * lot_size, int32),
# and a position's value is floor(lots * price / d) with d = 1e8 / lot_size, which equals
# position_value(size, price) exactly. Equity = cash + sum of values, where the caller keeps
# cash = collateral value (WETH after haircut) - sum(open notional) - sum(funding owed).
# Range: |lots| * price < 2^63 per market and an account's total notional below ~9.2e14 quote
# units (922M USDC), so that notional * bps sums stay inside int64. Same rounding as MarginLib.
# ---------------------------------------------------------------------------------------------

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402


def lot_divisor(lot_size: int) -> int:
    """d = 1e8 / lot size; the kernels need lot | 1e8 and d <= 2^22 (lots of at least 24 units)."""
    if SIZE_SCALE % lot_size or SIZE_SCALE // lot_size > 2**22:
        raise ValueError(f"lot size {lot_size} must divide {SIZE_SCALE} with a quotient of at most 2^22")
    return SIZE_SCALE // lot_size


@njit(cache=True, inline="always", error_model="numpy")
def _market_terms(lots, price_q, price_r, divisor, inv_divisor, tier_cap, im_bps_1, im_bps_2):
    """Value (floor) and raw margin of `lots` at price = price_q * divisor + price_r.

    floor(lots * price / d) = lots * price_q + floor(lots * price_r / d), and with |lots| < 2^31
    and price_r < d <= 2^22 the product t = lots * price_r is below 2^53 in magnitude. The
    quotient is estimated as t * (1/d) in float64 (off by at most one there) and fixed up with
    the integer remainder, so it is exact; the notional's ceiling comes from the same remainder.
    No integer division and no branch: the loop vectorizes."""
    t = lots * price_r
    q = np.int64(np.floor(np.float64(t) * inv_divisor))
    rem = t - q * divisor
    adjust = np.int64(rem >= divisor) - np.int64(rem < 0)
    q += adjust
    rem -= adjust * divisor
    value = lots * price_q + q
    long_side = np.int64(lots >= 0)
    notional = long_side * (value + np.int64(rem != 0)) - (1 - long_side) * value
    below = min(notional, tier_cap)
    return value, below * im_bps_1 + (notional - below) * im_bps_2


def split_prices(prices, divisors):
    """(price // d, price % d) per market, the form the kernels take."""
    prices = np.asarray(prices, dtype=np.int64)
    divisors = np.asarray(divisors, dtype=np.int64)
    return prices // divisors, prices % divisors


@njit(cache=True)
def account_health_lots(lots, cash, price_q, price_r, divisors, tier_caps, im_bps_1, im_bps_2):
    """(equity, initial margin, maintenance margin) of one account across markets."""
    equity = cash
    raw = 0
    for m in range(lots.shape[0]):
        value, r = _market_terms(np.int64(lots[m]), price_q[m], price_r[m], divisors[m], 1.0 / divisors[m],
                                 tier_caps[m], im_bps_1[m], im_bps_2[m])
        equity += value
        raw += r
    return equity, -((-raw) // 10_000), -((-raw) // 20_000)


@njit(parallel=True, cache=True, error_model="numpy")
def scan_margin_excess(lots, cash, price_q, price_r, divisors, tier_caps, im_bps_1, im_bps_2, out):
    """out[i] = equity - maintenance margin of every account (negative: liquidatable).
    `lots` has shape (accounts, markets)."""
    n, markets = lots.shape
    inv = 1.0 / divisors.astype(np.float64)
    for i in prange(n):
        equity = cash[i]
        raw = 0
        for m in range(markets):  # no branch on empty cells: they contribute zero
            value, r = _market_terms(np.int64(lots[i, m]), price_q[m], price_r[m], divisors[m], inv[m],
                                     tier_caps[m], im_bps_1[m], im_bps_2[m])
            equity += value
            raw += r
        out[i] = equity - (raw + 19_999) // 20_000
    return out


# ---------------------------------------------------------------------------------------------
# The liquidator's scan: which accounts are below maintenance margin, decided exactly, fast.
#
# A float32 pass over every account computes equity - maintenance margin approximately together
# with a bound on its error; only an account whose estimate lies within the bound of zero is
# recomputed with the exact integer terms above. The decision (liquidatable or not) is therefore
# the exact one; the float pass only makes it cheap (16 float32 lanes per AVX-512 vector, and
# a row of 16 int32 lots is one cache line).
#
# Error bound, with u = 2^-24 the float32 unit roundoff: every term (lots -> float, price/d,
# their product, the tier min, the bps products, the sums in any order under fastmath) carries
# a relative error of at most ~30u of |cash| + 2 * gross notional (the factor 2 covers margin
# rates up to 100 %, enforced below). The exact integer path floors each value and ceils each
# notional and the final margin: at most 2 per market + 1. The bound used, 1e-5 relative
# (~170u) plus 2 * markets + 8 absolute, leaves a factor of five over that.
# ---------------------------------------------------------------------------------------------

import functools  # noqa: E402

_SCAN_REL_BOUND = 1e-5


@functools.cache
def _liquidatable_kernel(markets: int):
    """The scan kernel specialised for a fixed number of markets (a compile-time trip count lets
    LLVM vectorise the row)."""
    absolute = float(2 * markets + 8)

    # Not cached on disk: a kernel loaded from numba's cache for this closure gave wrong flags
    # (the liquidator saw no liquidatable account on a warm cache, tests/e2e/test_keepers.py),
    # so each process compiles it once, in `warm_up`.
    @njit(parallel=True, fastmath=True, error_model="numpy")
    def kernel(lots, cash, price_f, cap_f, im1_f, im2_f, price_q, price_r, divisors, tier_caps, im_bps_1, im_bps_2,
               flags):
        inv = 1.0 / divisors.astype(np.float64)
        borderline = 0
        for i in prange(lots.shape[0]):
            c = np.float32(cash[i])
            equity = c
            raw = np.float32(0.0)
            gross = np.float32(0.0)
            for m in range(markets):
                value = np.float32(lots[i, m]) * price_f[m]
                notional = abs(value)
                below = min(notional, cap_f[m])
                equity += value
                gross += notional
                raw += below * im1_f[m] + (notional - below) * im2_f[m]
            excess = equity - raw * np.float32(1.0 / 20_000)
            bound = (abs(c) + gross * np.float32(2.0)) * np.float32(_SCAN_REL_BOUND) + np.float32(absolute)
            if excess < -bound:
                flags[i] = 1
            elif excess > bound:
                flags[i] = 0
            else:  # too close to call in float: the exact integer terms decide
                borderline += 1
                exact = cash[i]
                raw_exact = 0
                for m in range(markets):
                    v, r = _market_terms(np.int64(lots[i, m]), price_q[m], price_r[m], divisors[m], inv[m],
                                         tier_caps[m], im_bps_1[m], im_bps_2[m])
                    exact += v
                    raw_exact += r
                flags[i] = exact - (raw_exact + 19_999) // 20_000 < 0
        return borderline

    return kernel


class ScanMarkets:
    """The per-market constants of the all-accounts scans, built once from the markets' params.
    Positions are int32 lots of shape (accounts, markets); cash as in `scan_margin_excess`."""

    def __init__(self, markets) -> None:
        self.count = len(markets)
        self.divisors = np.array([lot_divisor(p.lot_size) for p in markets], dtype=np.int64)
        self.caps = np.array([p.tier_cap_1 for p in markets], dtype=np.int64)
        self.im1 = np.array([p.im_bps_1 for p in markets], dtype=np.int64)
        self.im2 = np.array([p.im_bps_2 for p in markets], dtype=np.int64)
        if (self.im1 > BPS).any() or (self.im2 > BPS).any():
            raise ValueError("the scan's float bound assumes margin rates of at most 100 %")
        self._kernel = _liquidatable_kernel(self.count)

    def excess(self, lots, cash, prices, out=None) -> np.ndarray:
        """Exact equity - maintenance margin of every account (int64)."""
        out = np.empty(len(cash), dtype=np.int64) if out is None else out
        pq, pr = split_prices(prices, self.divisors)
        return scan_margin_excess(lots, cash, pq, pr, self.divisors, self.caps, self.im1, self.im2, out)

    def liquidatable(self, lots, cash, prices, out=None) -> tuple[np.ndarray, int]:
        """(flags, borderline): flags[i] is 1 exactly when account i is below maintenance margin;
        `borderline` counts the accounts the float pass could not decide."""
        out = np.empty(len(cash), dtype=np.int8) if out is None else out
        prices = np.asarray(prices, dtype=np.int64)
        pq, pr = split_prices(prices, self.divisors)
        price_f = (prices / self.divisors).astype(np.float32)
        borderline = self._kernel(lots, cash, price_f, self.caps.astype(np.float32), self.im1.astype(np.float32),
                                  self.im2.astype(np.float32), pq, pr, self.divisors, self.caps, self.im1, self.im2, out)
        return out, int(borderline)

    def warm_up(self) -> None:
        """Compiles both kernels now (seconds on a cold numba cache) rather than when it matters."""
        lots, cash = np.zeros((1, self.count), dtype=np.int32), np.zeros(1, dtype=np.int64)
        prices = np.full(self.count, 10**9, dtype=np.int64)
        self.excess(lots, cash, prices)
        self.liquidatable(lots, cash, prices)


def numba_threads() -> int:
    import numba

    return numba.config.NUMBA_NUM_THREADS
