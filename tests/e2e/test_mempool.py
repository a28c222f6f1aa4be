"""Mempool and oracle timing on a real Anvil started with `--order fees`: automine is switched
off after setup, transactions wait in the pool, and blocks are mined by hand."""

import pytest
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from keeper.sender import TxSender
from venue.chain import Fill, pack_fills
from venue.devchain import Anvil
from venue.domain import RejectReason, base, usdc
from venue.signing import Order, address_of, sign_order

from .scenario import leveraged_long

ETH_PRICE = usdc(3_000)
GWEI = 10**9


@pytest.fixture
def chain():
    with Anvil(accounts=8, extra_args=("--order", "fees")) as anvil:
        s = leveraged_long(anvil, base(6), ETH_PRICE)
        w3, ch, oracle, keys, sep = s.w3, s.ch, s.oracle, s.keys, s.separator
        operator, maker, victim, liq = address_of(keys[1]), keys[3], keys[4], keys[5]
        w3.provider.make_request("evm_setAutomine", [False])

        def mine(timestamp_step=1):
            w3.provider.make_request("evm_mine", [w3.eth.get_block("latest").timestamp + timestamp_step])
            return w3.eth.get_block("latest", full_transactions=True)

        def price_call(price):
            """An update observed at the latest block's time (after the stored one: the oracle
            refuses anything not newer)."""
            if w3.eth.get_block("latest").timestamp <= oracle.functions.getPrice(0).call()[1]:
                mine()
            return oracle.functions.setPrices([0, 1], [price, usdc(60_000)], w3.eth.get_block("latest").timestamp)

        yield {"w3": w3, "ch": ch, "oracle": oracle, "mine": mine, "price_call": price_call, "victim": address_of(victim),
               "keeper": TxSender(w3, keys[2], "oracle"), "liq": TxSender(w3, liq, "liquidator"),
               "operator": operator, "sep": sep, "maker": maker, "victim_key": victim}


def send_both(c, oracle_tip, liquidation_tip):
    """The recovery price update and a liquidation, both waiting in the pool for the same block."""
    update = c["keeper"].send(c["price_call"](ETH_PRICE), gas=200_000, tip=oracle_tip * GWEI, label="setPrices")
    liquidation = c["liq"].send(c["ch"].functions.liquidate(c["victim"], 0, base(6)), gas=700_000,
                                tip=liquidation_tip * GWEI, label="liquidate")
    block = c["mine"]()
    return block, c["w3"].eth.get_transaction_receipt(update["hash"]), c["w3"].eth.get_transaction_receipt(liquidation["hash"])


def test_priority_fee_decides_whether_the_liquidation_beats_the_oracle_update(chain):
    c = chain
    w3 = c["w3"]
    c["keeper"].send(c["price_call"](usdc(2_868)), gas=200_000, label="crash")
    c["mine"]()
    equity, _, maintenance = c["ch"].functions.health(c["victim"]).call()
    assert equity < maintenance
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    nonces = (c["keeper"].nonce, c["liq"].nonce)

    # Ordering 1: the liquidator bids more; it lands first and closes the account at the old price.
    block, update, liquidation = send_both(c, oracle_tip=1, liquidation_tip=20)
    assert update.blockNumber == liquidation.blockNumber == block.number
    assert liquidation.transactionIndex < update.transactionIndex
    assert liquidation.status == 1 and update.status == 1
    assert c["ch"].functions.position(c["victim"], 0).call()[0] == 0

    # Ordering 2, from the same state: the oracle update bids more; the account is healthy again
    # by the time the liquidation runs, and it reverts.
    w3.provider.make_request("evm_revert", [snapshot])
    c["keeper"].nonce, c["liq"].nonce = nonces
    block, update, liquidation = send_both(c, oracle_tip=20, liquidation_tip=1)
    assert update.transactionIndex < liquidation.transactionIndex
    assert update.status == 1 and liquidation.status == 0
    assert c["ch"].functions.position(c["victim"], 0).call()[0] == base(6)


def test_stale_oracle_rejects_fills_and_liquidation_reverts_with_its_error(chain):
    c = chain
    w3, ch = c["w3"], c["ch"]
    c["mine"](timestamp_step=61)  # no update for longer than the 60 s maximum age
    mo = Order(address_of(c["maker"]), 0, False, ETH_PRICE, base(1), 0, 0, 1)
    to = Order(c["victim"], 0, True, ETH_PRICE, base(1), 0, 0, 1)
    fill = Fill(mo, sign_order(mo, c["sep"], c["maker"]), to, sign_order(to, c["sep"], c["victim_key"]), base(1), ETH_PRICE)
    tx = ch.functions.settle(1, pack_fills([fill])).transact({"from": c["operator"], "gas": 1_000_000})
    c["mine"]()
    receipt = w3.eth.get_transaction_receipt(tx)
    rejected = ch.events.FillRejected().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.fillIndex, RejectReason(e.args.reason)) for e in rejected] == [(0, RejectReason.ORACLE_STALE)]
    updated_at = c["oracle"].functions.getPrice(0).call()[1]
    with pytest.raises(ContractCustomError) as err:
        ch.functions.liquidate(c["victim"], 0, base(6)).call({"from": c["liq"].address})
    selector = w3.keccak(text="StalePrice(uint256,uint256,uint256)")[:4].hex()
    assert selector in str(err.value) and format(updated_at, "x") in str(err.value)


def test_congestion_delays_the_oracle_update_and_with_it_the_liquidation(chain):
    c = chain
    w3 = c["w3"]
    w3.provider.make_request("anvil_setBlockGasLimit", [hex(120_000)])
    filler = w3.eth.accounts[7]
    call = c["price_call"](usdc(2_868))
    sent_at = w3.eth.block_number
    crash = c["keeper"].send(call, gas=100_000, tip=1 * GWEI, label="crash")
    congested_blocks = 3
    for _ in range(congested_blocks):
        # Higher-fee transfers fill each block; the 100k-gas update does not fit beside them.
        for _ in range(5):
            w3.eth.send_transaction({"from": filler, "to": filler, "value": 1, "gas": 21_000,
                                     "maxPriorityFeePerGas": 50 * GWEI, "maxFeePerGas": 100 * GWEI})
        c["mine"]()
    included = None
    for _ in range(5):
        c["mine"]()
        try:
            included = w3.eth.get_transaction_receipt(crash["hash"])
            break
        except Exception:
            continue
    assert included is not None and included.status == 1
    delay = included.blockNumber - (sent_at + 1)
    assert delay == congested_blocks  # the update waited out every congested block
    w3.provider.make_request("anvil_setBlockGasLimit", [hex(30_000_000)])
    liquidation = c["liq"].send(c["ch"].functions.liquidate(c["victim"], 0, base(6)), gas=700_000, label="liquidate")
    c["mine"]()
    receipt = w3.eth.get_transaction_receipt(liquidation["hash"])
    assert receipt.status == 1
    assert receipt.blockNumber - (sent_at + 1) == congested_blocks + 1  # liquidated that many blocks late
