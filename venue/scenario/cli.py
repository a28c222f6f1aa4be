"""`venue scenario list | run | sweep`: the lab from the command line."""

from __future__ import annotations

import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# The lab (and matplotlib, through the report) load only when a scenario command runs: every
# other `venue` command builds this parser too, and would pay seconds of imports for nothing.

HEADLINE = ("bad_debt_usdc", "insurance_drawdown_usdc", "liquidations", "adl_events", "fills_settled",
            "longest_pending_tx_blocks")


def cmd_list(_args) -> int:
    from .scenarios import SCENARIOS

    table = Table(title="crossbook scenarios (venue scenario run NAME --set key=value)")
    for col in ("name", "purpose", "parameters (defaults)"):
        table.add_column(col, overflow="fold")
    for s in SCENARIOS.values():
        table.add_row(s.name, s.purpose, " ".join(f"{k}={v}" for k, v in s.defaults.items()))
    Console().print(table)
    return 0


def _summary(metrics: dict) -> Table:
    table = Table(title=f"{metrics['scenario']} seed {metrics['seed']}: {metrics['blocks']} blocks, "
                        f"{metrics['sim_seconds']} simulated s in {metrics['wall_seconds']} s")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if key in ("scenario", "seed", "params", "blocks", "sim_seconds", "wall_seconds"):
            continue
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    return table


def _scenario(name: str):
    from .scenarios import SCENARIOS

    scenario = SCENARIOS.get(name)
    if scenario is None:
        print(f"venue scenario: no scenario {name!r} (venue scenario list)", file=sys.stderr)
    return scenario


def cmd_run(args) -> int:
    from .lab import run_scenario
    from .scenarios import parse_params

    scenario = _scenario(args.name)
    if scenario is None:
        return 2
    try:
        params = parse_params(scenario, args.set)
    except (KeyError, ValueError) as exc:
        print(f"venue scenario: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or f"scenario-runs/{args.name}-seed{args.seed}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} blocks"),
                  TextColumn("sim {task.fields[sim]}"), TextColumn("{task.fields[events]} events"),
                  TextColumn("{task.fields[what]}"), TimeElapsedColumn()) as progress:
        task = progress.add_task(f"{args.name} seed {args.seed}", total=int(params.get("blocks", 0)) or None,
                                 sim="0:00:00", events=0, what="")
        metrics = run_scenario(scenario, seed=args.seed, params=params, out=out,
                               on_block=lambda lab: progress.update(task, completed=lab.run_blocks, **_progress(lab)))
    Console().print(_summary(metrics))
    print(f"wrote {out / 'metrics.json'}, {out / 'events.jsonl'} and {out / 'report.html'}")
    return 0


def _progress(lab) -> dict:
    """The progress line's fields: simulated time since the scenario's time 0, events written,
    and the running counts a user watches (liquidations, ADL, bad debt)."""
    t = int(lab.elapsed(lab.clock.now())) if lab.truth else 0
    rec = lab.record
    return {"sim": f"{t // 3600}:{t // 60 % 60:02d}:{t % 60:02d}", "events": len(rec.events),
            "what": f"{rec.liquidations} liq, {rec.adl_events} adl, bad debt {rec.bad_debt / 1e6:,.0f}"}


def _one(job: tuple) -> dict:
    from .lab import run_scenario
    from .scenarios import SCENARIOS

    name, seed, params, out = job
    return run_scenario(SCENARIOS[name], seed=seed, params=params, out=Path(out))


def sweep_grid(base: dict, sets: list[str]) -> list[dict]:
    """Every combination of the comma-separated values in `sets` (key=v1,v2,...) over `base`."""
    grid = [{}]
    for item in sets:
        key, _, values = item.partition("=")
        grid = [{**g, key: v} for g in grid for v in values.split(",")]
    return grid


def aggregate(runs: list[dict]) -> dict:
    """Across runs: mean, p95 and max of each number; VaR95 of bad debt and LaR95 of
    liquidations (the 95th percentile loss and liquidation count, as Gauntlet reports them)."""
    out = {}
    for key in HEADLINE:
        values = sorted(float(r[key]) for r in runs)
        out[key] = {"mean": statistics.fmean(values), "p95": values[min(len(values) - 1, int(0.95 * len(values)))],
                    "max": values[-1]}
    out["VaR95_bad_debt_usdc"] = out["bad_debt_usdc"]["p95"]
    out["LaR95_liquidations"] = out["liquidations"]["p95"]
    return out


