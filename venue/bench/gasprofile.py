"""Where the gas of a settled fill goes: `make bench-gas-profile`.

Workload: the `bench-gas` workload (venue/bench/gas.py), on an Anvil started with
`--steps-tracing`; the third batch of 64 fills (takers that have traded before) is traced with
`debug_traceTransaction`. Every step's gas is attributed three ways: by opcode class (storage,
the calls out: ecrecover and the oracle, hashing, the rest: compute), by the innermost Solidity
function whose source range holds the step (from the runtime source map, compiled here with the
settings of ape-config.yaml), and by opcode. Calls are charged the gas the callee used.
Intrinsic gas (21,000 and calldata) is the receipt's gas minus what the steps used.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from venue.bench.gas import GasWorkload
from venue.chain import REPO_ROOT
from venue.devchain import Anvil

FILLS = 64
CALLS = ("CALL", "STATICCALL", "DELEGATECALL")
STORAGE = ("SLOAD", "SSTORE")


def compile_runtime() -> tuple[bytes, list[tuple[int, int, str | None]], dict[str, str], list[tuple]]:
    """ClearingHouse's runtime bytecode, its source map as (offset, length, source) per
    instruction, the sources, and every function's (source, start, end, name)."""
    config = yaml.safe_load((REPO_ROOT / "ape-config.yaml").read_text())["solidity"]
    sources = {str(p.relative_to(REPO_ROOT)): {"content": p.read_text()} for p in (REPO_ROOT / "contracts").rglob("*.sol")}
    request = {"language": "Solidity", "sources": sources, "settings": {
        "optimizer": {"enabled": bool(config.get("optimize", True)), "runs": config["optimization_runs"]},
        "viaIR": bool(config.get("via_ir")), "evmVersion": config["evm_version"],
        "outputSelection": {"contracts/ClearingHouse.sol": {"ClearingHouse": ["evm.deployedBytecode"]},
                            "*": {"": ["ast"]}}}}
    solc = REPO_ROOT / "tools" / "solc" / f"solc-v{config['version']}"
    out = json.loads(subprocess.run([str(solc), "--standard-json"], input=json.dumps(request), capture_output=True,
                                    text=True, check=True).stdout)
    errors = [e["formattedMessage"] for e in out.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise SystemExit("\n".join(errors))
    runtime = out["contracts"]["contracts/ClearingHouse.sol"]["ClearingHouse"]["evm"]["deployedBytecode"]
    names = {v["id"]: k for k, v in out["sources"].items()}
    entries, last = [], [0, 0, -1]
    for part in runtime["sourceMap"].split(";"):
        fields = part.split(":")
        for k in range(min(len(fields), 3)):
            if fields[k] != "":
                last[k] = int(fields[k])
        entries.append((last[0], last[1], names.get(last[2])))
    functions = []

    def walk(node, source):
        if isinstance(node, dict):
            if node.get("nodeType") == "FunctionDefinition":
                start, length, _ = map(int, node["src"].split(":"))
                functions.append((source, start, start + length, node.get("name") or node.get("kind")))
            for value in node.values():
                walk(value, source)
        elif isinstance(node, list):
            for value in node:
                walk(value, source)

    for source, value in out["sources"].items():
        walk(value["ast"], source)
    return bytes.fromhex(runtime["object"]), entries, {k: v["content"] for k, v in sources.items()}, functions


def instruction_index(code: bytes) -> dict[int, int]:
    """Program counter -> instruction number (the source map counts instructions, not bytes)."""
    index, pc, n = {}, 0, 0
    while pc < len(code):
        op = code[pc]
        index[pc] = n
        pc += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
        n += 1
    return index


def main() -> int:
    code, entries, sources, functions = compile_runtime()
    index = instruction_index(code)
    with Anvil(accounts=2, extra_args=("--steps-tracing",)) as anvil:
        work = GasWorkload(anvil)
        onchain = bytes(work.w3.eth.get_code(work.deployment.clearing_house))
        if len(onchain) != len(code):
            raise SystemExit(f"deployed code ({len(onchain)} bytes) is not what was compiled here ({len(code)}): "
                             "run `make compile` first")
        work.run(FILLS)
        work.run(FILLS)
        receipt = work.run(FILLS)
        trace = work.w3.provider.make_request("debug_traceTransaction", [
            receipt.transactionHash.to_0x_hex(), {"disableStorage": True, "disableMemory": True, "disableStack": True}])
    steps = trace["result"]["structLogs"]

    def function_at(source: str | None, offset: int) -> str:
        best = None
        for f_source, start, end, name in functions:
            if f_source == source and start <= offset < end and (best is None or end - start < best[1]):
                best = (name, end - start)
        return best[0] if best else "(dispatch and compiler-generated)"

    by_class, by_function, by_opcode = collections.Counter(), collections.Counter(), collections.Counter()
    for i, step in enumerate(steps):
        if step["depth"] != 1:
            continue
        op, cost = step["op"], step["gasCost"]
        if op in CALLS:  # the callee's gas: what the caller had before minus after
            after = next((s for s in steps[i + 1:] if s["depth"] == 1), None)
            cost = step["gas"] - after["gas"] if after else cost
        by_opcode[op] += cost
        if op in STORAGE:
            by_class["storage (SLOAD, SSTORE)"] += cost
        elif op in CALLS:
            by_class["calls out (ecrecover, oracle)"] += cost
        elif op == "KECCAK256":
            by_class["hashing (KECCAK256)"] += cost
        else:
            by_class["compute"] += cost
            offset, _, source = entries[index[step["pc"]]]
            by_function[function_at(source, offset)] += cost
    executed = sum(by_class.values())
    by_class["intrinsic (21,000 and calldata)"] = receipt.gasUsed - executed

    console = Console()
    table = Table(title=f"settle: gas per fill, batch of {FILLS} (steady state)")
    table.add_column("where")
    table.add_column("gas per fill", justify="right")
    for name, gas in by_class.most_common():
        table.add_row(name, f"{gas / FILLS:,.0f}")
    table.add_row("total", f"{receipt.gasUsed / FILLS:,.0f}")
    console.print(table)
    table = Table(title="compute per fill by Solidity function (innermost)")
    table.add_column("function")
    table.add_column("gas per fill", justify="right")
    for name, gas in by_function.most_common(15):
        table.add_row(name, f"{gas / FILLS:,.0f}")
    console.print(table)
    print("opcodes per fill:", ", ".join(f"{op} {gas / FILLS:,.0f}" for op, gas in by_opcode.most_common(20)))
    print(f"workload: as bench-gas; the third batch of {FILLS} fills, traced step by step")
    figures = {"gas_per_fill": round(receipt.gasUsed / FILLS)}
    keys = {"storage (SLOAD, SSTORE)": "storage_per_fill", "calls out (ecrecover, oracle)": "calls_per_fill",
            "hashing (KECCAK256)": "keccak_per_fill", "compute": "compute_per_fill",
            "intrinsic (21,000 and calldata)": "intrinsic_per_fill"}
    figures.update({key: round(by_class[name] / FILLS) for name, key in keys.items()})
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
