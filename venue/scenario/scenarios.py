"""The named scenarios. Each sets up its traders through the venue (signed orders, settled on the
chain) while the oracle shows the start price, then drives blocks along a true-price path that the
oracle keeper observes with its lag. Parameters have defaults (`venue scenario list` shows them);
`--set key=value` overrides one."""

from __future__ import annotations

import bisect
import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

from keeper.feeds import to_units

from ..domain import DEVNET_MARKETS, usdc
from .lab import BTC, ETH, Lab

PRICES = Path(__file__).resolve().parents[2] / "keeper" / "data" / "prices"
ETH_ORACLE, BTC_ORACLE = DEVNET_MARKETS[ETH].oracle_id, DEVNET_MARKETS[BTC].oracle_id
TICKS = {ETH: DEVNET_MARKETS[ETH].tick_size, BTC: DEVNET_MARKETS[BTC].tick_size}
LOTS = {ETH: DEVNET_MARKETS[ETH].lot_size, BTC: DEVNET_MARKETS[BTC].lot_size}
ETH_START, BTC_START = usdc(3_000), usdc(60_000)


def on_tick(price: int, market: int) -> int:
    return price // TICKS[market] * TICKS[market]


def crash_path(start: int, at_s: float, pct: float, over_s: float):
    """`start`, then a straight fall of `pct` % from `at_s` over `over_s` seconds, then flat."""
    def price(t: float) -> int:
        if t <= at_s:
            return start
        done = min(1.0, (t - at_s) / over_s) if over_s > 0 else 1.0
        return int(start * (1 - pct / 100 * done))
    return price


class CsvPath:
    """A CSV of `timestamp,price` replayed from `offset_s` into it, `speed` data seconds per
    simulated second; the price at a time is the last row at or before it."""

    def __init__(self, path: Path, offset_s: float = 0.0, speed: float = 1.0):
        with open(path) as f:
            rows = list(csv.DictReader(f))
        self.times = [int(r["timestamp"]) for r in rows]
        self.prices = [to_units(r["price"]) for r in rows]
        self.offset_s, self.speed = offset_s, speed

    def __call__(self, t: float) -> int:
        at = self.times[0] + self.offset_s + t * self.speed
        return self.prices[max(0, bisect.bisect_right(self.times, at) - 1)]


@dataclass
class Scenario:
    name: str
    purpose: str
    defaults: dict = field(default_factory=dict)

    def lab_args(self, p: dict) -> dict:
        return {"block_time": int(p.get("block_time", 1)), "gas_limit": int(p.get("gas_limit", 30_000_000))}

    async def run(self, lab: Lab, p: dict) -> None:
        raise NotImplementedError


async def open_positions(lab: Lab, maker, takers, market: int, price: int, size: int, taker_buys: bool = True):
    """Each taker trades `size` with the maker at `price` through the venue (the maker's resting
    post-only order, the taker's IOC), settled on the chain before the scenario's clock starts."""
    for taker in takers:
        await lab.order(maker, market, not taker_buys, price, size, tif="Alo")
        await lab.order(taker, market, taker_buys, price, size, tif="Ioc")
    await lab.step()
    await lab.settle_all()


def market_maker_account(lab: Lab):
    """The last trader, funded and with its market maker's agent approved (during set-up)."""
    from keeper.mm_run import agent_key_for

    from ..signing import address_of

    trader = lab.traders[-1]
    lab.fund([trader], usdc(2_000_000))
    lab.approve_agent(trader, address_of(agent_key_for(trader.key)))
    return trader


def add_market_maker(lab: Lab, trader, markets: tuple[int, ...] = (ETH,), **config):
    """`keeper mm`'s strategy quoting for `trader` from the next block (`MMConfig` overrides)."""
    from keeper.mm import MMConfig

    from .lab import LabMarketMaker

    mm = LabMarketMaker(lab, trader, MMConfig(**config), markets=markets)
    lab.makers.append(mm)
    return mm


def sized(collateral: int, leverage: float, price: int, market: int) -> int:
    """The size (whole lots) of `leverage` times `collateral` of notional at `price`."""
    return int(collateral * leverage) * 10**8 // price // LOTS[market] * LOTS[market]


