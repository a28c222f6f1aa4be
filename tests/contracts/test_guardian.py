"""Owner and guardian controls: two-step ownership of the ClearingHouse and the Oracle, the
guardian's pause (no settlement, no deposits; withdrawals of free collateral and liquidations go
on) and reduce-only markets; what a halted market does to liquidations; the module router."""

import ape
import pytest

import json

from venue.chain import MANIFEST, MARKET_ACTIVE, MARKET_HALTED, MARKET_REDUCE_ONLY
from venue.domain import DEVNET_RISK, RejectReason, base, usdc

from .conftest import ETH, ETH_PRICE


def events(receipt, name):
    return [e for e in receipt.events if e.event_name == name]


def test_ownership_moves_in_two_steps_on_the_clearing_house_and_the_oracle(venue):
    new_owner = venue.traders[5].account
    for contract, error in ((venue.ch, "Unauthorized"), (venue.oracle, "NotOwner")):
        with ape.reverts(getattr(contract, error)):
            contract.transferOwnership(new_owner, sender=new_owner)
        receipt = contract.transferOwnership(new_owner, sender=venue.owner)
        assert events(receipt, "OwnershipTransferStarted")[0].pendingOwner == new_owner.address
        assert contract.owner() == venue.owner.address and contract.pendingOwner() == new_owner.address
        with ape.reverts():
            contract.acceptOwnership(sender=venue.traders[4].account)
        receipt = contract.acceptOwnership(sender=new_owner)
        event = events(receipt, "OwnershipTransferred")[0]
        assert (event.previousOwner, event.newOwner) == (venue.owner.address, new_owner.address)
        assert contract.owner() == new_owner.address
        assert contract.pendingOwner() == "0x0000000000000000000000000000000000000000"
    # The new owner owns: the old one no longer can.
    venue.ch.setRole(1, venue.traders[4].account, True, sender=new_owner)
    with ape.reverts(venue.ch.Unauthorized):
        venue.ch.setRole(1, venue.traders[4].account, True, sender=venue.owner)
    venue.oracle.setKeeper(venue.traders[4].account, True, sender=new_owner)


def test_only_the_guardian_pauses_and_a_paused_venue_settles_and_takes_deposits_no_more(venue, maker, taker):
    with ape.reverts(venue.ch.Unauthorized, caller=maker.address, role=5):
        venue.ch.pause(sender=maker.account)
    receipt = venue.ch.pause(sender=venue.guardian)
    assert bool(events(receipt, "VenuePausedSet")[0].paused) and venue.ch.paused()
    with ape.reverts(venue.ch.VenuePaused):
        venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1))))
    venue.usdc.mint(maker.account, usdc(10), sender=maker.account)
    venue.usdc.approve(venue.ch, usdc(10), sender=maker.account)
    with ape.reverts(venue.ch.VenuePaused):
        venue.ch.deposit(venue.usdc, usdc(10), sender=maker.account)
    # Free collateral comes out while paused.
    before = venue.usdc.balanceOf(maker.account)
    venue.ch.withdraw(venue.usdc, usdc(1_000), sender=maker.account)
    assert venue.usdc.balanceOf(maker.account) == before + usdc(1_000)
    venue.ch.unpause(sender=venue.guardian)
    assert not venue.ch.paused()
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1))))
    assert venue.rejections(receipt) == []


def open_thin_long(venue, maker):
    t = venue.traders[2]
    venue.fund(t, usdc(1_000))
    venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(6)), venue.order(t, True, ETH_PRICE, base(6))))
    return t


def test_liquidations_go_on_while_paused(venue, maker):
    t = open_thin_long(venue, maker)
    venue.ch.pause(sender=venue.guardian)
    venue.push_prices(eth=usdc(2_868))
    receipt = venue.ch.liquidate(t.address, ETH, base(6), sender=maker.account)
    assert events(receipt, "Liquidated")[0].account == t.address


