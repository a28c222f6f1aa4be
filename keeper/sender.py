"""A transaction sender shared by the keepers: local nonce tracking, EIP-1559 fee bidding with a
configurable tip and cap, replacement of a transaction stuck in the pool, retries, and one log
line per transaction."""

from __future__ import annotations

import logging
import time

from eth_account import Account
from web3 import Web3

log = logging.getLogger("keeper.tx")


class TxFailed(Exception):
    def __init__(self, msg: str, receipt=None):
        super().__init__(msg)
        self.receipt = receipt


class TxSender:
    def __init__(self, w3: Web3, private_key: str, name: str, *, priority_fee_gwei: float = 1.0,
                 max_fee_gwei: float = 300.0, replace_after_blocks: int = 3, bump_percent: int = 15,
                 timeout_s: float = 60.0):
        self.w3 = w3
        self.account = Account.from_key(private_key)
        self.address = self.account.address
        self.name = name
        self.tip = int(priority_fee_gwei * 10**9)
        self.cap = int(max_fee_gwei * 10**9)
        self.replace_after_blocks = replace_after_blocks
        self.bump_percent = bump_percent
        self.timeout_s = timeout_s
        self.nonce: int | None = None
        self.chain_id = w3.eth.chain_id

    def _fees(self, tip: int) -> tuple[int, int]:
        base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        return tip, min(self.cap, 2 * base + tip)

    def send(self, call, *, gas: int | None = None, tip: int | None = None, label: str = "") -> dict:
        """Signs and sends `call` (a web3 contract function call); returns what `wait` needs."""
        if self.nonce is None:
            self.nonce = self.w3.eth.get_transaction_count(self.address, "pending")
        tip = self.tip if tip is None else tip
        for attempt in range(3):
            max_tip, max_fee = self._fees(tip)
            tx = call.build_transaction({"from": self.address, "nonce": self.nonce, "chainId": self.chain_id,
                                         "maxPriorityFeePerGas": max_tip, "maxFeePerGas": max_fee,
                                         **({"gas": gas} if gas else {})})
            raw = self.account.sign_transaction(tx).raw_transaction
            try:
                tx_hash = self.w3.eth.send_raw_transaction(raw)
            except Exception as exc:
                if "nonce" in str(exc).lower() and attempt < 2:
                    self.nonce = self.w3.eth.get_transaction_count(self.address, "pending")
                    continue
                raise
            pending = {"hash": tx_hash, "nonce": self.nonce, "tx": tx, "label": label, "sent_block": self.w3.eth.block_number}
            self.nonce += 1
            return pending
        raise TxFailed(f"{self.name}: could not send {label}")

    def poll(self, pending: dict):
        """The receipt if the transaction is mined, else None (never waits); a transaction still
        pending `replace_after_blocks` blocks after it was sent is replaced by the same one with
        fees raised by `bump_percent`. Raises TxFailed if it reverted."""
        tx, receipt = pending["tx"], None
        for tx_hash in pending.get("replaced", []) + [pending["hash"]]:  # whichever of them was mined
            try:
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)
            except Exception:
                receipt = None
            if receipt is not None:
                break
        if receipt is not None:
            status = "ok" if receipt.status == 1 else "REVERTED"
            log.info("%s %s nonce=%d tip=%.2fgwei hash=0x%s -> %s in block %d, gas %d", self.name,
                     pending["label"], pending["nonce"], tx["maxPriorityFeePerGas"] / 1e9, bytes(tx_hash).hex(),
                     status, receipt.blockNumber, receipt.gasUsed)
            if receipt.status != 1:
                raise TxFailed(f"{pending['label']} reverted", receipt)
            return receipt
        head = self.w3.eth.block_number
        if head - pending["sent_block"] >= self.replace_after_blocks:
            tx = pending["tx"] = dict(tx)
            tx["maxPriorityFeePerGas"] = tx["maxPriorityFeePerGas"] * (100 + self.bump_percent) // 100
            tx["maxFeePerGas"] = max(tx["maxFeePerGas"] * (100 + self.bump_percent) // 100, tx["maxPriorityFeePerGas"])
            try:
                tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
                pending.setdefault("replaced", []).append(pending["hash"])
                pending["hash"] = tx_hash
                log.info("%s %s nonce=%d stuck: replaced with tip %.2fgwei", self.name, pending["label"],
                         pending["nonce"], tx["maxPriorityFeePerGas"] / 1e9)
            except Exception as exc:  # already mined, or the pool refused the bump
                log.info("%s %s nonce=%d replacement refused: %s", self.name, pending["label"], pending["nonce"], exc)
            pending["sent_block"] = head
        return None

    def wait(self, pending: dict):
        """The receipt, polling (`poll`) until it comes or `timeout_s` passes."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            receipt = self.poll(pending)
            if receipt is not None:
                return receipt
            time.sleep(0.05)
        raise TxFailed(f"{pending['label']} not mined in {self.timeout_s} s")

    def transact(self, call, **kw):
        return self.wait(self.send(call, **kw))
