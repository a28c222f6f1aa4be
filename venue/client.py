"""A Python client: deposit, sign and place orders, cancel, read account state.

    from venue.client import Client
    c = Client.from_devnet(trader=0)           # devnet/deployment.json, first funded trader
    c.faucet_and_deposit(usdc=10_000)          # devnet tokens in, collateral on-chain
    ack = c.place("ETH-PERP", "buy", price="3000.5", size="0.25")
    c.cancel(ack["orderId"])
    c.account_state()["positions"]
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import httpx
from eth_account import Account

from .chain import Deployment, connect, contract
from .domain import FLAG_IOC, FLAG_POST_ONLY, FLAG_REDUCE_ONLY, QUOTE_DECIMALS, SIZE_SCALE
from .signing import Domain, Order, sign_action, sign_order


class VenueError(Exception):
    def __init__(self, status: int, code: str, msg: str):
        super().__init__(f"{status} {code}: {msg}")
        self.status, self.code, self.msg = status, code, msg


class Client:
    def __init__(self, api_url: str, rpc_url: str, deployment: Deployment, private_key: str,
                 agent_key: str | None = None):
        """`private_key` owns the account (deposits, agent approvals, cancels); orders are signed
        with `agent_key` when given (a hot key the account approved with `set_agent`)."""
        self.http = httpx.Client(base_url=api_url, timeout=30)
        self.w3 = connect(rpc_url)
        self.deployment = deployment
        self.account = Account.from_key(private_key)
        self.address = self.account.address
        self.key = private_key
        self.order_key = agent_key or private_key
        self.domain = Domain(deployment.chain_id, deployment.clearing_house)
        self.separator = self.domain.separator
        self.markets = {m["symbol"]: m for m in self._get("/markets")}
        self._nonce = int(time.time() * 1000) << 8  # fresh, increasing nonces per client session

    @classmethod
    def from_devnet(cls, trader: int = 0, path: str = "devnet/deployment.json",
                    api_url: str = "http://127.0.0.1:8000", agent_key: str | None = None) -> "Client":
        doc = json.loads(Path(path).read_text())
        return cls(api_url, doc["rpc"], Deployment.from_json(doc), doc["keys"]["traders"][trader], agent_key)

    # ------------------------------------------------------------------ chain
    def _transact(self, fn) -> None:
        tx = fn.build_transaction({"from": self.address, "nonce": self.w3.eth.get_transaction_count(self.address),
                                   "chainId": self.deployment.chain_id})
        signed = self.account.sign_transaction(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        if receipt.status != 1:
            raise RuntimeError(f"transaction reverted: {receipt.transactionHash.hex()}")

    def faucet_and_deposit(self, usdc: int | str = 0, weth: int | str = 0) -> None:
        """Mints devnet tokens to this account and deposits them as collateral."""
        ch = contract(self.w3, "ClearingHouse", self.deployment.clearing_house)
        for token, amount, decimals in ((self.deployment.usdc, usdc, QUOTE_DECIMALS), (self.deployment.weth, weth, 18)):
            units = int(Decimal(str(amount)) * 10**decimals)
            if not units:
                continue
            erc20 = contract(self.w3, "MockERC20", token)
            self._transact(erc20.functions.mint(self.address, units))
            self._transact(erc20.functions.approve(ch.address, units))
            self._transact(ch.functions.deposit(token, units))

    def set_agent(self, agent: str, approved: bool = True) -> None:
        """Approves (or revokes) `agent` to sign orders for this account, on-chain."""
        self._transact(contract(self.w3, "ClearingHouse", self.deployment.clearing_house).functions.setAgent(
            agent, approved))

    # ------------------------------------------------------------------ orders
    def next_nonce(self) -> int:
        self._nonce += 1
        return self._nonce

    def order_body(self, market: str, side: str, price: str, size: str, *, tif: str = "Gtc",
                   reduce_only: bool = False, client_id: str | None = None, expiry: int = 0) -> dict:
        m = self.markets[market]
        flags = (FLAG_POST_ONLY if tif == "Alo" else 0) | (FLAG_IOC if tif in ("Ioc", "Fok", "Market") else 0) | (
            FLAG_REDUCE_ONLY if reduce_only else 0)
        order = Order(self.address, m["id"], side == "buy", int(Decimal(price) * 10**QUOTE_DECIMALS),
                      int(Decimal(size) * SIZE_SCALE), flags, expiry, self.next_nonce())
        sig = sign_order(order, self.separator, self.order_key)
        return {"account": order.account, "market": order.market, "isBuy": order.is_buy, "price": str(order.price),
                "size": str(order.size), "flags": flags, "expiry": expiry, "nonce": order.nonce,
                "signature": "0x" + sig.hex(), "tif": tif, "clientId": client_id}

    def place(self, market: str, side: str, price: str, size: str, **kw) -> dict:
        """Price in quote units (USDC), size in base units (ETH), both as decimal strings."""
        return self._post("/orders", self.order_body(market, side, price, size, **kw))

    def modify(self, order_id: int, market: str, side: str, price: str, size: str, **kw) -> dict:
        """Replaces a resting order with a newly signed one; same price and side with a smaller
        size keeps its place in the queue."""
        return self._post("/modify", {"orderId": order_id, "order": self.order_body(market, side, price, size, **kw)})

    def place_batch(self, bodies: list[dict]) -> list[dict]:
        return self._post("/orders/batch", {"orders": bodies})["statuses"]

    def cancel(self, order_id: int | None = None, client_id: str | None = None, market: int | None = None,
               order_ids: list[int] | None = None) -> list[int]:
        """One order (by id or client id), several (`order_ids`), or all (in `market`, or all)."""
        return self._post("/cancel", self.cancel_body(order_id, client_id, market, order_ids))["cancelled"]

    def cancel_body(self, order_id: int | None = None, client_id: str | None = None, market: int | None = None,
                    order_ids: list[int] | None = None) -> dict:
        """A signed cancel request (see `POST /cancel`), signed with the agent key when there is one."""
        expiry, nonce = int(time.time()) + 60, self.action_nonce()
        if order_id is not None:
            action = f"cancel:{order_id}"
        elif order_ids is not None:
            action = "cancel:" + ",".join(map(str, order_ids))
        elif client_id is not None:
            action = f"cancelClient:{client_id}"
        else:
            action = f"cancelAll:{'*' if market is None else market}"
        body = {"account": self.address, "orderId": order_id, "clientId": client_id, "market": market,
                "nonce": nonce, "expiry": expiry,
                "signature": sign_action(self.address, action, nonce, expiry, self.domain, self.order_key)}
        if order_ids is not None:
            body["orderIds"] = order_ids
        return body

    def bulk(self, cancel_ids: list[int] = (), modifies: list[tuple[int, dict]] = (),
             orders: list[dict] = ()) -> dict:
        """Cancels, modifications ((order id, order body)) and new orders in one request
        (`POST /batch`); each item answered on its own."""
        body: dict = {"modify": [{"orderId": i, "order": o} for i, o in modifies], "orders": list(orders)}
        if cancel_ids:
            body["cancel"] = self.cancel_body(order_ids=list(cancel_ids))
        return self._post("/batch", body)

    def deadman(self, at_ms: int) -> dict:
        """Arms the dead-man's switch: every open order is cancelled at unix ms `at_ms` unless
        re-armed (0 disarms)."""
        expiry, nonce = int(time.time()) + 60, self.action_nonce()
        return self._post("/deadman", {"account": self.address, "at": at_ms, "nonce": nonce, "expiry": expiry,
                                       "signature": sign_action(self.address, f"deadman:{at_ms}", nonce, expiry,
                                                                self.domain, self.order_key)})

    def open_orders(self) -> list[dict]:
        """Every open order of the account (all pages)."""
        orders, after = [], 0
        while True:
            page = self._get(f"/accounts/{self.address}/orders?after={after}")
            orders += page["orders"]
            if page["next"] is None:
                return orders
            after = page["next"]

    def action_nonce(self) -> int:
        """A fresh nonce for a signed action: the time in ms, strictly increasing per client."""
        self._last_action_nonce = max(int(time.time() * 1000), getattr(self, "_last_action_nonce", 0) + 1)
        return self._last_action_nonce

    def order_status(self, order_id: int | None = None, client_id: str | None = None) -> dict:
        """An order's latest state, open or not, by id or client id."""
        params = {"orderId": order_id} if order_id is not None else {"clientId": client_id}
        return self._check(self.http.get(f"/accounts/{self.address}/order", params=params))

    def account_state(self) -> dict:
        return self._get(f"/accounts/{self.address}")

    # ------------------------------------------------------------------ http
    def _get(self, path: str):
        return self._check(self.http.get(path))

    def _post(self, path: str, body: dict):
        return self._check(self.http.post(path, json=body))

    @staticmethod
    def _check(response: httpx.Response):
        if response.status_code >= 400:
            body = response.json()
            raise VenueError(response.status_code, body.get("code", "?"), body.get("msg", response.text))
        return response.json()
