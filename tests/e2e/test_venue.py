"""The venue end to end: a real Anvil (1-second blocks), the real contracts, `venue serve` as a
process, real HTTP and websocket clients."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

import httpx
import pytest
import websockets

from venue.chain import contract, deploy
from venue.cli import fund_traders
from venue.client import Client, VenueError
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.domain import usdc
from venue.signing import address_of

from .scenario import start_server

ETH_PRICE = usdc(3_000)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("venue")
    keys = dev_keys(8)
    owner, operator, keeper = (address_of(k) for k in keys[:3])
    with Anvil(accounts=8) as anvil:
        w3 = anvil.web3()
        d = deploy(w3, owner, operator=operator, keepers=(keeper,))
        fund_traders(w3, d, keys[3:5], usdc(1_000_000), 0)  # maker-ish accounts
        fund_traders(w3, d, keys[5:6], usdc(1_000), 0)  # a small account for the margin test
        oracle = contract(w3, "Oracle", d.oracle)

        last = [0]

        def push(price, wait=True):
            ts = wait_until(lambda: (t := w3.eth.get_block("latest").timestamp) > last[0] and t, 10, "a newer block")
            last[0] = ts
            # A higher tip than the operator's, so in a shared block the update is ordered first.
            tx = oracle.functions.setPrices([0, 1], [price, usdc(60_000)], ts).transact(
                {"from": keeper, "maxPriorityFeePerGas": 10 * 10**9, "maxFeePerGas": 100 * 10**9, "gas": 200_000})
            if wait:
                w3.eth.wait_for_transaction_receipt(tx)
            return tx

        push(ETH_PRICE)
        anvil.set_interval_mining(1)  # setup on automine, the tests on 1-second blocks
        path = tmp / "deployment.json"
        path.write_text(json.dumps({**d.to_json(), "rpc": anvil.url, "keys": {"operator": keys[1], "traders": keys[3:]}}))
        port = free_port()
        env = dict(os.environ)
        server = subprocess.Popen([sys.executable, "-m", "venue.cli", "serve", "--deployment", str(path),
                                   "--rpc-url", anvil.url, "--port", str(port), "--journal", str(tmp / "j.sqlite")],
                                  env=env)
        api = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 30, "venue API")
            yield {"api": api, "w3": w3, "deployment": d, "path": path, "push": push,
                   "ch": contract(w3, "ClearingHouse", d.clearing_house)}
        finally:
            assert stop_process(server) == 0, "the venue did not stop cleanly on SIGINT"


def clients(stack, *indices):
    return [Client.from_devnet(trader=i, path=str(stack["path"]), api_url=stack["api"]) for i in indices]


def settled_fill(client, seq=None, timeout=15):
    def check():
        fills = client.account_state()["fills"]
        done = [f for f in fills if f["status"] in ("settled", "rejected") and (seq is None or f["seq"] == seq)]
        return done[-1] if done else None
    return wait_until(check, timeout, "fill settlement", interval=0.1)


async def collect(url, into):
    """Websocket messages until a settled (or rejected) fill arrives."""
    async with websockets.connect(url) as ws:
        into.append("connected")
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 20))
            into.append(message)
            if message.get("channel") == "fills" and message["data"]["status"] in ("settled", "rejected"):
                return


def test_a_cross_settles_within_two_blocks_and_api_websocket_and_chain_agree(stack):
    maker, taker = clients(stack, 0, 1)
    w3, ch = stack["w3"], stack["ch"]
    before = {c.address: ch.functions.balances(c.address).call()[0] for c in (maker, taker)}
    messages: list = []
    ws_url = stack["api"].replace("http", "ws") + f"/ws?account={taker.address}"
    loop = asyncio.new_event_loop()
    task = loop.create_task(collect(ws_url, messages))
    loop.run_until_complete(asyncio.sleep(0.5))
    rest = maker.place("ETH-PERP", "sell", "3001", "2", tif="Alo")
    assert rest["status"] == "resting"
    ack_block = w3.eth.block_number
    cross = taker.place("ETH-PERP", "buy", "3005", "1.5", tif="Ioc")
    assert (cross["status"], cross["filled"]) == ("filled", "150000000")
    fill = settled_fill(taker)
    assert fill["status"] == "settled"
    receipt = w3.eth.get_transaction_receipt(fill["txHash"])
    assert receipt.blockNumber - ack_block <= 2
    notional = 150_000_000 * usdc(3_001) // 10**8  # 4,501.50 USDC
    taker_fee, maker_rebate = -(-notional * 5 // 10_000), notional // 10_000
    for client, size, quote in ((taker, 150_000_000, before[taker.address] - taker_fee),
                                (maker, -150_000_000, before[maker.address] + maker_rebate)):
        view = client.account_state()
        chain_pos = ch.functions.position(client.address, 0).call()
        assert chain_pos[0] == size and int(view["positions"][0]["size"]) == size
        assert int(view["positions"][0]["entryPrice"]) == chain_pos[2] == usdc(3_001)
        # 1M USDC behind 1.5 ETH: the long cannot be liquidated by any price, the short only far up.
        liq = view["positions"][0]["liquidationPrice"]
        assert liq is None if size > 0 else usdc(500_000) < int(liq) < usdc(1_000_000)
        assert int(view["collateral"]["quote"]) == ch.functions.balances(client.address).call()[0] == quote
    # The maker's rest is still on the book.
    book = httpx.get(f"{stack['api']}/book/0").json()
    assert book["asks"][0] == [str(usdc(3_001)), "50000000"]
    loop.run_until_complete(asyncio.wait_for(task, 20))
    fills = [m for m in messages[1:] if m.get("channel") == "fills"]
    assert [f["data"]["status"] for f in fills] == ["pending", "settled"]
    assert [m["channel"] for m in messages[1:4]] == ["venue", "book", "book"]  # snapshots first
    assert messages[1]["data"] == {"paused": False, "frozen": False, "frozenAt": None}
    # L2 deltas for ETH-PERP follow the snapshot's bookSeq one by one: the ask appears, then shrinks.
    snapshot_seq = messages[2]["bookSeq"]
    deltas = [m for m in messages[1:] if m.get("channel") == "l2" and m["market"] == 0]
    assert [d["bookSeq"] for d in deltas] == list(range(snapshot_seq + 1, snapshot_seq + 1 + len(deltas)))
    assert [d["data"]["changes"] for d in deltas][:2] == [[["sell", str(usdc(3_001)), "200000000"]],
                                                          [["sell", str(usdc(3_001)), "50000000"]]]
    assert all(f["data"]["taker"] == taker.address for f in fills)
    by_channel = {}
    for m in messages[1:]:  # numbered per channel for the connection, from 1, without gaps
        by_channel.setdefault(m["channel"], []).append(m["seq"])
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_channel.values()), by_channel
    maker.cancel()


def test_batches_go_through_the_engine_together_and_their_fills_settle(stack):
    """Both sides arrive in batches (one `Engine.run` each): the resting asks carry their
    signatures and client ids into the cross, which settles on-chain; a nonce or a client order
    id used twice in a batch is refused for the second order only."""
    maker, taker = clients(stack, 0, 1)
    ch = stack["ch"]
    before = ch.functions.position(taker.address, 0).call()[0]
    # Nine bids (enough for the recovery worker), one of them forged: only that one is refused.
    bids = [maker.order_body("ETH-PERP", "buy", str(2990 - i), "0.1", tif="Alo") for i in range(9)]
    bids[4] = dict(bids[4], size="20000000")
    statuses = maker.place_batch(bids)
    assert [s["status"] for s in statuses] == ["resting"] * 4 + ["error"] + ["resting"] * 4
    assert statuses[4]["code"] == "BAD_SIGNATURE" and "signed by" in statuses[4]["msg"]
    assert len(maker.cancel()) == 8
    asks = maker.place_batch([maker.order_body("ETH-PERP", "sell", "3002", "0.5", tif="Alo", client_id="a1"),
                              maker.order_body("ETH-PERP", "sell", "3003", "0.5", tif="Alo", client_id="a2"),
                              maker.order_body("ETH-PERP", "sell", "3004", "0.5", tif="Alo", client_id="a2")])
    assert [s["status"] for s in asks] == ["resting", "resting", "error"]
    assert asks[2]["code"] == "DUPLICATE_CLIENT_ID"
    cross = taker.order_body("ETH-PERP", "buy", "3003", "1", tif="Ioc")
    statuses = taker.place_batch([cross, dict(cross)])  # the same signed order twice
    assert [(s["status"], s.get("filled")) for s in statuses[:1]] == [("filled", "100000000")]
    assert (statuses[1]["status"], statuses[1]["code"]) == ("error", "DUPLICATE_NONCE")
    settled = wait_until(lambda: (fills := [f for f in taker.account_state()["fills"]
                                            if f["takerOrderId"] == statuses[0]["orderId"]])
                         and all(f["status"] == "settled" for f in fills) and fills, 15, "both fills settled")
    assert sorted(f["makerOrderId"] for f in settled) == sorted(a["orderId"] for a in asks[:2])
    assert ch.functions.position(taker.address, 0).call()[0] == before + 100_000_000
    assert maker.account_state()["openOrders"] == []


def test_concurrent_single_orders_share_recovery_and_a_forged_one_is_refused_alone(stack):
    """Single orders sent at once (those the venue reads in the same loop turn share a trip to
    the recovery worker; tests/venue/test_recovery.py checks the grouping): every honest one
    rests, the forged one gets its 401 alone."""
    (maker,) = clients(stack, 0)
    bodies = [maker.order_body("ETH-PERP", "buy", str(2980 - i), "0.1", tif="Alo") for i in range(12)]
    bodies[5] = dict(bodies[5], price=str(int(bodies[5]["price"]) - 10_000))  # no longer what was signed

    async def send_all():
        async with httpx.AsyncClient(base_url=stack["api"], limits=httpx.Limits(max_connections=12)) as c:
            return await asyncio.gather(*(c.post("/orders", json=b) for b in bodies))

    replies = asyncio.run(send_all())
    assert [r.status_code for r in replies] == [200] * 5 + [401] + [200] * 6
    assert replies[5].json()["code"] == "BAD_SIGNATURE"
    assert all(r.json()["status"] == "resting" for i, r in enumerate(replies) if i != 5)
    assert len(maker.cancel()) == 11


def test_fill_failing_margin_on_chain_is_rejected_unwound_and_reported(stack):
    maker, small = clients(stack, 1, 2)
    ch = stack["ch"]
    rest = maker.place("ETH-PERP", "sell", "3001", "8", tif="Alo")
    # The oracle update is in the mempool, not yet seen by the venue, when the order matches:
    # it is mined first, so settlement meets the new price.
    push_tx = stack["push"](usdc(2_870), wait=False)
    ack = small.place("ETH-PERP", "buy", "3001", "6", tif="Ioc")  # 18,006 notional on 1,000 USDC: fits 20x
    assert ack["status"] == "filled"
    stack["w3"].eth.wait_for_transaction_receipt(push_tx)
    fill = settled_fill(small)
    assert (fill["status"], fill["reason"]) == ("rejected", "INSUFFICIENT_MARGIN")
    assert ch.functions.position(small.address, 0).call()[0] == 0
    # Unwound in the engine: the maker's 6 ETH are back on its resting order, the small account is flat.
    open_orders = maker.account_state()["openOrders"]
    assert [(o["id"], o["remaining"]) for o in open_orders] == [(rest["orderId"], "800000000")]
    view = small.account_state()
    assert view["positions"] == [] and view["fills"][-1]["reason"] == "INSUFFICIENT_MARGIN"
    maker.cancel()
    stack["push"](ETH_PRICE)


def test_bad_requests_get_4xx_with_code_and_msg_and_change_nothing(stack):
    (c,) = clients(stack, 0)
    api = stack["api"]
    body = c.order_body("ETH-PERP", "buy", "2999", "1")
    forged = dict(body, size="200000000")  # signature no longer matches
    r = httpx.post(f"{api}/orders", json=forged)
    assert r.status_code == 401 and r.json()["code"] == "BAD_SIGNATURE"
    r = httpx.post(f"{api}/orders", json=dict(body, price="abc"))
    assert r.status_code == 422 and r.json()["code"] == "INVALID_REQUEST"
    assert r.json()["msg"].startswith("body.price:")
    for route in ("/orders", "/orders/batch"):  # not JSON at all
        r = httpx.post(f"{api}{route}", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "INVALID_JSON", r.text
    r = httpx.post(f"{api}/orders/batch", json={"orders": [body] * 101})
    assert r.status_code == 422 and r.json()["msg"].startswith("body.orders:"), r.text
    r = httpx.post(f"{api}/orders", json=c.order_body("ETH-PERP", "buy", "2999.005", "1"))
    assert r.status_code == 400 and r.json()["code"] == "TICK_SIZE"
    ok = httpx.post(f"{api}/orders", json=body)
    assert ok.status_code == 200
    again = httpx.post(f"{api}/orders", json=body)
    assert again.status_code == 400 and again.json()["code"] == "DUPLICATE_NONCE"
    batch = httpx.post(f"{api}/orders/batch", json={"orders": [c.order_body("ETH-PERP", "buy", "2998", "1"),
                                                               c.order_body("ETH-PERP", "buy", "2500", "1")]}).json()
    assert [s["status"] for s in batch["statuses"]] == ["resting", "error"]
    assert batch["statuses"][1]["code"] == "PRICE_BAND"
    assert sorted(c.cancel()) == sorted([ok.json()["orderId"], batch["statuses"][0]["orderId"]])
    spec = httpx.get(f"{api}/openapi.json").json()
    assert spec["paths"].keys() >= {"/orders", "/orders/batch", "/modify", "/cancel", "/accounts/{address}",
                                    "/book/{market}"}
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert {"OrderIn", "BatchIn", "Error"} <= refs <= spec["components"]["schemas"].keys()  # every $ref resolves


def test_acknowledged_fills_survive_a_killed_venue_and_settle_after_restart(tmp_path):
    keys = dev_keys(6)
    owner, operator, keeper = (address_of(k) for k in keys[:3])
    with Anvil(accounts=6) as anvil:
        w3 = anvil.web3()
        d = deploy(w3, owner, operator=operator, keepers=(keeper,))
        fund_traders(w3, d, keys[3:5], usdc(100_000), 0)
        oracle = contract(w3, "Oracle", d.oracle)
        w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices(
            [0, 1], [ETH_PRICE, usdc(60_000)], w3.eth.get_block("latest").timestamp).transact({"from": keeper}))
        anvil.set_interval_mining(1)
        path = tmp_path / "deployment.json"
        path.write_text(json.dumps({**d.to_json(), "rpc": anvil.url, "keys": {"operator": keys[1], "traders": keys[3:]}}))
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        # First run: batches wait a minute, so the fill is acknowledged but not yet settled.
        server = start_server(path, anvil.url, tmp_path, port, VENUE_BATCH_INTERVAL_MS="60000")
        try:
            wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 30, "venue API")
            maker = Client.from_devnet(0, str(path), api)
            taker = Client.from_devnet(1, str(path), api)
            maker.place("ETH-PERP", "sell", "3000", "1", tif="Alo")
            assert taker.place("ETH-PERP", "buy", "3000", "1", tif="Ioc")["status"] == "filled"
            assert taker.account_state()["fills"][0]["status"] == "pending"
        finally:
            server.send_signal(signal.SIGKILL)
            server.wait(10)
        assert contract(w3, "ClearingHouse", d.clearing_house).functions.position(taker.address, 0).call()[0] == 0
        # Second run, same journal: the fill is still owed to the chain and settles.
        server = start_server(path, anvil.url, tmp_path, port)
        try:
            wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 30, "venue API")
            fill = settled_fill(Client.from_devnet(1, str(path), api))
            assert fill["status"] == "settled"
            ch = contract(w3, "ClearingHouse", d.clearing_house)
            assert ch.functions.position(taker.address, 0).call()[0] == 10**8
            assert ch.functions.nextBatchIndex().call() == 1  # settled once
        finally:
            stop_process(server)


def test_orders_signed_by_an_approved_agent_are_accepted_until_it_is_revoked(stack):
    agent_key, stranger_key = "0x" + "a1" * 32, "0x" + "b2" * 32  # hot keys with no funds of their own
    owner, = clients(stack, 1)
    hot = Client.from_devnet(trader=1, path=str(stack["path"]), api_url=stack["api"], agent_key=agent_key)
    stranger = Client.from_devnet(trader=1, path=str(stack["path"]), api_url=stack["api"], agent_key=stranger_key)
    with pytest.raises(VenueError) as refused:
        hot.place("ETH-PERP", "buy", "2990", "0.1")
    assert refused.value.status == 401 and refused.value.code == "BAD_SIGNATURE"
    owner.set_agent(address_of(agent_key))
    ack = hot.place("ETH-PERP", "buy", "2990", "0.1")
    assert ack["status"] == "resting"
    assert any(o["id"] == ack["orderId"] for o in owner.account_state()["openOrders"])
    with pytest.raises(VenueError) as refused:
        stranger.place("ETH-PERP", "buy", "2990", "0.1")
    assert refused.value.code == "BAD_SIGNATURE" and address_of(stranger_key) in refused.value.msg
    owner.set_agent(address_of(agent_key), False)
    placed = [ack["orderId"]]  # orders the venue took before it saw the revocation block

    def refused_now():
        try:
            placed.append(hot.place("ETH-PERP", "buy", "2990", "0.1")["orderId"])
        except VenueError as exc:
            return exc.code == "BAD_SIGNATURE"
        return False
    wait_until(refused_now, 10, "the venue to follow the revocation", interval=0.2)
    assert sorted(owner.cancel()) == sorted(placed)


def test_websocket_snapshots_on_subscribe_then_public_trades_and_only_own_fills(stack):
    maker, taker, other = clients(stack, 0, 1, 2)
    maker.place("ETH-PERP", "sell", "3002", "0.2", tif="Alo")
    assert taker.place("ETH-PERP", "buy", "3002", "0.1", tif="Ioc")["status"] == "filled"  # before subscribing
    url = stack["api"].replace("http", "ws") + f"/ws?account={taker.address}"

    async def session():
        async with websockets.connect(url) as ws:
            snapshot = [json.loads(await ws.recv()) for _ in range(5)]
            await asyncio.to_thread(other.place, "ETH-PERP", "buy", "3002", "0.01", tif="Ioc")  # not ours
            await asyncio.to_thread(taker.place, "ETH-PERP", "buy", "3002", "0.05", tif="Ioc")  # ours
            live = []
            while sum(m["channel"] == "trades" for m in live) < 2 or not any(m["channel"] == "fills" for m in live):
                live.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            return snapshot, live

    snapshot, live = asyncio.run(session())
    assert [m["channel"] for m in snapshot] == ["venue", "book", "book", "openOrders", "recentFills"]
    assert any(f["taker"] == taker.address and f["size"] == "10000000" for f in snapshot[4]["data"])
    trades = [m["data"] for m in live if m["channel"] == "trades"]
    assert [(t["size"], t["side"], t["price"]) for t in trades] == [("1000000", "buy", "3002000000"),
                                                                     ("5000000", "buy", "3002000000")]
    fills = [m["data"] for m in live if m["channel"] == "fills"]
    assert fills and all(taker.address in (f["maker"], f["taker"]) for f in fills)  # the other's fill is private
    by_channel = {}
    for m in snapshot + live:  # numbered per channel for the connection, from 1, without gaps
        by_channel.setdefault(m["channel"], []).append(m["seq"])
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_channel.values()), by_channel
    maker.cancel()


def test_market_order_over_http_fills_what_the_book_has_inside_its_bounds_and_cancels_the_rest(stack):
    maker, taker = clients(stack, 0, 1)
    maker.place("ETH-PERP", "sell", "3002", "0.1", tif="Alo")
    maker.place("ETH-PERP", "sell", "3020", "0.1", tif="Alo")  # beyond the signed limit of 3010
    ack = taker.place("ETH-PERP", "buy", "3010", "0.3", tif="Market")
    assert (ack["status"], ack["filled"], ack["remaining"]) == ("cancelled", "10000000", "20000000")
    with pytest.raises(VenueError) as refused:  # a market order must be signed IOC
        taker._post("/orders", dict(taker.order_body("ETH-PERP", "buy", "3010", "0.1"), tif="Market"))
    assert refused.value.code == "TIF_MISMATCH"
    maker.cancel()
    # Signed far beyond the venue's slippage cap (3,000 + 5 %): it matches inside the cap, and the
    # fill settles with the terms as signed (the digest covers the signed price, not the cap).
    maker.place("ETH-PERP", "sell", "3003", "0.1", tif="Alo")
    wide = taker.place("ETH-PERP", "buy", "3600", "0.1", tif="Market")
    assert (wide["status"], wide["filled"]) == ("filled", "10000000")
    (seq,) = [f["seq"] for f in taker.account_state()["fills"] if f["takerOrderId"] == wide["orderId"]]
    assert settled_fill(taker, seq)["status"] == "settled"


def test_modify_keeps_queue_priority_when_only_the_size_goes_down_and_settles_on_chain(stack):
    maker, other, taker = clients(stack, 0, 2, 1)
    ack = maker.place("ETH-PERP", "sell", "3004", "1", tif="Alo")
    behind = other.place("ETH-PERP", "sell", "3004", "1", tif="Alo")
    kept = maker.modify(ack["orderId"], "ETH-PERP", "sell", "3004", "0.4", tif="Alo")
    assert (kept["orderId"], kept["status"], kept["remaining"]) == (ack["orderId"], "resting", "40000000")
    assert httpx.get(f"{stack['api']}/book/0").json()["asks"][0] == [str(usdc(3_004)), "140000000"]
    cross = taker.place("ETH-PERP", "buy", "3004", "0.4", tif="Ioc")  # meets the modified order first
    assert cross["status"] == "filled"
    (seq,) = [f["seq"] for f in taker.account_state()["fills"] if f["takerOrderId"] == cross["orderId"]]
    fill = settled_fill(taker, seq)  # the original signature (1 ETH) still bounds the 0.4 that settles
    assert fill["status"] == "settled" and fill["makerOrderId"] == ack["orderId"]
    moved = other.modify(behind["orderId"], "ETH-PERP", "sell", "3005", "1", tif="Alo")  # new price: new order
    assert moved["orderId"] != behind["orderId"] and moved["status"] == "resting"
    with pytest.raises(VenueError) as refused:
        taker.modify(behind["orderId"], "ETH-PERP", "sell", "3005", "1", tif="Alo")
    assert refused.value.status == 404 and refused.value.code == "UNKNOWN_ORDER"
    assert other.cancel() == [moved["orderId"]]
    maker.cancel()


def test_orders_posted_on_the_websocket_are_answered_in_kind_and_rest_on_the_book(stack):
    (maker,) = clients(stack, 0)
    good = maker.order_body("ETH-PERP", "sell", "3007", "0.2", tif="Alo")
    off_tick = maker.order_body("ETH-PERP", "sell", "3007.001", "0.2", tif="Alo")
    forged = dict(maker.order_body("ETH-PERP", "sell", "3007", "0.2", tif="Alo"), size="30000000")
    url = stack["api"].replace("http", "ws") + "/ws"

    async def session():
        async with websockets.connect(url) as ws:
            for i, order in enumerate((good, off_tick, forged)):
                await ws.send(json.dumps({"method": "post", "id": i, "request": {"type": "order", "order": order}}))
            await ws.send("not json")
            answers = {}
            while len(answers) < 4:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if m["channel"] == "post":
                    answers[m["id"]] = m["data"]
            return answers

    answers = asyncio.run(session())
    assert answers[0]["status"] == "resting"
    assert (answers[1]["status"], answers[1]["code"]) == ("error", "TICK_SIZE")
    assert (answers[2]["status"], answers[2]["code"]) == ("error", "BAD_SIGNATURE")
    assert (answers[None]["status"], answers[None]["code"]) == ("error", "INVALID_JSON")
    assert [str(usdc(3_007)), "20000000"] in httpx.get(f"{stack['api']}/book/0").json()["asks"]
    assert maker.cancel() == [answers[0]["orderId"]]
