"""The matching engine: validation, pre-trade risk, price-time matching with self-trade
prevention, every order type the venue offers, and a journal hook. It knows nothing of HTTP or
web3; the API and the chain adapter wrap it.

The book and the risk mirror live in the compiled core (venue/core.py); this module is its
Python face: it keeps what the core cannot hold (addresses, client order ids, signatures, the
expiry and dead-man's-switch clocks), turns the core's events into `Fill` and order updates for
listeners and the journal, and raises `EngineError`s with readable messages.

Two ways in: a call per command (`place`, `cancel`, ...), and `run`, which takes many places
and cancels as one int64 array and runs them in one compiled loop (the way a sequencer drains
its queue). Commands carry their own timestamp (ms), so replaying the journal reproduces the
same book. `venue/engine_ref.py` is the same engine in plain Python, kept as the reference.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from . import core
from .book import Order
from .domain import MarketParams
from .risk import closing_message, exposure_message

# Time in force.
GTC, IOC, FOK = core.GTC, core.IOC, core.FOK
# Self-trade prevention: what happens when an order would trade against its own account.
STP_EXPIRE_MAKER, STP_CANCEL_TAKER, STP_CANCEL_BOTH = core.STP_EXPIRE_MAKER, core.STP_CANCEL_TAKER, core.STP_CANCEL_BOTH

# Order statuses in acknowledgements and order updates.
RESTING, FILLED, CANCELLED = "resting", "filled", "cancelled"
STATUS_NAMES = {core.ST_RESTING: RESTING, core.ST_FILLED: FILLED, core.ST_CANCELLED: CANCELLED,
                core.ST_SELF_TRADE: "self_trade", core.ST_EXPIRED: "expired", core.ST_DEADMAN: "dead_mans_switch",
                core.ST_REJECTED: "rejected_on_chain", core.ST_MODIFIED: "modified"}
REASON_NAMES = {core.R_NONE: None, core.R_SELF_TRADE: "self_trade", core.R_IOC: "ioc"}
ERROR_CODES = {core.E_MARKET_HALTED: "MARKET_HALTED", core.E_RATE_LIMITED: "RATE_LIMITED",
               core.E_NO_ORACLE_PRICE: "NO_ORACLE_PRICE", core.E_INVALID_SIZE: "INVALID_SIZE",
               core.E_INVALID_PRICE: "INVALID_PRICE", core.E_TICK_SIZE: "TICK_SIZE", core.E_LOT_SIZE: "LOT_SIZE",
               core.E_MIN_NOTIONAL: "MIN_NOTIONAL", core.E_PRICE_BAND: "PRICE_BAND", core.E_EXPIRED: "EXPIRED",
               core.E_DUPLICATE_CLIENT_ID: "DUPLICATE_CLIENT_ID",
               core.E_POST_ONLY_WOULD_CROSS: "POST_ONLY_WOULD_CROSS", core.E_REDUCE_ONLY: "REDUCE_ONLY",
               core.E_TOO_MANY_OPEN_ORDERS: "TOO_MANY_OPEN_ORDERS", core.E_FOK_NOT_FILLED: "FOK_NOT_FILLED",
               core.E_INSUFFICIENT_MARGIN: "INSUFFICIENT_MARGIN", core.E_UNKNOWN_ORDER: "UNKNOWN_ORDER",
               core.E_UNKNOWN_MARKET: "UNKNOWN_MARKET", core.E_UNKNOWN_ACCOUNT: "UNKNOWN_ACCOUNT",
               core.E_MAINTENANCE_WORSENED: "MAINTENANCE_WORSENED", core.E_EXPOSURE_CAP: "EXPOSURE_CAP"}
# Bulk commands (`Engine.run`): column numbers and operations.
C_OP, C_TS, C_ACCT, C_MARKET, C_BUY, C_PRICE, C_SIZE, C_TIF = core.C_OP, core.C_TS, core.C_ACCT, core.C_MARKET, \
    core.C_BUY, core.C_PRICE, core.C_SIZE, core.C_TIF
C_FLAGS, C_STP, C_EXPIRY, C_IS_MARKET, C_DUP_CLIENT = core.C_FLAGS, core.C_STP, core.C_EXPIRY, core.C_IS_MARKET, \
    core.C_DUP_CLIENT
COMMAND_COLUMNS = core.CF
OP_PLACE, OP_CANCEL = core.OP_PLACE, core.OP_CANCEL
# event columns of a fill in the journal's order: seq, market, price, size, taker is buy, maker
# order, taker order, maker account, taker account, ts
_FILL_ROW = [1, 2, 3, 4, 5, 7, 15, 8, 16, 6]
_LIMIT = 1 << 62  # the core's integers are int64; anything this large is refused up front
_NEVER = 1 << 62  # a time no expiry or switch reaches


class EngineError(Exception):
    """A command the engine refuses, with a stable code and a readable message."""

    status = 400

    def __init__(self, code: str, msg: str):
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


class OrderRejected(EngineError):
    pass


class UnknownOrder(EngineError):
    status = 404


class RateLimited(EngineError):
    status = 429


@dataclass(slots=True)
class Fill:
    seq: int
    market: int
    price: int
    size: int
    taker_is_buy: bool
    ts: int
    maker: Order
    taker: Order
    maker_fill_total: int  # cumulative filled of the maker order after this fill
    taker_fill_total: int

    @property
    def maker_account(self) -> str:
        return self.maker.account

    @property
    def taker_account(self) -> str:
        return self.taker.account


@dataclass(slots=True)
class Ack:
    order_id: int
    status: str
    filled: int
    remaining: int
    fills: list = field(default_factory=list)
    cancel_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    max_open_orders: int = 1_000
    rate_per_s: int = 1_000  # token bucket refill per second per account
    burst: int = 2_000
    market_slippage_bps: int = 500  # market orders: IOC capped this far from the oracle price
    check_margin: bool = True


class MarketState:
    """A listed market: its parameters, oracle price and halt flag (the latter two in the core)."""

    __slots__ = ("params", "id", "_engine", "_base")

    def __init__(self, engine: Engine, params: MarketParams, market: int):
        self.params, self.id, self._engine, self._base = params, market, engine, market * core.MKF

    @property
    def oracle_price(self) -> int:
        return int(self._engine.mk[self._base + core.MK_ORACLE])

    @property
    def halted(self) -> bool:
        return bool(self._engine.mk[self._base + core.MK_HALTED])


class AccountState:
    """An account as the engine sees it: the chain's collateral and positions plus fills not
    yet settled (read from the core when asked)."""

    __slots__ = ("address", "_engine", "_idx")

    def __init__(self, engine: Engine, address: str, idx: int):
        self.address, self._engine, self._idx = address, engine, idx

    def _row(self) -> list[int]:
        e = self._engine
        row = e.account_row(self._idx)
        return e.m[row: row + e.af].tolist()

    @property
    def collateral(self) -> int:
        return self._row()[core.A_COLL]

    @property
    def fees(self) -> int:
        return self._row()[core.A_FEES]

    @property
    def open_orders(self) -> int:
        return self._row()[core.A_OPEN]

    @property
    def positions(self) -> list[list[int]]:
        row = self._row()
        return [row[core.A_POS + 4 * k: core.A_POS + 4 * k + 2] for k in range(len(self._engine.markets))]

    @property
    def open_buy(self) -> list[int]:
        row = self._row()
        return [row[core.A_POS + 4 * k + 2] for k in range(len(self._engine.markets))]

    @property
    def open_sell(self) -> list[int]:
        row = self._row()
        return [row[core.A_POS + 4 * k + 3] for k in range(len(self._engine.markets))]

    @property
    def deadman_at(self) -> int:
        return self._engine.deadman_at[self._idx]


class Engine:
    def __init__(self, markets: tuple[MarketParams, ...], limits: Limits = Limits(), journal=None,
                 capacity: dict[str, int] | None = None):
        """`capacity`: first sizes of the core's regions (they double when full)."""
        self.limits = limits
        self.n_markets = len(markets)
        self.af = core.A_POS + 4 * self.n_markets
        self.caps = {"pcap": 256, "lcap": 1024, "ocap": 4096, "idcap": 16_384, "acap": 64, "evcap": 4096}
        self.caps.update(capacity or {})
        self.m = self._layout(None)
        m = self.m
        m[core.H_NEXT_ORDER_ID] = m[core.H_NEXT_FILL_SEQ] = 1
        m[core.H_MAX_OPEN], m[core.H_RATE], m[core.H_BURST] = limits.max_open_orders, limits.rate_per_s, limits.burst
        m[core.H_SLIP], m[core.H_CHECK_MARGIN] = limits.market_slippage_bps, int(limits.check_margin)
        for i, p in enumerate(markets):
            self.mk[i * core.MKF: (i + 1) * core.MKF] = (
                p.tick_size, p.lot_size, p.min_notional, p.band_bps, p.maker_fee_bps, p.taker_fee_bps, p.im_bps_1,
                p.im_bps_2, p.tier_cap_1, 0, 0, p.exposure_group, p.exposure_cap)
        self.markets = [MarketState(self, p, i) for i, p in enumerate(markets)]
        self.books = [BookView(self, i) for i in range(len(markets))]
        self.orders = OrdersView(self)
        self.accounts = AccountsView(self)
        self.addresses: list[str] = []
        self.account_ids: dict[str, int] = {}
        self.deadman_at: list[int] = []
        self.client_ids: dict[tuple[str, str], int] = {}
        self.meta: dict[int, tuple] = {}  # order id -> (client id, nonce, signature), when any is set
        self.expiries: list[tuple[int, int]] = []  # heap of (expiry ms, order id)
        self.deadmen: list[tuple[int, int]] = []  # heap of (cancel-all time ms, account index)
        self.due = _NEVER  # the earliest expiry or dead-man's switch
        self.journal = journal
        self.listeners = []  # callables(event tuple) for order updates and fills
        self.now = 0

    # ------------------------------------------------------------------ arena
    def _layout(self, old: np.ndarray | None) -> np.ndarray:
        """A new arena for the capacities in `self.caps`, with the old one's contents copied in."""
        c, n_sides = self.caps, 2 * self.n_markets
        sizes = [(core.H_MK, self.n_markets * core.MKF), (core.H_PN, n_sides), (core.H_PP, n_sides * c["pcap"]),
                 (core.H_PL, n_sides * c["pcap"]), (core.H_L, c["lcap"] * core.LF), (core.H_O, c["ocap"] * core.OF),
                 (core.H_ID, c["idcap"]), (core.H_A, c["acap"] * self.af), (core.H_EV, c["evcap"] * core.EVF)]
        m = np.zeros(core.HEADER + sum(n for _, n in sizes), dtype=np.int64)
        if old is not None:
            m[:core.HEADER] = old[:core.HEADER]
        at = core.HEADER
        for slot, n in sizes:
            m[slot] = at
            at += n
        m[core.H_M], m[core.H_PCAP], m[core.H_LCAP], m[core.H_OCAP] = self.n_markets, c["pcap"], c["lcap"], c["ocap"]
        m[core.H_IDCAP], m[core.H_ACAP], m[core.H_AF], m[core.H_EVCAP] = c["idcap"], c["acap"], self.af, c["evcap"]
        self._region_views(m)
        ids = self._region(m, core.H_ID, c["idcap"], 1)
        ids[:] = -1
        if old is None:
            m[core.H_LFREE], m[core.H_OFREE] = -1, -1
            old_l = old_o = 0
        else:
            for slot, rows, cols in self._shapes(old):
                new = self._region(m, slot, *self._shape_for(slot, m))
                src = self._region(old, slot, rows, cols)
                new[:src.shape[0], :src.shape[1]] = src
            old_l, old_o = int(old[core.H_LCAP]), int(old[core.H_OCAP])
        for slot, free, old_cap, cap, fields, link in ((core.H_L, core.H_LFREE, old_l, c["lcap"], core.LF, core.L_HEAD),
                                                       (core.H_O, core.H_OFREE, old_o, c["ocap"], core.OF, core.O_NEXT)):
            if cap > old_cap:  # chain the new slots in front of the free list
                region = self._region(m, slot, cap, fields)
                region[old_cap:cap - 1, link] = np.arange(old_cap + 1, cap)
                region[cap - 1, link] = m[free]
                m[free] = old_cap
        return m

    def _shapes(self, m: np.ndarray) -> list[tuple[int, int, int]]:
        return [(slot, *self._shape_for(slot, m)) for slot in
                (core.H_MK, core.H_PN, core.H_PP, core.H_PL, core.H_L, core.H_O, core.H_ID, core.H_A, core.H_EV)]

    def _shape_for(self, slot: int, m: np.ndarray) -> tuple[int, int]:
        n_sides = 2 * self.n_markets
        return {core.H_MK: (self.n_markets, core.MKF), core.H_PN: (n_sides, 1), core.H_PP: (n_sides, int(m[core.H_PCAP])),
                core.H_PL: (n_sides, int(m[core.H_PCAP])), core.H_L: (int(m[core.H_LCAP]), core.LF),
                core.H_O: (int(m[core.H_OCAP]), core.OF), core.H_ID: (int(m[core.H_IDCAP]), 1),
                core.H_A: (int(m[core.H_ACAP]), self.af), core.H_EV: (int(m[core.H_EVCAP]), core.EVF)}[slot]

    @staticmethod
    def _region(m: np.ndarray, slot: int, rows: int, cols: int) -> np.ndarray:
        return m[m[slot]: m[slot] + rows * cols].reshape(rows, cols)

    def _region_views(self, m: np.ndarray) -> None:
        self.mk = m[m[core.H_MK]: m[core.H_MK] + self.n_markets * core.MKF]

    def _grow(self, code: int) -> None:
        key = {core.GROW_ORDERS: "ocap", core.GROW_IDS: "idcap", core.GROW_LEVELS: "lcap", core.GROW_PRICES: "pcap",
               core.GROW_EVENTS: "evcap"}[code]
        self.caps[key] *= 2
        if key == "evcap":  # at most one command's worth of events is ever missing
            self.caps[key] = max(self.caps[key], int(self.m[core.H_EVN]) + 2 * int(self.m[core.H_OLIVE]) + 8)
        self.m = self._layout(self.m)

    def _call(self, fn, *args) -> int:
        """A core command that returns a code, run again after growing the arena if it asks."""
        while True:
            code = fn(self.m, *args)
            if code >= 0:
                return code
            self._grow(code)

    # ------------------------------------------------------------------ state from outside
    @property
    def next_order_id(self) -> int:
        return int(self.m[core.H_NEXT_ORDER_ID])

    @property
    def next_fill_seq(self) -> int:
        return int(self.m[core.H_NEXT_FILL_SEQ])

    @property
    def replaying(self) -> bool:
        return bool(self.m[core.H_REPLAYING])

    @replaying.setter
    def replaying(self, value: bool) -> None:
        self.m[core.H_REPLAYING] = int(value)

    def account_id(self, address: str) -> int:
        """The core's index of an account (created on first use); bulk commands name accounts by it."""
        idx = self.account_ids.get(address)
        if idx is None:
            idx = self.account_ids[address] = len(self.addresses)
            self.addresses.append(address)
            self.deadman_at.append(0)
            if idx >= self.caps["acap"]:
                self.caps["acap"] *= 2
                self.m = self._layout(self.m)
            row = self.account_row(idx)
            self.m[row + core.A_TOKENS] = self.limits.burst
            self.m[row + core.A_TOKEN_TS] = -1
            self.m[core.H_N_ACCOUNTS] = idx + 1
        return idx

    def account_row(self, idx: int) -> int:
        """Where account `idx`'s row starts in the arena (core._account)."""
        return int(self.m[core.H_A]) + idx * self.af

    def collateral(self, address: str) -> int | None:
        """The account's collateral value as the engine holds it (None: never seen)."""
        idx = self.account_ids.get(address)
        return None if idx is None else int(self.m[self.account_row(idx) + core.A_COLL])

    def account(self, address: str) -> AccountState:
        return AccountState(self, address, self.account_id(address))

    def set_oracle_price(self, ts: int, market: int, price: int) -> None:
        self._log("oracle", (ts, market, price))
        self.mk[market * core.MKF + core.MK_ORACLE] = price

    def set_halted(self, ts: int, market: int, halted: bool) -> None:
        self._log("halt", (ts, market, halted))
        self.mk[market * core.MKF + core.MK_HALTED] = int(halted)

    def set_exposure_group(self, ts: int, market: int, group: int, cap: int) -> None:
        """The market's exposure group and cap as the chain now holds them (ExposureGroupSet)."""
        self._log("exposure", (ts, market, group, cap))
        base = market * core.MKF
        self.mk[base + core.MK_GROUP], self.mk[base + core.MK_GROUP_CAP] = group, cap
        ms = self.markets[market]
        ms.params = replace(ms.params, exposure_group=group, exposure_cap=cap)

    def set_account(self, ts: int, address: str, collateral: int, positions: dict[int, tuple[int, int]],
                    fees: int = 0) -> None:
        """The chain's view of an account (collateral value, positions as (size, open notional)),
        plus anything still pending is re-applied by the caller."""
        self._log("account", (ts, address, collateral, {int(k): tuple(v) for k, v in positions.items()}, fees))
        row = self.account_row(self.account_id(address))
        self.m[row + core.A_COLL] = collateral
        self.m[row + core.A_FEES] = fees
        for k in range(self.n_markets):
            self.m[row + core.A_POS + 4 * k: row + core.A_POS + 4 * k + 2] = positions.get(k, (0, 0))

    # ------------------------------------------------------------------ commands
    def place(self, ts: int, account: str, market: int, is_buy: bool, price: int, size: int, *,
              tif: int = GTC, flags: int = 0, client_id: str | None = None, stp: int = STP_EXPIRE_MAKER,
              expiry: int = 0, is_market: bool = False, nonce: int = 0, signature: bytes = b"") -> Ack:
        """Validates, checks margin, matches, and rests what is left of a GTC order."""
        self._advance(ts)
        if market.__class__ is not int or not 0 <= market < self.n_markets:
            raise OrderRejected("UNKNOWN_MARKET", f"no market {market}")
        self.check_range(price, size, expiry)
        acct = self.account_ids.get(account)
        if acct is None:
            acct = self.account_id(account)
        dup = client_id is not None and (account, client_id) in self.client_ids
        while True:
            r = core.place(self.m, ts, acct, market, 1 if is_buy else 0, price, size, tif, flags, stp, expiry,
                           1 if is_market else 0, dup)
            if r[0] >= 0:
                break
            self._grow(r[0])
        code, oid, status, filled, remaining, reason, final_price = r
        if code:
            raise self.rejection(code, market, final_price, size, client_id)
        self._log("place", (ts, account, market, is_buy, price, size, tif, flags, client_id, stp, expiry, is_market,
                            nonce, signature))
        if client_id is not None or nonce or signature:
            self.meta[oid] = (client_id, nonce, signature)
            if client_id is not None and status == core.ST_RESTING:
                self.client_ids[(account, client_id)] = oid
        elif (filled == 0 and status == core.ST_RESTING and not expiry and not self.meta and not self.listeners
              and self.journal is None):
            self.m[core.H_EVN] = 0  # only its own resting update, and nobody to tell
            return Ack(oid, RESTING, 0, remaining, [])
        # A market order matches inside the slippage cap (final_price) but settles as signed: its
        # Order keeps the signed price, which the digest covers.
        taker = Order(oid, account, market, is_buy, price if is_market else final_price, size, flags, client_id, stp,
                      expiry, 0, nonce, signature)
        taker.remaining, taker.filled = remaining, filled
        fills = self._drain(taker)[0]
        if status != core.ST_RESTING:
            self.meta.pop(oid, None)  # never rested: its fills carry what settlement needs
        return Ack(oid, STATUS_NAMES[status], filled, remaining, fills, REASON_NAMES[reason])

    def cancel(self, ts: int, account: str, order_id: int | None = None, client_id: str | None = None) -> Order:
        self._advance(ts)
        if order_id is None:
            order_id = self.client_ids.get((account, client_id))
        acct = self.account_ids.get(account)
        if (order_id is None or acct is None or not 0 < order_id < _LIMIT
                or self._call(core.cancel, ts, acct, order_id, core.ST_CANCELLED)):
            raise UnknownOrder("UNKNOWN_ORDER", f"no open order {order_id if client_id is None else client_id!r}")
        self._log("cancel", (ts, account, order_id))
        return self._drain()[1][0]

    def cancel_all(self, ts: int, account: str, market: int | None = None) -> list[Order]:
        self._advance(ts)
        if market is not None and (market.__class__ is not int or not 0 <= market < self.n_markets):
            raise OrderRejected("UNKNOWN_MARKET", f"no market {market}")  # before the journal: replay takes it
        self._log("cancel_all", (ts, account, market))
        acct = self.account_ids.get(account)
        if acct is None:
            return []
        self._call(core.cancel_all, ts, acct, -1 if market is None else market, core.ST_CANCELLED)
        return self._drain()[1]

    def modify(self, ts: int, account: str, order_id: int, price: int, size: int) -> Ack:
        """Same price and a smaller size keep queue priority; anything else re-enters the queue."""
        self._advance(ts)
        order = self.orders.get(order_id) if order_id.__class__ is int and 0 < order_id < _LIMIT else None
        if order is None or order.account != account:
            raise UnknownOrder("UNKNOWN_ORDER", f"no open order {order_id}")
        self.check_range(price, size, 0)
        if price == order.price and 0 < size <= order.remaining:
            p = self.markets[order.market].params
            if size % p.lot_size:
                raise OrderRejected("LOT_SIZE", f"size {size} is not a multiple of the lot {p.lot_size}")
            self._log("modify", (ts, account, order_id, price, size))
            self._call(core.reduce, ts, order_id, size)
            self._drain()
            return Ack(order.id, RESTING, order.filled, size, [])
        # Loses priority: cancel and place anew (same client id, flags and expiry); the journal
        # records the cancel and the place it consists of.
        self.cancel(ts, account, order_id)
        return self.place(ts, account, order.market, order.is_buy, price, size, flags=order.flags,
                          client_id=order.client_id, stp=order.stp, expiry=order.expiry)

    def schedule_cancel(self, ts: int, account: str, at: int) -> None:
        """Dead-man's switch: at time `at` (ms) every order of `account` is cancelled unless it
        renews first. `at == 0` disarms it."""
        self._advance(ts)
        if at.__class__ is not int or not 0 <= at < _NEVER:
            raise OrderRejected("OUT_OF_RANGE", f"cancel time {at} out of range")
        if at and at <= ts:
            raise OrderRejected("EXPIRED", "the cancel time must lie in the future")
        self._log("deadman", (ts, account, at))
        idx = self.account_id(account)
        self.deadman_at[idx] = at
        if at:
            heapq.heappush(self.deadmen, (at, idx))
            self.due = min(self.due, at)

    def tick(self, ts: int) -> None:
        """Advances time: expires orders and fires dead-man's switches due by `ts`."""
        self._advance(ts)

    def run(self, cmds: np.ndarray, meta: list | None = None) -> np.ndarray:
        """Places and cancels in bulk: one row of `COMMAND_COLUMNS` int64 per command (C_* columns;
        accounts by `account_id`; a cancel's order id in C_SIZE, or -(k + 1) for the order placed
        by row k of the same array), run in one compiled loop. `meta`, if given, has one entry per
        row: None or (client order id, nonce, signature) of a place. A client order id may
        appear once per call (a second use is refused as a duplicate even if the first order
        has left the book by then). Returns one row per command: code (0 accepted, else an
        ERROR_CODES key), order id, status, filled, remaining, reason, price. Same rules, events
        and journal as the calls one by one."""
        cmds = np.ascontiguousarray(cmds, dtype=np.int64)
        if cmds.ndim != 2 or cmds.shape[1] != COMMAND_COLUMNS:
            if cmds.size == 0:
                cmds = np.zeros((0, COMMAND_COLUMNS), dtype=np.int64)
            else:
                raise ValueError(f"commands are rows of {COMMAND_COLUMNS} int64, got shape {cmds.shape}")
        n = len(cmds)
        if meta is not None:
            cmds = cmds.copy()  # the duplicate client id flags are written into it
            self._flag_duplicate_client_ids(cmds, meta)
        out = np.zeros((n, core.RF), dtype=np.int64)
        i = 0
        while i < n:
            self.m[core.H_NEXT_DUE] = self.due
            j, grow = core.run(self.m, cmds, out, i)
            if j > i:
                self._log_bulk(cmds[i:j], out[i:j], None if meta is None else meta[i:j])
                if meta is not None:
                    self._register_meta(cmds, out, meta, i, j)
                self._drain(bulk=(cmds, out, i, j))
                if meta is not None:
                    for k in range(i, j):  # never rested: its fills carry what settlement needs
                        if meta[k] is not None and out[k, 0] == 0 and out[k, 2] != core.ST_RESTING:
                            self.meta.pop(int(out[k, 1]), None)
                self.now = max(self.now, int(cmds[j - 1, C_TS]))
            if grow:
                self._grow(grow)
            elif j < n:  # an expiry or dead-man's switch is due first
                self._advance(int(cmds[j, C_TS]))
            i = j
        return out

    def _flag_duplicate_client_ids(self, cmds: np.ndarray, meta: list) -> None:
        seen = set()
        for k, entry in enumerate(meta):
            if entry is not None and entry[0] is not None and cmds[k, C_OP] == OP_PLACE:
                key = (self.addresses[int(cmds[k, C_ACCT])], entry[0])
                cmds[k, C_DUP_CLIENT] = int(key in self.client_ids or key in seen)
                seen.add(key)

    def _register_meta(self, cmds: np.ndarray, out: np.ndarray, meta: list, i: int, j: int) -> None:
        """Client ids, nonces and signatures of the orders rows i..j placed, before their events."""
        for k in range(i, j):
            entry = meta[k]
            if entry is None or out[k, 0] != 0 or cmds[k, C_OP] != OP_PLACE:
                continue
            oid = int(out[k, 1])
            self.meta[oid] = tuple(entry)
            if entry[0] is not None and out[k, 2] == core.ST_RESTING:
                self.client_ids[(self.addresses[int(cmds[k, C_ACCT])], entry[0])] = oid

    # ------------------------------------------------------------------ settlement feedback
    def on_fill_rejected(self, ts: int, fill_seq: int, maker_order_id: int, maker_still_valid: bool,
                         size: int, market: int, maker: str, taker: str, price: int, taker_is_buy: bool) -> None:
        """Unwinds a fill the chain refused: positions revert, and the maker's size comes back to
        the book when its order is still valid and live, otherwise the order is cancelled."""
        self._log("unwind", (ts, fill_seq, maker_order_id, maker_still_valid, size, market, maker, taker, price,
                             taker_is_buy))
        taker_idx = self.account_id(taker)
        self._call(core.unwind, ts, market, self.account_id(maker), taker_idx, size, price, int(taker_is_buy),
                   maker_order_id, int(maker_still_valid))
        self._drain()

    # ------------------------------------------------------------------ internals
    def _advance(self, ts: int) -> None:
        if ts > self.now:
            self.now = ts
        if ts >= self.due:
            self._fire(ts)

    def _fire(self, ts: int) -> None:
        """Expiries and dead-man's switches due by `ts`, in that order."""
        exp, dm = self.expiries, self.deadmen
        self._log("tick", (ts,))  # what fires now must fire at the same point on replay
        while exp and exp[0][0] <= ts:
            _, oid = heapq.heappop(exp)
            self._call(core.expire, oid, ts)
        while dm and dm[0][0] <= ts:
            at, idx = heapq.heappop(dm)
            if self.deadman_at[idx] == at:
                self.deadman_at[idx] = 0
                self._call(core.cancel_all, ts, idx, -1, core.ST_DEADMAN)
        self._drain()
        self._reset_due()

    def _reset_due(self) -> None:
        self.due = min(self.expiries[0][0] if self.expiries else _NEVER, self.deadmen[0][0] if self.deadmen else _NEVER)

    def _drain(self, taker: Order | None = None, bulk=None) -> tuple[list[Fill], list[Order]]:
        """The core's events since the last drain, in order: fills (journal, listeners) and order
        updates (client ids, expiry clock, listeners)."""
        m = self.m
        n = int(m[core.H_EVN])
        if n == 0:
            return [], []
        m[core.H_EVN] = 0
        events = self._region(m, core.H_EV, n, core.EVF)
        journal = self.journal if self.journal is not None and not self.replaying else None
        listeners = self.listeners
        expiring, m[core.H_EXPIRING_RESTS] = m[core.H_EXPIRING_RESTS], 0
        if bulk is not None and not listeners and not self.meta:
            # nobody to tell: the journal needs the fills, the expiry clock the orders that rested with one
            if journal is not None:
                addresses, seq = self.addresses, journal.last_seq
                for f in events[events[:, 0] == core.EV_FILL][:, _FILL_ROW].tolist():
                    journal.append_fill_row((f[0], seq, f[1], f[2], f[3], f[4], f[5], f[6], addresses[f[7]],
                                             addresses[f[8]], f[9]))
            if expiring:
                rested = events[(events[:, 0] == core.EV_ORDER) & (events[:, 1] == core.ST_RESTING)
                                & (events[:, 11] != 0)]
                for expiry, oid in rested[:, [11, 2]].tolist():
                    heapq.heappush(self.expiries, (expiry, oid))
                    self.due = min(self.due, expiry)
            return [], []
        rows = events.tolist()
        fills: list[Fill] = []
        updates: list[Order] = []
        for r in rows:
            if r[0] == core.EV_FILL:
                seq, market, price, size, taker_is_buy, ts = r[1:7]
                fill_taker = taker if bulk is None else self._bulk_order(bulk, r[15])
                maker = self._order(r[7], r[8], market, not taker_is_buy, r[9], r[10], r[11], r[12], r[18], r[14],
                                    r[13])
                fill = Fill(seq, market, price, size, bool(taker_is_buy), ts, maker, fill_taker, r[13], r[17])
                fills.append(fill)
                for listener in listeners:
                    listener(("fill", fill))
                if journal is not None:
                    journal.append_fill(fill)
            else:
                status, oid = r[1], r[2]
                if status == core.ST_RESTING:
                    if r[11]:
                        heapq.heappush(self.expiries, (r[11], oid))
                        self.due = min(self.due, r[11])
                    if not listeners:
                        continue
                order = self._order(oid, r[3], r[4], r[5], r[6], r[7], r[10], r[11], r[12], r[8], r[9])
                if status not in (core.ST_RESTING, core.ST_MODIFIED):
                    meta = self.meta.pop(oid, None)
                    if meta is not None and meta[0] is not None:
                        self.client_ids.pop((order.account, meta[0]), None)
                    order.live = False
                updates.append(order)
                for listener in listeners:
                    listener(("order", order, STATUS_NAMES[status]))
        return fills, updates

    def _order(self, oid, acct, market, is_buy, price, size, flags, expiry, stp, remaining, filled) -> Order:
        client_id, nonce, signature = self.meta.get(oid, (None, 0, b""))
        o = Order(oid, self.addresses[acct], market, bool(is_buy), price, size, flags, client_id, stp, expiry, 0,
                  nonce, signature)
        o.remaining, o.filled, o.live = remaining, filled, True
        return o

    def _bulk_order(self, bulk, oid: int) -> Order:
        cmds, out, i, j = bulk
        k = i + int(np.nonzero((out[i:j, 1] == oid) & (cmds[i:j, C_OP] == OP_PLACE))[0][0])
        c, r = cmds[k].tolist(), out[k].tolist()
        price = c[C_PRICE] if c[C_IS_MARKET] else r[6]  # a market order settles as signed (see `place`)
        return self._order(oid, c[C_ACCT], c[C_MARKET], c[C_BUY], price, c[C_SIZE], c[C_FLAGS], c[C_EXPIRY], c[C_STP],
                           r[4], r[3])

    def _log_bulk(self, cmds: np.ndarray, out: np.ndarray, meta: list | None) -> None:
        """The accepted commands of a bulk run, with their accounts as addresses and the
        metadata of those that have any."""
        if self.journal is None or self.replaying:
            return
        accepted = out[:, 0] == 0
        rows = cmds[accepted]
        used, local = np.unique(rows[:, C_ACCT], return_inverse=True)
        rows = rows.copy()
        rows[:, C_ACCT] = local
        extra = [] if meta is None else [(k, *m) for k, m in enumerate(e for e, ok in zip(meta, accepted) if ok)
                                         if m is not None]
        self.journal.append("bulk", ([self.addresses[i] for i in used.tolist()], rows.tobytes(), extra))

    def replay_bulk(self, addresses: list[str], blob: bytes, extra: list = ()):
        """A journalled bulk run again; returns (commands, results, metadata) as `run` saw them."""
        cmds = np.frombuffer(blob, dtype=np.int64).reshape(-1, COMMAND_COLUMNS).copy()
        ids = np.array([self.account_id(a) for a in addresses], dtype=np.int64)
        if len(cmds):
            cmds[:, C_ACCT] = ids[cmds[:, C_ACCT]]
        meta = None
        if extra:
            meta = [None] * len(cmds)
            for k, client_id, nonce, signature in extra:
                meta[k] = (client_id, nonce, signature)
        return cmds, self.run(cmds, meta), meta

    def check_range(self, price: int, size: int, expiry: int) -> None:
        """The core holds int64: larger numbers are refused before they reach it."""
        if not (-_LIMIT < price < _LIMIT and -_LIMIT < size < _LIMIT and -_LIMIT < expiry < _LIMIT):
            raise OrderRejected("OUT_OF_RANGE", "price, size or expiry out of range")

    def rejection(self, code: int, market: int, price: int, size: int, client_id=None) -> EngineError:
        """The error for a core result code (what `place` raises; `run` returns the code)."""
        name = ERROR_CODES[code]
        p = self.markets[market].params if 0 <= market < self.n_markets else None
        messages = {  # built only for the code at hand (an unknown market has no params)
            "MARKET_HALTED": lambda: f"{p.symbol} is halted",
            "RATE_LIMITED": lambda: f"more than {self.limits.rate_per_s} orders per second",
            "NO_ORACLE_PRICE": lambda: f"{p.symbol} has no oracle price",
            "INVALID_SIZE": lambda: "size must be positive",
            "INVALID_PRICE": lambda: "price must be positive",
            "TICK_SIZE": lambda: f"price {price} is not a multiple of the tick {p.tick_size}",
            "LOT_SIZE": lambda: f"size {size} is not a multiple of the lot {p.lot_size}",
            "MIN_NOTIONAL": lambda: f"notional below the minimum {p.min_notional}",
            "PRICE_BAND": lambda: f"price {price} is more than {p.band_bps} bps from the oracle "
                                  f"{self.markets[market].oracle_price}",
            "EXPIRED": lambda: "expiry is in the past",
            "DUPLICATE_CLIENT_ID": lambda: f"client order id {client_id!r} is live",
            "POST_ONLY_WOULD_CROSS": lambda: "post-only order would take liquidity",
            "REDUCE_ONLY": lambda: "reduce-only order would open or grow a position",
            "TOO_MANY_OPEN_ORDERS": lambda: f"at most {self.limits.max_open_orders} open orders",
            "FOK_NOT_FILLED": lambda: "fill-or-kill order cannot fill completely",
            "INSUFFICIENT_MARGIN": lambda: f"equity {int(self.m[core.H_ERR_A])} below initial margin "
                                           f"{int(self.m[core.H_ERR_B])} with open orders",
            "UNKNOWN_ORDER": lambda: "no open order",
            "UNKNOWN_MARKET": lambda: f"no market {market}",
            "UNKNOWN_ACCOUNT": lambda: "no account with that index (Engine.account_id gives them out)",
            "MAINTENANCE_WORSENED": lambda: closing_message(price, int(self.m[core.H_ERR_A]), int(self.m[core.H_ERR_B])),
            "EXPOSURE_CAP": lambda: exposure_message(p, int(self.m[core.H_ERR_A]), int(self.m[core.H_ERR_B])),
        }
        msg = messages[name]()
        if code == core.E_UNKNOWN_ORDER:
            return UnknownOrder(name, msg)
        return RateLimited(name, msg) if code == core.E_RATE_LIMITED else OrderRejected(name, msg)

    def _log(self, kind: str, args: tuple) -> None:
        if self.journal is not None and not self.replaying:
            self.journal.append(kind, args)

    # ------------------------------------------------------------------ inspection
    def state_hash(self) -> str:
        """A digest of everything that decides future matching: every resting order in queue
        order, the id counters, pending positions and fees (the reference engine's format)."""
        h = hashlib.sha256()
        h.update(f"{self.next_order_id}|{self.next_fill_seq}".encode())
        for book in self.books:
            for side in (book.bids, book.asks):
                for o in side.iter_orders():
                    h.update(f"{o.id},{o.account},{o.is_buy},{o.price},{o.remaining},{o.filled};".encode())
        for address in sorted(self.account_ids):
            a = self.accounts[address]
            positions = a.positions
            if not (a.collateral or a.fees or a.deadman_at or any(p[0] or p[1] for p in positions)):
                continue  # accounts that never held anything (e.g. only sent rejected orders)
            h.update(f"{address}:{a.collateral}:{positions}:{a.fees}:{a.deadman_at}".encode())
        return h.hexdigest()

    def open_orders(self, account: str, after: int = 0, limit: int | None = None) -> list[Order]:
        """The account's resting orders in order of id (oldest first): those with an id above
        `after`, at most `limit` of them (only those are built)."""
        acct = self.account_ids.get(account)
        if acct is None:
            return []
        slots = core.resting_slots(self.m, acct)
        ids = self._region(self.m, core.H_O, int(self.m[core.H_OCAP]), core.OF)[slots, core.O_ID]
        order = np.argsort(ids, kind="stable")
        slots, ids = slots[order], ids[order]
        if after:
            slots = slots[ids > after]
        if limit is not None:
            slots = slots[:limit]
        return [self.order_at(slot) for slot in slots.tolist()]

    def open_order_count(self, account: str) -> int:
        """From the account's row: O(1) (`open_orders` scans the order table)."""
        return 0 if account not in self.account_ids else int(self.accounts[account].open_orders)

    def l2(self, market: int, depth: int = 20) -> tuple[list, list]:
        book = self.books[market]
        return book.bids.depth(depth), book.asks.depth(depth)

    def level_size(self, market: int, is_buy: bool, price: int) -> int:
        """Total resting size at one price (0: no level)."""
        return int(core.level_size(self.m, market, 1 if is_buy else 0, price))

    def order_at(self, slot: int) -> Order:
        row = self._region(self.m, core.H_O, int(self.m[core.H_OCAP]), core.OF)[slot].tolist()
        return self._order(row[core.O_ID], row[core.O_ACCT], row[core.O_MARKET], row[core.O_BUY], row[core.O_PRICE],
                           row[core.O_SIZE], row[core.O_FLAGS], row[core.O_EXPIRY], row[core.O_STP], row[core.O_REM],
                           row[core.O_FILLED])


