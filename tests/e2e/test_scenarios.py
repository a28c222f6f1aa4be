"""The scenario lab: each scenario runs a short version on its own Anvil with the real venue and
keepers in simulated time; a run is byte-for-byte repeatable; the metrics agree with the events
file, recomputed here independently."""

import json
from collections import Counter

import pytest

from venue.scenario.lab import run_scenario
from venue.scenario.scenarios import SCENARIOS, parse_params

SHORT = {"calm": ["blocks=20"], "oracle-lag": ["blocks=30"], "cross-cascade": ["blocks=30"],
         "adl-shortfall": ["blocks=20"], "black-thursday": ["blocks=30"], "operator-silence": [],
         "bad-print": ["blocks=23"], "replay": ["blocks=30"], "flash-crash-2023-08": ["blocks=30"],
         "gas-war": ["blocks=15", "accounts=3"], "wrong-way-collateral": ["blocks=25", "risk_keeper=1"],
         "compound-stress": ["blocks=50", "crash_at_s=60"], "mm-withdrawal": ["blocks=25"]}


def events(out):
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def recomputed(evs: list[dict]) -> dict:
    """The metrics the events file supports, computed from it alone."""
    liq = [e for e in evs if e["kind"] == "liquidation"]
    rejected = Counter(e["reason"] for e in evs if e["kind"] == "fill_rejected")
    return {
        "liquidations": len(liq),
        "adl_events": sum(1 for e in evs if e["kind"] == "adl"),
        "bad_debt_usdc": sum(int(e["amount"]) for e in evs if e["kind"] == "bad_debt") / 1e6,
        "fills_settled": sum(1 for e in evs if e["kind"] == "fill" and e["status"] == "settled"),
        "fills_rejected": dict(sorted(rejected.items())),
        "longest_pending_tx_blocks": max([0] + [e["oldest_blocks"] for e in evs if e["kind"] == "pending"]),
        "latency_max": max([e["latency_blocks"] for e in liq], default=None),
    }


