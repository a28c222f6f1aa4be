"""Nothing accepted is stranded, replayed or forgotten: a real Anvil, the contracts, `venue serve`
over HTTP, restarted on the same journal.

- an order signed the way eth-account signs by default (65 bytes, v = 27/28) settles, and so does
  the other fill of its batch;
- a signed request the engine must refuse (cancel-all of market 2^70) is answered 4xx and the
  venue starts again on the same journal;
- every nonce the venue took stays taken across a restart, whatever became of the order (IOC with
  no fill, FOK not filled, post-only refused, modify in place and by replacement, a batch);
- a signed cancel or dead-man's-switch request cannot be replayed, before or after a restart, and
  its expiry may lie at most a day ahead."""

import json
import time

import httpx
import pytest
from eth_account import Account

from venue.chain import contract
from venue.client import Client
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.domain import FLAG_IOC, base, usdc
from venue.signing import EIP712_TYPES, Domain, Order, sign_action

from .scenario import served_deployment, start_server



@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    keys = dev_keys(7)
    with Anvil(accounts=7) as anvil:
        w3, d, path = served_deployment(anvil, tmp, keys, keys[3:6])
        yield {"anvil": anvil, "w3": w3, "d": d, "path": path, "tmp": tmp, "keys": keys}


class Venue:
    """`venue serve` on the module's chain and journal, restartable."""

    def __init__(self, chain):
        self.chain, self.port = chain, free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self):
        self.server = start_server(self.chain["path"], self.chain["anvil"].url, self.chain["tmp"], self.port)
        wait_until(lambda: httpx.get(f"{self.api}/health").status_code == 200, 60, "venue API")
        return self

    def restart(self):
        assert stop_process(self.server) == 0
        return self.start()

    def post(self, path: str, body: dict) -> httpx.Response:
        return httpx.post(f"{self.api}{path}", json=body, timeout=30)

    def client(self, trader: int) -> Client:
        return Client.from_devnet(trader, str(self.chain["path"]), self.api)


@pytest.fixture(scope="module")
def venue(chain):
    v = Venue(chain).start()
    yield v
    stop_process(v.server)


def settled(client: Client, order_ids: set[int], timeout=20) -> list[dict]:
    def check():
        fills = [f for f in client.account_state()["fills"]
                 if f["takerOrderId"] in order_ids or f["makerOrderId"] in order_ids]
        return fills if fills and all(f["status"] in ("settled", "rejected") for f in fills) else None
    return wait_until(check, timeout, "fills to settle", interval=0.2)


def test_an_order_signed_with_eth_accounts_default_65_byte_signature_settles_with_its_batch(venue, chain):
    maker, other = venue.client(0), venue.client(2)
    taker_key = chain["keys"][4]
    taker = Account.from_key(taker_key)
    d = chain["d"]
    domain = Domain(d.chain_id, d.clearing_house)
    # Two asks resting; the eth-account order and another taker's order take them in one batch.
    asks = [maker.place("ETH-PERP", "sell", "3001", "1", tif="Alo"), maker.place("ETH-PERP", "sell", "3001", "1", tif="Alo")]
    order = Order(taker.address, 0, True, usdc(3_001), base(1), FLAG_IOC, 0, 777)
    signed = Account.sign_typed_data(taker_key, full_message={
        "types": EIP712_TYPES, "primaryType": "Order", "domain": domain.as_dict(), "message": order.typed_message()})
    assert len(signed.signature) == 65 and signed.signature[64] in (27, 28)
    body = {"account": taker.address, "market": 0, "isBuy": True, "price": str(order.price), "size": str(order.size),
            "flags": FLAG_IOC, "expiry": 0, "nonce": 777, "signature": "0x" + bytes(signed.signature).hex(),
            "tif": "Ioc"}
    first = venue.post("/orders", body)
    second = other.place("ETH-PERP", "buy", "3001", "1", tif="Ioc")
    assert first.status_code == 200 and first.json()["status"] == "filled", first.text
    assert second["status"] == "filled"
    fills = settled(maker, {a["orderId"] for a in asks})
    assert [f["status"] for f in fills] == ["settled", "settled"], fills
    ch = contract(chain["w3"], "ClearingHouse", d.clearing_house)
    assert ch.functions.position(taker.address, 0).call()[0] == base(1)


