"""Hyperliquid-compatible API, read side: `POST /hl/info` in Hyperliquid's request and response
shapes, so the official Python SDK's `Info` (and ccxt's market loading) run unchanged against
a local crossbook with `base_url = http://127.0.0.1:8000/hl`.

Mapping (../shared/reference/hyperliquid-api.md §6): a Hyperliquid asset id is the crossbook
market id; its name is the symbol without `-PERP` (`ETH-PERP` -> `ETH`), so a newly listed market
appears by itself; `szDecimals` = 8 - log10(lot size); `maxLeverage` = 10,000 / the first tier's
initial margin in bps. Prices and sizes go out as plain decimal strings (USDC, base units).
Positions come from the engine's mirror of the account, which includes fills matched and not yet
settled (a fill shows as soon as it is matched, as on Hyperliquid); equity and margins from the
ClearingHouse's views.

Fills (`userFills`, `userFillsByTime`, `candleSnapshot`) come from the fills the venue holds in
memory (VENUE_FILLS_IN_MEMORY); funding (`fundingHistory`, `userFunding`) from the chain's
FundingUpdated events, a payment being the account's settled position before the update times
the index move. `/exchange` is venue/hl_exchange.py. Not built yet (issue 19 stays open): the
`/hl/ws` websocket and TP/SL trigger orders. Info types crossbook does not serve answer 400
`UNSUPPORTED`.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from . import risk
from .domain import QUOTE_DECIMALS, SIZE_SCALE
from .engine import EngineError, OrderRejected

# crossbook order states -> Hyperliquid's orderStatus states
STATUS = {"resting": "open", "partially_filled": "open", "modified": "open", "filled": "filled",
          "cancelled": "canceled", "expired": "canceled", "dead_mans_switch": "scheduledCancel",
          "self_trade": "selfTradeCanceled", "rejected": "rejected", "rejected_on_chain": "rejected"}


ZERO_HASH = "0x" + "0" * 64  # a fill matched and not yet settled (Hyperliquid's hash of a funding row)
_MIN = 60_000
INTERVALS = {"1m": _MIN, "3m": 3 * _MIN, "5m": 5 * _MIN, "15m": 15 * _MIN, "30m": 30 * _MIN, "1h": 60 * _MIN,
             "2h": 120 * _MIN, "4h": 240 * _MIN, "8h": 480 * _MIN, "12h": 720 * _MIN, "1d": 1_440 * _MIN,
             "3d": 4_320 * _MIN, "1w": 10_080 * _MIN, "1M": 43_200 * _MIN}


TRIGGER_STATUS = {"waiting": "open", "triggered": "triggered", "cancelled": "canceled", "rejected": "rejected"}


class Unsupported(EngineError):
    status = 400


def dec(value: int, scale: int) -> str:
    """An integer amount of 10^-scale units as Hyperliquid writes numbers: a plain decimal string,
    no exponent, no trailing zeros ("3001.5", "0.25", "0")."""
    d = (Decimal(value) / (10 ** scale)).normalize()
    text = format(d, "f")
    return "0" if text in ("-0", "") else text


def px(value: int) -> str:
    return dec(value, QUOTE_DECIMALS)


def sz(value: int) -> str:
    return dec(value, 8)


def coin(symbol: str) -> str:
    return symbol.removesuffix("-PERP")


def sz_decimals(lot_size: int) -> int:
    """8 - log10(lot) for a lot that is a power of ten (every crossbook market's); for any other
    lot, the decimals of the largest power of ten below it (sizes must still be whole lots)."""
    return 8 - (len(str(lot_size)) - 1)


class HlInfo:
    """Answers `/info` requests from the venue's state (`venue`: a `Venue`)."""

    def __init__(self, venue):
        self.venue = venue

    # ------------------------------------------------------------------ markets
    def coins(self) -> dict[str, int]:
        return {coin(p.symbol): m for m, p in enumerate(self.venue.markets)}

    def market_of(self, name) -> int:
        m = self.coins().get(str(name).upper())
        if m is None:
            raise Unsupported("UNKNOWN_COIN", f"no coin {str(name)[:20]!r} (coins: {', '.join(self.coins())})")
        return m

    def meta(self) -> dict:
        return {"universe": [{"name": coin(p.symbol), "szDecimals": sz_decimals(p.lot_size),
                              "maxLeverage": 10_000 // p.im_bps_1, "onlyIsolated": False}
                             for p in self.venue.markets]}

    def mid(self, m: int) -> int | None:
        bids, asks = self.venue.engine.l2(m, 1)
        return (bids[0][0] + asks[0][0]) // 2 if bids and asks else None

    def all_mids(self) -> dict:
        """Each coin's book mid; the oracle price where the book is one-sided (Hyperliquid
        always lists every perp)."""
        out = {}
        for m, p in enumerate(self.venue.markets):
            mid = self.mid(m)
            out[coin(p.symbol)] = px(mid if mid is not None else int(self.venue.engine.markets[m].oracle_price))
        return out

    def l2_book(self, name) -> dict:
        m = self.market_of(name)
        bids, asks = self.venue.engine.l2(m, 20)
        counts: dict[tuple[bool, int], int] = {}
        wanted = {(True, p) for p, _ in bids} | {(False, p) for p, _ in asks}
        for o in self.venue.engine.orders.values():  # how many orders make each shown level
            if o.market == m and (o.is_buy, o.price) in wanted:
                counts[(o.is_buy, o.price)] = counts.get((o.is_buy, o.price), 0) + 1
        return {"coin": coin(self.venue.markets[m].symbol), "time": self.venue.now_ms(),
                "levels": [[{"px": px(p), "sz": sz(s), "n": counts.get((side, p), 1)} for p, s in levels]
                           for side, levels in ((True, bids), (False, asks))]}

    def asset_ctxs(self) -> list[dict]:
        snap = self.venue.last_snapshot
        views = snap["markets"] if snap else [None] * len(self.venue.markets)
        out = []
        for m, p in enumerate(self.venue.markets):
            oracle = int(self.venue.engine.markets[m].oracle_price)
            mid = self.mid(m)
            bids, asks = self.venue.engine.l2(m, 1)
            view = views[m]
            rate = view["lastFundingRate"] if view else 0
            out.append({"coin": coin(p.symbol), "markPx": px(oracle), "oraclePx": px(oracle),
                        "midPx": None if mid is None else px(mid),
                        "impactPxs": [px(bids[0][0]), px(asks[0][0])] if bids and asks else None,
                        "funding": dec(rate, 18), "premium": None if mid is None else dec((mid - oracle) * 10**6 // oracle, 6),
                        "openInterest": sz(view["openInterest"]) if view else "0",
                        "dayNtlVlm": px(sum(f.price * f.size // SIZE_SCALE for f in self.venue.trades[m])),
                        "dayBaseVlm": sz(sum(f.size for f in self.venue.trades[m])), "prevDayPx": px(oracle)})
        return out

    # ------------------------------------------------------------------ accounts
    async def clearinghouse_state(self, user: str) -> dict:
        v = self.venue
        (quote, weth_wei, _), (equity, im, mm), views = await v.chain_view(user)
        acct = v.engine.accounts.get(user)
        prices = {m: int(ms.oracle_price) for m, ms in enumerate(v.engine.markets)}
        liquidation = risk.position_liquidation_prices(quote, weth_wei, views, prices, v.markets, v.eth_price,
                                                       v.haircut, v.weth_oracle_id)
        positions, total_ntl = [], 0
        for m, p in enumerate(v.markets):
            size, cost = (acct.positions[m] if acct is not None else views[m][:2])
            if not size:
                continue
            value = abs(size) * prices[m] // SIZE_SCALE
            total_ntl += value
            liq = liquidation.get(m)
            positions.append({"type": "oneWay", "position": {
                "coin": coin(p.symbol), "szi": sz(size), "entryPx": px(abs(cost) * SIZE_SCALE // abs(size)),
                "positionValue": px(value), "unrealizedPnl": px(size * prices[m] // SIZE_SCALE - cost),
                "returnOnEquity": dec((size * prices[m] // SIZE_SCALE - cost) * 10**6 // max(1, abs(cost)), 6),
                "liquidationPx": None if liq is None else px(liq),
                "leverage": {"type": "cross", "value": v.hl.leverage.get((user, m), 10_000 // p.im_bps_1)},
                "marginUsed": px(value * p.im_bps_1 // 10_000), "maxLeverage": 10_000 // p.im_bps_1,
                "cumFunding": {"allTime": px(views[m][4]), "sinceOpen": px(views[m][4]), "sinceChange": px(views[m][4])}}})
        summary = {"accountValue": px(equity), "totalNtlPos": px(total_ntl), "totalRawUsd": px(quote),
                   "totalMarginUsed": px(im)}
        return {"assetPositions": positions, "marginSummary": summary, "crossMarginSummary": dict(summary),
                "crossMaintenanceMarginUsed": px(mm),
                "withdrawable": px(max(0, min(quote, equity - im))), "time": v.now_ms()}

    def order_json(self, order_id: int, state: tuple, frontend: bool) -> dict:
        account, market, is_buy, price, size, remaining, filled, cid, nonce, status = state
        placed = self.venue.order_times.get(order_id, (0, 0))[0]
        out = {"coin": coin(self.venue.markets[market].symbol), "side": "B" if is_buy else "A", "limitPx": px(price),
               "sz": sz(remaining), "oid": order_id, "timestamp": placed, "origSz": sz(size)}
        if cid is not None:
            out["cloid"] = cid
        if frontend:
            order = self.venue.engine.orders.get(order_id)
            flags = order.flags if order is not None else 0
            out.update({"children": [], "isPositionTpsl": False, "isTrigger": False, "orderType": "Limit",
                        "reduceOnly": bool(flags & 4), "tif": "Alo" if flags & 1 else "Ioc" if flags & 2 else "Gtc",
                        "triggerCondition": "N/A", "triggerPx": "0.0", "cloid": cid})
        return out

    def trigger_json(self, t, frontend: bool) -> dict:
        """A trigger order (venue/triggers.py) as Hyperliquid shows one: its oid is the trigger id."""
        o = t.order
        out = {"coin": coin(self.venue.markets[o.market].symbol), "side": "B" if o.is_buy else "A",
               "limitPx": px(o.price), "sz": sz(o.size), "oid": t.id, "timestamp": t.placed, "origSz": sz(o.size)}
        if t.client_id is not None:
            out["cloid"] = t.client_id
        if frontend:
            out.update({"children": [], "isPositionTpsl": t.attached, "isTrigger": True,
                        "orderType": ("Take Profit" if t.tpsl == "tp" else "Stop") + (" Market" if t.is_market
                                                                                     else " Limit"),
                        "reduceOnly": bool(o.flags & 4), "tif": None if t.is_market else "Gtc",
                        "triggerCondition": f"Price {t.condition()} {px(t.trigger_price)}",
                        "triggerPx": px(t.trigger_price), "cloid": t.client_id})
        return out

    def open_orders(self, user: str, frontend: bool) -> list[dict]:
        states = self.venue.order_states
        out = [self.trigger_json(t, frontend) for t in self.venue.triggers.of(user)]
        for o in self.venue.engine.open_orders(user):
            state = states.get(o.id) or (o.account, o.market, o.is_buy, o.price, o.size, o.remaining, o.filled,
                                         o.client_id, o.nonce, "resting")
            state = (*state[:5], o.remaining, *state[6:])
            out.append(self.order_json(o.id, state, frontend))
        return list(reversed(out))  # newest first, as Hyperliquid lists them

    def order_status(self, user: str, oid) -> dict:
        """By oid (an integer) or by cloid (a "0x" string), finished orders included."""
        v = self.venue
        try:
            if isinstance(oid, str):
                t = v.triggers.by_client_id(user, oid.lower())
                order_id = t.id if t is not None else (v.client_orders.get((user, oid))
                                                         or v.client_orders.get((user, oid.lower())))
            else:
                order_id = int(oid)
        except (TypeError, ValueError):
            return {"status": "unknownOid"}
        t = v.triggers.get(order_id) if order_id is not None else None
        if t is not None and t.order.account == user:
            return {"status": "order", "order": {"order": self.trigger_json(t, True), "status": TRIGGER_STATUS[t.status],
                                                 "statusTimestamp": t.ended or t.placed}}
        state = v.order_states.get(order_id) if order_id is not None else None
        if state is None or state[0] != user:
            order = v.engine.orders.get(order_id) if order_id is not None else None
            if order is None or order.account != user:
                return {"status": "unknownOid"}
            state = (order.account, order.market, order.is_buy, order.price, order.size, order.remaining,
                     order.filled, order.client_id, order.nonce, "resting")
        return {"status": "order", "order": {"order": self.order_json(order_id, state, True),
                                             "status": STATUS.get(state[9], state[9]),
                                             "statusTimestamp": v.order_times.get(order_id, (0, 0))[1]}}

    # ------------------------------------------------------------------ history
    def fill_json(self, user: str, rec) -> dict:
        """A fill as Hyperliquid's userFills entry, from `user`'s side."""
        f = rec.fill
        taker = f.taker.account == user
        is_buy = f.taker_is_buy if taker else not f.taker_is_buy
        start, realized = rec.basis[2:4] if taker else rec.basis[0:2]
        p = self.venue.markets[f.market]
        notional = f.price * f.size // SIZE_SCALE
        fee = risk.taker_fee(notional, p.taker_fee_bps) if taker else risk.maker_fee(notional, p.maker_fee_bps)
        signed = f.size if is_buy else -f.size
        if start == 0 or (start > 0) == is_buy:
            direction = "Open Long" if is_buy else "Open Short"
        elif abs(signed) <= abs(start):
            direction = "Close Short" if is_buy else "Close Long"
        else:
            direction = "Short > Long" if is_buy else "Long > Short"
        return {"coin": coin(p.symbol), "px": px(f.price), "sz": sz(f.size), "side": "B" if is_buy else "A",
                "time": f.ts, "startPosition": sz(start), "dir": direction, "closedPnl": px(realized),
                "hash": rec.tx_hash if rec.status == "settled" and rec.tx_hash else ZERO_HASH,
                "oid": f.taker.id if taker else f.maker.id, "crossed": taker, "fee": px(fee), "tid": f.seq,
                "feeToken": "USDC"}

    def user_fills(self, user: str, start: int | None = None, end: int | None = None, limit: int = 2000) -> list:
        """The account's fills newest first (up to 2,000; those the venue still holds in memory),
        a fill from the moment it is matched; a fill the chain refused was unwound and is left out."""
        out = []
        for rec in reversed(self.venue.account_fills(user)):
            ts = rec.fill.ts
            if start is not None and ts < start:
                break
            if rec.status == "rejected" or (end is not None and ts > end):
                continue
            out.append(self.fill_json(user, rec))
            if len(out) >= limit:
                break
        return out

    async def funding_events(self, market: int, start: int, end: int | None) -> list:
        """The market's FundingUpdated events from the chain, oldest first: (time ms, rate per
        hour (1e18), index, block)."""
        ch = self.venue.ch

        def read():
            return ch.events.FundingUpdated().get_logs(from_block=0, argument_filters={"marketId": market})
        out = []
        for ev in await asyncio.to_thread(read):
            ts = ev.args.timestamp * 1000
            if ts >= start and (end is None or ts <= end):
                out.append((ts, ev.args.ratePerHour, ev.args.fundingIndex, ev.blockNumber, ev.transactionHash))
        return out

    async def funding_history(self, name, start, end) -> list:
        m = self.market_of(name)
        return [{"coin": coin(self.venue.markets[m].symbol), "fundingRate": dec(rate, 18), "premium": "0",
                 "time": ts} for ts, rate, _, _, _ in await self.funding_events(m, self.ms(start, "startTime"),
                                                                                 self.ms(end, "endTime", True))]

    async def user_funding(self, user: str, start, end) -> list:
        """Each funding update that moved the account's payment, with what it paid (negative) or
        got: its settled position just before the update times the index move (the
        ClearingHouse's funding_owed, rounded against the account)."""
        v = self.venue
        start, end = self.ms(start, "startTime"), self.ms(end, "endTime", True)
        out = []
        for m, p in enumerate(v.markets):
            events = await self.funding_events(m, 0, end)
            previous_index = [0] + [e[2] for e in events]  # a market is listed with index 0
            for previous, (ts, rate, index, block, tx) in zip(previous_index, events):
                if ts < start or index == previous:
                    continue
                size = (await asyncio.to_thread(v.ch.functions.position(user, m).call, block_identifier=block - 1))[0]
                if size:
                    out.append({"time": ts, "hash": tx.to_0x_hex(), "delta": {
                        "type": "funding", "coin": coin(p.symbol), "usdc": px(-risk.funding_owed(size, index, previous)),
                        "szi": sz(size), "fundingRate": dec(rate, 18), "nSamples": None}})
        return sorted(out, key=lambda e: e["time"])

    def candles(self, name, interval, start, end) -> list:
        """OHLCV candles of the venue's trades still in memory (`candleSnapshot`)."""
        m = self.market_of(name)
        width = INTERVALS.get(interval)
        if width is None:
            raise Unsupported("INVALID_INTERVAL", f"interval {str(interval)[:10]!r}: one of {', '.join(INTERVALS)}")
        start, end = self.ms(start, "startTime"), self.ms(end, "endTime", True)
        bars: dict[int, dict] = {}
        for rec in self.venue.fills.values():
            f = rec.fill
            if f.market != m or f.ts < start or (end is not None and f.ts > end) or rec.status == "rejected":
                continue
            t = f.ts - f.ts % width
            bar = bars.get(t)
            if bar is None:
                bars[t] = bar = {"t": t, "T": t + width - 1, "s": coin(self.venue.markets[m].symbol), "i": interval,
                                 "o": f.price, "c": f.price, "h": f.price, "l": f.price, "v": 0, "n": 0}
            bar["c"], bar["h"], bar["l"] = f.price, max(bar["h"], f.price), min(bar["l"], f.price)
            bar["v"] += f.size
            bar["n"] += 1
        return [{**b, "o": px(b["o"]), "c": px(b["c"]), "h": px(b["h"]), "l": px(b["l"]), "v": sz(b["v"])}
                for _, b in sorted(bars.items())]

    @staticmethod
    def ms(value, name: str, optional: bool = False) -> int | None:
        if value is None and optional:
            return None
        if value.__class__ is not int or not 0 <= value < 2**63:
            raise OrderRejected("INVALID_REQUEST", f"{name}: milliseconds since the epoch, an integer")
        return value

    # ------------------------------------------------------------------ dispatch
    async def answer(self, body: dict):
        kind = body.get("type")
        user = body.get("user")
        if kind in ("clearinghouseState", "openOrders", "frontendOpenOrders", "orderStatus", "spotClearinghouseState",
                    "userFills", "userFillsByTime", "userFunding"):
            user = self.user(user)
        if kind == "meta":
            return self.meta()
        if kind == "spotMeta":
            return {"universe": [], "tokens": []}
        if kind == "metaAndAssetCtxs":
            return [self.meta(), [{k: v for k, v in c.items() if k != "coin"} for c in self.asset_ctxs()]]
        if kind == "spotMetaAndAssetCtxs":
            return [{"universe": [], "tokens": []}, []]
        if kind == "perpDexs":
            return [None]
        if kind == "allMids":
            return self.all_mids()
        if kind == "l2Book":
            return self.l2_book(body.get("coin"))
        if kind == "clearinghouseState":
            return await self.clearinghouse_state(user)
        if kind == "spotClearinghouseState":
            return {"balances": []}
        if kind in ("openOrders", "frontendOpenOrders"):
            return self.open_orders(user, kind == "frontendOpenOrders")
        if kind == "orderStatus":
            return self.order_status(user, body.get("oid"))
        if kind == "userFills":
            return self.user_fills(user)
        if kind == "userFillsByTime":
            return self.user_fills(user, self.ms(body.get("startTime"), "startTime"),
                                   self.ms(body.get("endTime"), "endTime", True))
        if kind == "userFunding":
            return await self.user_funding(user, body.get("startTime"), body.get("endTime"))
        if kind == "fundingHistory":
            return await self.funding_history(body.get("coin"), body.get("startTime"), body.get("endTime"))
        if kind == "candleSnapshot":
            req = body.get("req") if isinstance(body.get("req"), dict) else {}
            return self.candles(req.get("coin"), req.get("interval"), req.get("startTime"), req.get("endTime"))
        raise Unsupported("UNSUPPORTED", f"info type {str(kind)[:40]!r} is not supported by crossbook")

    @staticmethod
    def user(value) -> str:
        from .signing import AddressError, checksum_address

        try:
            return checksum_address(str(value))
        except AddressError as exc:
            raise OrderRejected("INVALID_ADDRESS", f"user: {exc}") from None
