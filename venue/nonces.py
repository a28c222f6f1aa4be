"""Which order nonces an account may still use, in bounded memory.

The venue refuses a nonce it has taken before (a nonce names one order). To forget old nonces
safely, it keeps per account only the `size` highest nonces it has taken and requires a new one to
lie above the lowest of them once there are `size`, as Hyperliquid does with its 100 highest
nonces: anything at or below that floor is refused (`NONCE_TOO_LOW`), so a forgotten nonce can
never be used again. (The ClearingHouse still refuses any on-chain replay by its own order state.)
Bots that count their nonces up, or use millisecond timestamps, never meet the floor.
"""

from __future__ import annotations

import heapq


class NonceWindow:
    __slots__ = ("taken", "heap", "floor")

    def __init__(self) -> None:
        self.taken: set[int] = set()
        self.heap: list[int] = []
        self.floor = -1  # every nonce at or below it is refused

    def refusal(self, nonce: int) -> tuple[str, str] | None:
        """(code, message) if `nonce` may not be used, else None."""
        if nonce <= self.floor:
            return "NONCE_TOO_LOW", f"nonce {nonce} is not above {self.floor}, the lowest nonce the venue still " \
                                    "remembers for this account: use a higher one"
        if nonce in self.taken:
            return "DUPLICATE_NONCE", f"nonce {nonce} was already used"
        return None

    def take(self, nonce: int, size: int) -> None:
        """Marks `nonce` used; beyond `size` remembered nonces the lowest becomes the floor."""
        if nonce <= self.floor or nonce in self.taken:
            return
        self.taken.add(nonce)
        heapq.heappush(self.heap, nonce)
        while len(self.heap) > size:
            self.floor = heapq.heappop(self.heap)
            self.taken.discard(self.floor)

    def __len__(self) -> int:
        return len(self.taken)
