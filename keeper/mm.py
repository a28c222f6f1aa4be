"""Reference market maker: quotes from a fair price with GLFT spreads and inventory skew, adapts to
volatile micro-epochs, keeps queue priority, and measures itself by markouts.

The strategy is a state machine with no I/O: it is fed market data (`on_oracle`, `on_book`), its
fills (`on_fill`) and its resting orders (`sync_orders`), and answers `plan(now)` with the
changes to send (cancels, modifications, new orders) as one `Plan`. A driver executes the plan:
`keeper mm` over HTTP and the websocket (keeper/mm_run.py) on the wall clock, or the scenario lab
in-process on its simulated clock (venue/scenario/lab.py). One strategy, two clocks.

Quoting (Gueant, Lehalle, Fernandez-Tapia 2013; the closed-form approximation of Gueant 2017,
"Optimal market making", with xi = gamma). Depths are in basis points of the fair price, the
inventory q in units of one level's size, sigma in bps per square-root second, and fills arrive
at a depth delta with intensity A exp(-k delta):

    c1 = (1 / gamma) ln(1 + gamma / k)
    c2 = sqrt( gamma / (2 A k) * (1 + gamma / k) ** (k / gamma + 1) )
    bid depth = c1 + (2 q + 1) / 2 * c2 * sigma
    ask depth = c1 - (2 q - 1) / 2 * c2 * sigma

so the half spread is c1 + c2 sigma / 2 and every unit of inventory moves both quotes by c2 sigma
against it (a long bot bids lower and offers lower). GLFT rather than Avellaneda-Stoikov: it has
no terminal time, which a bot that runs for days does not have, and its spread stays bounded for
any inventory. Level i sits `level_step_bps` * i further out; no depth is below
`min_half_spread_bps`.

The fair price is the oracle price moved toward the book's mid without the bot's own orders,
`book_weight` of the way, at most `max_book_skew_bps`. Sigma is an EWMA of squared log returns
of the fair price per second (`vol_long_s`), the short-window one (`vol_short_s`) feeds the
adaptation.

Adaptation, per market: a volatile micro-epoch is short-window volatility above
`vol_widen_ratio` (widen) or `vol_pull_ratio` (pull) times the long one, an oracle update that
jumps `jump_bps` (widen; twice that: pull), or its fills within `fill_window_s` one-sided: `one_sided_fills` more on
one side than on the other (widen; twice as many: pull). Wide quotes are
`widen_factor` times as far out, and at least sigma_short * sqrt(`adverse_s`) (the move the
short-window volatility makes while an informed trader's news reaches the bot); pulled quotes
are cancelled. The state holds `cooldown_s` after
the last trigger, then returns to calm; every change is logged with its cause.

Caps: a position's size per market (`max_position`, base units) and the net notional of the
markets in the combined group (`group_cap_usdc`, signed: longs in correlated markets add up).
Levels that could fill past a cap are not quoted; at a cap the bot quotes only the side that
reduces, signed reduce-only and no larger than the position.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from dataclasses import dataclass, field

from venue.domain import QUOTE_DECIMALS, SIZE_SCALE
from venue.risk import maker_fee

log = logging.getLogger("mm")

HORIZONS = (1, 5, 30, 60)  # markout horizons, seconds
CALM, WIDE, PULLED = "calm", "wide", "pulled"
ECHO_S = 1.0  # how long an order the bot removed may still show in its websocket-fed book


@dataclass(frozen=True)
class MarketSpec:
    id: int
    symbol: str
    tick: int
    lot: int
    maker_fee_bps: int = 0

    @classmethod
    def from_json(cls, m: dict) -> "MarketSpec":
        """From an entry of `GET /markets`."""
        return cls(int(m["id"]), m["symbol"], int(m["tickSize"]), int(m["lotSize"]), int(m["makerFeeBps"]))


@dataclass
class MMConfig:
    levels: int = 5
    level_notional_usdc: float = 5_000.0  # each level's size, as notional at the fair price
    gamma: float = 0.05  # risk aversion, per level-size unit of inventory
    arrival_a: float = 1.0  # fills per second at zero depth
    arrival_k: float = 0.5  # decay of the fill intensity per bps of depth
    min_half_spread_bps: float = 2.0
    level_step_bps: float = 3.0
    book_weight: float = 0.5
    max_book_skew_bps: float = 20.0
    sigma_init_bps: float = 1.0  # bps per sqrt(second) before there is data
    sigma_floor_bps: float = 0.2
    vol_short_s: float = 10.0
    vol_long_s: float = 300.0
    requote_bps: float = 1.0  # re-centre the quotes when the fair price moved this far
    size_tolerance: float = 0.5  # a partly filled level stays while it keeps this share of its size
    adaptive: bool = True
    vol_widen_ratio: float = 2.0
    vol_pull_ratio: float = 4.0
    jump_bps: float = 30.0
    one_sided_fills: int = 3
    fill_window_s: float = 10.0
    widen_factor: float = 4.0
    adverse_s: float = 9.0  # wide quotes sit at least sigma_short * sqrt(adverse_s) out
    cooldown_s: float = 20.0
    max_position: dict = field(default_factory=dict)  # market id -> base units (1e-8); absent: no cap
    group: tuple = ()  # market ids whose net notional counts together
    group_cap_usdc: float | None = None
    max_updates_per_s: float = 200.0  # quote updates (orders placed, modified, cancelled) per second
    burst: int = 200
    deadman_s: float = 30.0  # the dead-man's switch fires this long after the last renewal


# ---------------------------------------------------------------------- pieces
def glft_depths(sigma_bps: float, q: float, gamma: float, a: float, k: float) -> tuple[float, float]:
    """(bid depth, ask depth) in bps of the fair price for inventory `q` (see the module doc)."""
    c1 = math.log1p(gamma / k) / gamma
    c2 = math.sqrt(gamma / (2 * a * k) * (1 + gamma / k) ** (k / gamma + 1))
    return c1 + (2 * q + 1) / 2 * c2 * sigma_bps, c1 - (2 * q - 1) / 2 * c2 * sigma_bps


class Volatility:
    """EWMA of squared log returns per second with time constant `tau_s`, on irregular samples."""

    def __init__(self, tau_s: float, init_bps: float):
        self.tau = tau_s
        self.var = (init_bps / 1e4) ** 2
        self.last: tuple[float, float] | None = None

    def update(self, t: float, price: float) -> None:
        if self.last is not None:
            t0, p0 = self.last
            dt = t - t0
            if dt <= 0:
                return
            w = 1 - math.exp(-dt / self.tau)
            r = math.log(price / p0)
            self.var = (1 - w) * self.var + r * r / self.tau  # a return's weight is r^2/tau, whatever dt
        self.last = (t, price)

    @property
    def sigma_bps(self) -> float:
        return math.sqrt(self.var) * 1e4


class TokenBucket:
    def __init__(self, rate: float, burst: int, now: float):
        self.rate, self.burst, self.tokens, self.t = rate, burst, float(burst), now

    def take(self, n: int, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if n > self.tokens:
            return False
        self.tokens -= n
        return True


@dataclass
class Quote:
    market: int
    is_buy: bool
    price: int
    size: int
    reduce_only: bool = False


@dataclass
class Resting:
    id: int
    market: int
    is_buy: bool
    price: int
    size: int  # as quoted
    remaining: int
    reduce_only: bool = False


@dataclass
class Plan:
    cancels: list[int] = field(default_factory=list)
    modifies: list[tuple[int, Quote]] = field(default_factory=list)
    places: list[Quote] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cancels) + len(self.modifies) + len(self.places)


def diff(resting: list[Resting], desired: list[Quote], size_tolerance: float) -> Plan:
    """The fewest changes from `resting` to `desired`, keeping queue priority: an order whose
    price is wanted stays untouched while its remaining size is between `size_tolerance` of the
    wanted size and the wanted size; larger, it is modified in place (a shrink keeps its place);
    a wanted price with no order takes an unwanted order of the same side (modified: repriced)
    or a new order; unwanted orders left over are cancelled. Retreating modifications come
    before advancing ones."""
    plan = Plan()
    for is_buy in (True, False):
        mine = [r for r in resting if r.is_buy == is_buy]
        want = [q for q in desired if q.is_buy == is_buy]
        by_price = {}
        for r in mine:
            by_price.setdefault((r.market, r.price), []).append(r)
        spare, unmet = [], []
        for q in want:
            found = by_price.get((q.market, q.price))
            if not found:
                unmet.append(q)
                continue
            r = found.pop(0)
            if r.reduce_only != q.reduce_only:
                plan.modifies.append((r.id, q))
            elif r.remaining > q.size:
                plan.modifies.append((r.id, q))  # same price, smaller: in place
            elif r.remaining < q.size * size_tolerance:
                plan.modifies.append((r.id, q))
        for rs in by_price.values():
            spare += rs
        for q in unmet:
            same_market = [r for r in spare if r.market == q.market]
            if same_market:
                r = same_market[0]
                spare.remove(r)
                plan.modifies.append((r.id, q))
            else:
                plan.places.append(q)
        plan.cancels += [r.id for r in spare]
    # The venue applies modifications in order: those that retreat (bids down, asks up) go first,
    # so that an advancing quote never meets the bot's own stale quote on the other side.
    old_price = {r.id: r.price for r in resting}
    plan.modifies.sort(key=lambda m: (m[1].price > old_price[m[0]]) == m[1].is_buy)
    return plan


# ---------------------------------------------------------------------- telemetry
@dataclass
class FillMark:
    t: float
    market: int
    is_buy: bool
    price: int
    size: int
    fee: int  # quote units; negative: a rebate
    mid: int  # reference at the fill
    oracle: int
    markouts_mid: dict = field(default_factory=dict)  # horizon -> bps
    markouts_oracle: dict = field(default_factory=dict)

    def bps(self, ref: int) -> float:
        sign = 1 if self.is_buy else -1
        return sign * (ref - self.price) / self.price * 1e4

    def as_json(self) -> dict:
        return {"id": f"{self.t}:{self.market}:{self.price}:{self.size}", "t": self.t, "market": self.market, "side": "buy" if self.is_buy else "sell", "price": self.price,
                "size": self.size, "fee": self.fee, "mid": self.mid, "oracle": self.oracle,
                "realized_spread_bps": self.bps(self.mid),
                "markout_mid_bps": {f"{h}s": self.markouts_mid.get(h) for h in HORIZONS},
                "markout_oracle_bps": {f"{h}s": self.markouts_oracle.get(h) for h in HORIZONS}}


class Telemetry:
    """Per fill: markouts at 1, 5, 30 and 60 s against the mid and the oracle (bps, a loss is
    negative) and the realized spread; the PnL split into spread capture (against the mid at the
    fill), inventory PnL (the position marked to the mid as it moves), fees and rebates, and
    funding (the position times the change of its market's funding index). Quote updates and
    regime changes are counted. Optional Prometheus metrics (`registry`) and a JSON-lines file."""

    def __init__(self, markets: dict[int, MarketSpec], path=None, registry=None):
        self.markets = markets
        self.fills: list[FillMark] = []
        self.open: deque[FillMark] = deque()  # fills still waiting for a horizon
        self.spread = {m: 0 for m in markets}  # quote units x SIZE_SCALE (exact)
        self.inventory_pnl = {m: 0 for m in markets}
        self.fees = {m: 0 for m in markets}
        self.funding = {m: 0 for m in markets}
        self.position = {m: 0 for m in markets}
        self.last_mark: dict[int, int] = {}
        self.updates = 0
        self.messages = 0
        self.regimes: list[dict] = []
        self.file = open(path, "a") if path else None
        self.prom = None
        if registry is not None:
            from prometheus_client import Counter, Gauge, Histogram

            self.prom = {
                "fills": Counter("mm_fills", "fills of the bot's quotes", ["market", "side"], registry=registry),
                "volume": Counter("mm_volume_usdc", "notional filled", ["market"], registry=registry),
                "updates": Counter("mm_quote_updates", "orders placed, modified or cancelled", registry=registry),
                "markout": Histogram("mm_markout_bps", "markout of a fill (a loss is negative)",
                                     ["market", "horizon", "reference"], registry=registry,
                                     buckets=(-100, -50, -20, -10, -5, -2, 0, 2, 5, 10, 20, 50, 100)),
                "pnl": Gauge("mm_pnl_usdc", "PnL by component", ["market", "component"], registry=registry),
                "position": Gauge("mm_position", "position in base units", ["market"], registry=registry),
                "regime": Gauge("mm_regime", "0 calm, 1 wide, 2 pulled", ["market"], registry=registry),
                "reconnects": Counter("mm_ws_reconnects", "websocket reconnections (each resyncs from snapshots)",
                                      registry=registry),
                "requote": Histogram("mm_requote_seconds", "from a plan to its acknowledgement", registry=registry,
                                     buckets=(.002, .005, .01, .02, .05, .1, .2, .5, 1, 2)),
            }

    def write(self, record: dict) -> None:
        if self.file is not None:
            self.file.write(json.dumps(record, sort_keys=True) + "\n")
            self.file.flush()

    def on_fill(self, t: float, market: int, is_buy: bool, price: int, size: int, mid: int, oracle: int) -> None:
        spec = self.markets[market]
        notional = price * size // SIZE_SCALE
        fee = maker_fee(notional, spec.maker_fee_bps)
        f = FillMark(t, market, is_buy, price, size, fee, mid, oracle)
        self.fills.append(f)
        self.open.append(f)
        self.write({"kind": "fill", **f.as_json()})  # now, and again once its markouts are all in
        sign = 1 if is_buy else -1
        self.spread[market] += sign * (mid - price) * size
        self.fees[market] -= fee * SIZE_SCALE
        self.position[market] += sign * size
        if self.prom:
            self.prom["fills"].labels(spec.symbol, "buy" if is_buy else "sell").inc()
            self.prom["volume"].labels(spec.symbol).inc(notional / 10**QUOTE_DECIMALS)
            self.prom["position"].labels(spec.symbol).set(self.position[market] / SIZE_SCALE)

    def on_mark(self, t: float, market: int, mid: int, oracle: int) -> None:
        """The market's reference prices now: inventory PnL, and the markouts that came due."""
        last = self.last_mark.get(market)
        if last is not None:
            self.inventory_pnl[market] += self.position[market] * (mid - last)
        self.last_mark[market] = mid
        done = []
        for f in self.open:
            if f.market != market:
                continue
            for h in HORIZONS:
                if h not in f.markouts_mid and t >= f.t + h:
                    f.markouts_mid[h], f.markouts_oracle[h] = f.bps(mid), f.bps(oracle)
                    if self.prom:
                        symbol = self.markets[market].symbol
                        self.prom["markout"].labels(symbol, f"{h}s", "mid").observe(f.markouts_mid[h])
                        self.prom["markout"].labels(symbol, f"{h}s", "oracle").observe(f.markouts_oracle[h])
            if len(f.markouts_mid) == len(HORIZONS):
                done.append(f)
        for f in done:
            self.open.remove(f)
            self.write({"kind": "fill", **f.as_json()})
        if self.prom:
            for component, value in self.pnl(market).items():
                self.prom["pnl"].labels(self.markets[market].symbol, component).set(value)

    def snapshot(self, t: float, every_s: float = 1.0) -> None:
        """A `state` record (positions and PnL split) at most every `every_s`: the report's time
        series."""
        if t - getattr(self, "_snapshot_t", -1e18) < every_s:
            return
        self._snapshot_t = t
        self.write({"kind": "state", "t": t, "pnl": self.pnl(),
                    "position": {self.markets[m].symbol: self.position[m] / SIZE_SCALE for m in self.markets}})

    def on_funding(self, market: int, paid: int) -> None:
        """`paid` quote units of funding paid by the bot (negative: received)."""
        self.funding[market] -= paid * SIZE_SCALE

    def on_updates(self, n: int, seconds: float | None = None) -> None:
        self.updates += n
        self.messages += 1
        if self.prom:
            self.prom["updates"].inc(n)
            if seconds is not None:
                self.prom["requote"].observe(seconds)

    def on_reconnect(self) -> None:
        if self.prom:
            self.prom["reconnects"].inc()

    def on_regime(self, t: float, market: int, state: str, cause: str) -> None:
        self.regimes.append({"t": t, "market": market, "state": state, "cause": cause})
        self.write({"kind": "regime", "t": t, "market": market, "state": state, "cause": cause})
        if self.prom:
            self.prom["regime"].labels(self.markets[market].symbol).set((CALM, WIDE, PULLED).index(state))

    def pnl(self, market: int | None = None) -> dict[str, float]:
        """USDC by component (spread, inventory, fees, funding, total), one market or all."""
        ms = [market] if market is not None else list(self.markets)
        scale = SIZE_SCALE * 10**QUOTE_DECIMALS
        out = {name: sum(getattr(self, attr)[m] for m in ms) / scale for name, attr in (
            ("spread", "spread"), ("inventory", "inventory_pnl"), ("fees", "fees"), ("funding", "funding"))}
        out["total"] = sum(out.values())
        return out

    def markout(self, horizon: int, reference: str = "mid", fills: list[FillMark] | None = None) -> float | None:
        """Volume-weighted (notional) mean markout at `horizon` seconds, in bps: per unit of volume."""
        num = den = 0.0
        for f in self.fills if fills is None else fills:
            value = (f.markouts_mid if reference == "mid" else f.markouts_oracle).get(horizon)
            if value is None:
                continue
            notional = f.price * f.size
            num += value * notional
            den += notional
        return num / den if den else None

    def summary(self) -> dict:
        return {"fills": len(self.fills),
                "volume_usdc": sum(f.price * f.size for f in self.fills) / SIZE_SCALE / 10**QUOTE_DECIMALS,
                "pnl_usdc": self.pnl(),
                "markout_mid_bps": {f"{h}s": self.markout(h, "mid") for h in HORIZONS},
                "markout_oracle_bps": {f"{h}s": self.markout(h, "oracle") for h in HORIZONS},
                "realized_spread_bps": _weighted([(f.bps(f.mid), f.price * f.size) for f in self.fills]),
                "quote_updates": self.updates, "messages": self.messages, "regime_changes": len(self.regimes),
                "position": {self.markets[m].symbol: self.position[m] / SIZE_SCALE for m in self.markets}}

    def close(self) -> None:
        for f in self.open:
            self.write({"kind": "fill", **f.as_json()})
        self.open.clear()
        self.write({"kind": "summary", **self.summary()})
        if self.file is not None:
            self.file.close()
            self.file = None


def _weighted(pairs: list[tuple[float, float]]) -> float | None:
    den = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / den if den else None


# ---------------------------------------------------------------------- the strategy
@dataclass
class MarketState:
    spec: MarketSpec
    oracle: int = 0
    oracle_t: float = 0.0
    bids: list = field(default_factory=list)  # [(price, size)] best first, the whole book
    asks: list = field(default_factory=list)
    fair: float = 0.0
    vol_short: Volatility | None = None
    vol_long: Volatility | None = None
    regime: str = CALM
    cause: str = ""
    last_trigger: float = -1e18
    fills: deque = field(default_factory=deque)  # (t, is_buy) within the window
    anchor: tuple | None = None  # (fair, sigma, position, regime) the quotes were computed from
    desired: list = field(default_factory=list)


class MarketMaker:
    """The strategy (see the module doc). Prices in quote units (1e-6 USDC), sizes in 1e-8."""

    def __init__(self, config: MMConfig, markets: dict[int, MarketSpec], telemetry: Telemetry | None = None,
                 now: float = 0.0):
        self.config = config
        self.markets = {m: MarketState(spec, vol_short=Volatility(config.vol_short_s, config.sigma_init_bps),
                                       vol_long=Volatility(config.vol_long_s, config.sigma_init_bps))
                        for m, spec in markets.items()}
        self.telemetry = telemetry or Telemetry(markets)
        self.position = {m: 0 for m in markets}
        self.resting: dict[int, Resting] = {}
        self.bucket = TokenBucket(config.max_updates_per_s, config.burst, now)
        self.deferred = 0  # plans held back by the rate limit
        self.refused = 0  # changes the venue refused
        self.now = now
        # Orders the bot took off the book lately: a book fed by a websocket may show them a moment
        # longer, and they are not someone else's liquidity. (time, market, is_buy, price, size)
        self.echoes: deque = deque()

    # ------------------------------------------------------------------ inputs
    def on_oracle(self, market: int, price: int, t: float) -> None:
        st = self.markets.get(market)
        if st is None or price <= 0:
            return
        if st.oracle and self.config.adaptive:
            jump = abs(price - st.oracle) / st.oracle * 1e4
            if jump >= 2 * self.config.jump_bps:
                self._trigger(st, t, PULLED, f"oracle jump {jump:.0f} bps")
            elif jump >= self.config.jump_bps:
                self._trigger(st, t, WIDE, f"oracle jump {jump:.0f} bps")
        st.oracle, st.oracle_t = price, t

    def on_book(self, market: int, bids: list, asks: list) -> None:
        """The market's L2 book (price, size) best first, the bot's own orders included."""
        st = self.markets.get(market)
        if st is not None:
            st.bids, st.asks = bids, asks

    def on_fill(self, market: int, is_buy: bool, price: int, size: int, t: float, order_id: int | None = None) -> None:
        st = self.markets[market]
        self.position[market] += size if is_buy else -size
        r = self.resting.get(order_id) if order_id is not None else None
        if r is not None:
            r.remaining -= size
            if r.remaining <= 0:
                del self.resting[order_id]
        self.telemetry.on_fill(t, market, is_buy, price, size, self.mid(market), st.oracle)
        if self.config.adaptive:
            st.fills.append((t, is_buy))
            while st.fills and st.fills[0][0] < t - self.config.fill_window_s:
                st.fills.popleft()
            bought = sum(1 for _, b in st.fills if b)
            imbalance = bought - (len(st.fills) - bought)
            n = self.config.one_sided_fills
            if abs(imbalance) >= n:
                side = "bids" if imbalance > 0 else "offers"
                state = PULLED if abs(imbalance) >= 2 * n else WIDE
                self._trigger(st, t, state, f"{abs(imbalance)} more fills of its {side} than of the other side "
                                            f"in {self.config.fill_window_s:g} s")

    def on_order_remaining(self, order_id: int, remaining: int) -> None:
        """The venue's word on what is left of one of the bot's orders."""
        r = self.resting.get(order_id)
        if r is not None:
            r.remaining = remaining

    def on_order_gone(self, order_id: int) -> None:
        """An order left the book (cancelled, expired, filled)."""
        self.resting.pop(order_id, None)

    def sync_orders(self, orders: list[Resting]) -> None:
        """The venue's view of the bot's open orders (on start and after a gap): adopted, so a
        restart leaves no orphans. What the bot knew of an order it already had (its quoted size,
        reduce-only) is kept."""
        known = self.resting
        self.resting = {}
        for o in orders:
            k = known.get(o.id)
            if k is not None:
                o.size, o.reduce_only = k.size, k.reduce_only
            self.resting[o.id] = o

    def set_position(self, market: int, size: int) -> None:
        self.position[market] = size
        self.telemetry.position[market] = size

    # ------------------------------------------------------------------ state
    def mid(self, market: int) -> int:
        """The book's mid (the bot's orders included) or, one-sided, the oracle price."""
        st = self.markets[market]
        if st.bids and st.asks:
            return (st.bids[0][0] + st.asks[0][0]) // 2
        return st.oracle

    def _book_without_me(self, st: MarketState) -> tuple[int | None, int | None]:
        mine: dict[tuple[bool, int], int] = {}
        for r in self.resting.values():
            if r.market == st.spec.id:
                mine[(r.is_buy, r.price)] = mine.get((r.is_buy, r.price), 0) + r.remaining
        while self.echoes and self.echoes[0][0] < self.now - ECHO_S:
            self.echoes.popleft()
        for _, market, is_buy, price, size in self.echoes:
            if market == st.spec.id:
                mine[(is_buy, price)] = mine.get((is_buy, price), 0) + size
        best = []
        for is_buy, levels in ((True, st.bids), (False, st.asks)):
            price = None
            for p, s in levels:
                if s > mine.get((is_buy, p), 0):
                    price = p
                    break
            best.append(price)
        return best[0], best[1]

    def fair(self, st: MarketState) -> float:
        c = self.config
        bid, ask = self._book_without_me(st)
        if bid is None or ask is None or not st.oracle:
            return float(st.oracle)
        skew = ((bid + ask) / 2 - st.oracle) * c.book_weight
        bound = st.oracle * c.max_book_skew_bps / 1e4
        return st.oracle + max(-bound, min(bound, skew))

    def _trigger(self, st: MarketState, t: float, state: str, cause: str) -> None:
        st.last_trigger = t
        if (CALM, WIDE, PULLED).index(state) > (CALM, WIDE, PULLED).index(st.regime):
            log.info("%s: %s -> %s (%s)", st.spec.symbol, st.regime, state, cause)
            st.regime, st.cause = state, cause
            self.telemetry.on_regime(t, st.spec.id, state, cause)

    def _calm_down(self, st: MarketState, t: float) -> None:
        if st.regime != CALM and t - st.last_trigger >= self.config.cooldown_s:
            cause = f"no trigger for {self.config.cooldown_s:g} s"
            log.info("%s: %s -> calm (%s)", st.spec.symbol, st.regime, cause)
            st.regime, st.cause = CALM, cause
            self.telemetry.on_regime(t, st.spec.id, CALM, cause)

    def observe(self, t: float) -> None:
        """Once per step: fair prices and volatility, the adaptation's volatility rule, markouts."""
        c = self.config
        self.now = t
        for m, st in self.markets.items():
            if not st.oracle:
                continue
            st.fair = self.fair(st)
            st.vol_short.update(t, st.fair)
            st.vol_long.update(t, st.fair)
            if c.adaptive:
                ratio = st.vol_short.sigma_bps / max(st.vol_long.sigma_bps, c.sigma_floor_bps)
                if ratio >= c.vol_pull_ratio:
                    self._trigger(st, t, PULLED, f"short volatility {ratio:.1f}x the long")
                elif ratio >= c.vol_widen_ratio:
                    self._trigger(st, t, WIDE, f"short volatility {ratio:.1f}x the long")
                self._calm_down(st, t)
            self.telemetry.on_mark(t, m, self.mid(m), st.oracle)

    # ------------------------------------------------------------------ quotes
    def quotes(self, m: int) -> list[Quote]:
        """What market `m` should show now (from its anchor: see `plan`)."""
        st, c = self.markets[m], self.config
        fair, sigma, position, regime = st.anchor
        if regime == PULLED or fair <= 0:
            return []
        spec = st.spec
        level_size = max(spec.lot, int(c.level_notional_usdc * 10**QUOTE_DECIMALS * SIZE_SCALE / fair)
                         // spec.lot * spec.lot)
        q = position / level_size
        bid_depth, ask_depth = glft_depths(sigma, q, c.gamma, c.arrival_a, c.arrival_k)
        bid_depth = max(c.min_half_spread_bps, bid_depth)
        ask_depth = max(c.min_half_spread_bps, ask_depth)
        if regime == WIDE:  # further out, and at least the move the short volatility makes over adverse_s
            floor = st.vol_short.sigma_bps * math.sqrt(c.adverse_s)
            bid_depth, ask_depth = max(bid_depth * c.widen_factor, floor), max(ask_depth * c.widen_factor, floor)
        room_buy, room_sell = self._room(m, fair)
        out = []
        for is_buy, depth, room, other in ((True, bid_depth, room_buy, room_sell), (False, ask_depth, room_sell, room_buy)):
            if room <= 0:  # this side would breach a cap: not quoted
                continue
            reduce_only = other <= 0 and (position < 0 if is_buy else position > 0)
            if reduce_only:  # at a cap: the side that reduces, reduce-only, back toward flat
                room = min(room, abs(position))
            for i in range(c.levels):
                size = min(level_size, room // spec.lot * spec.lot)
                if size <= 0:
                    break
                room -= size
                d = (depth + i * c.level_step_bps) / 1e4
                price = (int(fair * (1 - d)) // spec.tick * spec.tick if is_buy
                         else -(-int(fair * (1 + d)) // spec.tick) * spec.tick)
                if price <= 0:
                    break
                out.append(Quote(m, is_buy, price, size, reduce_only))
        return out

    def _room(self, m: int, fair: float) -> tuple[int, int]:
        """Base units the bot may still buy and sell in market `m` within its caps."""
        c, pos = self.config, self.position[m]
        big = 2**62
        buy = sell = big
        cap = c.max_position.get(m)
        if cap is not None:
            buy, sell = max(0, cap - pos), max(0, cap + pos)
        if c.group_cap_usdc is not None and m in c.group:
            net = sum(self.position[g] * self._price(g) for g in c.group) / SIZE_SCALE / 10**QUOTE_DECIMALS
            per_unit = fair / SIZE_SCALE / 10**QUOTE_DECIMALS
            buy = min(buy, max(0, int((c.group_cap_usdc - net) / per_unit)))
            sell = min(sell, max(0, int((c.group_cap_usdc + net) / per_unit)))
        return buy, sell

    def _price(self, m: int) -> float:
        st = self.markets[m]
        return st.fair or st.oracle

    def plan(self, now: float) -> Plan:
        """The changes to send now. A market is re-centred when its fair price moved
        `requote_bps`, its volatility a fifth, its position or its regime changed; otherwise its
        wanted quotes stay as they were and only filled or missing levels are touched. Held back
        (an empty plan) when the rate limit has no room, except to pull quotes."""
        c = self.config
        desired: list[Quote] = []
        pulling = False
        for m, st in self.markets.items():
            if not st.oracle:
                continue
            sigma = max(c.sigma_floor_bps, st.vol_long.sigma_bps)
            a = st.anchor
            if (a is None or abs(st.fair - a[0]) / a[0] * 1e4 >= c.requote_bps or abs(sigma - a[1]) > a[1] / 5
                    or self.position[m] != a[2] or st.regime != a[3]):
                pulling |= st.regime == PULLED and (a is None or a[3] != PULLED)
                st.anchor = (st.fair, sigma, self.position[m], st.regime)
                st.desired = self.quotes(m)
            desired += st.desired
        plan = diff(list(self.resting.values()), desired, c.size_tolerance)
        if not plan:
            return plan
        if not self.bucket.take(len(plan), now) and not pulling:
            self.deferred += 1
            for st in self.markets.values():
                st.anchor = None  # recompute next time
            return Plan()
        return plan

    def applied(self, plan: Plan, cancelled: list[dict], modified: list[dict], placed: list[dict],
                seconds: float | None = None) -> None:
        """The venue's answers to `plan` (per item: `status`, `orderId`, `remaining`)."""
        for item in cancelled:
            self._gone(self.resting.pop(item["orderId"], None))
        for (old_id, q), status in zip(plan.modifies, modified):
            if status.get("status") != "error" or status.get("code") == "UNKNOWN_ORDER":
                old = self.resting.pop(old_id, None)
                if old is not None and (old.price != q.price or status.get("orderId") != old_id):
                    self._gone(old)
            self._rest(q, status)
        for q, status in zip(plan.places, placed):
            self._rest(q, status)
        self.telemetry.on_updates(len(plan), seconds)
        errors = [s for s in (*modified, *placed) if s.get("status") == "error"]
        self.refused += len(errors)
        if errors:
            log.warning("%d of %d quote changes refused: %s %s", len(errors), len(plan), errors[0].get("code"),
                        errors[0].get("msg"))
            for st in self.markets.values():
                st.anchor = None  # try again from scratch next step

    def _gone(self, r: Resting | None) -> None:
        if r is not None:
            self.echoes.append((self.now, r.market, r.is_buy, r.price, r.remaining))

    def _rest(self, q: Quote, status: dict) -> None:
        if status.get("status") == "resting":
            oid = int(status["orderId"])
            self.resting[oid] = Resting(oid, q.market, q.is_buy, q.price, q.size, int(status["remaining"]),
                                        q.reduce_only)

    def regimes(self) -> dict[str, str]:
        return {st.spec.symbol: st.regime for st in self.markets.values()}
