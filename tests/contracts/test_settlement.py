"""Batch settlement of signed fills: the happy path with exact money, and every rejection."""

import ape
import pytest

from venue.chain import pack_fills
from venue.signing import ORDER_TYPE, Domain, keccak, order_digest, order_digest_reference, sign_order
from venue.domain import DEVNET_MARKETS, FLAG_IOC, FLAG_POST_ONLY, FLAG_REDUCE_ONLY, RejectReason, base, usdc

from .conftest import BTC, ETH, ETH_PRICE


def test_settle_moves_positions_fees_and_collateral_exactly(venue, maker, taker):
    sell = venue.order(maker, False, ETH_PRICE, base(1))
    buy = venue.order(taker, True, ETH_PRICE + usdc(10), base(1))
    receipt = venue.settle(venue.fill(sell, buy))
    assert venue.rejections(receipt) == []
    notional = usdc(3_000)
    taker_fee = notional * 5 // 10_000  # 1.50 USDC
    maker_rebate = notional * 1 // 10_000  # 0.30 USDC
    assert venue.balances(taker).quote == usdc(100_000) - taker_fee
    assert venue.balances(maker).quote == usdc(100_000) + maker_rebate
    assert venue.position(taker).size == base(1)
    assert venue.position(maker).size == -base(1)
    assert venue.position(taker).entryPrice == ETH_PRICE
    assert venue.ch.feePool() == taker_fee - maker_rebate
    event = [e for e in receipt.events if e.event_name == "BatchSettled"][0]
    assert (event.batchIndex, event.fills, event.settled) == (0, 1, 1)


def test_contract_publishes_the_eip712_domain_and_order_type_it_verifies(venue, maker, taker):
    """Off-chain signers read the domain and type from the contract; the contract's written-out
    type hash is the hash of its type string, and eth-account's encoding of an order under the
    published domain is the digest the contract accepts."""
    ch = venue.ch
    assert ch.orderType() == ORDER_TYPE
    assert bytes(ch.orderTypeHash()) == keccak(ch.orderType().encode())
    fields, name, version, chain_id, contract, _, _ = ch.eip712Domain()
    domain = Domain(chain_id, contract)
    assert (fields, name, version, contract) == (b"\x0f", "crossbook", "1", ch.address)
    assert domain.separator == bytes(ch.domainSeparator())
    sell, _ = venue.order(maker, False, ETH_PRICE, base(1))
    assert order_digest_reference(sell, domain) == order_digest(sell, domain.separator)
    signed = (sell, sign_order(sell, domain.separator, maker.key))
    assert venue.rejections(venue.settle(venue.fill(signed, venue.order(taker, True, ETH_PRICE, base(1))))) == []


def test_closing_a_position_realizes_pnl_into_collateral(venue, maker, taker):
    venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(2)), venue.order(taker, True, ETH_PRICE, base(2))))
    venue.push_prices(eth=ETH_PRICE + usdc(100))
    up = ETH_PRICE + usdc(100)
    venue.settle(venue.fill(venue.order(maker, True, up, base(2)), venue.order(taker, False, up, base(2))))
    # The taker paid 5 bps on both fills (3.00 and 3.10 USDC); the maker earned 1 bp back on both.
    taker_fees = usdc(6_000) * 5 // 10_000 + usdc(6_200) * 5 // 10_000
    maker_rebates = usdc(6_000) // 10_000 + usdc(6_200) // 10_000
    assert venue.position(taker).size == venue.position(maker).size == 0
    assert venue.balances(taker).quote == usdc(100_000) + usdc(200) - taker_fees
    assert venue.balances(maker).quote == usdc(100_000) - usdc(200) + maker_rebates
    assert venue.ch.feePool() == taker_fees - maker_rebates


def test_partial_fills_accumulate_and_cannot_exceed_the_signed_size(venue, maker, taker):
    sell = venue.order(maker, False, ETH_PRICE, base(1))
    r1 = venue.settle(venue.fill(sell, venue.order(taker, True, ETH_PRICE, base("0.4")), size=base("0.4")))
    r2 = venue.settle(venue.fill(sell, venue.order(taker, True, ETH_PRICE, base("0.6")), size=base("0.6")))
    assert venue.rejections(r1) == venue.rejections(r2) == []
    r3 = venue.settle(venue.fill(sell, venue.order(taker, True, ETH_PRICE, base("0.1")), size=base("0.1")))
    assert venue.rejections(r3) == [(0, RejectReason.ORDER_CLOSED, maker.address)]
    assert venue.position(maker).size == -base(1)


