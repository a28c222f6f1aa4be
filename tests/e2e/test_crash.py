"""The venue killed (SIGKILL) at random points under a mixed load of every command kind, several
times over, on a real Anvil: after each restart every acknowledged order, cancel, modify and fill
is there, fills settle exactly once on-chain, and every request refused as a replay before the
kill is still refused after it (fixed seed)."""

import random
import signal
import threading
import time

import httpx
import pytest

from venue.chain import contract
from venue.client import Client
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.signing import sign_action

from .scenario import served_deployment, start_server

KILLS = 3


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crash")
    keys = dev_keys(7)
    with Anvil(accounts=7) as anvil:
        w3, d, path = served_deployment(anvil, tmp, keys, keys[3:7])
        yield {"anvil": anvil, "w3": w3, "d": d, "path": path, "tmp": tmp}


class Load:
    """A mixed load from four traders; records what the venue acknowledged (2xx answers)."""

    def __init__(self, api, path, rng):
        self.api, self.rng = api, rng
        self.clients = [Client.from_devnet(i, str(path), api) for i in range(4)]
        self.acked_orders: dict[int, dict] = {}  # order id -> the acknowledgement
        self.acked_bodies: list[tuple[str, dict]] = []  # requests acknowledged: replays must be refused
        self.acked_cancels: set[int] = set()
        self.stop = threading.Event()

    def post(self, path, body):
        return httpx.post(f"{self.api}{path}", json=body, timeout=30)

    def run(self):
        rng = self.rng
        try:
            while not self.stop.is_set():
                c = rng.choice(self.clients)
                r = rng.random()
                price = str(3_000 + rng.randrange(-20, 21))
                if r < 0.45:
                    tif = rng.choice(["Alo", "Gtc", "Ioc", "Fok"])
                    body = c.order_body("ETH-PERP", rng.choice(["buy", "sell"]), price, "0.1", tif=tif)
                    answer = self.post("/orders", body)
                    if answer.status_code == 200:
                        self.acked_bodies.append(("/orders", body))
                        if answer.json().get("orderId"):
                            self.acked_orders[answer.json()["orderId"]] = {"account": c.address, **answer.json()}
                elif r < 0.6:
                    bodies = [c.order_body("ETH-PERP", rng.choice(["buy", "sell"]), str(3_000 + rng.randrange(-20, 21)),
                                           "0.1", tif="Alo") for _ in range(5)]
                    answer = self.post("/orders/batch", {"orders": bodies})
                    if answer.status_code == 200:
                        for body, status in zip(bodies, answer.json()["statuses"]):
                            if status["status"] != "error":
                                self.acked_bodies.append(("/orders", body))
                                self.acked_orders[status["orderId"]] = {"account": c.address, **status}
                elif r < 0.8:
                    mine = [oid for oid, a in self.acked_orders.items()
                            if a["account"] == c.address and a["status"] == "resting"]
                    if not mine:
                        continue
                    oid = rng.choice(mine)
                    expiry, nonce = int(time.time()) + 60, c.action_nonce()
                    body = {"account": c.address, "orderId": oid, "nonce": nonce, "expiry": expiry,
                            "signature": sign_action(c.address, f"cancel:{oid}", nonce, expiry, c.domain, c.key)}
                    answer = self.post("/cancel", body)
                    if answer.status_code == 200:
                        self.acked_bodies.append(("/cancel", body))
                        self.acked_cancels.add(oid)
                else:
                    mine = [oid for oid, a in self.acked_orders.items()
                            if a["account"] == c.address and a["status"] == "resting"]
                    if not mine:
                        continue
                    oid = rng.choice(mine)
                    body = {"orderId": oid, "order": c.order_body("ETH-PERP", "buy", price, "0.1", tif="Alo")}
                    answer = self.post("/modify", body)
                    if answer.status_code == 200:
                        self.acked_bodies.append(("/modify", body))
                        if answer.json()["orderId"] != oid:  # replaced: the old order is gone for good
                            self.acked_cancels.add(oid)
                        self.acked_orders[answer.json()["orderId"]] = {"account": c.address, **answer.json()}
        except httpx.HTTPError:
            pass  # the venue was killed


def test_killed_under_mixed_load_nothing_acknowledged_is_lost_and_no_replay_gets_through(chain):
    rng = random.Random(42)
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    loads = []
    server = start_server(chain["path"], chain["anvil"].url, chain["tmp"], port)
    try:
        for round_ in range(KILLS):
            wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 60, "venue API")
            load = Load(api, chain["path"], rng)
            # One answered order per trader first: a fresh clone's first orders compile the engine
            # (numba's cache is empty), and the load must be running, not waiting, when the kill comes.
            for c in load.clients:
                ack = c.place("ETH-PERP", "buy", "2900", "0.1", tif="Alo")
                load.acked_orders[ack["orderId"]] = {"account": c.address, **ack}
            worker = threading.Thread(target=load.run)
            worker.start()
            # Kill at a random point once the load is under way (however fast this machine is).
            wait_until(lambda: len(load.acked_bodies) >= 20, 60, "the load to get going")
            time.sleep(rng.uniform(0.2, 1.5))
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            load.stop.set()
            worker.join(30)
            loads.append(load)
            server = start_server(chain["path"], chain["anvil"].url, chain["tmp"], port)
        wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 60, "venue API")
        clients = [Client.from_devnet(i, str(chain["path"]), api) for i in range(4)]
        # Every fill the venue made settles, exactly once.
        def all_settled():
            states = [c.account_state() for c in clients]
            return all(f["status"] in ("settled", "rejected") for s in states for f in s["fills"]) and states
        states = wait_until(all_settled, 60, "every fill to settle", interval=0.5)
        ch = contract(chain["w3"], "ClearingHouse", chain["d"].clearing_house)
        for c, state in zip(clients, states):
            expected = sum((int(f["size"]) if (f["taker"] == c.address) == f["takerIsBuy"] else -int(f["size"]))
                           for f in state["fills"] if f["status"] == "settled")
            assert ch.functions.position(c.address, 0).call()[0] == expected, c.address
        acked = sum(len(load.acked_orders) for load in loads)
        assert acked > 60 and sum(len(load.acked_cancels) for load in loads) >= 3
        for load in loads:
            # Every acknowledged order is known after the restarts; acknowledged cancels stayed cancelled.
            for oid, ack in load.acked_orders.items():
                owner = next(c for c in clients if c.address == ack["account"])
                status = owner.order_status(order_id=oid)["status"]
                if oid in load.acked_cancels:
                    assert status == "cancelled", (oid, status)
                else:
                    assert status in ("resting", "filled", "partially_filled", "cancelled", "self_trade"), (oid, status)
            # No acknowledged request can be replayed.
            for path, body in load.acked_bodies:
                answer = httpx.post(f"{api}{path}", json=body, timeout=10)
                assert answer.status_code in (400, 404), (path, answer.status_code, answer.text)
                if answer.status_code == 400:
                    assert answer.json()["code"] in ("DUPLICATE_NONCE", "NONCE_TOO_LOW"), answer.text
        assert ch.functions.nextBatchIndex().call() >= 1
    finally:
        stop_process(server)
