"""The escape hatch end to end: positions opened through the venue, the venue process stopped
(the operator gone silent), a trader's exit request, the delay passing with no batch settled,
a bystander's freeze; the venue, started again, says it is frozen and takes no orders; every
account leaves with its equity at the frozen marks, and the tokens add up to the unit."""

import asyncio
import json
import subprocess
import sys

import httpx
import websockets

from venue.chain import contract
from venue.client import Client
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.domain import DEVNET_RISK, usdc
from venue.signing import address_of

from .scenario import served_deployment, start_server, warm_up


def test_with_the_venue_stopped_a_user_freezes_it_and_every_account_leaves_with_its_equity(tmp_path):
    keys = dev_keys(7)
    with Anvil(accounts=7) as anvil:
        w3, d, path = served_deployment(anvil, tmp_path, keys, keys[3:6])
        ch, oracle = contract(w3, "ClearingHouse", d.clearing_house), contract(w3, "Oracle", d.oracle)
        usdc_token = contract(w3, "MockERC20", d.usdc)
        port = free_port()
        api = f"http://127.0.0.1:{port}"

        def cli(*argv) -> str:
            """`venue exit ...` as a user runs it."""
            done = subprocess.run([sys.executable, "-m", "venue.cli", "exit", *argv, "--deployment", str(path)],
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return done.stdout

        def serve():
            server = start_server(path, anvil.url, tmp_path, port)
            wait_until(lambda: httpx.get(f"{api}/health").status_code in (200, 503), 30, "venue API")
            return server

        server = serve()
        traders = [Client.from_devnet(i, str(path), api) for i in range(3)]
        warm_up(api, traders[1])
        traders[0].place("ETH-PERP", "sell", "3000", "6", tif="Alo")
        traders[1].place("ETH-PERP", "buy", "3000", "4", tif="Ioc")
        traders[2].place("ETH-PERP", "buy", "3000", "2", tif="Ioc")
        wait_until(lambda: ch.functions.position(traders[0].address, 0).call()[0] == -600_000_000, 20, "fills settled")
        owner = address_of(keys[0])
        for fn in (usdc_token.functions.mint(owner, usdc(500)), usdc_token.functions.approve(ch.address, usdc(500)),
                   ch.functions.depositInsurance(usdc(500))):
            w3.eth.wait_for_transaction_receipt(fn.transact({"from": owner}))
        # The operator goes silent; trader 1 asks to leave; the delay passes with no batch settled.
        assert stop_process(server) == 0
        cli("request", "--trader", "1")
        ts = w3.eth.get_block("latest").timestamp
        w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices([0, 1], [usdc(2_900), usdc(60_000)], ts).transact(
            {"from": address_of(keys[2])}))
        w3.provider.make_request("evm_increaseTime", [DEVNET_RISK.escape_delay + 1])
        w3.provider.make_request("evm_mine", [])
        assert "freeze possible from" in cli("status", traders[1].address)
        cli("freeze", traders[1].address, "--key", keys[6])  # a bystander
        assert ch.functions.frozenAt().call() > 0
        mark = ch.functions.frozenPrice(0).call()
        assert mark == usdc(2_900)

        # The venue, started again, knows: /health, the websocket, the account view, no orders.
        server = serve()
        try:
            health = httpx.get(f"{api}/health")
            assert health.status_code == 503 and health.json()["code"] == "VENUE_FROZEN"
            assert health.json()["status"] == "frozen"
            refused = httpx.post(f"{api}/orders", json=traders[2].order_body("ETH-PERP", "buy", "2900", "0.01"))
            assert (refused.status_code, refused.json()["code"]) == (503, "VENUE_FROZEN")
            assert httpx.get(f"{api}/accounts/{traders[1].address}").json()["venueFrozen"] is True

            async def first_message():
                async with websockets.connect(api.replace("http", "ws") + "/ws") as ws:
                    return json.loads(await asyncio.wait_for(ws.recv(), 10))

            assert asyncio.run(first_message())["data"]["frozen"] is True
        finally:
            assert stop_process(server) == 0

        # Every account leaves; nobody gets more than its equity at the mark.
        held = usdc_token.functions.balanceOf(ch.address).call()
        paid = 0
        for t in traders:
            quote = ch.functions.balances(t.address).call()[0]
            size, open_notional, _, _, owed = ch.functions.position(t.address, 0).call()
            equity_at_mark = quote + size * mark // 10**8 - open_notional - owed
            before = usdc_token.functions.balanceOf(t.address).call()
            assert "left the frozen venue" in cli("withdraw", "--trader", str(traders.index(t)))
            got = usdc_token.functions.balanceOf(t.address).call() - before
            assert got == max(equity_at_mark, 0), t.address
            paid += got
        assert sum(ch.functions.position(t.address, 0).call()[0] for t in traders) == 0
        reserves = ch.functions.insuranceFund().call() + ch.functions.feePool().call() + ch.functions.fundingPool().call()
        assert paid + reserves == held  # to the unit