def test_settle_rejects_fill_beyond_signed_size(venue, maker, taker):
    sell = venue.order(maker, False, ETH_PRICE, base(1))
    buy = venue.order(taker, True, ETH_PRICE, base(2))
    receipt = venue.settle(venue.fill(sell, buy, size=base(2)))
    assert venue.rejections(receipt) == [(0, RejectReason.OVERFILL, maker.address)]
    assert venue.position(taker).size == 0


def test_settle_rejects_replayed_fill_from_an_earlier_batch(venue, maker, taker):
    fill = venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1)))
    venue.settle(fill)
    receipt = venue.settle(fill)
    assert venue.rejections(receipt) == [(0, RejectReason.ORDER_CLOSED, maker.address)]
    assert venue.position(taker).size == base(1)


def test_only_the_operator_settles(venue, maker, taker):
    fill = venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1)))
    with ape.reverts(venue.ch.Unauthorized, caller=taker.address, role=1):
        venue.ch.settle(0, pack_fills([fill]), sender=taker.account)


def test_batch_index_must_be_the_next_one_so_a_batch_settles_once(venue, maker, taker):
    fill = venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1)))
    with ape.reverts(venue.ch.BatchIndexMismatch, expected=0, given=1):
        venue.ch.settle(1, pack_fills([fill]), sender=venue.operator)
    venue.settle(fill, index=0)
    with ape.reverts(venue.ch.BatchIndexMismatch, expected=1, given=0):
        venue.ch.settle(0, pack_fills([fill]), sender=venue.operator)
    assert venue.position(taker).size == base(1)


def test_malformed_batch_reverts(venue, maker, taker):
    with ape.reverts(venue.ch.MalformedBatch, length=245):
        venue.ch.settle(0, b"\x01" * 245, sender=venue.operator)
    good = pack_fills([venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1)))])
    # No maker table; a fill whose maker index lies outside the table; a truncated fill.
    no_makers = b"\x00" + good[21:]
    bad_index = good[:21] + good[21:37] + b"\x01" + good[38:]
    for data in (no_makers, bad_index, good[:-1]):
        with ape.reverts(venue.ch.MalformedBatch, length=len(data)):
            venue.ch.settle(venue.ch.nextBatchIndex(), data, sender=venue.operator)
    assert venue.rejections(venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)),
                                                    venue.order(taker, True, ETH_PRICE, base(1))))) == []


def test_settle_rejects_forged_signature(venue, maker, taker):
    intruder = venue.traders[2]
    forged = venue.order(maker, False, ETH_PRICE, base(1), signer_key=intruder.key)
    receipt = venue.settle(venue.fill(forged, venue.order(taker, True, ETH_PRICE, base(1))))
    assert venue.rejections(receipt) == [(0, RejectReason.INVALID_SIGNATURE, maker.address)]


def test_an_approved_agent_signs_for_its_account_until_revoked(venue, maker, taker):
    agent = venue.traders[4]
    venue.ch.setAgent(agent.address, True, sender=maker.account)
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1), signer_key=agent.key),
                                      venue.order(taker, True, ETH_PRICE, base(1))))
    assert venue.rejections(receipt) == []
    assert venue.position(maker).size == -base(1)
    venue.ch.setAgent(agent.address, False, sender=maker.account)
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1), signer_key=agent.key),
                                      venue.order(taker, True, ETH_PRICE, base(1))))
    assert venue.rejections(receipt) == [(0, RejectReason.INVALID_SIGNATURE, maker.address)]


def test_cancelled_order_never_settles(venue, maker, taker):
    sell = venue.order(maker, False, ETH_PRICE, base(1), nonce=500)
    venue.ch.cancelOrders([500], sender=maker.account)
    assert venue.ch.orderState(maker.address, 500) == 2
    receipt = venue.settle(venue.fill(sell, venue.order(taker, True, ETH_PRICE, base(1))))
    assert venue.rejections(receipt) == [(0, RejectReason.ORDER_CLOSED, maker.address)]


def test_cancel_all_below_a_nonce_closes_every_older_order(venue, maker, taker):
    old = venue.order(maker, False, ETH_PRICE, base(1), nonce=10)
    newer = venue.order(maker, False, ETH_PRICE, base(1), nonce=20)
    venue.ch.cancelAllBelow(15, sender=maker.account)
    with ape.reverts(venue.ch.NonceNotIncreasing, current=15, requested=15):
        venue.ch.cancelAllBelow(15, sender=maker.account)
    receipt = venue.settle(venue.fill(old, venue.order(taker, True, ETH_PRICE, base(1))),
                           venue.fill(newer, venue.order(taker, True, ETH_PRICE, base(1))))
    assert venue.rejections(receipt) == [(0, RejectReason.ORDER_CLOSED, maker.address)]
    assert venue.position(maker).size == -base(1)


