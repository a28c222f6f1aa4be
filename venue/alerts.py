"""Alerts that carry their context: what happened, the numbers behind it, what is at risk in USDC
and what the person on call can do (the exact command).

`Alerts.evaluate(findings)` is fed, every `alert_interval_s`, the conditions that hold now (each
keyed, e.g. `oracle_stale:ETH-PERP`); a key seen for the first time raises an alert, a key seen
again updates it (its numbers), a key no longer seen resolves it with a message. `GET /alerts`
always shows the latest numbers; raising and resolving go at once to the `alerts` websocket
channel and the webhook (when one is set), updates at most every `update_every_s` (30 s) unless
the severity changed, so an alert whose age grows every second does not flood them.

The findings come from `findings(venue, snapshot)`: the rules below, with thresholds from
`Settings` (environment `VENUE_ALERT_*`, documented in the README):

  oracle_stale        a market's oracle price older than `alert_oracle_stale_s`
  near_liquidation    accounts within `alert_near_liq_pct` % of their notional from maintenance
                      margin whose combined notional exceeds `alert_near_liq_notional_usdc`
  insurance_shortfall the insurance fund covering less than `alert_insurance_cover_pct` % of the
                      shortfall every account would leave if each market moved
                      `alert_insurance_move_pct` % against it
  unsettled_fills     the oldest unsettled fill older than `alert_unsettled_blocks` blocks
  rejection_burst     `alert_rejections` or more fills rejected on-chain in `alert_rejections_window_s`
  quotes_pulled       a market that was quoted on both sides with a side empty for
                      `alert_quotes_pulled_s` (the market maker pulled its quotes)
  funding_at_cap      a market's funding rate at its cap
  venue_state         the venue cancel-only (settlement stalled), paused by the guardian, or frozen
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque

log = logging.getLogger("venue.alerts")

RULES = ("oracle_stale", "near_liquidation", "insurance_shortfall", "unsettled_fills", "rejection_burst",
         "quotes_pulled", "funding_at_cap", "venue_state")
USDC = 10**6


class Alerts:
    def __init__(self, publish, webhook: str = "", now=time.time, update_every_s: float = 30.0):
        self.rules = RULES
        self.publish, self.webhook, self.now, self.update_every_s = publish, webhook, now, update_every_s
        self.open: dict[str, dict] = {}
        self.history: deque[dict] = deque(maxlen=200)  # resolved, newest last
        self.seq = 0
        self.webhook_errors = 0

    def active(self) -> list[dict]:
        return sorted((_public(a) for a in self.open.values()), key=lambda a: -a["id"])

    def recent(self) -> list[dict]:
        return list(reversed(self.history))

    def evaluate(self, findings: dict[str, dict]) -> list[dict]:
        """Raises, updates and resolves from the conditions that hold now; returns the changes."""
        now, changes = self.now(), []
        for key, f in findings.items():
            alert = self.open.get(key)
            if alert is None:
                self.seq += 1
                alert = self.open[key] = {"id": self.seq, "key": key, "status": "firing", "raisedAt": now,
                                          "updatedAt": now, "resolvedAt": None, **f}
                alert["_sent"] = now
                changes.append({"event": "raised", "alert": _public(alert)})
                log.warning("alert raised: %s", f["message"])
            elif any(alert.get(k) != v for k, v in f.items()):
                escalated = f["severity"] != alert["severity"]
                alert.update(f, updatedAt=now)  # GET /alerts always has the latest numbers
                if escalated or now - alert["_sent"] >= self.update_every_s:  # pushed at most this often
                    alert["_sent"] = now
                    changes.append({"event": "updated", "alert": _public(alert)})
        for key in [k for k in self.open if k not in findings]:
            alert = _public(self.open.pop(key))
            alert.update(status="resolved", resolvedAt=now,
                         resolution=f"resolved after {now - alert['raisedAt']:.0f} s: {alert['clears']}")
            self.history.append(alert)
            changes.append({"event": "resolved", "alert": dict(alert)})
            log.warning("alert resolved: %s", alert["resolution"])
        for change in changes:
            self.publish({"channel": "alerts", "data": change})
            if self.webhook:
                threading.Thread(target=self._post, args=(change,), daemon=True).start()
        return changes

    def _post(self, change: dict) -> None:
        import httpx

        try:
            httpx.post(self.webhook, content=json.dumps(change), headers={"content-type": "application/json"},
                       timeout=3)
        except httpx.HTTPError as exc:
            self.webhook_errors += 1
            log.warning("alert webhook %s failed: %s", self.webhook, exc)


def _public(alert: dict) -> dict:
    return {k: v for k, v in alert.items() if not k.startswith("_")}


def finding(rule: str, message: str, numbers: dict, at_risk_usdc: float, action: str, links: list[str],
            clears: str, market: str | None = None, severity: str = "warning") -> dict:
    return {"rule": rule, "market": market, "severity": severity, "message": message, "numbers": numbers,
            "atRiskUsdc": round(at_risk_usdc, 2), "action": action, "links": links, "clears": clears}


def findings(venue, snap: dict) -> dict[str, dict]:
    """The conditions that hold now. `snap`: the chain numbers read for this evaluation
    (`Venue.risk_snapshot`): markets' views, accounts' views, the insurance fund."""
    s, out = venue.settings, {}
    h = venue.health()
    markets = snap["markets"]
    for m, p in enumerate(venue.markets):
        sym, view = p.symbol, markets[m]
        oi_usdc = view["openInterest"] * view["oraclePrice"] / 1e8 / USDC
        age = h["oracleAgeS"].get(sym)
        if age is not None and age > s.alert_oracle_stale_s:
            out[f"oracle_stale:{sym}"] = finding(
                "oracle_stale", f"{sym} oracle price is {age:.0f} s old (alert at {s.alert_oracle_stale_s:g} s; "
                                f"the contracts refuse prices older than {h['maxPriceAgeS']} s)",
                {"ageS": age, "thresholdS": s.alert_oracle_stale_s, "maxPriceAgeS": h["maxPriceAgeS"],
                 "oraclePrice": view["oraclePrice"] / USDC}, oi_usdc,
                f"check the oracle keeper (keeper oracle) and its account's ETH; if prices cannot be restored: "
                f"venue guardian reduce-only {sym}", [f"#market-{m}", "#pipeline"],
                f"a fresh {sym} price arrived", market=sym, severity="critical" if age > h["maxPriceAgeS"] else "warning")
        empty = [side for side, levels in zip(("bids", "asks"), venue.engine.l2(m, 1)) if not levels]
        since = venue.book_empty_since.get(m)
        if empty and since is not None and venue.clock.now() - since >= s.alert_quotes_pulled_s:
            out[f"quotes_pulled:{sym}"] = finding(
                "quotes_pulled", f"{sym} has had no {' and no '.join(empty)} for {venue.clock.now() - since:.0f} s: "
                                 f"the market maker pulled its quotes", {"emptySides": empty,
                                                                         "forS": round(venue.clock.now() - since, 1)},
                oi_usdc, f"see the market maker's log and its mm_regime metric (keeper mm); if the book stays empty: "
                         f"venue guardian reduce-only {sym}", [f"#market-{m}"], f"{sym} is quoted on both sides again",
                market=sym)
        cap = view["maxFundingRatePerHour"]
        if cap and abs(view["lastFundingRate"]) >= cap:
            out[f"funding_at_cap:{sym}"] = finding(
                "funding_at_cap", f"{sym} funding is at its cap: {view['lastFundingRate'] / 1e16:+.4f} % an hour",
                {"ratePerHourPct": view["lastFundingRate"] / 1e16, "capPerHourPct": cap / 1e16}, oi_usdc,
                f"the book trades far from the oracle: check the {sym} book and the funding keeper's input; "
                f"venue guardian reduce-only {sym} if it is a squeeze", [f"#market-{m}"],
                f"{sym} funding is below its cap", market=sym)
    # accounts near liquidation, and the insurance fund against a move
    near, shortfall = [], 0
    move = s.alert_insurance_move_pct / 100
    for a in snap["accounts"]:
        if a["notional"] <= 0:
            continue
        buffer_pct = (a["equity"] - a["maintenance"]) / a["notional"] * 100
        if buffer_pct <= s.alert_near_liq_pct:
            near.append((buffer_pct, a))
        shortfall += max(0, int(a["notional"] * move) - a["equity"])
    near.sort(key=lambda x: x[0])
    combined = sum(a["notional"] for _, a in near) / USDC
    if near and combined > s.alert_near_liq_notional_usdc:
        out["near_liquidation"] = finding(
            "near_liquidation", f"{len(near)} accounts within {s.alert_near_liq_pct:g} % of liquidation hold "
                                f"{combined:,.0f} USDC of notional", {
                "accounts": [{"address": a["address"], "bufferPct": round(b, 3), "notionalUsdc": a["notional"] / USDC,
                              "equityUsdc": a["equity"] / USDC} for b, a in near[:5]],
                "count": len(near), "combinedNotionalUsdc": round(combined, 2),
                "thresholdUsdc": s.alert_near_liq_notional_usdc},
            combined, "watch the liquidator (keeper liquidator) and the insurance fund; to stop new risk: "
                      "venue guardian reduce-only <MARKET>", ["#risk"],
            f"no more than {s.alert_near_liq_notional_usdc:,.0f} USDC of notional within "
            f"{s.alert_near_liq_pct:g} % of liquidation")
    insurance = snap["insurance"]
    if shortfall and insurance * 100 < shortfall * s.alert_insurance_cover_pct:
        out["insurance_shortfall"] = finding(
            "insurance_shortfall", f"a {s.alert_insurance_move_pct:g} % move against every position would leave "
                                   f"{shortfall / USDC:,.0f} USDC of shortfall; the insurance fund holds "
                                   f"{insurance / USDC:,.0f} ({insurance * 100 / shortfall:.0f} %)",
            {"movePct": s.alert_insurance_move_pct, "shortfallUsdc": shortfall / USDC, "insuranceUsdc": insurance / USDC,
             "coveragePct": round(insurance * 100 / shortfall, 1), "thresholdPct": s.alert_insurance_cover_pct},
            (shortfall - insurance) / USDC, "top up the insurance fund (ClearingHouse.depositInsurance) or cut the "
                                            "risk: venue guardian reduce-only <MARKET>; ADL covers what is left",
            ["#risk"], "the insurance fund covers the shortfall at that move", severity="critical")
    # the pipeline
    oldest = h["oldestUnsettledFillAgeBlocks"]
    if oldest is not None and oldest > s.alert_unsettled_blocks:
        pending = [r for r in venue.fills.values() if r.status in ("pending", "submitted")]
        notional = sum(r.fill.price * r.fill.size for r in pending) / 1e8 / USDC
        out["unsettled_fills"] = finding(
            "unsettled_fills", f"{len(pending)} fills unsettled, the oldest for {oldest} blocks "
                               f"(alert at {s.alert_unsettled_blocks})",
            {"fills": len(pending), "oldestBlocks": oldest, "oldestS": h["oldestUnsettledFillAgeS"],
             "thresholdBlocks": s.alert_unsettled_blocks}, notional,
            "check the operator account's ETH and the node (GET /health); the venue turns cancel-only by itself "
            f"after {s.stall_blocks} blocks", ["#pipeline"], "every fill older than the threshold settled")
    window = venue.clock.now() - s.alert_rejections_window_s
    rejected = [r for r in venue.rejected_recent if r[0] >= window]
    if len(rejected) >= s.alert_rejections:
        by_reason: dict[str, int] = {}
        for _, reason, _ in rejected:
            by_reason[reason] = by_reason.get(reason, 0) + 1
        out["rejection_burst"] = finding(
            "rejection_burst", f"{len(rejected)} fills rejected on-chain in {s.alert_rejections_window_s:g} s "
                               f"({', '.join(f'{k} {v}' for k, v in sorted(by_reason.items()))})",
            {"count": len(rejected), "byReason": by_reason, "windowS": s.alert_rejections_window_s,
             "threshold": s.alert_rejections}, sum(n for _, _, n in rejected) / USDC,
            "GET /accounts/{address} for the accounts named in the fills; if it spreads: venue guardian pause",
            ["#pipeline"], f"fewer than {s.alert_rejections} rejections in {s.alert_rejections_window_s:g} s")
    if h["status"] in ("down", "paused", "frozen"):
        what = {"down": f"cancel-only: {h['reason']}", "paused": "paused by the guardian",
                "frozen": f"frozen at {h['frozenAt']} (escape hatch)"}[h["status"]]
        action = {"down": "see GET /health: the node, the operator key's ETH; the venue resumes by itself",
                  "paused": "venue guardian unpause (once the cause is fixed)",
                  "frozen": "accounts leave with venue exit withdraw (exitFrozen); nothing more trades"}[h["status"]]
        total_oi = sum(v["openInterest"] * v["oraclePrice"] / 1e8 / USDC for v in markets)
        out["venue_state"] = finding("venue_state", f"the venue is {what}", {"status": h["status"]}, total_oi, action,
                                     ["#pipeline"], "the venue takes orders again", severity="critical")
    return out
