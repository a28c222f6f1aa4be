"""`venue` command: devnet, serve, guardian, exit, exposure-group, hl, scenario, bench."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from .chain import REPO_ROOT, connect, contract, deploy, explain_revert, exposure_groups, read_market_status, read_markets
from .devchain import Anvil, PortInUse, dev_keys, ensure_port_free

DEVNET_DIR = REPO_ROOT / "devnet"


def cmd_devnet(args) -> int:
    """Anvil on 127.0.0.1:8545 with crossbook deployed; runs until Ctrl-C."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = dev_keys(12)
    from .signing import address_of

    addresses = [address_of(k) for k in keys]
    owner, operator, keeper, guardian, gateway = addresses[0], addresses[1], addresses[2], addresses[10], addresses[11]
    gateway_key = keys[11]
    keys, addresses = keys[:10], addresses[:10]  # traders are dev accounts 3 to 9; 10 is the guardian
    started = time.monotonic()

    def progress(step: str, what: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {step:<13} {what}", flush=True)

    try:
        ensure_port_free("127.0.0.1", args.api_port, "the API (--api-port)")
        progress("chain", f"starting Anvil on 127.0.0.1:{args.port} "
                          f"({'automine' if args.block_time is None else f'{args.block_time} s blocks'})")
        anvil = Anvil(port=args.port, block_time=args.block_time, log_path=out.parent / "anvil.log").start()
    except (PortInUse, RuntimeError) as exc:
        print(f"venue devnet: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    children: list = []
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        w3 = anvil.web3()
        progress("deploy", "Oracle, tokens, ClearingHouse and its modules, markets")
        d = deploy(w3, owner, operator=operator, keepers=(keeper,), guardian=guardian)
        doc = {
            **d.to_json(),
            "rpc": anvil.url,
            "accounts": {"owner": owner, "operator": operator, "keeper": keeper, "guardian": guardian,
                         "gateway": gateway, "traders": addresses[3:]},
            "keys": {"owner": keys[0], "operator": keys[1], "keeper": keys[2], "guardian": dev_keys(11)[10],
                     "gateway": gateway_key, "traders": keys[3:]},
        }
        out.write_text(json.dumps(doc, indent=2))
        progress("funding", f"{len(keys[3:])} traders: 1,000,000 USDC and 10 WETH deposited each; first oracle prices")
        fund_traders(w3, d, keys[3:], 1_000_000 * 10**6, 10 * 10**18)
        progress("gateway", f"traders approve the Hyperliquid API's gateway {gateway} as their agent")
        approve_gateway(w3, d, addresses[3:], gateway)
        oracle = contract(w3, "Oracle", d.oracle)
        ts = w3.eth.get_block("latest").timestamp
        w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices(
            [0, 1], [3_000 * 10**6, 60_000 * 10**6], ts).transact({"from": keeper}))
        ch = contract(w3, "ClearingHouse", d.clearing_house)
        print(f"crossbook devnet on {anvil.url} (chain id {d.chain_id})")
        for name in ("ClearingHouse", "Oracle", "USDC", "WETH"):
            print(f"  {name:<14} {doc[name]}")
        print(f"  markets        {', '.join(d.markets)} (on-chain count {ch.functions.marketCount().call()})")
        print(f"  operator       {operator}\n  keeper         {keeper}\n  guardian       {guardian}")
        print(f"addresses and dev keys written to {out}")
        if args.exit_after_deploy:
            print("Ctrl-C stops everything.")
            return 0
        # A devnet is a fresh chain: a journal from an earlier devnet describes another chain.
        for stale in out.parent.glob("journal.sqlite*"):
            stale.unlink()
        api_url = f"http://127.0.0.1:{args.api_port}"
        supervisor = Supervisor(out.parent / "processes.json")
        children = supervisor.children
        progress("api", f"venue serve on {api_url}")
        supervisor.start("api", [sys.executable, "-m", "venue.cli", "serve", "--deployment", str(out),
                                 "--rpc-url", anvil.url, "--port", str(args.api_port),
                                 "--journal", str(out.parent / "journal.sqlite")])
        from .devchain import wait_until
        import httpx

        wait_until(lambda: httpx.get(f"{api_url}/health").status_code == 200, 60, "venue API")
        progress("keepers", f"oracle (random walk, {args.oracle_heartbeat:g} s heartbeat), liquidator, auto-deleveraging, risk (haircut), "
                            "funding (every 10 min)")
        for bot, extra in (("oracle", ["--feed", "walk", "--heartbeat", str(args.oracle_heartbeat)]), ("liquidator", []),
                           ("adl", []),
                           ("risk", []),
                           ("funding", ["--api", api_url, "--interval", "600"])):
            supervisor.start(f"keeper-{bot}", [sys.executable, "-m", "keeper.cli", bot, "--deployment", str(out),
                                               *extra])
        progress("market maker", f"keeper mm: trader 0 quoting 5 levels a side on every market (Prometheus metrics "
                                 f"on :{args.mm_metrics_port})")
        supervisor.start("market-maker", [sys.executable, "-m", "keeper.cli", "mm", "--deployment", str(out),
                                          "--api", api_url, "--metrics-port", str(args.mm_metrics_port),
                                          "--telemetry", str(out.parent / "mm-telemetry.jsonl")])

        def quoted() -> bool:
            try:
                return all(b["bids"] and b["asks"] for b in (httpx.get(f"{api_url}/book/{m}").json()
                                                             for m in d.markets))
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        ready_by = time.monotonic() + 60
        ready = False
        try:
            # Supervising from the start: a service that exits while the devnet is still coming
            # up is restarted too. Ready once the market maker's quotes make every book two-sided.
            while not stop.wait(0.5):
                if anvil.process.poll() is not None:
                    print("venue devnet: anvil exited; stopping everything", file=sys.stderr)
                    return 1
                supervisor.restart_exited()
                if not ready and (quoted() or time.monotonic() > ready_by):
                    ready = True
                    if time.monotonic() > ready_by:
                        progress("market maker", "no two-sided book yet after 60 s (see its output above)")
                    progress("ready", f"in {time.monotonic() - started:.1f} s: API {api_url}")
                    print(f"  API            {api_url} (docs at /docs, websocket at /ws, metrics at /metrics)")
                    print(f"  console        {api_url}/ui")
                    print(f"  market maker   keeper mm: trader 0, 5 levels a side on every market; metrics "
                          f"http://127.0.0.1:{args.mm_metrics_port}/metrics, telemetry {out.parent / 'mm-telemetry.jsonl'}")
                    print(f"  keepers        oracle (random walk, {args.oracle_heartbeat:g} s heartbeat, 0.5 % deviation), liquidator, "
                          "auto-deleveraging, risk (raises the WETH haircut), funding (10 min)")
                    print("Ctrl-C stops everything.", flush=True)
        except KeyboardInterrupt:
            pass
        print("stopping")
        return 0
    finally:
        # Every service but the API at once (the market maker cancels its quotes through the API
        # on its way out), then the API, then Anvil.
        live = [c for c in children if c.poll() is None]
        for group in ([c for c in live if "serve" not in c.args], [c for c in live if "serve" in c.args]):
            for child in group:
                child.terminate()
            for child in group:
                try:
                    child.wait(10)
                except Exception:  # noqa: BLE001: subprocess.TimeoutExpired; it will not stop: kill it
                    child.kill()
                    child.wait()
        anvil.stop()


class Supervisor:
    """The devnet's services (API, market maker, keepers): a crashed one is started again with a
    log line instead of taking the devnet down; one that keeps crashing (5 times in a minute) is
    left down with a message. Their process ids are kept in `processes.json` beside the
    deployment file."""

    def __init__(self, pid_file: Path):
        self.pid_file = pid_file
        self.services: dict[str, tuple[list[str], object]] = {}
        self.restarts: dict[str, list[float]] = {}
        self.children: list = []

    def start(self, name: str, argv: list[str]):
        import subprocess

        process = subprocess.Popen(argv)
        self.services[name] = (argv, process)
        self.children.append(process)
        self._write()
        return process

    def restart_exited(self) -> None:
        import time

        for name, (argv, process) in list(self.services.items()):
            code = process.poll()
            if code is None:
                continue
            recent = [t for t in self.restarts.get(name, []) if time.monotonic() - t < 60]
            if len(recent) >= 5:
                print(f"venue devnet: {name} exited with code {code} 5 times in a minute; leaving it down",
                      file=sys.stderr, flush=True)
                del self.services[name]
                continue
            self.restarts[name] = recent + [time.monotonic()]
            new = self.start(name, argv)
            print(f"venue devnet: {name} (pid {process.pid}) exited with code {code}; restarted as pid {new.pid}",
                  file=sys.stderr, flush=True)

    def _write(self) -> None:
        self.pid_file.write_text(json.dumps({name: p.pid for name, (_, p) in self.services.items()}, indent=2))


def cmd_serve(args) -> int:
    """The API, engine and settlement pipeline against a running deployment."""
    import gc
    import logging

    import uvicorn

    from .api.app import create_app
    from .settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    overrides = {k: v for k, v in (("deployment", args.deployment), ("rpc_url", args.rpc_url),
                                   ("port", args.port), ("journal", args.journal)) if v is not None}
    settings = Settings(**overrides)
    # The venue holds a large, long-lived heap (books, fills) and allocates per request: the
    # default gen0 threshold of 700 makes the cyclic GC a visible share of each request
    # (`make bench-api`: batch 5.7k -> 7.2k orders/s with this setting).
    gc.set_threshold(50_000, 50, 1_000)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning",
                loop="uvloop", ws="websockets-sansio", proxy_headers=False, server_header=False,
                timeout_graceful_shutdown=5,
                # No permessage-deflate: compressing every book delta and fill for every subscriber
                # was a visible share of the loop under load (py-spy, `make bench-api`); the venue
                # serves local clients.
                ws_per_message_deflate=False)
    return 0