def test_a_rejected_fill_does_not_stop_the_batch(venue, maker, taker):
    good1 = venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1)))
    bad = venue.fill(venue.order(maker, False, ETH_PRICE + 1, base(1)), venue.order(taker, True, ETH_PRICE + 1, base(1)))
    good2 = venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1)))
    receipt = venue.settle(good1, bad, good2)
    assert venue.rejections(receipt) == [(1, RejectReason.TICK_SIZE, taker.address)]
    assert venue.position(taker).size == base(2)


# --- one case per rejection reason ----------------------------------------------------------
# Each builder returns (fills, expected reason, who is at fault: "maker" or "taker").

def _price_beyond_taker_limit(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE, base(1)), v.order(t, True, ETH_PRICE - usdc(1), base(1))), "PRICE_NOT_CROSSING", "taker"


def _price_beyond_maker_limit(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE, base(1)), v.order(t, True, ETH_PRICE, base(1)), price=ETH_PRICE - usdc(1)), "PRICE_NOT_CROSSING", "maker"


def _expired(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE, base(1), expiry=v.now() - 1), v.order(t, True, ETH_PRICE, base(1))), "EXPIRED", "maker"


def _tick(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE + 5, base(1)), v.order(t, True, ETH_PRICE + 5, base(1))), "TICK_SIZE", "taker"


def _lot(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE, 123), v.order(t, True, ETH_PRICE, 123)), "LOT_SIZE", "taker"


def _min_notional(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE, base("0.001")), v.order(t, True, ETH_PRICE, base("0.001"))), "MIN_NOTIONAL", "taker"


def _band(v, m, t):
    p = ETH_PRICE * 106 // 100
    return v.fill(v.order(m, False, p, base(1)), v.order(t, True, p, base(1))), "PRICE_OUTSIDE_BAND", "taker"


def _stale(v, m, t):
    v.warp(61)
    return v.fill(v.order(m, False, ETH_PRICE, base(1)), v.order(t, True, ETH_PRICE, base(1))), "ORACLE_STALE", "taker"


def _post_only_taker(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE, base(1)), v.order(t, True, ETH_PRICE, base(1), flags=FLAG_POST_ONLY)), "POST_ONLY_TAKER", "taker"


def _ioc_maker(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE, base(1), flags=FLAG_IOC), v.order(t, True, ETH_PRICE, base(1))), "IOC_MAKER", "maker"


def _reduce_only(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE, base(1)), v.order(t, True, ETH_PRICE, base(1), flags=FLAG_REDUCE_ONLY)), "REDUCE_ONLY", "taker"


def _position_cap(v, m, t):
    v.fund(t, usdc(10_000_000))
    v.fund(m, usdc(10_000_000))
    return v.fill(v.order(m, False, ETH_PRICE, base(1_001)), v.order(t, True, ETH_PRICE, base(1_001))), "POSITION_CAP", "maker"


def _margin(v, m, t):
    # 100,000 USDC at 20x carries 2,000,000 notional in tier 1 and tier 2 (10x beyond 1M): 40 ETH = 120k is fine,
    # 700 ETH = 2.1M needs 50k + 110k = 160k > 100k.
    return v.fill(v.order(m, False, ETH_PRICE, base(700)), v.order(t, True, ETH_PRICE, base(700))), "INSUFFICIENT_MARGIN", "maker"


def _same_side(v, m, t):
    return v.fill(v.order(m, True, ETH_PRICE, base(1)), v.order(t, True, ETH_PRICE, base(1))), "SAME_SIDE", "taker"


def _self_trade(v, m, t):
    return v.fill(v.order(t, False, ETH_PRICE, base(1)), v.order(t, True, ETH_PRICE, base(1))), "SELF_TRADE", "taker"


def _market_mismatch(v, m, t):
    return v.fill(v.order(m, False, ETH_PRICE, base(1), market=BTC), v.order(t, True, ETH_PRICE, base(1))), "MARKET_NOT_LISTED", "taker"


def _halted(v, m, t):
    v.ch.setMarketHalted(0, True, sender=v.owner)
    return v.fill(v.order(m, False, ETH_PRICE, base(1)), v.order(t, True, ETH_PRICE, base(1))), "MARKET_NOT_LISTED", "taker"


