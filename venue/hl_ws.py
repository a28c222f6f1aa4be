"""Hyperliquid's websocket (`/hl/ws`) on crossbook, in Hyperliquid's message shapes so the
official SDK's `Info(base_url, skip_ws=False).subscribe(...)` works unchanged
(../shared/reference/hyperliquid-api.md §4).

Subscriptions: `l2Book` {coin} (a full snapshot on subscribing and after every change, changes
coalesced over `FLUSH_S`), `bbo` {coin} and `allMids` (sent when they change), `trades` {coin},
`orderUpdates` {user}, `userEvents` {user} (channel `user`: fills as they are matched, and
`nonUserCancel` for orders the venue cancelled: dead-man's switch, guardian), `userFills` {user}
(a snapshot first, `isSnapshot: true`). `{"method": "ping"}` is answered `{"channel": "pong"}`;
every subscribe and unsubscribe is acknowledged on `subscriptionResponse`; a subscription the
venue cannot serve is answered on `error`, and the connection stays open.

One task writes to the socket: the venue's messages, the replies and the coalesced snapshots all
pass through the connection's queue (the venue's `Subscription`), which is bounded like `/ws`'s:
a reader that falls behind gets an `error` naming it and is closed (code 4008).
"""

from __future__ import annotations

import asyncio
import json

from starlette.websockets import WebSocket, WebSocketDisconnect

from .engine import EngineError
from .hl import STATUS, TRIGGER_STATUS, ZERO_HASH, HlInfo, coin, px, sz
from .service import LAGGED

FLUSH_S = 0.2
NON_USER_CANCELS = frozenset({"dead_mans_switch", "expired"})


