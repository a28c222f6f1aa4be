"""Signed orders per second over HTTP, and acknowledgement-to-settlement latency.

Workload: a fresh Anvil with 1-second blocks, the devnet deployment, 80 funded traders, the
venue API (`venue serve`, one uvicorn worker) as its own process. Orders are signed and their
HTTP requests encoded before the clock starts; the load generator (bench/loadgen.py) is a lean
asyncio client in this process. Single endpoint: 10,000 post-only orders, one per request, over
32 keep-alive connections with one request in flight on each (as HTTP client libraries send),
then 10,000 more over 8 connections pipelining 4 each (uvicorn answers a connection's
pipelined requests one at a time). Batch endpoint: 30,000 post-only orders in requests of 100
over 4 connections. Websocket: 10,000 post-only orders posted one per message over 4 sockets
subscribed as one account, all sent before the answers are read. Only accepted (resting)
orders count; the server's CPU time per order (from /proc, the event loop's process and the
signature recovery worker apart) shows whether the server or the client was the limit. Each
trader places one order before the clock starts (the venue reads an account from the chain the
first time it sees it). Settlement: 60 taker IOC orders crossing resting asks,
one every 50 ms; latency runs from each acknowledgement to the websocket message that reports
the fill settled (the receipt has been read). Then the same again while another thread asks for
50 account views a second (`GET /accounts/{address}`, each for the next of the 80 traders).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import websockets
from rich.console import Console
from rich.table import Table

from venue.chain import contract, deploy
from venue.cli import fund_traders
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.domain import DEVNET_MARKETS, FLAG_IOC, FLAG_POST_ONLY
from venue.signing import Domain, Order, address_of, sign_order

from .loadgen import encode_post, hammer

N_TRADERS = 80
# Single endpoint, two ways with the same 32 requests in flight: 32 connections with one request
# each (how HTTP clients such as httpx or aiohttp send: no pipelining), the headline figure; and
# 8 connections pipelining 4 each, which uvicorn serves one request at a time per connection.
SINGLE_CONNECTIONS, PIPELINED_CONNECTIONS, DEPTH, BATCH_CONNECTIONS = 32, 8, 4, 4
N_SINGLE, N_BATCHES, N_WS, WS_CONNECTIONS = 10_000, 300, 10_000, 4
N_CROSSES, VIEWS_PER_S = 60, 50
ETH = 3_000 * 10**6
TICK, LOT = DEVNET_MARKETS[0].tick_size, DEVNET_MARKETS[0].lot_size


def body(order: Order, sig: bytes, tif: str) -> dict:
    return {"account": order.account, "market": order.market, "isBuy": order.is_buy, "price": str(order.price),
            "size": str(order.size), "flags": order.flags, "expiry": 0, "nonce": order.nonce,
            "signature": "0x" + sig.hex(), "tif": tif}


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds of the server process and, apart, of its child processes (the signature
    recovery worker)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return cpu_s(pid), sum(cpu_s(c) for c in children)


async def post_over_websockets(api: str, posts: list[str], account: str) -> tuple[float, int]:
    """Sends every posted order over WS_CONNECTIONS sockets without waiting between them and
    returns (seconds until the last answer, orders answered resting)."""
    # Subscribed as one account, as a trading bot is: other accounts' order updates stay away.
    url = api.replace("http", "ws") + f"/ws?account={account}"

    async def one(chunk: list[str]) -> int:
        async with websockets.connect(url, max_queue=None) as ws:
            for text in chunk:
                await ws.send(text)
            resting = answered = 0
            while answered < len(chunk):
                m = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if m["channel"] == "post":
                    answered += 1
                    resting += m["data"]["status"] == "resting"
            return resting

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(posts[c::WS_CONNECTIONS]) for c in range(WS_CONNECTIONS)))
    return time.perf_counter() - start, sum(counts)


def view_load(api: str, addresses: list[str], stop, answers) -> None:
    """Open-loop read load (a process of its own): a GET /accounts/{address} every 1/VIEWS_PER_S s
    whether or not earlier ones were answered (as independent clients would), each for the next
    trader; puts (sent, answered 200, rate sent) on `answers` once `stop` is set."""
    async def run():
        codes = []
        async with httpx.AsyncClient(base_url=api, timeout=30) as c:
            async def one(address):
                codes.append((await c.get(f"/accounts/{address}")).status_code)

            tasks, k, start = [], 0, time.perf_counter()
            while not stop.is_set():
                tasks.append(asyncio.create_task(one(addresses[k % len(addresses)])))
                k += 1
                await asyncio.sleep(max(0.0, start + k / VIEWS_PER_S - time.perf_counter()))
            sent_s = time.perf_counter() - start
            await asyncio.gather(*tasks, return_exceptions=True)
        answers.put((k, codes.count(200), k / sent_s))

    asyncio.run(run())


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> int:
    keys = dev_keys(3 + N_TRADERS)
    owner, operator, keeper = (address_of(k) for k in keys[:3])
    traders = keys[3:]
    with tempfile.TemporaryDirectory() as tmp, Anvil(accounts=3 + N_TRADERS) as anvil:
        w3 = anvil.web3()
        d = deploy(w3, owner, operator=operator, keepers=(keeper,))
        fund_traders(w3, d, traders, 10**13, 0)
        oracle = contract(w3, "Oracle", d.oracle)
        w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices(
            [0, 1], [ETH, 60_000 * 10**6], w3.eth.get_block("latest").timestamp).transact({"from": keeper}))
        anvil.set_interval_mining(1)  # setup ran on automine; the measured part sees 1-second blocks
        path = Path(tmp) / "deployment.json"
        path.write_text(json.dumps({**d.to_json(), "rpc": anvil.url, "keys": {"operator": keys[1]}}))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "venue.cli", "serve", "--deployment", str(path),
                                   "--rpc-url", anvil.url, "--port", str(port), "--journal", f"{tmp}/j.sqlite"],
                                  env=dict(os.environ))
        api = f"http://127.0.0.1:{port}"
        print(f"venue server pid {server.pid} on {api}", flush=True)
        try:
            wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 60, "venue API")
            sep = Domain(d.chain_id, d.clearing_house).separator
            nonces = {k: 0 for k in traders}

            def signed(k, is_buy, price, size, flags, tif):
                nonces[k] += 1
                o = Order(address_of(k), 0, is_buy, price, size, flags, 0, nonces[k])
                return body(o, sign_order(o, sep, k), tif)

            # Resting bids below the market, at many prices: never crossing.
            def passive(i):
                # traders[0] stays out of it: the maker of the settlement phase (1,000 open orders at most each)
                return signed(traders[1 + i % (N_TRADERS - 1)], True, ETH - (1 + i % 3_000) * TICK, LOT * 10,
                              FLAG_POST_ONLY, "Alo")

            singles = [passive(i) for i in range(N_SINGLE)]
            offset = N_SINGLE + N_BATCHES * 100 + N_WS
            pipelined = [passive(offset + i) for i in range(N_SINGLE)]
            batches = [[passive(N_SINGLE + b * 100 + j) for j in range(100)] for b in range(N_BATCHES)]
            posts = [json.dumps({"method": "post", "id": i, "request": {"type": "order",
                                 "order": passive(N_SINGLE + N_BATCHES * 100 + i)}}) for i in range(N_WS)]

            host, _ = api[len("http://"):].split(":")
            # The venue reads an account from the chain when it first sees it: one order per
            # trader before the clock starts, so the figures are the steady state.
            warm_up = [encode_post("/orders", signed(k, True, ETH - 3_500 * TICK, LOT * 10, FLAG_POST_ONLY, "Alo"))
                       for k in traders]
            hammer(host, port, warm_up, connections=SINGLE_CONNECTIONS, depth=1)
            single_requests = [encode_post("/orders", b) for b in singles]
            pipelined_requests = [encode_post("/orders", b) for b in pipelined]
            batch_requests = [encode_post("/orders/batch", {"orders": b}) for b in batches]
            def used(since: tuple[float, float]) -> tuple[tuple[float, float], tuple[float, float]]:
                now = server_cpu_s(server.pid)
                return (now[0] - since[0], now[1] - since[1]), now

            cpu = server_cpu_s(server.pid)
            single_s, replies = hammer(host, port, single_requests, connections=SINGLE_CONNECTIONS, depth=1)
            accepted_single = sum(body.count(b'"status":"resting"') for status, body in replies if status == 200)
            single_cpu, cpu = used(cpu)
            print(f"single: {accepted_single} accepted in {single_s:.2f} s", flush=True)
            piped_s, replies = hammer(host, port, pipelined_requests, connections=PIPELINED_CONNECTIONS, depth=DEPTH)
            accepted_piped = sum(body.count(b'"status":"resting"') for status, body in replies if status == 200)
            piped_cpu, cpu = used(cpu)
            print(f"single, pipelined: {accepted_piped} accepted in {piped_s:.2f} s", flush=True)
            batch_s, replies = hammer(host, port, batch_requests, connections=BATCH_CONNECTIONS, depth=2)
            accepted_batch = sum(body.count(b'"status":"resting"') for status, body in replies if status == 200)
            batch_cpu, cpu = used(cpu)
            print(f"batch: {accepted_batch} accepted in {batch_s:.2f} s", flush=True)
            ws_s, accepted_ws = asyncio.run(post_over_websockets(api, posts, address_of(traders[0])))
            ws_cpu, _ = used(cpu)
            print(f"websocket: {accepted_ws} accepted in {ws_s:.2f} s", flush=True)

            # Ack to settlement: asks from one maker, IOC buys from others, 20 per second; once
            # alone, once with 50 account views a second from another thread (each for a
            # different trader in turn, so most are a chain read of their own).
            maker = traders[0]
            settled_at: dict[int, float] = {}
            done = threading.Event()

            async def listen():
                async with websockets.connect(api.replace("http", "ws") + f"/ws?account={address_of(maker)}") as ws:
                    while not done.is_set():
                        try:
                            m = json.loads(await asyncio.wait_for(ws.recv(), 1))
                        except asyncio.TimeoutError:
                            continue
                        if m.get("channel") == "fills" and m["data"]["status"] == "settled":
                            settled_at.setdefault(m["data"]["seq"], time.perf_counter())

            listener = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
            listener.start()
            time.sleep(0.5)

            def crosses(read_load: bool) -> list[float]:
                acked_at: dict[int, float] = {}
                # The read load runs in its own process: in a thread it would share this process's
                # GIL with the websocket listener that timestamps settlements.
                stop, answers = multiprocessing.Event(), multiprocessing.Queue()
                load = multiprocessing.Process(target=view_load, args=(api, [address_of(k) for k in traders], stop,
                                                                       answers), daemon=True)
                if read_load:
                    load.start()
                    time.sleep(1)
                with httpx.Client(base_url=api, timeout=30) as c:
                    c.post("/orders", json=signed(maker, False, ETH + 10 * TICK, LOT * 1_000, FLAG_POST_ONLY, "Alo"))
                    for i in range(N_CROSSES):
                        taker = traders[1 + i % (N_TRADERS - 1)]
                        r = c.post("/orders", json=signed(taker, True, ETH + 10 * TICK, LOT * 10, FLAG_IOC, "Ioc"))
                        now = time.perf_counter()
                        assert r.json()["status"] == "filled", r.text
                        seq = max(f["seq"] for f in c.get(f"/accounts/{address_of(taker)}").json()["fills"])
                        acked_at[seq] = now
                        time.sleep(0.05)
                wait_until(lambda: all(s in settled_at for s in acked_at), 60, "settlements")
                stop.set()
                if read_load:
                    sent, ok, rate = answers.get(timeout=60)
                    load.join(10)
                    views_done.append((sent, ok, rate))
                print(f"crosses{' with account views' if read_load else ''}: {len(acked_at)} fills settled", flush=True)
                return [(settled_at[s] - acked_at[s]) * 1000 for s in acked_at]

            views_done: list = []
            lat = crosses(False)
            lat_views = crosses(True)
            done.set()
            listener.join(5)  # its socket closes before the server stops
        finally:
            stop_process(server)

    single_rate, batch_rate, ws_rate = accepted_single / single_s, accepted_batch / batch_s, accepted_ws / ws_s
    table = Table(title="venue API over HTTP (1 uvicorn worker, signed EIP-712 orders)")
    for col in ("measure", "value"):
        table.add_column(col, justify="right")
    def cpu_row(cpu: tuple[float, float], accepted: int, seconds: float) -> str:
        loop_cpu, worker_cpu = cpu
        text = f"{loop_cpu / max(accepted, 1) * 1e6:,.0f} µs ({loop_cpu / seconds:.0%})"
        return text + (f" + worker {worker_cpu / max(accepted, 1) * 1e6:,.0f} µs ({worker_cpu / seconds:.0%})"
                       if worker_cpu > 0.01 else "")

    piped_rate = accepted_piped / piped_s
    table.add_row(f"single endpoint ({SINGLE_CONNECTIONS} connections x 1), accepted orders/s",
                  f"{single_rate:,.0f} ({accepted_single:,} in {single_s:.2f} s)")
    table.add_row("  server CPU per order (busy share of a core)", cpu_row(single_cpu, accepted_single, single_s))
    table.add_row(f"single endpoint ({PIPELINED_CONNECTIONS} connections x {DEPTH} pipelined), accepted orders/s",
                  f"{piped_rate:,.0f} ({accepted_piped:,} in {piped_s:.2f} s)")
    table.add_row("  server CPU per order (busy share of a core)", cpu_row(piped_cpu, accepted_piped, piped_s))
    table.add_row("batch endpoint (100/request), accepted orders/s", f"{batch_rate:,.0f} ({accepted_batch:,} in {batch_s:.2f} s)")
    table.add_row("  server CPU per order: event loop + recovery worker", cpu_row(batch_cpu, accepted_batch, batch_s))
    table.add_row("websocket post (single orders, pipelined), accepted orders/s",
                  f"{ws_rate:,.0f} ({accepted_ws:,} in {ws_s:.2f} s)")
    table.add_row("  server CPU per order (busy share of a core)", cpu_row(ws_cpu, accepted_ws, ws_s))
    table.add_row("ack -> settled, p50 / p99 ms", f"{statistics.median(lat):,.0f} / {pct(lat, 0.99):,.0f} (1 s blocks)")
    views, views_ok, views_rate = views_done[0]
    table.add_row(f"  with {VIEWS_PER_S} account views/s asked, p50 / p99 ms",
                  f"{statistics.median(lat_views):,.0f} / {pct(lat_views, 0.99):,.0f} ({views_ok:,} of {views:,} views "
                  f"answered 200, {views_rate:.0f}/s)")
    Console().print(table)
    print(f"workload: fresh Anvil (1 s blocks), {N_TRADERS} traders, post-only orders pre-signed; single: {N_SINGLE:,} "
          f"requests over {SINGLE_CONNECTIONS} connections x 1 in flight, and {N_SINGLE:,} over {PIPELINED_CONNECTIONS} "
          f"connections x {DEPTH} pipelined; batch: {N_BATCHES} requests of 100 over "
          f"{BATCH_CONNECTIONS} connections; websocket: {N_WS:,} posted orders over {WS_CONNECTIONS} sockets; "
          f"settlement: {N_CROSSES} IOC crosses at 20/s, alone and with {VIEWS_PER_S} GET /accounts/{{address}} a "
          f"second over the {N_TRADERS} traders in turn")
    print(json.dumps({"orders_per_s_single": round(single_rate), "orders_per_s_single_pipelined": round(piped_rate),
                      "orders_per_s_batch": round(batch_rate),
                      "orders_per_s_websocket": round(ws_rate),
                      "ack_to_settle_p50_ms": round(statistics.median(lat)), "ack_to_settle_p99_ms": round(pct(lat, 0.99)),
                      "ack_to_settle_p50_ms_with_views": round(statistics.median(lat_views)),
                      "ack_to_settle_p99_ms_with_views": round(pct(lat_views, 0.99)),
                      "account_views_per_s": round(views_rate, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
