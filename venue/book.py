"""Price-time order book: integer prices, FIFO levels, O(1) cancel by id.

Each side keeps its prices in a `SortedList` and a dict from price to `Level`. A level is a
deque in arrival order; a cancel marks the order dead and takes its size off the level at once
(O(1)), and matching drops dead orders when it reaches them.
"""

from __future__ import annotations

from collections import deque

from sortedcontainers import SortedList

BUY, SELL = True, False


class Order:
    """A resting or incoming order. Sizes and prices are integers (see domain.py)."""

    __slots__ = ("id", "account", "market", "is_buy", "price", "size", "remaining", "flags",
                 "client_id", "stp", "expiry", "seq", "live", "nonce", "signature", "filled")

    def __init__(self, id, account, market, is_buy, price, size, flags=0, client_id=None, stp=0,
                 expiry=0, seq=0, nonce=0, signature=b""):
        self.id = id
        self.account = account
        self.market = market
        self.is_buy = is_buy
        self.price = price
        self.size = size
        self.remaining = size
        self.filled = 0
        self.flags = flags
        self.client_id = client_id
        self.stp = stp
        self.expiry = expiry
        self.seq = seq
        self.live = False
        self.nonce = nonce
        self.signature = signature

    def __repr__(self) -> str:
        side = "B" if self.is_buy else "S"
        return f"Order(#{self.id} {self.account[:8]} {side} {self.remaining}/{self.size}@{self.price})"


class Level:
    __slots__ = ("price", "orders", "size", "count")

    def __init__(self, price: int):
        self.price = price
        self.orders: deque[Order] = deque()
        self.size = 0
        self.count = 0


class Side:
    """One side of a book. `best()` is the highest bid or the lowest ask."""

    __slots__ = ("is_buy", "prices", "levels")

    def __init__(self, is_buy: bool):
        self.is_buy = is_buy
        self.prices = SortedList()
        self.levels: dict[int, Level] = {}

    def best(self) -> Level | None:
        if not self.prices:
            return None
        return self.levels[self.prices[-1] if self.is_buy else self.prices[0]]

    def add(self, order: Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = Level(order.price)
            self.prices.add(order.price)
        level.orders.append(order)
        level.size += order.remaining
        level.count += 1
        order.live = True

    def remove(self, order: Order) -> None:
        """Takes a live order off its level in O(1); the deque entry is dropped lazily."""
        order.live = False
        level = self.levels[order.price]
        level.size -= order.remaining
        level.count -= 1
        if level.count == 0:
            del self.levels[order.price]
            self.prices.remove(order.price)

    def depth(self, n: int) -> list[tuple[int, int]]:
        """(price, size) of the best `n` levels."""
        prices = reversed(self.prices[-n:]) if self.is_buy else self.prices[:n]
        return [(p, self.levels[p].size) for p in prices]

    def iter_orders(self):
        for price in self.prices:
            for order in self.levels[price].orders:
                if order.live:
                    yield order


class Book:
    __slots__ = ("market", "bids", "asks")

    def __init__(self, market: int):
        self.market = market
        self.bids = Side(BUY)
        self.asks = Side(SELL)

    def side(self, is_buy: bool) -> Side:
        return self.bids if is_buy else self.asks

    def best_bid(self) -> int | None:
        return self.bids.prices[-1] if self.bids.prices else None

    def best_ask(self) -> int | None:
        return self.asks.prices[0] if self.asks.prices else None
