"""A contract binding for tests that make thousands of calls: ABI encoding with eth_abi and raw
JSON-RPC, without web3.py's per-call ABI lookup and validation (7.8 ms an eth_call through a
web3 contract object here against ~1 ms raw, measured on this machine)."""

from __future__ import annotations

import time

from eth_abi import decode, encode
from eth_utils import keccak


def abi_type(item: dict) -> str:
    """Canonical ABI type of an input or output, tuples spelled out."""
    if item["type"].startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in item["components"]) + ")" + item["type"][5:]
    return item["type"]


def signature(entry: dict) -> str:
    return entry["name"] + "(" + ",".join(abi_type(i) for i in entry["inputs"]) + ")"


class RawContract:
    def __init__(self, w3, address: str, abi: list[dict], *, gas: int = 8_000_000):
        self.w3, self.address, self.gas = w3, address, gas
        self.functions = {}
        self.events = {}
        for e in abi:
            if e.get("type") == "function":
                self.functions[e["name"]] = (keccak(text=signature(e))[:4], [abi_type(i) for i in e["inputs"]],
                                             [abi_type(o) for o in e["outputs"]])
            elif e.get("type") == "event":
                self.events[e["name"]] = (keccak(text=signature(e)), e["inputs"])

    def _data(self, name, args) -> str:
        selector, inputs, _ = self.functions[name]
        return "0x" + (selector + encode(inputs, list(args))).hex()

    def _request(self, method, params):
        response = self.w3.provider.make_request(method, params)
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response["result"]

    def call(self, name, *args):
        """The decoded outputs of a view (one value alone, several as a tuple)."""
        result = self._request("eth_call", [{"to": self.address, "data": self._data(name, args)}, "latest"])
        out = decode(self.functions[name][2], bytes.fromhex(result[2:]))
        return out[0] if len(out) == 1 else out

    def send(self, name, *args, sender: str) -> dict:
        """Sends a transaction from an unlocked account and returns its receipt (a revert is
        status 0: nothing it did stays)."""
        tx = {"from": sender, "to": self.address, "data": self._data(name, args), "gas": hex(self.gas),
              "maxFeePerGas": hex(10**11), "maxPriorityFeePerGas": "0x0"}
        tx_hash = self._request("eth_sendTransaction", [tx])
        deadline = time.monotonic() + 30
        while (receipt := self._request("eth_getTransactionReceipt", [tx_hash])) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no receipt for {tx_hash}")
            time.sleep(0.001)
        receipt["status"] = int(receipt["status"], 16)
        return receipt

    def logs(self, receipt: dict, name: str) -> list[dict]:
        """Decoded `name` events this contract emitted in `receipt`."""
        topic, inputs = self.events[name]
        out = []
        for log in receipt["logs"]:
            if log["address"].lower() != self.address.lower() or bytes.fromhex(log["topics"][0][2:]) != topic:
                continue
            indexed = [i for i in inputs if i["indexed"]]
            plain = [i for i in inputs if not i["indexed"]]
            values = dict(zip([i["name"] for i in plain], decode([abi_type(i) for i in plain], bytes.fromhex(log["data"][2:]))))
            for i, t in zip(indexed, log["topics"][1:]):
                values[i["name"]] = decode([abi_type(i)], bytes.fromhex(t[2:]))[0]
            out.append(values)
        return out
