"""The matching engine's compiled core: the books, the accounts' risk mirror and every command
that changes them, as numba functions over one int64 arena.

Why one arena: numba unboxes each array argument on every call (~100 ns apiece here), so the
whole state lives in a single flat `int64` array with a header of offsets and capacities, and a
command costs one unboxing. Regions (offsets in the header):

  MK  markets      tick, lot, min notional, band, fees, tiers, oracle price, halted, exposure
                   group and its cap
  PN  per side     number of price levels (side s = 2 * market + 1 for asks)
  PP  per side     level keys, ascending, best last (key = price for bids, -price for asks)
  PL  per side     level slot of each key
  L   levels       price, first order, last order, total size, order count (free list: head)
  O   orders       id, account, market, side, price, size, remaining, filled, flags, stp,
                   expiry, next, prev, level (free list: next)
  ID  order id ->  order slot (-1: not resting); indexed by id, so it grows with the highest
                   id: 8 bytes an order ever accepted (8 MB a million)
  A   accounts     collateral, pending fees, open orders, rate tokens, token time, then per
                   market: size, open notional, open buy size, open sell size
  EV  events       what each command did, in order, for the Python side (fills, order updates)

A command first checks that every region has room for the worst case it can need and, if not,
returns a GROW code before it changes anything; `venue.engine` then enlarges the arena and runs
the command again. Money follows venue/risk.py (the contracts' rounding) with `muldiv`, exact in
int64 as long as each result fits (positions below ~9e10 base units per market at prices below
~9e10 quote units, notional sums below ~9e14).

`venue/engine_ref.py` is the same engine in plain Python, kept as the reference;
tests/venue/test_engine_parity.py plays random command streams through both.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SIZE_SCALE = 10**8
BPS = 10_000

# header
H_NEXT_ORDER_ID, H_NEXT_FILL_SEQ, H_M = 0, 1, 2
H_MK, H_PN, H_PP, H_PL, H_PCAP = 3, 4, 5, 6, 7
H_L, H_LCAP, H_LFREE = 8, 9, 10
H_O, H_OCAP, H_OFREE, H_OLIVE = 11, 12, 13, 14
H_ID, H_IDCAP = 15, 16
H_A, H_ACAP, H_AF = 17, 18, 19
H_EV, H_EVCAP, H_EVN = 20, 21, 22
H_MAX_OPEN, H_RATE, H_BURST, H_SLIP, H_CHECK_MARGIN = 23, 24, 25, 26, 27
H_REPLAYING, H_NEXT_DUE, H_ERR_A, H_ERR_B = 28, 29, 30, 31
H_N_ACCOUNTS, H_EXPIRING_RESTS = 32, 33  # accounts given out; orders rested with an expiry since the last drain
HEADER = 40

# market fields
MK_TICK, MK_LOT, MK_MIN_NOTIONAL, MK_BAND, MK_MAKER_FEE, MK_TAKER_FEE = 0, 1, 2, 3, 4, 5
MK_IM1, MK_IM2, MK_TIER_CAP, MK_ORACLE, MK_HALTED, MK_GROUP, MK_GROUP_CAP = 6, 7, 8, 9, 10, 11, 12
MKF = 13

# level fields
L_PRICE, L_HEAD, L_TAIL, L_SIZE, L_COUNT = 0, 1, 2, 3, 4
LF = 5

# order fields
O_ID, O_ACCT, O_MARKET, O_BUY, O_PRICE, O_SIZE, O_REM, O_FILLED = 0, 1, 2, 3, 4, 5, 6, 7
O_FLAGS, O_STP, O_EXPIRY, O_NEXT, O_PREV, O_LEVEL = 8, 9, 10, 11, 12, 13
OF = 14

# account fields; per market k at A_POS + 4 * k: size, open notional, open buys, open sells
A_COLL, A_FEES, A_OPEN, A_TOKENS, A_TOKEN_TS, A_POS = 0, 1, 2, 3, 4, 5

# events: an order update [EV_ORDER, status, id, account, market, is_buy, price, size, remaining,
# filled, flags, expiry, stp, ts] or a fill [EV_FILL, seq, market, price, size, taker_is_buy, ts,
# maker id, maker account, maker price, maker size, maker flags, maker expiry, maker filled,
# maker remaining, taker id, taker account, taker filled, maker stp]
EV_ORDER, EV_FILL = 1, 2
EVF = 19

# order statuses in events (names in venue.engine.STATUS_NAMES)
ST_RESTING, ST_FILLED, ST_CANCELLED, ST_SELF_TRADE, ST_EXPIRED, ST_DEADMAN, ST_REJECTED, ST_MODIFIED = range(1, 9)

# command results: 0 accepted, > 0 an error (names in venue.engine.ERROR_CODES), < 0 grow a region
(OK, E_MARKET_HALTED, E_RATE_LIMITED, E_NO_ORACLE_PRICE, E_INVALID_SIZE, E_INVALID_PRICE, E_TICK_SIZE,
 E_LOT_SIZE, E_MIN_NOTIONAL, E_PRICE_BAND, E_EXPIRED, E_DUPLICATE_CLIENT_ID, E_POST_ONLY_WOULD_CROSS,
 E_REDUCE_ONLY, E_TOO_MANY_OPEN_ORDERS, E_FOK_NOT_FILLED, E_INSUFFICIENT_MARGIN, E_UNKNOWN_ORDER, E_UNKNOWN_MARKET,
 E_UNKNOWN_ACCOUNT, E_MAINTENANCE_WORSENED, E_EXPOSURE_CAP) = range(22)
GROW_ORDERS, GROW_IDS, GROW_LEVELS, GROW_PRICES, GROW_EVENTS = -1, -2, -3, -4, -5

# time in force, self-trade prevention, flags (same numbers as venue.engine / venue.domain)
GTC, IOC, FOK = 0, 1, 2
STP_EXPIRE_MAKER, STP_CANCEL_TAKER, STP_CANCEL_BOTH = 0, 1, 2
FLAG_POST_ONLY, FLAG_REDUCE_ONLY = 1, 4
# Ack reasons
R_NONE, R_SELF_TRADE, R_IOC = 0, 1, 2

# bulk commands (Engine.run): one row per command
C_OP, C_TS, C_ACCT, C_MARKET, C_BUY, C_PRICE, C_SIZE, C_TIF, C_FLAGS, C_STP, C_EXPIRY, C_IS_MARKET, C_DUP_CLIENT = range(13)
CF = 13
OP_PLACE, OP_CANCEL = 0, 1
# bulk results: code, order id, status, filled, remaining, reason, price
RF = 7


# ---------------------------------------------------------------------------------- money
@njit(cache=True)
def muldiv(a, b, c):
    """floor(a * b / c) for int64 operands, exact whenever the result fits comfortably in int64.

    The quotient is estimated in float64 (relative error ~1e-15) and corrected with the exact
    remainder, computed modulo 2^64 in uint64: the true remainder is a few multiples of c, so
    the wrapped value is the true one."""
    q = np.int64(np.floor(np.float64(a) * np.float64(b) / np.float64(c)))
    r = np.int64(np.uint64(a) * np.uint64(b) - np.uint64(q) * np.uint64(c))
    if c > 0:
        while r < 0:
            q -= 1
            r += c
        while r >= c:
            q += 1
            r -= c
    else:
        while r > 0:
            q -= 1
            r += c
        while r <= c:
            q += 1
            r -= c
    return q


@njit(cache=True)
def apply_trade(size, open_notional, delta, quote):
    """risk.apply_trade: (new size, new open notional, realized PnL); a trade through zero
    closes at its pro-rata share of `quote`, then opens with the rest."""
    if size != 0 and (size > 0) != (delta > 0) and abs(delta) > abs(size):
        close_quote = muldiv(quote, -size, delta)
        return delta + size, quote - close_quote, -open_notional - close_quote
    new_size = size + delta
    if size == 0 or (size > 0) == (delta > 0):
        return new_size, open_notional + quote, 0
    new_open = muldiv(open_notional, new_size, size)
    return new_size, new_open, new_open - open_notional - quote


@njit(cache=True)
def margin_raw(notional, tier_cap, im1, im2):
    if notional <= tier_cap:
        return notional * im1
    return tier_cap * im1 + (notional - tier_cap) * im2


# ---------------------------------------------------------------------------------- regions
@njit(cache=True)
def _side(market, is_buy):
    """Index of the book side that holds buy (or sell) orders of `market`."""
    return 2 * market + (0 if is_buy else 1)


@njit(cache=True)
def _account(m, acct):
    """Start of an account's row."""
    return m[H_A] + acct * m[H_AF]