def fund_traders(w3, deployment, keys: list[str], quote_units: int, weth_wei: int) -> None:
    """Mints devnet USDC and WETH to each trader and deposits it as collateral."""
    from .signing import address_of

    house = contract(w3, "ClearingHouse", deployment.clearing_house)
    for key in keys:
        addr = address_of(key)
        for token, amount in ((deployment.usdc, quote_units), (deployment.weth, weth_wei)):
            if not amount:
                continue
            erc20 = contract(w3, "MockERC20", token)
            for fn in (erc20.functions.mint(addr, amount), erc20.functions.approve(house.address, amount),
                       house.functions.deposit(token, amount)):
                w3.eth.wait_for_transaction_receipt(fn.transact({"from": addr}))


def approve_gateway(w3, deployment, accounts: list[str], gateway: str) -> None:
    """Each (Anvil-unlocked) account approves the Hyperliquid API's gateway key as its agent."""
    house = contract(w3, "ClearingHouse", deployment.clearing_house)
    for account in accounts:
        w3.eth.wait_for_transaction_receipt(house.functions.setAgent(gateway, True).transact({"from": account}))


def gateway_address(args, doc: dict) -> str | None:
    """The gateway to approve: --gateway, else the deployment file's gateway key, else the
    venue's answer at --api (GET /hl/gateway)."""
    from .signing import address_of

    if args.gateway:
        return args.gateway
    if doc.get("keys", {}).get("gateway"):
        return address_of(doc["keys"]["gateway"])
    if args.api:
        import httpx

        return httpx.get(f"{args.api}/hl/gateway", timeout=10).json()["gateway"]
    return None


