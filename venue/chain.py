"""Contract bindings: compiled artifacts, the packed batch encoding the ClearingHouse decodes,
and a web3 deployer shared by the devnet, the tests and the benchmarks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .domain import (
    DEVNET_MARKETS, DEVNET_RISK, ETH_ORACLE_ID, WETH_HAIRCUT_BPS, WETH_MAX_HAIRCUT_BPS,
    WETH_MIN_HAIRCUT_BPS, MarketParams, RiskParams,
)
from .signing import Order, address_bytes, compact_signature, keccak

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = REPO_ROOT / ".build" / "__local__.json"

MAKER_BYTES, TAKER_BYTES = 96, 115  # see OrderLib: a maker order names its account by table index
FILL_BYTES = 16 + MAKER_BYTES + TAKER_BYTES

# Roles in ClearingHouseBase.sol.
ROLE_OPERATOR, ROLE_FUNDING_KEEPER, ROLE_RISK_ADMIN, ROLE_RISK_KEEPER, ROLE_GUARDIAN = 1, 2, 3, 4, 5
# Market status in ClearingHouseBase.sol.
MARKET_ACTIVE, MARKET_HALTED, MARKET_REDUCE_ONLY = 0, 1, 2


@cache
def artifact(name: str) -> dict:
    """ABI and creation bytecode of a contract compiled by `ape compile`. The ClearingHouse
    answers calls for its modules too (it routes them by selector), so its ABI is the whole
    surface, IClearingHouse's, plus its constructor."""
    if not MANIFEST.exists():
        raise FileNotFoundError(f"{MANIFEST} missing: run `make compile` first")
    types = json.loads(MANIFEST.read_text())["contractTypes"]
    contract = types[name]
    abi = contract["abi"]
    if name == "ClearingHouse":
        abi = [e for e in abi if e.get("type") == "constructor"] + types["IClearingHouse"]["abi"]
    return {"abi": abi, "bytecode": contract["deploymentBytecode"]["bytecode"]}


def explain_revert(abi: list, exc: Exception) -> str:
    """A contract's custom error as `Name(arg=value, ...)` from the revert data web3 raised with
    (ContractCustomError carries it hex-encoded), or the exception's own text if it names none."""
    from eth_abi import decode
    from eth_utils import to_checksum_address

    data = getattr(exc, "data", None) or (exc.args[0] if exc.args and isinstance(exc.args[0], str) else "")
    data = data if isinstance(data, str) else ""
    raw = bytes.fromhex(data[2:]) if data.startswith("0x") and len(data) >= 10 else b""
    for e in abi:
        if e.get("type") != "error" or not raw:
            continue
        types = [i["type"] for i in e["inputs"]]
        if keccak(f"{e['name']}({','.join(types)})".encode())[:4] == raw[:4]:
            values = [to_checksum_address(v) if t == "address" else v for t, v in zip(types, decode(types, raw[4:]))]
            return f"{e['name']}(" + ", ".join(f"{i['name']}={v}" for i, v in zip(e["inputs"], values)) + ")"
    return str(exc)


def pack_order(order: Order, signature: bytes) -> bytes:
    """The 115-byte packed order of OrderLib: account, market, side|flags, price, size, expiry,
    nonce, r, vs (compact EIP-2098 signature). As a maker order the account gives way to a
    one-byte index into the batch's maker table."""
    signature = compact_signature(signature)  # 65-byte (r, s, v) signatures settle too
    side_flags = (0x80 if order.is_buy else 0) | order.flags
    return (
        address_bytes(order.account) + order.market.to_bytes(2, "big") + bytes([side_flags])
        + order.price.to_bytes(8, "big") + order.size.to_bytes(8, "big")
        + order.expiry.to_bytes(4, "big") + order.nonce.to_bytes(8, "big") + signature
    )


@dataclass(frozen=True, slots=True)
class Fill:
    """A match to settle: `size` of the maker's order against the taker's, at the maker's `price`."""

    maker: Order
    maker_signature: bytes
    taker: Order
    taker_signature: bytes
    size: int
    price: int

    def pack(self, maker_index: int) -> bytes:
        return (
            self.size.to_bytes(8, "big") + self.price.to_bytes(8, "big") + bytes([maker_index])
            + pack_order(self.maker, self.maker_signature)[20:] + pack_order(self.taker, self.taker_signature)
        )


