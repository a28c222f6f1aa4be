"""The reference matching engine, in plain Python: the same rules as venue/engine.py (the
compiled core), kept as the specification it is tested against (tests/venue/test_engine_parity.py).

The matching engine: validation, pre-trade risk, price-time matching with self-trade
prevention, every order type the venue offers, and a journal hook. It knows nothing of HTTP or
web3; the API and the chain adapter wrap it.

Commands carry their own timestamp (ms), so replaying the journal reproduces the same book.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, replace

from .book import Book, Order
from .domain import BPS, FLAG_POST_ONLY, FLAG_REDUCE_ONLY, MarketParams
from .engine import (
    _LIMIT, _NEVER, CANCELLED, FILLED, FOK, GTC, IOC, RESTING, STP_CANCEL_BOTH, STP_EXPIRE_MAKER, Ack, Fill,
    Limits, OrderRejected, RateLimited, UnknownOrder,
)
from .domain import SIZE_SCALE
from .risk import (
    Health, apply_trade, closing_message, closing_rule_holds, exposure_message, initial_margin, maintenance_margin, margin_raw,
    notional_up, position_value, risk_grew, taker_fee,
)


@dataclass
class MarketState:
    params: MarketParams
    id: int
    oracle_price: int = 0
    halted: bool = False


class AccountState:
    __slots__ = ("address", "collateral", "positions", "fees", "open_buy", "open_sell", "open_orders",
                 "tokens", "token_ts", "deadman_at")

    def __init__(self, address: str, n_markets: int):
        self.address = address
        self.collateral = 0  # quote value of all collateral (chain: quote + WETH after haircut)
        self.positions = [[0, 0] for _ in range(n_markets)]  # [size, open notional], chain + pending fills
        self.fees = 0  # fees of pending fills (positive: owed)
        self.open_buy = [0] * n_markets
        self.open_sell = [0] * n_markets
        self.open_orders = 0
        self.tokens = 0
        self.token_ts = -1
        self.deadman_at = 0


@dataclass(frozen=True, slots=True)
class Limits:
    max_open_orders: int = 1_000
    rate_per_s: int = 1_000  # token bucket refill per second per account
    burst: int = 2_000
    market_slippage_bps: int = 500  # market orders: IOC capped this far from the oracle price
    check_margin: bool = True


class ReferenceEngine:
    def __init__(self, markets: tuple[MarketParams, ...], limits: Limits = Limits(), journal=None):
        self.markets = [MarketState(p, i) for i, p in enumerate(markets)]
        self.books = [Book(i) for i in range(len(markets))]
        self.limits = limits
        self.orders: dict[int, Order] = {}
        self.client_ids: dict[tuple[str, str], int] = {}
        self.accounts: dict[str, AccountState] = {}
        self.next_order_id = 1
        self.next_fill_seq = 1
        self.expiries: list[tuple[int, int]] = []  # heap of (expiry ms, order id)
        self.deadmen: list[tuple[int, str]] = []  # heap of (cancel-all time ms, account)
        self.journal = journal
        self.replaying = False
        self.listeners = []  # callables(event tuple) for order updates and fills
        self.now = 0

    # ------------------------------------------------------------------ state from outside
    def account(self, address: str) -> AccountState:
        acct = self.accounts.get(address)
        if acct is None:
            acct = self.accounts[address] = AccountState(address, len(self.markets))
            acct.tokens = self.limits.burst
        return acct

    def set_oracle_price(self, ts: int, market: int, price: int) -> None:
        self._log("oracle", (ts, market, price))
        self.markets[market].oracle_price = price

    def set_exposure_group(self, ts: int, market: int, group: int, cap: int) -> None:
        self._log("exposure", (ts, market, group, cap))
        ms = self.markets[market]
        ms.params = replace(ms.params, exposure_group=group, exposure_cap=cap)

    def set_halted(self, ts: int, market: int, halted: bool) -> None:
        self._log("halt", (ts, market, halted))
        self.markets[market].halted = halted

    def set_account(self, ts: int, address: str, collateral: int, positions: dict[int, tuple[int, int]],
                    fees: int = 0) -> None:
        """The chain's view of an account (collateral value, positions as (size, open notional)),
        plus anything still pending is re-applied by the caller."""
        self._log("account", (ts, address, collateral, {int(k): tuple(v) for k, v in positions.items()}, fees))
        acct = self.account(address)
        acct.collateral = collateral
        for m in range(len(self.markets)):
            size, basis = positions.get(m, (0, 0))
            acct.positions[m] = [size, basis]
        acct.fees = fees

    # ------------------------------------------------------------------ commands
    def place(self, ts: int, account: str, market: int, is_buy: bool, price: int, size: int, *,
              tif: int = GTC, flags: int = 0, client_id: str | None = None, stp: int = STP_EXPIRE_MAKER,
              expiry: int = 0, is_market: bool = False, nonce: int = 0, signature: bytes = b"") -> Ack:
        """Validates, checks margin, matches, and rests what is left of a GTC order."""
        self._advance(ts)
        if market.__class__ is not int or not 0 <= market < len(self.markets):
            raise OrderRejected("UNKNOWN_MARKET", f"no market {market}")
        ms = self.markets[market]
        p = ms.params
        if ms.halted:
            raise OrderRejected("MARKET_HALTED", f"{p.symbol} is halted")
        acct = self.account(account)
        if not self.replaying:
            self._take_token(acct, ts)
        oracle = ms.oracle_price
        signed_price = price  # a market order matches inside the cap and settles as signed
        if is_market:
            if oracle <= 0:
                raise OrderRejected("NO_ORACLE_PRICE", f"{p.symbol} has no oracle price")
            cap = oracle * self.limits.market_slippage_bps // BPS
            capped = (oracle + cap) // p.tick_size * p.tick_size if is_buy else -(-(oracle - cap) // p.tick_size) * p.tick_size
            # A signed limit (the chain checks it) stays the bound when it is the tighter one.
            price = capped if price <= 0 else (min(price, capped) if is_buy else max(price, capped))
            tif = IOC
        if size <= 0:
            raise OrderRejected("INVALID_SIZE", "size must be positive")
        if price <= 0:
            raise OrderRejected("INVALID_PRICE", "price must be positive")
        if price % p.tick_size:
            raise OrderRejected("TICK_SIZE", f"price {price} is not a multiple of the tick {p.tick_size}")
        if size % p.lot_size:
            raise OrderRejected("LOT_SIZE", f"size {size} is not a multiple of the lot {p.lot_size}")
        if size * price // 100_000_000 < p.min_notional:
            raise OrderRejected("MIN_NOTIONAL", f"notional below the minimum {p.min_notional}")
        if oracle <= 0:
            raise OrderRejected("NO_ORACLE_PRICE", f"{p.symbol} has no oracle price")
        if abs(price - oracle) * BPS > oracle * p.band_bps:
            raise OrderRejected("PRICE_BAND", f"price {price} is more than {p.band_bps} bps from the oracle {oracle}")
        if expiry and expiry <= ts:
            raise OrderRejected("EXPIRED", "expiry is in the past")
        if client_id is not None and (account, client_id) in self.client_ids:
            raise OrderRejected("DUPLICATE_CLIENT_ID", f"client order id {client_id!r} is live")
        book = self.books[market]
        opposite = book.asks if is_buy else book.bids
        best = opposite.prices
        crosses = bool(best) and (price >= best[0] if is_buy else price <= best[-1])
        if flags & FLAG_POST_ONLY and crosses:
            raise OrderRejected("POST_ONLY_WOULD_CROSS", "post-only order would take liquidity")
        pos = acct.positions[market][0]
        if flags & FLAG_REDUCE_ONLY:
            if pos == 0 or (pos > 0) == is_buy or size > abs(pos):
                raise OrderRejected("REDUCE_ONLY", "reduce-only order would open or grow a position")
        if tif == GTC and not crosses and acct.open_orders >= self.limits.max_open_orders:
            raise OrderRejected("TOO_MANY_OPEN_ORDERS", f"at most {self.limits.max_open_orders} open orders")
        if tif == FOK and self._fillable(book, account, is_buy, price, stp) < size:
            raise OrderRejected("FOK_NOT_FILLED", "fill-or-kill order cannot fill completely")
        if self.limits.check_margin and not flags & FLAG_REDUCE_ONLY:
            self._check_margin(acct, market, is_buy, size)
        if self.limits.check_margin:
            self._check_closing(acct, market, is_buy, price, size)

        # A market order matches inside the cap (`price`) and settles as signed (it never rests).
        order = Order(self.next_order_id, account, market, is_buy, signed_price if is_market else price, size, flags,
                      client_id, stp, expiry, 0, nonce, signature)
        self.next_order_id += 1
        self._log("place", (ts, account, market, is_buy, signed_price, size, tif, flags, client_id, stp, expiry,
                            is_market, nonce, signature))
        fills, self_traded = self._match(book, order, ts, price) if crosses else ([], False)
        if self_traded:
            return Ack(order.id, CANCELLED, order.filled, order.remaining, fills, "self_trade")
        if order.remaining == 0:
            return Ack(order.id, FILLED, order.filled, 0, fills)
        if tif == GTC:
            self._rest(book, order, acct)
            return Ack(order.id, RESTING, order.filled, order.remaining, fills)
        return Ack(order.id, CANCELLED, order.filled, order.remaining, fills, "ioc")

    def cancel(self, ts: int, account: str, order_id: int | None = None, client_id: str | None = None) -> Order:
        self._advance(ts)
        if order_id is None:
            order_id = self.client_ids.get((account, client_id))
        order = self.orders.get(order_id) if order_id is not None else None
        if order is None or order.account != account:
            raise UnknownOrder("UNKNOWN_ORDER", f"no open order {order_id if client_id is None else client_id!r}")
        self._log("cancel", (ts, account, order.id))
        self._remove(order, "cancelled")
        return order

    def cancel_all(self, ts: int, account: str, market: int | None = None) -> list[Order]:
        self._advance(ts)
        if market is not None and (market.__class__ is not int or not 0 <= market < len(self.markets)):
            raise OrderRejected("UNKNOWN_MARKET", f"no market {market}")  # before the journal: replay takes it
        self._log("cancel_all", (ts, account, market))
        return self._cancel_all(account, market, "cancelled")

    def modify(self, ts: int, account: str, order_id: int, price: int, size: int) -> Ack:
        """Same price and a smaller size keep queue priority; anything else re-enters the queue."""
        self._advance(ts)
        order = self.orders.get(order_id) if order_id.__class__ is int and 0 < order_id < _LIMIT else None
        if order is None or order.account != account:
            raise UnknownOrder("UNKNOWN_ORDER", f"no open order {order_id}")
        if not (-_LIMIT < price < _LIMIT and -_LIMIT < size < _LIMIT):
            raise OrderRejected("OUT_OF_RANGE", "price, size or expiry out of range")
        if price == order.price and 0 < size <= order.remaining:
            p = self.markets[order.market].params
            if size % p.lot_size:
                raise OrderRejected("LOT_SIZE", f"size {size} is not a multiple of the lot {p.lot_size}")
            self._log("modify", (ts, account, order_id, price, size))
            delta = order.remaining - size
            order.remaining = size  # `size` stays the signed size: what settles is still bounded by it
            self.books[order.market].side(order.is_buy).levels[price].size -= delta
            acct = self.accounts[account]
            if order.is_buy:
                acct.open_buy[order.market] -= delta
            else:
                acct.open_sell[order.market] -= delta
            self._emit(("order", order, "modified"))
            return Ack(order.id, RESTING, order.filled, order.remaining)
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
        acct = self.account(account)
        acct.deadman_at = at
        if at:
            heapq.heappush(self.deadmen, (at, account))

    def tick(self, ts: int) -> None:
        """Advances time: expires orders and fires dead-man's switches due by `ts`."""
        self._advance(ts)

    # ------------------------------------------------------------------ settlement feedback
    def on_fill_rejected(self, ts: int, fill_seq: int, maker_order_id: int, maker_still_valid: bool,
                         size: int, market: int, maker: str, taker: str, price: int, taker_is_buy: bool) -> None:
        """Unwinds a fill the chain refused: positions revert, and the maker's size comes back to
        the book when its order is still valid and live, otherwise the order is cancelled."""
        self._log("unwind", (ts, fill_seq, maker_order_id, maker_still_valid, size, market, maker, taker, price,
                             taker_is_buy))
        delta = size if taker_is_buy else -size
        for address, d in ((taker, -delta), (maker, delta)):
            acct = self.account(address)
            pos = acct.positions[market]
            pos[0], pos[1], _ = apply_trade(pos[0], pos[1], d, d * price // 100_000_000)
        order = self.orders.get(maker_order_id)
        if order is None:
            return
        if maker_still_valid:
            order.remaining += size
            order.filled -= size
            side = self.books[market].side(order.is_buy)
            side.levels[order.price].size += size
            acct = self.accounts[order.account]
            if order.is_buy:
                acct.open_buy[market] += size
            else:
                acct.open_sell[market] += size
        else:
            self._remove(order, "rejected_on_chain")

    # ------------------------------------------------------------------ internals
    def _advance(self, ts: int) -> None:
        if ts > self.now:
            self.now = ts
        exp = self.expiries
        if (exp and exp[0][0] <= ts) or (self.deadmen and self.deadmen[0][0] <= ts):
            self._log("tick", (ts,))  # what fires now must fire at the same point on replay
        while exp and exp[0][0] <= ts:
            _, oid = heapq.heappop(exp)
            order = self.orders.get(oid)
            if order is not None and order.expiry and order.expiry <= ts:
                self._remove(order, "expired")
        dm = self.deadmen
        while dm and dm[0][0] <= ts:
            at, address = heapq.heappop(dm)
            if self.accounts[address].deadman_at == at:
                self.accounts[address].deadman_at = 0
                self._cancel_all(address, None, "dead_mans_switch")

    def _take_token(self, acct: AccountState, ts: int) -> None:
        lim = self.limits
        if acct.token_ts >= 0:
            acct.tokens = min(lim.burst, acct.tokens + (ts - acct.token_ts) * lim.rate_per_s // 1000)
        acct.token_ts = ts
        if acct.tokens <= 0:
            raise RateLimited("RATE_LIMITED", f"more than {lim.rate_per_s} orders per second")
        acct.tokens -= 1

    def _fillable(self, book: Book, account: str, is_buy: bool, price: int, stp: int) -> int:
        side = book.asks if is_buy else book.bids
        total = 0
        prices = side.prices if is_buy else reversed(side.prices)
        for p in prices:
            if (p > price) if is_buy else (p < price):
                break
            for o in side.levels[p].orders:
                if o.live and o.account != account:
                    total += o.remaining
        return total

    def _check_margin(self, acct: AccountState, market: int, is_buy: bool, size: int) -> None:
        """Initial margin with the worst case of open orders: each market's position if every
        open buy (or every open sell) filled, valued at the oracle price. Mirrors MarginLib."""
        equity = acct.collateral - acct.fees
        raw = 0
        positions = acct.positions
        group = self.markets[market].params.exposure_group
        exposure, grew = 0, False
        for m, ms in enumerate(self.markets):
            pos, basis = positions[m]
            buys = acct.open_buy[m] + (size if m == market and is_buy else 0)
            sells = acct.open_sell[m] + (size if m == market and not is_buy else 0)
            if not (pos or buys or sells):
                continue
            mark = ms.oracle_price
            if pos:
                equity += position_value(pos, mark) - basis
            worst = max(abs(pos + buys), abs(pos - sells))
            p = ms.params
            raw += margin_raw(notional_up(worst, mark), p.tier_cap_1, p.im_bps_1, p.im_bps_2)
            if group and p.exposure_group == group:
                exposure += notional_up(worst, mark)
            if m == market:
                grew = risk_grew(pos, pos + buys if is_buy else pos - sells)
        required = initial_margin(raw)
        if equity < required:
            raise OrderRejected("INSUFFICIENT_MARGIN", f"equity {equity} below initial margin {required} "
                                                       "with open orders")
        p = self.markets[market].params
        if grew and group and exposure > p.exposure_cap:
            raise OrderRejected("EXPOSURE_CAP", exposure_message(p, exposure, p.exposure_cap))

    def _check_closing(self, acct: AccountState, market: int, is_buy: bool, price: int, size: int) -> None:
        """The contracts' closing rule (risk.closing_rule_holds) for the part of an order that
        reduces the position, filled whole at its limit price and paying the taker fee: the worst
        case, since equity - maintenance margin is linear in the size filled and a better price
        or the maker fee only helps. Positions and collateral include fills not yet settled."""
        pos, basis = acct.positions[market]
        if pos == 0 or (pos > 0) == is_buy:
            return
        equity = acct.collateral - acct.fees
        raw = 0
        for m, ms in enumerate(self.markets):
            size_m, basis_m = acct.positions[m]
            if size_m:
                p = ms.params
                equity += position_value(size_m, ms.oracle_price) - basis_m
                raw += margin_raw(notional_up(abs(size_m), ms.oracle_price), p.tier_cap_1, p.im_bps_1, p.im_bps_2)
        ms = self.markets[market]
        p, mark = ms.params, ms.oracle_price
        qty = min(size, abs(pos))
        delta = -qty if pos > 0 else qty
        new_size, new_basis, realized = apply_trade(pos, basis, delta, delta * price // SIZE_SCALE)
        fee = taker_fee(qty * price // SIZE_SCALE, p.taker_fee_bps)
        equity_after = (equity - position_value(pos, mark) + basis + position_value(new_size, mark) - new_basis
                        + realized - fee)
        raw_after = (raw - margin_raw(notional_up(abs(pos), mark), p.tier_cap_1, p.im_bps_1, p.im_bps_2)
                     + margin_raw(notional_up(abs(new_size), mark), p.tier_cap_1, p.im_bps_1, p.im_bps_2))
        before = Health(equity, initial_margin(raw), maintenance_margin(raw))
        after = Health(equity_after, initial_margin(raw_after), maintenance_margin(raw_after))
        if not closing_rule_holds(before, after):
            raise OrderRejected("MAINTENANCE_WORSENED", closing_message(price, equity_after, after.maintenance_margin))

    def _match(self, book: Book, taker: Order, ts: int, limit: int | None = None) -> tuple[list[Fill], bool]:
        """Fills `taker` against the opposite side in price-time order. Returns the fills and
        whether self-trade prevention cancelled the taker."""
        fills = []
        is_buy = taker.is_buy
        side = book.asks if is_buy else book.bids
        prices = side.prices
        levels = side.levels
        limit = taker.price if limit is None else limit
        market = taker.market
        while taker.remaining and prices:
            best_price = prices[0] if is_buy else prices[-1]
            if (best_price > limit) if is_buy else (best_price < limit):
                break
            level = levels[best_price]
            queue = level.orders
            while taker.remaining and queue:
                maker = queue[0]
                if not maker.live:
                    queue.popleft()
                    continue
                if maker.account == taker.account:
                    mode = taker.stp
                    if mode == STP_EXPIRE_MAKER:
                        self._remove(maker, "self_trade")
                        queue.popleft()
                        if level.count == 0:
                            break
                        continue
                    if mode == STP_CANCEL_BOTH:
                        self._remove(maker, "self_trade")
                        queue.popleft()
                    return fills, True
                qty = taker.remaining if taker.remaining < maker.remaining else maker.remaining
                maker.remaining -= qty
                maker.filled += qty
                taker.remaining -= qty
                taker.filled += qty
                level.size -= qty
                fill = Fill(self.next_fill_seq, market, best_price, qty, is_buy, ts, maker, taker,
                            maker.filled, taker.filled)
                self.next_fill_seq += 1
                fills.append(fill)
                self._apply_fill(fill)
                if self.journal is not None and not self.replaying:
                    self.journal.append_fill(fill)
                if maker.remaining == 0:
                    queue.popleft()
                    self._remove(maker, None, filled=True)
        return fills, False

    def _apply_fill(self, fill: Fill) -> None:
        """Pending position and fee changes of a fill, for pre-trade risk until it settles."""
        p = self.markets[fill.market].params
        notional = fill.size * fill.price // 100_000_000
        delta = fill.size if fill.taker_is_buy else -fill.size
        quote = delta * fill.price // 100_000_000
        taker = self.accounts[fill.taker.account]
        maker = self.account(fill.maker.account)
        tp = taker.positions[fill.market]
        tp[0], tp[1], realized = apply_trade(tp[0], tp[1], delta, quote)
        taker.collateral += realized
        taker.fees += -(-notional * p.taker_fee_bps // BPS)
        mp = maker.positions[fill.market]
        mp[0], mp[1], realized = apply_trade(mp[0], mp[1], -delta, -quote)
        maker.collateral += realized
        mf = p.maker_fee_bps
        maker.fees += -(-notional * mf // BPS) if mf >= 0 else -(notional * -mf // BPS)
        if fill.maker.is_buy:
            maker.open_buy[fill.market] -= fill.size
        else:
            maker.open_sell[fill.market] -= fill.size
        for listener in self.listeners:
            listener(("fill", fill))

    def _rest(self, book: Book, order: Order, acct: AccountState) -> None:
        book.side(order.is_buy).add(order)
        self.orders[order.id] = order
        if order.client_id is not None:
            self.client_ids[(order.account, order.client_id)] = order.id
        acct.open_orders += 1
        if order.is_buy:
            acct.open_buy[order.market] += order.remaining
        else:
            acct.open_sell[order.market] += order.remaining
        if order.expiry:
            heapq.heappush(self.expiries, (order.expiry, order.id))
        if self.listeners:
            self._emit(("order", order, RESTING))

    def _remove(self, order: Order, reason: str | None, filled: bool = False) -> None:
        """Takes a live order out of the book (filled, cancelled, expired, ...)."""
        side = self.books[order.market].side(order.is_buy)
        side.remove(order)
        del self.orders[order.id]
        if order.client_id is not None:
            self.client_ids.pop((order.account, order.client_id), None)
        acct = self.accounts[order.account]
        acct.open_orders -= 1
        if not filled:
            if order.is_buy:
                acct.open_buy[order.market] -= order.remaining
            else:
                acct.open_sell[order.market] -= order.remaining
        if self.listeners:
            self._emit(("order", order, FILLED if filled else reason))

    def _cancel_all(self, account: str, market: int | None, reason: str) -> list[Order]:
        victims = [o for o in self.orders.values() if o.account == account and (market is None or o.market == market)]
        for o in victims:
            self._remove(o, reason)
        return victims

    def _emit(self, event) -> None:
        for listener in self.listeners:
            listener(event)

    def _log(self, kind: str, args: tuple) -> None:
        if self.journal is not None and not self.replaying:
            self.journal.append(kind, args)

    # ------------------------------------------------------------------ inspection
    def state_hash(self) -> str:
        """A digest of everything that decides future matching: every resting order in queue
        order, the id counters, pending positions and fees."""
        h = hashlib.sha256()
        h.update(f"{self.next_order_id}|{self.next_fill_seq}".encode())
        for book in self.books:
            for side in (book.bids, book.asks):
                for price in side.prices:
                    for o in side.levels[price].orders:
                        if o.live:
                            h.update(f"{o.id},{o.account},{o.is_buy},{o.price},{o.remaining},{o.filled};".encode())
        for address in sorted(self.accounts):
            a = self.accounts[address]
            if not (a.collateral or a.fees or a.deadman_at or any(p[0] or p[1] for p in a.positions)):
                continue  # accounts that never held anything (e.g. only sent rejected orders)
            h.update(f"{address}:{a.collateral}:{a.positions}:{a.fees}:{a.deadman_at}".encode())
        return h.hexdigest()

    def open_orders(self, account: str) -> list[Order]:
        return [o for o in self.orders.values() if o.account == account]

    def l2(self, market: int, depth: int = 20) -> tuple[list, list]:
        book = self.books[market]
        return book.bids.depth(depth), book.asks.depth(depth)