def cmd_hl(args) -> int:
    """The Hyperliquid-compatible API's commands: approve / revoke the gateway as an account's
    agent on-chain; verify the journal's gateway fills against the signed requests."""
    from .signing import address_of

    doc, w3, ch, symbols = on_chain(args)
    if args.action == "verify":
        from .chain import Deployment
        from .engine import Limits
        from .hl_verify import verify
        from .settings import Settings
        from .signing import Domain

        settings = Settings()
        d = Deployment.from_json(doc)
        journal = args.journal or str(Path(args.deployment).parent / "journal.sqlite")
        report = verify(journal, read_markets(ch, d.markets), Domain(d.chain_id, d.clearing_house).separator,
                        Limits(rate_per_s=settings.orders_per_s, burst=settings.orders_burst),
                        settings.hl_accept_mainnet)
        print(f"signed requests checked       {report.actions}\n"
              f"gateway orders checked        {report.orders}\n"
              f"fills with a gateway order    {report.fills_checked}\n"
              f"signed by an on-chain agent   {report.chain_agent_actions} (the chain's AgentSet events show "
              f"whose agent)\nproblems                      {len(report.problems)}")
        for problem in report.problems[:50]:
            print(f"  {problem}")
        return 0 if report.ok else 1
    gateway = gateway_address(args, doc)
    if gateway is None:
        print("venue hl: no gateway address (pass --gateway or --api, or a deployment file with a gateway key)",
              file=sys.stderr)
        return 2
    key = args.key or doc.get("keys", {}).get("traders", [None] * (args.trader + 1))[args.trader]
    if not key:
        print(f"venue hl {args.action}: no key (pass --key or --trader)", file=sys.stderr)
        return 2
    approved = args.action == "approve"
    receipt = send_signed(w3, ch.functions.setAgent(gateway, approved), key, f"hl {args.action}")
    if receipt is None:
        return 1
    print(f"{address_of(key)} {'approved' if approved else 'revoked'} the gateway {gateway} as its agent "
          f"(block {receipt.blockNumber})")
    return 0


