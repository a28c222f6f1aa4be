"""`keeper mm` as a process against `venue serve` on a real Anvil: it quotes through its agent
key, keeps quiet while nothing moves, re-quotes after a fill, survives a kill by adopting its
orders, exports Prometheus metrics, cancels on SIGTERM and reports its run. Also `POST /batch`
and cancel-by-ids as a user sends them."""

import json
import signal
import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from keeper.mm_run import agent_key_for
from venue.chain import contract
from venue.client import Client
from venue.devchain import free_port, wait_until
from venue.signing import address_of

from .scenario import served_venue, start_server

LEVELS = 2  # a side per market: 8 orders in all


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total


def _up(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health").status_code == 200
    except httpx.HTTPError:
        return False


def start_mm(path, api, tmp, port, *extra):
    return subprocess.Popen([sys.executable, "-m", "keeper.cli", "mm", "--deployment", str(path), "--api", api,
                             "--trader", "0", "--levels", str(LEVELS), "--metrics-port", str(port),
                             "--telemetry", str(tmp / "mm.jsonl"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_keeper_mm_quotes_stays_quiet_requotes_adopts_after_a_kill_and_reports(tmp_path):
    with served_venue(tmp_path) as s:
        api, path = s["api"], s["path"]
        doc = json.loads(path.read_text())
        owner = Client.from_devnet(0, str(path), api)
        taker = Client.from_devnet(1, str(path), api)
        port = free_port()
        mm = start_mm(path, api, tmp_path, port)
        try:
            orders = wait_until(lambda: len(o := owner.open_orders()) == 4 * LEVELS and o, 60, "the bot's quotes")
            ch = contract(s["w3"], "ClearingHouse", doc["ClearingHouse"])
            agent = address_of(agent_key_for(doc["keys"]["traders"][0]))
            assert ch.functions.isAgent(owner.address, agent).call()  # approved on-chain, signing the quotes
            book = httpx.get(f"{api}/book/0").json()
            assert int(book["bids"][0][0]) < 3_000 * 10**6 < int(book["asks"][0][0])

            # Nothing moves: no quote updates (the oracle is not pushed in this test).
            wait_until(lambda: metric(port, "mm_quote_updates_total") >= 4 * LEVELS, 10, "metrics")
            before = metric(port, "mm_quote_updates_total")
            time.sleep(3)
            assert metric(port, "mm_quote_updates_total") == before
            assert {o["id"] for o in owner.open_orders()} == {o["id"] for o in orders}

            # A taker lifts the best ask: the bot sees its fill, skews and re-quotes.
            best_ask = min((o for o in orders if o["market"] == 0 and o["side"] == "sell"),
                           key=lambda o: int(o["price"]))
            lift = taker.place("ETH-PERP", "buy", str(int(best_ask["price"]) / 10**6), "0.5", tif="Ioc")
            wait_until(lambda: metric(port, "mm_fills_total") == 1, 10, "the bot's fill in its metrics")
            wait_until(lambda: metric(port, "mm_quote_updates_total") > before, 10, "a re-quote")
            wait_until(lambda: metric(port, "mm_position") < 0, 10, "the short position")
            # Settled, the fill is still counted once (the venue sends it at the match and at the
            # settlement), and the bot's position is the venue's.
            wait_until(lambda: all(f["status"] == "settled" for f in httpx.get(
                f"{api}/accounts/{taker.address}/order", params={"orderId": lift["orderId"]}).json()["fills"]), 20,
                "the fill to settle")
            time.sleep(0.5)  # the settlement's message has reached the bot by now
            venue_position = next(int(p["sizeWithPending"]) for p in owner.account_state()["positions"]
                                  if int(p["market"]) == 0)
            assert metric(port, "mm_fills_total") == 1 and metric(port, "mm_position") == venue_position / 10**8 < 0
            wait_until(lambda: len(owner.open_orders()) == 4 * LEVELS, 10, "the book refilled")

            # Killed without warning, restarted: the open orders are adopted, none orphaned.
            kept = {o["id"] for o in owner.open_orders()}
            mm.send_signal(signal.SIGKILL)
            mm.wait(10)
            assert {o["id"] for o in owner.open_orders()} == kept
            mm = start_mm(path, api, tmp_path, port)
            wait_until(lambda: '"adopted"' in (tmp_path / "mm.jsonl").read_text(), 30, "the restarted bot's adoption")
            time.sleep(2)  # what it would send after adopting, it has sent by now
            after = owner.open_orders()
            assert len(after) == 4 * LEVELS  # no second set of quotes beside the adopted one
            assert len({o["id"] for o in after} & kept) >= 4 * LEVELS - 4  # the ETH skew may reprice some

            # The venue restarts (killed, then up again on its journal): the bot's websocket drops,
            # it reconnects for fresh snapshots and goes on quoting the same orders.
            s["server"].send_signal(signal.SIGKILL)
            s["server"].wait(10)
            s["server"] = start_server(path, s["anvil"].url, tmp_path, s["port"])
            wait_until(lambda: _up(api), 30, "the restarted venue")
            wait_until(lambda: metric(port, "mm_ws_reconnects_total") >= 1, 60, "the bot's reconnection")
            assert {o["id"] for o in owner.open_orders()} == {o["id"] for o in after}
            taker.place("ETH-PERP", "sell", "2900", "0.2", tif="Ioc")  # hits the best bid
            wait_until(lambda: metric(port, "mm_fills_total") == 1, 15, "the fill after the reconnection")
        finally:
            mm.send_signal(signal.SIGTERM)
            output = mm.communicate(timeout=20)[0]
        assert mm.returncode == 0, output
        assert "adopted" in output
        assert owner.open_orders() == []  # SIGTERM cancels every quote

    report = subprocess.run([sys.executable, "-m", "keeper.cli", "mm", "--report", str(tmp_path / "mm.jsonl")],
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    assert "markout 5s vs mid" in report.stdout and "PnL spread" in report.stdout
    assert {p.name for p in (tmp_path / "mm").glob("*.png")} == {"inventory.png", "pnl.png", "markouts.png"}
    records = [json.loads(line) for line in (tmp_path / "mm.jsonl").read_text().splitlines()]
    fills = {r["id"]: r for r in records if r["kind"] == "fill"}.values()  # the killed bot's fill included
    assert [f["side"] for f in fills] == ["sell", "buy"]  # before the kill, and after the reconnection
    assert all(set(f["markout_mid_bps"]) == {"1s", "5s", "30s", "60s"} for f in fills)


def test_batch_endpoint_answers_each_item_alone_and_cancel_by_ids(tmp_path):
    with served_venue(tmp_path) as s:
        api, path = s["api"], s["path"]
        c = Client.from_devnet(0, str(path), api)
        a = c.place("ETH-PERP", "buy", "2990", "0.1", tif="Alo")
        b = c.place("ETH-PERP", "buy", "2989", "0.1", tif="Alo")
        good = c.order_body("ETH-PERP", "sell", "3010", "0.1", tif="Alo")
        forged = dict(c.order_body("ETH-PERP", "sell", "3011", "0.1", tif="Alo"), price="3012000000")
        shrink = c.order_body("ETH-PERP", "buy", "2989", "0.05", tif="Alo")
        answer = c.bulk(cancel_ids=[a["orderId"], 999_999], modifies=[(b["orderId"], shrink)], orders=[good, forged])
        assert answer["cancelled"][0]["status"] == "cancelled" and answer["cancelled"][0]["orderId"] == a["orderId"]
        assert answer["cancelled"][1]["status"] == "error" and answer["cancelled"][1]["code"] == "UNKNOWN_ORDER"
        assert answer["modified"][0]["status"] == "resting" and answer["modified"][0]["orderId"] == b["orderId"]
        assert answer["modified"][0]["remaining"] == str(5 * 10**6)  # shrunk in place: same id, same queue spot
        assert answer["placed"][0]["status"] == "resting"
        assert answer["placed"][1]["status"] == "error" and answer["placed"][1]["code"] == "BAD_SIGNATURE"
        assert sorted(o["id"] for o in c.open_orders()) == sorted([b["orderId"], answer["placed"][0]["orderId"]])
        # A replayed cancel (same signed body) is refused and changes nothing.
        body = {"cancel": c.cancel_body(order_ids=[b["orderId"]]), "modify": [], "orders": []}
        assert httpx.post(f"{api}/batch", json=body).status_code == 200
        replay = httpx.post(f"{api}/batch", json=body)
        assert replay.status_code == 400 and replay.json()["code"] == "DUPLICATE_NONCE", replay.text
        # Cancel several by id over POST /cancel (the Action text lists them).
        ids = [c.place("ETH-PERP", "buy", str(2980 - i), "0.1", tif="Alo")["orderId"] for i in range(3)]
        assert sorted(c.cancel(order_ids=ids + [123_456])) == sorted(ids)
        bad = c.cancel_body(order_ids=[answer["placed"][0]["orderId"]])
        bad["orderIds"] = [answer["placed"][0]["orderId"], 5]  # not what was signed
        refused = httpx.post(f"{api}/cancel", json=bad)
        assert refused.status_code in (400, 401) and refused.json()["code"] == "BAD_SIGNATURE"
        assert [o["id"] for o in c.open_orders()] == [answer["placed"][0]["orderId"]]
