"""The running venue: signed orders in, engine, journal, settlement batches out, receipts back.

Single-threaded on the asyncio loop: HTTP handlers call into the engine directly; chain I/O runs
in worker threads. The chain is the source of truth for collateral and positions; the engine
sees chain state plus fills matched but not yet settled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.logs import DISCARD

from . import risk
from .alerts import Alerts, findings as alert_findings
from .chain import (
    EventReader,
    connect,
    market_fields,
    AccountReader,
    FILL_BYTES, MARKET_ACTIVE, MARKET_HALTED, MARKET_REDUCE_ONLY, Deployment, Fill as ChainFill,
    contract, pack_fills, settle_calldata, settle_gas_bound,
    pack_order, read_market_status, read_markets, read_oracle_prices, settle_access_list,
)
from .domain import FLAG_IOC, FLAG_POST_ONLY, SIZE_SCALE, RejectReason
from .engine import (
    FOK, GTC, IOC, OP_PLACE, REASON_NAMES, STATUS_NAMES, Ack, Engine, EngineError, Fill, Limits, OrderRejected,
    UnknownOrder,
)
from .clock import REAL, Clock
from .hl_exchange import GATEWAY_NONCE_BASE, HlGateway
from .triggers import TRIGGER_ID_BASE, Trigger, TriggerBook
from .journal import Journal, replay
from .metrics import VenueMetrics
from .nonces import NonceWindow
from .recovery import RecoveryWorker
from .settings import Settings
from .signing import (
    MAX_ACTION_LIFETIME_S, Domain, Order as SignedOrder, SignatureError, action_digest, address_bytes,
    compact_signature, order_digest, recover_address, recover_many, to_checksum,
)

log = logging.getLogger("venue")

# ClearingHouse views an account view reads (raw eth_call; every field a signed 256-bit word).
MARKET_STATUS_NAMES = {MARKET_ACTIVE: "active", MARKET_HALTED: "halted", MARKET_REDUCE_ONLY: "reduce_only"}


class VenueUnavailable(EngineError):
    """The venue cannot take risk right now (the guardian paused it): cancels still work."""

    status = 503


_TIF = {"Gtc": GTC, "Alo": GTC, "Ioc": IOC, "Fok": FOK, "Market": IOC}  # API time in force -> engine's


class SignatureRejected(EngineError):
    status = 401


class UnknownAccount(EngineError):
    """An order from an account with nothing on the ClearingHouse (no collateral, no position)."""

    status = 403


# Answers that mean the sender proved nothing (a signature that does not recover or is not the
# account's; an account with nothing deposited): the API limits them per client address.
UNAUTHENTICATED = frozenset({"BAD_SIGNATURE", "UNKNOWN_ACCOUNT"})
PRIVATE_CHANNELS = frozenset({"fills", "orders", "triggers"})
POLL_BACKOFF_MAX_S = 2.0  # the chain poller's longest wait while the node fails
VIEW_OPEN_ORDERS = 100  # open orders in an account view (all of them: GET /accounts/{address}/orders)
VIEW_BACKLOG = 256  # account-view chain reads waiting at most; more are answered 503 VIEWS_BUSY
RECEIPT_POLL_S = 0.02  # how often the receipt watcher asks for the block number while batches are in flight


@dataclass(slots=True)
class _Awaiting:
    """A sent batch the receipt watcher looks for."""

    raw: bytes
    nonce: int
    index: int
    future: asyncio.Future
    deadline: float
LAGGED = object()  # queued for a subscription that fell behind: its sender says so and closes


class Subscription:
    """One websocket's feed. Messages are filtered to its account (private channels) and numbered
    per channel as they are queued, so a client sees any gap. Past `limit` queued messages the
    subscription is lagged: nothing more is queued, the missed seqs are counted per channel, and
    the sender sends a `lagged` message naming them, then closes the connection."""

    __slots__ = ("account", "queue", "limit", "seq", "missed")

    def __init__(self, account: str | None, limit: int):
        self.account = account
        self.queue: asyncio.Queue = asyncio.Queue()
        self.limit = limit
        self.seq: dict[str, int] = {}
        self.missed: dict[str, list[int]] | None = None  # channel -> [first, last] seq missed

    def next_seq(self, channel: str) -> int:
        n = self.seq[channel] = self.seq.get(channel, 0) + 1
        return n

    def offer(self, message: dict) -> None:
        channel = message["channel"]
        if self.account is not None and channel in PRIVATE_CHANNELS:
            data = message["data"]
            if self.account not in (data.get("account"), data.get("maker"), data.get("taker")):
                return
        n = self.next_seq(channel)
        if self.missed is None and self.queue.qsize() < self.limit:
            self.queue.put_nowait({"seq": n, **message})
            return
        if self.missed is None:
            self.missed = {}
            self.queue.put_nowait(LAGGED)
        self.missed.setdefault(channel, [n, n])[1] = n

    def close(self) -> None:
        """Wakes the sender with None: the connection is over."""
        self.queue.put_nowait(None)


@dataclass
class FillRecord:
    fill: Fill
    status: str = "pending"  # pending -> submitted -> settled | rejected
    batch: int | None = None
    tx_hash: str | None = None
    reason: str | None = None
    acked_at: float = field(default_factory=time.time)  # the venue clock's time
    acked_block: int = 0  # the chain head when the venue made the fill
    # (maker's position before, maker's realized PnL, taker's position before, taker's realized PnL)
    basis: tuple = (0, 0, 0, 0)

    def as_json(self) -> dict:
        f = self.fill
        return {"seq": f.seq, "market": f.market, "price": str(f.price), "size": str(f.size),
                "takerIsBuy": f.taker_is_buy, "maker": f.maker.account, "taker": f.taker.account,
                "makerOrderId": f.maker.id, "takerOrderId": f.taker.id, "status": self.status,
                "batch": self.batch, "txHash": self.tx_hash, "reason": self.reason}


class Venue:
    def __init__(self, settings: Settings, clock: Clock = REAL):
        """`clock`: the wall clock when serving; the scenario lab passes its simulated one and
        drives the steps (`batch_step`, `receipt_step`, `poll_once`, `tick_step`) itself."""
        self.settings = settings
        self.clock = clock
        doc = json.loads(Path(settings.deployment).read_text())
        self.deployment = Deployment.from_json(doc)
        rpc_url = settings.rpc_url or doc.get("rpc", "http://127.0.0.1:8545")
        self.w3 = connect(rpc_url)
        # The health probe's own connection, with a short timeout: a frozen node shows in seconds.
        self.probe_w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": settings.rpc_timeout_s},
                                          exception_retry_configuration=None))  # one try: a timeout is the answer
        self.ch = contract(self.w3, "ClearingHouse", self.deployment.clearing_house)
        self.oracle = contract(self.w3, "Oracle", self.deployment.oracle)
        self.events = EventReader(self.w3, self.ch, self.oracle)  # the chain poller's one eth_getLogs a poll
        key = settings.operator_key or doc["keys"]["operator"]
        self.operator = Account.from_key(key)
        self.domain = Domain(self.deployment.chain_id, self.deployment.clearing_house)
        self.domain_separator = self.domain.separator
        self.markets = read_markets(self.ch, self.deployment.markets)
        self.weth_oracle_id = self.ch.functions.wethOracleId().call()
        self.max_price_age = self.ch.functions.riskParams().call()[0]
        self.engine = Engine(self.markets, Limits(rate_per_s=settings.orders_per_s, burst=settings.orders_burst))
        Path(settings.journal).parent.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(settings.journal)
        self.fills: dict[int, FillRecord] = {}
        self.fills_by_account: dict[str, deque[int]] = {}  # seqs of each account's fills, oldest first
        # Bumped by every order event and fill of the account: its views' open-order list is
        # rebuilt only then (the list scans the engine's order table).
        self.order_versions: Counter[str] = Counter()
        self._open_orders_view: dict[str, tuple[int, list]] = {}
        self.unbatched: deque[int] = deque()
        self.finished: deque[int] = deque()  # settled or rejected fills still in memory, oldest first
        self.trades: dict[int, deque] = {m: deque(maxlen=200) for m in range(len(self.markets))}
        # Order nonces taken, per account in a bounded window (venue/nonces.py; journal "nonces").
        self.nonce_windows: dict[str, NonceWindow] = {}
        # Nonces from 2^63 up are the Hyperliquid gateway's, dense per account: the next unused one.
        self.gateway_next: dict[str, int] = {}
        self.action_nonces: dict[tuple[str, int], int] = {}  # (account, nonce) -> expiry of a signed action
        # Final and current states of recent orders for `order_status` (bounded: the oldest go).
        self.order_states: dict[int, dict] = {}
        self.order_times: dict[int, tuple[int, int]] = {}  # order id -> (placed, last change), ms
        self.client_orders: dict[tuple[str, str], int] = {}
        self.positions_basis: dict[tuple[str, int], tuple[int, int]] = {}  # (account, market) -> (size, cost)
        self.subscribers: set[Subscription] = set()
        # Operations: Prometheus metrics, alerts, and what the console shows (venue/metrics.py,
        # venue/alerts.py, GET /ui). Before the journal's replay, which feeds them.
        self.metrics = VenueMetrics()
        self.alerts = Alerts(self._publish, settings.alert_webhook, now=self.clock.now)
        self.rejected_recent: deque = deque(maxlen=10_000)  # (time, reason, notional) of rejected fills
        self.book_empty_since: dict[int, float | None] = {}  # market once quoted -> since when a side is empty
        self.insurance_fund: int | None = None
        self.insurance_history: deque = deque(maxlen=3_600)  # (time, quote units), one per evaluation
        self.bad_debt = 0
        self.last_liquidation: dict | None = None
        self.last_funding_at: int | None = None
        self.last_snapshot: dict | None = None  # the latest `risk_snapshot`, for GET /risk
        # Account views read the chain on their own connection and threads (never the pool that
        # settlement, receipts and chain ingestion use), at most once per block per account.
        self.view_reader = AccountReader(rpc_url, self.deployment.clearing_house, len(self.markets),
                                         settings.rpc_timeout_s * 2)
        self.view_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="account-views")
        self.view_cache: OrderedDict[str, tuple[int, tuple, asyncio.Future]] = OrderedDict()
        # What an account view's chain numbers depend on beyond the block: a version bumped for
        # everyone by prices, funding rates and the haircut, and one per account bumped whenever
        # the venue re-reads the account (its fills settled, a deposit, a withdrawal, a liquidation).
        self.view_version = 0
        self.account_versions: Counter[str] = Counter()
        self.view_reads = 0  # chain reads made for account views (tests count them)
        self.view_inflight = 0
        self._adl_cache: dict[tuple[int, bool], tuple[int, list[int]]] = {}
        self.market_ids = {p.symbol.upper(): m for m, p in enumerate(self.markets)}
        self.book_seq = [0] * len(self.markets)
        self.dirty_levels: set[tuple[int, bool, int]] = set()  # L2 levels changed since the last delta
        # Replay rebuilds the book and every fill; the settlement table says which fills the chain
        # has already taken, so nothing acknowledged is lost across a restart.
        self.chain_head = 0  # the probe's view of the chain head (fills record it when made)
        self.triggers = TriggerBook()  # stop-loss and take-profit orders waiting for the mark (venue/triggers.py)
        self.hl = HlGateway(self, settings.hl_gateway_key or doc.get("keys", {}).get("gateway"),
                            settings.hl_accept_mainnet)
        self.engine.listeners.append(self._on_event)
        replay(self.engine, self.journal, on_entry=self._replay_entry, on_result=self._replay_result)
        self.replay_skipped = self.journal.replay_skipped
        for seq, kind, error in self.replay_skipped:
            log.error("journal entry %d (%s) could not be replayed and was skipped: %s", seq, kind, error)
        self.engine.journal = self.journal
        for seq, (status, batch, tx, reason) in self.journal.settlement().items():
            rec = self.fills.get(seq)
            if rec is not None:
                rec.status, rec.batch, rec.tx_hash, rec.reason = status, batch, tx, reason
        self.next_batch = self.ch.functions.nextBatchIndex().call()
        self._recover_submitted()
        self.unbatched = deque(seq for seq, rec in self.fills.items() if rec.status == "pending")
        stored = self.journal.meta("last_block")
        self.last_block = int(stored) if stored is not None else self.w3.eth.block_number
        self.haircut = self.ch.functions.haircutBps().call()
        # The guardian's and the owner's controls as the chain holds them; events keep them current.
        self.paused = self.ch.functions.paused().call()
        self.frozen_at = self.ch.functions.frozenAt().call()  # escape hatch: frozen for good (0: not)
        self.market_status = read_market_status(self.ch)
        for m, status in enumerate(self.market_status):
            if (status == MARKET_HALTED) != bool(self.engine.markets[m].halted):
                self.engine.set_halted(self.now_ms(), m, status == MARKET_HALTED)
        # Health: what the probe last saw of the chain, and how settlement is doing. Fills the
        # replay brought back count their age from now.
        self.chain_head = self.last_block
        for rec in self.fills.values():
            rec.acked_block = self.chain_head
        self.chain_time = 0
        self.probe_ok_at = time.monotonic()
        self.rpc_error: str | None = None
        self.stall_reason: str | None = None  # set by the prober: why the venue is cancel-only
        self.last_settled_batch: int | None = None
        self.last_settled_at: float | None = None
        self.oracle_updated: dict[int, int] = {}  # oracle id -> observation time of its latest price
        self._tasks: list[asyncio.Task] = []
        self._flush: asyncio.Future | None = None
        self.operator_nonce: int | None = None
        self.batch_lock = asyncio.Lock()
        self.settling: set[asyncio.Task] = set()  # batch tasks not finished
        self.on_chain: dict[asyncio.Task, asyncio.Future] = {}  # those waiting for their receipt (its future)
        self.awaiting: dict[bytes, _Awaiting] = {}  # sent batches by transaction hash, oldest first
        self.receipts_seen = -1  # the block the receipt watcher last looked at
        self.eth_price = 0
        self.agents: dict[str, set[bytes]] = {}  # account -> approved agent addresses (20 bytes)
        self._syncing: dict[str, asyncio.Future] = {}
        self.recovery: RecoveryWorker | None = None  # started with the event loop (`start`)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, background: bool = True) -> None:
        """Reads prices, starts the recovery worker and (`background`) the loops that drive the
        steps on the wall clock; the scenario lab starts with none and drives the steps itself."""
        self._apply_prices(await asyncio.to_thread(read_oracle_prices, self.oracle, self.markets, self.weth_oracle_id))
        for oracle_id in {p.oracle_id for p in self.markets}:
            try:
                self.oracle_updated[oracle_id] = (await asyncio.to_thread(
                    self.oracle.functions.getPrice(oracle_id).call))[1]
            except Exception:  # noqa: BLE001: no price yet
                pass
        if self.settings.recovery_workers > 0:
            self.recovery = RecoveryWorker(asyncio.get_running_loop())
            await self.recovery.recover([])  # the worker is up before the first order
        if not background:
            return
        self._tasks = [asyncio.create_task(self._batcher()), asyncio.create_task(self._receipt_watcher()),
                       asyncio.create_task(self._chain_poller()),
                       asyncio.create_task(self._prober()), asyncio.create_task(self._clock()),
                       asyncio.create_task(self._watchman())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.recovery is not None:
            self.recovery.close()
        self.view_pool.shutdown(wait=False, cancel_futures=True)
        self.view_reader.close()
        self.journal.close()

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def book_json(self, market: int, depth: int = 20) -> dict:
        """L2 book of a market, best first, `depth` levels a side (`GET /book`; the funding keeper's input)."""
        bids, asks = self.engine.l2(market, depth)
        return {"market": market, "bids": [[str(p), str(s)] for p, s in bids],
                "asks": [[str(p), str(s)] for p, s in asks]}

    def market_id(self, ref: int | str) -> int:
        """A market named by id (0, or "0" in a path) or by symbol ("ETH-PERP", any case)."""
        if isinstance(ref, str):
            if ref.isascii() and ref.isdigit() and len(ref) < 6:
                ref = int(ref)
            elif (m := self.market_ids.get(ref.upper())) is not None:
                return m
            else:
                raise OrderRejected("UNKNOWN_MARKET", f"no market {ref[:40]!r}")
        if not 0 <= ref < len(self.markets):
            raise OrderRejected("UNKNOWN_MARKET", f"no market {ref}")
        return ref

    # ------------------------------------------------------------------ orders
    async def verify(self, order: SignedOrder, signature: bytes, offload: bool = False) -> None:
        """The signer must be the account or one of its agents. Agents come from `AgentSet`
        events (read when the account is first seen, then followed by the chain poller); one the
        venue has not seen yet is asked of the chain, off the event loop. `offload`: recover
        the signature in the worker, together with the other single orders of this loop turn
        (for requests that run concurrently; a websocket's posts run one after another)."""
        digest = order_digest(order, self.domain_separator)
        if offload and self.recovery is not None:
            signer = await self.recovery.recover_one(digest, bytes(signature))
            if isinstance(signer, str):
                raise SignatureRejected("BAD_SIGNATURE", signer)
        else:
            try:
                signer = recover_address(digest, signature)
            except SignatureError as exc:
                raise SignatureRejected("BAD_SIGNATURE", str(exc)) from exc
        await self.check_signer(order.account, signer)

    async def recover_signers(self, pairs: list[tuple[bytes, bytes]]) -> list[bytes | str]:
        """Signers of many (digest, signature) pairs (see `recover_many`), in the recovery worker
        when there is one."""
        if self.recovery is not None and pairs:
            return await self.recovery.recover(pairs)
        return recover_many(pairs)

    def known_signer(self, account: str, signer: bytes) -> bool:
        """`signer` (20 bytes) is `account` or an agent the venue knows it approved."""
        return signer == address_bytes(account) or signer in self.agents.get(account, ())

    async def check_signer(self, account: str, signer: bytes) -> None:
        """Raises unless `signer` (20 bytes) is `account` or an agent it approved (asking the
        chain about an agent the venue has not seen)."""
        if self.known_signer(account, signer):
            return
        signer_address = to_checksum(signer)
        if await asyncio.to_thread(self.ch.functions.isAgent(account, signer_address).call):
            if account in self.agents:  # else the first sync of the account reads all its agents
                self.agents[account].add(signer)
            return
        raise SignatureRejected("BAD_SIGNATURE", f"signed by {signer_address}, not by {account} or its agent")

    async def place(self, order: SignedOrder, signature: bytes, tif: str = "Gtc", client_id: str | None = None,
                    stp: int = 0, is_market: bool = False, offload: bool = False):
        """Checks the signature and the order's own terms, then hands it to the engine. The
        acknowledgement is returned only after the journal commit."""
        tif_code, is_market = self._time_in_force(order, tif, is_market)
        self.guard(order)
        await self.verify(order, signature, offload)
        return await self._enter(order, signature, tif_code, client_id, stp, is_market)

    async def modify(self, order_id: int, order: SignedOrder, signature: bytes, tif: str = "Gtc",
                     client_id: str | None = None):
        """Replaces resting order `order_id` with the newly signed `order`. Same market, side and
        price with a size no larger than what remains keeps the queue position (the original
        signature, for a larger size, still bounds what settles); anything else cancels the old
        order and places the new one at the back of the queue."""
        tif_code, is_market = self._time_in_force(order, tif, False)  # before anything is cancelled
        self.guard(order)
        await self.verify(order, signature)  # the new terms, signed, authorise the change
        return await self._replace(order_id, order, signature, tif_code, client_id, is_market)

    async def modify_many(self, items: list[tuple]) -> list:
        """Many (order id, order, signature, tif, client id) modifications, their signatures
        recovered together; each is applied as `modify` applies one, in the given order, and
        answered on its own (its `Ack` or the `EngineError` that refused it)."""
        results: list = [None] * len(items)
        terms = []
        for k, (order_id, order, signature, tif, client_id) in enumerate(items):
            try:
                tif_code, is_market, signature = self._batch_terms(order, signature, tif)
                terms.append((k, order_id, order, signature, tif_code, client_id, is_market))
            except EngineError as exc:
                results[k] = exc
        signers = await self.recover_signers([(order_digest(t[2], self.domain_separator), t[3]) for t in terms])
        for (k, order_id, order, signature, tif_code, client_id, is_market), signer in zip(terms, signers):
            try:
                if isinstance(signer, str):
                    raise SignatureRejected("BAD_SIGNATURE", signer)
                await self.check_signer(order.account, signer)
                self.guard(order)
                results[k] = await self._replace(order_id, order, signature, tif_code, client_id, is_market)
            except EngineError as exc:
                results[k] = exc
        return results

    async def bulk(self, cancel: tuple | None, modifies: list[tuple], places: list[tuple]) -> tuple[list, list, list]:
        """A quoting bot's changes at once (`POST /batch`): `cancel` = (account, order ids, nonce,
        expiry, signature of the Action `cancel:<id>,<id>,...`), authorised first (a bad one
        refuses the whole request before anything changes), then each order cancelled; then
        `modifies` as `modify_many` takes them; then `places` as `place_many` does. Returns the
        answers of each part, item by item (cancels as `{status, orderId[, code, msg]}`)."""
        cancelled = []
        if cancel is not None:
            account, order_ids, nonce, expiry, signature = cancel
            await self.authorize(account, "cancel:" + ",".join(map(str, order_ids)), nonce, expiry, signature)
            cancelled = self.cancel_each(account, order_ids)
        modified = await self.modify_many(modifies) if modifies else []
        placed = await self.place_many(places) if places else []
        return cancelled, modified, placed

    def cancel_each(self, account: str, order_ids: list[int]) -> list[dict]:
        """Cancels each order still open; the others are answered UNKNOWN_ORDER, alone."""
        out = []
        for order_id in order_ids:
            try:
                self.cancel(account, order_id, None)
                out.append({"status": "cancelled", "orderId": order_id})
            except EngineError as exc:
                out.append({"status": "error", "orderId": order_id, "code": exc.code, "msg": exc.msg})
        return out

    async def _replace(self, order_id: int, order: SignedOrder, signature: bytes, tif_code: int,
                       client_id: str | None, is_market: bool):
        """`modify` once the new order's signature is known good."""
        # From here no await until the engine has the change: the order cannot fill meanwhile.
        old = self.engine.orders.get(order_id)
        if old is None or old.account != order.account:
            raise UnknownOrder("UNKNOWN_ORDER", f"no open order {order_id} of {order.account}")
        same_terms = (order.market, order.is_buy, order.price) == (old.market, old.is_buy, old.price)
        self._unused_nonce(order)  # before anything changes: a reused nonce must not cancel the old order
        if same_terms and 0 < order.size <= old.remaining:
            self._consume_nonce(order)
            try:
                return self.engine.modify(self.now_ms(), order.account, order_id, old.price, order.size)
            except EngineError:
                await self.durable()  # the spent nonce is durable before the refusal is answered
                raise
        self.engine.cancel(self.now_ms(), order.account, order_id)
        return await self._enter(order, signature, tif_code, client_id if client_id is not None else old.client_id,
                                 0, is_market)

    @staticmethod
    def _time_in_force(order: SignedOrder, tif: str, is_market: bool) -> tuple[int, bool]:
        """(engine time in force, market order?) once `tif` agrees with the signed flags."""
        if tif in ("Ioc", "Fok", "Market") and not order.flags & FLAG_IOC:
            raise OrderRejected("TIF_MISMATCH", f"{tif} orders must be signed with the IOC flag")
        if tif in ("Gtc", "Alo") and order.flags & FLAG_IOC:
            raise OrderRejected("TIF_MISMATCH", "an order signed IOC cannot rest")
        if tif == "Alo" and not order.flags & FLAG_POST_ONLY:
            raise OrderRejected("TIF_MISMATCH", "Alo orders must be signed post-only")
        is_market = is_market or tif == "Market"
        if is_market and order.is_buy and order.price == 0:  # the chain settles a buy at no more than its price
            raise OrderRejected("INVALID_PRICE", "a market buy needs a signed limit price above 0 (the venue's "
                                                 "slippage cap applies too, whichever is tighter)")
        return _TIF[tif], is_market

    async def _enter(self, order: SignedOrder, signature: bytes, tif_code: int, client_id: str | None, stp: int,
                     is_market: bool):
        """A checked and verified order into the engine."""
        await self._ensure_account(order.account)
        # No await from here on: the nonce check, the engine and the bookkeeping are one step.
        self.guard(order)  # again: a guardian event may have arrived while the account was read
        signature = self._compact(signature)
        self._consume_nonce(order)  # spent even if the engine refuses the order (a refusal stays one)
        try:
            ack = self.engine.place(self.now_ms(), order.account, order.market, order.is_buy, order.price, order.size,
                                    tif=tif_code, flags=order.flags, client_id=client_id, stp=stp,
                                    expiry=order.expiry * 1000, is_market=is_market, nonce=order.nonce,
                                    signature=signature)
        except EngineError:
            await self.durable()  # the spent nonce is durable before the refusal is answered
            raise
        self._record_ack(order.account, order.market, order.is_buy, order.price, order.size, client_id, order.nonce,
                         ack)
        return ack  # not yet acknowledged: the caller awaits durable() first

    def _batch_terms(self, order: SignedOrder, signature: bytes, tif: str) -> tuple[int, bool, bytes]:
        """A batch item's own checks before its signature is recovered (time in force against
        the signed flags, ranges, market): (engine time in force, market order?, 64-byte
        signature), or the EngineError that refuses it alone."""
        tif_code, is_market = self._time_in_force(order, tif, False)
        self.engine.check_range(order.price, order.size, order.expiry * 1000)
        if not 0 <= order.market < len(self.markets):
            raise OrderRejected("UNKNOWN_MARKET", f"no market {order.market}")
        return tif_code, is_market, self._compact(signature)

    async def place_many(self, items: list[tuple]) -> list:
        """A batch of (order, signature, tif, client id, stp) in one engine run: each order is
        checked and its signature verified first, then every order that passed goes through
        `Engine.run` together (in the batch's order). Returns, per item, its `Ack` or the
        `EngineError` that refused it. A client order id may appear once per batch."""
        results: list = [None] * len(items)
        terms = []
        for k, (order, signature, tif, client_id, stp) in enumerate(items):
            try:
                tif_code, is_market, signature = self._batch_terms(order, signature, tif)
                terms.append((k, order, signature, tif_code, client_id, stp, is_market))
            except EngineError as exc:
                results[k] = exc
        signers = await self.recover_signers([(order_digest(t[1], self.domain_separator), t[2]) for t in terms])
        checked = []
        for t, signer in zip(terms, signers):
            k, order = t[0], t[1]
            try:
                if isinstance(signer, str):
                    raise SignatureRejected("BAD_SIGNATURE", signer)
                if not self.known_signer(order.account, signer):  # await only to ask the chain
                    await self.check_signer(order.account, signer)
                await self._ensure_account(order.account)
                checked.append(t)
            except EngineError as exc:
                results[k] = exc
        # No await from here on: the nonce checks, the engine and the bookkeeping are one step.
        rows, meta, entered, spent = [], [], [], []
        ts, batch_nonces = self.now_ms(), set()
        for k, order, signature, tif_code, client_id, stp, is_market in checked:
            key = (order.account, order.nonce)
            if key in batch_nonces:
                results[k] = OrderRejected("DUPLICATE_NONCE", f"nonce {order.nonce} appears twice in the batch")
                continue
            try:
                self.guard(order)
                self._unused_nonce(order)
            except EngineError as exc:
                results[k] = exc
                continue
            batch_nonces.add(key)
            spent.append(key)
            rows.append((OP_PLACE, ts, self.engine.account_id(order.account), order.market, int(order.is_buy),
                         order.price, order.size, tif_code, order.flags, stp, order.expiry * 1000, int(is_market), 0))
            meta.append((client_id, order.nonce, signature))
            entered.append((k, order, key, client_id))
        if spent:  # every verified order's nonce is spent, whatever the engine says of the order
            for account, nonce in spent:
                self._take_nonce(account, nonce)
            self.journal.append("nonces", spent)
        if rows:
            out = self.engine.run(rows, meta)
            for (k, order, key, client_id), r in zip(entered, out.tolist()):
                code, oid, status, filled, remaining, reason, price = r
                if code:
                    results[k] = self.engine.rejection(code, order.market, price, order.size, client_id)
                else:
                    results[k] = Ack(oid, STATUS_NAMES[status], filled, remaining, [], REASON_NAMES[reason])
                    self._record_ack(order.account, order.market, order.is_buy, order.price, order.size, client_id,
                                     order.nonce, results[k])
        return results  # not yet acknowledged: the caller awaits durable() first

    # ------------------------------------------------------------------ guardian
    def guard(self, order: SignedOrder) -> None:
        """Refuses what the guardian's controls would make the chain refuse: any new order while
        the venue is paused (503 VENUE_PAUSED: no batch can settle), and in a reduce-only market
        an order that could grow the account's position (MARKET_REDUCE_ONLY)."""
        if self.frozen_at:
            raise VenueUnavailable("VENUE_FROZEN", "the venue is frozen (escape hatch): nothing settles any more; "
                                                   "every account leaves with exitFrozen() on the ClearingHouse")
        if self.paused:
            raise VenueUnavailable("VENUE_PAUSED", "the guardian paused the venue: nothing settles until it "
                                                   "unpauses; cancels still work")
        # The prober's verdict on unsettled fills (every probe_interval_ms), and the RPC's silence
        # read now: O(1) per order, and as current as /health.
        stalled = self.stall_reason or self._rpc_silent()
        if stalled is not None and not self._reduces(order.account, order.market, order.is_buy, order.size):
            raise VenueUnavailable("CANCEL_ONLY", f"settlement cannot proceed ({stalled}): only cancels and orders "
                                                  "that reduce a position until it recovers")
        if 0 <= order.market < len(self.market_status) and self.market_status[order.market] == MARKET_REDUCE_ONLY \
                and not self._reduces(order.account, order.market, order.is_buy, order.size):
            raise OrderRejected("MARKET_REDUCE_ONLY", f"{self.markets[order.market].symbol} is reduce-only: only orders "
                                                      "that reduce the account's position (with its open orders on "
                                                      "that side) are taken")

    def _reduces(self, account: str, market: int, is_buy: bool, size: int, open_same_side: int | None = None) -> bool:
        """Whether an order cannot grow `account`'s position in `market`, even if every open order
        on its side fills too (positions include fills not yet settled)."""
        if account not in self.engine.accounts:
            return False
        a = self.engine.accounts[account]
        pos = a.positions[market][0]
        if open_same_side is None:
            open_same_side = (a.open_buy if is_buy else a.open_sell)[market]
        return pos != 0 and (pos > 0) != is_buy and size + open_same_side <= abs(pos)

    def apply_exposure_group(self, group: int, cap: int, mask: int) -> None:
        """An ExposureGroupSet event: the markets in `mask` form `group` with `cap`; the group's
        other markets leave it (as AdminModule.setExposureGroup does). Orders already resting
        stay: settlement refuses a fill above the cap, and the next orders are checked against it."""
        ts = self.now_ms()
        markets = list(self.markets)
        for m, p in enumerate(markets):
            if mask >> m & 1 or p.exposure_group == group:
                g, c = (group, cap) if mask >> m & 1 else (0, 0)
                markets[m] = replace(p, exposure_group=g, exposure_cap=c)
                self.engine.set_exposure_group(ts, m, g, c)
        self.markets = tuple(markets)
        log.info("exposure group %d: cap %d over %s", group, cap,
                 [p.symbol for p in self.markets if p.exposure_group == group] or "no markets (dissolved)")

    def apply_guardian(self, kind: str, market: int | None, on: bool) -> list:
        """A guardian or owner event from the chain: the state the venue refuses orders by, and the
        open orders that could now only fail, cancelled (each reported on the websocket as a
        cancelled order) plus one `guardian` message. Returns the cancelled orders."""
        ts = self.now_ms()
        cancelled = []
        if kind == "paused":
            self.paused = on
            if on:
                for account in {o.account for o in self.engine.orders.values()}:
                    cancelled += self.engine.cancel_all(ts, account)
        elif kind == "halted":
            self.market_status[market] = MARKET_HALTED if on else MARKET_ACTIVE
            self.engine.set_halted(ts, market, on)
            if on:
                for account in {o.account for o in self.engine.orders.values() if o.market == market}:
                    cancelled += self.engine.cancel_all(ts, account, market)
        elif kind == "reduce_only":
            if self.market_status[market] != MARKET_HALTED:
                self.market_status[market] = MARKET_REDUCE_ONLY if on else MARKET_ACTIVE
            if on:
                # Orders that could grow a position go; of a side that could grow it only partly, all go.
                for o in [o for o in self.engine.orders.values() if o.market == market]:
                    if not self._reduces(o.account, market, o.is_buy, 0):
                        cancelled.append(self.engine.cancel(ts, o.account, o.id))
        log.warning("guardian: %s %s -> %s, %d open orders cancelled", kind,
                    "" if market is None else self.markets[market].symbol, on, len(cancelled))
        self._publish({"channel": "guardian", "data": {
            "event": kind, "market": market, "on": on, "paused": self.paused,
            "marketStatus": [MARKET_STATUS_NAMES[s] for s in self.market_status],
            "cancelledOrders": [o.id for o in cancelled]}})
        return cancelled

    @staticmethod
    def _compact(signature: bytes) -> bytes:
        """The 64-byte form settlement packs (65-byte eth-account signatures included)."""
        try:
            return compact_signature(bytes(signature))
        except SignatureError as exc:
            raise SignatureRejected("BAD_SIGNATURE", str(exc)) from exc

    def _consume_nonce(self, order: SignedOrder) -> tuple[str, int]:
        """Spends the order's nonce: remembered, and journalled (durable with the next commit)."""
        key = self._unused_nonce(order)
        self._take_nonce(*key)
        self.journal.append("nonces", [key])
        return key

    def _take_nonce(self, account: str, nonce: int) -> None:
        if nonce >= GATEWAY_NONCE_BASE:  # the gateway's dense counter
            if nonce >= self.gateway_next.get(account, GATEWAY_NONCE_BASE):
                self.gateway_next[account] = nonce + 1
            return
        window = self.nonce_windows.get(account)
        if window is None:
            window = self.nonce_windows[account] = NonceWindow()
        window.take(nonce, self.settings.nonce_window)

    def _record_ack(self, account, market, is_buy, price, size, client_id, nonce, ack) -> None:
        """The final state of an order that did not rest (filled, or cancelled: an IOC's remainder,
        self-trade prevention), which no book event reports; resting orders come from events."""
        if ack.status == "resting":
            return
        state = (account, market, is_buy, price, size, ack.remaining, ack.filled, client_id, nonce, ack.status)
        self.order_states.pop(ack.order_id, None)
        self.order_states[ack.order_id] = state
        now = self.now_ms()
        self.order_times[ack.order_id] = (now, now)
        if client_id is not None:
            self.client_orders[(account, client_id)] = ack.order_id

    def _replay_result(self, kind: str, args, result) -> None:
        """Replay's view of what the live path acknowledged (order states of takers)."""
        if kind == "account":
            self._mirror_basis(args[1])
        elif kind == "unwind":
            self._mirror_basis(args[6])
            self._mirror_basis(args[7])
        elif kind == "place" and result is not None:
            ts, account, market, is_buy, price, size, tif, flags, client_id, stp, expiry, is_market, nonce, _ = args
            self._record_ack(account, market, is_buy, price, size, client_id, nonce, result)
        elif kind == "bulk" and result is not None:
            cmds, out, meta = result
            for k, (row, r) in enumerate(zip(cmds.tolist(), out.tolist())):
                if row[0] != OP_PLACE or r[0] != 0:
                    continue
                client_id, nonce = (meta[k][0], meta[k][1]) if meta is not None and meta[k] is not None else (None, 0)
                ack = Ack(r[1], STATUS_NAMES[r[2]], r[3], r[4], [], REASON_NAMES[r[5]])
                self._record_ack(self.engine.addresses[row[2]], row[3], bool(row[4]), row[5], row[6], client_id,
                                 nonce, ack)

    def _replay_entry(self, kind: str, args) -> bool:
        """Journal entries of the venue's own (the engine replays the rest)."""
        if kind == "nonces":
            for account, nonce in args:
                self._take_nonce(account, nonce)
            return True
        if kind.startswith("hl_"):
            return self.hl.replay(kind, args)
        if kind == "trigger":
            self.triggers.add(Trigger.from_record(args))
            return True
        if kind == "trigger_end":
            self.triggers.end(*args)
            return True
        if kind == "action":
            account, nonce, expiry = args
            if expiry >= self.clock.now():
                self.action_nonces[(account, nonce)] = expiry
            return True
        return False

    # ------------------------------------------------------------------ signed actions
    def check_action_terms(self, account: str, nonce: int, expiry: int) -> None:
        """A signed action is refused when expired, when its expiry lies more than a day ahead (so
        nonces can be forgotten once their actions expire), or when its nonce was seen."""
        now = self.clock.now()
        if expiry < now:
            raise SignatureRejected("EXPIRED", "the signed request has expired")
        if expiry > now + MAX_ACTION_LIFETIME_S:
            raise OrderRejected("EXPIRY_TOO_FAR", f"expiry may lie at most {MAX_ACTION_LIFETIME_S} s ahead")
        if (account, nonce) in self.action_nonces:
            raise OrderRejected("DUPLICATE_NONCE", f"action nonce {nonce} was already used by {account}")

    async def authorize(self, account: str, action: str, nonce: int, expiry: int, signature: bytes) -> None:
        """A signed Action: unexpired, not too far ahead, a nonce not seen from the account, signed
        by the account or its agent (recovered as orders are: C keccak and libsecp256k1, in the
        recovery worker). The nonce is then remembered (durably, until the expiry)."""
        self.check_action_terms(account, nonce, expiry)
        digest = action_digest(account, action, nonce, expiry, self.domain_separator)
        if self.recovery is not None:
            signer = await self.recovery.recover_one(digest, bytes(signature))
        else:
            signer = recover_many([(digest, bytes(signature))])[0]
        if isinstance(signer, str):
            raise SignatureRejected("BAD_SIGNATURE", signer)
        await self.check_signer(account, signer)
        self.check_action_terms(account, nonce, expiry)  # again: another request may have used it meanwhile
        self.remember_action(account, nonce, expiry)

    def remember_action(self, account: str, nonce: int, expiry: int) -> None:
        """Records an authorised action's nonce (durable with the request's commit); nonces of
        expired actions are dropped, as their actions are refused by expiry anyway."""
        if len(self.action_nonces) > 10_000:
            now = self.clock.now()
            self.action_nonces = {k: e for k, e in self.action_nonces.items() if e >= now}
        self.action_nonces[(account, nonce)] = expiry
        self.journal.append("action", (account, nonce, expiry))

    def _unused_nonce(self, order: SignedOrder) -> tuple[str, int]:
        """The order's (account, nonce), refused if the venue has seen it: a nonce names one order."""
        key = (order.account, order.nonce)
        if order.nonce >= GATEWAY_NONCE_BASE:  # dense: every nonce below the next one counts as used
            if order.nonce < self.gateway_next.get(order.account, GATEWAY_NONCE_BASE):
                raise OrderRejected("NONCE_TOO_LOW", f"nonce {order.nonce} (the gateway's range, from 2^63) is below "
                                                     f"{self.gateway_next[order.account]}, the next unused one of "
                                                     f"{order.account}")
            return key
        window = self.nonce_windows.get(order.account)
        refusal = window.refusal(order.nonce) if window is not None else None
        if refusal is not None:
            raise OrderRejected(refusal[0], f"{refusal[1]} by {order.account}")
        return key

    async def durable(self) -> None:
        """Group commit: every command handled in this turn of the event loop is committed to the
        journal together, then all their acknowledgements are released."""
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._commit_now)
        await asyncio.shield(self._flush)

    def _commit_now(self) -> None:
        flush, self._flush = self._flush, None
        try:
            self.journal.commit()
            flush.set_result(None)
        except Exception as exc:  # the acknowledgements must not go out
            flush.set_exception(exc)
            return
        self.publish_book_deltas()

    def publish_book_deltas(self) -> None:
        """One L2 delta per market whose levels changed since the last one: each changed level
        with its new total size (0 = gone), numbered per market so a client can apply deltas on
        top of the snapshot whose `seq` it got."""
        if not self.dirty_levels:
            return
        if not self.subscribers:  # a subscriber starts from a snapshot numbered with the current bookSeq
            self.dirty_levels.clear()
            return
        by_market: dict[int, list] = {}
        for market, is_buy, price in sorted(self.dirty_levels):
            by_market.setdefault(market, []).append(["buy" if is_buy else "sell", str(price),
                                                     str(self.engine.level_size(market, is_buy, price))])
        self.dirty_levels.clear()
        for market, changes in by_market.items():
            self.book_seq[market] += 1
            self._publish({"channel": "l2", "market": market, "bookSeq": self.book_seq[market], "data": {"changes": changes}})

    def cancel(self, account: str, order_id: int | None, client_id: str | None):
        """An open order or a waiting trigger (by its id, or by client id)."""
        t = None
        if order_id is not None and order_id >= TRIGGER_ID_BASE:
            t = self.triggers.waiting.get(order_id)
            if t is None or t.order.account != account:
                raise UnknownOrder("UNKNOWN_ORDER", f"no waiting trigger {order_id} of {account}")
        elif order_id is None and client_id is not None and (account, client_id) not in self.engine.client_ids:
            t = self.triggers.by_client_id(account, client_id)
        if t is not None:
            return self._end_trigger(t, "cancelled", None)
        return self.engine.cancel(self.now_ms(), account, order_id, client_id)

    def cancel_all(self, account: str, market: int | None = None) -> list:
        """Every open order and waiting trigger of the account (in `market`, or everywhere)."""
        return self.engine.cancel_all(self.now_ms(), account, market) + [
            self._end_trigger(t, "cancelled", None) for t in self.triggers.of(account, market)]

    # ------------------------------------------------------------------ triggers
    async def place_trigger(self, order: SignedOrder, signature: bytes, tif: str, client_id: str | None,
                            trigger_price: int, tpsl: str, is_market: bool, attached: bool = False,
                            parent: int | None = None) -> Trigger:
        """A stop-loss or take-profit order held until the mark crosses `trigger_price` (see
        venue/triggers.py): checked and verified as an order is now, its nonce spent now. One
        already due fires at once. The caller awaits `durable()` before answering."""
        tif_code, is_market = self._time_in_force(order, "Market" if is_market else tif, is_market)
        self.engine.check_range(order.price, order.size, order.expiry * 1000)
        if not 0 <= order.market < len(self.markets):
            raise OrderRejected("UNKNOWN_MARKET", f"no market {order.market}")
        if trigger_price.__class__ is not int or not 0 < trigger_price < 2**62:
            raise OrderRejected("OUT_OF_RANGE", "the trigger price must be positive, below 2^62")
        if tpsl not in ("tp", "sl"):
            raise OrderRejected("INVALID_REQUEST", "tpsl: tp (take profit) or sl (stop loss)")
        self.guard(order)
        await self.verify(order, signature)
        await self._ensure_account(order.account)
        # No await from here on.
        if attached and parent is None and not self.engine.accounts[order.account].positions[order.market][0]:
            raise OrderRejected("NO_POSITION", "a trigger attached to the position needs a position in the market")
        if client_id is not None and ((order.account, client_id) in self.engine.client_ids
                                      or self.triggers.by_client_id(order.account, client_id)):
            raise OrderRejected("DUPLICATE_CLIENT_ID", f"client order id {client_id!r} is live")
        signature = self._compact(signature)
        self._consume_nonce(order)  # refuses a nonce the venue has seen
        t = Trigger(self.triggers.next_id, order, signature, tif_code, is_market, client_id, trigger_price, tpsl,
                    attached, parent, self.now_ms())
        self.triggers.add(t)
        self.journal.append("trigger", t.as_record())
        self._publish_trigger(t)
        if parent is None and t.due(int(self.engine.markets[order.market].oracle_price)):
            self._fire(t)
        return t

    def _publish_trigger(self, t: Trigger) -> None:
        self.order_versions[t.order.account] += 1
        if self.subscribers:
            self._publish({"channel": "triggers", "data": t.as_json()})

    def _end_trigger(self, t: Trigger, status: str, child: int | None, reason: str | None = None) -> Trigger:
        ts = self.now_ms()
        self.triggers.end(t.id, status, child, ts, reason)
        if not self.engine.replaying:  # replay re-derives it (or reads the entry the live run wrote)
            self.journal.append("trigger_end", (t.id, status, child, ts, reason))
            self._publish_trigger(t)
        return t

    def _check_triggers(self, market: int, mark: int) -> None:
        for t in self.triggers.due(market, mark):
            self._fire(t)

    def _fire(self, t: Trigger) -> None:
        """The trigger's order into the engine, as signed (its nonce was spent when it was placed)."""
        o = t.order
        self.triggers.fire(t)
        try:
            self.guard(o)
            ack = self.engine.place(self.now_ms(), o.account, o.market, o.is_buy, o.price, o.size, tif=t.tif,
                                    flags=o.flags, client_id=t.client_id, expiry=o.expiry * 1000,
                                    is_market=t.is_market, nonce=o.nonce, signature=t.signature)
        except EngineError as exc:
            log.info("trigger %d of %s refused when it fired: %s", t.id, o.account, exc)
            self._end_trigger(t, "rejected", None, exc.code)
            return
        self._record_ack(o.account, o.market, o.is_buy, o.price, o.size, t.client_id, o.nonce, ack)
        self._end_trigger(t, "triggered", ack.order_id)

    def _triggers_after_fill(self, fill) -> None:
        """Triggers waiting for this fill's orders arm; those attached to a position it closed go.
        Only the two parties' triggers are looked at (a trigger's parent is its own account's order)."""
        if not self.triggers.waiting:
            return
        parties = dict.fromkeys((fill.maker.account, fill.taker.account))  # each once, maker first
        for t in [t for account in parties for t in self.triggers.of(account)]:
            if t.parent in (fill.maker.id, fill.taker.id):
                t.parent = None  # armed: the entry order filled
            elif t.attached and t.parent is None and t.order.market == fill.market and \
                    t.order.account in (fill.maker.account, fill.taker.account):
                if not self.engine.accounts[t.order.account].positions[fill.market][0]:
                    self._end_trigger(t, "cancelled", None, "position closed")

    def _triggers_after_order(self, order, status: str) -> None:
        """A parent that left the book without a fill takes its waiting children with it."""
        if status in ("resting", "partially_filled", "modified") or order.filled or not self.triggers.waiting:
            return
        for t in self.triggers.of(order.account):
            if t.parent == order.id:
                self._end_trigger(t, "cancelled", None, f"parent order {status}")

    async def _ensure_account(self, address: str) -> None:
        """An account the venue has not seen is read from the chain (off the event loop) before
        its first order; concurrent first orders share one read. It is read once: later deposits,
        withdrawals and liquidations reach it through the chain poller's events. An account with
        nothing on the ClearingHouse is refused (UNKNOWN_ACCOUNT, which the API limits per client
        address like a bad signature)."""
        if address not in self.engine.accounts:
            pending = self._syncing.get(address)
            if pending is None:
                pending = self._syncing[address] = asyncio.ensure_future(self.sync_account_async(address))
                pending.add_done_callback(lambda _: self._syncing.pop(address, None))
            await asyncio.shield(pending)
        if not self.engine.collateral(address) and not any(p[0] for p in self.engine.accounts[address].positions):
            raise UnknownAccount("UNKNOWN_ACCOUNT", f"{address} has no collateral on the ClearingHouse: deposit first")

    def read_chain_account(self, address: str) -> tuple[int, int, dict[int, list[int]], set[bytes]]:
        """Chain I/O only (safe in a worker thread): quote balance, WETH, positions and approved
        agents."""
        quote, weth_wei, _ = self.ch.functions.balances(address).call()
        positions = {m: list(self.ch.functions.position(address, m).call()[:2]) for m in range(len(self.markets))}
        agents = {}
        for ev in self.ch.events.AgentSet().get_logs(from_block=0, argument_filters={"account": address}):
            agents[address_bytes(ev.args.agent)] = ev.args.approved
        return quote, weth_wei, positions, {agent for agent, approved in agents.items() if approved}

    def apply_chain_account(self, address: str, chain_state) -> None:
        """The chain's account plus fills not yet settled, into the engine's risk mirror. Runs on
        the event loop thread, like every engine and journal access."""
        quote, weth_wei, positions, agents = chain_state
        self.agents[address] = agents
        self.account_versions[address] += 1
        collateral = quote + (risk.weth_value(weth_wei // 10**9, self.eth_price, self.haircut) if self.eth_price else 0)
        for rec in self.account_fills(address):
            if rec.status in ("pending", "submitted"):
                f = rec.fill
                delta = f.size if f.taker_is_buy else -f.size
                d = delta if address == f.taker.account else -delta
                p = positions[f.market]
                p[0], p[1], realized = risk.apply_trade(p[0], p[1], d, d * f.price // 10**8)
                collateral += realized
        self.engine.set_account(self.now_ms(), address, collateral, {m: tuple(v) for m, v in positions.items()})
        self._mirror_basis(address)
        for t in self.triggers.of(address):  # a liquidation or ADL may have closed the position
            if t.attached and t.parent is None and not positions[t.order.market][0]:
                self._end_trigger(t, "cancelled", None, "position closed")

    async def sync_account_async(self, address: str) -> None:
        try:
            state = await asyncio.to_thread(self.read_chain_account, address)
        except Exception as exc:  # noqa: BLE001: the node is away; say so instead of a 500
            raise VenueUnavailable("CHAIN_UNAVAILABLE", f"cannot read {address} from the chain: "
                                                        f"{type(exc).__name__}") from exc
        self.apply_chain_account(address, state)

    def _apply_prices(self, prices: dict[int, int]) -> None:
        for oracle_id, price in prices.items():
            self._on_price(oracle_id, price)
        self.journal.commit()

    def _on_price(self, oracle_id: int, price: int) -> None:
        self.view_version += 1
        for m, p in enumerate(self.markets):
            if p.oracle_id == oracle_id:
                self.engine.set_oracle_price(self.now_ms(), m, price)
                if self.triggers.waiting:
                    self._check_triggers(m, price)
                if self.subscribers:
                    self._publish({"channel": "oracle", "market": m, "data": {"price": str(price),
                                                                              "ts": self.now_ms()}})
        if oracle_id == self.weth_oracle_id:
            self.eth_price = price

    # ------------------------------------------------------------------ events out
    def _on_event(self, event) -> None:
        if event[0] == "fill":
            fill = event[1]
            self.dirty_levels.add((fill.market, fill.maker.is_buy, fill.price))
            self._take_nonce(fill.maker.account, fill.maker.nonce)
            self._take_nonce(fill.taker.account, fill.taker.nonce)
            self.fills[fill.seq] = FillRecord(fill, acked_block=self.chain_head, acked_at=self.clock.now(),
                                              basis=self._fill_basis(fill))
            for account in {fill.maker.account, fill.taker.account}:
                self.order_versions[account] += 1
                seqs = self.fills_by_account.get(account)
                if seqs is None:
                    seqs = self.fills_by_account[account] = deque()
                seqs.append(fill.seq)
            for o in (fill.maker, fill.taker):  # an order event follows if it rests or is cancelled
                self._record_order(o, "filled" if o.remaining == 0 else "partially_filled")
            self.unbatched.append(fill.seq)
            self._triggers_after_fill(fill)
            self.trades[fill.market].append(fill)
            self.metrics.fills.labels(self.markets[fill.market].symbol).inc()
            if self.subscribers:
                self._publish({"channel": "trades", "market": fill.market, "data": trade_json(fill)})
                self._publish({"channel": "fills", "data": self.fills[fill.seq].as_json()})
        else:
            _, order, status = event
            self.order_versions[order.account] += 1
            self._take_nonce(order.account, order.nonce)
            self._record_order(order, status)
            self._triggers_after_order(order, status)
            self.dirty_levels.add((order.market, order.is_buy, order.price))
            if self.subscribers:
                self._publish({"channel": "orders", "data": {"id": order.id, "account": order.account,
                                                             "status": status, "remaining": str(order.remaining)}})

    def _fill_basis(self, fill) -> tuple:
        """Each side's position before the fill and the PnL the fill realizes for it (what
        Hyperliquid's userFills call startPosition and closedPnl), from the accounts' positions as
        fill after fill moves them (`positions_basis`, set from the engine's mirror whenever the
        mirror is set from the chain or a fill is unwound)."""
        delta = fill.size if fill.taker_is_buy else -fill.size
        out = ()
        for account, d in ((fill.maker.account, -delta), (fill.taker.account, delta)):
            key = (account, fill.market)
            size, cost = self.positions_basis.get(key, (0, 0))
            new_size, new_cost, realized = risk.apply_trade(size, cost, d, d * fill.price // SIZE_SCALE)
            self.positions_basis[key] = (new_size, new_cost)
            out += (size, realized)
        return out

    def _mirror_basis(self, address: str) -> None:
        account = self.engine.accounts.get(address)
        if account is not None:
            for m in range(len(self.markets)):
                self.positions_basis[(address, m)] = tuple(account.positions[m][:2])

    def _record_order(self, order, status: str) -> None:
        """The latest state of an order, kept after it leaves the book (for `order_status`)."""
        states = self.order_states
        states.pop(order.id, None)  # re-inserted last: the dict stays in order of last change
        # A tuple, not a dict: ~150 bytes an order instead of ~1 KB.
        states[order.id] = (order.account, order.market, order.is_buy, order.price, order.size, order.remaining,
                            order.filled, order.client_id, order.nonce, status)
        now = self.now_ms()
        self.order_times[order.id] = (self.order_times.get(order.id, (now,))[0], now)  # (placed, last change) ms
        if order.client_id is not None:
            self.client_orders[(order.account, order.client_id)] = order.id
        if len(states) > self.settings.order_states_in_memory:
            old = next(iter(states))
            gone = states.pop(old)
            self.order_times.pop(old, None)
            if gone[7] is not None and self.client_orders.get((gone[0], gone[7])) == old:
                del self.client_orders[(gone[0], gone[7])]

    def order_status(self, account: str, order_id: int | None = None, client_id: str | None = None) -> dict:
        """An order's latest state by id or client id, open or not (like Hyperliquid's
        orderStatus): `resting` (with what remains), `filled`, `cancelled`, `expired`,
        `dead_mans_switch`, `self_trade`, `rejected` (an unwound fill took it off), with its fills
        and their settlement status. UNKNOWN_ORDER when the venue has no record of it."""
        if order_id is not None and order_id >= TRIGGER_ID_BASE:
            t = self.triggers.get(order_id)
            if t is None or t.order.account != account:
                raise UnknownOrder("UNKNOWN_ORDER", f"no trigger {order_id} of {account}")
            return t.as_json()
        if order_id is None and client_id is not None:
            order_id = self.client_orders.get((account, client_id))
        state = self.order_states.get(order_id) if order_id is not None else None
        if state is None or state[0] != account:
            raise UnknownOrder("UNKNOWN_ORDER", f"no order {order_id if client_id is None else client_id!r} "
                                                f"of {account}")
        _, market, is_buy, price, size, remaining, filled, cid, nonce, status = state
        fills = [r.as_json() for r in self.account_fills(account) if order_id in (r.fill.maker.id, r.fill.taker.id)]
        return {"id": order_id, "account": account, "market": market, "side": "buy" if is_buy else "sell",
                "price": str(price), "size": str(size), "remaining": str(remaining), "filled": str(filled),
                "clientId": cid, "nonce": nonce, "status": status, "fills": fills}

    def subscribe(self, account: str | None) -> Subscription:
        sub = Subscription(account, self.settings.ws_queue_limit)
        self.subscribers.add(sub)
        return sub

    def _publish(self, message: dict) -> None:
        for sub in self.subscribers:
            sub.offer(message)

    # ------------------------------------------------------------------ settlement
    async def _batcher(self) -> None:
        while True:
            await asyncio.sleep(min(self.settings.batch_interval_ms, 50) / 1000)
            self.batch_step()

    def batch_step(self) -> None:
        """Cuts a batch when it holds `batch_max_fills` fills or its oldest fill is
        `batch_interval_ms` old, and sends it without waiting for earlier batches to be mined
        (each batch is a task: `settling`)."""
        s = self.settings
        while self.unbatched and not self.paused:  # paused: settle() would revert; fills wait
            oldest = self.fills[self.unbatched[0]].acked_at
            if len(self.unbatched) < s.batch_max_fills and self.clock.now() - oldest < s.batch_interval_ms / 1000:
                return
            seqs = [self.unbatched.popleft() for _ in range(min(len(self.unbatched), s.batch_max_fills))]
            task = asyncio.create_task(self._settle_logged(seqs))
            self.settling.add(task)
            task.add_done_callback(self.settling.discard)

    async def settle_quiet(self) -> None:
        """(The scenario lab) Returns once every batch task is finished or waiting for a receipt
        the chain has not given yet: then the chain has everything the venue means to send."""
        while any(not t.done() and (t not in self.on_chain or self.on_chain[t].done()) for t in self.settling):
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)  # the finished tasks' done-callbacks run: `settling` is current

    async def _settle_logged(self, seqs: list[int]) -> None:
        try:
            await self.settle_batch(seqs)
        except Exception:
            log.exception("batch of %d fills failed; they go back to the queue", len(seqs))
            await asyncio.sleep(1)

    def _chain_fill(self, fill: Fill) -> ChainFill:
        return ChainFill(self._signed(fill.maker), fill.maker.signature, self._signed(fill.taker),
                         fill.taker.signature, fill.size, fill.price)

    @staticmethod
    def _signed(o) -> SignedOrder:
        """The order exactly as its owner signed it (the engine keeps the signed flags)."""
        return SignedOrder(o.account, o.market, o.is_buy, o.price, o.size, o.flags, o.expiry // 1000, o.nonce)

    async def settle_batch(self, seqs: list[int]) -> None:
        """Sends the batch, then waits for its receipt without holding up the next batch: batch
        indices and operator nonces are assigned in the same order, so pipelined batches land in
        sequence."""
        seqs = self._drop_unpackable(seqs)
        if not seqs:
            await self.durable()
            return
        async with self.batch_lock:
            index = self.next_batch
            data = pack_fills([self._chain_fill(self.fills[s].fill) for s in seqs])
            for seq in seqs:  # durable before the transaction leaves: a restart can reconcile it
                self.fills[seq].status, self.fills[seq].batch = "submitted", index
                self.journal.set_settlement(seq, "submitted", index, None, None)
            self.journal.commit()
            try:
                raw, nonce = await asyncio.to_thread(self._send, index, data)
            except Exception:
                self._requeue(seqs)
                raise
            self.next_batch = index + 1
        try:
            me = asyncio.current_task()
            self.on_chain[me] = waiting = self._receipt_of(raw, nonce, index)
            try:
                receipt = await waiting
            finally:
                self.on_chain.pop(me, None)
        except Exception:
            async with self.batch_lock:
                # Later batches sent behind this one revert on the index check; start again from
                # the chain's view.
                self.next_batch = await asyncio.to_thread(self.ch.functions.nextBatchIndex().call)
                self.operator_nonce = None
                self._requeue(seqs)
            raise
        self._reconcile(seqs, index, receipt)
        touched = {a for s in seqs for a in (self.fills[s].fill.maker.account, self.fills[s].fill.taker.account)}
        for address in touched:  # their views read the chain again from now (the fills are settled)
            self.account_versions[address] += 1
        for address in touched:
            await self.sync_account_async(address)
        await self.durable()

    def _drop_unpackable(self, seqs: list[int]) -> list[int]:
        """The fills of a batch that can be packed for `settle`; any other is rejected alone (with
        its reason, unwound in the engine, reported on the websocket and in the account view), so
        one bad fill never strands the rest of its batch."""
        good = []
        for seq in seqs:
            f = self.fills[seq].fill
            try:
                self._chain_fill(f).pack(0)
                good.append(seq)
                continue
            except Exception as exc:  # noqa: BLE001: whatever it is, this fill alone pays for it
                reason = f"UNPACKABLE: {type(exc).__name__}: {exc}"
            try:
                pack_order(self._signed(f.maker), f.maker.signature)
                maker_ok = True
            except Exception:  # noqa: BLE001
                maker_ok = False
            log.error("fill %d cannot be settled and is rejected alone: %s", seq, reason)
            rec = self.fills[seq]
            rec.status, rec.reason = "rejected", reason
            self._unwind(f, maker_ok)
            self.dirty_levels.add((f.market, f.maker.is_buy, f.price))
            self.journal.set_settlement(seq, "rejected", None, None, reason)
            self._publish({"channel": "fills", "data": rec.as_json()})
        return good

    def _requeue(self, seqs: list[int]) -> None:
        for seq in seqs:
            self.fills[seq].status, self.fills[seq].batch = "pending", None
            self.journal.set_settlement(seq, "pending", None, None, None)
        self.journal.commit()
        self.unbatched.extendleft(reversed(seqs))

    def _reconcile(self, seqs: list[int], index: int, receipt) -> None:
        rejected = {e.args.fillIndex: (RejectReason(e.args.reason), e.args.account)
                    for e in self.ch.events.FillRejected().process_receipt(receipt, errors=DISCARD)}
        tx_hash = "0x" + bytes(receipt.transactionHash).hex()
        for i, seq in enumerate(seqs):
            rec = self.fills[seq]
            rec.batch, rec.tx_hash = index, tx_hash
            f = rec.fill
            if i in rejected:
                reason, culprit = rejected[i]
                rec.status, rec.reason = "rejected", reason.name
                self.metrics.rejections.labels(reason.name).inc()
                self.rejected_recent.append((self.clock.now(), reason.name, f.price * f.size // 10**8))
                # The maker's size goes back on the book unless its own order is what failed.
                maker_ok = not (culprit == f.maker.account and reason in (
                    RejectReason.INVALID_SIGNATURE, RejectReason.ORDER_CLOSED, RejectReason.EXPIRED,
                    RejectReason.OVERFILL, RejectReason.REDUCE_ONLY, RejectReason.POSITION_CAP,
                    RejectReason.INSUFFICIENT_MARGIN, RejectReason.MAINTENANCE_WORSENED,
                    RejectReason.MARKET_REDUCE_ONLY))
                self._unwind(f, maker_ok)
                self.dirty_levels.add((f.market, f.maker.is_buy, f.price))
            else:
                rec.status = "settled"
                self.metrics.fills_settled.inc()
                self.metrics.ack_to_settle.observe(max(0.0, self.clock.now() - rec.acked_at))
            self.journal.set_settlement(seq, rec.status, index, tx_hash, rec.reason)
            self._publish({"channel": "fills", "data": rec.as_json()})
        self.journal.commit()
        self.metrics.batch_gas.observe(receipt.gasUsed)
        self.last_settled_batch, self.last_settled_at = index, self.clock.now()
        self._forget_finished(seqs)

    def _forget_finished(self, seqs) -> None:
        """Settled and rejected fills stay in memory for the account views and order status up
        to `fills_in_memory` of them; older ones live in the journal only."""
        self.finished.extend(seqs)
        while len(self.finished) > self.settings.fills_in_memory:
            self.fills.pop(self.finished.popleft(), None)

    def _recover_submitted(self) -> None:
        """Fills a previous run submitted: if their batch index is below the chain's next index the
        batch mined while we were down, and its FillRejected events say which fills failed;
        otherwise the transaction never landed and the fills go back to pending."""
        by_batch: dict[int, list[FillRecord]] = {}
        for rec in self.fills.values():
            if rec.status == "submitted":
                by_batch.setdefault(rec.batch, []).append(rec)
        for batch, recs in by_batch.items():
            recs.sort(key=lambda r: r.fill.seq)
            if batch >= self.next_batch:
                for rec in recs:
                    rec.status, rec.batch = "pending", None
                    self.journal.set_settlement(rec.fill.seq, "pending", None, None, None)
                continue
            settled = self.ch.events.BatchSettled().get_logs(from_block=0, argument_filters={"batchIndex": batch})
            tx = "0x" + bytes(settled[0].transactionHash).hex() if settled else None
            rejected = {e.args.fillIndex: RejectReason(e.args.reason) for e in
                        self.ch.events.FillRejected().get_logs(from_block=0, argument_filters={"batchIndex": batch})}
            for i, rec in enumerate(recs):
                f = rec.fill
                if i in rejected:
                    rec.status, rec.reason = "rejected", rejected[i].name
                    self._unwind(f, False)
                else:
                    rec.status = "settled"
                rec.tx_hash = tx
                self.journal.set_settlement(f.seq, rec.status, batch, tx, rec.reason)
        self.journal.commit()

    def _send(self, index: int, data: bytes) -> tuple[bytes, int]:
        """Signs settle(index, data) from the operator with the next nonce and sends it: calldata
        encoded and the transaction built here, with a gas bound rather than an estimate (an
        estimate runs the batch on the node, and web3's builder costs tens of milliseconds under
        load; both held every batch behind the one before), capped at the block gas limit."""
        w3, s = self.w3, self.settings
        if self.operator_nonce is None:
            self.operator_nonce = w3.eth.get_transaction_count(self.operator.address, "pending")
        nonce = self.operator_nonce
        head = w3.eth.get_block("latest")
        gas = min(settle_gas_bound(len(data) // FILL_BYTES, len(self.markets)), head.gasLimit)
        tip = int(s.priority_fee_gwei * 10**9)
        tx = {
            "to": self.ch.address, "value": 0, "data": settle_calldata(index, data), "nonce": nonce, "gas": gas,
            "maxPriorityFeePerGas": tip, "chainId": self.deployment.chain_id,
            "maxFeePerGas": min(int(s.max_fee_gwei * 10**9), 2 * head.get("baseFeePerGas", 0) + tip),
            "accessList": settle_access_list(self.ch.address, data, self.operator.address),
        }
        raw = self.operator.sign_transaction(tx).raw_transaction
        w3.eth.send_raw_transaction(raw)
        self.operator_nonce = nonce + 1
        return raw, nonce

    def _receipt_of(self, raw: bytes, nonce: int, index: int) -> asyncio.Future:
        """The receipt of a sent batch, when the receipt watcher sees it mined."""
        fut = asyncio.get_running_loop().create_future()
        self.awaiting[bytes(Web3.keccak(raw))] = _Awaiting(raw, nonce, index, fut, self.clock.now() + 120)
        return fut

    async def _receipt_watcher(self) -> None:
        """One task for every batch in flight (a thread each, polling, used to fill the shared
        thread pool and starve chain ingestion): every `RECEIPT_POLL_S` a `receipt_step`."""
        while True:
            await asyncio.sleep(RECEIPT_POLL_S)
            await self.receipt_step()

    async def receipt_step(self) -> None:
        """Reads the block number and, on a new block, the receipts of the batches sent, oldest
        first, in one thread call; resolves their futures. A transaction that dropped out of the
        pool is sent again (its batch index makes a duplicate harmless); one not mined in 120 s
        fails its batch (it is requeued)."""
        if not self.awaiting:
            return
        try:
            head, found = await asyncio.to_thread(self._receipts, self.receipts_seen, list(self.awaiting.items()))
        except Exception:  # noqa: BLE001: the RPC hiccuped; the prober reports it, try again
            log.warning("receipt poll failed", exc_info=True)
            return
        self.receipts_seen = head
        now = self.clock.now()
        for tx_hash, result in found.items():
            waiting = self.awaiting.pop(tx_hash, None)
            if waiting is not None and not waiting.future.done():
                (waiting.future.set_exception if isinstance(result, Exception) else waiting.future.set_result)(result)
        for tx_hash, waiting in list(self.awaiting.items()):
            if now > waiting.deadline:
                del self.awaiting[tx_hash]
                if not waiting.future.done():
                    waiting.future.set_exception(TimeoutError(f"settle({waiting.index}) not mined in 120 s"))

    def _receipts(self, seen: int, awaiting: list) -> tuple[int, dict]:
        """The head block and, if it moved past `seen`, each awaited transaction's receipt (or
        the revert as an error); those still unmined are sent again if they left the pool."""
        w3 = self.w3
        head = w3.eth.block_number
        if head == seen:
            return head, {}
        found, pending_nonce = {}, None
        for tx_hash, waiting in awaiting:
            try:
                receipt = w3.eth.get_transaction_receipt(tx_hash)
            except Exception:  # noqa: BLE001: not mined yet
                receipt = None
            if receipt is not None:
                found[tx_hash] = receipt if receipt.status == 1 else RuntimeError(
                    f"settle({waiting.index}) reverted in 0x{tx_hash.hex()}")
                continue
            if pending_nonce is None:
                pending_nonce = w3.eth.get_transaction_count(self.operator.address, "pending")
            if pending_nonce <= waiting.nonce:
                try:
                    w3.eth.send_raw_transaction(waiting.raw)  # dropped from the pool: send it again
                except Exception:  # noqa: BLE001: already known, or replaced: the next block tells
                    pass
        return head, found

    # ------------------------------------------------------------------ clock
    async def _clock(self) -> None:
        """Drives the engine's time-driven rules (order expiries, dead-man's switches): every
        `clock_interval_ms` (10), a `tick_step`, so they fire on time on a quiet venue."""
        interval = self.settings.clock_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            await self.tick_step()

    async def tick_step(self) -> None:
        """A tick of the engine when an expiry or a dead-man's switch is due; journalled like any
        command."""
        now = self.now_ms()
        if now >= self.engine.due:
            fired = [self.engine.addresses[i] for i, at in enumerate(self.engine.deadman_at) if 0 < at <= now] \
                if self.triggers.waiting else []
            self.engine.tick(now)
            for account in fired:  # a dead-man's switch takes the account's triggers too
                for t in self.triggers.of(account):
                    self._end_trigger(t, "cancelled", None, "dead-man's switch")
            await self.durable()

    # ------------------------------------------------------------------ health
    async def _prober(self) -> None:
        """Reads the chain head on its own short-timeout connection every `probe_interval_ms`."""
        while True:
            try:
                block = await asyncio.to_thread(self.probe_w3.eth.get_block, "latest")
                self.chain_head, self.chain_time = block.number, block.timestamp
                self.probe_ok_at, self.rpc_error = time.monotonic(), None
            except Exception as exc:  # noqa: BLE001: what /health reports
                self.rpc_error = f"{type(exc).__name__}: {exc}"[:200]
            was, self.stall_reason = self.stall_reason, self.stalled()
            if (was is None) != (self.stall_reason is None):
                if self.stall_reason is None:
                    log.warning("settlement proceeds again: taking orders")
                else:
                    log.error("settlement cannot proceed (%s): cancel-only", self.stall_reason)
            await asyncio.sleep(self.settings.probe_interval_ms / 1000)

    def oldest_unsettled(self) -> FillRecord | None:
        """The oldest fill the chain has not taken yet (pending or submitted)."""
        oldest = None
        for seq in self.unbatched:  # in order: the first is the oldest pending
            oldest = self.fills[seq]
            break
        for rec in self.fills.values():
            if rec.status == "submitted" and (oldest is None or rec.fill.seq < oldest.fill.seq):
                oldest = rec
                break
        return oldest

    def _rpc_silent(self) -> str | None:
        """Why the RPC counts as down: its last probe failed and none has succeeded for
        `rpc_down_s`. (Time alone does not count: an event loop busy compiling is not a silent node.)"""
        if self.rpc_error is None:
            return None
        silent = time.monotonic() - self.probe_ok_at
        if silent > self.settings.rpc_down_s:
            return f"RPC unreachable for {silent:.1f} s: {self.rpc_error}"
        return None

    def stalled(self) -> str | None:
        """Why settlement cannot proceed now, or None: the RPC has not answered for `rpc_down_s`,
        or the oldest unsettled fill is older than `stall_blocks` blocks or `stall_seconds`."""
        s = self.settings
        silent = self._rpc_silent()
        if silent is not None:
            return silent
        oldest = self.oldest_unsettled()
        if oldest is not None:
            blocks, seconds = self.chain_head - oldest.acked_block, self.clock.now() - oldest.acked_at
            if blocks > s.stall_blocks or seconds > s.stall_seconds:
                return f"oldest unsettled fill is {blocks} blocks and {seconds:.1f} s old"
        return None

    def health(self) -> dict:
        """The venue's state with numbers; `status` is `down` when settlement cannot proceed
        (cancel-only), `paused` while the guardian has it paused, `degraded` when the venue trails
        the chain by more than `lag_blocks_degraded` blocks or a market's oracle price is older
        than the contracts accept, else `ok`."""
        s = self.settings
        stalled = self.stalled()
        oldest = self.oldest_unsettled()
        max_age = self.max_price_age
        # Against the later of the chain head's time and now: on an idle chain (automine, no
        # transactions) the head's time stands still, but the next block, and so the next
        # settlement, sees the price as old as the clock says.
        now = max(self.chain_time, int(self.clock.now()))
        oracle_age = {p.symbol: (now - self.oracle_updated[p.oracle_id] if p.oracle_id in self.oracle_updated else None)
                      for p in self.markets}
        lag = self.chain_head - self.last_block
        stale = [sym for sym, age in oracle_age.items() if age is None or age > max_age]
        status = "frozen" if self.frozen_at else "down" if stalled else "paused" if self.paused else \
            "degraded" if lag > s.lag_blocks_degraded or stale else "ok"
        return {
            "status": status, "cancelOnly": stalled is not None, "reason": stalled, "frozenAt": self.frozen_at or None,
            "rpcReachable": self._rpc_silent() is None, "rpcError": self.rpc_error,
            "chainHead": self.chain_head, "block": self.last_block, "lagBlocks": lag,
            "nextBatch": self.next_batch, "pendingFills": len(self.unbatched), "restingOrders": len(self.engine.orders),
            "submittedFills": sum(1 for r in self.fills.values() if r.status == "submitted"),
            "oldestUnsettledFillAgeS": None if oldest is None else round(self.clock.now() - oldest.acked_at, 3),
            "oldestUnsettledFillAgeBlocks": None if oldest is None else self.chain_head - oldest.acked_block,
            "lastSettledBatch": self.last_settled_batch, "lastSettledAt": self.last_settled_at,
            "oracleAgeS": oracle_age, "maxPriceAgeS": max_age, "paused": self.paused,
            "marketStatus": {p.symbol: MARKET_STATUS_NAMES[st] for p, st in zip(self.markets, self.market_status)},
            "journalSkipped": len(self.replay_skipped),
            "accountViewReads": self.view_reads, "websocketSubscribers": len(self.subscribers),
            "thresholds": {"stallBlocks": s.stall_blocks, "stallSeconds": s.stall_seconds, "rpcDownS": s.rpc_down_s,
                           "lagBlocksDegraded": s.lag_blocks_degraded},
        }

    # ------------------------------------------------------------------ operations
    async def _watchman(self) -> None:
        """Every `alert_interval_s`: the risk snapshot (one JSON-RPC batch), the alert rules."""
        while True:
            try:
                await self.watch_step()
            except Exception:  # noqa: BLE001: the next round tries again
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.settings.alert_interval_s)

    async def watch_step(self) -> list[dict]:
        now = self.clock.now()
        for m in range(len(self.markets)):
            bids, asks = self.engine.l2(m, 1)
            if bids and asks:
                self.book_empty_since[m] = None  # quoted: from now on an empty side counts
            elif m in self.book_empty_since and self.book_empty_since[m] is None:
                self.book_empty_since[m] = now
        snap = await asyncio.to_thread(self.risk_snapshot)
        return self.alerts.evaluate(alert_findings(self, snap))

    def risk_snapshot(self) -> dict:
        """The chain's numbers the console and the alert rules need, in two JSON-RPC batches: every
        market's view and the insurance fund, and every account with a position (balances,
        health, positions), with distance to liquidation, leverage and liquidation prices."""
        names = market_fields(self.ch)
        words, insurance = self.view_reader.markets()
        markets = []
        for m, w in enumerate(words):
            view = dict(zip(names, w))
            view["oraclePrice"] = int(self.engine.markets[m].oracle_price)
            markets.append(view)
        addresses = [a for a, acct in self.engine.accounts.items() if any(p[0] for p in acct.positions)]
        prices = {m: int(ms.oracle_price) for m, ms in enumerate(self.engine.markets)}
        accounts = []
        for address, ((quote, weth_wei, _), (equity, im, mm), views) in (
                self.view_reader.read(addresses).items() if addresses else []):
            notional = sum(abs(v[0]) * prices[m] // 10**8 for m, v in views.items())
            if not notional:
                continue
            liq = risk.position_liquidation_prices(quote, weth_wei, views, prices, self.markets, self.eth_price,
                                                   self.haircut, self.weth_oracle_id)
            accounts.append({
                "address": address, "equity": equity, "maintenance": mm, "initial": im, "notional": notional,
                "collateralQuote": quote, "wethWei": weth_wei,
                "collateralAfterHaircut": quote + (risk.weth_value(weth_wei // 10**9, self.eth_price, self.haircut)
                                                   if weth_wei else 0),
                "bufferPct": (equity - mm) / notional * 100, "leverage": notional / equity if equity > 0 else None,
                "positions": [{"market": m, "symbol": self.markets[m].symbol, "size": v[0], "entryPrice": v[2],
                               "liquidationPrice": liq.get(m), "adlLights": self.adl_lights(address, m, v[0], v[1], equity)}
                              for m, v in views.items() if v[0]]})
        accounts.sort(key=lambda a: a["bufferPct"])
        self.insurance_fund = insurance
        self.insurance_history.append((self.clock.now(), insurance))
        snap = {"markets": markets, "accounts": accounts, "insurance": insurance, "at": self.clock.now()}
        self.last_snapshot = snap
        return snap

    # ------------------------------------------------------------------ chain ingestion
    async def _chain_poller(self) -> None:
        """`poll_once` every `poll_interval_ms`; while the node fails, backing off (doubling, to at
        most 2 s) and logging the first failure in full and then a line every 50 (a venue whose
        node is gone must not spin logging tracebacks). The prober reports the outage in /health."""
        failures = 0
        while True:
            await asyncio.sleep(min(POLL_BACKOFF_MAX_S, self.settings.poll_interval_ms / 1000 * 2 ** min(failures, 8)))
            try:
                await self.poll_once()
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.exception("chain poll failed")
                elif failures % 50 == 0:
                    log.warning("chain poll still failing (%d in a row): %s: %s", failures, type(exc).__name__, exc)
                continue
            if failures:
                log.warning("chain poll recovered after %d failures", failures)
                failures = 0

    async def poll_once(self) -> None:
        """Ingests the chain's events from the blocks since the last poll."""
        head = await asyncio.to_thread(lambda: self.w3.eth.block_number)
        if head <= self.last_block:
            return
        frm, to = self.last_block + 1, head
        self.last_block = head
        events = await asyncio.to_thread(self.events.read, frm, to)

        def of(name: str) -> list:
            return events.get(name, [])
        for ev in of("PriceUpdated"):
            self._on_price(ev.args.id, ev.args.price)
            self.oracle_updated[ev.args.id] = ev.args.timestamp
        touched = set()
        for ev in of("Deposited") + of("Withdrawn"):
            touched.add(ev.args.account)
        for ev in of("Liquidated"):
            touched.update((ev.args.account, ev.args.liquidator))
            self.last_liquidation = {"account": ev.args.account, "liquidator": ev.args.liquidator,
                                     "market": ev.args.marketId, "block": ev.blockNumber}
        for ev in of("BadDebt"):
            self.bad_debt += ev.args.amount
        for ev in of("Deleveraged"):
            touched.update((ev.args.account, ev.args.counterparty))
            self._publish({"channel": "adl", "data": {
                "account": ev.args.account, "counterparty": ev.args.counterparty, "market": ev.args.marketId,
                "size": str(ev.args.size), "price": str(ev.args.price), "socialised": str(ev.args.socialised),
                "block": ev.blockNumber, "txHash": ev.transactionHash.to_0x_hex()}})
        for ev in of("AgentSet"):
            self.hl.chain_agents.pop(ev.args.agent, None)
            if ev.args.account in self.agents:
                (self.agents[ev.args.account].add if ev.args.approved else
                 self.agents[ev.args.account].discard)(address_bytes(ev.args.agent))
        if of("HaircutSet"):
            self.haircut = await asyncio.to_thread(self.ch.functions.haircutBps().call)
            self.view_version += 1
        for ev in of("ExposureGroupSet"):
            self.apply_exposure_group(ev.args.group, ev.args.cap, ev.args.marketMask)
        for ev in of("FundingUpdated"):
            self.last_funding_at = ev.args.timestamp
        if of("FundingUpdated"):
            self.view_version += 1  # funding owed moves for every holder
        for ev in of("Frozen"):
            self.frozen_at, self.paused = ev.args.at, True
            log.error("the venue was frozen at %d on %s's exit request: no more orders; accounts leave by exitFrozen()",
                      ev.args.at, ev.args.requester)
            self._publish({"channel": "venue", "data": {"frozen": True, "frozenAt": ev.args.at,
                                                        "requester": ev.args.requester}})
        guardian = []
        for name, kind in (("VenuePausedSet", "paused"), ("MarketHalted", "halted"), ("MarketReduceOnly", "reduce_only")):
            for ev in of(name):
                on = ev.args.paused if kind == "paused" else ev.args.halted if kind == "halted" else ev.args.reduceOnly
                guardian.append(((ev.blockNumber, ev.logIndex), kind, ev.args.get("marketId"), bool(on)))
        for _, kind, market, on in sorted(guardian):  # in chain order
            self.apply_guardian(kind, market, on)
        self.journal.set_meta("last_block", head)
        self.journal.commit()
        for address in touched:
            self.account_versions[address] += 1  # its view reads again
            if address in self.engine.accounts:
                await self.sync_account_async(address)
        await self.durable()

    # ------------------------------------------------------------------ views
    def account_fills(self, address: str) -> list[FillRecord]:
        """The account's fills still in memory, oldest first (an index: no scan of every fill)."""
        seqs = self.fills_by_account.get(address)
        if not seqs:
            return []
        while seqs and seqs[0] not in self.fills:  # forgotten (`_forget_finished`)
            seqs.popleft()
        return [self.fills[s] for s in seqs if s in self.fills]

    def _read_view(self, address: str) -> tuple:
        """The account as the chain holds it, in one JSON-RPC batch (one round trip): balances,
        health and every market's position view (`AccountReader`). Runs on the view threads."""
        self.view_reads += 1
        return self.view_reader.read([address])[address]

    async def chain_view(self, address: str) -> tuple:
        """`_read_view`, shared by every request until something it depends on changes: the
        account's own state (read at once), or a price, a funding rate or the haircut (read at
        most once per block). Between changes the numbers are those of the last read (funding
        accrued since then shows at the next change)."""
        block = max(self.chain_head, self.last_block)
        key = (self.view_version, self.account_versions.get(address, 0))
        cached = self.view_cache.get(address)
        # The account's own change (its fills settled, a deposit...) is read at once, so the view
        # never shows a fill settled beside the position from before it; changes for everyone
        # (a price) wait for the next block.
        stale = cached is None or cached[1][1] != key[1] or (cached[1][0] != key[0] and cached[0] != block) or (
            cached[2].done() and cached[2].exception() is not None)
        if stale:
            if self.view_inflight >= VIEW_BACKLOG:
                raise VenueUnavailable("VIEWS_BUSY", f"{self.view_inflight} account views are waiting for the "
                                                     "chain: retry shortly")
            self.view_inflight += 1
            future = asyncio.get_running_loop().run_in_executor(self.view_pool, self._read_view, address)
            future.add_done_callback(self._view_done)
            cached = self.view_cache[address] = (block, key, future)
            if len(self.view_cache) > 10_000:
                self.view_cache.popitem(last=False)
        self.view_cache.move_to_end(address)
        return await asyncio.shield(cached[2])

    def adl_lights(self, address: str, market: int, size: int, open_notional: int, equity: int) -> int:
        """Binance's five lights for a position (`risk.adl_lights`): its ADL score's quantile among
        the positions on its side of the market that the venue's mirror holds (every account that
        has traded here), scored as the contract scores them at the oracle price."""
        price = self.engine.markets[market].oracle_price
        if not size or not price:
            return 0
        return risk.adl_lights(risk.adl_score(size, open_notional, price, equity), self._adl_scores(market, size > 0))

    def _adl_scores(self, market: int, long: bool) -> list[int]:
        """Sorted positive ADL scores of one side of a market from the engine's mirror (pending
        fills included), computed at most once per block."""
        block = max(self.chain_head, self.last_block)
        cached = self._adl_cache.get((market, long))
        if cached is not None and cached[0] == block:
            return cached[1]
        prices = [int(ms.oracle_price) for ms in self.engine.markets]
        scores = []
        for other in self.engine.accounts:
            a = self.engine.accounts[other]
            positions = [(int(s), int(n)) for s, n in a.positions]
            o_size, o_open = positions[market]
            if o_size and (o_size > 0) == long:
                pnl = sum(risk.position_value(s, prices[k]) - n for k, (s, n) in enumerate(positions) if s)
                score = risk.adl_score(o_size, o_open, prices[market], int(a.collateral) + pnl)
                if score > 0:
                    scores.append(score)
        scores.sort()
        self._adl_cache[(market, long)] = (block, scores)
        return scores

    def _unwind(self, fill, maker_still_valid: bool) -> None:
        """A fill the chain refused, unwound in the engine; both accounts' open orders change (the
        maker's size returns), so their views rebuild their lists."""
        for account in (fill.maker.account, fill.taker.account):
            self.order_versions[account] += 1
        self.engine.on_fill_rejected(self.now_ms(), fill.seq, fill.maker.id, maker_still_valid, fill.size, fill.market,
                                     fill.maker.account, fill.taker.account, fill.price, fill.taker_is_buy)
        for account in (fill.maker.account, fill.taker.account):
            self._mirror_basis(account)

    def _view_open_orders(self, address: str) -> list:
        """The first VIEW_OPEN_ORDERS open orders as JSON, rebuilt only when the account's orders
        changed since (`order_versions`)."""
        version = self.order_versions.get(address, 0)
        cached = self._open_orders_view.get(address)
        if cached is None or cached[0] != version:
            cached = self._open_orders_view[address] = (version, [
                order_json(o) for o in self.engine.open_orders(address, limit=VIEW_OPEN_ORDERS)])
            if len(self._open_orders_view) > 10_000:
                self._open_orders_view.pop(next(iter(self._open_orders_view)))
        return cached[1]

    def _view_done(self, _future) -> None:
        self.view_inflight -= 1

    async def account_view(self, address: str) -> dict:
        """The chain's account (read at most once a block) with what the venue knows beyond it:
        sizes with the fills not yet settled, open orders, fills and their settlement status."""
        (quote, weth_wei, _), (equity, im, mm), views = await self.chain_view(address)
        liquidation = risk.position_liquidation_prices(
            quote, weth_wei, views, {m: ms.oracle_price for m, ms in enumerate(self.engine.markets)}, self.markets,
            self.eth_price, self.haircut, self.weth_oracle_id)
        positions = []
        for m, liq in liquidation.items():
            v, p = views[m], self.markets[m]
            pending = self.engine.accounts[address].positions[m][0] if address in self.engine.accounts else v[0]
            positions.append({"market": m, "symbol": p.symbol, "size": str(v[0]), "sizeWithPending": str(pending),
                              "openNotional": str(v[1]),
                              "entryPrice": str(v[2]), "unrealizedPnl": str(v[3]), "fundingOwed": str(v[4]),
                              "liquidationPrice": None if liq is None else str(liq),
                              "adlLights": self.adl_lights(address, m, v[0], v[1], equity)})
        mine = self.account_fills(address)
        prices = {m: ms.oracle_price for m, ms in enumerate(self.engine.markets)}
        groups = {m: p.exposure_group for m, p in enumerate(self.markets)}
        exposure = [{"group": g, "cap": str(cap), "markets": [p.symbol for p in self.markets if p.exposure_group == g],
                     "notional": str(risk.group_exposure({m: views[m][0] for m in views}, prices, groups, g))}
                    for g, cap in sorted({p.exposure_group: p.exposure_cap for p in self.markets if p.exposure_group}.items())]
        return {
            "address": address, "collateral": {"quote": str(quote), "wethWei": str(weth_wei)},
            "equity": str(equity), "initialMargin": str(im), "maintenanceMargin": str(mm), "positions": positions,
            "exposureGroups": exposure,
            "openOrders": self._view_open_orders(address),
            "openOrderCount": self.engine.open_order_count(address),
            "triggers": [t.as_json() for t in self.triggers.of(address)],
            "venuePaused": self.paused, "venueFrozen": bool(self.frozen_at),
            "fills": [r.as_json() for r in mine[-200:]],
            "pendingFills": [r.fill.seq for r in mine if r.status in ("pending", "submitted")],
        }


def trade_json(f) -> dict:
    """A public trade: the side is the taker's."""
    return {"seq": f.seq, "market": f.market, "price": str(f.price), "size": str(f.size),
            "side": "buy" if f.taker_is_buy else "sell", "ts": f.ts}


def order_json(o) -> dict:
    return {"id": o.id, "market": o.market, "side": "buy" if o.is_buy else "sell", "price": str(o.price),
            "size": str(o.size), "remaining": str(o.remaining), "filled": str(o.filled), "clientId": o.client_id,
            "nonce": o.nonce}