class HlSocket:
    def __init__(self, venue, socket: WebSocket):
        self.venue, self.socket = venue, socket
        self.info = HlInfo(venue)
        self.books: set[int] = set()
        self.bbos: set[int] = set()
        self.trades: set[int] = set()
        self.mids = False
        self.order_user: tuple[str, str] | None = None  # (account, as subscribed)
        self.event_user: tuple[str, str] | None = None
        self.fill_users: dict[str, str] = {}  # account -> as subscribed
        self.dirty: set[int] = set()
        self.last_bbo: dict[int, list] = {}
        self.last_mids: dict | None = None
        self.sub = None

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        await self.socket.accept()
        await self.socket.send_text("Websocket connection established.")
        self.sub = self.venue.subscribe(None)
        reader = asyncio.create_task(self.read())
        flusher = asyncio.create_task(self.flush_loop())
        try:
            while (message := await self.sub.queue.get()) is not None:
                if message is LAGGED:
                    await self.send({"channel": "error", "data": "this connection fell behind the venue's messages "
                                                                 f"(more than {self.sub.limit} queued); reconnect"})
                    await self.socket.close(code=4008, reason="lagged")
                    break
                if isinstance(message, tuple):  # ("send", message) from the reader or the flusher
                    await self.send(message[1])
                else:
                    await self.route(message)
        except (WebSocketDisconnect, RuntimeError):  # the client left
            pass
        finally:
            self.venue.subscribers.discard(self.sub)
            reader.cancel()
            flusher.cancel()

    async def send(self, message) -> None:
        await self.socket.send_text(json.dumps(message, separators=(",", ":")))

    def reply(self, message: dict) -> None:
        self.sub.queue.put_nowait(("send", message))

    async def read(self) -> None:
        try:
            while (message := await self.socket.receive())["type"] != "websocket.disconnect":
                text = message.get("text")
                if text is None:
                    self.reply({"channel": "error", "data": "send JSON text frames"})
                    continue
                try:
                    self.handle(json.loads(text))
                except (ValueError, RecursionError):
                    self.reply({"channel": "error", "data": f"Invalid message: {text[:100]}"})
        finally:
            self.sub.close()

    async def flush_loop(self) -> None:
        """Coalesced book pushes: a full snapshot per changed subscribed book, bbo and mids
        when they changed, at most every FLUSH_S."""
        while True:
            await asyncio.sleep(FLUSH_S)
            if not self.dirty:
                continue
            dirty, self.dirty = self.dirty, set()
            for m in sorted(dirty):
                name = coin(self.venue.markets[m].symbol)
                if m in self.books:
                    self.reply({"channel": "l2Book", "data": self.info.l2_book(name)})
                if m in self.bbos:
                    self.push_bbo(m)
            if self.mids:
                self.push_mids()

    # ------------------------------------------------------------------ subscriptions
    def handle(self, message) -> None:
        if not isinstance(message, dict):
            raise ValueError("not an object")
        method = message.get("method")
        if method == "ping":
            self.reply({"channel": "pong"})
            return
        subscription = message.get("subscription")
        if method not in ("subscribe", "unsubscribe") or not isinstance(subscription, dict):
            self.reply({"channel": "error", "data": f"Invalid method or subscription: {json.dumps(message)[:200]}"})
            return
        try:
            snapshots = self.apply(subscription, method == "subscribe")
        except (EngineError, KeyError, TypeError) as exc:
            why = exc.msg if isinstance(exc, EngineError) else "a field is missing or invalid"
            self.reply({"channel": "error", "data": f"Invalid subscription {json.dumps(subscription)[:200]}: {why}"})
            return
        self.reply({"channel": "subscriptionResponse", "data": {"method": method, "subscription": subscription}})
        for snapshot in snapshots:  # after the acknowledgement, as Hyperliquid sends them
            snapshot()

    def apply(self, s: dict, on: bool) -> list:
        """Records the (un)subscription; returns what to send once it is acknowledged."""
        kind = s.get("type")
        if kind in ("l2Book", "trades", "bbo"):
            m = self.info.market_of(s["coin"])
            target = {"l2Book": self.books, "trades": self.trades, "bbo": self.bbos}[kind]
            (target.add if on else target.discard)(m)
            if on and kind == "l2Book":
                return [lambda: self.reply({"channel": "l2Book", "data": self.info.l2_book(s["coin"])})]
            if on and kind == "bbo":
                self.last_bbo.pop(m, None)
                return [lambda: self.push_bbo(m)]
        elif kind == "allMids":
            self.mids = on
            if on:
                self.last_mids = None
                return [self.push_mids]
        elif kind in ("orderUpdates", "userEvents", "userFills"):
            user = (self.info.user(s["user"]), s["user"])
            if kind == "orderUpdates":
                self.order_user = user if on else None
            elif kind == "userEvents":
                self.event_user = user if on else None
            elif on:
                self.fill_users[user[0]] = user[1]
                return [lambda: self.reply({"channel": "userFills", "data": {
                    "user": user[1], "isSnapshot": True, "fills": self.info.user_fills(user[0])}})]
            else:
                self.fill_users.pop(user[0], None)
        else:
            raise KeyError(kind)
        return []

    def push_bbo(self, m: int) -> None:
        bids, asks = self.venue.engine.l2(m, 1)
        levels = [None if not side else {"px": px(side[0][0]), "sz": sz(side[0][1]), "n": 1} for side in (bids, asks)]
        if self.last_bbo.get(m) != levels:
            self.last_bbo[m] = levels
            self.reply({"channel": "bbo", "data": {"coin": coin(self.venue.markets[m].symbol),
                                                   "time": self.venue.now_ms(), "bbo": levels}})

    def push_mids(self) -> None:
        mids = self.info.all_mids()
        if mids != self.last_mids:
            self.last_mids = mids
            self.reply({"channel": "allMids", "data": {"mids": mids}})

    # ------------------------------------------------------------------ the venue's messages
    async def route(self, message: dict) -> None:
        channel = message["channel"]
        if channel == "l2":
            m = message["market"]
            if m in self.books or m in self.bbos or self.mids:
                self.dirty.add(m)
        elif channel == "fills" and message["data"]["status"] == "pending":  # a fill, as it is matched
            rec = self.venue.fills.get(message["data"]["seq"])
            if rec is not None:
                await self.on_fill(rec)
        elif channel == "orders" and (self.order_user is not None or self.event_user is not None):
            await self.on_order(message["data"])
        elif channel == "triggers" and self.order_user is not None and message["data"]["account"] == self.order_user[0]:
            t = self.venue.triggers.get(message["data"]["triggerId"])
            if t is not None:
                await self.send({"channel": "orderUpdates", "data": [{
                    "order": self.info.trigger_json(t, False), "status": TRIGGER_STATUS[t.status],
                    "statusTimestamp": t.ended or t.placed}]})

    async def on_fill(self, rec) -> None:
        f = rec.fill
        buyer, seller = (f.taker.account, f.maker.account) if f.taker_is_buy else (f.maker.account, f.taker.account)
        if f.market in self.trades:
            await self.send({"channel": "trades", "data": [{
                "coin": coin(self.venue.markets[f.market].symbol), "side": "B" if f.taker_is_buy else "A",
                "px": px(f.price), "sz": sz(f.size), "hash": ZERO_HASH, "time": f.ts, "tid": f.seq,
                "users": [buyer, seller]}]})
        for account in (f.maker.account, f.taker.account):
            if account in self.fill_users:
                await self.send({"channel": "userFills", "data": {"user": self.fill_users[account], "isSnapshot": False,
                                                                  "fills": [self.info.fill_json(account, rec)]}})
            if self.event_user is not None and self.event_user[0] == account:
                await self.send({"channel": "user", "data": {"fills": [self.info.fill_json(account, rec)]}})
        if self.order_user is not None:
            for order in (f.maker, f.taker):
                if order.account == self.order_user[0] and order.remaining == 0:
                    await self.send_order_update(order.id)

    async def on_order(self, data: dict) -> None:
        account, status = data["account"], data["status"]
        if self.order_user is not None and self.order_user[0] == account:
            await self.send_order_update(data["id"])
        if self.event_user is not None and self.event_user[0] == account and status in NON_USER_CANCELS:
            state = self.venue.order_states.get(data["id"])
            if state is not None:
                await self.send({"channel": "user", "data": {"nonUserCancel": [
                    {"coin": coin(self.venue.markets[state[1]].symbol), "oid": data["id"]}]}})

    async def send_order_update(self, order_id: int) -> None:
        state = self.venue.order_states.get(order_id)
        if state is None:
            return
        await self.send({"channel": "orderUpdates", "data": [{
            "order": self.info.order_json(order_id, state, False), "status": STATUS.get(state[9], state[9]),
            "statusTimestamp": self.venue.order_times.get(order_id, (0, 0))[1]}]})
