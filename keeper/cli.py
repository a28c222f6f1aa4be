"""`keeper` command: run a keeper bot against a deployment."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from web3 import HTTPProvider, Web3

from venue.chain import Deployment


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="keeper")
    p.add_argument("bot", choices=["liquidator", "oracle", "funding"])
    p.add_argument("--deployment", default="devnet/deployment.json")
    p.add_argument("--rpc-url", default=None, help="default: the deployment file's rpc")
    p.add_argument("--key", default=None, help="private key (default: the deployment's keeper key)")
    p.add_argument("--name", default=None)
    p.add_argument("--tip-gwei", type=float, default=2.0, help="priority fee bid")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.name or args.bot} %(message)s")
    doc = json.loads(Path(args.deployment).read_text())
    w3 = Web3(HTTPProvider(args.rpc_url or doc["rpc"]))
    deployment = Deployment.from_json(doc)
    key = args.key or doc["keys"]["keeper"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.bot == "liquidator":
        from .liquidator import Liquidator

        Liquidator(w3, deployment, key, name=args.name or "liquidator", priority_fee_gwei=args.tip_gwei).run(stop)
        return 0
    print(f"keeper {args.bot}: not built yet (issue 6)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