@njit(cache=True)
def _position(m, acct, market):
    """Start of an account's four words for `market`: size, open notional, open buys, open sells."""
    return _account(m, acct) + A_POS + 4 * market


@njit(cache=True)
def _side_best(m, s):
    """(price, level slot) of the best level of side s, or (0, -1)."""
    n = m[m[H_PN] + s]
    if n == 0:
        return 0, -1
    i = s * m[H_PCAP] + n - 1
    key = m[m[H_PP] + i]
    return (key if s % 2 == 0 else -key), m[m[H_PL] + i]


@njit(cache=True)
def _lower_bound(m, s, key):
    base = m[H_PP] + s * m[H_PCAP]
    lo, hi = 0, m[m[H_PN] + s]
    while lo < hi:
        mid = (lo + hi) >> 1
        if m[base + mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _level_at(m, market, is_buy, price):
    """Level slot resting at `price` on that side, or -1."""
    s = _side(market, is_buy)
    key = price if is_buy else -price
    i = _lower_bound(m, s, key)
    if i < m[m[H_PN] + s] and m[m[H_PP] + s * m[H_PCAP] + i] == key:
        return m[m[H_PL] + s * m[H_PCAP] + i]
    return -1


@njit(cache=True)
def level_size(m, market, is_buy, price):
    lv = _level_at(m, market, is_buy, price)
    return 0 if lv < 0 else m[m[H_L] + lv * LF + L_SIZE]


@njit(cache=True)
def _event_order(m, status, o, ts):
    e = m[H_EV] + m[H_EVN] * EVF
    m[H_EVN] += 1
    b = m[H_O] + o * OF
    m[e] = EV_ORDER
    m[e + 1] = status
    for k in range(9):  # id, account, market, is_buy, price, size, remaining, filled, flags
        m[e + 2 + k] = m[b + k]
    m[e + 11] = m[b + O_EXPIRY]
    m[e + 12] = m[b + O_STP]
    m[e + 13] = ts


@njit(cache=True)
def room(m, need_events):
    """OK, or the region that lacks room for one more order and `need_events` events."""
    if m[H_OFREE] < 0:
        return GROW_ORDERS
    if m[H_NEXT_ORDER_ID] >= m[H_IDCAP]:
        return GROW_IDS
    if m[H_LFREE] < 0:
        return GROW_LEVELS
    for s in range(2 * m[H_M]):
        if m[m[H_PN] + s] >= m[H_PCAP]:
            return GROW_PRICES
    if m[H_EVCAP] - m[H_EVN] < need_events:
        return GROW_EVENTS
    return OK


@njit(cache=True)
def _remove(m, o, status, ts, filled):
    """Takes a resting order out of its level and the book; emits its final update."""
    _event_order(m, status, o, ts)
    b = m[H_O] + o * OF
    lv = m[b + O_LEVEL]
    lb = m[H_L] + lv * LF
    rem = m[b + O_REM]
    m[lb + L_SIZE] -= rem
    m[lb + L_COUNT] -= 1
    prev, nxt = m[b + O_PREV], m[b + O_NEXT]
    if prev >= 0:
        m[m[H_O] + prev * OF + O_NEXT] = nxt
    else:
        m[lb + L_HEAD] = nxt
    if nxt >= 0:
        m[m[H_O] + nxt * OF + O_PREV] = prev
    else:
        m[lb + L_TAIL] = prev
    market, is_buy = m[b + O_MARKET], m[b + O_BUY]
    if m[lb + L_COUNT] == 0:
        s = _side(market, is_buy)
        price = m[lb + L_PRICE]
        i = _lower_bound(m, s, price if is_buy else -price)
        pp, pl = m[H_PP] + s * m[H_PCAP], m[H_PL] + s * m[H_PCAP]
        n = m[m[H_PN] + s]
        for j in range(i, n - 1):
            m[pp + j] = m[pp + j + 1]
            m[pl + j] = m[pl + j + 1]
        m[m[H_PN] + s] = n - 1
        m[lb + L_HEAD] = m[H_LFREE]
        m[H_LFREE] = lv
    acct = m[b + O_ACCT]
    m[_account(m, acct) + A_OPEN] -= 1
    if not filled:
        m[_position(m, acct, market) + (2 if is_buy else 3)] -= rem
    m[m[H_ID] + m[b + O_ID]] = -1
    m[b + O_NEXT] = m[H_OFREE]
    m[H_OFREE] = o
    m[H_OLIVE] -= 1


@njit(cache=True)
def _rest(m, oid, acct, market, is_buy, price, size, rem, filled, flags, stp, expiry, ts):
    o = m[H_OFREE]
    b = m[H_O] + o * OF
    m[H_OFREE] = m[b + O_NEXT]
    s = _side(market, is_buy)
    key = price if is_buy else -price
    i = _lower_bound(m, s, key)
    pp, pl = m[H_PP] + s * m[H_PCAP], m[H_PL] + s * m[H_PCAP]
    n = m[m[H_PN] + s]
    if i < n and m[pp + i] == key:
        lv = m[pl + i]
    else:
        lv = m[H_LFREE]
        lb = m[H_L] + lv * LF
        m[H_LFREE] = m[lb + L_HEAD]
        m[lb + L_PRICE] = price
        m[lb + L_HEAD] = -1
        m[lb + L_TAIL] = -1
        m[lb + L_SIZE] = 0
        m[lb + L_COUNT] = 0
        for j in range(n, i, -1):
            m[pp + j] = m[pp + j - 1]
            m[pl + j] = m[pl + j - 1]
        m[pp + i] = key
        m[pl + i] = lv
        m[m[H_PN] + s] = n + 1
    lb = m[H_L] + lv * LF
    m[b + O_ID] = oid
    m[b + O_ACCT] = acct
    m[b + O_MARKET] = market
    m[b + O_BUY] = is_buy
    m[b + O_PRICE] = price
    m[b + O_SIZE] = size
    m[b + O_REM] = rem
    m[b + O_FILLED] = filled
    m[b + O_FLAGS] = flags
    m[b + O_STP] = stp
    m[b + O_EXPIRY] = expiry
    m[b + O_LEVEL] = lv
    m[b + O_NEXT] = -1
    tail = m[lb + L_TAIL]
    m[b + O_PREV] = tail
    if tail >= 0:
        m[m[H_O] + tail * OF + O_NEXT] = o
    else:
        m[lb + L_HEAD] = o
    m[lb + L_TAIL] = o
    m[lb + L_SIZE] += rem
    m[lb + L_COUNT] += 1
    m[m[H_ID] + oid] = o
    m[H_OLIVE] += 1
    m[_account(m, acct) + A_OPEN] += 1
    m[_position(m, acct, market) + (2 if is_buy else 3)] += rem
    if expiry != 0:
        m[H_EXPIRING_RESTS] += 1
        if expiry < m[H_NEXT_DUE]:
            m[H_NEXT_DUE] = expiry
    _event_order(m, ST_RESTING, o, ts)


@njit(cache=True)
def _apply_fill(m, market, price, qty, taker_is_buy, maker_acct, taker_acct):
    """Pending position and fee changes of a fill (Engine._apply_fill in the reference)."""
    mk = m[H_MK] + market * MKF
    notional = muldiv(qty, price, SIZE_SCALE)
    delta = qty if taker_is_buy else -qty
    quote = muldiv(delta, price, SIZE_SCALE)
    t = _position(m, taker_acct, market)
    size, basis, realized = apply_trade(m[t], m[t + 1], delta, quote)
    m[t], m[t + 1] = size, basis
    ta = _account(m, taker_acct)
    m[ta + A_COLL] += realized
    m[ta + A_FEES] += -((-notional * m[mk + MK_TAKER_FEE]) // BPS)
    p = _position(m, maker_acct, market)
    size, basis, realized = apply_trade(m[p], m[p + 1], -delta, -quote)
    m[p], m[p + 1] = size, basis
    ma = _account(m, maker_acct)
    m[ma + A_COLL] += realized
    mf = m[mk + MK_MAKER_FEE]
    m[ma + A_FEES] += -((-notional * mf) // BPS) if mf >= 0 else -((notional * -mf) // BPS)
    m[p + (3 if taker_is_buy else 2)] -= qty  # the maker's open size on its side


@njit(cache=True)
def _fillable(m, acct, market, is_buy, price):
    """Size an order could take right now, not counting the account's own orders (FOK)."""
    s = _side(market, not is_buy)
    pp, pl = m[H_PP] + s * m[H_PCAP], m[H_PL] + s * m[H_PCAP]
    total = 0
    for j in range(m[m[H_PN] + s] - 1, -1, -1):
        key = m[pp + j]
        level_price = -key if is_buy else key
        if (level_price > price) if is_buy else (level_price < price):
            break
        o = m[m[H_L] + m[pl + j] * LF + L_HEAD]
        while o >= 0:
            b = m[H_O] + o * OF
            if m[b + O_ACCT] != acct:
                total += m[b + O_REM]
            o = m[b + O_NEXT]
    return total


@njit(cache=True)
def _margin_ok(m, acct, market, is_buy, size):
    """Initial margin with the worst case of open orders (Engine._check_margin), then the
    exposure group's cap: where the order can grow the position (risk_grew from the position to
    the position with every order of its side filled), the worst cases summed over the group's
    markets at oracle prices (each rounded up) must stay within the cap. Never looser than
    settlement's rule (a position at any fill is within its worst case); equal to it for an
    order that fills whole with no other open orders and does not flip the position.
    Returns OK, E_INSUFFICIENT_MARGIN or E_EXPOSURE_CAP (H_ERR_A and H_ERR_B: the figures)."""
    a = _account(m, acct)
    equity = m[a + A_COLL] - m[a + A_FEES]
    raw = 0
    group = m[m[H_MK] + market * MKF + MK_GROUP]
    exposure = 0
    grew = False
    for k in range(m[H_M]):
        p = _position(m, acct, k)
        pos, basis = m[p], m[p + 1]
        buys = m[p + 2] + (size if k == market and is_buy else 0)
        sells = m[p + 3] + (size if k == market and not is_buy else 0)
        if pos == 0 and buys == 0 and sells == 0:
            continue
        mk = m[H_MK] + k * MKF
        mark = m[mk + MK_ORACLE]
        if pos != 0:
            equity += muldiv(pos, mark, SIZE_SCALE) - basis
        worst = max(abs(pos + buys), abs(pos - sells))
        notional = -muldiv(-worst, mark, SIZE_SCALE)
        raw += margin_raw(notional, m[mk + MK_TIER_CAP], m[mk + MK_IM1], m[mk + MK_IM2])
        if group != 0 and m[mk + MK_GROUP] == group:
            exposure += notional
        if k == market:  # risk_grew(pos, pos + buys) for a buy
            ext = pos + buys if is_buy else pos - sells
            grew = ext != 0 and (pos == 0 or (pos > 0) != (ext > 0) or abs(ext) > abs(pos))
    required = -((-raw) // BPS)
    m[H_ERR_A] = equity
    m[H_ERR_B] = required
    if equity < required:
        return E_INSUFFICIENT_MARGIN
    cap = m[m[H_MK] + market * MKF + MK_GROUP_CAP]
    if grew and group != 0 and exposure > cap:
        m[H_ERR_A] = exposure
        m[H_ERR_B] = cap
        return E_EXPOSURE_CAP
    return OK


@njit(cache=True)
def _closing_ok(m, acct, market, is_buy, price, size):
    """The contracts' closing rule for the part of an order that reduces the position, filled
    whole at its limit price paying the taker fee (Engine._check_closing in the reference)."""
    p = _position(m, acct, market)
    pos, basis = m[p], m[p + 1]
    if pos == 0 or (pos > 0) == is_buy:
        return True
    a = _account(m, acct)
    equity = m[a + A_COLL] - m[a + A_FEES]
    raw = 0
    for k in range(m[H_M]):
        pk = _position(m, acct, k)
        if m[pk] != 0:
            mk = m[H_MK] + k * MKF
            mark = m[mk + MK_ORACLE]
            equity += muldiv(m[pk], mark, SIZE_SCALE) - m[pk + 1]
            raw += margin_raw(-muldiv(-abs(m[pk]), mark, SIZE_SCALE), m[mk + MK_TIER_CAP], m[mk + MK_IM1], m[mk + MK_IM2])
    mk = m[H_MK] + market * MKF
    mark, cap, im1, im2 = m[mk + MK_ORACLE], m[mk + MK_TIER_CAP], m[mk + MK_IM1], m[mk + MK_IM2]
    qty = min(size, abs(pos))
    delta = -qty if pos > 0 else qty
    new_size, new_basis, realized = apply_trade(pos, basis, delta, muldiv(delta, price, SIZE_SCALE))
    fee = -((-muldiv(qty, price, SIZE_SCALE) * m[mk + MK_TAKER_FEE]) // BPS)
    equity_after = (equity - muldiv(pos, mark, SIZE_SCALE) + basis + muldiv(new_size, mark, SIZE_SCALE) - new_basis
                    + realized - fee)
    raw_after = (raw - margin_raw(-muldiv(-abs(pos), mark, SIZE_SCALE), cap, im1, im2)
                 + margin_raw(-muldiv(-abs(new_size), mark, SIZE_SCALE), cap, im1, im2))
    mm_before = -((-raw) // (2 * BPS))
    mm_after = -((-raw_after) // (2 * BPS))
    m[H_ERR_A] = equity_after
    m[H_ERR_B] = mm_after
    if equity_after >= mm_after:
        return True
    return equity_after >= 0 and equity_after - mm_after >= equity - mm_before


# ---------------------------------------------------------------------------------- commands
@njit(cache=True)
def place(m, ts, acct, market, is_buy, price, size, tif, flags, stp, expiry, is_market, dup_client):
    """Validates, checks margin, matches and rests what is left of a GTC order.

    Returns (code, order id, status, filled, remaining, reason, price): code 0 accepted, > 0 the
    error, < 0 a region to grow first. The validation order is the reference engine's."""
    mk = m[H_MK] + market * MKF
    a = _account(m, acct)
    # Events it can cause: a fill and an update per maker it takes (each at least a lot), an
    # update per own order self-trade prevention removes, its own resting update.
    makers = min(m[H_OLIVE], max(size, 0) // m[mk + MK_LOT] + 1 + m[a + A_OPEN])
    need = room(m, 2 * makers + 4)
    if need != OK:
        return need, 0, 0, 0, 0, 0, price
    if m[mk + MK_HALTED]:
        return E_MARKET_HALTED, 0, 0, 0, 0, 0, price
    if not m[H_REPLAYING]:
        if m[a + A_TOKEN_TS] >= 0:
            m[a + A_TOKENS] = min(m[H_BURST], m[a + A_TOKENS] + (ts - m[a + A_TOKEN_TS]) * m[H_RATE] // 1000)
        m[a + A_TOKEN_TS] = ts
        if m[a + A_TOKENS] <= 0:
            return E_RATE_LIMITED, 0, 0, 0, 0, 0, price
        m[a + A_TOKENS] -= 1
    oracle, tick = m[mk + MK_ORACLE], m[mk + MK_TICK]
    if is_market:
        if oracle <= 0:
            return E_NO_ORACLE_PRICE, 0, 0, 0, 0, 0, price
        cap = oracle * m[H_SLIP] // BPS
        capped = (oracle + cap) // tick * tick if is_buy else -(-(oracle - cap) // tick) * tick
        if price <= 0:
            price = capped
        else:
            price = min(price, capped) if is_buy else max(price, capped)
        tif = IOC
    if size <= 0:
        return E_INVALID_SIZE, 0, 0, 0, 0, 0, price
    if price <= 0:
        return E_INVALID_PRICE, 0, 0, 0, 0, 0, price
    if price % tick:
        return E_TICK_SIZE, 0, 0, 0, 0, 0, price
    if size % m[mk + MK_LOT]:
        return E_LOT_SIZE, 0, 0, 0, 0, 0, price
    if muldiv(size, price, SIZE_SCALE) < m[mk + MK_MIN_NOTIONAL]:
        return E_MIN_NOTIONAL, 0, 0, 0, 0, 0, price
    if oracle <= 0:
        return E_NO_ORACLE_PRICE, 0, 0, 0, 0, 0, price
    if abs(price - oracle) * BPS > oracle * m[mk + MK_BAND]:
        return E_PRICE_BAND, 0, 0, 0, 0, 0, price
    if expiry != 0 and expiry <= ts:
        return E_EXPIRED, 0, 0, 0, 0, 0, price
    if dup_client:
        return E_DUPLICATE_CLIENT_ID, 0, 0, 0, 0, 0, price
    best, best_level = _side_best(m, _side(market, not is_buy))
    crosses = best_level >= 0 and (price >= best if is_buy else price <= best)
    if flags & FLAG_POST_ONLY and crosses:
        return E_POST_ONLY_WOULD_CROSS, 0, 0, 0, 0, 0, price
    pos = m[_position(m, acct, market)]
    if flags & FLAG_REDUCE_ONLY:
        if pos == 0 or (pos > 0) == is_buy or size > abs(pos):
            return E_REDUCE_ONLY, 0, 0, 0, 0, 0, price
    if tif == GTC and not crosses and m[a + A_OPEN] >= m[H_MAX_OPEN]:
        return E_TOO_MANY_OPEN_ORDERS, 0, 0, 0, 0, 0, price
    if tif == FOK and _fillable(m, acct, market, is_buy, price) < size:
        return E_FOK_NOT_FILLED, 0, 0, 0, 0, 0, price
    if m[H_CHECK_MARGIN] and not flags & FLAG_REDUCE_ONLY:
        code = _margin_ok(m, acct, market, is_buy, size)
        if code != OK:
            return code, 0, 0, 0, 0, 0, price
    if m[H_CHECK_MARGIN] and not _closing_ok(m, acct, market, is_buy, price, size):
        return E_MAINTENANCE_WORSENED, 0, 0, 0, 0, 0, price

    oid = m[H_NEXT_ORDER_ID]
    m[H_NEXT_ORDER_ID] = oid + 1
    remaining, filled, self_traded = size, 0, False
    if crosses:
        remaining, filled, self_traded = _match(m, ts, acct, market, is_buy, price, oid, size, stp)
    if self_traded:
        return OK, oid, ST_CANCELLED, filled, remaining, R_SELF_TRADE, price
    if remaining == 0:
        return OK, oid, ST_FILLED, filled, 0, R_NONE, price
    if tif == GTC:
        _rest(m, oid, acct, market, is_buy, price, size, remaining, filled, flags, stp, expiry, ts)
        return OK, oid, ST_RESTING, filled, remaining, R_NONE, price
    return OK, oid, ST_CANCELLED, filled, remaining, R_IOC, price


@njit(cache=True)
def _match(m, ts, acct, market, is_buy, limit, oid, size, stp):
    """Fills the taker against the opposite side in price-time order: (remaining, filled,
    cancelled by self-trade prevention)."""
    s = _side(market, not is_buy)
    remaining, filled = size, 0
    while remaining > 0:
        best, lv = _side_best(m, s)
        if lv < 0 or ((best > limit) if is_buy else (best < limit)):
            break
        lb = m[H_L] + lv * LF
        o = m[lb + L_HEAD]
        while remaining > 0 and o >= 0:
            b = m[H_O] + o * OF
            nxt = m[b + O_NEXT]
            maker_acct = m[b + O_ACCT]
            if maker_acct == acct:
                if stp == STP_EXPIRE_MAKER:
                    _remove(m, o, ST_SELF_TRADE, ts, False)
                    o = nxt
                    continue
                if stp == STP_CANCEL_BOTH:
                    _remove(m, o, ST_SELF_TRADE, ts, False)
                return remaining, filled, True
            maker_rem = m[b + O_REM]
            qty = remaining if remaining < maker_rem else maker_rem
            m[b + O_REM] = maker_rem - qty
            m[b + O_FILLED] += qty
            remaining -= qty
            filled += qty
            m[lb + L_SIZE] -= qty
            seq = m[H_NEXT_FILL_SEQ]
            m[H_NEXT_FILL_SEQ] = seq + 1
            _apply_fill(m, market, best, qty, is_buy, maker_acct, acct)
            e = m[H_EV] + m[H_EVN] * EVF
            m[H_EVN] += 1
            m[e] = EV_FILL
            m[e + 1] = seq
            m[e + 2] = market
            m[e + 3] = best
            m[e + 4] = qty
            m[e + 5] = is_buy
            m[e + 6] = ts
            m[e + 7] = m[b + O_ID]
            m[e + 8] = maker_acct
            m[e + 9] = m[b + O_PRICE]
            m[e + 10] = m[b + O_SIZE]
            m[e + 11] = m[b + O_FLAGS]
            m[e + 12] = m[b + O_EXPIRY]
            m[e + 13] = m[b + O_FILLED]
            m[e + 14] = m[b + O_REM]
            m[e + 15] = oid
            m[e + 16] = acct
            m[e + 17] = filled
            m[e + 18] = m[b + O_STP]
            if maker_rem == qty:
                _remove(m, o, ST_FILLED, ts, True)
            o = nxt
    return remaining, filled, False


@njit(cache=True)
def slot_of(m, oid):
    if oid <= 0 or oid >= m[H_IDCAP]:
        return -1
    return m[m[H_ID] + oid]


@njit(cache=True)
def cancel(m, ts, acct, oid, status):
    """Removes a resting order of `acct` (acct < 0: of anyone) with `status`. 0 or E_UNKNOWN_ORDER."""
    if m[H_EVCAP] - m[H_EVN] < 1:
        return GROW_EVENTS
    o = slot_of(m, oid)
    if o < 0 or (acct >= 0 and m[m[H_O] + o * OF + O_ACCT] != acct):
        return E_UNKNOWN_ORDER
    _remove(m, o, status, ts, False)
    return OK


@njit(cache=True)
def expire(m, oid, ts):
    """Removes the order if it is still resting and its expiry has come."""
    o = slot_of(m, oid)
    if o >= 0:
        e = m[m[H_O] + o * OF + O_EXPIRY]
        if e != 0 and e <= ts:
            return cancel(m, ts, -1, oid, ST_EXPIRED)
    return OK


@njit(cache=True)
def cancel_all(m, ts, acct, market, status):
    """Every resting order of `acct` (on `market`, or all markets when it is < 0), oldest first."""
    if m[H_EVCAP] - m[H_EVN] < m[_account(m, acct) + A_OPEN]:
        return GROW_EVENTS
    for o in resting_slots(m, acct):
        if market < 0 or m[m[H_O] + o * OF + O_MARKET] == market:
            _remove(m, o, status, ts, False)
    return OK


@njit(cache=True)
def resting_slots(m, acct):
    """Slots of the resting orders of `acct` (every account's when it is < 0), oldest first."""
    ids = []
    for o in range(m[H_OCAP]):
        b = m[H_O] + o * OF
        if m[m[H_ID] + m[b + O_ID]] == o and (acct < 0 or m[b + O_ACCT] == acct):
            ids.append(m[b + O_ID])
    ids.sort()
    out = np.empty(len(ids), dtype=np.int64)
    for k in range(len(ids)):
        out[k] = m[m[H_ID] + ids[k]]
    return out


@njit(cache=True)
def reduce(m, ts, oid, size):
    """Modify that keeps priority: the remaining size goes down to `size`."""
    if m[H_EVCAP] - m[H_EVN] < 1:
        return GROW_EVENTS
    o = slot_of(m, oid)
    b = m[H_O] + o * OF
    delta = m[b + O_REM] - size
    m[b + O_REM] = size
    m[m[H_L] + m[b + O_LEVEL] * LF + L_SIZE] -= delta
    m[_position(m, m[b + O_ACCT], m[b + O_MARKET]) + (2 if m[b + O_BUY] else 3)] -= delta
    _event_order(m, ST_MODIFIED, o, ts)
    return OK


@njit(cache=True)
def unwind(m, ts, market, maker_acct, taker_acct, size, price, taker_is_buy, maker_oid, maker_still_valid):
    """A fill the chain refused: positions revert, and the maker's size returns to the book
    when its order is still valid and resting, otherwise the order is cancelled."""
    if m[H_EVCAP] - m[H_EVN] < 1:
        return GROW_EVENTS
    delta = size if taker_is_buy else -size
    for k in range(2):
        acct, d = (taker_acct, -delta) if k == 0 else (maker_acct, delta)
        p = _position(m, acct, market)
        s, basis, _ = apply_trade(m[p], m[p + 1], d, muldiv(d, price, SIZE_SCALE))
        m[p], m[p + 1] = s, basis
    o = slot_of(m, maker_oid)
    if o < 0:
        return OK
    if maker_still_valid:
        b = m[H_O] + o * OF
        m[b + O_REM] += size
        m[b + O_FILLED] -= size
        m[m[H_L] + m[b + O_LEVEL] * LF + L_SIZE] += size
        m[_position(m, m[b + O_ACCT], market) + (2 if m[b + O_BUY] else 3)] += size
    else:
        _remove(m, o, ST_REJECTED, ts, False)
    return OK


@njit(cache=True)
def run(m, cmds, out, start):
    """Bulk path: places and cancels from `cmds` (one row each, C_* columns) from row `start`,
    results into `out` (RF columns). Stops before a command whose time reaches the next expiry
    or dead-man's switch (the caller fires those, then resumes) or that needs a region grown;
    returns (index of the first row not run, OK or the GROW code that stopped it)."""
    for i in range(start, cmds.shape[0]):
        c = cmds[i]
        if c[C_TS] >= m[H_NEXT_DUE]:
            return i, OK
        if c[C_ACCT] < 0 or c[C_ACCT] >= m[H_N_ACCOUNTS]:
            out[i, 0] = E_UNKNOWN_ACCOUNT
            continue
        if c[C_OP] == OP_PLACE and (c[C_MARKET] < 0 or c[C_MARKET] >= m[H_M]):
            out[i, 0] = E_UNKNOWN_MARKET
            continue
        if c[C_OP] == OP_PLACE:
            r = place(m, c[C_TS], c[C_ACCT], c[C_MARKET], c[C_BUY], c[C_PRICE], c[C_SIZE], c[C_TIF], c[C_FLAGS],
                      c[C_STP], c[C_EXPIRY], c[C_IS_MARKET], c[C_DUP_CLIENT])
            if r[0] < 0:
                return i, r[0]
            for k in range(RF):
                out[i, k] = r[k]
        else:
            # the order id rides in C_SIZE; -(k + 1) names the order placed by row k of `cmds`
            oid = c[C_SIZE]
            if oid < 0:
                k = -oid - 1
                oid = out[k, 1] if k < i and out[k, 0] == OK and cmds[k, C_OP] == OP_PLACE else 0
            code = cancel(m, c[C_TS], c[C_ACCT], oid, ST_CANCELLED)
            if code < 0:
                return i, code
            out[i, 0] = code
            out[i, 1] = oid
    return cmds.shape[0], OK
