from venue.domain import base, usdc

from .conftest import ETH_PRICE


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
