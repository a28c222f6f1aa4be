"""Hyperliquid's `/info` on crossbook (venue/hl.py), driven by the official SDK unchanged
(`hyperliquid-python-sdk` 0.24.0, `Info(base_url=".../hl")`) against `venue serve` on a real
Anvil: its constructor's calls, market data, and an account's state, orders and order status,
including a fill that is matched and not yet settled."""

import pytest
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError
from hyperliquid.utils.types import Cloid

from venue.client import Client

from .scenario import served_venue

CLOID = "0x000000000000000000000000000000a1"


def test_the_official_sdk_reads_markets_accounts_and_orders(tmp_path):
    with served_venue(tmp_path) as s:
        api = s["api"]
        maker, taker = (Client.from_devnet(trader=i, path=str(s["path"]), api_url=api) for i in (0, 1))
        bid = maker.place("ETH-PERP", "buy", "2990.5", "0.25", tif="Alo", client_id=CLOID)
        ask = maker.place("ETH-PERP", "sell", "3010", "1.5", tif="Alo")
        maker.place("ETH-PERP", "sell", "3010", "0.5", tif="Alo")  # two orders make that level
        taker.place("ETH-PERP", "buy", "3010", "0.2", tif="Ioc")

        info = Info(f"{api}/hl", skip_ws=True)  # asks spotMeta and meta on construction
        universe = info.meta()["universe"]
        assert [(u["name"], u["szDecimals"], u["maxLeverage"]) for u in universe] == [("ETH", 3, 20), ("BTC", 4, 20)]
        assert info.name_to_asset("ETH") == 0 and info.name_to_asset("BTC") == 1
        assert info.spot_meta() == {"universe": [], "tokens": []}
        mids = info.all_mids()
        assert float(mids["ETH"]) == (2990.5 + 3010) / 2 and float(mids["BTC"]) == 60_000  # BTC: no book, the oracle
        book = info.l2_snapshot("ETH")
        bids, asks = book["levels"]
        assert (bids[0]["px"], bids[0]["sz"], bids[0]["n"]) == ("2990.5", "0.25", 1)
        assert (asks[0]["px"], asks[0]["sz"], asks[0]["n"]) == ("3010", "1.8", 2)
        meta, ctxs = info.meta_and_asset_ctxs()
        assert meta["universe"][0]["name"] == "ETH" and float(ctxs[0]["oraclePx"]) == 3000
        assert ctxs[0]["midPx"] == mids["ETH"] and ctxs[1]["midPx"] is None

        # The taker's fill shows at once, before settlement.
        state = info.user_state(taker.address)
        pos = state["assetPositions"][0]["position"]
        assert (pos["coin"], pos["szi"], pos["entryPx"]) == ("ETH", "0.2", "3010")
        assert pos["leverage"] == {"type": "cross", "value": 20} and float(state["marginSummary"]["accountValue"]) > 0
        assert info.user_state(maker.address)["assetPositions"][0]["position"]["szi"] == "-0.2"
        assert info.spot_user_state(maker.address) == {"balances": []}

        orders = info.open_orders(maker.address)
        assert [(o["coin"], o["side"], o["limitPx"], o["sz"]) for o in orders] == [
            ("ETH", "A", "3010", "0.5"), ("ETH", "A", "3010", "1.3"), ("ETH", "B", "2990.5", "0.25")]
        front = {o["oid"]: o for o in info.frontend_open_orders(maker.address)}
        mine = front[bid["orderId"]]
        assert (mine["cloid"], mine["tif"], mine["isTrigger"], mine["reduceOnly"], mine["triggerPx"]) == \
            (CLOID, "Alo", False, False, "0.0")
        assert front[ask["orderId"]]["origSz"] == "1.5" and front[ask["orderId"]]["sz"] == "1.3"

        status = info.query_order_by_oid(maker.address, ask["orderId"])
        assert status["status"] == "order" and status["order"]["status"] == "open"
        assert info.query_order_by_cloid(maker.address, Cloid(CLOID))["order"]["order"]["oid"] == bid["orderId"]
        maker.cancel(bid["orderId"])
        gone = info.query_order_by_cloid(maker.address, Cloid(CLOID))  # finished orders are remembered
        assert gone["order"]["status"] == "canceled" and gone["order"]["statusTimestamp"] > 0
        filled = info.query_order_by_oid(taker.address, 10**9)
        assert filled == {"status": "unknownOid"}

        with pytest.raises(ClientError) as unsupported:  # answered 400 {code, msg}, which the SDK reads
            info.query_sub_accounts(maker.address)
        assert unsupported.value.status_code == 400 and unsupported.value.error_code == "UNSUPPORTED"
        with pytest.raises(ClientError) as bad_user:
            info.user_state("0x1234")
        assert bad_user.value.error_code == "INVALID_ADDRESS"