class OrdersView(Mapping):
    """Resting orders by id, oldest first (snapshots: read again after a command)."""

    def __init__(self, engine: Engine):
        self._e = engine

    def _slot(self, oid) -> int:
        if oid.__class__ is not int or not 0 < oid < _LIMIT:
            return -1
        return int(core.slot_of(self._e.m, oid))

    def __getitem__(self, oid) -> Order:
        slot = self._slot(oid)
        if slot < 0:
            raise KeyError(oid)
        return self._e.order_at(slot)

    def get(self, oid, default=None):
        slot = self._slot(oid)
        return default if slot < 0 else self._e.order_at(slot)

    def __contains__(self, oid) -> bool:
        return self._slot(oid) >= 0

    def __len__(self) -> int:
        return int(self._e.m[core.H_OLIVE])

    def __iter__(self):
        m = self._e.m
        ids = Engine._region(m, core.H_ID, int(m[core.H_IDCAP]), 1)[:, 0]
        return iter(np.nonzero(ids >= 0)[0].tolist())

    def values(self):
        return [self._e.order_at(slot) for slot in core.resting_slots(self._e.m, -1).tolist()]


class AccountsView(Mapping):
    def __init__(self, engine: Engine):
        self._e = engine

    def __getitem__(self, address: str) -> AccountState:
        return AccountState(self._e, address, self._e.account_ids[address])

    def __contains__(self, address) -> bool:
        return address in self._e.account_ids

    def __iter__(self):
        return iter(self._e.addresses)

    def __len__(self) -> int:
        return len(self._e.addresses)


