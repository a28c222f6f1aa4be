"""`report.html` for a scenario run: plots (matplotlib, embedded as PNGs) drawn from the run's
events file alone, and its metrics as a table."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from ..domain import DEVNET_MARKETS  # noqa: E402

USDC = 1e6


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def figures(events: list[dict]) -> list[tuple[str, str]]:
    """(title, base64 PNG) for each plot the events support."""
    blocks = [e for e in events if e["kind"] == "block" and e["t"] >= 0]
    out = []
    if blocks:
        t = [e["t"] for e in blocks]
        for m, p in enumerate(DEVNET_MARKETS):
            fig, ax = plt.subplots(figsize=(8, 3))
            ax.plot(t, [int(e["true"][str(m)]) / USDC for e in blocks], label="true price")
            ax.step(t, [int(e["oracle"][str(m)]) / USDC for e in blocks], where="post", label="oracle (venue's view)")
            mids = [(e["t"], int(e["mid"][str(m)]) / USDC) for e in blocks if (e.get("mid") or {}).get(str(m))]
            if mids:
                ax.plot([x for x, _ in mids], [y for _, y in mids], linewidth=0.8, label="book mid")
            liq = [e for e in events if e["kind"] == "liquidation" and e["market"] == m and e["t"] >= 0]
            if liq:
                ax.scatter([e["t"] for e in liq], [int(blocks[min(len(blocks) - 1, max(0, int(e["t"]) - int(t[0])))]
                                                        ["oracle"][str(m)]) / USDC for e in liq],
                           color="red", marker="x", label="liquidation", zorder=3)
            ax.set_xlabel("s")
            ax.set_ylabel("USDC")
            ax.legend(fontsize=7)
            out.append((f"{p.symbol}: true price, oracle price, book mid, liquidations", _png(fig)))
        fig, ax = plt.subplots(figsize=(8, 2.5))
        ax.plot(t, [int(e["insurance"]) / USDC for e in blocks])
        ax.set_xlabel("s")
        ax.set_ylabel("USDC")
        out.append(("insurance fund", _png(fig)))
        fig, ax = plt.subplots(figsize=(8, 2.5))
        for m, p in enumerate(DEVNET_MARKETS):
            ax.plot(t, [int(e["open_interest"][m]) / 1e8 for e in blocks], label=p.symbol)
        ax.set_xlabel("s")
        ax.set_ylabel("open interest (base)")
        ax.legend(fontsize=7)
        out.append(("open interest (long side)", _png(fig)))
    liq = [e for e in events if e["kind"] == "liquidation"]
    if liq:
        fig, ax = plt.subplots(figsize=(8, 2.5))
        ax.scatter([e["t"] for e in liq], [e["latency_blocks"] for e in liq])
        ax.set_xlabel("s")
        ax.set_ylabel("blocks")
        out.append(("liquidation latency (first block liquidatable at the oracle price to the liquidation)", _png(fig)))
    pending = [e for e in events if e["kind"] == "pending"]
    if pending:
        fig, ax = plt.subplots(figsize=(8, 2.5))
        ax.step([e["t"] for e in pending], [e["oldest_blocks"] for e in pending], where="post")
        ax.set_xlabel("s")
        ax.set_ylabel("blocks")
        out.append(("oldest pending transaction's age", _png(fig)))
    return out


def mm_figures(path: Path) -> list[tuple[str, str]]:
    """The market maker's inventory and markout curves, from its telemetry file."""
    from keeper.mm import HORIZONS
    from keeper.mm_report import load, markout_curve

    data = load(path)
    out = []
    if data["states"]:
        t0 = data["states"][0]["t"]
        fig, ax = plt.subplots(figsize=(8, 2.5))
        for symbol in data["states"][0]["position"]:
            ax.plot([s["t"] - t0 for s in data["states"]], [s["position"][symbol] for s in data["states"]], label=symbol)
        ax.set_xlabel("s")
        ax.set_ylabel("position (base)")
        ax.legend(fontsize=7)
        out.append((f"market maker inventory ({path.name})", _png(fig)))
    if data["fills"]:
        fig, ax = plt.subplots(figsize=(6, 2.5))
        for ref in ("mid", "oracle"):
            curve = markout_curve(data["fills"], ref)
            ax.plot([h for h, v in zip(HORIZONS, curve) if v is not None], [v for v in curve if v is not None],
                    marker="o", label=f"vs {ref}")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xlabel("seconds after the fill")
        ax.set_ylabel("bps (a loss is negative)")
        ax.legend(fontsize=7)
        out.append((f"market maker markouts ({path.name})", _png(fig)))
    return out


def write_report(out: Path) -> Path:
    """Reads `out/events.jsonl` and `out/metrics.json`, writes `out/report.html`."""
    out = Path(out)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    metrics = json.loads((out / "metrics.json").read_text())
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                   for k, v in metrics.items())
    plots = "".join(_plot(title, png) for title, png in figures(events))
    for telemetry in sorted(out.glob("*-telemetry.jsonl")):
        plots += "".join(_plot(title, png) for title, png in mm_figures(telemetry))
    title = f"{metrics['scenario']}, seed {metrics['seed']}"
    (out / "report.html").write_text(_page(title, f"{plots}<h2>metrics.json</h2><table>{rows}</table>"))
    return out / "report.html"


def _plot(title: str, png: str) -> str:
    return f"<h3>{html.escape(title)}</h3><img src=\"data:image/png;base64,{png}\">"


def _page(title: str, body: str) -> str:
    """A self-contained HTML page (no script, no network)."""
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 8px;"
            f"border-bottom:1px solid #ddd;font-size:13px}}</style></head><body><h1>{html.escape(title)}</h1>"
            f"{body}</body></html>")


def write_sweep_report(out: Path, summary: dict, swept: list[str]) -> Path:
    """`out/sweep.html`: per parameter combination across seeds, the headline figures' mean,
    p95 and max, and each figure's mean plotted against the first swept parameter."""
    out = Path(out)
    groups = summary["groups"]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in swept) + "".join(
        f"<th>{html.escape(k)} mean / p95 / max</th>" for k in groups[0]["across_seeds"] if isinstance(
            groups[0]["across_seeds"][k], dict))
    body = ""
    for g in groups:
        a = g["across_seeds"]
        body += "<tr>" + "".join(f"<td>{html.escape(str(g['params'].get(k)))}</td>" for k in swept) + "".join(
            f"<td>{v['mean']:.2f} / {v['p95']:.2f} / {v['max']:.2f}</td>" for v in a.values() if isinstance(v, dict)) + "</tr>"
    plots = ""
    if swept and len(groups) > 1:
        key = swept[0]
        xs = [float(g["params"][key]) for g in groups]
        for figure in ("bad_debt_usdc", "liquidations", "adl_events", "insurance_drawdown_usdc"):
            fig, ax = plt.subplots(figsize=(6, 2.5))
            ax.plot(xs, [g["across_seeds"][figure]["mean"] for g in groups], marker="o", label="mean")
            ax.plot(xs, [g["across_seeds"][figure]["p95"] for g in groups], marker="x", label="p95")
            ax.set_xlabel(key)
            ax.set_ylabel(figure)
            ax.legend(fontsize=7)
            plots += _plot(f"{figure} against {key}", _png(fig))
    title = f"{summary['scenario']}: {len(summary['runs'])} runs, {summary['seeds']} seeds each"
    (out / "sweep.html").write_text(_page(title, f"{plots}<table><tr>{head}</tr>{body}</table>"))
    return out / "sweep.html"
