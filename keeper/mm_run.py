"""`keeper mm`: the reference market maker (keeper/mm.py) on a running venue, on the wall clock.

Market data and the bot's own fills and order updates arrive on the venue's websocket
(`/ws?account=`): book snapshots then numbered L2 deltas, oracle prices, fills, order states. A
gap in any numbering, a `lagged` notice or a dropped connection makes the bot reconnect, and the
fresh snapshots (books, open orders) replace what it held. On start it reads its open orders and
positions over HTTP and adopts them, so a restart leaves no orphans.

Each step (at once on new data, else every `step_s`) the strategy plans; the plan goes out as one
`POST /batch` (cancels, modifications, new orders) signed with the bot's agent key. The agent
key is derived from the account key (so a restart reuses it) and approved on-chain once. The
dead-man's switch is re-armed every `deadman_s / 3`: if the bot dies its quotes go within
`deadman_s`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

import httpx
from eth_account import Account
from eth_utils import keccak

from venue.chain import contract, market_field
from venue.client import Client, VenueError
from venue.clock import REAL
from venue.domain import QUOTE_DECIMALS, SIZE_SCALE
from venue.risk import funding_owed

from .mm import MarketMaker, MarketSpec, MMConfig, Plan, Resting, Telemetry

log = logging.getLogger("mm")


def agent_key_for(owner_key: str) -> str:
    """The bot's agent key, derived from the account's key: the same on every start."""
    return "0x" + keccak(b"crossbook-mm-agent" + bytes.fromhex(owner_key.removeprefix("0x"))).hex()


def plan_bodies(client: Client, plan: Plan, specs: dict[int, MarketSpec]) -> tuple[list, list]:
    """The signed modifications and orders of a plan (post-only; reduce-only where the quote is)."""
    def body(q):
        symbol = specs[q.market].symbol
        return client.order_body(symbol, "buy" if q.is_buy else "sell", str(q.price / 10**QUOTE_DECIMALS),
                                 str(q.size / SIZE_SCALE), tif="Alo", reduce_only=q.reduce_only)
    return [(oid, body(q)) for oid, q in plan.modifies], [body(q) for q in plan.places]


class Book:
    """One market's L2 book from a snapshot and numbered deltas."""

    def __init__(self, bids, asks, seq: int):
        self.side = {True: {int(p): int(s) for p, s in bids}, False: {int(p): int(s) for p, s in asks}}
        self.seq = seq

    def apply(self, changes) -> None:
        for side, price, size in changes:
            levels = self.side[side == "buy"]
            if int(size):
                levels[int(price)] = int(size)
            else:
                levels.pop(int(price), None)

    def levels(self, is_buy: bool, depth: int = 50) -> list[tuple[int, int]]:
        return sorted(self.side[is_buy].items(), reverse=is_buy)[:depth]


