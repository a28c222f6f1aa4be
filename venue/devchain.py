"""Start and stop a local Anvil from node_modules, by its own process id."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from web3 import Web3

from .chain import REPO_ROOT, connect

# Anvil's default mnemonic ("test test ... junk"): well-known devnet keys, never for real funds.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


def anvil_binary() -> str:
    local = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if not found:
        raise FileNotFoundError("anvil not found: run `npm ci` (package.json pins @foundry-rs/anvil)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortInUse(RuntimeError):
    """A port a service should listen on is taken."""


def ensure_port_free(host: str, port: int, what: str) -> None:
    """Raises PortInUse, naming the service, if something already listens on host:port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise PortInUse(f"{host}:{port} is already in use; stop what runs there or give {what} another "
                            "port") from None


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02, fatal: tuple = ()):
    """Polls `predicate` until it returns a truthy value or `timeout` seconds pass. Exceptions
    mean "not yet", except those in `fatal`, which end the wait."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except fatal:
            raise
        except Exception:  # not up yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Anvil:
    """An Anvil process. Extra flags (`--no-mining`, `--order fees`, `--block-time 1`) pass through."""

    def __init__(self, port: int | None = None, *, accounts: int = 20, block_time: float | None = None,
                 extra_args: tuple[str, ...] = (), log_path: Path | None = None, host: str = "127.0.0.1"):
        self.host = host
        self.port = port or free_port()
        self.args = [anvil_binary(), "--host", host, "--port", str(self.port), "--accounts", str(accounts),
                     "--mnemonic", DEV_MNEMONIC, "--chain-id", "31337", "--silent" if log_path is None else "-q"]
        if block_time:
            self.args += ["--block-time", str(block_time)]
        self.args += list(extra_args)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "Anvil":
        ensure_port_free(self.host, self.port, "Anvil")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        w3 = self.web3()

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"anvil exited with code {self.process.returncode}"
                                   + (f"; see {self.log_path}" if self.log_path else ""))
            return w3.is_connected() and w3.eth.block_number >= 0

        wait_until(up, 20, f"anvil on {self.url}", fatal=(RuntimeError,))
        return self

    def web3(self) -> Web3:
        return connect(self.url)

    def stop(self):
        """Stops the process group we started (node_modules/.bin/anvil is a Node wrapper that
        runs the real binary as its child, so signalling the wrapper alone can orphan it)."""
        if self.process is None:
            return
        pgid = self.process.pid  # start_new_session: the group id is our child's pid
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(pgid, signal.SIGKILL)  # anything left in the group
        except ProcessLookupError:
            pass
        self.process = None

    def set_interval_mining(self, seconds: int) -> None:
        """Switches from automine (fast setup) to a block every `seconds`."""
        w3 = self.web3()
        w3.provider.make_request("evm_setAutomine", [False])
        w3.provider.make_request("evm_setIntervalMining", [seconds])

    def __enter__(self) -> "Anvil":
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> int:
    """Asks a process we started to stop (SIGINT, as Ctrl-C would), and kills it if it has not
    within `timeout` seconds. Returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def dev_keys(count: int) -> list[str]:
    """Private keys of the first `count` accounts of the dev mnemonic (the ones Anvil unlocks)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return [Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex()
            for i in range(count)]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
