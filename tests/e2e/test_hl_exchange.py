"""Hyperliquid's `/exchange` on crossbook (venue/hl_exchange.py), driven by the official SDK
unchanged (`hyperliquid-python-sdk` 0.24.0, `Exchange(wallet, base_url=".../hl")`) against
`venue serve` on a real Anvil: the traders approve the gateway with `venue hl approve`; then
resting orders with a cloid, a bulk order with one bad order, modify and batch modify (by
cloid), cancels, a market open and close settling on-chain, leverage, an agent approved with
`approve_agent` trading for its account, the dead-man's switch, a tampered and a replayed
request refused (the replay also after a restart), unsupported actions answered `status: err`,
and `venue hl verify` tracing every gateway fill to its signed request."""

import asyncio
import json
import marshal
import sqlite3
from decimal import Decimal
import subprocess
import sys

import ccxt
import httpx
import websockets
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import get_timestamp_ms, order_request_to_order_wire, order_wires_to_order_action, \
    sign_l1_action
from hyperliquid.utils.types import Cloid

from venue.chain import contract
from venue.risk import funding_owed
from venue.devchain import dev_keys, wait_until
from venue.signing import address_of

from .scenario import served_venue, start_server, stop_process

CLOID = Cloid("0x000000000000000000000000000000b1")
GATEWAY_KEY = dev_keys(12)[11]


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "venue.cli", *args], capture_output=True, text=True, timeout=120)


def statuses(answer: dict) -> list:
    assert answer["status"] == "ok", answer
    return answer["response"]["data"]["statuses"]


def settled(api: str, account: str, oid: int) -> bool:
    fills = httpx.get(f"{api}/accounts/{account}/order", params={"orderId": oid}).json()["fills"]
    return bool(fills) and all(f["status"] == "settled" for f in fills)


def signed_order_body(wallet, info, price: float) -> dict:
    """A request exactly as the SDK's `order` posts it (its own signing functions)."""
    nonce = get_timestamp_ms()
    action = order_wires_to_order_action([order_request_to_order_wire(
        {"coin": "ETH", "is_buy": True, "sz": 0.01, "limit_px": price, "order_type": {"limit": {"tif": "Alo"}},
         "reduce_only": False}, info.name_to_asset("ETH"))], None)
    signature = sign_l1_action(wallet, action, None, nonce, None, False)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None, "expiresAfter": None}


async def raw_socket(base: str) -> list[str]:
    """The websocket as any client sees it: the greeting, ping, a bad coin and a bad frame
    (answered on `error`, the connection stays open), then a subscription."""
    async with websockets.connect(base.replace("http", "ws", 1) + "/ws") as ws:
        assert await asyncio.wait_for(ws.recv(), 10) == "Websocket connection established."
        for message in ({"method": "ping"}, {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "DOGE"}},
                        "not json", {"method": "subscribe", "subscription": {"type": "allMids"}}):
            await ws.send(message if isinstance(message, str) else json.dumps(message))
        return [json.loads(await asyncio.wait_for(ws.recv(), 10))["channel"] for _ in range(5)]