CASES = [_price_beyond_taker_limit, _price_beyond_maker_limit, _expired, _tick, _lot, _min_notional, _band,
         _stale, _post_only_taker, _ioc_maker, _reduce_only, _position_cap, _margin, _same_side, _self_trade,
         _market_mismatch, _halted]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_settle_rejects_invalid_fill_with_its_reason_and_changes_nothing(venue, maker, taker, case):
    fill, reason, culprit = case(venue, maker, taker)
    before = (venue.balances(maker), venue.balances(taker), venue.ch.feePool())
    receipt = venue.settle(fill)
    who = maker if culprit == "maker" else taker
    assert venue.rejections(receipt) == [(0, RejectReason[reason], who.address)]
    assert (venue.balances(maker), venue.balances(taker), venue.ch.feePool()) == before
    assert venue.position(maker).size == venue.position(taker).size == 0


def test_open_interest_cap_rejects_growth_beyond_it(venue, maker, taker):
    # ETH-PERP caps OI at 10,000 ETH and positions at 1,000: fill 10 accounts' worth via 9 pairs is slow,
    # so list a market with a small cap instead.
    params = list(venue.ch.market(0))
    from venue.domain import DEVNET_MARKETS
    import dataclasses
    small = dataclasses.replace(DEVNET_MARKETS[0], open_interest_cap=base(1))
    venue.ch.listMarket(small.as_tuple(), sender=venue.owner)
    market = venue.ch.marketCount() - 1
    assert params  # market 0 untouched
    ok = venue.fill(venue.order(maker, False, ETH_PRICE, base(1), market=market),
                    venue.order(taker, True, ETH_PRICE, base(1), market=market))
    over = venue.fill(venue.order(maker, False, ETH_PRICE, base("0.1"), market=market),
                      venue.order(taker, True, ETH_PRICE, base("0.1"), market=market))
    receipt = venue.settle(ok, over)
    assert venue.rejections(receipt) == [(1, RejectReason.OPEN_INTEREST_CAP, taker.address)]
    assert venue.ch.market(market).openInterest == base(1)


@pytest.mark.parametrize("collateral", ["quote", "quote_and_weth"])
def test_initial_margin_boundary_is_exact_to_the_unit(venue, maker, collateral):
    """The taker opens 400 ETH (1.2M notional, across both leverage tiers) with exactly the
    initial margin plus its fee, less one unit: refused; one more unit deposited: the same fill
    settles. Quote-only collateral in one market is checked in the fill path itself; WETH
    collateral goes through `_health` (MarginLib): both must agree with venue/risk.py."""
    from venue import risk

    taker = venue.traders[2]
    p = DEVNET_MARKETS[0]
    size = base(400)
    notional = size * ETH_PRICE // 10**8
    required = risk.initial_margin(risk.margin_raw(risk.notional_up(size, ETH_PRICE), p.tier_cap_1, p.im_bps_1,
                                                   p.im_bps_2))
    need = required + risk.taker_fee(notional, p.taker_fee_bps)
    weth_wei = 10**18 if collateral == "quote_and_weth" else 0
    weth_value = risk.weth_value(weth_wei // 10**9, ETH_PRICE, venue.ch.haircutBps())
    venue.fund(taker, need - weth_value - 1, weth_wei=weth_wei)

    def cross():
        return venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, size),
                                       venue.order(taker, True, ETH_PRICE, size)))

    assert venue.rejections(cross()) == [(0, RejectReason.INSUFFICIENT_MARGIN, taker.address)]
    venue.fund(taker, 1)
    assert venue.rejections(cross()) == []
    equity, initial, _ = venue.ch.health(taker.address)
    assert (equity, initial) == (required, required)


