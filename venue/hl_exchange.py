"""Hyperliquid's `/exchange` on crossbook: the official SDK's signed actions, verified as
Hyperliquid verifies them, turned into crossbook orders that the venue's gateway key signs
(../shared/reference/hyperliquid-api.md §3, §5, §6.2, §7b).

Trust, in one paragraph (the README says it in full): an SDK signature is over a msgpack hash
of the action, which the ClearingHouse cannot check, so this facade checks it: the signer must
be the account itself, an agent the account approved through `approveAgent` (journalled here),
or an agent the account approved on-chain; each signer's nonces are single-use (Hyperliquid's
rule: above the lowest of its 100 highest, within two days back and one day ahead); an
`expiresAfter` in the past is refused. The orders are then re-signed as crossbook `Order`s by
the gateway key G, which the account approved on-chain once as its agent (`venue hl approve`;
`venue devnet` does it for its traders). G can trade for the accounts that approved it, within
every rule the ClearingHouse enforces (margin, the oracle band, caps, reduce-only); it cannot
withdraw or move funds. Revoking is `setAgent(G, false)`. The raw signed request is journalled
with the signer, the account and the crossbook orders it produced (`hl_action`), and
`venue hl verify` re-checks every gateway fill against it offline.

Gateway order nonces: a dense counter per account from 2^63 (the top half of the uint64 order
nonce, which no timestamp reaches), so they share storage words on-chain and never collide
with the account's own nonces.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation

from .domain import BPS, FLAG_IOC, FLAG_POST_ONLY, FLAG_REDUCE_ONLY
from .engine import EngineError, OrderRejected
from .hl import coin, px, sz
from .hl_signing import recover_approve_agent, recover_l1
from .nonces import NonceWindow
from .signing import Order as SignedOrder
from .signing import SignatureError, address_bytes, address_of, checksum_address, order_digest, sign_order

GATEWAY_NONCE_BASE = 1 << 63
HL_NONCE_WINDOW = 100  # Hyperliquid keeps each signer's 100 highest nonces
NONCE_PAST_MS, NONCE_FUTURE_MS = 2 * 86_400_000, 86_400_000
MIN_SCHEDULE_AHEAD_MS = 5_000
CLOID = re.compile(r"^0x[0-9a-f]{32}$")

# crossbook refusal codes -> Hyperliquid's per-order error texts (the ones ccxt matches on)
HL_ERRORS = {
    "TICK_SIZE": "Price must be divisible by tick size. asset={a}",
    "LOT_SIZE": "Order has invalid size.", "INVALID_SIZE": "Order has invalid size.",
    "MIN_NOTIONAL": "Order must have minimum value of $10. asset={a}",
    "INSUFFICIENT_MARGIN": "Insufficient margin to place order. asset={a}",
    "REDUCE_ONLY": "Reduce only order would increase position. asset={a}",
    "POST_ONLY_WOULD_CROSS": "Post only order would have immediately matched, bbo was {bbo}. asset={a}",
    "PRICE_BAND": "Order price cannot be more than {band}% away from the reference price",
    "DUPLICATE_CLIENT_ID": "Duplicate cloid. asset={a}",
}
UNVERIFIED = ("User or API Wallet ", "invalid signature")  # answers the API limits per client address
NEVER_PLACED = "Order was never placed, already canceled, or filled. asset={a}"
NO_MATCH = "Order could not immediately match against any resting orders. asset={a}"


class HlRequestError(EngineError):
    """A body that is not a Hyperliquid request at all: 400 {code, msg} (the SDK reads those)."""

    status = 400


class ActionRefused(Exception):
    """An action refused as a whole: HTTP 200 `{"status": "err", "response": text}`, as Hyperliquid answers."""


def ok(response: dict) -> dict:
    return {"status": "ok", "response": response}


def refused(text: str) -> dict:
    return {"status": "err", "response": text}


def parse_decimal(text, scale: int, what: str) -> int:
    """A Hyperliquid decimal string ("3001.5") as an integer of 10^-scale units; anything not
    exactly representable is refused."""
    if not isinstance(text, str) or len(text) > 40:
        raise OrderRejected("INVALID", f"Order has invalid {what}.")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise OrderRejected("INVALID", f"Order has invalid {what}.") from None
    if not d.is_finite() or d < 0:
        raise OrderRejected("INVALID", f"Order has invalid {what}.")
    scaled = d.scaleb(scale)
    if scaled != scaled.to_integral_value() or scaled >= 2**64:
        raise OrderRejected("INVALID", f"Order has invalid {what}.")
    return int(scaled)


TIFS = ("Alo", "Ioc", "Gtc", "FrontendMarket")


def wire_tif_flags(wire: dict) -> tuple[str, int]:
    """A (checked) order wire's time in force and crossbook order flags. A trigger order's tif is
    FrontendMarket for a market trigger, else Gtc; FrontendMarket (the SDK's market orders) and
    Ioc are IOC; Alo is post-only; `r` adds reduce-only."""
    trigger = wire["t"].get("trigger")
    tif = wire["t"]["limit"]["tif"] if trigger is None else "FrontendMarket" if trigger["isMarket"] else "Gtc"
    flags = FLAG_POST_ONLY if tif == "Alo" else FLAG_IOC if tif in ("Ioc", "FrontendMarket") else 0
    return tif, flags | (FLAG_REDUCE_ONLY if wire.get("r") is True else 0)


class HlGateway:
    """The facade's state (signer nonces, `approveAgent` agents, displayed leverage, gateway
    nonces being assigned) and its `/exchange` actions. One per venue; journalled through the
    venue's journal, rebuilt by its replay."""

    def __init__(self, venue, gateway_key: str | None, accept_mainnet: bool = False):
        self.venue = venue
        self.key = gateway_key or None
        self.address = address_of(gateway_key) if gateway_key else None
        self.accept_mainnet = accept_mainnet
        self.nonces: dict[str, NonceWindow] = {}  # signer -> its Hyperliquid nonces
        self.agents: dict[str, str] = {}  # approveAgent agent -> account
        self.agent_names: dict[tuple[str, str], str] = {}  # (account, name) -> agent
        self.leverage: dict[tuple[str, int], int] = {}  # (account, asset) -> displayed cross leverage
        self.chain_agents: dict[str, str | None] = {}  # signer -> the account that approved it on-chain (cache)
        self.assigned: dict[str, int] = {}  # account -> next gateway nonce to hand out

    # ------------------------------------------------------------------ journal
    def replay(self, kind: str, args) -> bool:
        if kind == "hl_nonce":
            self._take_nonce(*args)
        elif kind == "hl_agent":
            self._set_agent(*args)
        elif kind == "hl_leverage":
            account, asset, value = args
            self.leverage[(account, asset)] = value
        elif kind != "hl_action":  # evidence: read back by `venue hl verify`, not kept in memory
            return False
        return True

    def _take_nonce(self, signer: str, nonce: int) -> None:
        window = self.nonces.get(signer)
        if window is None:
            window = self.nonces[signer] = NonceWindow()
        window.take(nonce, HL_NONCE_WINDOW)

    def _set_agent(self, account: str, name: str, agent: str) -> None:
        old = self.agent_names.get((account, name))
        if old is not None:
            self.agents.pop(old, None)
        self.agent_names[(account, name)] = agent
        self.agents[agent] = account

    # ------------------------------------------------------------------ who signed
    async def account_of(self, signer: str) -> str:
        """The account an action's signer acts for: an `approveAgent` agent's account, the
        account that approved it on-chain as its crossbook agent, or the signer's own account."""
        v = self.venue
        if signer in self.agents:
            return self.agents[signer]
        if signer in v.engine.accounts and (v.engine.collateral(signer) or
                                             any(p[0] for p in v.engine.accounts[signer].positions)):
            return signer
        if signer not in self.chain_agents:
            self.chain_agents[signer] = await self._chain_account_of_agent(signer)
        account = self.chain_agents[signer]
        if account is not None:
            return account
        try:
            await v._ensure_account(signer)  # an account the venue has not seen yet
        except EngineError:
            raise ActionRefused(f"User or API Wallet {signer.lower()} does not exist.") from None
        return signer

    async def _chain_account_of_agent(self, signer: str) -> str | None:
        import asyncio

        def read():
            approved: dict[str, bool] = {}
            for ev in self.venue.ch.events.AgentSet().get_logs(from_block=0, argument_filters={"agent": signer}):
                approved[ev.args.account] = ev.args.approved
            return [a for a, on in approved.items() if on]

        try:
            accounts = await asyncio.to_thread(read)
        except Exception:  # noqa: BLE001: the node is away
            raise ActionRefused("the chain cannot be read now; try again") from None
        if len(accounts) > 1:
            raise ActionRefused(f"API Wallet {signer.lower()} is an agent of {len(accounts)} accounts on-chain: "
                                "an action cannot say which one it is for")
        return accounts[0] if accounts else None

    def recover(self, body: dict) -> str:
        action, signature, nonce = body["action"], body["signature"], body["nonce"]
        try:
            if action.get("type") == "approveAgent":
                return recover_approve_agent(action, signature)
            signer = recover_l1(action, signature, nonce, body.get("vaultAddress"), body.get("expiresAfter"), "b")
            if self.accept_mainnet and not self._known(signer):
                mainnet = recover_l1(action, signature, nonce, body.get("vaultAddress"), body.get("expiresAfter"), "a")
                if self._known(mainnet):
                    return mainnet
            return signer
        except (SignatureError, KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ActionRefused(f"invalid signature: {str(exc)[:120]}") from None

    def _known(self, signer: str) -> bool:
        return signer in self.agents or signer in self.venue.engine.accounts or bool(self.chain_agents.get(signer))

    def check_nonce(self, signer: str, nonce: int) -> None:
        now = self.venue.now_ms()
        if not now - NONCE_PAST_MS < nonce < now + NONCE_FUTURE_MS:
            raise ActionRefused(f"Invalid nonce: {nonce} is not within two days before and one day after the "
                                f"current time {now} (ms)")
        window = self.nonces.get(signer)
        refusal = window.refusal(nonce) if window is not None else None
        if refusal is not None:
            raise ActionRefused(f"Invalid nonce: {refusal[1]} by signer {signer.lower()}")

    def spend_nonce(self, signer: str, nonce: int) -> None:
        self._take_nonce(signer, nonce)
        self.venue.journal.append("hl_nonce", (signer, nonce))

    # ------------------------------------------------------------------ the request
    @staticmethod
    def parse(raw: bytes) -> dict:
        """The request body with its keys in the order they arrived (the action is hashed as
        received); a body that is not an exchange request at all raises HlRequestError."""
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise HlRequestError("INVALID_JSON", "the body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("action"), dict):
            raise HlRequestError("INVALID_REQUEST", "expected {action: {type, ...}, nonce, signature: {r, s, v}}")
        nonce = body.get("nonce")
        if nonce.__class__ is not int or not 0 <= nonce < 2**64:
            raise HlRequestError("INVALID_REQUEST", "nonce: an integer (milliseconds), below 2^64")
        if not isinstance(body.get("signature"), dict):
            raise HlRequestError("INVALID_REQUEST", "signature: {r, s, v}")
        expires = body.get("expiresAfter")
        if expires is not None and (expires.__class__ is not int or not 0 <= expires < 2**64):
            raise HlRequestError("INVALID_REQUEST", "expiresAfter: an integer (milliseconds), below 2^64")
        if not isinstance(body["action"].get("type"), str):
            raise HlRequestError("INVALID_REQUEST", "action.type: a string")
        return body

    async def exchange(self, raw: bytes) -> dict:
        """One `/exchange` request: its Hyperliquid answer (`status` ok or err)."""
        body = self.parse(raw)
        try:
            return await self._exchange(raw, body)
        except ActionRefused as exc:
            return refused(str(exc))

    async def _exchange(self, raw: bytes, body: dict) -> dict:
        v = self.venue
        action, nonce = body["action"], body["nonce"]
        kind = action["type"]
        handler = ACTIONS.get(kind)
        if handler is None:
            raise ActionRefused(f"{kind[:40]} is not supported by crossbook")
        if body.get("vaultAddress") is not None:
            raise ActionRefused("vaults are not supported by crossbook")
        check = CHECKS.get(kind)
        if check is not None:
            check(self, action)  # the action's shape, before anything is spent
        signer = self.recover(body)
        account = await self.account_of(signer)
        expires = body.get("expiresAfter")
        if expires is not None and v.now_ms() > expires:
            raise ActionRefused(f"action expired: expiresAfter {expires} is before the current time {v.now_ms()} (ms)")
        if kind == "approveAgent":
            if account != signer:
                raise ActionRefused("only the account's own key can approve an agent")
            if action.get("nonce") != nonce:
                raise ActionRefused("approveAgent: the action's nonce must equal the request's")
        if kind in GATEWAY_ACTIONS:
            await self.check_gateway(account)
        self.check_nonce(signer, nonce)
        # No await between the nonce check and its spending: a concurrent replay cannot pass both.
        self.spend_nonce(signer, nonce)
        try:
            answer = await handler(self, account, signer, action, raw)
        finally:
            await v.durable()  # the spent nonce (and what the action changed) before the answer
        return answer

    async def check_gateway(self, account: str) -> None:
        v = self.venue
        if self.key is None:
            raise ActionRefused("this venue has no gateway key (VENUE_HL_GATEWAY_KEY): it cannot take orders "
                                "through the Hyperliquid API")
        try:
            await v.check_signer(account, address_bytes(self.address))
        except EngineError:
            raise ActionRefused(f"account {account} has not approved the gateway {self.address} as its agent "
                                f"on the ClearingHouse: `venue hl approve` (or setAgent({self.address}, true)) "
                                "once, then retry") from None

    # ------------------------------------------------------------------ orders
    def next_nonce(self, account: str) -> int:
        nonce = max(self.assigned.get(account, GATEWAY_NONCE_BASE), self.venue.gateway_next.get(account,
                                                                                                GATEWAY_NONCE_BASE))
        self.assigned[account] = nonce + 1
        return nonce

    def translate(self, account: str, wire: dict) -> tuple[SignedOrder, str, str | None, tuple | None]:
        """A Hyperliquid order wire ({a, b, p, s, r, t, c}) as (crossbook Order signed by
        nobody yet, time in force, client id, trigger: (price, tpsl, is market) or None). Raises
        OrderRejected with Hyperliquid's text."""
        v = self.venue
        if not isinstance(wire, dict):
            raise OrderRejected("INVALID", "Order has invalid format.")
        asset = wire.get("a")
        if asset.__class__ is not int or not 0 <= asset < len(v.markets):
            raise OrderRejected("INVALID", "spot/builder assets are not supported" if isinstance(asset, int)
                                and asset >= 10_000 else f"Order has invalid asset {str(asset)[:20]}.")
        is_buy = wire.get("b")
        if is_buy.__class__ is not bool:
            raise OrderRejected("INVALID", "Order has invalid side.")
        price = parse_decimal(wire.get("p"), 6, "price")
        size = parse_decimal(wire.get("s"), 8, "size")
        if size == 0:
            raise OrderRejected("INVALID", "Order has zero size.")
        kind = wire.get("t")
        if not isinstance(kind, dict) or len(kind) != 1:
            raise OrderRejected("INVALID", "Order has invalid type.")
        trigger = None
        if "trigger" in kind:
            spec = kind["trigger"]
            if not isinstance(spec, dict) or spec.get("tpsl") not in ("tp", "sl") or spec.get("isMarket") not in (
                    True, False):
                raise OrderRejected("INVALID", "Order has invalid trigger: {isMarket, triggerPx, tpsl: tp|sl}.")
            trigger_price = parse_decimal(spec.get("triggerPx"), 6, "trigger price")
            if trigger_price == 0:
                raise OrderRejected("INVALID", "Order has invalid trigger price.")
            trigger = (trigger_price, spec["tpsl"], spec["isMarket"])
        elif not isinstance(kind.get("limit"), dict) or kind["limit"].get("tif") not in TIFS:
            raise OrderRejected("INVALID", "Order has invalid tif.")
        if wire.get("r") not in (True, False, None):
            raise OrderRejected("INVALID", "Order has invalid reduceOnly.")
        tif, flags = wire_tif_flags(wire)
        cloid = wire.get("c")
        if cloid is not None and not (isinstance(cloid, str) and CLOID.match(cloid.lower())):
            raise OrderRejected("INVALID", "Invalid cloid: 0x and 32 hex digits.")
        if flags & FLAG_IOC and trigger is None:  # a market trigger is capped when it fires
            price = self.bounded(asset, is_buy, price)
        order = SignedOrder(account, asset, is_buy, price, size, flags, 0, 0)
        return order, "Alo" if tif == "Alo" else "Ioc" if flags & FLAG_IOC else "Gtc", \
            cloid.lower() if cloid is not None else None, trigger

    def bounded(self, market: int, is_buy: bool, price: int) -> int:
        """An IOC price pulled in to the edge of crossbook's oracle band (the SDK prices market
        orders at mid ± 5 %, which can land just outside it): it can only fill at a better price
        than the user signed."""
        p = self.venue.markets[market]
        oracle = int(self.venue.engine.markets[market].oracle_price)
        if oracle <= 0:
            return price
        if is_buy:
            edge = oracle * (BPS + p.band_bps) // BPS // p.tick_size * p.tick_size
            return min(price, edge)
        lowest = -(-oracle * (BPS - p.band_bps) // BPS)  # ceilings: the lowest price inside the band
        return max(price, -(-lowest // p.tick_size) * p.tick_size)

    def sign(self, order: SignedOrder) -> tuple[SignedOrder, bytes]:
        order = SignedOrder(order.account, order.market, order.is_buy, order.price, order.size, order.flags,
                            order.expiry, self.next_nonce(order.account))
        return order, sign_order(order, self.venue.domain_separator, self.key)

    def status(self, account: str, market: int, result, cloid: str | None) -> dict:
        """A venue answer as Hyperliquid's per-order status."""
        if isinstance(result, EngineError):
            return {"error": self.error_text(result, market)}
        ack = result
        extra = {"cloid": cloid} if cloid is not None else {}
        if ack.status == "resting" or (ack.status == "modified"):
            return {"resting": {"oid": ack.order_id, **extra}}
        if ack.filled:
            total, notional = 0, 0
            seqs = self.venue.fills_by_account.get(account, ())
            for seq in reversed(seqs):
                rec = self.venue.fills.get(seq)
                if rec is None:
                    continue
                if ack.order_id in (rec.fill.taker.id, rec.fill.maker.id):
                    total += rec.fill.size
                    notional += rec.fill.size * rec.fill.price
                if total >= ack.filled:
                    break
            avg = notional // total if total else 0
            return {"filled": {"totalSz": sz(ack.filled), "avgPx": px(avg), "oid": ack.order_id, **extra}}
        if ack.cancel_reason == "ioc":
            return {"error": NO_MATCH.format(a=market)}
        if ack.status == "self_trade" or ack.cancel_reason == "self_trade":
            return {"error": f"Order would have traded against the account's own order (self-trade). asset={market}"}
        return {"error": f"Order was {ack.status}. asset={market}"}

    def error_text(self, exc: EngineError, market: int) -> str:
        if exc.code == "INVALID":
            return exc.msg
        text = HL_ERRORS.get(exc.code)
        if text is None:
            return f"{exc.msg} ({exc.code})"
        bbo = ""
        if exc.code == "POST_ONLY_WOULD_CROSS" and 0 <= market < len(self.venue.markets):
            bids, asks = self.venue.engine.l2(market, 1)
            bbo = f"{px(bids[0][0]) if bids else '0'}@{px(asks[0][0]) if asks else '0'}"
        band = self.venue.markets[market].band_bps / 100 if 0 <= market < len(self.venue.markets) else 5
        return text.format(a=market, bbo=bbo, band=f"{band:g}")

    def produced(self, k: int, order: SignedOrder, result) -> tuple:
        """What the evidence says of the crossbook order made from the action's order `k`:
        (k, order id or None if refused, gateway nonce, limit price, Order digest)."""
        return (k, None if isinstance(result, EngineError) else result.order_id, order.nonce, order.price,
                order_digest(order, self.venue.domain_separator))

    def evidence(self, raw: bytes, signer: str, account: str, produced: list) -> None:
        """The signed request as received, who signed it, and the crossbook orders it produced
        (`produced`): what `venue hl verify` re-checks."""
        self.venue.journal.append("hl_action", (raw, signer, account, produced))

    async def do_order(self, account: str, signer: str, action: dict, raw: bytes) -> dict:
        """Orders (one `place_many` run) and trigger orders. Groupings: `positionTpsl` (every
        order a trigger attached to the position), `normalTpsl` (the first order the entry, the
        triggers after it waiting for its fill, then attached to the position)."""
        wires, grouping = action["orders"], action.get("grouping", "na")
        statuses: list = [None] * len(wires)
        items, where, cloids, triggers = [], [], [], []
        for k, wire in enumerate(wires):
            try:
                order, tif, cloid, trigger = self.translate(account, wire)
                if grouping == "positionTpsl" and trigger is None or \
                        grouping == "normalTpsl" and (k == 0) != (trigger is None):
                    raise OrderRejected("INVALID", "Order has invalid grouping: an entry order, then tp/sl triggers.")
            except EngineError as exc:
                statuses[k] = {"error": self.error_text(exc, wire.get("a", -1) if isinstance(wire, dict) else -1)}
                continue
            order, signature = self.sign(order)
            if trigger is not None:
                triggers.append((k, order, signature, tif, cloid, trigger))
                continue
            items.append((order, signature, tif, cloid, 0))
            where.append(k)
            cloids.append(cloid)
        results = await self.venue.place_many(items) if items else []
        produced = []
        for k, (order, *_), result, cloid in zip(where, items, results, cloids):
            statuses[k] = self.status(account, order.market, result, cloid)
            produced.append(self.produced(k, order, result))
        parent = None
        if grouping == "normalTpsl" and triggers:
            entry = results[0] if where == [0] else None
            if entry is None or isinstance(entry, EngineError):
                for k, *_ in triggers:
                    statuses[k] = {"error": "Order has invalid grouping: its entry order was refused."}
                triggers = []
            elif entry.status in ("resting", "modified"):
                parent = entry.order_id  # armed once the entry fills
        for k, order, signature, tif, cloid, (trigger_price, tpsl, is_market) in triggers:
            try:
                t = await self.venue.place_trigger(order, signature, tif, cloid, trigger_price, tpsl, is_market,
                                                   attached=grouping != "na", parent=parent)
                statuses[k] = {"resting": {"oid": t.child if t.status == "triggered" else t.id,
                                           **({"cloid": cloid} if cloid is not None else {})}}
                produced.append((k, t.id, order.nonce, order.price, order_digest(order, self.venue.domain_separator)))
            except EngineError as exc:
                statuses[k] = {"error": self.error_text(exc, order.market)}
                produced.append((k, None, order.nonce, order.price, order_digest(order, self.venue.domain_separator)))
        self.evidence(raw, signer, account, produced)
        return ok({"type": "order", "data": {"statuses": statuses}})

    def resolve_oid(self, account: str, oid) -> int | None:
        if isinstance(oid, str):
            return self.venue.client_orders.get((account, oid.lower()))
        return oid if oid.__class__ is int else None

    async def do_modify(self, account: str, signer: str, action: dict, raw: bytes) -> dict:
        modifies = action["modifies"] if action["type"] == "batchModify" else [action]
        statuses: list = [None] * len(modifies)
        items, where = [], []
        for k, m in enumerate(modifies):
            wire = m.get("order") if isinstance(m, dict) else None
            market = wire.get("a", -1) if isinstance(wire, dict) else -1
            try:
                order_id = self.resolve_oid(account, m.get("oid") if isinstance(m, dict) else None)
                old = self.venue.engine.orders.get(order_id) if order_id is not None else None
                if old is None or old.account != account:
                    raise OrderRejected("INVALID", NEVER_PLACED.format(a=market))
                order, tif, cloid, trigger = self.translate(account, wire)
                if trigger is not None:
                    raise OrderRejected("INVALID", "a trigger order cannot replace an order: cancel and place it")
            except EngineError as exc:
                statuses[k] = {"error": self.error_text(exc, market)}
                continue
            order, signature = self.sign(order)
            items.append((order_id, order, signature, tif, cloid))
            where.append((k, cloid if cloid is not None else old.client_id))
        results = await self.venue.modify_many(items) if items else []
        produced = []
        for (k, cloid), (_, order, *_), result in zip(where, items, results):
            statuses[k] = self.status(account, order.market, result, cloid)
            produced.append(self.produced(k, order, result))
        self.evidence(raw, signer, account, produced)
        return ok({"type": "order", "data": {"statuses": statuses}})

    async def do_cancel(self, account: str, signer: str, action: dict, raw: bytes) -> dict:
        v = self.venue
        by_cloid = action["type"] == "cancelByCloid"
        statuses = []
        for c in action["cancels"]:
            asset = c.get("asset" if by_cloid else "a") if isinstance(c, dict) else None
            ref = c.get("cloid" if by_cloid else "o") if isinstance(c, dict) else None
            order_id = self.resolve_oid(account, ref) if (isinstance(ref, str)) == by_cloid else None
            if by_cloid and isinstance(ref, str) and (t := v.triggers.by_client_id(account, ref.lower())) is not None:
                order_id = t.id
            order = v.engine.orders.get(order_id) if order_id is not None else None
            if order is None and order_id is not None and order_id in v.triggers.waiting:
                order = v.triggers.waiting[order_id].order
            if order is None or order.account != account or order.market != asset:
                statuses.append({"error": NEVER_PLACED.format(a=asset)})
                continue
            v.cancel(account, order_id, None)
            statuses.append("success")
        self.evidence(raw, signer, account, [])
        return ok({"type": "cancel", "data": {"statuses": statuses}})

    async def do_schedule_cancel(self, account: str, signer: str, action: dict, raw: bytes) -> dict:
        v = self.venue
        at = action.get("time")
        if at is None:
            at = 0
        elif at.__class__ is not int or at < v.now_ms() + MIN_SCHEDULE_AHEAD_MS:
            raise ActionRefused("Scheduled cancel time too early, must be at least 5 seconds after current time")
        try:
            v.engine.schedule_cancel(v.now_ms(), account, at)
        except EngineError as exc:
            raise ActionRefused(exc.msg) from None
        self.evidence(raw, signer, account, [])
        return ok({"type": "default"})

    async def do_update_leverage(self, account: str, signer: str, action: dict, raw: bytes) -> dict:
        asset, cross, value = action.get("asset"), action.get("isCross"), action.get("leverage")
        if cross is not True:
            raise ActionRefused("isolated margin is not supported by crossbook: every position is cross margined")
        p = self.venue.markets[asset]
        top = BPS // p.im_bps_1
        if value.__class__ is not int or not 1 <= value <= top:
            raise ActionRefused(f"Invalid leverage value: 1 to {top} for {coin(p.symbol)}")
        self.leverage[(account, asset)] = value
        self.venue.journal.append("hl_leverage", (account, asset, value))
        return ok({"type": "default"})

    async def do_approve_agent(self, account: str, signer: str, action: dict, raw: bytes) -> dict:
        agent = checksum_address(action["agentAddress"])
        name = action.get("agentName") or ""
        holder = self.agents.get(agent)
        if holder is not None and holder != account:
            raise ActionRefused(f"API Wallet {agent.lower()} is already an agent of another account")
        if agent in self.venue.engine.accounts or agent == self.address:
            raise ActionRefused(f"{agent.lower()} is an account, not a fresh agent key")
        self._set_agent(account, name, agent)
        self.venue.journal.append("hl_agent", (account, name, agent))
        self.evidence(raw, signer, account, [])
        return ok({"type": "default"})

    async def do_noop(self, account: str, signer: str, action: dict, raw: bytes) -> dict:
        return ok({"type": "default"})

    # ------------------------------------------------------------------ shapes
    def check_order(self, action: dict) -> None:
        orders = action.get("orders")
        if not isinstance(orders, list) or not 0 < len(orders) <= 1000:
            raise ActionRefused("order: orders must be a list of 1 to 1,000 orders")
        if action.get("grouping", "na") not in ("na", "normalTpsl", "positionTpsl"):
            raise ActionRefused(f"grouping {str(action.get('grouping'))[:20]}: one of na, normalTpsl, positionTpsl")

    def check_modify(self, action: dict) -> None:
        if action["type"] == "batchModify":
            mods = action.get("modifies")
            if not isinstance(mods, list) or not 0 < len(mods) <= 1000:
                raise ActionRefused("batchModify: modifies must be a list of 1 to 1,000 modifications")
        elif "oid" not in action or "order" not in action:
            raise ActionRefused("modify: oid and order are required")

    def check_cancel(self, action: dict) -> None:
        cancels = action.get("cancels")
        if not isinstance(cancels, list) or not 0 < len(cancels) <= 1000:
            raise ActionRefused(f"{action['type']}: cancels must be a list of 1 to 1,000")

    def check_leverage(self, action: dict) -> None:
        asset = action.get("asset")
        if asset.__class__ is not int or not 0 <= asset < len(self.venue.markets):
            raise ActionRefused(f"updateLeverage: unknown asset {str(asset)[:20]}")

    def check_approve(self, action: dict) -> None:
        chain = action.get("hyperliquidChain")
        if chain != "Testnet" and not (self.accept_mainnet and chain == "Mainnet"):
            raise ActionRefused("approveAgent: hyperliquidChain must be Testnet (a local venue is a testnet)")
        try:
            checksum_address(str(action.get("agentAddress")))
            int(str(action.get("signatureChainId")), 16)
        except ValueError:
            raise ActionRefused("approveAgent: agentAddress (an address) and signatureChainId (hex) are required") \
                from None
        name = action.get("agentName")
        if name is not None and not (isinstance(name, str) and len(name) <= 64):
            raise ActionRefused("approveAgent: agentName is a string of at most 64 characters")


ACTIONS = {"order": HlGateway.do_order, "cancel": HlGateway.do_cancel, "cancelByCloid": HlGateway.do_cancel,
           "modify": HlGateway.do_modify, "batchModify": HlGateway.do_modify,
           "scheduleCancel": HlGateway.do_schedule_cancel, "updateLeverage": HlGateway.do_update_leverage,
           "approveAgent": HlGateway.do_approve_agent, "noop": HlGateway.do_noop}
CHECKS = {"order": HlGateway.check_order, "modify": HlGateway.check_modify, "batchModify": HlGateway.check_modify,
          "cancel": HlGateway.check_cancel, "cancelByCloid": HlGateway.check_cancel,
          "updateLeverage": HlGateway.check_leverage, "approveAgent": HlGateway.check_approve}
GATEWAY_ACTIONS = frozenset({"order", "modify", "batchModify"})
