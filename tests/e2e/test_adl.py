"""Auto-deleveraging end to end: a position opened through the venue goes bankrupt in a crash,
`keeper adl` (a real process) closes it against the profitable short, and the venue shows it:
the websocket's `adl` channel, the account views and the ADL lights."""

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
import websockets

from venue.chain import contract
from venue.cli import fund_traders
from venue.client import Client
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.domain import usdc
from venue.signing import address_of

from .scenario import served_deployment, start_server, warm_up


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adl")
    keys = dev_keys(7)
    with Anvil(accounts=7) as anvil:
        w3, d, path = served_deployment(anvil, tmp, keys, keys[3:5])
        fund_traders(w3, d, [keys[5]], usdc(1_000), 0)  # the account that will go bankrupt (trader 2)
        port = free_port()
        server = start_server(path, anvil.url, tmp, port)
        api = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 30, "venue API")
        try:
            warm_up(api, Client.from_devnet(1, str(path), api))
            yield {"api": api, "w3": w3, "d": d, "path": path, "keys": keys, "anvil": anvil}
        finally:
            assert stop_process(server) == 0


def test_a_bankrupt_position_is_deleveraged_by_the_keeper_and_the_venue_reports_it(stack):
    api, w3, d, keys = stack["api"], stack["w3"], stack["d"], stack["keys"]
    maker, long = (Client.from_devnet(i, str(stack["path"]), api) for i in (0, 2))
    maker.place("ETH-PERP", "sell", "3000", "6", tif="Alo")
    assert long.place("ETH-PERP", "buy", "3000", "6", tif="Ioc")["status"] == "filled"
    ch = contract(w3, "ClearingHouse", d.clearing_house)
    wait_until(lambda: ch.functions.position(long.address, 0).call()[0] == 600_000_000, 20, "the fill settled")
    oracle = contract(w3, "Oracle", d.oracle)
    ts = w3.eth.get_block("latest").timestamp  # observed now; mined in the next block
    w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices([0, 1], [usdc(2_800), usdc(60_000)], ts).transact(
        {"from": address_of(keys[2])}))
    assert ch.functions.health(long.address).call()[0] < 0  # bankrupt, and the insurance fund is empty
    wait_until(lambda: httpx.get(f"{api}/accounts/{maker.address}").json()["positions"][0]["adlLights"] == 5, 10,
               "the short's lights")  # the only short, in profit: first in the queue
    messages = []

    async def watch():
        async with websockets.connect(api.replace("http", "ws") + "/ws") as ws:
            messages.append("connected")
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 60))
                messages.append(m)
                if m["channel"] == "adl":
                    return

    async def scenario():
        watcher = asyncio.create_task(watch())
        await asyncio.to_thread(wait_until, lambda: messages, 10, "websocket")
        keeper = subprocess.Popen([sys.executable, "-m", "keeper.cli", "adl", "--deployment", str(stack["path"]),
                                   "--key", keys[2]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            await asyncio.wait_for(watcher, 60)
        finally:
            keeper.terminate()
            return keeper.communicate(timeout=10)[0]

    log = asyncio.run(scenario())
    adl = [m for m in messages[1:] if m["channel"] == "adl"][0]["data"]
    assert (adl["account"], adl["counterparty"], adl["size"]) == (long.address, maker.address, "600000000"), log
    assert int(adl["socialised"]) > 0, log
    assert ch.functions.position(long.address, 0).call()[0] == ch.functions.position(maker.address, 0).call()[0] == 0
    assert ch.functions.balances(long.address).call()[0] >= 0
    view = wait_until(lambda: (v := httpx.get(f"{api}/accounts/{long.address}").json())["positions"] == [] and v, 10,
                      "the venue's view of the deleveraged account")
    assert int(view["equity"]) >= 0
    assert httpx.get(f"{api}/health").json()["status"] in ("ok", "degraded")