def test_settle_access_list_names_the_slots_settlement_reads(venue, maker):
    """The operator's access list is computed from solc's storage layout: it names the batch's own
    slots and both slots of every party (and is left out while its 2,400-gas address entry costs
    more than it saves), the batch settles through it, and read back with eth_getStorageAt every
    slot holds what the contract's views say."""
    from web3.logs import DISCARD

    from venue.chain import (
        ACCOUNTS_SLOT, FEE_POOL_SLOT, HAS_ROLE_SLOT, MARKET_COUNT_SLOT, MARKETS_SLOT, NEXT_BATCH_SLOT, POSITIONS_SLOT,
        RISK_PARAMS_SLOT, ROLE_OPERATOR, contract, mapping_slot, settle_access_list,
    )

    w3 = venue.chain.provider.web3
    takers = venue.traders[2:7]
    for t in takers:
        venue.fund(t)
    fills = [venue.fill(venue.order(maker, False, ETH_PRICE, base("0.1")), venue.order(t, True, ETH_PRICE, base("0.1")))
             for t in takers for _ in range(2)]
    data = pack_fills(fills)
    operator = venue.operator.address

    def word(slot: int) -> int:
        return int.from_bytes(w3.eth.get_storage_at(venue.ch.address, slot), "big")

    def slots(t):
        owner = int(t.address, 16)
        return mapping_slot(owner, ACCOUNTS_SLOT), mapping_slot(0, mapping_slot(owner, POSITIONS_SLOT))

    role = mapping_slot(int(operator, 16), mapping_slot(ROLE_OPERATOR, HAS_ROLE_SLOT))
    market = mapping_slot(0, MARKETS_SLOT)
    batch_slots = {role, RISK_PARAMS_SLOT, NEXT_BATCH_SLOT, MARKET_COUNT_SLOT, FEE_POOL_SLOT, *range(market, market + 4)}
    assert settle_access_list(venue.ch.address, data, operator) == []  # 21 slots save 2,100 < 2,400
    access = settle_access_list(venue.ch.address, data, operator, only_if_cheaper=False)
    assert {int(k, 16) for k in access[0]["storageKeys"]} == batch_slots | {s for t in [maker, *takers] for s in slots(t)}
    ch = contract(w3, "ClearingHouse", venue.ch.address)
    index = venue.ch.nextBatchIndex()
    receipt = w3.eth.wait_for_transaction_receipt(ch.functions.settle(index, data).transact({"from": operator, "accessList": access}))
    assert receipt.status == 1 and not ch.events.FillRejected().process_receipt(receipt, errors=DISCARD)
    assert (word(role), word(NEXT_BATCH_SLOT) & (2**64 - 1), word(MARKET_COUNT_SLOT)) == (1, index + 1,
                                                                                          venue.ch.marketCount())
    # The same slot: paused (a byte above the index, clear) and the settlement time above that.
    assert word(NEXT_BATCH_SLOT) >> 64 & 0xFF == 0
    assert word(NEXT_BATCH_SLOT) >> 72 == venue.ch.lastSettledAt() == w3.eth.get_block(receipt.blockNumber).timestamp
    assert word(FEE_POOL_SLOT) == venue.ch.feePool()
    assert word(RISK_PARAMS_SLOT) & (2**32 - 1) == venue.ch.riskParams().maxPriceAge
    assert word(market) & (2**64 - 1) == venue.ch.market(0).tickSize
    for t in takers:
        account_slot, position_slot = slots(t)
        quote = word(account_slot) & (2**96 - 1)
        quote -= 2**96 if quote >= 2**95 else 0
        assert quote == venue.balances(t).quote
        assert word(position_slot) & (2**64 - 1) == venue.position(t).size == base("0.2")


def test_settle_calldata_is_web3s_and_costly_fills_stay_within_the_venues_gas_bound(venue):
    """The venue builds settle's calldata and gas limit itself (no estimate): the bytes equal
    web3's encoding, and batches of the costliest kind of fill it sends (both parties holding
    every market and WETH, so margin walks every position, each read cold; positions growing)
    use less gas than `settle_gas_bound` allows, for one fill and for three."""
    from venue.chain import contract, settle_calldata, settle_gas_bound

    w3 = venue.chain.provider.web3
    ch = contract(w3, "ClearingHouse", venue.ch.address)
    traders = venue.traders[:6]
    pairs = [(traders[i], traders[i + 1]) for i in range(0, 6, 2)]
    for t in traders:
        venue.fund(t, usdc(100_000), 10**18)
    for maker, taker in pairs:
        for market, price in ((ETH, ETH_PRICE), (BTC, 60_000 * 10**6)):
            venue.settle(venue.fill(venue.order(maker, False, price, base("0.1"), market=market),
                                    venue.order(taker, True, price, base("0.1"), market=market)))
    venue.warp(30)
    venue.push_prices()
    used = {}
    for n in (1, 3):
        fills = [venue.fill(venue.order(m, False, ETH_PRICE, base("0.2")), venue.order(t, True, ETH_PRICE, base("0.2")))
                 for m, t in pairs[:n]]
        data, index = pack_fills(fills), venue.ch.nextBatchIndex()
        assert settle_calldata(index, data) == bytes.fromhex(ch.encode_abi("settle", [index, data])[2:])
        receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
            {"from": venue.operator.address, "to": venue.ch.address, "data": settle_calldata(index, data)}))
        assert receipt.status == 1 and ch.events.BatchSettled().process_receipt(receipt)[0].args.settled == n
        used[n] = receipt.gasUsed
        assert used[n] <= settle_gas_bound(n, venue.ch.marketCount()), used
    print("settle gas, multi-market WETH fills:", used)