class LiveMarketMaker:
    """Drives a `MarketMaker` against a serving venue (see the module doc)."""

    def __init__(self, client: Client, config: MMConfig, telemetry_path: str | None = None, registry=None,
                 step_s: float = 0.05, clock=REAL):
        self.client, self.config, self.clock, self.step_s = client, config, clock, step_s
        self.specs = {int(m["id"]): MarketSpec.from_json(m) for m in client.markets.values()}
        self.telemetry = Telemetry(self.specs, telemetry_path, registry)
        self.mm = MarketMaker(config, self.specs, self.telemetry, clock.now())
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.books: dict[int, Book] = {}
        self.ws_url = str(client.http.base_url).replace("http", "ws", 1).rstrip("/") + f"/ws?account={client.address}"
        self.reconnects = 0
        self.deadman_renewed = 0.0
        self.funding_index: dict[int, int] = {}
        self.funding_read = 0.0
        self.ch = contract(client.w3, "ClearingHouse", client.deployment.clearing_house)
        self.funding_field = market_field(self.ch, "fundingIndex")
        self.connected = threading.Event()
        self.price_seen: float | None = None  # when an oracle price arrived that no plan has answered yet
        self.requote_s: list[float] = []  # from such a price to the acknowledgement of the plan it caused
        self.fills_seen: OrderedDict[int, bool] = OrderedDict()  # fill seqs counted (the venue sends each twice)
        self.resync_needed = False  # (re)connected, or a counted fill was rejected: read fills and positions

    # ------------------------------------------------------------------ start
    def adopt(self) -> None:
        """Open orders and positions as the venue has them: adopted, not orphaned."""
        orders = self.client.open_orders()
        self.resync(count_missed=False)  # the fills so far are the previous run's: seen, not counted again
        with self.lock:
            self.mm.sync_orders([self._resting(o) for o in orders])
            for m in self.client._get("/markets"):
                if int(m["oraclePrice"]):
                    self.mm.on_oracle(int(m["id"]), int(m["oraclePrice"]), self.clock.now())
        if orders:
            log.info("adopted %d open orders", len(orders))
            self.telemetry.write({"kind": "adopted", "t": self.clock.now(), "orders": [int(o["id"]) for o in orders]})

    def resync(self, count_missed: bool) -> None:
        """The account as the venue has it: its recent fills (those the websocket did not bring,
        while it was away, are counted now when `count_missed`), then the positions (fills not
        yet settled included), which replace what the bot summed."""
        state = self.client.account_state()
        now = self.clock.now()
        with self.lock:
            for f in sorted(state["fills"], key=lambda f: f["seq"]):
                if count_missed:
                    if f["seq"] not in self.fills_seen and f["status"] != "rejected":
                        log.info("fill %d reached the bot through the account view (the websocket was away)", f["seq"])
                    self._on_fill_message(f, now)
                else:
                    self.fills_seen[f["seq"]] = True
            for p in state["positions"]:
                if int(p["market"]) in self.specs:
                    self.mm.set_position(int(p["market"]), int(p["sizeWithPending"]))

    @staticmethod
    def _resting(o: dict) -> Resting:
        return Resting(int(o["id"]), int(o["market"]), o["side"] == "buy", int(o["price"]), int(o["size"]),
                       int(o["remaining"]))

    # ------------------------------------------------------------------ websocket
    def listen(self, stop: threading.Event) -> None:
        """Reads the websocket until `stop`; reconnects (fresh snapshots) on a gap or a drop."""
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        while not stop.is_set():
            try:
                with connect(self.ws_url, open_timeout=5, close_timeout=1, max_size=2**24) as ws:
                    self.resync_needed = True  # fills made before this subscription: from the account view
                    seqs: dict[str, int] = {}
                    while not stop.is_set():
                        try:
                            text = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        message = json.loads(text)
                        channel = message.get("channel")
                        seq = message.get("seq")
                        if seq is not None:
                            if seq != seqs.get(channel, 0) + 1:
                                raise GapError(f"{channel} seq {seq} after {seqs.get(channel, 0)}")
                            seqs[channel] = seq
                        self.on_message(message)
            except (GapError, WebSocketException, OSError) as exc:
                if stop.is_set():
                    return
                self.connected.clear()
                self.reconnects += 1
                self.telemetry.on_reconnect()
                log.warning("websocket: %s; reconnecting for fresh snapshots", exc)
                stop.wait(0.5)

    def on_message(self, message: dict) -> None:
        channel, now = message.get("channel"), self.clock.now()
        with self.lock:
            if channel == "book":
                m = message["market"]
                self.books[m] = Book(message["bids"], message["asks"], message["bookSeq"])
                self._push_book(m)
            elif channel == "l2":
                m = message["market"]
                book = self.books.get(m)
                if book is None or message["bookSeq"] != book.seq + 1:
                    raise GapError(f"book {m}: delta {message['bookSeq']} after {book.seq if book else None}")
                book.apply(message["data"]["changes"])
                book.seq = message["bookSeq"]
                self._push_book(m)
            elif channel == "oracle":
                self.mm.on_oracle(message["market"], int(message["data"]["price"]), now)
                if self.price_seen is None:
                    self.price_seen = time.perf_counter()
            elif channel == "openOrders":
                self.mm.sync_orders([self._resting(o) for o in message["data"]])
                self.connected.set()
            elif channel == "fills":
                self._on_fill_message(message["data"], now)
            elif channel == "orders":
                d = message["data"]
                if d["status"] in ("resting", "modified", "partially_filled"):
                    self.mm.on_order_remaining(d["id"], int(d["remaining"]))
                else:
                    self.mm.on_order_gone(d["id"])
            elif channel == "lagged":
                raise GapError("the venue says this connection lagged")
        self.wake.set()

    def _on_fill_message(self, f: dict, now: float) -> None:
        """The venue sends a fill when it matches it (`pending`) and again when the chain settles
        or rejects it: each fill counts once, when first seen. A rejected one was unwound by the
        venue: the position is read again from the venue at the next step."""
        seq = f["seq"]
        if f["status"] == "rejected":
            if seq in self.fills_seen:
                log.warning("fill %d was rejected on-chain (%s): re-reading the position", seq, f["reason"])
                self.telemetry.write({"kind": "fill_rejected", "t": now, "seq": seq, "reason": f["reason"]})
                self.resync_needed = True
            self.fills_seen[seq] = True
            return
        if seq in self.fills_seen:
            return
        self.fills_seen[seq] = True
        if len(self.fills_seen) > 100_000:
            self.fills_seen.popitem(last=False)
        me = self.client.address
        for role, is_buy, oid in (("maker", not f["takerIsBuy"], f["makerOrderId"]),
                                  ("taker", f["takerIsBuy"], f["takerOrderId"])):
            if f[role] == me:
                self.mm.on_fill(f["market"], is_buy, int(f["price"]), int(f["size"]), now, oid)

    def _push_book(self, m: int) -> None:
        book = self.books[m]
        self.mm.on_book(m, book.levels(True), book.levels(False))

    # ------------------------------------------------------------------ steps
    def step(self) -> Plan:
        """Observe, plan, send the plan as one request, apply the answers."""
        now = self.clock.now()
        if self.resync_needed:
            self.resync_needed = False
            self.resync(count_missed=True)
        with self.lock:
            self.mm.observe(now)
            plan = self.mm.plan(now)
            self.telemetry.snapshot(now)
        if plan:
            self.send(plan)
        else:
            self.price_seen = None  # the price moved too little to re-quote
        if now - self.deadman_renewed >= self.config.deadman_s / 3:
            self.client.deadman(int((now + self.config.deadman_s) * 1000))
            self.deadman_renewed = now
            self.telemetry.messages += 1
        if now - self.funding_read >= 10:
            self.read_funding()
            self.funding_read = now
        return plan

    def send(self, plan: Plan) -> None:
        started, seen = time.perf_counter(), self.price_seen
        self.price_seen = None
        modifies, orders = plan_bodies(self.client, plan, self.specs)
        try:
            answer = self.client.bulk(plan.cancels, modifies, orders)
        except VenueError as exc:
            log.warning("quote batch refused: %s", exc)
            with self.lock:
                self.mm.applied(plan, [], [], [])
                for st in self.mm.markets.values():
                    st.anchor = None
            return
        if seen is not None:
            self.requote_s.append(time.perf_counter() - seen)
        with self.lock:
            self.mm.applied(plan, [c for c in answer["cancelled"] if c["status"] == "cancelled"]
                            + [c for c in answer["cancelled"] if c.get("code") == "UNKNOWN_ORDER"],
                            answer["modified"], answer["placed"], time.perf_counter() - started)
        if any(st.get("status") == "error" for st in (*answer["modified"], *answer["placed"])):
            # A refused replacement may have taken its old order with it: ask the venue what rests.
            orders = self.client.open_orders()
            with self.lock:
                self.mm.sync_orders([self._resting(o) for o in orders])

    def read_funding(self) -> None:
        """Funding the bot paid since the last read: its position times the index change."""
        for m in self.specs:
            index = self.ch.functions.market(m).call()[self.funding_field]
            last = self.funding_index.get(m)
            if last is not None and index != last:
                with self.lock:
                    self.telemetry.on_funding(m, funding_owed(self.mm.position[m], index, last))
            self.funding_index[m] = index

    def run(self, stop: threading.Event) -> None:
        self.adopt()
        listener = threading.Thread(target=self.listen, args=(stop,), name="mm-ws", daemon=True)
        listener.start()
        self.connected.wait(10)
        while not stop.is_set():
            self.wake.wait(self.step_s)
            self.wake.clear()
            try:
                self.step()
            except (VenueError, OSError, httpx.TransportError) as exc:  # the venue away: try again
                log.warning("step failed: %s", exc)
                stop.wait(0.5)
        try:
            self.client.cancel()
            self.client.deadman(0)
        except (VenueError, OSError, httpx.TransportError) as exc:
            log.warning("could not cancel on exit: %s", exc)
        listener.join(timeout=2)
        self.telemetry.close()