def test_a_request_the_engine_must_refuse_is_answered_4xx_and_the_venue_starts_again(venue, chain):
    key = "0x" + "5e" * 32  # a fresh key, as the attack used
    account = Account.from_key(key).address
    d = chain["d"]
    domain = Domain(d.chain_id, d.clearing_house)
    expiry, nonce = int(time.time()) + 60, int(time.time() * 1000)
    action = f"cancelAll:{2**70}"
    response = venue.post("/cancel", {"account": account, "market": 2**70, "nonce": nonce, "expiry": expiry,
                                      "signature": sign_action(account, action, nonce, expiry, domain, key)})
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == {"code", "msg"}
    venue.restart()
    assert httpx.get(f"{venue.api}/health").json()["journalSkipped"] == 0


def test_every_nonce_the_venue_took_stays_taken_across_a_restart(venue):
    maker, taker = venue.client(0), venue.client(1)
    maker.place("ETH-PERP", "sell", "3005", "1", tif="Alo")
    bodies = {
        "ioc_no_fill": taker.order_body("ETH-PERP", "buy", "2990", "1", tif="Ioc"),
        "fok_not_filled": taker.order_body("ETH-PERP", "buy", "3005", "5", tif="Fok"),
        "post_only_refused": taker.order_body("ETH-PERP", "buy", "3005", "1", tif="Alo"),
        "resting": taker.order_body("ETH-PERP", "buy", "2980", "2", tif="Alo"),
    }
    answers = {name: venue.post("/orders", body) for name, body in bodies.items()}
    assert answers["ioc_no_fill"].json()["status"] == "cancelled"
    assert answers["fok_not_filled"].json()["code"] == "FOK_NOT_FILLED"
    assert answers["post_only_refused"].json()["code"] == "POST_ONLY_WOULD_CROSS"
    resting = answers["resting"].json()["orderId"]
    in_place = {"orderId": resting, "order": taker.order_body("ETH-PERP", "buy", "2980", "1", tif="Alo")}
    assert venue.post("/modify", in_place).json()["status"] == "resting"
    replacement = {"orderId": resting, "order": taker.order_body("ETH-PERP", "buy", "2975", "1", tif="Alo")}
    replaced = venue.post("/modify", replacement).json()
    assert replaced["status"] == "resting"
    batch = {"orders": [taker.order_body("ETH-PERP", "buy", "2970", "1", tif="Alo")]}
    batched = venue.post("/orders/batch", batch).json()["statuses"][0]
    assert batched["status"] == "resting"

    def all_refused():
        for name, body in bodies.items():
            answer = venue.post("/orders", body)
            assert (answer.status_code, answer.json()["code"]) == (400, "DUPLICATE_NONCE"), (name, answer.text)
        for body in (in_place, replacement):
            answer = venue.post("/modify", {**body, "orderId": replaced["orderId"]})
            assert answer.json()["code"] == "DUPLICATE_NONCE", answer.text
        assert venue.post("/orders/batch", batch).json()["statuses"][0]["code"] == "DUPLICATE_NONCE"

    all_refused()
    venue.restart()
    all_refused()
    # The refused replays changed nothing: the replacement and the batched order still rest.
    assert {o["id"] for o in taker.account_state()["openOrders"]} >= {replaced["orderId"], batched["orderId"]}