def test_the_official_sdk_trades_through_the_gateway_and_every_fill_traces_to_a_signed_request(tmp_path):
    with served_venue(tmp_path, VENUE_HL_GATEWAY_KEY=GATEWAY_KEY) as s:
        api, path = s["api"], str(s["path"])
        base = f"{api}/hl"
        doc = json.loads(s["path"].read_text())
        maker_key, taker_key = doc["keys"]["traders"][0], doc["keys"]["traders"][1]
        maker_addr, taker_addr = address_of(maker_key), address_of(taker_key)
        assert httpx.get(f"{base}/gateway").json()["gateway"] == address_of(GATEWAY_KEY)
        maker = Exchange(Account.from_key(maker_key), base_url=base)
        info = Info(base, skip_ws=True)

        # Before the account approves the gateway, its orders are refused, saying what to do.
        refused = maker.order("ETH", True, 0.01, 2990, {"limit": {"tif": "Alo"}})
        assert refused["status"] == "err" and "venue hl approve" in refused["response"]
        for trader in ("0", "1"):
            done = cli("hl", "approve", "--deployment", path, "--trader", trader, "--api", api)
            assert done.returncode == 0 and "approved the gateway" in done.stdout, done.stderr

        # The SDK's websocket: every subscription's messages, collected as they arrive.
        feed = Info(base, skip_ws=False)
        seen: dict[str, list] = {}
        for sub in ({"type": "l2Book", "coin": "ETH"}, {"type": "trades", "coin": "ETH"}, {"type": "allMids"},
                    {"type": "bbo", "coin": "ETH"}, {"type": "orderUpdates", "user": maker_addr},
                    {"type": "userEvents", "user": taker_addr}, {"type": "userFills", "user": taker_addr.lower()}):
            feed.subscribe(sub, lambda m, name=sub["type"]: seen.setdefault(name, []).append(m))

        # A resting order with a cloid; a bulk order with one bad order refused alone.
        bid = statuses(maker.order("ETH", True, 0.25, 2990.5, {"limit": {"tif": "Alo"}}, cloid=CLOID))[0]
        assert bid["resting"]["cloid"] == CLOID.to_raw()
        oid = bid["resting"]["oid"]
        bulk = statuses(maker.bulk_orders([
            {"coin": "ETH", "is_buy": False, "sz": 0.5, "limit_px": 3001, "order_type": {"limit": {"tif": "Gtc"}},
             "reduce_only": False},
            {"coin": "ETH", "is_buy": False, "sz": 0.5, "limit_px": 3001.005, "order_type": {"limit": {"tif": "Gtc"}},
             "reduce_only": False},
            {"coin": "ETH", "is_buy": True, "sz": 0.001, "limit_px": 2900, "order_type": {"limit": {"tif": "Gtc"}},
             "reduce_only": False}]))
        assert "resting" in bulk[0]
        assert bulk[1] == {"error": "Price must be divisible by tick size. asset=0"}
        assert bulk[2] == {"error": "Order must have minimum value of $10. asset=0"}
        ask_oid = bulk[0]["resting"]["oid"]
        post_only = statuses(maker.order("ETH", True, 0.01, 3001, {"limit": {"tif": "Alo"}}))[0]
        assert post_only["error"].startswith("Post only order would have immediately matched, bbo was 2990.5@3001")

        # Modify: a smaller size at the same price keeps the order (and its queue place); a new
        # price by cloid replaces it, keeping the cloid.
        kept = statuses(maker.modify_order(oid, "ETH", True, 0.2, 2990.5, {"limit": {"tif": "Alo"}}))[0]
        assert kept == {"resting": {"oid": oid, "cloid": CLOID.to_raw()}}
        moved = statuses(maker.bulk_modify_orders_new([{"oid": CLOID, "order": {
            "coin": "ETH", "is_buy": True, "sz": 0.2, "limit_px": 2995, "order_type": {"limit": {"tif": "Alo"}},
            "reduce_only": False, "cloid": None}}]))[0]
        new_oid = moved["resting"]["oid"]
        assert new_oid != oid
        by_cloid = info.query_order_by_cloid(maker_addr, CLOID)["order"]
        assert by_cloid["order"]["oid"] == new_oid and by_cloid["order"]["limitPx"] == "2995"
        front = {o["oid"]: o for o in info.frontend_open_orders(maker_addr)}
        assert front[new_oid]["cloid"] == CLOID.to_raw() and front[new_oid]["tif"] == "Alo"

        # A market open by the taker, priced by the SDK at mid + 5 % (beyond the oracle band: the
        # facade bounds it at the band's edge), fills at the ask and settles on-chain.
        taker = Exchange(Account.from_key(taker_key), base_url=base)
        opened = statuses(taker.market_open("ETH", True, 0.1))[0]
        assert opened["filled"]["totalSz"] == "0.1" and opened["filled"]["avgPx"] == "3001"
        assert info.user_state(taker_addr)["assetPositions"][0]["position"]["szi"] == "0.1"  # before settlement
        wait_until(lambda: settled(api, taker_addr, opened["filled"]["oid"]), 30, "the market open to settle")
        ch = contract(s["w3"], "ClearingHouse", doc["ClearingHouse"])
        assert ch.functions.position(taker_addr, 0).call()[0] == 10**7
        # A funding update while the taker holds it: userFunding shows the payment, fundingHistory the rate.
        keeper = address_of(dev_keys(3)[2])
        for _ in range(2):  # the first sets a rate, the second accrues it over the block between
            receipt = s["w3"].eth.wait_for_transaction_receipt(
                ch.functions.updateFunding(0, 10**16).transact({"from": keeper}))
        index = ch.events.FundingUpdated().process_receipt(receipt)[0].args.fundingIndex
        (payment,) = info.user_funding_history(taker_addr, 0)
        assert payment["delta"]["coin"] == "ETH" and payment["delta"]["szi"] == "0.1"
        assert Decimal(payment["delta"]["usdc"]) == Decimal(-funding_owed(10**7, index, 0)) / 10**6 < 0
        assert payment["hash"] == receipt.transactionHash.to_0x_hex()
        assert [(h["coin"], h["fundingRate"]) for h in info.funding_history("ETH", 0)] == [("ETH", "0.01")] * 2
        # A stop-loss attached to the position (positionTpsl): shown as a trigger, gone with the position.
        (stop,) = statuses(taker.bulk_orders([{"coin": "ETH", "is_buy": False, "sz": 0.1, "limit_px": 2800,
                                               "order_type": {"trigger": {"triggerPx": 2900, "isMarket": True,
                                                                          "tpsl": "sl"}}, "reduce_only": True}],
                                             grouping="positionTpsl"))
        stop_oid = stop["resting"]["oid"]
        shown = {o["oid"]: o for o in info.frontend_open_orders(taker_addr)}[stop_oid]
        assert (shown["isTrigger"], shown["triggerPx"], shown["orderType"], shown["isPositionTpsl"],
                shown["triggerCondition"]) == (True, "2900", "Stop Market", True, "Price below 2900")
        assert info.query_order_by_oid(taker_addr, stop_oid)["order"]["status"] == "open"
        closed = statuses(taker.market_close("ETH"))[0]
        assert closed["filled"]["totalSz"] == "0.1" and closed["filled"]["avgPx"] == "2995"
        wait_until(lambda: settled(api, taker_addr, closed["filled"]["oid"]), 30, "the market close to settle")
        assert ch.functions.position(taker_addr, 0).call()[0] == 0
        assert info.query_order_by_oid(taker_addr, stop_oid)["order"]["status"] == "canceled"
        # A take-profit already due fires at once: its limit order rests on the book.
        (tp,) = statuses(maker.order("ETH", False, 0.01, 3100, {"trigger": {"triggerPx": 2000, "isMarket": False,
                                                                             "tpsl": "tp"}}))
        assert tp["resting"]["oid"] in {o["oid"] for o in info.open_orders(maker_addr)}
        later = statuses(maker.order("ETH", False, 0.01, 3100, {"trigger": {"triggerPx": 3500, "isMarket": False,
                                                                             "tpsl": "tp"}}))[0]["resting"]["oid"]
        assert statuses(maker.cancel("ETH", later)) == ["success"]
        grouped = maker.bulk_orders([{"coin": "ETH", "is_buy": True, "sz": 0.01, "limit_px": 2900,
                                      "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False}],
                                    grouping="positionTpsl")
        assert "entry order, then tp/sl triggers" in statuses(grouped)[0]["error"]
        # userFills: newest first, the taker's side, the settlement transaction, PnL on the close.
        close_fill, open_fill = info.user_fills(taker_addr)
        assert (open_fill["dir"], open_fill["side"], open_fill["px"], open_fill["startPosition"],
                open_fill["crossed"], open_fill["closedPnl"]) == ("Open Long", "B", "3001", "0", True, "0")
        assert (close_fill["dir"], close_fill["startPosition"], close_fill["closedPnl"], close_fill["oid"]) == \
            ("Close Long", "0.1", "-0.6", closed["filled"]["oid"])
        assert Decimal(open_fill["fee"]) == Decimal("0.150050")  # 5 bp of 300.1, rounded up
        assert close_fill["hash"] != "0x" + "0" * 64 and close_fill["tid"] > open_fill["tid"]
        maker_fill = info.user_fills(maker_addr)[0]
        assert (maker_fill["crossed"], maker_fill["side"], maker_fill["dir"]) == (False, "B", "Close Short")
        assert Decimal(maker_fill["fee"]) < 0  # the maker's rebate
        assert info.user_fills_by_time(taker_addr, open_fill["time"], open_fill["time"]) == [open_fill] or \
            open_fill["time"] == close_fill["time"]
        candles = info.candles_snapshot("ETH", "1m", 0, get_timestamp_ms())
        assert sum(c["n"] for c in candles) == 2 and Decimal(candles[0]["v"]) + Decimal(candles[-1]["v"]) >= \
            Decimal("0.1")
        no_liquidity = statuses(taker.order("ETH", True, 0.01, 2900, {"limit": {"tif": "Ioc"}}))[0]
        assert no_liquidity == {"error": "Order could not immediately match against any resting orders. asset=0"}
        reduce = statuses(taker.order("ETH", True, 0.01, 3001, {"limit": {"tif": "Gtc"}}, reduce_only=True))[0]
        assert reduce["error"].startswith("Reduce only order would increase position")

        # What the websocket carried: book snapshots, the trades, bbo and mids, the maker's order
        # updates, the taker's fills (a userFills snapshot first) and user events.
        wait_until(lambda: len(seen.get("trades", [])) >= 2 and len(seen.get("userEvents", [])) >= 2
                   and len(seen.get("userFills", [])) >= 3, 10, "the websocket's fill messages")
        books = [m["data"] for m in seen["l2Book"]]
        assert books[0]["coin"] == "ETH" and any(b["levels"][0] and b["levels"][0][0]["px"] == "2995" for b in books)
        trades = [t for m in seen["trades"] for t in m["data"]]
        assert [(t["side"], t["px"], t["sz"], t["users"][0]) for t in trades] == [
            ("B", "3001", "0.1", taker_addr), ("A", "2995", "0.1", maker_addr)]
        fills = seen["userFills"]
        assert fills[0]["data"]["isSnapshot"] is True and fills[0]["data"]["fills"] == []
        assert [m["data"]["fills"][0]["dir"] for m in fills[1:]] == ["Open Long", "Close Long"]
        assert [m["data"]["fills"][0]["crossed"] for m in seen["userEvents"]] == [True, True]
        updates = [u for m in seen["orderUpdates"] for u in m["data"]]
        assert {"open", "canceled"} <= {u["status"] for u in updates} and all(u["order"]["coin"] == "ETH" for u in updates)
        assert seen["bbo"][-1]["data"]["bbo"][0]["px"] == "2995" and "ETH" in seen["allMids"][-1]["data"]["mids"]

        # Cancels: by oid and by cloid; an unknown one answered alone.
        assert statuses(maker.cancel("ETH", ask_oid)) == ["success"]
        assert statuses(maker.cancel("ETH", ask_oid)) == [
            {"error": "Order was never placed, already canceled, or filled. asset=0"}]
        assert statuses(maker.cancel_by_cloid("ETH", CLOID)) == ["success"]
        assert info.query_order_by_oid(maker_addr, new_oid)["order"]["status"] == "canceled"

        # Leverage: cross is taken and shown; isolated is refused.
        assert maker.update_leverage(5, "ETH") == {"status": "ok", "response": {"type": "default"}}
        assert maker.update_leverage(5, "ETH", is_cross=False)["status"] == "err"

        # An agent approved through the SDK trades for the account that approved it.
        approved, agent_key = maker.approve_agent()
        assert approved == {"status": "ok", "response": {"type": "default"}}
        agent = Exchange(Account.from_key(agent_key), base_url=base, account_address=maker_addr)
        by_agent = statuses(agent.order("ETH", False, 0.01, 3050, {"limit": {"tif": "Gtc"}}))[0]
        assert by_agent["resting"]["oid"] in {o["oid"] for o in info.open_orders(maker_addr)}
        # A second unnamed agent replaces the first, whose requests are then refused.
        replaced, second_key = maker.approve_agent()
        assert replaced["status"] == "ok"
        gone = agent.order("ETH", False, 0.01, 3050, {"limit": {"tif": "Gtc"}})
        assert gone["status"] == "err" and gone["response"].startswith("User or API Wallet ")
        second = Exchange(Account.from_key(second_key), base_url=base, account_address=maker_addr)
        assert "resting" in statuses(second.order("ETH", False, 0.01, 3050, {"limit": {"tif": "Gtc"}}))[0]
        # expiresAfter: signed into the request; past, the action is refused.
        maker.set_expires_after(get_timestamp_ms() + 60_000)
        assert "resting" in statuses(maker.order("ETH", True, 0.01, 2940, {"limit": {"tif": "Alo"}}))[0]
        maker.set_expires_after(get_timestamp_ms() - 1)
        expired = maker.order("ETH", True, 0.01, 2940, {"limit": {"tif": "Alo"}})
        assert expired["status"] == "err" and expired["response"].startswith("action expired")
        maker.set_expires_after(None)
        # normalTpsl: an entry and its stop, which waits for the entry's fill and goes if the entry
        # leaves the book without one.
        entry, child = statuses(maker.bulk_orders([
            {"coin": "ETH", "is_buy": True, "sz": 0.01, "limit_px": 2950, "order_type": {"limit": {"tif": "Gtc"}},
             "reduce_only": False},
            {"coin": "ETH", "is_buy": False, "sz": 0.01, "limit_px": 2700,
             "order_type": {"trigger": {"triggerPx": 2800, "isMarket": True, "tpsl": "sl"}}, "reduce_only": True}],
            grouping="normalTpsl"))
        assert info.query_order_by_oid(maker_addr, child["resting"]["oid"])["order"]["status"] == "open"
        assert statuses(maker.cancel("ETH", entry["resting"]["oid"])) == ["success"]
        assert info.query_order_by_oid(maker_addr, child["resting"]["oid"])["order"]["status"] == "canceled"
        stranger = Exchange(Account.create(), base_url=base)
        unknown = stranger.order("ETH", True, 0.01, 2990, {"limit": {"tif": "Alo"}})
        assert unknown["status"] == "err" and unknown["response"].startswith("User or API Wallet ")

        # The dead-man's switch: too early is refused; armed, it cancels every open order.
        assert maker.schedule_cancel(get_timestamp_ms() + 1_000)["status"] == "err"
        assert maker.schedule_cancel(get_timestamp_ms() + 5_500)["status"] == "ok"
        wait_until(lambda: not info.open_orders(maker_addr), 20, "the scheduled cancel")
        wait_until(lambda: any(u["status"] == "scheduledCancel" for m in seen["orderUpdates"] for u in m["data"]), 5,
                   "the scheduled cancel's order update")
        feed.disconnect_websocket()
        assert asyncio.run(raw_socket(base)) == ["pong", "error", "error", "subscriptionResponse", "allMids"]
        assert maker.schedule_cancel(None)["status"] == "ok"  # disarmed

        # Tampered (the price changed after signing: it recovers some other address) and replayed.
        wallet = Account.from_key(maker_key)
        body = signed_order_body(wallet, info, 2980)
        tampered = json.loads(json.dumps(body))
        tampered["action"]["orders"][0]["p"] = "2981"
        answer = httpx.post(f"{base}/exchange", json=tampered).json()
        assert answer["status"] == "err" and answer["response"].startswith("User or API Wallet ")
        assert statuses(httpx.post(f"{base}/exchange", json=body).json())[0]["resting"]
        replayed = httpx.post(f"{base}/exchange", json=body).json()
        assert replayed["status"] == "err" and "already used" in replayed["response"]

        # Outside what crossbook does: status err, never a crash; not an action at all: 400 {code, msg}.
        for answer in (maker.withdraw_from_bridge(1.0, maker_addr), maker.update_isolated_margin(1.0, "ETH"),
                       maker.approve_builder_fee("0x" + "11" * 20, "0.01%"), maker.usd_transfer(1.0, taker_addr)):
            assert answer["status"] == "err" and "not supported" in answer["response"], answer
        junk = httpx.post(f"{base}/exchange", content=b"nope", headers={"content-type": "application/json"})
        assert junk.status_code == 400 and junk.json()["code"] == "INVALID_JSON"
        shape = httpx.post(f"{base}/exchange", json={"action": {"type": "order"}, "nonce": -1, "signature": {}})
        assert shape.status_code == 400 and set(shape.json()) >= {"code", "msg"}

        # ccxt's hyperliquid class, its URLs pointed at the facade and in sandbox mode (it signs as
        # the SDK does): markets, an order placed and cancelled, balances.
        exchange = ccxt.hyperliquid({"walletAddress": maker_addr, "privateKey": maker_key})
        exchange.urls["api"] = exchange.urls["test"] = {"public": base, "private": base}
        exchange.set_sandbox_mode(True)
        markets = exchange.load_markets()
        assert markets["ETH/USDC:USDC"]["precision"]["amount"] == 0.001
        placed = exchange.create_order("ETH/USDC:USDC", "limit", "buy", 0.01, 2950.5)
        assert int(placed["id"]) in {o["oid"] for o in info.open_orders(maker_addr)}
        assert placed["id"] in [o["id"] for o in exchange.fetch_open_orders("ETH/USDC:USDC")]
        exchange.cancel_order(placed["id"], "ETH/USDC:USDC")
        assert int(placed["id"]) not in {o["oid"] for o in info.open_orders(maker_addr)}
        balance = exchange.fetch_balance()
        assert balance["USDC"]["total"] > 900_000

        # Revoked, the gateway can no longer trade for the taker.
        assert cli("hl", "revoke", "--deployment", path, "--trader", "1", "--api", api).returncode == 0
        revoked = wait_until(lambda: (r := taker.order("ETH", True, 0.01, 2990, {"limit": {"tif": "Alo"}}))["status"]
                             == "err" and r, 20, "the revocation to reach the venue", interval=0.5)
        assert "has not approved the gateway" in revoked["response"]

        # Killed (SIGKILL) right after acknowledging a resting order and a stop: after the restart
        # both are there, and the replayed request stays refused (the signer's nonces, the orders
        # and the trigger are journalled before the answer).
        rest_oid = statuses(maker.order("ETH", True, 0.01, 2930, {"limit": {"tif": "Alo"}}))[0]["resting"]["oid"]
        stop_oid = statuses(maker.order("ETH", False, 0.01, 1500, {"trigger": {"triggerPx": 1600, "isMarket": True,
                                                                               "tpsl": "sl"}}))[0]["resting"]["oid"]
        s["server"].kill()
        s["server"].wait(10)
        s["server"] = start_server(s["path"], s["anvil"].url, tmp_path, s["port"],
                                   VENUE_HL_GATEWAY_KEY=GATEWAY_KEY)
        wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 30, "the restarted venue")
        again = httpx.post(f"{base}/exchange", json=body).json()
        assert again["status"] == "err" and "already used" in again["response"]
        open_after = {o["oid"]: o for o in info.frontend_open_orders(maker_addr)}
        assert rest_oid in open_after and open_after[stop_oid]["isTrigger"] is True

        # Every fill of a gateway order traces to the request its account signed.
        verified = cli("hl", "verify", "--deployment", path, "--journal", str(tmp_path / "j.sqlite"))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        lines = dict(line.rsplit(None, 1) for line in verified.stdout.splitlines() if line and line[0] != " "
                     and not line.startswith("signed by"))
        assert int(lines["fills with a gateway order"]) == 2 and lines["problems"] == "0"
        assert int(lines["gateway orders checked"]) >= 9
        # A doctored journal (one signed request's size changed) is caught.
        doctored = tmp_path / "doctored.sqlite"
        with sqlite3.connect(tmp_path / "j.sqlite") as src, sqlite3.connect(doctored) as dst:
            src.backup(dst)
            for first, blob in dst.execute("SELECT first_seq, commands FROM command_groups").fetchall():
                commands = marshal.loads(blob)
                for k, (kind, args) in enumerate(commands):
                    if kind == "hl_action" and b'"0.25"' in args[0]:  # the first order's size
                        commands[k] = (kind, (args[0].replace(b'"0.25"', b'"2.5"'), *args[1:]))
                        dst.execute("UPDATE command_groups SET commands = ? WHERE first_seq = ?",
                                    (marshal.dumps(commands), first))
        caught = cli("hl", "verify", "--deployment", path, "--journal", str(doctored))
        assert caught.returncode == 1 and "the request's signature recovers" in caught.stdout, caught.stdout