class Crash(Scenario):
    """Levered longs in one market through a fall the oracle keeper observes `lag_blocks` late.
    The truth path comes from `path(lab, p)`; the start price is the path's first."""

    def path(self, p: dict):
        return crash_path(ETH_START, float(p["crash_at_s"]), float(p["crash_pct"]), float(p["crash_over_s"]))

    def observed(self, p: dict, truth):
        """What the oracle keeper's feed shows of the truth (`seen(elapsed, true price)`): the
        truth itself unless a scenario distorts it."""
        return lambda elapsed, price: price

    async def run(self, lab: Lab, p: dict) -> None:
        eth = self.path(p)
        start = on_tick(eth(0), ETH)
        btc = BTC_START
        lab.fund_keepers()
        if int(p.get("insurance_usdc", 0)):
            lab.deposit_insurance(usdc(int(p["insurance_usdc"])))
        maker, longs = lab.traders[0], lab.traders[1:1 + int(p["accounts"])]
        lab.fund([maker], usdc(10_000_000))
        collateral = usdc(int(p["collateral_usdc"]))
        weth_wei = int(float(p.get("weth_per_account", 0)) * 10**18)
        lab.fund(longs, collateral, weth_wei)
        mm_trader = market_maker_account(lab) if int(p.get("mm", 0)) else None
        lab.push_prices({ETH_ORACLE: start, BTC_ORACLE: btc})
        rng = random.Random(lab.seed)
        seen = self.observed(p, eth)
        await lab.begin(lambda t: {ETH_ORACLE: eth(lab.elapsed(t)), BTC_ORACLE: btc},
                  observed=lambda t: {ETH_ORACLE: seen(lab.elapsed(t), eth(lab.elapsed(t))), BTC_ORACLE: btc},
                  oracle_delay_s=int(p["lag_blocks"]) * lab.block_time, heartbeat_s=float(p["heartbeat_s"]),
                  deviation_bps=int(p["deviation_bps"]), oracle_tip_gwei=float(p.get("oracle_tip_gwei", 1.0)),
                  liquidator_tips=tuple(float(x) for x in str(p.get("liquidator_tips", "2")).split("/")),
                  with_risk=bool(int(p.get("risk_keeper", 0))),
                  funding_interval_s=float(p.get("funding_interval_s", 0)) or None,
                  guard_bps=int(p.get("guard_bps", 2_000)) or None)
        for i, trader in enumerate(longs):  # leverage spread around the parameter, seeded
            lev = float(p["leverage"]) * (0.8 + 0.4 * rng.random()) if len(longs) > 1 else float(p["leverage"])
            margin = collateral + weth_wei * start // 10**18 * 9 // 10  # WETH after the devnet's 10 % haircut
            await open_positions(lab, maker, [trader], ETH, start, sized(margin, lev, start, ETH))
        lab.start_time()
        if mm_trader is not None:  # --set mm=1: the reference market maker quotes ETH-PERP too
            add_market_maker(lab, mm_trader, levels=int(p.get("mm_levels", 5)))
        on_block = self.during(lab, p, maker)
        for _ in range(int(p["blocks"])):
            await lab.step(on_block)

    def during(self, lab: Lab, p: dict, maker):
        """What traders do each block once the scenario's clock runs (nothing, unless a scenario says)."""
        return None