def test_signed_actions_cannot_be_replayed_before_or_after_a_restart(venue, chain):
    taker = venue.client(1)
    d = chain["d"]
    domain = Domain(d.chain_id, d.clearing_house)
    key, account = taker.key, taker.address
    taker.place("ETH-PERP", "buy", "2900", "0.1", tif="Alo", client_id="again")
    expiry, nonce = int(time.time()) + 600, int(time.time() * 1000)
    cancel = {"account": account, "clientId": "again", "nonce": nonce, "expiry": expiry,
              "signature": sign_action(account, "cancelClient:again", nonce, expiry, domain, key)}
    assert venue.post("/cancel", cancel).status_code == 200
    # A later order reuses the client id; the replayed cancel must not touch it.
    later = taker.place("ETH-PERP", "buy", "2900", "0.1", tif="Alo", client_id="again")
    replay = venue.post("/cancel", cancel)
    assert (replay.status_code, replay.json()["code"]) == (400, "DUPLICATE_NONCE")
    deadman_nonce = nonce + 1
    arm = {"account": account, "at": int(time.time() * 1000) + 3_600_000, "nonce": deadman_nonce, "expiry": expiry}
    arm["signature"] = sign_action(account, f"deadman:{arm['at']}", deadman_nonce, expiry, domain, key)
    assert venue.post("/deadman", arm).status_code == 200
    venue.restart()
    assert venue.post("/cancel", cancel).json()["code"] == "DUPLICATE_NONCE"
    assert venue.post("/deadman", arm).json()["code"] == "DUPLICATE_NONCE"
    assert any(o["id"] == later["orderId"] for o in taker.account_state()["openOrders"])
    far = int(time.time()) + 2 * 86_400
    too_far = {**cancel, "nonce": nonce + 2, "expiry": far,
               "signature": sign_action(account, "cancelClient:again", nonce + 2, far, domain, key)}
    assert venue.post("/cancel", too_far).json()["code"] == "EXPIRY_TOO_FAR"


def test_order_status_answers_for_open_and_finished_orders_by_id_or_client_id_after_a_restart(venue):
    maker, taker = venue.client(0), venue.client(1)
    maker.cancel()  # the asks earlier tests left: this one is the best
    ask = maker.place("ETH-PERP", "sell", "3002", "1", tif="Alo", client_id="st-ask")
    assert maker.order_status(client_id="st-ask")["status"] == "resting"
    taker.place("ETH-PERP", "buy", "3002", "1", tif="Ioc")
    done = wait_until(lambda: (s := maker.order_status(order_id=ask["orderId"]))["status"] == "filled"
                      and s["fills"] and s["fills"][0]["status"] == "settled" and s, 20, "the fill to settle")
    assert done["remaining"] == "0" and done["clientId"] == "st-ask"
    gone = maker.place("ETH-PERP", "sell", "3030", "1", tif="Alo", client_id="st-gone")
    maker.cancel(client_id="st-gone")
    venue.restart()
    assert maker.order_status(order_id=gone["orderId"])["status"] == "cancelled"
    assert maker.order_status(client_id="st-ask")["fills"][0]["status"] == "settled"
    with pytest.raises(Exception) as unknown:
        maker.order_status(order_id=10**9)
    assert unknown.value.status == 404


def test_a_dead_mans_switch_fires_on_time_on_a_quiet_venue(venue, chain):
    """No other traffic: the venue's clock fires the switch within 100 ms of its time."""
    import asyncio
    import websockets

    maker = venue.client(2)
    order = maker.place("ETH-PERP", "sell", "3100", "0.1", tif="Alo")
    d = chain["d"]
    domain = Domain(d.chain_id, d.clearing_house)
    at = int(time.time() * 1000) + 1_500
    nonce, expiry = maker.action_nonce(), int(time.time()) + 60
    body = {"account": maker.address, "at": at, "nonce": nonce, "expiry": expiry,
            "signature": sign_action(maker.address, f"deadman:{at}", nonce, expiry, domain, maker.key)}

    async def watch():
        async with websockets.connect(venue.api.replace("http", "ws") + f"/ws?account={maker.address}") as ws:
            assert venue.post("/deadman", body).status_code == 200
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message.get("channel") == "orders" and message["data"]["id"] == order["orderId"]:
                    return message["data"]["status"], time.time() * 1000

    status, seen_at = asyncio.new_event_loop().run_until_complete(watch())
    assert status == "dead_mans_switch"
    assert at <= seen_at < at + 100, seen_at - at