def test_reduce_only_market_rejects_fills_that_grow_risk_and_settles_those_that_do_not(venue, maker, taker):
    venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(2)), venue.order(taker, True, ETH_PRICE, base(2))))
    with ape.reverts(venue.ch.Unauthorized):
        venue.ch.setMarketReduceOnly(ETH, True, sender=venue.owner)
    receipt = venue.ch.setMarketReduceOnly(ETH, True, sender=venue.guardian)
    event = events(receipt, "MarketReduceOnly")[0]
    assert (event.marketId, event.reduceOnly, event.by) == (ETH, True, venue.guardian.address)
    assert venue.ch.market(ETH).status == MARKET_REDUCE_ONLY
    # Growing: the taker buys more (the maker's short grows too): refused, the maker named first.
    receipt = venue.settle(venue.fill(venue.order(maker, False, ETH_PRICE, base(1)), venue.order(taker, True, ETH_PRICE, base(1))))
    assert venue.rejections(receipt) == [(0, RejectReason.MARKET_REDUCE_ONLY, maker.address)]
    # A third account opening against a closing taker: refused, naming the opener.
    other = venue.traders[2]
    venue.fund(other, usdc(10_000))
    receipt = venue.settle(venue.fill(venue.order(other, True, ETH_PRICE, base(1)), venue.order(taker, False, ETH_PRICE, base(1))))
    assert venue.rejections(receipt) == [(0, RejectReason.MARKET_REDUCE_ONLY, other.address)]
    # Both closing: settles.
    receipt = venue.settle(venue.fill(venue.order(maker, True, ETH_PRICE, base(1)), venue.order(taker, False, ETH_PRICE, base(1))))
    assert venue.rejections(receipt) == []
    assert venue.position(taker).size == base(1)
    venue.ch.setMarketReduceOnly(ETH, False, sender=venue.guardian)
    assert venue.ch.market(ETH).status == MARKET_ACTIVE


def test_liquidations_go_on_in_reduce_only_and_halted_markets(venue, maker):
    t = open_thin_long(venue, maker)
    venue.push_prices(eth=usdc(2_868))
    venue.ch.setMarketReduceOnly(ETH, True, sender=venue.guardian)
    snapshot = venue.chain.snapshot()
    receipt = venue.ch.liquidate(t.address, ETH, base(6), sender=maker.account)
    assert events(receipt, "Liquidated")
    venue.chain.restore(snapshot)
    # Halted by the owner: no fills, but the insolvent account is still closed at the oracle price.
    venue.ch.setMarketHalted(ETH, True, sender=venue.owner)
    assert venue.ch.market(ETH).status == MARKET_HALTED
    with ape.reverts(venue.ch.InvalidMarketStatus):
        venue.ch.setMarketReduceOnly(ETH, False, sender=venue.guardian)
    receipt = venue.settle(venue.fill(venue.order(maker, True, usdc(2_868), base(1)), venue.order(t, False, usdc(2_868), base(1))))
    assert venue.rejections(receipt) == [(0, RejectReason.MARKET_NOT_LISTED, t.address)]
    receipt = venue.ch.liquidate(t.address, ETH, base(6), sender=maker.account)
    assert events(receipt, "Liquidated")[0].account == t.address


def test_every_function_of_the_interface_is_answered_by_exactly_one_part(project, venue):
    """The router: each IClearingHouse selector is implemented by the entry contract or by the
    module it routes to; a selector nobody implements answers UnknownSelector."""
    from eth_utils import function_signature_to_4byte_selector

    def selectors(name):
        return {e["name"] + "(" + ",".join(_type(i) for i in e["inputs"]) + ")"
                for e in json.loads(MANIFEST.read_text())["contractTypes"][name]["abi"] if e.get("type") == "function"}

    def _type(i):
        if i["type"].startswith("tuple"):
            return "(" + ",".join(_type(c) for c in i["components"]) + ")" + i["type"][5:]
        return i["type"]

    surface = selectors("IClearingHouse")
    parts = {n: selectors(n) for n in ("ClearingHouse", "CollateralModule", "LiquidationModule", "AdminModule")}
    # Each module's own functions (the base's getters and configHash are in every part).
    base_ = parts["CollateralModule"] & parts["LiquidationModule"] & parts["AdminModule"]
    for sig in surface:
        owners = [n for n, s in parts.items() if sig in s and (sig not in base_ or n == "ClearingHouse")]
        assert len(owners) == 1, (sig, owners)
    w3 = venue.chain.provider.web3
    from web3.exceptions import ContractCustomError

    with pytest.raises(ContractCustomError) as error:
        w3.eth.call({"to": venue.ch.address, "data": "0xdeadbeef"})
    assert error.value.data.startswith("0x" + function_signature_to_4byte_selector("UnknownSelector(bytes4)").hex() + "deadbeef")


def test_modules_built_for_another_deployment_are_refused(project, venue):
    """ClearingHouse's constructor checks every module carries its immutables."""
    config = (venue.oracle.address, venue.usdc.address, venue.weth.address, 0, 500, 5_000)
    other = (venue.oracle.address, venue.weth.address, venue.usdc.address, 0, 500, 5_000)
    good = [project.CollateralModule.deploy(config, sender=venue.owner).address,
            project.LiquidationModule.deploy(config, sender=venue.owner).address]
    bad = project.AdminModule.deploy(other, sender=venue.owner).address
    with ape.reverts(venue.ch.ModuleMismatch, module=bad):
        project.ClearingHouse.deploy(venue.owner, config, 1_000, DEVNET_RISK.as_tuple(), *good, bad,
                                     sender=venue.owner)
