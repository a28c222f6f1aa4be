"""`venue devnet` (what `make devnet` runs) brings up Anvil with working contracts, the venue, its
keepers and market maker; its operations console works in a browser (tests/e2e/console.py), its
traders can trade through the Hyperliquid API at once; it stops on Ctrl-C."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import httpx
from eth_account import Account
from hyperliquid.exchange import Exchange
from web3 import HTTPProvider, Web3

from venue.chain import contract
from venue.devchain import free_port, wait_until

from .console import CHROMIUM, FIREFOX, check_console, check_console_firefox, devnet_env, webhook


def test_devnet_runs_the_whole_venue_its_console_and_the_hyperliquid_api_work_and_it_stops_on_ctrl_c(tmp_path):
    out = tmp_path / "deployment.json"
    port, api_port = free_port(), free_port()
    hook = webhook()
    proc = subprocess.Popen([sys.executable, "-m", "venue.cli", "devnet", "--port", str(port), "--out", str(out),
                             "--api-port", str(api_port), "--mm-metrics-port", str(free_port()),
                             "--oracle-heartbeat", "3"], env={**os.environ, **devnet_env(hook.server_port)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_until(out.exists, 60, "deployment.json")
        doc = json.loads(out.read_text())
        w3 = Web3(HTTPProvider(doc["rpc"]))
        ch = contract(w3, "ClearingHouse", doc["ClearingHouse"])
        assert ch.functions.marketCount().call() == 2
        assert ch.functions.oracle().call() == doc["Oracle"]
        assert contract(w3, "MockERC20", doc["USDC"]).functions.decimals().call() == 6
        assert contract(w3, "MockERC20", doc["WETH"]).functions.decimals().call() == 18
        # The API is up and the demo market maker keeps both books two-sided.
        api = f"http://127.0.0.1:{api_port}"
        for market in (0, 1):
            book = wait_until(lambda: (b := httpx.get(f"{api}/book/{market}").json())["bids"] and b["asks"] and b,
                              60, f"two-sided book {market}")
            assert int(book["bids"][0][0]) < int(book["asks"][0][0])
        wait_until(lambda: any("] ready" in line for line in lines), 30, "the ready line")
        assert any(f"console        {api}/ui" in line for line in lines)
        pids = json.loads((tmp_path / "processes.json").read_text())
        assert set(pids) == {"api", "market-maker", "keeper-oracle", "keeper-liquidator", "keeper-adl",
                             "keeper-risk", "keeper-funding"}
        # The devnet's traders approved the gateway: the Hyperliquid SDK trades at once.
        sdk = Exchange(Account.from_key(doc["keys"]["traders"][2]), base_url=f"{api}/hl")
        rested = sdk.order("ETH", True, 0.01, 2_900, {"limit": {"tif": "Alo"}})
        assert "resting" in rested["response"]["data"]["statuses"][0], rested
        # The operations console in Chromium, then in Firefox (tests/e2e/console.py). `make test`
        # installs both browsers; in CI a missing one fails the test.
        for browser, check in ((CHROMIUM, lambda: check_console(api, out, pids)),
                               (FIREFOX, lambda: check_console_firefox(api, out))):
            if Path(browser).exists():
                check()
            elif os.environ.get("CI"):
                raise AssertionError(f"{browser} is missing (make test installs it)")
            else:
                warnings.warn(f"no {browser}: its console checks did not run (make test installs it)")
        # A crashed API is restarted by the supervisor on the same journal; the devnet stays up.
        os.kill(pids["api"], signal.SIGKILL)
        wait_until(lambda: json.loads((tmp_path / "processes.json").read_text())["api"] != pids["api"], 10,
                   "the API to be restarted")
        wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 60, "the restarted API")
        assert w3.is_connected()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        reader.join(5)
        hook.shutdown()
        output = "".join(lines)
    assert proc.returncode == 0, output
    assert "ClearingHouse" in output and str(out) in output
    # A line per step while it starts, in order, then the ready line with the time it took.
    steps = [line.split("]", 1)[1].split()[0] for line in output.splitlines() if line.startswith("[")]
    assert steps[:8] == ["chain", "deploy", "funding", "gateway", "api", "keepers", "market", "ready"], output
    assert re.search(r"\] ready +in \d+\.\d s: API http://127\.0\.0\.1:\d+", output), output
    assert f"api (pid {pids['api']}) exited with code -9; restarted as pid" in output
    # Anvil and the API went down with it.
    assert not Web3(HTTPProvider(f"http://127.0.0.1:{port}")).is_connected()
    try:
        httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=2)
        api_alive = True
    except httpx.HTTPError:
        api_alive = False
    assert not api_alive


def test_devnet_refuses_a_busy_port_with_a_clear_message(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        for flags in (["--port", str(taken), "--api-port", str(free_port())],
                      ["--port", str(free_port()), "--api-port", str(taken)]):
            proc = subprocess.run([sys.executable, "-m", "venue.cli", "devnet", "--out", str(tmp_path / "d.json"),
                                   *flags], capture_output=True, text=True, timeout=60)
            assert proc.returncode == 1
            assert f"127.0.0.1:{taken} is already in use" in proc.stderr
    assert not (tmp_path / "d.json").exists()
