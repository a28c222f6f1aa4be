"""Haircuts that follow the market: WETH-collateralised ETH-PERP longs through a WETH crash, once
with the static haircut and once with `keeper risk` running (real processes: the liquidator, the
ADL keeper and, in the second run, the risk keeper). Raising the haircut on the crash's
volatility and the wrong-way exposure gets the longs liquidated earlier: the dynamic run ends
with less loss for the insurance fund and the other side (printed)."""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from web3.logs import DISCARD

from venue.chain import Fill, contract, deploy, pack_fills
from venue.cli import fund_traders
from venue.devchain import Anvil, dev_keys, wait_until
from venue.domain import base, usdc
from venue.signing import Order, address_of, sign_order

ETH = 3_000 * 10**6
STEPS = 20  # ETH (and so WETH) falls 2 % a second for 20 s: 3,000 -> 2,003


def crash(tmp_path, dynamic: bool) -> dict:
    keys = dev_keys(8)
    owner, operator, keeper = (address_of(k) for k in keys[:3])
    maker, liquidator, victims = keys[3], keys[6], keys[4:6]
    with Anvil(accounts=8) as anvil:
        w3 = anvil.web3()
        d = deploy(w3, owner, operator=operator, keepers=(keeper,))
        fund_traders(w3, d, [maker, liquidator], usdc(1_000_000), 0)
        fund_traders(w3, d, victims, 0, 10 * 10**18)  # 10 WETH each, nothing else
        ch, oracle = contract(w3, "ClearingHouse", d.clearing_house), contract(w3, "Oracle", d.oracle)
        ts = w3.eth.get_block("latest").timestamp
        w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices([0, 1], [ETH, usdc(60_000)], ts).transact(
            {"from": keeper}))
        sep = bytes(ch.functions.domainSeparator().call())
        fills = []
        for n, v in enumerate(victims, start=1):  # each 40 ETH long (120,000 USDC) on 27,000 of WETH value
            mo = Order(address_of(maker), 0, False, ETH, base(40), 0, 0, n)
            to = Order(address_of(v), 0, True, ETH, base(40), 0, 0, n)
            fills.append(Fill(mo, sign_order(mo, sep, maker), to, sign_order(to, sep, v), base(40), ETH))
        receipt = w3.eth.wait_for_transaction_receipt(ch.functions.settle(0, pack_fills(fills)).transact({"from": operator}))
        assert not ch.events.FillRejected().process_receipt(receipt, errors=DISCARD)
        anvil.set_interval_mining(1)
        path = tmp_path / f"deployment-{dynamic}.json"
        path.write_text(json.dumps({**d.to_json(), "rpc": anvil.url, "keys": {"keeper": keys[2]}}))
        bots = [["liquidator", "--key", liquidator, "--name", "liquidator"], ["adl"]] + ([["risk"]] if dynamic else [])
        procs = [subprocess.Popen([sys.executable, "-m", "keeper.cli", *bot, "--deployment", str(path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for bot in bots]
        try:
            for p in procs:
                wait_until(lambda: "watching" in p.stdout.readline(), 60, "a keeper")
            start = w3.eth.block_number
            price = ETH
            for _ in range(STEPS):
                price = price * 98 // 100 // 10_000 * 10_000
                ts = w3.eth.get_block("latest").timestamp
                w3.eth.wait_for_transaction_receipt(oracle.functions.setPrices([0, 1], [price, usdc(60_000)], ts).transact(
                    {"from": keeper, "maxPriorityFeePerGas": 10**10, "maxFeePerGas": 10**11}))
            # Until the keepers are done: every victim flat or above maintenance margin.
            def settled():
                for v in victims:
                    equity, _, mm = ch.functions.health(address_of(v)).call()
                    if ch.functions.position(address_of(v), 0).call()[0] and equity < mm:
                        return False
                return True
            wait_until(settled, 60, "the keepers to finish")
            time.sleep(2)  # a last block for anything in flight
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
        who = {address_of(v) for v in victims}

        def total(event, field):
            return sum(getattr(e.args, field) for e in getattr(ch.events, event)().get_logs(from_block=start)
                       if e.args.account in who)

        return {"insurance": total("InsuranceUsed", "amount"), "socialised": total("Deleveraged", "socialised"),
                "bad_debt": total("BadDebt", "amount"), "haircut": ch.functions.haircutBps().call(),
                "liquidations": len([e for e in ch.events.Liquidated().get_logs(from_block=start) if e.args.account in who])}


def test_keeper_risk_raises_the_haircut_in_a_weth_crash_and_leaves_less_loss_than_a_static_haircut(tmp_path):
    # The two runs are independent chains and processes, mostly waiting on 1-second blocks: side by side.
    with ThreadPoolExecutor(2) as pool:
        static, dynamic = pool.map(lambda dyn: crash(tmp_path, dynamic=dyn), (False, True))
    loss = {name: r["insurance"] + r["socialised"] + r["bad_debt"] for name, r in (("static", static),
                                                                                   ("dynamic", dynamic))}
    print(f"\nWETH crash, two 40 ETH longs on 10 WETH each: loss beyond the accounts (insurance fund + ADL + "
          f"bad debt) static haircut {static['haircut']} bps: {loss['static'] / 1e6:,.2f} USDC "
          f"({static['liquidations']} liquidations); keeper risk (haircut raised to {dynamic['haircut']} bps): "
          f"{loss['dynamic'] / 1e6:,.2f} USDC ({dynamic['liquidations']} liquidations)")
    assert static["haircut"] == 1_000 and dynamic["haircut"] > static["haircut"]
    assert loss["static"] > 0
    assert loss["dynamic"] < loss["static"]