def pack_fills(fills) -> bytes:
    """Batch calldata for `settle`: the table of maker addresses (in order of first appearance),
    then the fills, each maker order naming its maker by index (layout in OrderLib)."""
    makers: dict[bytes, int] = {}
    indices = [makers.setdefault(address_bytes(f.maker.account), len(makers)) for f in fills]
    if not 0 < len(makers) < 256:
        raise ValueError(f"a batch names 1 to 255 makers, not {len(makers)}")
    return bytes([len(makers)]) + b"".join(makers) + b"".join(f.pack(i) for f, i in zip(fills, indices))


def fill_parties(data: bytes):
    """(account, market) of the maker and the taker order of every fill in packed batch calldata
    (see OrderLib's layout), in order."""
    from web3 import Web3

    head = 1 + 20 * data[0]
    table = [data[1 + 20 * i:21 + 20 * i] for i in range(data[0])]
    for start in range(head, len(data) - FILL_BYTES + 1, FILL_BYTES):
        maker, taker = start + 16, start + 16 + MAKER_BYTES
        yield Web3.to_checksum_address(table[data[maker]]), int.from_bytes(data[maker + 1:maker + 3], "big")
        yield Web3.to_checksum_address(data[taker:taker + 20]), int.from_bytes(data[taker + 20:taker + 22], "big")


def fill_accounts(data: bytes) -> set[str]:
    """Maker and taker accounts named in packed batch calldata."""
    return {account for account, _ in fill_parties(data)}


# Storage slots in ClearingHouseBase's layout (solc's; tests/contracts/test_settlement.py reads them
# back with eth_getStorageAt): the batch's own state, then the mappings settlement reads. The
# batch index shares slot 4 with `paused`, the fee pool slot 6 with the funding pool.
HAS_ROLE_SLOT, RISK_PARAMS_SLOT, NEXT_BATCH_SLOT, MARKET_COUNT_SLOT, FEE_POOL_SLOT = 1, 2, 4, 5, 6
MARKETS_SLOT, ACCOUNTS_SLOT, POSITIONS_SLOT = 8, 9, 10
MARKET_SLOTS = 4  # a Market struct spans four slots


def mapping_slot(key: int, slot: int) -> int:
    """Storage slot of `mapping[key]` for a mapping declared at `slot` (keccak256(key . slot))."""
    return int.from_bytes(keccak(key.to_bytes(32, "big") + slot.to_bytes(32, "big")), "big")


def settle_access_list(clearing_house: str, data: bytes, operator: str, *, only_if_cheaper: bool = True) -> list[dict]:
    """The EIP-2930 access list for `settle(index, data)` sent by `operator`: the slots a batch
    reads first, each party's packed account slot and its position slot in the fill's market,
    plus the batch's own (the operator's role, risk parameters, batch index, market count, fee
    pool, each traded market's four slots). Declared up front, such a slot costs 1,900 + 100 gas
    instead of a cold 2,100, but the list's address entry costs 2,400 (the contract is warm
    anyway): empty unless more than 24 slots make it pay (`make bench-gas`)."""
    keys = dict.fromkeys([mapping_slot(int(operator, 16), mapping_slot(ROLE_OPERATOR, HAS_ROLE_SLOT)),
                          RISK_PARAMS_SLOT, NEXT_BATCH_SLOT, MARKET_COUNT_SLOT, FEE_POOL_SLOT])
    for account, market in fill_parties(data):
        owner = int(account, 16)
        keys.setdefault(mapping_slot(owner, ACCOUNTS_SLOT), None)
        keys.setdefault(mapping_slot(market, mapping_slot(owner, POSITIONS_SLOT)), None)
        base = mapping_slot(market, MARKETS_SLOT)
        for k in range(MARKET_SLOTS):
            keys.setdefault(base + k, None)
    if only_if_cheaper and len(keys) * (2_100 - 1_900 - 100) <= 2_400:
        return []
    return [{"address": clearing_house, "storageKeys": [f"0x{k:064x}" for k in keys]}]


_VIEW_SELECTORS = {name: keccak(sig.encode())[:4] for name, sig in (
    ("balances", "balances(address)"), ("health", "health(address)"), ("position", "position(address,uint256)"),
    ("market", "market(uint256)"), ("insuranceFund", "insuranceFund()"))}


