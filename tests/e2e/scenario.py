"""The setup the keeper and mempool scenarios share: a deployment on a given Anvil, funded
accounts, a first oracle price, and one leveraged long settled on-chain."""

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass

from web3.logs import DISCARD

from venue.chain import Deployment, Fill, contract, deploy, pack_fills
from venue.cli import fund_traders
from venue.devchain import Anvil, dev_keys, free_port, stop_process, wait_until
from venue.domain import usdc
from venue.signing import Order, address_of, sign_order


@dataclass
class LeveragedLong:
    w3: object
    deployment: Deployment
    ch: object
    oracle: object
    keys: list  # 0 owner, 1 operator, 2 keeper, 3 maker, 4 the long, 5-6 funded liquidators
    separator: bytes

    @property
    def victim(self) -> str:
        return address_of(self.keys[4])


def leveraged_long(anvil, size: int, price: int, collateral: int = usdc(1_000)) -> LeveragedLong:
    """Account 4 goes long `size` at `price` on `collateral` against account 3 (automine)."""
    keys = dev_keys(8)
    owner, operator, keeper = (address_of(k) for k in keys[:3])
    w3 = anvil.web3()
    d = deploy(w3, owner, operator=operator, keepers=(keeper,))
    fund_traders(w3, d, [keys[3], keys[5], keys[6]], usdc(1_000_000), 0)
    fund_traders(w3, d, [keys[4]], collateral, 0)
    ch, oracle = contract(w3, "ClearingHouse", d.clearing_house), contract(w3, "Oracle", d.oracle)
    ts = w3.eth.get_block("latest").timestamp
    w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices([0, 1], [price, usdc(60_000)], ts)
                                        .transact({"from": keeper}))
    sep = bytes(ch.functions.domainSeparator().call())
    maker, victim = keys[3], keys[4]
    mo = Order(address_of(maker), 0, False, price, size, 0, 0, 0)
    to = Order(address_of(victim), 0, True, price, size, 0, 0, 0)
    fill = Fill(mo, sign_order(mo, sep, maker), to, sign_order(to, sep, victim), size, price)
    w3.eth.wait_for_transaction_receipt(ch.functions.settle(0, pack_fills([fill])).transact({"from": operator}))
    assert ch.functions.position(address_of(victim), 0).call()[0] == size
    return LeveragedLong(w3, d, ch, oracle, keys, sep)


def add_fill(s: LeveragedLong, market: int, size: int, price: int, batch: int, nonce: int) -> None:
    """Account 4 buys `size` of `market` from account 3 at `price`, settled as batch `batch`
    (automine)."""
    operator = address_of(s.keys[1])
    maker, taker = s.keys[3], s.keys[4]
    mo = Order(address_of(maker), market, False, price, size, 0, 0, nonce)
    to = Order(address_of(taker), market, True, price, size, 0, 0, nonce)
    fill = Fill(mo, sign_order(mo, s.separator, maker), to, sign_order(to, s.separator, taker), size, price)
    receipt = s.w3.eth.wait_for_transaction_receipt(
        s.ch.functions.settle(batch, pack_fills([fill])).transact({"from": operator}))
    assert not s.ch.events.FillRejected().process_receipt(receipt, errors=DISCARD), "the fill was rejected"


def served_deployment(anvil, tmp, keys: list[str], funded: list[str], quote: int = usdc(1_000_000), *,
                      guardian: str | None = None, extra_keys: dict | None = None, interval_mining: bool = True):
    """The setup of a test that runs `venue serve`: the devnet deployment from dev keys 0-2
    (owner, operator, keeper), `funded` traders with `quote` deposited, first oracle prices, then
    1-second blocks, and a deployment file for the venue and its clients (traders: keys[3:]).
    Returns (web3, deployment, path of the deployment file)."""
    import json

    owner, operator, keeper = (address_of(k) for k in keys[:3])
    w3 = anvil.web3()
    d = deploy(w3, owner, operator=operator, keepers=(keeper,), guardian=guardian)
    fund_traders(w3, d, funded, quote, 0)
    oracle = contract(w3, "Oracle", d.oracle)
    w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices(
        [0, 1], [usdc(3_000), usdc(60_000)], w3.eth.get_block("latest").timestamp).transact({"from": keeper}))
    if interval_mining:
        anvil.set_interval_mining(1)
    path = tmp / "deployment.json"
    path.write_text(json.dumps({**d.to_json(), "rpc": anvil.url,
                                "keys": {"operator": keys[1], "traders": keys[3:], **(extra_keys or {})}}))
    return w3, d, path


def fresh_prices(stack, eth: int = usdc(3_000), btc: int = usdc(60_000)) -> None:
    """A served venue has no oracle keeper: prices pushed now, so a test that trades long after
    the fixture started (fills settle only on prices younger than the 60 s max age) meets fresh ones."""
    import json

    w3 = stack["w3"]
    oracle = contract(w3, "Oracle", json.loads(stack["path"].read_text())["Oracle"])
    keeper = address_of(dev_keys(3)[2])
    w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices(
        [0, 1], [eth, btc], w3.eth.get_block("latest").timestamp).transact({"from": keeper}))
    import httpx

    wait_until(lambda: [int(m["oraclePrice"]) for m in httpx.get(f"{stack['api']}/markets").json()] == [eth, btc], 10,
               "the venue to see the new prices")


def start_server(path, rpc, tmp, port, **env):
    """`venue serve` as a process, on `port`, with its journal in `tmp` and VENUE_* overrides in `env`."""
    return subprocess.Popen([sys.executable, "-m", "venue.cli", "serve", "--deployment", str(path), "--rpc-url", rpc,
                             "--port", str(port), "--journal", str(tmp / "j.sqlite")], env={**os.environ, **env})


@contextmanager
def served_venue(tmp, accounts: int = 6, **env):
    """A fresh Anvil, `served_deployment` with traders 3 and 4 funded, and `venue serve` up (with
    VENUE_* overrides in `env`); stopped, and checked to stop cleanly, afterwards."""
    keys = dev_keys(accounts)
    anvil = Anvil(accounts=accounts).start()
    try:
        w3, d, path = served_deployment(anvil, tmp, keys, keys[3:5])
        port = free_port()
        server = start_server(path, anvil.url, tmp, port, **env)
        api = f"http://127.0.0.1:{port}"
        import httpx

        wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 30, "venue API")
        stack = {"api": api, "anvil": anvil, "w3": w3, "path": path, "tmp": tmp, "server": server, "port": port}
        try:
            yield stack  # a test that restarts the server puts the new process in stack["server"]
        except BaseException:
            stop_process(stack["server"])  # a failed test must not leave the venue running (it would spin on a
            raise                          # stopped Anvil and slow every test after it)
        assert stop_process(stack["server"]) == 0, "the venue did not stop cleanly on SIGINT"
    finally:
        anvil.stop()


def warm_up(api: str, client) -> None:
    """One order placed and cancelled with a long timeout: a fresh clone's first orders compile
    the engine (numba, tens of seconds on a cold cache), so no test's own request meets that."""
    import httpx

    r = httpx.post(f"{api}/orders", json=client.order_body("ETH-PERP", "buy", "2900", "0.01"), timeout=300)
    assert r.status_code == 200, r.text
    assert client.cancel() == [r.json()["orderId"]]
