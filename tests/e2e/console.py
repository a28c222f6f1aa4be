"""The operations console in real browsers on a running devnet (`venue devnet`: Anvil, the venue,
the keepers, the market maker). In Chromium (Playwright driving Debian's Chromium): the book and
a trade appear live; the oracle keeper stopped raises the stale-oracle alert with its numbers, on
the page, at GET /alerts and at a webhook; restarted, the alert resolves. In Firefox (Debian's
firefox-esr driven by puppeteer-core over WebDriver BiDi, `console_firefox.mjs`): the live book,
a trade appearing, the alerts listed. GET /metrics parses with prometheus-client's parser and its
counters move when orders flow. Screenshots go to test-artifacts/. The checks run on test_devnet.py's devnet (one devnet start for both):
`devnet_env` is what that devnet needs, `check_console` the checks."""

import json
import os
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from venue.client import Client
from venue.devchain import wait_until

CHROMIUM = "/usr/bin/chromium"
FIREFOX = "/usr/bin/firefox-esr"
FIREFOX_SCRIPT = Path(__file__).with_name("console_firefox.mjs")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
STALE_S = 8  # the alert threshold for this devnet (the oracle keeper pushes at least every 3 s)


def samples(api: str) -> dict[str, float]:
    """Each sample name's value summed over its labels, as prometheus-client's parser reads them."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{api}/metrics").text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0) + s.value
    return out


class Receiver(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802: http.server's name
        Receiver.got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def devnet_env(hook_port: int) -> dict:
    """The devnet's environment for the console checks: a short stale-oracle threshold, fast
    alert evaluation, and the webhook."""
    return {"VENUE_ALERT_ORACLE_STALE_S": str(STALE_S), "VENUE_ALERT_INTERVAL_S": "0.5",
            "VENUE_ALERT_WEBHOOK": f"http://127.0.0.1:{hook_port}/hook"}


def webhook() -> HTTPServer:
    hook = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    Receiver.got = []
    return hook


def take_best_ask(api: str, out: Path) -> None:
    """A trade on ETH-PERP whatever the market maker quotes (it pulls its quotes after an oracle
    jump, for longer than a test waits): trader 2 offers 0.01 ETH half a percent above the
    oracle price, and trader 1 buys 0.01 up to that price (IOC), from the best ask there is."""
    market = next(m for m in httpx.get(f"{api}/markets").json() if m["id"] == 0)
    tick = int(market["tickSize"])
    price = str(int(market["oraclePrice"]) * 1005 // 1000 // tick * tick / 10**6)
    Client.from_devnet(2, str(out), api).place("ETH-PERP", "sell", price, "0.01")
    ack = Client.from_devnet(1, str(out), api).place("ETH-PERP", "buy", price, "0.01", tif="Ioc")
    assert int(ack["filled"]) > 0, ack


def check_console(api: str, out: Path, pids: dict) -> None:
    """Run on a devnet started with `devnet_env` (oracle heartbeat 3 s)."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    oracle_pid = pids["keeper-oracle"]
    try:
        before = samples(api)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{api}/ui")
            # The market maker's quotes, live from the websocket.
            ladder = page.get_by_test_id("ladder-0")
            expect(ladder.locator("td.bid").first).not_to_have_text("", timeout=30_000)
            expect(page.get_by_test_id("status")).to_have_text("ok", timeout=15_000)
            # An order over the API crosses the book: the trade appears on the page.
            take_best_ask(api, out)
            trade = page.get_by_test_id("trades-0").locator("tr").first
            expect(trade).to_contain_text("buy", timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "console-live.png"), full_page=True)
            # The oracle keeper stops (SIGSTOP: it does not exit, so the supervisor leaves it be).
            os.kill(oracle_pid, signal.SIGSTOP)
            alert = page.get_by_test_id("alert-oracle_stale").first
            expect(alert).to_have_attribute("data-status", "firing", timeout=60_000)
            expect(alert).to_contain_text("oracle price is")
            expect(alert).to_contain_text("at risk")
            expect(alert).to_contain_text("venue guardian reduce-only")
            page.screenshot(path=str(ARTIFACTS / "console-alert.png"), full_page=True)
            active = httpx.get(f"{api}/alerts").json()["active"]
            stale = {a["market"]: a for a in active if a["rule"] == "oracle_stale"}
            assert set(stale) == {"ETH-PERP", "BTC-PERP"}  # the keeper pushes both
            eth = stale["ETH-PERP"]
            assert eth["numbers"]["ageS"] > STALE_S and eth["numbers"]["thresholdS"] == STALE_S
            assert 25 < eth["atRiskUsdc"] < 35, eth  # 0.01 ETH open, at the oracle price (~3,000)
            assert stale["BTC-PERP"]["atRiskUsdc"] == 0  # nothing open in BTC-PERP
            # Restarted: a fresh price, and the alert resolves on the page.
            os.kill(oracle_pid, signal.SIGCONT)
            oracle_pid = None
            resolved = page.locator('[data-testid="alert-oracle_stale"][data-status="resolved"]').first
            expect(resolved).to_contain_text("resolved after", timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "console-resolved.png"), full_page=True)
            # Both alerts that fired resolve (on a loaded machine a later push can run late and
            # raise a new one: a new id, not these).
            fired = {a["id"] for a in stale.values()}
            wait_until(lambda: not fired & {a["id"] for a in httpx.get(f"{api}/alerts").json()["active"]}, 30,
                       "both stale-oracle alerts to resolve")
            assert not errors, errors
            browser.close()
        # The webhook got the alert raised and resolved, as JSON.
        events = [(c["event"], c["alert"]["rule"]) for c in Receiver.got]
        assert ("raised", "oracle_stale") in events and ("resolved", "oracle_stale") in events
        # Metrics: the exposition parses and the counters moved with the orders.
        after = samples(api)
        assert after["venue_orders_total"] > before.get("venue_orders_total", 0)
        assert after["venue_fills_total"] > before.get("venue_fills_total", 0)
        assert after["venue_ack_seconds_count"] > before.get("venue_ack_seconds_count", 0)
        assert "venue_oracle_age_seconds" in after and "venue_insurance_fund_usdc" in after
    finally:
        if oracle_pid is not None:
            os.kill(oracle_pid, signal.SIGCONT)


def check_console_firefox(api: str, out: Path) -> None:
    """The same page in Firefox: the live ladder, a trade placed over the API appearing at the
    top of the trades, the alerts the Chromium checks raised and resolved, no script error."""
    ARTIFACTS.mkdir(exist_ok=True)
    node = subprocess.Popen(["node", str(FIREFOX_SCRIPT), api, str(ARTIFACTS)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CROSSBOOK_FIREFOX": FIREFOX})
    try:
        first = node.stdout.readline().strip()
        if first == "READY":
            take_best_ask(api, out)
            node.stdin.write("placed\n")
            node.stdin.close()
            seen = json.loads(node.stdout.readline())
        else:
            seen = json.loads(first) if first.startswith("{") else {"failure": first}
        node.wait(30)
    finally:
        if node.poll() is None:  # failed on this side: the script closes its browser on SIGTERM
            node.terminate()
            try:
                node.wait(20)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
    assert "failure" not in seen, (seen, node.stderr.read())
    assert "Firefox/" in seen["userAgent"] and seen["ladderRows"] >= 2
    assert seen["firstTrade"].startswith("buy")
    assert {"rule": "oracle_stale", "status": "resolved"} in seen["alerts"], seen["alerts"]
    assert not seen["errors"], seen["errors"]
    assert (ARTIFACTS / "console-firefox.png").stat().st_size > 10_000
