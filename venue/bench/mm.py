"""How fast the reference market maker re-quotes (`make bench-mm`).

Workload: a fresh Anvil with 1-second blocks, the devnet deployment, the venue API (`venue
serve`, its per-account order limit raised to 20,000 a second from the default 1,000, which
would cap any bot at 1,000) as its own process, and `keeper mm`'s driver (keeper/mm_run.py: websocket in, one signed
`POST /batch` per plan out) in this process, quoting 2 markets x 10 levels a side (40 orders),
not adaptive and without a rate limit (what is measured is what it can do).

  1. Sustained quote updates: 400 price changes fed to the strategy back to back, alternating
     5 bp up and down in both markets; every change moves all 40 quotes (each a modification
     that reprices the order), signed and sent as one request. Quote updates per second =
     orders changed and acknowledged resting / wall time.
  2. Re-quote latency on the real path: 40 oracle updates pushed on-chain (each 5 bp off the
     last, alternating); the venue reads each from its block and publishes it on the websocket;
     the bot's own loop re-plans and sends. Latency = from the oracle message arriving at the bot
     to the acknowledgement that its new quotes rest (every order of the plan journalled).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from keeper.mm import MMConfig
from keeper.mm_run import LiveMarketMaker, make_client
from venue.chain import Deployment, contract, deploy
from venue.cli import fund_traders
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.signing import address_of

PRICES = {0: 3_000 * 10**6, 1: 60_000 * 10**6}
LEVELS, CHANGES, PUSHES, STEP_BPS = 10, 400, 40, 5
ORDERS_PER_S = 20_000  # the venue's per-account limit (default 1,000 a second would cap any bot there)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def main() -> int:
    keys = dev_keys(4)
    owner, operator, keeper = (address_of(k) for k in keys[:3])
    with tempfile.TemporaryDirectory() as tmp, Anvil(accounts=4) as anvil:
        w3 = anvil.web3()
        d = deploy(w3, owner, operator=operator, keepers=(keeper,))
        fund_traders(w3, d, keys[3:], 10**13, 0)
        oracle = contract(w3, "Oracle", d.oracle)

        def push(prices: dict[int, int]) -> None:
            w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices(
                [0, 1], [prices[0], prices[1]], w3.eth.get_block("latest").timestamp).transact({"from": keeper}))

        push(PRICES)
        doc = {**d.to_json(), "rpc": anvil.url, "keys": {"operator": keys[1], "traders": keys[3:]}}
        path = Path(tmp) / "deployment.json"
        path.write_text(json.dumps(doc))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "venue.cli", "serve", "--deployment", str(path),
                                   "--rpc-url", anvil.url, "--port", str(port), "--journal", f"{tmp}/j.sqlite"],
                                  env={**os.environ, "VENUE_ORDERS_PER_S": str(ORDERS_PER_S),
                                       "VENUE_ORDERS_BURST": str(2 * ORDERS_PER_S)})
        api = f"http://127.0.0.1:{port}"
        stop = threading.Event()
        try:
            wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 60, "venue API")
            client = make_client(doc, Deployment.from_json(doc), keys[3], api)  # approves the agent (automine)
            anvil.set_interval_mining(1)
            config = MMConfig(levels=LEVELS, adaptive=False, max_updates_per_s=1e9, burst=10**9, requote_bps=0.5,
                              deadman_s=3600)
            bot = LiveMarketMaker(client, config, str(Path(tmp) / "mm.jsonl"))
            bot.adopt()
            listener = threading.Thread(target=bot.listen, args=(stop,), daemon=True)
            listener.start()
            bot.connected.wait(10)
            bot.step()  # the first 40 quotes
            assert len(client.open_orders()) == 4 * LEVELS, "the first quotes did not all rest"

            # 1. sustained updates: price changes fed straight to the strategy
            updates, latencies = 0, []
            started = time.perf_counter()
            for i in range(CHANGES):
                t0 = time.perf_counter()
                with bot.lock:
                    for m, base in PRICES.items():
                        bot.mm.on_oracle(m, base + (base * STEP_BPS // 10_000 if i % 2 == 0 else 0), time.time())
                plan = bot.step()
                latencies.append(time.perf_counter() - t0)
                updates += len(plan)
            elapsed = time.perf_counter() - started
            resting = client.open_orders()
            assert len(resting) == 4 * LEVELS, f"{len(resting)} orders rest after the run, not {4 * LEVELS}"
            refused = bot.mm.refused
            rate = (updates - refused) / elapsed

            # 2. the real path: oracle on-chain -> venue -> websocket -> the bot's loop -> resting
            bot.requote_s.clear()
            runner = threading.Thread(target=lambda: _loop(bot, stop), daemon=True)
            runner.start()
            for i in range(PUSHES):
                k = i % 2 == 0
                push({m: base - (base * STEP_BPS // 10_000 if k else 0) for m, base in PRICES.items()})
                wait_until(lambda n=i + 1: len(bot.requote_s) >= n, 10, "the bot's re-quote")
            real = [s * 1000 for s in bot.requote_s[:PUSHES]]
            stop.set()
            runner.join(5)
            listener.join(5)
        finally:
            stop.set()
            stop_process(server)

    synthetic_ms = [s * 1000 for s in latencies]
    table = Table(title=f"keeper mm: 2 markets x {LEVELS} levels a side ({4 * LEVELS} quotes), venue serve on Anvil")
    for col in ("figure", "value"):
        table.add_column(col, justify="right" if col == "value" else "left")
    table.add_row("price changes fed back to back", str(CHANGES))
    table.add_row("quote updates sent / refused", f"{updates:,} / {refused:,}")
    table.add_row("quote updates per second", f"{rate:,.0f}")
    table.add_row("change -> quotes resting p50 / p99 (ms)",
                  f"{statistics.median(synthetic_ms):.1f} / {p99(synthetic_ms):.1f}")
    table.add_row("on-chain oracle updates", str(PUSHES))
    table.add_row("websocket price -> quotes resting p50 / p99 / max (ms)",
                  f"{statistics.median(real):.1f} / {p99(real):.1f} / {max(real):.1f}")
    Console().print(table)
    print(json.dumps({"bench": "mm", "levels_per_side": LEVELS, "markets": 2, "quote_updates_per_s": round(rate),
                      "refused": refused,
                      "requote_latency_ms_p99": round(p99(real), 1), "requote_latency_ms_p50": round(statistics.median(real), 1),
                      "synthetic_requote_ms_p99": round(p99(synthetic_ms), 1), "targets": {
                          "quote_updates_per_s": 1000, "requote_latency_ms_p99": 50}}))
    return 0


def _loop(bot: LiveMarketMaker, stop: threading.Event) -> None:
    """The bot's own loop (as `run` drives it), without the start-up it has done already."""
    while not stop.is_set():
        bot.wake.wait(bot.step_s)
        bot.wake.clear()
        bot.step()


if __name__ == "__main__":
    sys.exit(main())