class AccountReader:
    """Accounts as the ClearingHouse's views report them, many in one JSON-RPC batch of raw
    `eth_call`s decoded here (web3's contract-call machinery costs milliseconds a call; this
    costs microseconds): for each, `balances` (quote, WETH wei, market mask), `health` (equity,
    initial, maintenance margin) and every market's `position` (size, open notional, entry
    price, unrealized PnL, funding owed). Used by the venue's account views, the liquidator's
    mirror and the scenario lab."""

    def __init__(self, rpc_url: str, clearing_house: str, n_markets: int, timeout_s: float = 10.0):
        import httpx

        self.url, self.to, self.n_markets = rpc_url, clearing_house, n_markets
        self.http = httpx.Client(timeout=timeout_s)

    def read(self, addresses: list[str]) -> dict[str, tuple]:
        per = 2 + self.n_markets
        calls = []
        for address in addresses:
            word = bytes(12) + address_bytes(address)
            calls += [_VIEW_SELECTORS["balances"] + word, _VIEW_SELECTORS["health"] + word]
            calls += [_VIEW_SELECTORS["position"] + word + m.to_bytes(32, "big") for m in range(self.n_markets)]
        if not calls:
            return {}
        words = self.call_many(calls)
        return {a: (words[j * per], words[j * per + 1], {m: words[j * per + 2 + m] for m in range(self.n_markets)})
                for j, a in enumerate(addresses)}

    def markets(self) -> tuple[list[list[int]], int]:
        """Each market's `market(id)` view as its words (static fields: `market_field` indexes
        them), and the insurance fund, in one batch."""
        words = self.call_many([_VIEW_SELECTORS["market"] + m.to_bytes(32, "big") for m in range(self.n_markets)]
                               + [_VIEW_SELECTORS["insuranceFund"]])
        return words[:-1], words[-1][0]

    def call_many(self, calls: list[bytes]) -> list[list[int]]:
        """Raw `eth_call`s to the ClearingHouse (selector and arguments) in one JSON-RPC batch;
        each answer as its signed 32-byte words."""
        response = self.http.post(self.url, json=[
            {"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": [{"to": self.to, "data": "0x" + c.hex()}, "latest"]}
            for i, c in enumerate(calls)])
        response.raise_for_status()
        results = {r["id"]: r for r in response.json()}
        words = []
        for i in range(len(calls)):
            if "result" not in results.get(i, {}):
                raise RuntimeError(f"eth_call failed: {results.get(i, {}).get('error')}")
            raw = bytes.fromhex(results[i]["result"][2:])
            words.append([int.from_bytes(raw[k:k + 32], "big", signed=True) for k in range(0, len(raw), 32)])
        return words

    def close(self) -> None:
        self.http.close()


SETTLE_SELECTOR = keccak(b"settle(uint256,bytes)")[:4]
# The gas limit of a settle transaction: a bound, not an estimate (an estimate executes the whole
# batch on the node first). Per fill, 60,000 (`bench-gas`: 48,347 for takers' first trades, the
# costliest single-market fill) plus 30,000 per listed market for the two parties' margin walks
# over positions and market views read cold (tests/contracts/test_settlement.py measures a fill
# between two accounts holding every market and WETH against it).
SETTLE_GAS_BASE, SETTLE_GAS_PER_FILL, SETTLE_GAS_PER_MARKET = 200_000, 60_000, 30_000


def settle_gas_bound(fills: int, markets: int) -> int:
    return SETTLE_GAS_BASE + fills * (SETTLE_GAS_PER_FILL + SETTLE_GAS_PER_MARKET * markets)


def settle_calldata(index: int, data: bytes) -> bytes:
    """ABI-encoded `settle(index, data)`, as web3 would build it (tested equal)."""
    padded = data + bytes(-len(data) % 32)
    return (SETTLE_SELECTOR + index.to_bytes(32, "big") + (64).to_bytes(32, "big") + len(data).to_bytes(32, "big")
            + padded)