@pytest.mark.parametrize("name", sorted(SHORT))
def test_each_scenario_runs_and_its_metrics_match_its_events(name, tmp_path):
    scenario = SCENARIOS[name]
    m = run_scenario(scenario, seed=1, params=parse_params(scenario, SHORT[name]), out=tmp_path)
    for key in ("scenario", "seed", "params", "sim_seconds", "wall_seconds", "blocks", "bad_debt_usdc",
                "insurance_fund_min_usdc", "insurance_drawdown_usdc", "liquidations", "liquidation_latency_blocks",
                "liquidation_latency_s", "liquidatable_at_true_price_s", "oracle_age_at_liquidation_s",
                "longest_pending_tx_blocks", "fills_settled", "fills_rejected", "adl_events", "keeper_pnl_usdc",
                "keeper_gas_eth", "mm_pnl_usdc", "mm_markout_bps", "state_hash"):
        assert key in m, key
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
    report = (tmp_path / "report.html").read_text()  # the plots, drawn from the events file
    assert report.count("data:image/png;base64,") >= 4 and "insurance fund" in report
    r = recomputed(events(tmp_path))
    assert {k: m[k] for k in r if k != "latency_max"} == {k: v for k, v in r.items() if k != "latency_max"}
    assert m["liquidation_latency_blocks"]["max"] == r["latency_max"]
    pushes = [e for e in events(tmp_path) if e["kind"] == "oracle_push"]
    assert pushes and all(e["sent_at"] >= e["observed_at"] for e in pushes)
    # Every fill line agrees with the batches that settled it; each rejected one carries its reason.
    evs = events(tmp_path)
    fills = [e for e in evs if e["kind"] == "fill"]
    assert len(fills) == sum(e["fills"] for e in evs if e["kind"] == "batch")
    assert Counter(e["reason"] for e in fills if e["status"] == "rejected") == Counter(m["fills_rejected"])
    # What each scenario is for.
    if name == "calm":
        assert m["fills_settled"] >= 5 and m["liquidations"] == 0 and m["bad_debt_usdc"] == 0
    elif name in ("oracle-lag", "cross-cascade"):
        assert m["liquidations"] >= 1 and m["liquidation_latency_blocks"]["max"] is not None
    elif name == "adl-shortfall":
        assert m["adl_events"] >= 1 and m["bad_debt_usdc"] == 0
    elif name == "black-thursday":
        assert m["longest_pending_tx_blocks"] >= 2  # the congestion held transactions back
    elif name in ("replay", "flash-crash-2023-08"):
        assert m["liquidations"] + m["adl_events"] >= 1
    elif name == "bad-print":
        # The keeper's outlier guard held both prints (the 30 % outlier, then the 1000x value):
        # every push carried the true price, nobody was liquidated.
        held = [e for e in events(tmp_path) if e["kind"] == "oracle_held"]
        assert {int(e["price"]) * 10 // int(e["true"]) for e in held} == {7, 10_000}, held
        assert m["oracle_prints_held"] == len(held) == 2
        assert all(e["prices"].get("0", e["true"]["0"]) == e["true"]["0"] for e in pushes)
        assert m["liquidations"] + m["adl_events"] == 0 and m["bad_debt_usdc"] == 0
    elif name == "gas-war":
        gas = m["keeper_gas_eth"]
        assert m["liquidations"] >= 1 and gas["liquidator1"] > 0 and gas["liquidator2"] > 0
        winners = Counter(e["liquidator"] for e in events(tmp_path) if e["kind"] == "liquidation")
        assert len(winners) >= 1
    elif name == "wrong-way-collateral":
        assert m["keeper_gas_eth"]["risk"] > 0  # keeper risk raised the WETH haircut on the fall
        assert m["liquidations"] >= 1
    elif name == "compound-stress":
        rates = [int(e["rate_per_hour"]) for e in events(tmp_path) if e["kind"] == "funding" and e["market"] == 0]
        assert rates and max(rates) > 0  # the skewed book made the longs pay
        assert m["liquidations"] + m["adl_events"] >= 1
    elif name == "mm-withdrawal":
        evs = events(tmp_path)
        stops = [e for e in evs if e["kind"] == "stop_loss"]
        assert m["mm_pulled_s"] > 0 and m["book_depth_min_usdc"] == 0  # the maker pulled: no bids near the price
        assert stops and m["stop_loss_fill_ratio"] == sum(int(e["filled"]) for e in stops) / sum(
            int(e["size"]) for e in stops) == 0
        assert m["adl_events"] >= 1 and m["bad_debt_usdc"] == 0  # the shortfall deleveraged, none socialised
        depths = [int(e["bids_within_2pct"]) for e in evs if e["kind"] == "depth"]
        assert depths[0] > 0 and min(depths) == 0  # quoted before the fall, empty during it
        # The venue's alert rules, on the simulated clock: the empty insurance fund against a 10 %
        # move, the levered longs near liquidation, then (raised once) the pulled quotes.
        raised = [e["key"] for e in evs if e["kind"] == "alert" and e["event"] == "raised"]
        assert {"insurance_shortfall", "near_liquidation", "quotes_pulled:ETH-PERP"} <= set(raised), raised
        assert raised.count("quotes_pulled:ETH-PERP") == 1
    elif name == "operator-silence":
        exits = [e for e in events(tmp_path) if e["kind"] == "exit"]
        assert m["frozen"] and exits and all(e["paid"] == e["equity"] for e in exits)
        assert m["exit_shortfall_usdc"] == sum(max(0, int(e["equity"]) - int(e["paid"])) for e in exits) / 1e6 == 0


def test_bad_print_without_the_guard_goes_on_chain_and_liquidates(tmp_path):
    """`--set guard_bps=0`: the Oracle contract trusts its keepers, so the 30 % outlier is pushed
    and the levered longs are closed at a price that never traded."""
    scenario = SCENARIOS["bad-print"]
    m = run_scenario(scenario, seed=1, params=parse_params(scenario, ["blocks=12", "guard_bps=0"]), out=tmp_path)
    pushes = [e for e in events(tmp_path) if e["kind"] == "oracle_push"]
    assert any(e["prices"]["0"] != e["true"]["0"] for e in pushes)
    assert m["oracle_prints_held"] == 0 and m["liquidations"] + m["adl_events"] >= 1


def test_same_seed_same_run_byte_for_byte(tmp_path):
    scenario = SCENARIOS["oracle-lag"]
    params = parse_params(scenario, ["blocks=20", "lag_blocks=2"])
    a = run_scenario(scenario, seed=3, params=params, out=tmp_path / "a")
    b = run_scenario(scenario, seed=3, params=params, out=tmp_path / "b")
    assert (tmp_path / "a" / "events.jsonl").read_bytes() == (tmp_path / "b" / "events.jsonl").read_bytes()
    a.pop("wall_seconds"), b.pop("wall_seconds")
    assert a == b and a["liquidations"] >= 1


def test_mempool_race_fee_ordering_decides_what_the_liquidations_see(tmp_path):
    """The same crash twice: the oracle's update outbidding the liquidator (5 gwei against 2), then
    underbidding it (1): in one block both land, and the order decides which price a liquidation
    is measured at. The outcomes differ."""
    scenario = SCENARIOS["mempool-race"]
    runs = {tip: run_scenario(scenario, seed=1, params=parse_params(scenario, ["blocks=16", f"oracle_tip_gwei={tip}"]),
                              out=tmp_path / str(tip)) for tip in ("5", "1")}
    assert all(r["liquidations"] >= 1 for r in runs.values())
    assert (runs["5"]["liquidations"], runs["5"]["adl_events"]) != (runs["1"]["liquidations"], runs["1"]["adl_events"])


def test_a_sweep_on_a_local_two_worker_dask_cluster_matches_local_runs(tmp_path):
    """`venue scenario sweep --cluster`: a Dask scheduler and two workers started here (from this
    environment), two seeds; each run's metrics equal the same run done in this process."""
    import subprocess
    import sys
    from pathlib import Path

    from distributed import Client

    from venue.devchain import free_port, stop_process, wait_until

    bin_dir = Path(sys.executable).parent
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([bin_dir / "dask", "scheduler", "--port", str(port), "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = None
    try:
        def up():
            try:
                with Client(address, timeout=2):
                    return True
            except OSError:
                return False
        wait_until(up, 60, "the Dask scheduler")
        workers = subprocess.Popen([bin_dir / "dask", "worker", address, "--nworkers", "2", "--nthreads", "1",
                                    "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
        out = tmp_path / "sweep"
        done = subprocess.run([bin_dir / "venue", "scenario", "sweep", "oracle-lag", "--seeds", "2", "--set", "blocks=12",
                               "--cluster", address, "--out", str(out)], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        sweep = json.loads((out / "sweep.json").read_text())
        assert [r["seed"] for r in sweep["runs"]] == [1, 2]
        scenario = SCENARIOS["oracle-lag"]
        local = run_scenario(scenario, seed=2, params=parse_params(scenario, ["blocks=12"]), out=tmp_path / "local")
        remote = sweep["runs"][1]
        assert remote["state_hash"] == local["state_hash"] and remote["liquidations"] == local["liquidations"]
        assert "VaR95_bad_debt_usdc" in sweep["groups"][0]["across_seeds"]
        assert "oracle-lag: 2 runs" in (out / "sweep.html").read_text()
    finally:
        if workers is not None:
            stop_process(workers)
        stop_process(scheduler)


def test_toxic_flow_the_adaptive_bot_loses_at_most_half_what_the_static_one_does_per_unit_of_volume(tmp_path):
    scenario = SCENARIOS["toxic-flow"]
    m = run_scenario(scenario, seed=1, params=parse_params(scenario, ["blocks=120"]), out=tmp_path)
    static, adaptive = m["markout_5s_bps_static"], m["markout_5s_bps_adaptive"]
    assert static < 0, m  # informed flow picks the static quotes off
    assert max(0.0, -adaptive) <= 0.5 * -static, m
    assert m["mm_volume_usdc_adaptive"] > 0 and m["mm_volume_usdc_static"] > 0
    assert m["mm_regime_changes_adaptive"] >= 2  # it widened or pulled, and came back
    for rate in (m["mm_quote_updates_per_s_adaptive"], m["mm_quote_updates_per_s_static"]):
        assert 0 < rate <= m["mm_max_updates_per_s"]
    # The headline figure is the bot's own telemetry, recomputed here from its file.
    fills = {}
    for line in (tmp_path / "mm-telemetry.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["kind"] == "fill":
            fills[r["id"]] = r
    num = sum(f["markout_mid_bps"]["5s"] * f["price"] * f["size"] for f in fills.values()
              if f["markout_mid_bps"]["5s"] is not None)
    den = sum(f["price"] * f["size"] for f in fills.values() if f["markout_mid_bps"]["5s"] is not None)
    assert num / den == pytest.approx(adaptive)
    assert m["mm_markout_bps"]["5s"] == pytest.approx(adaptive, abs=1e-5)
    assert (tmp_path / "static" / "mm-telemetry.jsonl").exists()
    report = (tmp_path / "report.html").read_text()
    assert "market maker inventory" in report and "market maker markouts" in report and "book mid" in report


def test_the_market_maker_sends_nothing_for_thirty_seconds_of_an_unchanged_price(tmp_path):
    """In simulated time: after its first quotes, 30 one-second blocks with the same oracle
    price and no flow bring no quote update and leave the same orders on the book."""
    import asyncio

    from keeper.mm import MMConfig
    from keeper.mm_run import agent_key_for
    from venue.scenario.lab import Lab, LabMarketMaker
    from venue.signing import address_of

    async def run(lab: Lab) -> None:
        maker = lab.traders[0]
        lab.fund([maker], 2_000_000 * 10**6)
        lab.approve_agent(maker, address_of(agent_key_for(maker.key)))
        lab.push_prices({0: 3_000 * 10**6, 1: 60_000 * 10**6})
        await lab.begin(lambda t: {0: 3_000 * 10**6, 1: 60_000 * 10**6}, heartbeat_s=3600)
        mm = LabMarketMaker(lab, maker, MMConfig(levels=3), markets=(0, 1))
        lab.makers.append(mm)
        for _ in range(2):
            await lab.step()
        quoted = {o.id for o in lab.venue.engine.open_orders(maker.address)}
        updates, messages = mm.telemetry.updates, mm.telemetry.messages
        assert len(quoted) == 12 and updates == 12 and messages == 1
        for _ in range(30):
            await lab.step()
        assert (mm.telemetry.updates, mm.telemetry.messages) == (updates, messages)
        assert {o.id for o in lab.venue.engine.open_orders(maker.address)} == quoted

    lab = Lab(tmp_path, seed=1)
    try:
        lab.start_chain()
        asyncio.run(run(lab))
    finally:
        lab.stop()
