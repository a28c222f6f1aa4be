"""`keeper` command: run a keeper bot against a deployment."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path


from venue.chain import Deployment, connect, contract


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="keeper")
    p.add_argument("bot", choices=["liquidator", "adl", "risk", "oracle", "funding", "mm"],
                   help="liquidator: liquidates accounts below maintenance margin; adl: auto-deleverages bankrupt "
                        "accounts the insurance fund cannot cover (needs the risk-keeper role); risk: raises the "
                        "WETH haircut on volatility and wrong-way exposure (risk-keeper role); oracle: pushes "
                        "prices; funding: posts funding rates from the venue's book; mm: the reference market "
                        "maker (keeper/mm.py)")
    p.add_argument("--window", type=int, default=300, help="risk: seconds of WETH price updates the volatility uses")
    p.add_argument("--deployment", default="devnet/deployment.json")
    p.add_argument("--rpc-url", default=None, help="default: the deployment file's rpc")
    p.add_argument("--key", default=None, help="private key (default: the deployment's keeper key)")
    p.add_argument("--name", default=None)
    p.add_argument("--tip-gwei", type=float, default=2.0, help="priority fee bid")
    p.add_argument("--feed", default="walk", help="oracle: 'walk' or 'csv' (with --csv ID=PATH ...)")
    p.add_argument("--csv", action="append", default=[], help="oracle: ID=PATH of a timestamp,price CSV")
    p.add_argument("--speed", type=float, default=1.0, help="oracle csv: data seconds per second")
    p.add_argument("--start-offset", type=float, default=0.0, help="oracle csv: data seconds to skip")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--heartbeat", type=float, default=30.0, help="oracle: seconds between pushes at most")
    p.add_argument("--deviation-bps", type=int, default=50, help="oracle: push on a move this large")
    p.add_argument("--delay", type=float, default=0.0, help="oracle: seconds of deliberate lag")
    p.add_argument("--jitter", type=float, default=0.0, help="oracle: up to this many more seconds of lag")
    p.add_argument("--max-jump-bps", type=int, default=2_000,
                   help="oracle: a print this far from the last accepted price is held until the feed confirms it "
                        "(0: no guard)")
    p.add_argument("--confirm-s", type=float, default=3.0,
                   help="oracle: seconds a jump must persist before it is pushed")
    p.add_argument("--api", default="http://127.0.0.1:8000", help="funding: the venue API")
    p.add_argument("--interval", type=float, default=3600.0, help="funding: seconds between updates")
    mm = p.add_argument_group("mm")
    mm.add_argument("--trader", type=int, default=0, help="mm: the devnet trader whose account quotes")
    mm.add_argument("--levels", type=int, default=5, help="mm: levels a side per market")
    mm.add_argument("--level-usdc", type=float, default=5_000.0, help="mm: notional of a level")
    mm.add_argument("--static", action="store_true", help="mm: no adaptation (fixed regime)")
    mm.add_argument("--max-updates", type=float, default=200.0, help="mm: quote updates per second at most")
    mm.add_argument("--requote-bps", type=float, default=1.0, help="mm: fair-price move that re-centres quotes")
    mm.add_argument("--max-position-usdc", type=float, default=200_000.0, help="mm: per-market position cap")
    mm.add_argument("--group-cap-usdc", type=float, default=300_000.0,
                    help="mm: cap on the net notional across all markets (correlated)")
    mm.add_argument("--metrics-port", type=int, default=0, help="mm: serve Prometheus metrics on this port")
    mm.add_argument("--telemetry", default="devnet/mm-telemetry.jsonl", help="mm: per-run file (JSON lines)")
    mm.add_argument("--report", default=None, metavar="FILE",
                    help="mm: print the summary of a telemetry FILE and write its plots next to it, then exit")
    args = p.parse_args(argv)
    if args.bot == "mm":
        logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.name or 'mm'} %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)
        from .mm_run import main as mm_main

        return mm_main(args)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.name or args.bot} %(message)s")
    doc = json.loads(Path(args.deployment).read_text())
    w3 = connect(args.rpc_url or doc["rpc"])
    deployment = Deployment.from_json(doc)
    key = args.key or doc["keys"]["keeper"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.bot in ("liquidator", "adl"):
        from .liquidator import Deleverager, Liquidator

        bot = Liquidator if args.bot == "liquidator" else Deleverager
        bot(w3, deployment, key, name=args.name or args.bot, priority_fee_gwei=args.tip_gwei).run(stop)
        return 0
    if args.bot == "risk":
        from .risk import RiskKeeper

        RiskKeeper(w3, deployment, key, window_s=args.window, priority_fee_gwei=args.tip_gwei).run(stop)
        return 0
    if args.bot == "oracle":
        import time

        from .feeds import CsvFeed, RandomWalkFeed
        from .oracle import OracleKeeper

        oracle = contract(w3, "Oracle", deployment.oracle)
        if args.feed == "csv":
            files = {int(k): Path(v) for k, v in (item.split("=", 1) for item in args.csv)}
            feed = CsvFeed(files, time.time(), args.speed, args.start_offset)
        else:
            initial = {}
            for i in (0, 1):
                try:
                    initial[i] = oracle.functions.getPrice(i).call()[0]
                except Exception:
                    initial[i] = (3_000 if i == 0 else 60_000) * 10**6
            feed = RandomWalkFeed(initial, seed=args.seed)
        OracleKeeper(w3, deployment, key, feed, heartbeat_s=args.heartbeat, deviation_bps=args.deviation_bps,
                     delay_s=args.delay, jitter_s=args.jitter, priority_fee_gwei=args.tip_gwei,
                     seed=args.seed, max_jump_bps=args.max_jump_bps or None, confirm_s=args.confirm_s).run(stop)
        return 0
    from .funding import FundingKeeper

    FundingKeeper(w3, deployment, key, args.api, interval_s=args.interval, priority_fee_gwei=args.tip_gwei).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
