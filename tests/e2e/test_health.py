"""Health tells the truth, with numbers, against a real Anvil under a running `venue serve`: a
frozen node (SIGSTOP) and settlement that cannot get its batches mined (a block gas limit too low
for them) both show as `down` within seconds, the venue goes cancel-only (coded 503 for orders
that add risk, cancels still work) and resumes by itself; with the node gone, nothing answers a
plain-text 500."""

import os
import signal

import httpx
import pytest

from venue.client import Client, VenueError
from venue.devchain import wait_until

from .scenario import served_venue


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with served_venue(tmp_path_factory.mktemp("health"), VENUE_STALL_BLOCKS="3", VENUE_STALL_SECONDS="6",
                      VENUE_RPC_DOWN_S="2") as stack:
        yield stack


def health(stack) -> httpx.Response:
    return httpx.get(f"{stack['api']}/health", timeout=10)


def client(stack, i) -> Client:
    return Client.from_devnet(i, str(stack["path"]), stack["api"])


def test_a_healthy_venue_reports_its_numbers(stack):
    body = wait_until(lambda: (b := health(stack).json())["status"] == "ok" and b, 10, "ok")
    assert body["rpcReachable"] and body["cancelOnly"] is False and body["reason"] is None
    assert body["chainHead"] >= body["block"] > 0 and body["lagBlocks"] <= 3
    assert body["pendingFills"] == body["submittedFills"] == 0 and body["oldestUnsettledFillAgeS"] is None
    assert set(body["oracleAgeS"]) == {"ETH-PERP", "BTC-PERP"}
    assert all(0 <= age <= body["maxPriceAgeS"] for age in body["oracleAgeS"].values())


def test_a_frozen_node_shows_within_seconds_and_the_venue_goes_cancel_only_until_it_thaws(stack):
    maker = client(stack, 0)
    resting = maker.place("ETH-PERP", "sell", "3050", "1", tif="Alo")
    pgid = stack["anvil"].process.pid  # the process group we started
    os.killpg(pgid, signal.SIGSTOP)
    try:
        down = wait_until(lambda: (r := health(stack)).status_code == 503 and r.json(), 8, "health to say down")
        assert down["status"] == "down" and down["cancelOnly"] and not down["rpcReachable"]
        assert "RPC unreachable" in down["reason"]
        with pytest.raises(VenueError) as refused:
            maker.place("ETH-PERP", "sell", "3060", "1", tif="Alo")
        assert (refused.value.status, refused.value.code) == (503, "CANCEL_ONLY")
        assert maker.cancel(order_id=resting["orderId"]) == [resting["orderId"]]  # cancels still work
    finally:
        os.killpg(pgid, signal.SIGCONT)
    wait_until(lambda: health(stack).json()["status"] == "ok", 15, "health to recover")
    assert maker.place("ETH-PERP", "sell", "3060", "1", tif="Alo")["status"] == "resting"


def test_batches_that_cannot_be_mined_make_the_venue_cancel_only_and_it_resumes_when_they_settle(stack):
    maker, taker = client(stack, 0), client(stack, 1)
    w3 = stack["w3"]
    limit = w3.eth.get_block("latest").gasLimit
    w3.provider.make_request("anvil_setBlockGasLimit", [hex(60_000)])  # no settle fits in a block
    try:
        assert taker.place("ETH-PERP", "buy", "3060", "0.5", tif="Ioc")["status"] == "filled"
        stalled = wait_until(lambda: (r := health(stack)).status_code == 503 and r.json(), 20, "a stall")
        assert stalled["cancelOnly"] and "oldest unsettled fill" in stalled["reason"]
        assert stalled["oldestUnsettledFillAgeBlocks"] > 3 or stalled["oldestUnsettledFillAgeS"] > 6
        with pytest.raises(VenueError) as refused:
            taker.place("ETH-PERP", "buy", "3060", "0.1", tif="Ioc")
        assert refused.value.code == "CANCEL_ONLY"
        # An order that can only reduce the (pending) long is still taken.
        assert taker.place("ETH-PERP", "sell", "3100", "0.5", tif="Alo", reduce_only=True)["status"] == "resting"
    finally:
        w3.provider.make_request("anvil_setBlockGasLimit", [hex(limit)])
    body = wait_until(lambda: (b := health(stack).json())["status"] == "ok" and b, 30, "settlement to resume")
    assert body["lastSettledBatch"] is not None and body["pendingFills"] == body["submittedFills"] == 0
    assert taker.account_state()["fills"][-1]["status"] == "settled"


def test_with_the_node_gone_every_answer_is_json_and_unseen_accounts_get_a_coded_503(stack):
    stranger = Client(stack["api"], stack["anvil"].url, client(stack, 0).deployment, "0x" + "7e" * 32)
    stack["anvil"].stop()
    down = wait_until(lambda: (r := health(stack)).status_code == 503 and r.json(), 8, "health to say down")
    assert not down["rpcReachable"]
    with pytest.raises(VenueError) as refused:
        stranger.place("ETH-PERP", "buy", "3000", "0.1", tif="Alo")
    assert refused.value.status == 503 and refused.value.code in ("CANCEL_ONLY", "CHAIN_UNAVAILABLE")
    response = httpx.get(f"{stack['api']}/accounts/{stranger.address}", timeout=30)
    assert response.status_code == 503 and response.json()["code"] == "CHAIN_UNAVAILABLE"