@dataclass(frozen=True, slots=True)
class LevelView:
    price: int
    size: int
    count: int


class SideView:
    """One side of a book, read from the core: prices best last in the core, shown ascending."""

    def __init__(self, engine: Engine, market: int, is_buy: bool):
        self._e, self.market, self.is_buy = engine, market, is_buy
        self._s = 2 * market + (0 if is_buy else 1)

    def _levels(self) -> list[tuple[int, int]]:
        """(price, level slot) ascending by price."""
        m = self._e.m
        n, pcap = int(m[m[core.H_PN] + self._s]), int(m[core.H_PCAP])
        keys = m[m[core.H_PP] + self._s * pcap: m[core.H_PP] + self._s * pcap + n].tolist()
        slots = m[m[core.H_PL] + self._s * pcap: m[core.H_PL] + self._s * pcap + n].tolist()
        pairs = list(zip(keys, slots)) if self.is_buy else [(-k, s) for k, s in zip(keys, slots)][::-1]
        return pairs

    @property
    def prices(self) -> list[int]:
        return [p for p, _ in self._levels()]

    @property
    def levels(self) -> dict[int, LevelView]:
        lv = Engine._region(self._e.m, core.H_L, int(self._e.m[core.H_LCAP]), core.LF)
        return {p: LevelView(p, int(lv[s, core.L_SIZE]), int(lv[s, core.L_COUNT])) for p, s in self._levels()}

    def best(self) -> LevelView | None:
        levels = self._levels()
        if not levels:
            return None
        return self.levels[levels[-1][0] if self.is_buy else levels[0][0]]

    def depth(self, n: int) -> list[tuple[int, int]]:
        """(price, size) of the best `n` levels."""
        levels = self.levels
        prices = list(levels)
        prices = prices[::-1][:n] if self.is_buy else prices[:n]
        return [(p, levels[p].size) for p in prices]

    def iter_orders(self):
        """Resting orders by ascending price, each level in queue order."""
        m = self._e.m
        lv = Engine._region(m, core.H_L, int(m[core.H_LCAP]), core.LF)
        orders = Engine._region(m, core.H_O, int(m[core.H_OCAP]), core.OF)
        for _, s in self._levels():
            o = int(lv[s, core.L_HEAD])
            while o >= 0:
                yield self._e.order_at(o)
                o = int(orders[o, core.O_NEXT])


class BookView:
    def __init__(self, engine: Engine, market: int):
        self.market = market
        self.bids = SideView(engine, market, True)
        self.asks = SideView(engine, market, False)

    def side(self, is_buy: bool) -> SideView:
        return self.bids if is_buy else self.asks

    def best_bid(self) -> int | None:
        prices = self.bids.prices
        return prices[-1] if prices else None

    def best_ask(self) -> int | None:
        prices = self.asks.prices
        return prices[0] if prices else None