class GapError(Exception):
    """A message is missing: the bot resynchronises from fresh snapshots."""


def make_client(doc: dict, deployment, owner_key: str, api: str) -> Client:
    """A client for the account of `owner_key` signing with its derived agent key, approved on
    the ClearingHouse if it is not yet."""
    agent = agent_key_for(owner_key)
    client = Client(api, doc["rpc"], deployment, owner_key, agent_key=agent)
    agent_address = Account.from_key(agent).address
    ch = contract(client.w3, "ClearingHouse", deployment.clearing_house)
    if not ch.functions.isAgent(client.address, agent_address).call():
        client.set_agent(agent_address)
        log.info("approved agent %s for %s", agent_address, client.address)
    return client


def main(args) -> int:
    """`keeper mm` (arguments parsed by keeper/cli.py)."""
    import signal

    from prometheus_client import CollectorRegistry, start_http_server

    from venue.chain import Deployment

    if args.report:
        from .mm_report import report

        report(Path(args.report), Path(args.report).with_suffix(""))
        return 0
    doc = json.loads(Path(args.deployment).read_text())
    deployment = Deployment.from_json(doc)
    owner = args.key or doc["keys"]["traders"][args.trader]
    client = make_client(doc, deployment, owner, args.api)
    config = MMConfig(levels=args.levels, level_notional_usdc=args.level_usdc, adaptive=not args.static,
                      max_updates_per_s=args.max_updates, requote_bps=args.requote_bps,
                      group=tuple(int(m["id"]) for m in client.markets.values()),
                      group_cap_usdc=args.group_cap_usdc,
                      max_position={int(m["id"]): int(args.max_position_usdc * 10**QUOTE_DECIMALS * SIZE_SCALE
                                                      / max(1, int(m["oraclePrice"]) or 1))
                                    for m in client._get("/markets") if int(m["oraclePrice"])})
    registry = CollectorRegistry()
    if args.metrics_port:
        try:
            start_http_server(args.metrics_port, addr="127.0.0.1", registry=registry)
        except OSError as exc:  # quoting matters more than the metrics page
            log.warning("no Prometheus metrics on port %d: %s", args.metrics_port, exc)
    bot = LiveMarketMaker(client, config, args.telemetry, registry)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("quoting %s for %s (agent %s), %d levels a side, %s", ", ".join(s.symbol for s in bot.specs.values()),
             client.address, Account.from_key(client.order_key).address, config.levels,
             "adaptive" if config.adaptive else "static")
    bot.run(stop)
    return 0