def send_signed(w3, fn, key: str, what: str):
    """Signs and sends a ClearingHouse call from `key`; None (with the reason printed) if the
    contract refuses it or it reverts."""
    from eth_account import Account

    account = Account.from_key(key)
    try:
        tx = fn.build_transaction({"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)})
    except Exception as exc:  # the call reverts: say why (Unauthorized, EscapeNotDue...)
        print(f"venue {what}: refused by the ClearingHouse: {explain_revert(fn.contract_abi, exc)}",
              file=sys.stderr)
        return None
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
    if receipt.status != 1:
        print(f"venue {what}: transaction {receipt.transactionHash.hex()} reverted", file=sys.stderr)
        return None
    return receipt


def on_chain(args) -> tuple[dict, object, object, list[str]]:
    """(deployment file, web3, ClearingHouse, market symbols) for a command's --deployment and --rpc-url."""
    doc = json.loads(Path(args.deployment).read_text())
    w3 = connect(args.rpc_url or doc.get("rpc", "http://127.0.0.1:8545"))
    return doc, w3, contract(w3, "ClearingHouse", doc["ClearingHouse"]), list(doc.get("markets", []))


def chain_args(p, key_help: str) -> None:
    """--deployment, --rpc-url and --key, as every command that sends a transaction takes them."""
    p.add_argument("--deployment", default=str(DEVNET_DIR / "deployment.json"))
    p.add_argument("--rpc-url", default=None, help="default: the deployment file's rpc")
    p.add_argument("--key", default=None, help=key_help)


def market_arg(name: str, symbols: list[str]) -> int | None:
    """A market named on the command line by symbol or id; None if it is neither."""
    return symbols.index(name) if name in symbols else int(name) if name.isdigit() else None


def cmd_exit(args) -> int:
    """The escape hatch from the command line: request (an exit, from a trader's key), freeze
    (anyone, once due), withdraw (exitFrozen, after a freeze), status."""
    from .signing import address_of

    doc, w3, ch, _ = on_chain(args)
    key = args.key or doc.get("keys", {}).get("traders", [None] * (args.trader + 1))[args.trader]
    me = address_of(key) if key else None
    delay = ch.functions.riskParams().call()[5]
    if args.action == "status":
        requester = args.requester or me
        frozen, settled = ch.functions.frozenAt().call(), ch.functions.lastSettledAt().call()
        requested = ch.functions.exitRequestedAt(requester).call() if requester else 0
        due = max(settled, requested) + delay if requested else None
        print(f"frozen at: {frozen or 'not frozen'}; last batch settled at {settled}; escape delay {delay} s; "
              f"{requester}: " + (f"exit requested at {requested}, freeze possible from {due} (chain time now "
                                  f"{w3.eth.get_block('latest').timestamp})" if requested else "no exit request"))
        return 0
    if key is None:
        print(f"venue exit {args.action}: no key (pass --key or --trader)", file=sys.stderr)
        return 2
    fn = {"request": lambda: ch.functions.requestExit(),
          "freeze": lambda: ch.functions.freeze(args.requester or me),
          "withdraw": lambda: ch.functions.exitFrozen()}[args.action]()
    receipt = send_signed(w3, fn, key, f"exit {args.action}")
    if receipt is None:
        return 1
    if args.action == "withdraw":
        ev = ch.events.ExitedFrozen().process_receipt(receipt)[0].args
        print(f"{me} left the frozen venue: paid {ev.quote} quote units and {ev.wethWei} WETH wei "
              f"(realized PnL at the marks {ev.realizedPnl})")
    else:
        print(f"exit {args.action} done in block {receipt.blockNumber} (tx {receipt.transactionHash.hex()})")
    return 0


def cmd_guardian(args) -> int:
    """The guardian's controls from the command line, signed with the guardian key of the
    deployment file (or --key): pause, unpause, reduce-only MARKET, resume MARKET."""
    doc, w3, ch, symbols = on_chain(args)
    key = args.key or doc.get("keys", {}).get("guardian")
    if not key:
        print(f"venue guardian: no guardian key in {args.deployment}; pass --key", file=sys.stderr)
        return 2
    market = None
    if args.action in ("reduce-only", "resume"):
        if args.market is None:
            print(f"venue guardian {args.action}: name a market (symbol or id)", file=sys.stderr)
            return 2
        market = market_arg(args.market, symbols)
        if market is None or market >= ch.functions.marketCount().call():
            print(f"venue guardian: no market {args.market!r} (markets: {', '.join(symbols)})", file=sys.stderr)
            return 2
    fn = {"pause": lambda: ch.functions.pause(), "unpause": lambda: ch.functions.unpause(),
          "reduce-only": lambda: ch.functions.setMarketReduceOnly(market, True),
          "resume": lambda: ch.functions.setMarketReduceOnly(market, False)}[args.action]()
    receipt = send_signed(w3, fn, key, f"guardian {args.action}")
    if receipt is None:
        return 1
    status = read_market_status(ch)
    print(f"{args.action} {'' if market is None else symbols[market] if market < len(symbols) else market} "
          f"done in block {receipt.blockNumber} (tx {receipt.transactionHash.hex()}); venue paused: "
          f"{ch.functions.paused().call()}; markets: "
          + ", ".join(f"{symbols[i] if i < len(symbols) else i} {MARKET_STATUS[s]}" for i, s in enumerate(status)))
    return 0


MARKET_STATUS = {0: "active", 1: "halted", 2: "reduce-only"}


def cmd_exposure(args) -> int:
    """Exposure groups from the command line: `show` lists each group's cap and markets; `set
    GROUP CAP MARKET...` (risk admin: the deployment file's owner key, or --key) makes the named
    markets the group with CAP quote units (`set GROUP 0` with no market dissolves it)."""
    doc, w3, ch, symbols = on_chain(args)
    if args.action == "set":
        key = args.key or doc.get("keys", {}).get("owner")
        if args.group is None or args.cap is None or not args.cap.isdigit() or not key:
            print("venue exposure-group set GROUP CAP MARKET...: CAP in quote units (5000000000000 = 5M USDC); "
                  "the risk admin's --key unless the deployment file has the owner's", file=sys.stderr)
            return 2
        mask = 0
        for name in args.markets:
            market = market_arg(name, symbols)
            if market is None:
                print(f"venue exposure-group: no market {name!r} (markets: {', '.join(symbols)})", file=sys.stderr)
                return 2
            mask |= 1 << market
        if send_signed(w3, ch.functions.setExposureGroup(args.group, int(args.cap), mask), key,
                       f"exposure-group set {args.group}") is None:
            return 1
    groups = exposure_groups(read_markets(ch, symbols))
    for g, cap, mask in groups:
        names = [symbols[i] if i < len(symbols) else str(i) for i in range(mask.bit_length()) if mask >> i & 1]
        print(f"group {g}: cap {cap} quote units across {', '.join(names)}")
    if not groups:
        print("no exposure groups")
    return 0


def cmd_bench(args) -> int:
    import importlib

    return importlib.import_module(f"venue.bench.{args.which}").main()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="venue", description="crossbook venue")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("devnet", help="start the whole venue locally (Ctrl-C stops)",
                       description="Starts Anvil, deploys crossbook, funds dev traders 3-9, then runs the venue API, "
                                   "the keepers (oracle, liquidator, funding) and a market maker, restarting any "
                                   "that exits. Prints a line per step and a ready line with the time it took.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--port", type=int, default=8545, help="Anvil's JSON-RPC port")
    p.add_argument("--block-time", type=float, default=None,
                   help="seconds per block; default: automine (a block per transaction)")
    p.add_argument("--out", default=str(DEVNET_DIR / "deployment.json"),
                   help="deployment file to write: addresses, chain id, dev keys (its folder also gets the journal, "
                        "anvil.log and processes.json)")
    p.add_argument("--api-port", type=int, default=8000, help="the venue API's HTTP and websocket port")
    p.add_argument("--mm-metrics-port", type=int, default=9108, help="the market maker's Prometheus metrics port")
    p.add_argument("--oracle-heartbeat", type=float, default=20.0, help="seconds between oracle pushes at most")
    p.add_argument("--exit-after-deploy", action="store_true",
                   help="deploy, fund, print the addresses and stop (no API, keepers or market maker)")
    p.set_defaults(fn=cmd_devnet)
    p = sub.add_parser("serve", help="run the venue API and settlement against a deployment",
                       description="The venue: API, matching engine, journal and settlement. Every setting is also "
                                   "an environment variable VENUE_<NAME> (venue/settings.py), e.g. "
                                   "VENUE_BATCH_MAX_FILLS=64, VENUE_MAX_BODY_BYTES, VENUE_AUTH_FAIL_BURST.")
    p.add_argument("--deployment", default=None, help="deployment JSON (default devnet/deployment.json)")
    p.add_argument("--rpc-url", default=None, help="JSON-RPC URL (default: the deployment file's rpc)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default 8000)")
    p.add_argument("--journal", default=None, help="journal file (default devnet/journal.sqlite)")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("guardian", help="pause or unpause the venue, put a market in reduce-only mode or resume it",
                       description="Guardian controls, sent from the guardian key in the deployment file. "
                                   "pause: no settlement and no deposits (withdrawals of free collateral and "
                                   "liquidations go on); unpause; reduce-only MARKET: fills that grow risk are "
                                   "rejected; resume MARKET: lift reduce-only.")
    p.add_argument("action", choices=["pause", "unpause", "reduce-only", "resume"])
    p.add_argument("market", nargs="?", default=None, help="symbol (ETH-PERP) or id, for reduce-only and resume")
    chain_args(p, "guardian private key (default: the deployment file's)")
    p.set_defaults(fn=cmd_guardian)
    p = sub.add_parser("exit", help="the escape hatch: request an exit, freeze a silent venue, withdraw after a freeze",
                       description="request: the trader asks to leave (on-chain). freeze [REQUESTER]: anyone, once "
                                   "no batch has settled for the escape delay since the request; every market's mark "
                                   "is fixed at its latest oracle price. withdraw: after a freeze, the trader's "
                                   "positions close at the marks and its equity is paid out (exitFrozen). status: "
                                   "when a freeze becomes possible.")
    p.add_argument("action", choices=["request", "freeze", "withdraw", "status"])
    p.add_argument("requester", nargs="?", default=None, help="freeze/status: whose request (default: the key's)")
    p.add_argument("--trader", type=int, default=0, help="trader number in the deployment file (default 0)")
    chain_args(p, "private key (default: the deployment file's trader key)")
    p.set_defaults(fn=cmd_exit)
    p = sub.add_parser("exposure-group", help="show or set exposure groups (per-pair caps on combined notional)",
                       description="show: each exposure group's cap and markets. set GROUP CAP MARKET...: the "
                                   "named markets form GROUP (1-255) and an account whose risk grows in one of them "
                                   "may hold at most CAP quote units of notional across all of them (at oracle "
                                   "prices); set GROUP 0 with no market dissolves it. Risk admin (owner on devnet).")
    p.add_argument("action", choices=["show", "set"])
    p.add_argument("group", nargs="?", type=int, default=None)
    p.add_argument("cap", nargs="?", default=None, help="quote units (USDC has 6 decimals)")
    p.add_argument("markets", nargs="*", help="symbols (ETH-PERP) or ids")
    chain_args(p, "risk admin private key (default: the deployment file's owner key)")
    p.set_defaults(fn=cmd_exposure)
    p = sub.add_parser("hl", help="the Hyperliquid-compatible API: approve its gateway, verify its fills",
                       description="approve / revoke: the account (--trader N of the deployment file, or --key) "
                                   "approves or revokes the venue's gateway key as its agent on the ClearingHouse; "
                                   "orders sent through /hl/exchange settle only for accounts that approved it. The "
                                   "gateway can place and cancel orders for the account within the contract's rules; "
                                   "it cannot withdraw. verify: re-checks from the journal that every fill of a "
                                   "gateway order traces to a request the account (or its agent) signed.")
    p.add_argument("action", choices=["approve", "revoke", "verify"])
    p.add_argument("--trader", type=int, default=0, help="trader number in the deployment file (default 0)")
    p.add_argument("--gateway", default=None, help="the gateway address (default: the deployment file's, or --api's)")
    p.add_argument("--api", default=None, help="a running venue to ask for its gateway address (GET /hl/gateway)")
    p.add_argument("--journal", default=None, help="verify: the journal (default: beside the deployment file)")
    chain_args(p, "the account's private key (default: the deployment file's trader key)")
    p.set_defaults(fn=cmd_hl)
    from .scenario.cli import add_parser as add_scenario_parser

    add_scenario_parser(sub)
    p = sub.add_parser("bench", help="run a benchmark (make bench-*)")
    p.add_argument("which", choices=["gas", "gasprofile", "engine", "scan", "api", "soak", "mm", "scenario"],
                   help="gas: settlement gas per fill; gasprofile: where the gas goes; engine: matching throughput; "
                        "scan: margin scan; api: HTTP and websocket throughput and ack-to-settle latency; soak: "
                        "memory over millions of orders; mm: the market maker's quote updates and re-quote latency; "
                        "scenario: the scenario lab's simulation speed")
    p.set_defaults(fn=cmd_bench)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