def _sweep_runs(jobs: list[tuple], args):
    """The runs' metrics as they finish: on local worker processes, or (`--cluster ADDRESS`) on a
    Dask cluster, each run on a worker with its own Anvil. Why Dask and not Ray: it is pure Python
    and pip-installs offline in seconds; a cluster is `dask scheduler` plus `dask worker ADDRESS`
    on each machine (run from this project's environment, so `venue` imports and Anvil is on
    PATH), with no object store or daemons beyond those; a run is a plain function of its job."""
    if args.cluster:
        from distributed import Client, as_completed

        with Client(args.cluster) as client:
            for future in as_completed(client.map(_one, jobs, pure=False)):
                yield future.result()
        return
    with ProcessPoolExecutor(args.workers) as pool:
        yield from pool.map(_one, jobs)


def cmd_sweep(args) -> int:
    from .report import write_sweep_report
    from .scenarios import parse_params

    scenario = _scenario(args.name)
    if scenario is None:
        return 2
    out = Path(args.out or f"scenario-runs/{args.name}-sweep")
    jobs = []
    for combo in sweep_grid(scenario.defaults, args.set):
        params = parse_params(scenario, [f"{k}={v}" for k, v in combo.items()])
        tag = "-".join(f"{k}{v}" for k, v in combo.items()) or "defaults"
        jobs += [(args.name, seed, params, str(out / tag / f"seed{seed}")) for seed in range(1, args.seeds + 1)]
    runs = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
                  TimeElapsedColumn()) as progress:
        task = progress.add_task(f"{args.name} sweep", total=len(jobs))
        for metrics in _sweep_runs(jobs, args):
            runs.append(metrics)
            progress.advance(task)
    runs.sort(key=lambda r: (json.dumps(r["params"], sort_keys=True), r["seed"]))
    groups: dict[str, list] = {}
    for r in runs:
        groups.setdefault(json.dumps(r["params"], sort_keys=True), []).append(r)
    summary = {"scenario": args.name, "seeds": args.seeds, "runs": runs,
               "groups": [{"params": json.loads(k), "across_seeds": aggregate(v)} for k, v in groups.items()]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    swept = [item.partition("=")[0] for item in args.set if "," in item]
    write_sweep_report(out, summary, swept)
    table = Table(title=f"{args.name}: {len(runs)} runs")
    table.add_column("params")
    for key in ("bad_debt_usdc", "liquidations", "adl_events"):
        table.add_column(f"{key} mean / p95 / max", justify="right")
    for g in summary["groups"]:
        a = g["across_seeds"]
        table.add_row(json.dumps({k: v for k, v in g["params"].items() if k in {s.partition('=')[0] for s in args.set}}),
                      *(f"{a[k]['mean']:.2f} / {a[k]['p95']:.2f} / {a[k]['max']:.2f}"
                        for k in ("bad_debt_usdc", "liquidations", "adl_events")))
    Console().print(table)
    print(f"wrote {out / 'sweep.json'} and {out / 'sweep.html'}")
    return 0


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("scenario", help="the scenario lab: named stress scenarios in simulated time",
                       description="Runs a named scenario on its own Anvil with the real venue and keepers in "
                                   "simulated time (blocks mined at explicit times, the mempool ordered by fees). "
                                   "list: every scenario, one line each, with its parameters. run NAME: one run, "
                                   "writing DIR/metrics.json and DIR/events.jsonl. sweep NAME: many seeds (and "
                                   "parameter values) on local worker processes or a Dask cluster (--cluster), "
                                   "writing sweep.json.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("action", choices=["list", "run", "sweep"])
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--seed", type=int, default=1, help="run: the seed")
    p.add_argument("--seeds", type=int, default=10, help="sweep: seeds 1..N")
    p.add_argument("--set", action="append", default=[], help="key=value (sweep: key=v1,v2,...); repeatable")
    p.add_argument("--out", default=None, help="output folder (default scenario-runs/NAME-...)")
    p.add_argument("--workers", type=int, default=2, help="sweep: local worker processes")
    p.add_argument("--cluster", default=None,
                   help="sweep: a Dask scheduler address (tcp://HOST:8786); each run goes to one of its workers")
    p.set_defaults(fn=lambda args: {"list": cmd_list, "run": cmd_run, "sweep": cmd_sweep}[args.action](args)
                   if args.action == "list" or args.name else _need_name(args))


def _need_name(args) -> int:
    print(f"venue scenario {args.action}: name a scenario (venue scenario list)", file=sys.stderr)
    return 2
