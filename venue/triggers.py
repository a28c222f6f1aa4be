"""Stop-loss and take-profit (trigger) orders: signed orders the venue holds off the book until
the mark (oracle) price crosses their trigger, then enters like any order, as a market order
(IOC within the venue's slippage cap) or a limit order.

The signed crossbook order is what bounds settlement: the venue may fire it early or late, but
its fills settle only within the signed limit price, size and flags (reduce-only when flagged),
as the ClearingHouse checks for every fill. The trigger itself (price, take-profit or
stop-loss) is the venue's instruction, not part of the signature.

Which way a trigger fires (Hyperliquid's rule): a sell stop-loss (closing a long) when the mark
is at or below the trigger, a sell take-profit at or above it; a buy stop-loss (closing a short)
at or above, a buy take-profit at or below. A trigger `attached` to the position (Hyperliquid's
`positionTpsl`) is cancelled once the account's position in that market is flat; one with a
`parent` order (`normalTpsl`) waits until that order has filled, and is cancelled if the parent
leaves the book without a fill.

Triggers are journalled (`trigger` when placed, `trigger_end` when fired, cancelled or refused
at firing), so they survive restarts; their nonces are spent when they are placed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .signing import Order as SignedOrder

TRIGGER_ID_BASE = 1 << 40  # trigger ids live above engine order ids


@dataclass(slots=True)
class Trigger:
    id: int
    order: SignedOrder
    signature: bytes
    tif: int  # the engine's time in force when it fires
    is_market: bool
    client_id: str | None
    trigger_price: int
    tpsl: str  # "tp" | "sl"
    attached: bool  # cancelled with the position
    parent: int | None  # waits for this order to fill
    placed: int  # ms
    status: str = "waiting"  # waiting -> triggered | cancelled | rejected
    child: int | None = None  # the order it became
    ended: int = 0  # ms
    reason: str | None = None  # why it was cancelled or refused

    def due(self, mark: int) -> bool:
        """Whether the mark price fires it."""
        sell = not self.order.is_buy
        above = (self.tpsl == "tp") == sell  # sell take-profit and buy stop-loss fire on the way up
        return mark >= self.trigger_price if above else mark <= self.trigger_price

    def condition(self) -> str:
        sell = not self.order.is_buy
        above = (self.tpsl == "tp") == sell
        return "above" if above else "below"

    def as_record(self) -> tuple:
        o = self.order
        return (self.id, o.account, o.market, o.is_buy, o.price, o.size, o.flags, o.expiry, o.nonce, self.signature,
                self.tif, self.is_market, self.client_id, self.trigger_price, self.tpsl, self.attached, self.parent,
                self.placed)

    @classmethod
    def from_record(cls, r: tuple) -> Trigger:
        (tid, account, market, is_buy, price, size, flags, expiry, nonce, signature, tif, is_market, client_id,
         trigger_price, tpsl, attached, parent, placed) = r
        return cls(tid, SignedOrder(account, market, is_buy, price, size, flags, expiry, nonce), signature, tif,
                   is_market, client_id, trigger_price, tpsl, attached, parent, placed)

    def as_json(self) -> dict:
        o = self.order
        return {"triggerId": self.id, "account": o.account, "market": o.market, "side": "buy" if o.is_buy else "sell",
                "price": str(o.price), "size": str(o.size), "reduceOnly": bool(o.flags & 4),
                "triggerPrice": str(self.trigger_price), "tpsl": self.tpsl, "isMarket": self.is_market,
                "condition": f"mark {self.condition()} {self.trigger_price}", "attached": self.attached,
                "parent": self.parent, "clientId": self.client_id, "status": self.status, "orderId": self.child,
                "reason": self.reason, "placed": self.placed}


class TriggerBook:
    """The venue's waiting triggers, and the finished ones it still remembers (for status)."""

    def __init__(self, remember: int = 10_000):
        self.waiting: dict[int, Trigger] = {}
        self.by_account: dict[str, dict[int, Trigger]] = {}  # the waiting ones, per account (the fill path's lookup)
        self.firing: dict[int, Trigger] = {}  # out of `waiting` while its order enters the engine
        self.finished: dict[int, Trigger] = {}
        self.next_id = TRIGGER_ID_BASE
        self.remember = remember

    def add(self, t: Trigger) -> None:
        self.waiting[t.id] = t
        self.by_account.setdefault(t.order.account, {})[t.id] = t
        self.next_id = max(self.next_id, t.id + 1)

    def _unindex(self, t: Trigger) -> None:
        mine = self.by_account.get(t.order.account)
        if mine is not None:
            mine.pop(t.id, None)
            if not mine:
                del self.by_account[t.order.account]

    def end(self, tid: int, status: str, child: int | None, ts: int, reason: str | None = None) -> Trigger | None:
        t = self.waiting.pop(tid, None) or self.firing.pop(tid, None)
        if t is None:
            return None
        self._unindex(t)
        t.status, t.child, t.ended, t.reason = status, child, ts, reason
        self.finished[tid] = t
        if len(self.finished) > self.remember:
            del self.finished[next(iter(self.finished))]
        return t

    def fire(self, t: Trigger) -> None:
        """Out of the waiting set before its order enters the engine (that order's own fills
        must not see it as a waiting trigger)."""
        self.firing[t.id] = self.waiting.pop(t.id)
        self._unindex(t)

    def get(self, tid: int) -> Trigger | None:
        return self.waiting.get(tid) or self.firing.get(tid) or self.finished.get(tid)

    def of(self, account: str, market: int | None = None) -> list[Trigger]:
        """The account's waiting triggers (in the market), oldest first: a list, safe to end them while iterating."""
        return [t for t in self.by_account.get(account, {}).values() if market is None or t.order.market == market]

    def by_client_id(self, account: str, client_id: str) -> Trigger | None:
        for t in self.by_account.get(account, {}).values():
            if t.client_id == client_id:
                return t
        return None

    def due(self, market: int, mark: int) -> list[Trigger]:
        return [t for t in self.waiting.values() if t.order.market == market and t.parent is None and t.due(mark)]