@dataclass
class Deployment:
    """Addresses of a crossbook deployment."""

    chain_id: int
    clearing_house: str
    oracle: str
    usdc: str
    weth: str
    owner: str
    markets: list[str] = field(default_factory=list)
    guardian: str | None = None
    modules: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "chainId": self.chain_id, "ClearingHouse": self.clearing_house, "Oracle": self.oracle,
            "USDC": self.usdc, "WETH": self.weth, "owner": self.owner, "markets": self.markets,
            "guardian": self.guardian, "modules": self.modules,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Deployment":
        return cls(data["chainId"], data["ClearingHouse"], data["Oracle"], data["USDC"], data["WETH"],
                   data["owner"], list(data.get("markets", [])), data.get("guardian"), dict(data.get("modules", {})))


# The ClearingHouse's modules, in its constructor's order.
MODULES = ("CollateralModule", "LiquidationModule", "AdminModule")


def contract(w3, name: str, address: str):
    return w3.eth.contract(address=address, abi=artifact(name)["abi"])


def read_oracle_prices(oracle, markets, weth_oracle_id: int) -> dict[int, int]:
    """Oracle id -> latest price for every oracle a deployment uses (its markets' and WETH's);
    an oracle with no price pushed yet is left out."""
    prices = {}
    for oracle_id in {p.oracle_id for p in markets} | {weth_oracle_id}:
        try:
            prices[oracle_id] = oracle.functions.getPrice(oracle_id).call()[0]
        except Exception:  # no price pushed yet
            continue
    return prices


def connect(url: str, timeout_s: float = 30.0, **kw):
    """web3 over HTTP with the chain id cached: web3 asks the node for it before every contract
    call and transaction (a round trip each: 4 s of a 200-block lab run), and it never changes."""
    from web3 import HTTPProvider, Web3

    return Web3(HTTPProvider(url, request_kwargs={"timeout": timeout_s}, cache_allowed_requests=True,
                             cacheable_requests={"eth_chainId", "net_version", "web3_clientVersion"}, **kw))


class EventReader:
    """Every event of some contracts over a block range in one `eth_getLogs`, decoded, grouped
    by event name (each name's events in chain order). A poll that asked per event made one
    round trip per name (the venue sixteen, every 100 ms); this makes one."""

    def __init__(self, w3, *contracts):
        self.w3 = w3
        self.addresses = [c.address for c in contracts]
        self.events = {}
        for c in contracts:
            for abi in c.abi:
                if abi.get("type") == "event":
                    event = getattr(c.events, abi["name"])
                    self.events[(c.address.lower(), bytes.fromhex(event.topic.removeprefix("0x")))] = event()

    def read(self, frm: int, to: int) -> dict[str, list]:
        out: dict[str, list] = {}
        for raw in self.w3.eth.get_logs({"fromBlock": frm, "toBlock": to, "address": self.addresses}):
            if not raw["topics"]:
                continue
            event = self.events.get((raw["address"].lower(), bytes(raw["topics"][0])))
            if event is not None:
                out.setdefault(event.event_name, []).append(event.process_log(raw))
        return out


def market_fields(ch) -> list[str]:
    """The names of the fields of the ClearingHouse's `market(id)` view, in order."""
    (view,) = [f for f in ch.abi if f.get("type") == "function" and f["name"] == "market"]
    return [c["name"] for c in view["outputs"][0]["components"]]


def market_field(ch, name: str) -> int:
    """The position of field `name` in what `market(id)` returns."""
    return market_fields(ch).index(name)


def read_markets(ch, symbols: list[str] | tuple[str, ...] = ()) -> tuple[MarketParams, ...]:
    """Every listed market's parameters as the ClearingHouse `ch` holds them, so the venue and
    the keepers work against any deployment; symbols come from the deployment file (the chain
    has none), `MARKET-<id>` where it names none."""
    names = market_fields(ch)
    markets = []
    for i in range(ch.functions.marketCount().call()):
        m = dict(zip(names, ch.functions.market(i).call()))
        markets.append(MarketParams(
            symbol=symbols[i] if i < len(symbols) else f"MARKET-{i}", oracle_id=m["oracleId"],
            tick_size=m["tickSize"], lot_size=m["lotSize"], min_notional=m["minNotional"], band_bps=m["bandBps"],
            maker_fee_bps=m["makerFeeBps"], taker_fee_bps=m["takerFeeBps"], im_bps_1=m["imBps1"],
            im_bps_2=m["imBps2"], tier_cap_1=m["tierCap1"], liquidation_penalty_bps=m["liquidationPenaltyBps"],
            max_position=m["maxPosition"], open_interest_cap=m["openInterestCap"],
            max_funding_rate_per_hour=m["maxFundingRatePerHour"], exposure_group=m["exposureGroup"],
            exposure_cap=m["exposureCap"],
        ))
    return tuple(markets)


