"""The guardian end to end: `venue guardian` from the command line against a real Anvil, and
`venue serve` over HTTP taking the chain's word for it (events): a pause refuses new orders with a
coded 503 and cancels open orders; reduce-only refuses orders that could grow a position and
cancels those resting; both lift again. The fill the chain would reject never gets made."""

import subprocess
import sys

import httpx
import pytest

from venue.chain import contract
from venue.client import Client, VenueError
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.signing import address_of

from .scenario import served_deployment


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guardian")
    keys = dev_keys(10)
    with Anvil(accounts=10) as anvil:
        w3, d, path = served_deployment(anvil, tmp, keys, keys[3:5], guardian=address_of(keys[9]),
                                        extra_keys={"guardian": keys[9]}, interval_mining=False)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "venue.cli", "serve", "--deployment", str(path),
                                   "--rpc-url", anvil.url, "--port", str(port), "--journal", str(tmp / "j.sqlite")])
        api = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 30, "venue API")
            yield {"api": api, "path": path, "ch": contract(w3, "ClearingHouse", d.clearing_house)}
        finally:
            assert stop_process(server) == 0


def guardian(stack, *args) -> str:
    out = subprocess.run([sys.executable, "-m", "venue.cli", "guardian", *args, "--deployment", str(stack["path"])],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def health(stack) -> dict:
    return httpx.get(f"{stack['api']}/health").json()


def test_pause_refuses_orders_with_a_coded_503_cancels_open_ones_and_unpause_lifts_it(stack):
    maker, taker = (Client.from_devnet(trader=i, path=str(stack["path"]), api_url=stack["api"]) for i in (0, 1))
    resting = maker.place("ETH-PERP", "sell", "3010", "1", tif="Alo")
    assert resting["status"] == "resting"
    assert "venue paused: True" in guardian(stack, "pause")
    assert stack["ch"].functions.paused().call()
    wait_until(lambda: health(stack)["paused"], 10, "the venue to see the pause")
    assert health(stack)["status"] == "paused"
    with pytest.raises(VenueError) as refused:
        taker.place("ETH-PERP", "buy", "3010", "1", tif="Ioc")
    assert (refused.value.status, refused.value.code) == (503, "VENUE_PAUSED")
    state = maker.account_state()
    assert state["openOrders"] == [] and state["venuePaused"] is True  # the resting order would only fail
    guardian(stack, "unpause")
    wait_until(lambda: not health(stack)["paused"], 10, "the venue to see the unpause")
    assert maker.place("ETH-PERP", "sell", "3010", "1", tif="Alo")["status"] == "resting"
    assert taker.place("ETH-PERP", "buy", "3010", "1", tif="Ioc")["status"] == "filled"


def test_reduce_only_market_refuses_orders_that_could_grow_a_position(stack):
    maker, taker = (Client.from_devnet(trader=i, path=str(stack["path"]), api_url=stack["api"]) for i in (0, 1))
    wait_until(lambda: int(taker.account_state()["positions"][0]["size"]) > 0 or None, 20, "the fill to settle")
    # The maker is short 1 ETH, the taker long 1 ETH (previous test). A resting bid that would
    # grow the taker's long is cancelled when the market turns reduce-only.
    bid = taker.place("ETH-PERP", "buy", "2990", "0.5", tif="Alo")
    assert "ETH-PERP reduce-only" in guardian(stack, "reduce-only", "ETH-PERP")
    wait_until(lambda: health(stack)["marketStatus"]["ETH-PERP"] == "reduce_only", 10, "reduce-only seen")
    assert all(o["id"] != bid["orderId"] for o in taker.account_state()["openOrders"])
    with pytest.raises(VenueError) as refused:
        taker.place("ETH-PERP", "buy", "2990", "0.5", tif="Alo")
    assert refused.value.code == "MARKET_REDUCE_ONLY"
    with pytest.raises(VenueError):
        taker.place("ETH-PERP", "sell", "3010", "2", tif="Alo")  # would flip the long: grows risk
    # Closing orders are taken: the taker offers its long, the maker buys back its short.
    assert taker.place("ETH-PERP", "sell", "3000", "1", tif="Alo")["status"] == "resting"
    assert maker.place("ETH-PERP", "buy", "3000", "1", tif="Ioc")["status"] == "filled"
    # BTC-PERP is untouched.
    assert health(stack)["marketStatus"]["BTC-PERP"] == "active"
    guardian(stack, "resume", "ETH-PERP")
    wait_until(lambda: health(stack)["marketStatus"]["ETH-PERP"] == "active", 10, "resume seen")
    assert taker.place("ETH-PERP", "buy", "2990", "0.5", tif="Alo")["status"] == "resting"
