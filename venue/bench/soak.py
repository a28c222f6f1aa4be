"""Memory under a sustained load: does the venue's resident memory stay flat?

Workload: a fresh Anvil with 1-second blocks, the devnet deployment, 40 funded traders, `venue
serve` as its own process (one uvicorn worker and its signature recovery worker). Orders go
through the batch endpoint, 100 per request over 4 connections, in rounds of 10,000 signed while
the venue runs (the load generator shares the two cores with the server). 99 % are post-only
orders resting within 2 % of the price, expiring 8 s after their round was signed, so the book
holds a steady size of about the last two rounds (what rests, the venue's clock expires); 1 % are IOC orders crossing the asks, so fills are made and
settled on-chain all along (an oracle keeper thread pushes the price every 5 s). Every trader
counts its nonces up and places one order before the measured rounds (the venue reads an account
from the chain the first time it sees it). RSS (VmRSS of the venue's process) is read after 200,000 and after
2,000,000 accepted orders; the target is the second at most 1.2 times the first.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from venue.chain import contract, deploy
from venue.cli import fund_traders
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.domain import DEVNET_MARKETS, FLAG_IOC, FLAG_POST_ONLY
from venue.signing import Domain, Order, address_of, sign_order

from .loadgen import encode_post, hammer

N_TRADERS = 40
ETH = 3_000 * 10**6
TICK, LOT = DEVNET_MARKETS[0].tick_size, DEVNET_MARKETS[0].lot_size
ROUND, PER_REQUEST, CONNECTIONS = 10_000, 100, 4
CHECKPOINTS = (200_000, 2_000_000)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main(checkpoints=CHECKPOINTS) -> int:
    keys = dev_keys(3 + N_TRADERS)
    owner, operator, keeper = (address_of(k) for k in keys[:3])
    traders = keys[3:]
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp, Anvil(accounts=3 + N_TRADERS) as anvil:
        w3 = anvil.web3()
        d = deploy(w3, owner, operator=operator, keepers=(keeper,))
        fund_traders(w3, d, traders, 10**13, 0)
        oracle = contract(w3, "Oracle", d.oracle)

        def push():
            ts = w3.eth.get_block("latest").timestamp
            w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices([0, 1], [ETH, 60_000 * 10**6], ts)
                                                .transact({"from": keeper}))

        push()
        anvil.set_interval_mining(1)
        path = Path(tmp) / "deployment.json"
        path.write_text(json.dumps({**d.to_json(), "rpc": anvil.url, "keys": {"operator": keys[1]}}))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "venue.cli", "serve", "--deployment", str(path),
                                   "--rpc-url", anvil.url, "--port", str(port), "--journal", f"{tmp}/j.sqlite"])
        api = f"http://127.0.0.1:{port}"
        stop = threading.Event()

        def keeper_loop():
            while not stop.wait(5):
                try:
                    push()
                except Exception as exc:  # noqa: BLE001: a missed push shows as rejected fills
                    print(f"oracle push failed: {exc}", file=sys.stderr)

        pusher = threading.Thread(target=keeper_loop, daemon=True)
        try:
            wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 60, "venue API")
            pusher.start()
            sep = Domain(d.chain_id, d.clearing_house).separator
            nonces = {k: 0 for k in traders}

            def signed(k, is_buy, price, size, flags, tif, expiry):
                nonces[k] += 1
                o = Order(address_of(k), 0, is_buy, price, size, flags, expiry, nonces[k])
                return {"account": o.account, "market": o.market, "isBuy": o.is_buy, "price": str(o.price),
                        "size": str(o.size), "flags": o.flags, "expiry": o.expiry, "nonce": o.nonce,
                        "signature": "0x" + sign_order(o, sep, k).hex(), "tif": tif}

            # The venue reads an account from the chain the first time it sees it: once per trader
            # before the measured rounds.
            warm = [signed(k, True, ETH - 6_000 * TICK, LOT * 10, FLAG_POST_ONLY, "Alo", int(time.time()) + 4)
                    for k in traders]
            hammer("127.0.0.1", port, [encode_post("/orders/batch", {"orders": warm})], connections=1, depth=1)
            accepted = sent = 0
            seconds = sign_seconds = 0.0
            figures: dict[int, tuple[float, float, int]] = {}
            statuses: dict[str, int] = {}
            started = time.perf_counter()
            while accepted < checkpoints[-1]:
                t0 = time.perf_counter()
                expiry = int(time.time()) + 8  # rests ~5 to 8 s: about the last two rounds
                orders = []
                for i in range(ROUND):
                    k = traders[rng.randrange(N_TRADERS)]
                    if i % 100 == 99:  # IOC taking the best asks
                        orders.append(signed(k, True, ETH + 30 * TICK, LOT * 10, FLAG_IOC, "Ioc", 0))
                    else:
                        is_buy = rng.random() < 0.5
                        offset = (1 + rng.randrange(6_000)) * TICK
                        orders.append(signed(k, is_buy, ETH - offset if is_buy else ETH + offset, LOT * 10,
                                             FLAG_POST_ONLY, "Alo", expiry))
                requests = [encode_post("/orders/batch", {"orders": orders[j:j + PER_REQUEST]})
                            for j in range(0, ROUND, PER_REQUEST)]
                sign_seconds += time.perf_counter() - t0
                elapsed, responses = hammer("127.0.0.1", port, requests, connections=CONNECTIONS, depth=1)
                seconds += elapsed
                sent += ROUND
                for status, payload in responses:
                    if status != 200:
                        statuses[f"http {status}"] = statuses.get(f"http {status}", 0) + PER_REQUEST
                        continue
                    for st in json.loads(payload)["statuses"]:
                        key = st["status"] if st["status"] != "error" else st["code"]
                        statuses[key] = statuses.get(key, 0) + 1
                        accepted += st["status"] != "error"
                if sent % 200_000 == 0:
                    print(f"{sent:,} sent, {accepted:,} accepted, {seconds:.0f} s sending, outcomes {statuses}",
                          flush=True)
                if sent >= 3 * checkpoints[-1]:
                    raise SystemExit(f"too few orders accepted: {statuses}")
                for mark in checkpoints:
                    if accepted >= mark and mark not in figures:
                        h = httpx.get(f"{api}/health").json()
                        figures[mark] = (rss_mb(server.pid), accepted / seconds, h["restingOrders"])
                        print(f"{accepted:,} accepted: venue RSS {figures[mark][0]:.1f} MB, "
                              f"{accepted / seconds:,.0f} orders/s, {h['restingOrders']:,} resting, "
                              f"{h['pendingFills'] + h['submittedFills']} fills unsettled, "
                              f"last settled batch {h['lastSettledBatch']}", flush=True)
            wall = time.perf_counter() - started
        finally:
            stop.set()
            stop_process(server)

    first, last = checkpoints
    rss_first, rss_last = figures[first][0], figures[last][0]
    table = Table(title="venue memory under a sustained signed-order load (batch endpoint)")
    for column in ("accepted orders", "venue RSS (MB)", "orders/s so far", "resting orders"):
        table.add_column(column, justify="right")
    for mark in checkpoints:
        rss, rate, resting = figures[mark]
        table.add_row(f"{mark:,}", f"{rss:.1f}", f"{rate:,.0f}", f"{resting:,}")
    Console().print(table)
    print(f"workload: {sent:,} orders sent in rounds of {ROUND:,} (100 per request, {CONNECTIONS} connections), "
          "99 % post-only expiring 8 s after signing, within 2 % of the price, 1 % IOC crossing the asks (settled on Anvil, "
          f"1 s blocks); {N_TRADERS} traders counting nonces up; signing in the load generator took "
          f"{sign_seconds:.0f} s of {wall:.0f} s; outcomes {statuses}")
    ratio = rss_last / rss_first
    print(f"RSS after {last:,} / after {first:,}: {ratio:.3f} (target at most 1.2: {'met' if ratio <= 1.2 else 'NOT met'})")
    print(json.dumps({"rss_mb_200k": round(rss_first, 1), "rss_mb_2m": round(rss_last, 1),
                      "rss_ratio": round(ratio, 3), "orders_per_s": round(figures[last][1])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
