"""`venue devnet` (what `make devnet` runs) brings up Anvil with working contracts and stops on Ctrl-C."""

import json
import signal
import subprocess
import sys

from web3 import HTTPProvider, Web3

from venue.chain import contract
from venue.devchain import free_port, wait_until


def test_devnet_deploys_contracts_web3_can_call_and_stops_on_ctrl_c(tmp_path):
    out = tmp_path / "deployment.json"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "venue.cli", "devnet", "--port", str(port), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(out.exists, 60, "deployment.json")
        doc = json.loads(out.read_text())
        w3 = Web3(HTTPProvider(doc["rpc"]))
        ch = contract(w3, "ClearingHouse", doc["ClearingHouse"])
        assert ch.functions.marketCount().call() == 2
        assert ch.functions.oracle().call() == doc["Oracle"]
        assert contract(w3, "MockERC20", doc["USDC"]).functions.decimals().call() == 6
        assert contract(w3, "MockERC20", doc["WETH"]).functions.decimals().call() == 18
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "ClearingHouse" in output and str(out) in output
    # Anvil went down with it.
    assert not Web3(HTTPProvider(f"http://127.0.0.1:{port}")).is_connected()
