"""`venue` command: devnet, deploy, bench."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .chain import REPO_ROOT, contract, deploy
from .devchain import Anvil, dev_keys

DEVNET_DIR = REPO_ROOT / "devnet"


def cmd_devnet(args) -> int:
    """Anvil on 127.0.0.1:8545 with crossbook deployed; runs until Ctrl-C."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = dev_keys(10)
    from .signing import address_of

    addresses = [address_of(k) for k in keys]
    owner, operator, keeper = addresses[0], addresses[1], addresses[2]
    anvil = Anvil(port=args.port, block_time=args.block_time, log_path=out.parent / "anvil.log")
    anvil.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        w3 = anvil.web3()
        d = deploy(w3, owner, operator=operator, keepers=(keeper,))
        doc = {
            **d.to_json(),
            "rpc": anvil.url,
            "accounts": {"owner": owner, "operator": operator, "keeper": keeper, "traders": addresses[3:]},
            "keys": {"operator": keys[1], "keeper": keys[2], "traders": keys[3:]},
        }
        out.write_text(json.dumps(doc, indent=2))
        ch = contract(w3, "ClearingHouse", d.clearing_house)
        print(f"crossbook devnet on {anvil.url} (chain id {d.chain_id})")
        for name in ("ClearingHouse", "Oracle", "USDC", "WETH"):
            print(f"  {name:<14} {doc[name]}")
        print(f"  markets        {', '.join(d.markets)} (on-chain count {ch.functions.marketCount().call()})")
        print(f"  operator       {operator}\n  keeper         {keeper}")
        print(f"addresses and dev keys written to {out}")
        print("Ctrl-C stops everything.")
        sys.stdout.flush()
        if args.exit_after_deploy:
            return 0
        try:
            while not stop.wait(0.5):
                if anvil.process.poll() is not None:
                    print("anvil exited", file=sys.stderr)
                    return 1
        except KeyboardInterrupt:
            pass
        print("stopping")
        return 0
    finally:
        anvil.stop()


def cmd_bench(args) -> int:
    import importlib

    return importlib.import_module(f"venue.bench.{args.which}").main()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="venue", description="crossbook venue")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("devnet", help="start Anvil with crossbook deployed (Ctrl-C stops)")
    p.add_argument("--port", type=int, default=8545)
    p.add_argument("--block-time", type=float, default=None, help="seconds per block (default: automine)")
    p.add_argument("--out", default=str(DEVNET_DIR / "deployment.json"), help="where to write addresses")
    p.add_argument("--exit-after-deploy", action="store_true", help="deploy, print, stop (for smoke tests)")
    p.set_defaults(fn=cmd_devnet)
    p = sub.add_parser("bench", help="run a benchmark")
    p.add_argument("which", choices=["gas", "engine", "scan"])
    p.set_defaults(fn=cmd_bench)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
