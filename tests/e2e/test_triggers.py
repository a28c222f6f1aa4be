"""Stop-loss and take-profit orders (venue/triggers.py) through a real crash: ETH's path on
2020-03-12 (Binance perp, 1-minute closes, keeper/data/prices) replayed by the oracle keeper
process at 30x (a new price every 2 s) from 155.01 down through 123.25. A long holds a stop-loss (a market sell,
reduce-only, attached to the position) and a take-profit limit; both survive a restart of the
venue; the oracle's first price at or below the trigger fires the stop, whose fill settles in the
next block (or the one after) within its signed limit; the take-profit goes with the position."""

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx

from venue.chain import contract
from venue.client import Client
from venue.devchain import dev_keys, wait_until

from .scenario import fresh_prices, served_venue, start_server, stop_process

CRASH = Path(__file__).resolve().parents[2] / "keeper/data/prices/eth_usdt_perp_binance_1m_20200312-13.csv"
OFFSET_S = 38_220  # 2020-03-12 21:28 UTC: 155.01, then -20 % in ten minutes
START, STOP, TAKE = "155.01", "150", "170"


def usdc(text: str) -> int:
    return int(Decimal(text) * 10**6)


def trigger(c: Client, side: str, price: str, size: str, trigger_price: str, tpsl: str, is_market: bool) -> dict:
    body = c.order_body("ETH-PERP", side, price, size, tif="Market" if is_market else "Gtc", reduce_only=True)
    return c._post("/triggers", {"order": body, "triggerPrice": str(usdc(trigger_price)), "tpsl": tpsl,
                                 "isMarket": is_market, "attached": True})


def test_a_stop_loss_fires_in_the_block_after_the_oracle_crosses_in_a_replayed_crash(tmp_path):
    with served_venue(tmp_path) as s:
        api, w3 = s["api"], s["w3"]
        fresh_prices(s, eth=usdc(START))
        maker, long = Client.from_devnet(0, str(s["path"]), api), Client.from_devnet(1, str(s["path"]), api)
        maker.place("ETH-PERP", "sell", START, "1", tif="Alo")
        assert long.place("ETH-PERP", "buy", START, "1", tif="Ioc")["status"] == "filled"
        for k in range(6):  # bids the stop will sell into, just above the trigger (a fill must still lie within
            maker.place("ETH-PERP", "buy", f"{150.5 - k / 2:.2f}", "0.5", tif="Alo")  # 5 % of the oracle when it settles)
        stop = trigger(long, "sell", "140", "1", STOP, "sl", True)  # the worst price it may settle at: 140
        take = trigger(long, "sell", TAKE, "1", TAKE, "tp", False)
        assert stop["status"] == take["status"] == "waitingForTrigger"
        # Not on a flat position; not a market trigger unsigned IOC.
        flat = httpx.post(f"{api}/triggers", json={"order": maker.order_body("BTC-PERP", "sell", "50000", "0.01",
                                                                               tif="Market", reduce_only=True),
                                                   "triggerPrice": "55000000000", "tpsl": "sl", "attached": True})
        assert flat.status_code == 400 and flat.json()["code"] == "NO_POSITION"
        unsigned_ioc = httpx.post(f"{api}/triggers", json={"order": long.order_body("ETH-PERP", "sell", "140", "1"),
                                                           "triggerPrice": str(usdc(STOP)), "tpsl": "sl"})
        assert unsigned_ioc.json()["code"] == "TIF_MISMATCH"

        # They survive a restart (journalled).
        assert stop_process(s["server"]) == 0
        s["server"] = start_server(s["path"], s["anvil"].url, tmp_path, s["port"])
        wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 30, "the restarted venue")
        waiting = {t["triggerId"]: t for t in long.account_state()["triggers"]}
        assert set(waiting) == {stop["triggerId"], take["triggerId"]}
        assert waiting[stop["triggerId"]]["condition"] == f"mark below {usdc(STOP)}"

        # The crash, pushed by the oracle keeper as it would be live.
        start_block = w3.eth.block_number
        keeper = subprocess.Popen([sys.executable, "-m", "keeper.cli", "oracle", "--deployment", str(s["path"]),
                                   "--key", dev_keys(3)[2], "--feed", "csv", "--csv", f"0={CRASH}", "--speed", "30",
                                   "--start-offset", str(OFFSET_S), "--heartbeat", "1", "--deviation-bps", "10"])
        try:
            fired = wait_until(lambda: (t := httpx.get(f"{api}/accounts/{long.address}/order",
                                                       params={"orderId": stop["triggerId"]}).json())["status"]
                               != "waiting" and t, 40, "the stop to fire")
            assert fired["status"] == "triggered", (fired["reason"], fired)
            child = fired["orderId"]
            fills = wait_until(lambda: (f := httpx.get(f"{api}/accounts/{long.address}/order",
                                                       params={"orderId": child}).json()["fills"])
                               and all(x["status"] in ("settled", "rejected") for x in f) and f, 30,
                               "the stop's fill to settle")
            assert all(f["status"] == "settled" for f in fills), [(f["status"], f["reason"], f["price"]) for f in fills]
        finally:
            keeper.terminate()
            keeper.wait(10)
        doc = json.loads(s["path"].read_text())
        oracle = contract(w3, "Oracle", doc["Oracle"])
        crossed = min(e.blockNumber for e in oracle.events.PriceUpdated().get_logs(from_block=start_block)
                      if e.args.id == 0 and e.args.price <= usdc(STOP))
        settled_in = {w3.eth.get_transaction_receipt(f["txHash"]).blockNumber for f in fills}
        print(f"\nstop at {STOP}: the oracle crossed in block {crossed}; the stop's fill settled in {settled_in}")
        assert all(1 <= b - crossed <= 2 for b in settled_in), (crossed, settled_in)
        assert sum(int(f["size"]) for f in fills) == 10**8
        assert all(int(f["price"]) >= usdc("140") for f in fills)  # never below what the long signed
        ch = contract(w3, "ClearingHouse", doc["ClearingHouse"])
        assert ch.functions.position(long.address, 0).call()[0] == 0
        # The take-profit went with the position.
        tp = httpx.get(f"{api}/accounts/{long.address}/order", params={"orderId": take["triggerId"]}).json()
        assert tp["status"] == "cancelled" and not long.account_state()["triggers"]
