"""The venue's Prometheus metrics (`GET /metrics`, prometheus-client), one registry per venue.

Counters move where the work happens (orders in `Venue`, fills and rejections as the chain
reports them, batches as they settle); gauges that describe state (pending fills, websocket
clients and their lag, oracle age, the insurance fund, alerts firing) are set from the venue's
own numbers just before each scrape, so they are never stale.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1)
SETTLE_BUCKETS = (.25, .5, .75, 1, 1.5, 2, 3, 5, 10, 30, 60)


class VenueMetrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.orders = Counter("venue_orders", "orders answered, by outcome (resting, filled, cancelled, error)",
                              ["status"], registry=r)
        self.fills = Counter("venue_fills", "fills matched", ["market"], registry=r)
        self.fills_settled = Counter("venue_fills_settled", "fills the chain settled", registry=r)
        self.rejections = Counter("venue_fill_rejections", "fills the chain rejected, by reason", ["reason"],
                                  registry=r)
        self.refusals = Counter("venue_order_refusals", "orders refused before the book, by code", ["code"],
                                registry=r)
        self.ack_latency = Histogram("venue_ack_seconds", "from an order's arrival to its acknowledgement",
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.ack_to_settle = Histogram("venue_ack_to_settle_seconds", "from a fill's acknowledgement to its "
                                       "settlement receipt", buckets=SETTLE_BUCKETS, registry=r)
        self.batch_gas = Histogram("venue_batch_gas", "gas used by a settlement batch",
                                   buckets=(1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 3e7), registry=r)
        self.pending_fills = Gauge("venue_pending_fills", "fills matched and not yet settled", registry=r)
        self.ws_clients = Gauge("venue_websocket_clients", "websocket subscribers", registry=r)
        self.ws_lag = Gauge("venue_websocket_lag_messages", "the longest subscriber queue", registry=r)
        self.oracle_age = Gauge("venue_oracle_age_seconds", "age of the market's oracle price at the chain head",
                                ["market"], registry=r)
        self.insurance = Gauge("venue_insurance_fund_usdc", "the insurance fund", registry=r)
        self.alerts_firing = Gauge("venue_alerts_firing", "alerts open, by rule", ["rule"], registry=r)
        self.chain_lag = Gauge("venue_chain_lag_blocks", "blocks the venue trails the chain head by", registry=r)
        self.oldest_unsettled = Gauge("venue_oldest_unsettled_blocks", "age in blocks of the oldest unsettled fill "
                                      "(0: none)", registry=r)

    def answered(self, data: dict, seconds: float) -> None:
        """An order route's answer: its latency, and each order's outcome (or the refusal's code)."""
        self.ack_latency.observe(seconds)
        statuses = data.get("statuses") if isinstance(data, dict) else None
        outcomes: dict[str, int] = {}
        codes: dict[str, int] = {}
        for st in statuses if statuses is not None else [data]:  # counted first: one inc per label
            status = st.get("status", "error")
            outcomes[status] = outcomes.get(status, 0) + 1
            if status == "error":
                code = st.get("code", "?")
                codes[code] = codes.get(code, 0) + 1
        for status, n in outcomes.items():
            self.orders.labels(status).inc(n)
        for code, n in codes.items():
            self.refusals.labels(code).inc(n)

    def scrape(self, venue) -> bytes:
        """The exposition text, with the state gauges read from `venue` now."""
        h = venue.health()
        self.pending_fills.set(h["pendingFills"] + h["submittedFills"])
        self.ws_clients.set(len(venue.subscribers))
        self.ws_lag.set(max((s.queue.qsize() for s in venue.subscribers), default=0))
        for symbol, age in h["oracleAgeS"].items():
            self.oracle_age.labels(symbol).set(-1 if age is None else age)
        self.chain_lag.set(h["lagBlocks"])
        self.oldest_unsettled.set(h["oldestUnsettledFillAgeBlocks"] or 0)
        if venue.insurance_fund is not None:
            self.insurance.set(venue.insurance_fund / 1e6)
        firing: dict[str, int] = {}
        for alert in venue.alerts.active():
            firing[alert["rule"]] = firing.get(alert["rule"], 0) + 1
        for rule in venue.alerts.rules:
            self.alerts_firing.labels(rule).set(firing.get(rule, 0))
        return generate_latest(self.registry)
