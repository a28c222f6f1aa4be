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

Not built yet (issue 19 stays open): `/hl/exchange` (orders, cancels, modifications, agents,
the gateway key and its on-chain approval, evidence and `venue hl verify`; the signature
verification it needs is venue/hl_signing.py), the `/hl/ws`
websocket, `userFills`, `userFunding`, `fundingHistory`, `candleSnapshot`, TP/SL triggers.
Those info types answer 400 `UNSUPPORTED` like every other type crossbook does not serve.
"""

from __future__ import annotations

from decimal import Decimal

from . import risk
from .domain import QUOTE_DECIMALS, SIZE_SCALE
from .engine import EngineError, OrderRejected

# crossbook order states -> Hyperliquid's orderStatus states
STATUS = {"resting": "open", "partially_filled": "open", "modified": "open", "filled": "filled",
          "cancelled": "canceled", "expired": "canceled", "dead_mans_switch": "scheduledCancel",
          "self_trade": "selfTradeCanceled", "rejected": "rejected", "rejected_on_chain": "rejected"}


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

    def open_orders(self, user: str, frontend: bool) -> list[dict]:
        states = self.venue.order_states
        out = []
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
                order_id = v.client_orders.get((user, oid)) or v.client_orders.get((user, oid.lower()))
            else:
                order_id = int(oid)
        except (TypeError, ValueError):
            return {"status": "unknownOid"}
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

    # ------------------------------------------------------------------ dispatch
    async def answer(self, body: dict):
        kind = body.get("type")
        user = body.get("user")
        if kind in ("clearinghouseState", "openOrders", "frontendOpenOrders", "orderStatus", "spotClearinghouseState"):
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
        raise Unsupported("UNSUPPORTED", f"info type {str(kind)[:40]!r} is not supported by crossbook")

    @staticmethod
    def user(value) -> str:
        from .signing import AddressError, checksum_address

        try:
            return checksum_address(str(value))
        except AddressError as exc:
            raise OrderRejected("INVALID_ADDRESS", f"user: {exc}") from None