def exposure_groups(markets: tuple[MarketParams, ...]) -> list[tuple[int, int, int]]:
    """The exposure groups `markets` name, as setExposureGroup's (group, cap, market mask); a
    group's markets must name the same cap."""
    groups: dict[int, tuple[int, int]] = {}
    for i, p in enumerate(markets):
        if p.exposure_group:
            cap, mask = groups.get(p.exposure_group, (p.exposure_cap, 0))
            if cap != p.exposure_cap:
                raise ValueError(f"exposure group {p.exposure_group}: caps {cap} and {p.exposure_cap} differ")
            groups[p.exposure_group] = (cap, mask | 1 << i)
    return [(g, cap, mask) for g, (cap, mask) in sorted(groups.items())]


def read_market_status(ch) -> list[int]:
    """Each listed market's status (MARKET_ACTIVE, MARKET_HALTED, MARKET_REDUCE_ONLY)."""
    index = market_field(ch, "status")
    return [ch.functions.market(i).call()[index] for i in range(ch.functions.marketCount().call())]


def _send(w3, tx_fn, sender: str):
    tx_hash = tx_fn.transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt.status != 1:
        raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def _deploy(w3, name: str, sender: str, *args) -> str:
    art = artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    return _send(w3, factory.constructor(*args), sender).contractAddress


def deploy(
    w3,
    owner: str,
    *,
    operator: str | None = None,
    keepers: tuple[str, ...] = (),
    markets: tuple[MarketParams, ...] = DEVNET_MARKETS,
    risk: RiskParams = DEVNET_RISK,
    guardian: str | None = None,
) -> Deployment:
    """Deploys tokens, Oracle, the three ClearingHouse modules and the ClearingHouse from the
    unlocked account `owner`, lists `markets`, and grants `operator` settlement, `keepers` the
    oracle, funding and risk-keeper roles, and `guardian` the guardian role (pause, reduce-only
    markets). The owner is risk admin."""
    usdc = _deploy(w3, "MockERC20", owner, "USD Coin (devnet)", "USDC", 6)
    weth = _deploy(w3, "MockERC20", owner, "Wrapped Ether (devnet)", "WETH", 18)
    oracle = _deploy(w3, "Oracle", owner, owner)
    config = (oracle, usdc, weth, ETH_ORACLE_ID, WETH_MIN_HAIRCUT_BPS, WETH_MAX_HAIRCUT_BPS)
    modules = {name: _deploy(w3, name, owner, config) for name in MODULES}
    house = _deploy(
        w3, "ClearingHouse", owner, owner, config, WETH_HAIRCUT_BPS, risk.as_tuple(),
        *(modules[name] for name in MODULES),
    )
    ch = contract(w3, "ClearingHouse", house)
    orc = contract(w3, "Oracle", oracle)
    for params in markets:
        _send(w3, ch.functions.listMarket(params.as_tuple()), owner)
    _send(w3, ch.functions.setRole(ROLE_RISK_ADMIN, owner, True), owner)
    for group, cap, mask in exposure_groups(markets):
        _send(w3, ch.functions.setExposureGroup(group, cap, mask), owner)
    if operator:
        _send(w3, ch.functions.setRole(ROLE_OPERATOR, operator, True), owner)
    for keeper in keepers:
        _send(w3, orc.functions.setKeeper(keeper, True), owner)
        _send(w3, ch.functions.setRole(ROLE_FUNDING_KEEPER, keeper, True), owner)
        _send(w3, ch.functions.setRole(ROLE_RISK_KEEPER, keeper, True), owner)
    if guardian:
        _send(w3, ch.functions.setRole(ROLE_GUARDIAN, guardian, True), owner)
    return Deployment(
        chain_id=w3.eth.chain_id, clearing_house=house, oracle=oracle, usdc=usdc, weth=weth,
        owner=owner, markets=[m.symbol for m in markets], guardian=guardian, modules=modules,
    )
