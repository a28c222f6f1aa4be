"""Contract tests through ape on Anvil (ape-foundry starts Anvil from node_modules/.bin).

The deployment is built once per session with venue.chain.deploy (the same deployer the devnet
uses); ape's isolation snapshots the chain around every test, so each test starts from it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from venue.chain import Fill, deploy, pack_fills
from venue.domain import DEVNET_MARKETS, RejectReason, usdc
from venue.signing import Order, sign_order

ETH, BTC = 0, 1
ETH_PRICE = 3_000 * 10**6
BTC_PRICE = 60_000 * 10**6


@dataclass
class Trader:
    account: object  # ape test account
    key: str

    @property
    def address(self) -> str:
        return self.account.address


class Venue:
    """The deployed contracts plus the helpers every test uses."""

    def __init__(self, project, chain, accounts, deployment):
        self.chain = chain
        self.deployment = deployment
        self.owner, self.operator, self.keeper = accounts[0], accounts[1], accounts[2]
        self.ch = project.IClearingHouse.at(deployment.clearing_house)  # the whole surface: entry contract and modules
        self.oracle = project.Oracle.at(deployment.oracle)
        self.usdc = project.MockERC20.at(deployment.usdc)
        self.weth = project.MockERC20.at(deployment.weth)
        self.domain_separator = bytes(self.ch.domainSeparator())
        self.traders = [Trader(a, a.private_key) for a in list(accounts)[3:9]]
        self.guardian = accounts[9]
        self._nonces = itertools.count(1)
        self._batch = 0

    # --- chain and oracle -------------------------------------------------------------
    def now(self) -> int:
        return self.chain.blocks.head.timestamp

    def push_prices(self, eth: int = ETH_PRICE, btc: int = BTC_PRICE, *, age: int = 0):
        """Pushes both prices observed `age` seconds before the block that includes them."""
        ts = self.now() + 1
        self.chain.pending_timestamp = ts
        return self.oracle.setPrices([ETH, BTC], [eth, btc], ts - age, sender=self.keeper)

    def warp(self, seconds: int):
        self.chain.pending_timestamp = self.now() + seconds
        self.chain.mine()

    # --- collateral ---------------------------------------------------------------------
    def fund(self, trader: Trader, quote: int = usdc(100_000), weth_wei: int = 0):
        acct = trader.account
        if quote:
            self.usdc.mint(acct, quote, sender=acct)
            self.usdc.approve(self.ch, quote, sender=acct)
            self.ch.deposit(self.usdc, quote, sender=acct)
        if weth_wei:
            self.weth.mint(acct, weth_wei, sender=acct)
            self.weth.approve(self.ch, weth_wei, sender=acct)
            self.ch.deposit(self.weth, weth_wei, sender=acct)

    # --- orders and settlement ------------------------------------------------------------
    def order(self, trader: Trader, is_buy: bool, price: int, size: int, *, market: int = ETH,
              flags: int = 0, expiry: int = 0, nonce: int | None = None, signer_key: str | None = None):
        o = Order(trader.address, market, is_buy, price, size, flags, expiry,
                  next(self._nonces) if nonce is None else nonce)
        return o, sign_order(o, self.domain_separator, signer_key or trader.key)

    def fill(self, maker, taker, size: int | None = None, price: int | None = None) -> Fill:
        (mo, ms), (to, ts) = maker, taker
        return Fill(mo, ms, to, ts, size if size is not None else mo.size,
                    price if price is not None else mo.price)

    def settle(self, *fills: Fill, index: int | None = None, sender=None):
        idx = self._batch if index is None else index
        receipt = self.ch.settle(idx, pack_fills(fills), sender=sender or self.operator)
        self._batch = idx + 1
        return receipt

    def rejections(self, receipt) -> list[tuple[int, RejectReason, str]]:
        return [(e.fillIndex, RejectReason(e.reason), e.account)
                for e in receipt.events if e.event_name == "FillRejected"]

    def balances(self, trader: Trader):
        return self.ch.balances(trader.address)

    def position(self, trader: Trader, market: int = ETH):
        return self.ch.position(trader.address, market)


@pytest.fixture(scope="session")
def deployment(chain, accounts):
    w3 = chain.provider.web3
    return deploy(w3, accounts[0].address, operator=accounts[1].address, keepers=(accounts[2].address,),
                  guardian=accounts[9].address)


@pytest.fixture
def venue(project, chain, accounts, deployment):
    v = Venue(project, chain, accounts, deployment)
    v._batch = v.ch.nextBatchIndex()
    v.push_prices()
    return v


@pytest.fixture
def maker(venue):
    venue.fund(venue.traders[0])
    return venue.traders[0]


@pytest.fixture
def taker(venue):
    venue.fund(venue.traders[1])
    return venue.traders[1]


ETH_MARKET = DEVNET_MARKETS[ETH]
