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
    # The console's alert, with what to do about it.
    alert = wait_until(lambda: [a for a in httpx.get(f"{stack['api']}/alerts").json()["active"]
                                if a["rule"] == "venue_state"], 15, "the venue_state alert")[0]
    assert alert["message"] == "the venue is paused by the guardian" and alert["severity"] == "critical"
    assert alert["action"] == "venue guardian unpause (once the cause is fixed)"
    guardian(stack, "unpause")
    wait_until(lambda: not health(stack)["paused"], 10, "the venue to see the unpause")
    resolved = wait_until(lambda: [a for a in httpx.get(f"{stack['api']}/alerts").json()["recent"]
                                   if a["rule"] == "venue_state"], 15, "the venue_state alert to resolve")[0]
    assert resolved["status"] == "resolved" and "the venue takes orders again" in resolved["resolution"]
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


def test_an_exposure_group_set_from_the_command_line_holds_orders_to_its_cap(stack):
    """The risk admin sets a 20,000 USDC cap on the majors with `venue exposure-group`; the venue
    follows the event and refuses an order whose worst case would exceed it (400 EXPOSURE_CAP),
    takes one that fits, and shows the group in /markets and the account view."""
    owner = dev_keys(1)[0]
    run = [sys.executable, "-m", "venue.cli", "exposure-group"]
    tail = ["--deployment", str(stack["path"]), "--key", owner]
    out = subprocess.run([*run, "set", "1", "20000000000", "ETH-PERP", "BTC-PERP", *tail],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "group 1: cap 20000000000 quote units across ETH-PERP, BTC-PERP" in out.stdout
    markets = lambda: httpx.get(f"{stack['api']}/markets").json()  # noqa: E731
    wait_until(lambda: markets()[0]["exposureCap"] == "20000000000", 10, "the venue to see the new cap")
    assert [(m["exposureGroup"], m["exposureCap"]) for m in markets()] == [(1, "20000000000")] * 2
    taker = Client.from_devnet(trader=1, path=str(stack["path"]), api_url=stack["api"])
    with pytest.raises(VenueError) as refused:
        taker.place("ETH-PERP", "buy", "2990", "7", tif="Alo")  # 7 ETH and more: above 20,000
    assert (refused.value.status, refused.value.code) == (400, "EXPOSURE_CAP")
    assert "exposure group 1" in refused.value.msg
    assert taker.place("ETH-PERP", "buy", "2990", "0.1", tif="Alo")["status"] == "resting"
    (group,) = taker.account_state()["exposureGroups"]
    assert (group["group"], group["cap"], group["markets"]) == (1, "20000000000", ["ETH-PERP", "BTC-PERP"])
    assert int(group["notional"]) <= 20_000 * 10**6
    # Not the risk admin: refused by the contract, said plainly, nothing changed.
    out = subprocess.run([*run, "set", "1", "1", "ETH-PERP", "--deployment", str(stack["path"]),
                          "--key", dev_keys(5)[4]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Unauthorized(caller=0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65, role=3)" in out.stderr, out.stderr
    assert markets()[0]["exposureCap"] == "20000000000"
