"""The three ways money leaked (found by attacking the contracts on Anvil), each played as the
attacker played it, and what holds now: the closing rule, fills bounded per (account, nonce),
and a minimum nonce that reaches every signed nonce. (The funding snipe is in
test_oracle_funding.py.)"""

import ape

from venue.domain import RejectReason, base, usdc

from .conftest import ETH, ETH_PRICE


def withdraw_all(venue, trader) -> int:
    """Withdraws the most the contract lets `trader` take out (binary search on what reverts)."""
    lo, hi = 0, max(venue.balances(trader).quote, 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            venue.ch.withdraw.call(venue.usdc, mid, sender=trader.account)
            lo = mid
        except ape.exceptions.ContractLogicError:
            hi = mid - 1
    if lo:
        venue.ch.withdraw(venue.usdc, lo, sender=trader.account)
    return lo


def test_colluders_cannot_close_at_the_band_edge_into_negative_equity_and_withdraw_more_than_they_put_in(venue):
    honest, attacker, colluder = venue.traders[0], venue.traders[1], venue.traders[2]
    venue.fund(honest, usdc(200_000))
    venue.fund(attacker, usdc(1_600))
    venue.fund(colluder, usdc(100_000))
    deposited = usdc(1_600) + usdc(100_000)
    # 10 ETH long at 3,000 on 1,600 of collateral (initial margin 1,500).
    receipt = venue.settle(venue.fill(venue.order(colluder, False, ETH_PRICE, base(10)),
                                      venue.order(attacker, True, ETH_PRICE, base(10))))
    assert venue.rejections(receipt) == []
    # The price falls until the attacker is just above maintenance margin (2.5 %).
    venue.push_prices(eth=usdc(2_920))
    h = venue.ch.health(attacker.address)
    assert h.maintenanceMargin < h.equity < h.maintenanceMargin + usdc(100)
    # The attacker sells everything at the band edge (5 % below the oracle) to the colluder,
    # in a batch with an honest fill that must settle regardless.
    edge = usdc(2_920) * 9_500 // 10_000
    other = venue.traders[3]
    venue.fund(other, usdc(10_000))
    receipt = venue.settle(
        venue.fill(venue.order(colluder, True, edge, base(10)), venue.order(attacker, False, edge, base(10))),
        venue.fill(venue.order(honest, False, usdc(2_920), base(1)), venue.order(other, True, usdc(2_920), base(1))),
    )
    assert venue.rejections(receipt) == [(0, RejectReason.MAINTENANCE_WORSENED, attacker.address)]
    assert venue.position(other).size == base(1)
    assert venue.position(attacker).size == base(10)
    # A partial close at the edge is refused too; one at the oracle price settles.
    receipt = venue.settle(venue.fill(venue.order(colluder, True, edge, base(5)), venue.order(attacker, False, edge, base(5))))
    assert venue.rejections(receipt) == [(0, RejectReason.MAINTENANCE_WORSENED, attacker.address)]
    receipt = venue.settle(venue.fill(venue.order(colluder, True, usdc(2_920), base(10)),
                                      venue.order(attacker, False, usdc(2_920), base(10))))
    assert venue.rejections(receipt) == []
    assert venue.ch.health(attacker.address).equity >= 0
    # Together the colluders take out less than they put in (they paid the loss and the fees).
    withdrawn = withdraw_all(venue, attacker) + withdraw_all(venue, colluder)
    assert withdrawn <= deposited
    # And the honest depositor is whole.
    assert venue.usdc.balanceOf(venue.ch) >= venue.balances(honest).quote > 0


def test_a_bankrupt_account_may_still_reduce_when_it_improves(venue):
    """The closing rule lets an account below maintenance margin reduce when equity - MM gets
    better and equity stays >= 0 (an account cannot be trapped), not when it gets worse."""
    t, mm_ = venue.traders[1], venue.traders[2]
    venue.fund(t, usdc(1_600))
    venue.fund(mm_, usdc(100_000))
    venue.settle(venue.fill(venue.order(mm_, False, ETH_PRICE, base(10)), venue.order(t, True, ETH_PRICE, base(10))))
    venue.push_prices(eth=usdc(2_900))
    h = venue.ch.health(t.address)
    assert 0 < h.equity < h.maintenanceMargin
    # Selling 1 ETH slightly above the oracle improves equity - MM: allowed though still below MM.
    receipt = venue.settle(venue.fill(venue.order(mm_, True, usdc(2_901), base(1)), venue.order(t, False, usdc(2_901), base(1))))
    assert venue.rejections(receipt) == []
    after = venue.ch.health(t.address)
    assert after.equity < after.maintenanceMargin
    assert after.equity - after.maintenanceMargin > h.equity - h.maintenanceMargin


def test_two_orders_signed_with_one_nonce_fill_no_more_than_one_order(venue, maker, taker):
    """The filled amount is kept per (account, nonce): a second order under a nonce shares it."""
    first = venue.order(taker, True, ETH_PRICE, base(1), nonce=77)
    second = venue.order(taker, True, ETH_PRICE + usdc(1), base(1), nonce=77)
    assert first[0] != second[0]
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base("0.5")), first))
    assert venue.rejections(receipt) == []
    assert venue.ch.filledAmount(taker.address, 77) == base("0.5")
    # 1 ETH more under nonce 77 would make 1.5: refused (the leak settled it).
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), second, size=base(1), price=ETH_PRICE))
    assert venue.rejections(receipt) == [(0, RejectReason.OVERFILL, taker.address)]
    # The remaining 0.5 settles through either order; then the nonce is closed.
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base("0.5")), second, size=base("0.5"), price=ETH_PRICE))
    assert venue.rejections(receipt) == []
    assert venue.ch.orderState(taker.address, 77) == 2 and venue.ch.filledAmount(taker.address, 77) == 0
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base("0.1")), first, size=base("0.1"), price=ETH_PRICE))
    assert venue.rejections(receipt) == [(0, RejectReason.ORDER_CLOSED, taker.address)]
    assert venue.position(taker).size == base(1)


def test_cancel_all_below_reaches_every_uint64_nonce(venue, maker, taker):
    high = 2**60
    venue.ch.cancelAllBelow(high, sender=taker.account)
    assert venue.ch.orderState(taker.address, 2**58) == 2
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)),
                                      venue.order(taker, True, ETH_PRICE, base(1), nonce=2**58)))
    assert venue.rejections(receipt) == [(0, RejectReason.ORDER_CLOSED, taker.address)]
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)),
                                      venue.order(taker, True, ETH_PRICE, base(1), nonce=2**61)))
    assert venue.rejections(receipt) == []
    venue.ch.cancelAllBelow(2**64 - 1, sender=taker.account)
    assert venue.ch.orderState(taker.address, 2**64 - 2) == 2
    with ape.reverts(venue.ch.NonceNotIncreasing):
        venue.ch.cancelAllBelow(2**64, sender=taker.account)
    # An order filled in nonce order at the very top advances nothing past the width.
    assert venue.ch.orderState(taker.address, 2**64 - 1) == 0
