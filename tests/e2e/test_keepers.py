"""Keepers end to end: real Anvil (1-second blocks), real contracts, liquidator processes."""

import json
import subprocess
import sys

import pytest
from web3.logs import DISCARD

from venue.chain import contract
from venue.devchain import Anvil, wait_until
from venue.domain import base, usdc
from venue.signing import address_of

from .scenario import add_fill, leveraged_long

ETH_PRICE = usdc(3_000)


@pytest.fixture
def crash_setup(tmp_path):
    """A 6 ETH long on 1,000 USDC (20x at 3,000) with a 0.01 BTC long beside it, two funded
    liquidators, an insurance fund."""
    with Anvil(accounts=8) as anvil:
        s = leveraged_long(anvil, base(6), ETH_PRICE)
        w3, ch, oracle, keys, d = s.w3, s.ch, s.oracle, s.keys, s.deployment
        keeper, victim, liq1, liq2 = address_of(keys[2]), keys[4], keys[5], keys[6]
        last = [0]

        def push(price, btc=usdc(60_000)):
            # Observed at the latest block's time, which must be newer than the last update's.
            ts = wait_until(lambda: (t := w3.eth.get_block("latest").timestamp) > last[0] and t, 10, "a newer block")
            last[0] = ts
            tx = oracle.functions.setPrices([0, 1], [price, btc], ts).transact({"from": keeper, "gas": 200_000})
            return w3.eth.wait_for_transaction_receipt(tx)

        # A second, small leg in the same cross-margin account: 0.01 BTC long at 60,000.
        add_fill(s, 1, base("0.01"), usdc(60_000), batch=1, nonce=1)
        anvil.set_interval_mining(1)
        path = tmp_path / "deployment.json"
        path.write_text(json.dumps({**d.to_json(), "rpc": anvil.url, "keys": {"keeper": keys[2]}}))
        procs = []

        def start_liquidator(key, name, tip):
            proc = subprocess.Popen([sys.executable, "-m", "keeper.cli", "liquidator", "--deployment", str(path),
                                     "--key", key, "--name", name, "--tip-gwei", str(tip)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(proc)
            lines = []
            wait_until(lambda: (lines.append(proc.stdout.readline()) or "watching" in lines[-1]), 60,
                       f"{name} to start")
            return proc

        try:
            yield {"w3": w3, "ch": ch, "push": push, "victim": address_of(victim), "liq": (liq1, liq2),
                   "start": start_liquidator, "procs": procs}
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(10)


def liquidations(ch, w3, from_block, account):
    return [e for e in ch.events.Liquidated().get_logs(from_block=from_block, to_block=w3.eth.block_number)
            if e.args.account == account]


def test_price_drop_is_liquidated_within_two_blocks_and_penalty_is_shared(crash_setup):
    s = crash_setup
    ch, w3 = s["ch"], s["w3"]
    liq1 = address_of(s["liq"][0])
    s["start"](s["liq"][0], "liq-1", 2)
    fund_before = ch.functions.insuranceFund().call()
    price_receipt = s["push"](usdc(2_868))  # equity 199 USDC, maintenance 445 (430 ETH + 15 BTC): liquidatable
    events = wait_until(lambda: liquidations(ch, w3, price_receipt.blockNumber, s["victim"]), 20, "liquidation")
    event = events[0]
    assert event.blockNumber - price_receipt.blockNumber <= 2
    assert event.args.liquidator == liq1
    assert event.args.insuranceCut > 0 and event.args.penalty > event.args.insuranceCut
    assert ch.functions.insuranceFund().call() == fund_before + event.args.insuranceCut
    # The liquidator holds the slice it took, bought below the oracle price by the penalty.
    position = ch.functions.position(liq1, 0).call()
    assert position[0] == -event.args.size and position[3] == event.args.penalty  # unrealized gain = penalty
    equity, _, maintenance = ch.functions.health(s["victim"]).call()
    assert ch.functions.position(s["victim"], 0).call()[0] == 0 or equity >= maintenance


def test_two_competing_liquidators_one_wins_and_the_other_carries_on(crash_setup):
    s = crash_setup
    ch, w3 = s["ch"], s["w3"]
    p1 = s["start"](s["liq"][0], "liq-1", 5)
    p2 = s["start"](s["liq"][1], "liq-2", 1)
    price_receipt = s["push"](usdc(2_868))
    wait_until(lambda: liquidations(ch, w3, price_receipt.blockNumber, s["victim"]), 20, "liquidation")
    w3_block = w3.eth.block_number
    wait_until(lambda: w3.eth.block_number >= w3_block + 3, 10, "three more blocks")
    assert len(liquidations(ch, w3, price_receipt.blockNumber, s["victim"])) == 1
    # Both bots are still running after the race; the loser's transaction reverted on-chain and it
    # logged that and carried on.
    assert p1.poll() is None and p2.poll() is None
    logs = []
    for proc in (p1, p2):
        proc.terminate()
        logs.append(proc.communicate(timeout=10)[0])
    assert proc.returncode == 0
    assert "lost the race" in logs[1], logs[1]
    assert "liquidated" in logs[0]


BLACK_THURSDAY = "eth_usdt_perp_binance_1m_20200312-13.csv"
CRASH_OFFSET_S = 640 * 60  # 10:40 UTC on 2020-03-12, minutes before ETH fell from 148 to 123


def test_lagging_oracle_on_black_thursday_the_insurance_fund_then_adl_cover_the_loss(tmp_path):
    from keeper.feeds import DATA, CsvFeed

    start_price = CsvFeed({0: DATA / BLACK_THURSDAY}, 0.0, 1.0, CRASH_OFFSET_S).price_at(0.0)[0]
    with Anvil(accounts=8) as anvil:
        # 100 ETH long on 1,000 USDC at the replay's first price: about 15x.
        s = leveraged_long(anvil, base(100), start_price)
        w3, ch, oracle, keys, d = s.w3, s.ch, s.oracle, s.keys, s.deployment
        owner, victim, liq = address_of(keys[0]), keys[4], keys[5]
        tok = contract(w3, "MockERC20", d.usdc)
        for fn in (tok.functions.mint(owner, usdc(300)), tok.functions.approve(ch.address, usdc(300)),
                   ch.functions.depositInsurance(usdc(300))):
            w3.eth.wait_for_transaction_receipt(fn.transact({"from": owner}))
        anvil.set_interval_mining(1)
        path = tmp_path / "deployment.json"
        path.write_text(json.dumps({**d.to_json(), "rpc": anvil.url, "keys": {"keeper": keys[2]}}))
        procs = []
        try:
            lq = subprocess.Popen([sys.executable, "-m", "keeper.cli", "liquidator", "--deployment", str(path), "--key", liq],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(lq)
            wait_until(lambda: "watching" in lq.stdout.readline(), 60, "liquidator")
            start_block = w3.eth.block_number
            # The oracle keeper replays the crash at 30x, pushing on 8 % moves, each 2 s late.
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "keeper.cli", "oracle", "--deployment", str(path), "--feed", "csv",
                 "--csv", f"0={DATA / BLACK_THURSDAY}", "--start-offset", str(CRASH_OFFSET_S), "--speed", "30",
                 "--deviation-bps", "800", "--heartbeat", "600", "--delay", "2"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            # Auto-deleveraging beside the liquidator (the deployment's keeper key: the risk-keeper role).
            adl = subprocess.Popen([sys.executable, "-m", "keeper.cli", "adl", "--deployment", str(path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(adl)
            wait_until(lambda: "watching" in adl.stdout.readline(), 60, "adl keeper")
            who = address_of(victim)
            wait_until(lambda: ch.functions.position(who, 0).call()[0] == 0, 120,
                       "the position closed by the liquidator and auto-deleveraging")

            def logs(event):
                return [e for e in getattr(ch.events, event)().get_logs(from_block=start_block) if e.args.account == who]

            # The lagged updates moved the price past the account's bankruptcy: the insurance fund
            # paid what it held above its floor, and the rest was auto-deleveraged against the
            # short on the other side (the maker) at the bankruptcy price: no bad debt is left.
            assert liquidations(ch, w3, start_block, who) or logs("Deleveraged")
            assert logs("InsuranceUsed")
            deleveraged = logs("Deleveraged")
            assert deleveraged and {e.args.counterparty for e in deleveraged} == {address_of(keys[3])}
            assert not logs("BadDebt")
            assert ch.functions.balances(who).call()[0] >= 0
            assert sum(ch.functions.position(address_of(k), 0).call()[0] for k in keys) == 0
            # The price the chain acted on was observed at least 2 s before it arrived.
            updates = [e for e in oracle.events.PriceUpdated().get_logs(from_block=start_block) if e.args.id == 0]
            assert updates
            for e in updates:
                assert w3.eth.get_block(e.blockNumber).timestamp - e.args.timestamp >= 2
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


def test_funding_keeper_posts_the_books_premium_on_schedule(tmp_path):
    """Bids and asks both above the oracle: longs pay. The keeper process reads the venue's book
    over HTTP and posts premium / 8 per hour, every interval."""
    import httpx

    from keeper.funding import premium_rate
    from venue.client import Client
    from venue.devchain import free_port, stop_process

    with Anvil(accounts=8) as anvil:
        s = leveraged_long(anvil, base(1), ETH_PRICE, collateral=usdc(100_000))
        anvil.set_interval_mining(1)
        path = tmp_path / "deployment.json"
        path.write_text(json.dumps({**s.deployment.to_json(), "rpc": anvil.url,
                                    "keys": {"operator": s.keys[1], "keeper": s.keys[2], "traders": s.keys[3:]}}))
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        procs = [subprocess.Popen([sys.executable, "-m", "venue.cli", "serve", "--deployment", str(path), "--port",
                                   str(port), "--journal", str(tmp_path / "j.sqlite")])]
        try:
            wait_until(lambda: httpx.get(f"{api}/health").status_code == 200, 30, "venue API")
            mm = Client.from_devnet(0, str(path), api)
            mm.place("ETH-PERP", "buy", "3030", "1", tif="Alo")  # the book trades 1-2 % over the oracle
            mm.place("ETH-PERP", "sell", "3060", "1", tif="Alo")
            book = httpx.get(f"{api}/book/0", params={"depth": 100}).json()
            expected = premium_rate(book, ETH_PRICE, 1_000 * 10**6)
            assert expected > 0
            start = s.w3.eth.block_number
            procs.append(subprocess.Popen([sys.executable, "-m", "keeper.cli", "funding", "--deployment", str(path),
                                           "--api", api, "--interval", "2"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))

            def eth_updates():
                return [e for e in s.ch.events.FundingUpdated().get_logs(from_block=start) if e.args.marketId == 0]

            updates = wait_until(lambda: len(eth_updates()) >= 2 and eth_updates(), 40, "two funding updates")
            assert all(e.args.ratePerHour == expected for e in updates)
            assert updates[1].args.fundingIndex > updates[0].args.fundingIndex  # longs pay: the index rises
            assert s.ch.functions.position(s.victim, 0).call()[4] > 0  # the long owes funding
        finally:
            for proc in procs:
                stop_process(proc)


def test_a_crash_in_one_leg_bleeds_into_the_other_and_the_liquidator_closes_eth(crash_setup):
    """Cross margin: BTC falls to 5,000 while ETH holds at 3,000. The 0.01 BTC long loses 550
    USDC, which takes the whole account under maintenance margin, and the liquidator sells part
    of the ETH leg, the largest position, though its own price never moved."""
    s = crash_setup
    ch, w3 = s["ch"], s["w3"]
    s["start"](s["liq"][0], "liq-1", 2)
    equity, _, maintenance = ch.functions.health(s["victim"]).call()
    assert equity >= maintenance
    receipt = s["push"](ETH_PRICE, btc=usdc(5_000))
    events = wait_until(lambda: liquidations(ch, w3, receipt.blockNumber, s["victim"]), 20, "liquidation")
    assert events[0].args.marketId == 0  # the ETH leg
    eth_left = ch.functions.position(s["victim"], 0).call()[0]
    assert 0 < eth_left < base(6)  # partial: only what restores maintenance margin plus the buffer
    assert ch.functions.position(s["victim"], 1).call()[0] == base("0.01")  # the crashed leg is untouched
    equity, _, maintenance = ch.functions.health(s["victim"]).call()
    assert equity >= maintenance