class Calm(Scenario):
    """Two-sided flow around a slow random walk: a maker quoting both sides, takers crossing."""

    async def run(self, lab: Lab, p: dict) -> None:
        rng = random.Random(lab.seed)
        walk = {0: ETH_START}

        def eth(t: float) -> int:
            step = int(t)
            while max(walk) < step:  # a seeded walk, one step a second, 2 bp moves
                last = max(walk)
                walk[last + 1] = int(walk[last] * (1 + rng.choice((-2, -1, 0, 1, 2)) / 10_000))
            return walk[max(0, step)]

        lab.fund_keepers()
        maker, takers = lab.traders[0], lab.traders[1:1 + int(p["takers"])]
        lab.fund([maker], usdc(5_000_000))
        lab.fund(takers, usdc(200_000))
        lab.push_prices({ETH_ORACLE: ETH_START, BTC_ORACLE: BTC_START})
        await lab.begin(lambda t: {ETH_ORACLE: eth(lab.elapsed(t)), BTC_ORACLE: BTC_START})
        lab.start_time()
        flow = random.Random(lab.seed + 1)
        quotes: list[int] = []
        spread = int(p["spread_bps"])

        async def on_block(lab: Lab) -> None:
            mid = eth(lab.elapsed(lab.now()))
            for oid in quotes:  # re-quote around the true price every block
                try:
                    lab.venue.cancel(maker.address, oid, None)
                except Exception:  # noqa: BLE001: filled meanwhile
                    pass
            quotes.clear()
            size = LOTS[ETH] * int(p["quote_lots"])
            for is_buy, px in ((True, mid * (10_000 - spread) // 10_000), (False, mid * (10_000 + spread) // 10_000)):
                ack = await lab.order(maker, ETH, is_buy, on_tick(px, ETH), size, tif="Alo")
                if ack is not None and ack.order_id:
                    quotes.append(ack.order_id)
            for taker in takers:
                if flow.random() < float(p["take_probability"]):
                    buy = flow.random() < 0.5
                    px = mid * (10_000 + (2 * spread if buy else -2 * spread)) // 10_000
                    await lab.order(taker, ETH, buy, on_tick(px, ETH), LOTS[ETH] * flow.randint(5, 40), tif="Ioc")

        for _ in range(int(p["blocks"])):
            await lab.step(on_block)
        await lab.settle_all()


class CrossCascade(Scenario):
    """Cross-margin accounts long ETH and BTC; BTC crashes while ETH holds: the BTC leg's loss
    gets the healthy ETH legs liquidated too."""

    async def run(self, lab: Lab, p: dict) -> None:
        btc = crash_path(BTC_START, float(p["crash_at_s"]), float(p["crash_pct"]), float(p["crash_over_s"]))
        lab.fund_keepers()
        maker, longs = lab.traders[0], lab.traders[1:1 + int(p["accounts"])]
        lab.fund([maker], usdc(10_000_000))
        collateral = usdc(int(p["collateral_usdc"]))
        lab.fund(longs, collateral)
        lab.push_prices({ETH_ORACLE: ETH_START, BTC_ORACLE: BTC_START})
        await lab.begin(lambda t: {ETH_ORACLE: ETH_START, BTC_ORACLE: btc(lab.elapsed(t))},
                  oracle_delay_s=int(p["lag_blocks"]) * lab.block_time)
        lev = float(p["leverage"])
        for trader in longs:  # most of the risk in ETH, a BTC leg beside it
            await open_positions(lab, maker, [trader], ETH, ETH_START, sized(collateral, lev * 0.7, ETH_START, ETH))
            await open_positions(lab, maker, [trader], BTC, BTC_START, sized(collateral, lev * 0.3, BTC_START, BTC))
        lab.start_time()
        for _ in range(int(p["blocks"])):
            await lab.step()


class BlackThursday(Crash):
    """The real ETH path of 2020-03-12 (1-minute Binance perp closes), replayed `speed` times
    faster from `offset_min` into the day, with congestion: filler transactions outbidding the
    keepers fill most of each block, as on the day."""

    def path(self, p: dict):
        return CsvPath(PRICES / "eth_usdt_perp_binance_1m_20200312-13.csv", float(p["offset_min"]) * 60,
                       float(p["speed"]))

    def lab_args(self, p: dict) -> dict:
        return {"block_time": int(p.get("block_time", 1)), "gas_limit": int(p["gas_limit"])}

    async def run(self, lab: Lab, p: dict) -> None:
        rng = random.Random(lab.seed + 7)
        fillers, share = int(p["fillers_per_block"]), float(p["congested_share"])

        def congest(lab: Lab) -> None:  # most blocks full of higher bids, a few with room (seeded)
            lab.congest(fillers if rng.random() < share else fillers // 2, float(p["filler_tip_gwei"]))

        if fillers:
            lab.fillers.append(congest)
        await super().run(lab, p)


class Replay(Crash):
    """Levered longs through any CSV of prices (`csv`, a file in keeper/data/prices or a path),
    replayed `speed` times faster from `offset_min` into it."""

    def path(self, p: dict):
        csv_path = Path(p["csv"])
        return CsvPath(csv_path if csv_path.is_absolute() else PRICES / csv_path, float(p["offset_min"]) * 60,
                       float(p["speed"]))


class FlashCrash(Scenario):
    """The Chainlink ETH/USD and BTC/USD rounds of 2023-08-16/18 as the truth, both markets, the
    oracle keeper on Chainlink's cadence (a heartbeat of an hour, a 0.5 % deviation), replayed
    `speed` times faster from `offset_min`: cross-margin longs in both markets."""

    async def run(self, lab: Lab, p: dict) -> None:
        speed, offset = float(p["speed"]), float(p["offset_min"]) * 60
        eth = CsvPath(PRICES / "chainlink_eth_usd_mainnet_20230816-18.csv", offset, speed)
        btc = CsvPath(PRICES / "chainlink_btc_usd_mainnet_20230816-18.csv", offset, speed)
        lab.fund_keepers()
        maker, longs = lab.traders[0], lab.traders[1:1 + int(p["accounts"])]
        lab.fund([maker], usdc(10_000_000))
        collateral = usdc(int(p["collateral_usdc"]))
        lab.fund(longs, collateral)
        e0, b0 = on_tick(eth(0), ETH), on_tick(btc(0), BTC)
        lab.push_prices({ETH_ORACLE: e0, BTC_ORACLE: b0})
        await lab.begin(lambda t: {ETH_ORACLE: eth(lab.elapsed(t)), BTC_ORACLE: btc(lab.elapsed(t))},
                        heartbeat_s=3600 / speed, deviation_bps=50)
        lev = float(p["leverage"])
        for trader in longs:
            await open_positions(lab, maker, [trader], ETH, e0, sized(collateral, lev / 2, e0, ETH))
            await open_positions(lab, maker, [trader], BTC, b0, sized(collateral, lev / 2, b0, BTC))
        lab.start_time()
        for _ in range(int(p["blocks"])):
            await lab.step()


class BadPrint(Crash):
    """A flat true price, but what the oracle keeper observes carries one wrong print: a CEX
    outlier `outlier_pct` below at `print_at_s`, then a value `spike_x` times too high at
    `spike_at_s`. The keeper's outlier guard (`guard_bps`, 2,000: a jump that large waits for
    confirmation) holds both back: `oracle_held` events, nothing liquidated. With
    `--set guard_bps=0` both go on-chain (the Oracle contract trusts its keepers) and the events
    show who is liquidated at a price that never traded."""

    def path(self, p: dict):
        return crash_path(ETH_START, 10**9, 0, 1)  # flat

    def observed(self, p: dict, truth):
        at, spike_at = float(p["print_at_s"]), float(p["spike_at_s"])

        def seen(elapsed: float, price: int) -> int:
            if at <= elapsed < at + 1:
                return price * (100 - int(p["outlier_pct"])) // 100
            if spike_at <= elapsed < spike_at + 1:
                return min(price * int(p["spike_x"]), 2**64 - 1)
            return price
        return seen


class OperatorSilence(Crash):
    """The operator stops settling after `silent_after_s`; a trader requests an exit on-chain;
    once no batch has settled for the escape delay (60 s on the devnet) a bystander freezes the
    venue and every account leaves with `exitFrozen`. Adds `exit_shortfall_usdc`: by how much what
    the accounts were paid falls short of their equity at the frozen marks (0: nothing lost)."""

    async def run(self, lab: Lab, p: dict) -> None:
        await super().run(lab, dict(p, blocks=int(p["silent_after_s"]) // lab.block_time))
        lab.venue_silent = True  # the operator is gone: no more batches
        w3, ch = lab.w3, lab.ch
        requester, bystander = lab.traders[1], lab.traders[2]
        w3.eth.send_transaction({"from": requester.address, "to": ch.address,
                                 "data": ch.encode_abi("requestExit", [])})
        delay = ch.functions.riskParams().call()[5]
        for _ in range(delay // lab.block_time + 2):
            await lab.step()
        w3.eth.send_transaction({"from": bystander.address, "to": ch.address,
                                 "data": ch.encode_abi("freeze", [requester.address])})
        await lab.step()
        frozen = ch.functions.frozenAt().call()
        lab.log("frozen", at=frozen - lab.origin if frozen else None)
        owed = {a: ch.functions.health(a).call()[0] for a in lab.watch}  # equity at the frozen marks
        for address in lab.watch:
            w3.eth.send_transaction({"from": address, "to": ch.address, "data": ch.encode_abi("exitFrozen", [])})
        await lab.step()
        paid = {ev.args.account: ev.args.quote for ev in ch.events.ExitedFrozen().get_logs(
            from_block=w3.eth.block_number, to_block=w3.eth.block_number)}
        for address in lab.watch:
            lab.log("exit", account=address, equity=str(owed[address]), paid=str(paid.get(address, 0)))
        lab.extra["exit_shortfall_usdc"] = sum(max(0, owed[a] - paid.get(a, 0)) for a in lab.watch) / 1e6
        lab.extra["frozen"] = bool(frozen)


class CompoundStress(Crash):
    """What single-factor stress tests miss: a funding spike, oracle lag and one-sided
    deleveraging at once. The maker quotes the book `premium_bps` above the oracle price every
    block, so the funding keeper (every `funding_interval_s`, from the venue's own book) posts a
    rate at or near the market's cap that the longs pay; the oracle is `lag_blocks` late through
    the fall; the insurance fund is empty, so a shortfall is deleveraged against the shorts.
    Blocks are 12 s long (a mainnet-like cadence; the oracle's 60 s age limit rules out longer), so
    half an hour of funding passes in 150 blocks."""

    def lab_args(self, p: dict) -> dict:
        return {"block_time": int(p["block_time"]), "gas_limit": 30_000_000}

    def during(self, lab: Lab, p: dict, maker):
        premium, quoted = int(p["premium_bps"]), []

        async def requote(lab: Lab) -> None:
            for oid in quoted:
                try:
                    lab.venue.cancel(maker.address, oid, None)
                except Exception:  # noqa: BLE001: gone already
                    pass
            quoted.clear()
            oracle = lab.venue.engine.markets[ETH].oracle_price
            for is_buy, bps in ((True, premium - 10), (False, premium + 10)):
                ack = await lab.order(maker, ETH, is_buy, on_tick(oracle * (10_000 + bps) // 10_000, ETH),
                                      LOTS[ETH] * 500, tif="Alo")
                if ack is not None and ack.order_id:
                    quoted.append(ack.order_id)
        return requote


def bursty_walk(start: int, seed: int, p: dict):
    """A seeded one-second walk: calm steps of `calm_bps` (standard deviation) and, every
    `burst_every_s` from `burst_at_s` for `burst_s`, a trend of `burst_drift_bps` a second (its
    direction drawn) with `burst_bps` noise: the volatile micro-epochs informed flow feeds on."""
    rng = random.Random(seed)
    walk = [start]
    direction = {}

    def price(t: float) -> int:
        step = max(0, int(t))
        while len(walk) <= step:
            k = len(walk)
            since = k - float(p["burst_at_s"])
            epoch = int(since // float(p["burst_every_s"])) if since >= 0 else -1
            in_burst = epoch >= 0 and since - epoch * float(p["burst_every_s"]) < float(p["burst_s"])
            if in_burst:
                d = direction.setdefault(epoch, rng.choice((-1, 1)))
                bps = d * float(p["burst_drift_bps"]) + rng.gauss(0, float(p["burst_bps"]))
            else:
                bps = rng.gauss(0, float(p["calm_bps"]))
            walk.append(max(1, int(walk[-1] * (1 + bps / 10_000))))
        return walk[step]
    return price


class ToxicFlow(Scenario):
    """The reference market maker (keeper mm's strategy) quoting ETH-PERP against noise takers and
    informed takers who see the true price `lead_s` seconds before the oracle does. The same seed
    runs twice, the bot adaptive and static (the second run on its own chain, in `static/`); the
    metrics add each run's 5-second markout per unit of volume and its quote-update rate."""

    async def run(self, lab: Lab, p: dict) -> None:
        adaptive = await self.run_one(lab, p, adaptive=True)
        static_lab = Lab(lab.out / "static", seed=lab.seed, **self.lab_args(p))
        try:
            static_lab.start_chain()
            static = await self.run_one(static_lab, p, adaptive=False)
        finally:
            static_lab.stop()
        lab.extra.update({
            "markout_5s_bps_adaptive": adaptive["markout_5s"], "markout_5s_bps_static": static["markout_5s"],
            "mm_volume_usdc_adaptive": adaptive["volume"], "mm_volume_usdc_static": static["volume"],
            "mm_pnl_usdc_static": static["pnl"],
            "mm_quote_updates_per_s_adaptive": adaptive["rate"], "mm_quote_updates_per_s_static": static["rate"],
            "mm_max_updates_per_s": float(p["max_updates_per_s"]),
            "mm_regime_changes_adaptive": adaptive["regimes"],
        })

    async def run_one(self, lab: Lab, p: dict, adaptive: bool) -> dict:
        eth = bursty_walk(ETH_START, lab.seed, p)
        lab.fund_keepers()
        informed = lab.traders[1]
        noise = lab.traders[2:2 + int(p["noise_takers"])]
        maker = market_maker_account(lab)
        lab.fund([informed], usdc(1_000_000))
        lab.fund(noise, usdc(200_000))
        lab.push_prices({ETH_ORACLE: ETH_START, BTC_ORACLE: BTC_START})
        await lab.begin(lambda t: {ETH_ORACLE: eth(lab.elapsed(t)), BTC_ORACLE: BTC_START},
                        oracle_delay_s=float(p["lead_s"]), heartbeat_s=float(p["heartbeat_s"]),
                        deviation_bps=int(p["deviation_bps"]))
        lab.start_time()
        mm = add_market_maker(lab, maker, levels=int(p["levels"]), level_notional_usdc=float(p["level_usdc"]),
                              adaptive=adaptive, max_updates_per_s=float(p["max_updates_per_s"]),
                              burst=int(p["max_updates_per_s"]) * 2, one_sided_fills=int(p["one_sided_fills"]),
                              cooldown_s=float(p["cooldown_s"]))
        flow = random.Random(lab.seed + 1)
        edge = float(p["informed_edge_bps"])

        async def on_block(lab: Lab) -> None:
            true = eth(lab.elapsed(lab.now()))
            bids, asks = lab.venue.engine.l2(ETH, 1)
            if asks and true > asks[0][0] * (1 + edge / 10_000):
                await lab.order(informed, ETH, True, on_tick(int(true * (1 - edge / 10_000)), ETH),
                                LOTS[ETH] * int(p["informed_lots"]), tif="Ioc")
            elif bids and true < bids[0][0] * (1 - edge / 10_000):
                await lab.order(informed, ETH, False, on_tick(int(true * (1 + edge / 10_000)), ETH) + TICKS[ETH],
                                LOTS[ETH] * int(p["informed_lots"]), tif="Ioc")
            for taker in noise:
                if flow.random() < float(p["noise_probability"]):
                    buy = flow.random() < 0.5
                    oracle = lab.venue.engine.markets[ETH].oracle_price
                    px = oracle * (10_000 + (100 if buy else -100)) // 10_000
                    await lab.order(taker, ETH, buy, on_tick(px, ETH), LOTS[ETH] * flow.randint(10, 60), tif="Ioc")

        for _ in range(int(p["blocks"])):
            await lab.step(on_block)
        for _ in range(60):  # the last fills' markouts come due (no more flow)
            await lab.step()
        await lab.settle_all()
        tele = mm.telemetry
        return {"markout_5s": tele.markout(5), "volume": round(tele.summary()["volume_usdc"], 6),
                "pnl": round(tele.pnl()["total"], 6), "rate": round(mm.updates_per_s(), 6),
                "regimes": len(tele.regimes)}


class MMWithdrawal(Crash):
    """The reference market maker (adaptive) quotes ETH-PERP beside levered longs (`mm` = 1); a
    fall starts and, in the volatile epoch, the bot widens and pulls its quotes. The longs'
    stop-losses (an IOC sell of the whole position once the oracle is `stop_pct` under the start)
    meet a thin book and fill little; the rest is liquidated on-chain and, with an empty insurance
    fund, the shortfall deleveraged. Adds `book_depth_min_usdc` (bids within 2 % of the oracle
    price in the thinnest block after the fall began), `mm_pulled_s` and `stop_loss_fill_ratio`."""

    def during(self, lab: Lab, p: dict, maker):
        mm = lab.makers[0]
        longs = lab.traders[1:1 + int(p["accounts"])]
        trigger = ETH_START * (100 - float(p["stop_pct"])) / 100
        asked: dict[str, int] = {}
        filled: dict[str, int] = {}
        depths: list[int] = []

        async def on_block(lab: Lab) -> None:
            oracle = lab.venue.engine.markets[ETH].oracle_price
            bids, _ = lab.venue.engine.l2(ETH, 500)
            depth = sum(px * size for px, size in bids if px * 100 >= oracle * 98) // 10**8
            lab.log("depth", market=ETH, bids_within_2pct=str(depth))
            if lab.elapsed(lab.now()) >= float(p["crash_at_s"]):
                depths.append(depth)
            for trader in longs:
                acct = lab.venue.engine.accounts.get(trader.address)
                pos = acct.positions[ETH][0] if acct is not None else 0
                if pos <= 0 or trader.address in asked or oracle > trigger:
                    continue
                asked[trader.address] = pos
                ack = await lab.order(trader, ETH, False, on_tick(oracle * 98 // 100, ETH), pos, tif="Ioc")
                filled[trader.address] = ack.filled if ack is not None else 0
                lab.log("stop_loss", account=trader.address, size=str(pos), filled=str(filled[trader.address]))
            pulled, since = 0.0, None
            for r in mm.telemetry.regimes:
                if r["state"] == "pulled" and since is None:
                    since = r["t"]
                elif r["state"] != "pulled" and since is not None:
                    pulled, since = pulled + r["t"] - since, None
            if since is not None:
                pulled += lab.now() - since
            lab.extra.update({"book_depth_min_usdc": min(depths) / 1e6 if depths else None, "mm_pulled_s": pulled,
                              "stop_loss_fill_ratio": sum(filled.values()) / sum(asked.values()) if asked else None})
        return on_block


CRASH_DEFAULTS = {"accounts": 4, "collateral_usdc": 20_000, "leverage": 12, "lag_blocks": 0, "heartbeat_s": 30,
                  "deviation_bps": 50, "crash_at_s": 5, "crash_pct": 20, "crash_over_s": 20, "blocks": 60,
                  "insurance_usdc": 0, "mm": 0, "block_time": 1, "guard_bps": 2_000}

SCENARIOS = {s.name: s for s in [
    Calm("calm", "two-sided flow around a slow walk, no shock: the baseline (no bad debt, small latencies)",
         {"takers": 3, "spread_bps": 5, "quote_lots": 200, "take_probability": 0.3, "blocks": 60, "block_time": 1}),
    Crash("oracle-lag", "levered longs through a 20 % fall with the oracle lag_blocks late: sweep lag_blocks to plot "
                        "bad debt against lag", dict(CRASH_DEFAULTS, lag_blocks=3)),
    CrossCascade("cross-cascade", "BTC crashes while ETH holds; cross-margin accounts lose their ETH legs too",
                 {"accounts": 3, "collateral_usdc": 20_000, "leverage": 12, "lag_blocks": 0, "crash_at_s": 5,
                  "crash_pct": 25, "crash_over_s": 20, "blocks": 60}),
    Crash("adl-shortfall", "an empty insurance fund and a gap down that bankrupts levered longs: ADL closes the "
                           "shortfall against the most profitable shorts",
          dict(CRASH_DEFAULTS, accounts=2, leverage=16, crash_pct=12, crash_over_s=0, lag_blocks=2)),
    FlashCrash("flash-crash-2023-08", "the Chainlink ETH/USD and BTC/USD rounds of 2023-08-16/18 on Chainlink's "
                                      "heartbeat and deviation cadence, cross-margin longs in both markets",
               {"accounts": 3, "collateral_usdc": 20_000, "leverage": 14, "offset_min": 1_950, "speed": 60,
                "blocks": 60}),
    BadPrint("bad-print", "one wrong oracle print (a CEX outlier, then a 1000x value) on a flat market: the "
                          "keeper's outlier guard holds both (guard_bps=0: both go on-chain and liquidate)",
             dict(CRASH_DEFAULTS, print_at_s=5, outlier_pct=30, spike_at_s=20, spike_x=1000, blocks=40)),
    OperatorSilence("operator-silence", "the venue stops settling; an exit request, the escape delay, a freeze; "
                                        "every account withdraws its equity at the frozen marks",
                    dict(CRASH_DEFAULTS, accounts=3, leverage=5, crash_pct=5, crash_at_s=3, crash_over_s=5,
                         silent_after_s=10)),
    Crash("mempool-race", "liquidations and oracle updates in the same blocks, ordered by priority fee: the "
                          "oracle bids oracle_tip_gwei against the liquidator's 2 (run it with 1 and with 5)",
          dict(CRASH_DEFAULTS, oracle_tip_gwei=5.0, liquidator_tips="2", lag_blocks=0, deviation_bps=20)),
    Crash("gas-war", "two liquidators bidding for the same accounts (tips liquidator_tips, gwei): gas spent "
                     "against profit, per keeper",
          dict(CRASH_DEFAULTS, liquidator_tips="2/6", accounts=6)),
    Crash("wrong-way-collateral", "ETH-PERP longs on WETH collateral while ETH falls: the static haircut, or "
                                  "keeper risk raising it (--set risk_keeper=1)",
          dict(CRASH_DEFAULTS, collateral_usdc=1_000, weth_per_account=10.0, leverage=8, crash_pct=30,
               crash_over_s=30, risk_keeper=0)),
    CompoundStress("compound-stress", "a funding spike (the book quoted above the oracle), oracle lag and one-sided "
                                      "deleveraging (an empty insurance fund) at once, in 12-second blocks",
                   dict(CRASH_DEFAULTS, block_time=12, heartbeat_s=12, premium_bps=300, funding_interval_s=300, lag_blocks=2,
                        crash_at_s=600, crash_pct=12, crash_over_s=600, blocks=120, leverage=10)),
    Replay("replay", "levered longs through any CSV of prices (the crash days in keeper/data/prices)",
           dict(CRASH_DEFAULTS, csv="eth_usd_coinapi_10m_20210519.csv", offset_min=0, speed=600, leverage=8,
                collateral_usdc=2_000, blocks=60)),
    ToxicFlow("toxic-flow", "the reference market maker against informed takers who see the true price lead_s "
                            "before the oracle: adaptive and static on the same seed, 5-second markouts compared",
              {"lead_s": 3.0, "heartbeat_s": 10, "deviation_bps": 5, "calm_bps": 0.5, "burst_at_s": 20,
               "burst_every_s": 150, "burst_s": 30, "burst_drift_bps": 4.0, "burst_bps": 3.0, "informed_edge_bps": 2.0,
               "informed_lots": 100, "noise_takers": 3, "noise_probability": 0.3, "levels": 5, "level_usdc": 5_000.0,
               "max_updates_per_s": 40.0, "one_sided_fills": 3,
               "cooldown_s": 20.0, "blocks": 200}),
    MMWithdrawal("mm-withdrawal", "the market maker pulls its quotes in a volatile epoch: stop-losses meet a thin "
                                  "book, liquidations follow, an empty insurance fund, ADL",
                 dict(CRASH_DEFAULTS, mm=1, accounts=3, leverage=16, crash_at_s=10, crash_pct=12, crash_over_s=4,
                      lag_blocks=2, stop_pct=3, blocks=40)),
    BlackThursday("black-thursday", "the real ETH path of 2020-03-12 with congestion delaying the oracle and "
                                    "underbidding the liquidators",
                  dict(CRASH_DEFAULTS, offset_min=600, speed=60, blocks=120, leverage=8, collateral_usdc=2_000,
                       gas_limit=3_000_000,
                       fillers_per_block=5, congested_share=0.7, filler_tip_gwei=20, lag_blocks=0, heartbeat_s=60,
                       deviation_bps=50)),
]}


def parse_params(scenario: Scenario, sets: list[str]) -> dict:
    """The scenario's defaults with `key=value` overrides, each typed like its default."""
    params = dict(scenario.defaults)
    for item in sets:
        key, _, value = item.partition("=")
        if key not in params:
            raise KeyError(f"{scenario.name} has no parameter {key!r} (it has {', '.join(sorted(params))})")
        default = params[key]
        params[key] = type(default)(float(value)) if isinstance(default, int) and not isinstance(default, bool) \
            else type(default)(value)
    return params
