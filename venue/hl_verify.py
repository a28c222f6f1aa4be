"""`venue hl verify`: re-checks, from the journal alone, that every fill of an order the
Hyperliquid gateway signed is backed by a request its account signed (venue/hl_exchange.py).

For every `hl_action` entry (the raw request as received): the Hyperliquid signature recovers
to the recorded signer; the signer is the account, an agent the account approved through
`approveAgent` earlier in the journal, or (not checkable offline, reported as such) an agent
the account approved on-chain; each crossbook order made from it has the market, side, size
and flags of the signed order, a limit price no worse than the signed one, and the Order digest
the gateway signed. Then the journal is replayed into a fresh engine to learn each order's
nonce: every fill whose order carries a gateway nonce (from 2^63) must trace to such evidence,
at a price within the order's limit and a size within its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .domain import FLAG_IOC
from .engine import OP_PLACE, Engine, Limits
from .hl_exchange import GATEWAY_NONCE_BASE, HlGateway, parse_decimal, wire_tif_flags
from .hl_signing import recover_approve_agent, recover_l1
from .journal import Journal, replay
from .signing import Order, order_digest


@dataclass
class Report:
    actions: int = 0
    orders: int = 0  # crossbook orders the gateway made
    fills_checked: int = 0  # fills with at least one gateway side
    chain_agent_actions: int = 0  # signed by an on-chain agent: the account link is the chain's to show
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def wire_terms(wire: dict) -> tuple[int, bool, int, int, int, str]:
    """(market, is buy, size, flags, signed price, tif) of a Hyperliquid order wire."""
    tif, flags = wire_tif_flags(wire)
    return wire["a"], wire["b"], parse_decimal(wire["s"], 8, "size"), flags, parse_decimal(wire["p"], 6, "price"), tif


def check_action(report: Report, seq: int, args, agents: dict, domain_separator: bytes, accept_mainnet: bool,
                 orders: dict) -> None:
    raw, signer, account, produced = args
    report.actions += 1
    body = json.loads(raw)
    action = body["action"]
    if action.get("type") == "approveAgent":
        recovered = recover_approve_agent(action, body["signature"])
    else:
        recovered = recover_l1(action, body["signature"], body["nonce"], body.get("vaultAddress"),
                               body.get("expiresAfter"), "b")
        if recovered != signer and accept_mainnet:
            recovered = recover_l1(action, body["signature"], body["nonce"], body.get("vaultAddress"),
                                   body.get("expiresAfter"), "a")
    if recovered != signer:
        report.problems.append(f"entry {seq}: the request's signature recovers {recovered}, not the recorded "
                               f"signer {signer}")
        return
    if signer != account and agents.get(signer) != account:
        report.chain_agent_actions += 1
    wires = action.get("orders") if action.get("type") == "order" else \
        [m.get("order") for m in action.get("modifies", [action])] if action.get("type") in ("batchModify", "modify") \
        else []
    for k, oid, nonce, price, digest in produced:
        report.orders += 1
        market, is_buy, size, flags, signed_price, _ = wire_terms(wires[k])
        worse = price > signed_price if is_buy else price < signed_price
        if worse or ((not flags & FLAG_IOC or "trigger" in wires[k]["t"]) and price != signed_price):
            report.problems.append(f"entry {seq}: order {k} was made at {price}, the signed price is {signed_price}")
        order = Order(account, market, is_buy, price, size, flags, 0, nonce)
        if order_digest(order, domain_separator) != digest:
            report.problems.append(f"entry {seq}: order {k}'s crossbook terms do not match the signed request")
        if oid is not None:
            orders[oid] = order


def verify(journal_path: str, markets, domain_separator: bytes, limits: Limits, accept_mainnet: bool = False) -> Report:
    """Checks a venue journal (see the module doc). `markets` and `limits` as the venue that
    wrote it had them (its replay needs them)."""
    journal = Journal(journal_path)
    report = Report()
    registry = HlGateway(None, None)  # approveAgent agents as of each entry
    evidence: dict[int, Order] = {}  # order id -> the crossbook order the gateway made
    nonces: dict[int, int] = {}  # order id -> nonce, from the replay
    fired: dict[int, int] = {}  # order id -> the trigger it came from

    def on_entry(kind, args) -> bool:
        return kind in ("nonces", "action") or kind.startswith("hl_")

    def on_result(kind, args, result) -> None:
        if kind == "place" and result is not None:
            nonces[result.order_id] = args[12]
        elif kind == "bulk" and result is not None:
            cmds, out, meta = result
            for k, (row, r) in enumerate(zip(cmds.tolist(), out.tolist())):
                if row[0] == OP_PLACE and r[0] == 0 and meta is not None and meta[k] is not None:
                    nonces[r[1]] = meta[k][1]

    try:
        for seq, kind, args in journal.commands():
            if kind == "hl_agent":
                registry.replay(kind, args)
            elif kind == "trigger_end" and args[2] is not None:  # a trigger became order args[2]
                fired[args[2]] = args[0]
            elif kind == "hl_action":
                try:
                    check_action(report, seq, args, registry.agents, domain_separator, accept_mainnet, evidence)
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    report.problems.append(f"entry {seq}: the recorded request cannot be read back: {exc}")
        replay(Engine(markets, limits), journal, on_entry=on_entry, on_result=on_result)
        for child, trigger_id in fired.items():  # a fired gateway trigger's order is backed by its request
            if trigger_id in evidence:
                evidence[child] = evidence[trigger_id]
        for (_, _, market, price, size, taker_is_buy, maker_order, taker_order, maker, taker, _) in journal.fills():
            gateway_side = False
            for oid, account, is_buy in ((maker_order, maker, not taker_is_buy), (taker_order, taker, taker_is_buy)):
                if nonces.get(oid, 0) < GATEWAY_NONCE_BASE:
                    continue
                gateway_side = True
                order = evidence.get(oid)
                if order is None:
                    report.problems.append(f"order {oid} of {account} carries a gateway nonce and has no signed "
                                           "request behind it")
                    continue
                beyond = price > order.price if is_buy else price < order.price
                if (order.account, order.market, order.is_buy) != (account, market, is_buy) or beyond \
                        or size > order.size:
                    report.problems.append(f"a fill of order {oid} ({size} at {price}) is outside its signed terms")
            report.fills_checked += gateway_side
    finally:
        journal.db.close()
    return report
