"""`keeper mm --report FILE`: a market-maker run's summary table and plots from its telemetry.

FILE is the JSON-lines file the bot writes (`fill` records, at the fill and again with their
markouts, so a killed bot loses none; `state` records
with positions and the PnL split, `regime` changes, a closing `summary`). The table gives fills,
volume, PnL by component, realized spread and markouts per horizon; the plots (PNG, in a folder
named after the file) show inventory, the PnL split over time and the markout curves.
"""

from __future__ import annotations

import json
from pathlib import Path

from .mm import HORIZONS


def load(path: Path) -> dict:
    fills, states, regimes, summary = {}, [], [], None
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        kind = r.get("kind")
        if kind == "fill":  # written at the fill and again with its markouts: the last one counts
            fills[r["id"]] = r
        elif kind == "state":
            states.append(r)
        elif kind == "regime":
            regimes.append(r)
        elif kind == "summary":
            summary = r
    return {"fills": list(fills.values()), "states": states, "regimes": regimes, "summary": summary}


def markout_curve(fills: list[dict], reference: str) -> list[float | None]:
    """Notional-weighted mean markout (bps) at each horizon."""
    out = []
    for h in HORIZONS:
        num = den = 0.0
        for f in fills:
            v = f[f"markout_{reference}_bps"].get(f"{h}s")
            if v is not None:
                w = f["price"] * f["size"]
                num, den = num + v * w, den + w
        out.append(num / den if den else None)
    return out


def report(path: Path, out_dir: Path) -> dict:
    from rich.console import Console
    from rich.table import Table

    data = load(path)
    fills, states = data["fills"], data["states"]
    pnl = (data["summary"] or {}).get("pnl_usdc") or (states[-1]["pnl"] if states else {})
    curves = {ref: markout_curve(fills, ref) for ref in ("mid", "oracle")}
    table = Table(title=f"market maker: {path}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    volume = sum(f["price"] * f["size"] for f in fills) / 1e14
    table.add_row("fills", str(len(fills)))
    table.add_row("volume (USDC)", f"{volume:,.2f}")
    for k, v in pnl.items():
        table.add_row(f"PnL {k} (USDC)", f"{v:,.2f}")
    spreads = [(f["realized_spread_bps"], f["price"] * f["size"]) for f in fills]
    den = sum(w for _, w in spreads)
    table.add_row("realized spread (bps)", f"{sum(v * w for v, w in spreads) / den:.2f}" if den else "-")
    for ref, curve in curves.items():
        for h, v in zip(HORIZONS, curve):
            table.add_row(f"markout {h}s vs {ref} (bps)", "-" if v is None else f"{v:.2f}")
    table.add_row("regime changes", str(len(data["regimes"])))
    Console().print(table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = states[0]["t"] if states else 0
    fig, ax = plt.subplots(figsize=(8, 3))
    for symbol in (states[0]["position"] if states else {}):
        ax.plot([s["t"] - t0 for s in states], [s["position"][symbol] for s in states], label=symbol)
    ax.set(title="inventory", xlabel="seconds", ylabel="position (base units)")
    ax.legend(loc="best") if states else None
    fig.tight_layout()
    fig.savefig(out_dir / "inventory.png")
    fig, ax = plt.subplots(figsize=(8, 3))
    for component in ("spread", "inventory", "fees", "funding", "total"):
        ax.plot([s["t"] - t0 for s in states], [s["pnl"].get(component, 0) for s in states], label=component)
    ax.set(title="PnL split", xlabel="seconds", ylabel="USDC")
    ax.legend(loc="best") if states else None
    fig.tight_layout()
    fig.savefig(out_dir / "pnl.png")
    fig, ax = plt.subplots(figsize=(6, 3))
    for ref, curve in curves.items():
        ax.plot([h for h, v in zip(HORIZONS, curve) if v is not None], [v for v in curve if v is not None],
                marker="o", label=f"vs {ref}")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set(title="markouts (a loss is negative)", xlabel="seconds after the fill", ylabel="bps")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(out_dir / "markouts.png")
    plt.close("all")
    return {"fills": len(fills), "volume_usdc": volume, "pnl_usdc": pnl, "markouts": curves,
            "plots": sorted(str(p) for p in out_dir.glob("*.png"))}
