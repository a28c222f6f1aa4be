"""Demo market maker: keeps a two-sided book on every market around the oracle price.

Every `interval` seconds it cancels its quotes and posts `levels` post-only orders a side,
`spread_bps` apart, through the public API with signed orders (as any bot would).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from decimal import Decimal

from .client import Client, VenueError
from .domain import QUOTE_DECIMALS, SIZE_SCALE

log = logging.getLogger("mm")


def quotes(client: Client, levels: int, spread_bps: int, size: str) -> list[dict]:
    bodies = []
    oracle_prices = {m["id"]: int(m["oraclePrice"]) for m in client._get("/markets")}
    for symbol, m in client.markets.items():
        oracle = oracle_prices[m["id"]]
        tick = int(m["tickSize"])
        if not oracle:
            continue
        for i in range(1, levels + 1):
            offset = oracle * spread_bps * i // 10_000
            bid = (oracle - offset) // tick * tick
            ask = -(-(oracle + offset) // tick) * tick
            lot_size = Decimal(size) if symbol.startswith("ETH") else Decimal(size) / 10
            for side, px in (("buy", bid), ("sell", ask)):
                bodies.append(client.order_body(symbol, side, str(Decimal(px) / 10**QUOTE_DECIMALS),
                                                str(lot_size.quantize(Decimal(1) / SIZE_SCALE)), tif="Alo"))
    return bodies


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="venue mm")
    p.add_argument("--deployment", default="devnet/deployment.json")
    p.add_argument("--api", default="http://127.0.0.1:8000")
    p.add_argument("--trader", type=int, default=0, help="index of the devnet trader key to quote with")
    p.add_argument("--levels", type=int, default=5)
    p.add_argument("--spread-bps", type=int, default=5)
    p.add_argument("--size", default="0.5")
    p.add_argument("--interval", type=float, default=2.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mm %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    client = Client.from_devnet(args.trader, args.deployment, args.api)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        try:
            client.cancel()
            statuses = client.place_batch(quotes(client, args.levels, args.spread_bps, args.size))
            errors = [s for s in statuses if s["status"] == "error"]
            if errors:
                log.warning("%d of %d quotes refused: %s", len(errors), len(statuses), errors[0]["code"])
        except (VenueError, OSError) as exc:
            log.warning("quote cycle failed: %s", exc)
        stop.wait(args.interval)
    try:
        client.cancel()
    except (VenueError, OSError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
