"""The alert lifecycle (venue/alerts.py: raised once, numbers kept current, pushed updates at
most every 30 s unless the severity changes, resolved with a message) and the order-answer
counting of venue/metrics.py."""

from prometheus_client.parser import text_string_to_metric_families

from venue.alerts import Alerts, finding
from venue.metrics import VenueMetrics


def stale(age: float, severity: str = "warning") -> dict:
    return finding("oracle_stale", f"ETH-PERP oracle price is {age:.0f} s old", {"ageS": age}, 30.0,
                   "venue guardian reduce-only ETH-PERP", ["#market-0"], "a fresh ETH-PERP price arrived",
                   market="ETH-PERP", severity=severity)


def test_an_alert_is_raised_once_kept_current_pushed_sparingly_and_resolved_with_a_message():
    pushed, now = [], [1000.0]
    alerts = Alerts(pushed.append, now=lambda: now[0])
    assert [c["event"] for c in alerts.evaluate({"oracle_stale:ETH-PERP": stale(50)})] == ["raised"]
    for t in range(1, 29):  # the age grows every evaluation: GET /alerts is current, nothing is pushed
        now[0] = 1000.0 + t
        assert alerts.evaluate({"oracle_stale:ETH-PERP": stale(50 + t)}) == []
        assert alerts.active()[0]["numbers"]["ageS"] == 50 + t
    now[0] = 1030.0
    assert [c["event"] for c in alerts.evaluate({"oracle_stale:ETH-PERP": stale(80)})] == ["updated"]
    now[0] = 1031.0
    escalated = alerts.evaluate({"oracle_stale:ETH-PERP": stale(81, "critical")})
    assert [c["event"] for c in escalated] == ["updated"]  # a new severity is pushed at once
    now[0] = 1040.0
    resolved = alerts.evaluate({})
    assert [c["event"] for c in resolved] == ["resolved"]
    a = resolved[0]["alert"]
    assert a["status"] == "resolved" and a["resolution"] == "resolved after 40 s: a fresh ETH-PERP price arrived"
    assert alerts.active() == [] and alerts.recent()[0]["id"] == a["id"] and "_sent" not in a
    assert [m["data"]["event"] for m in pushed] == ["raised", "updated", "updated", "resolved"]
    assert all(m["channel"] == "alerts" for m in pushed)
    again = alerts.evaluate({"oracle_stale:ETH-PERP": stale(50)})
    assert again[0]["event"] == "raised" and again[0]["alert"]["id"] == a["id"] + 1  # a new alert


def test_order_answers_are_counted_by_outcome_and_refusal_code():
    m = VenueMetrics()
    m.answered({"statuses": [{"status": "resting"}, {"status": "error", "code": "BAD_SIGNATURE"},
                             {"status": "filled"}, {"status": "resting"}]}, 0.002)
    m.answered({"code": "INVALID_JSON", "msg": "not JSON"}, 0.0005)
    got = {}
    from prometheus_client import generate_latest
    for family in text_string_to_metric_families(generate_latest(m.registry).decode()):
        for s in family.samples:
            got[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert got[("venue_orders_total", (("status", "resting"),))] == 2
    assert got[("venue_orders_total", (("status", "error"),))] == 2
    assert got[("venue_orders_total", (("status", "filled"),))] == 1
    assert got[("venue_order_refusals_total", (("code", "BAD_SIGNATURE"),))] == 1
    assert got[("venue_order_refusals_total", (("code", "INVALID_JSON"),))] == 1
    assert got[("venue_ack_seconds_count", ())] == 2
