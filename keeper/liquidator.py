"""Liquidator: mirrors every account from chain events, scans them all with the numba kernel
after each oracle update, and liquidates those below maintenance margin. Several instances can
compete; a lost race (the account already restored or closed) is logged, not fatal."""

from __future__ import annotations

import logging
import time

import numpy as np
from web3 import Web3
from web3.logs import DISCARD

from venue import risk
from venue.chain import AccountReader, Deployment, EventReader, contract, fill_accounts, read_markets, read_oracle_prices

from .sender import TxFailed, TxSender

log = logging.getLogger("keeper.liquidator")


class Liquidator:
    def __init__(self, w3: Web3, deployment: Deployment, key: str, *, name: str = "liquidator",
                 priority_fee_gwei: float = 2.0, poll_s: float = 0.05):
        self.w3 = w3
        self.ch = contract(w3, "ClearingHouse", deployment.clearing_house)
        self.oracle = contract(w3, "Oracle", deployment.oracle)
        self.events = EventReader(w3, self.ch, self.oracle)
        self.sender = TxSender(w3, key, name, priority_fee_gwei=priority_fee_gwei)
        self.name = name
        self.poll_s = poll_s
        self.markets = read_markets(self.ch, deployment.markets)
        self.reader = AccountReader(w3.provider.endpoint_uri, deployment.clearing_house, len(self.markets))
        self.weth_oracle_id = self.ch.functions.wethOracleId().call()
        self.weth_price = 0
        m = len(self.markets)
        self.scan_markets = risk.ScanMarkets(self.markets)
        self.risk_params = tuple(self.ch.functions.riskParams().call())
        self.prices = np.zeros(m, dtype=np.int64)
        self.index: dict[str, int] = {}
        self.lots = np.zeros((0, m), dtype=np.int32)
        self.cash = np.zeros(0, dtype=np.int64)
        self.pending: dict[str, dict] = {}  # account -> sent liquidation, to avoid duplicate work
        self.last_block = -1
        self.liquidations = 0
        self.haircut: int | None = None  # the WETH haircut, read once, then followed from HaircutSet events

    # ------------------------------------------------------------------ mirror
    def refresh(self, address: str) -> None:
        self.refresh_many([address])

    def refresh_many(self, addresses) -> None:
        """The accounts' state from the chain's views (one JSON-RPC batch), into the scan arrays."""
        addresses = list(addresses)
        for address in addresses:
            if address not in self.index:
                self.index[address] = len(self.index)
                self.lots = np.vstack([self.lots, np.zeros((1, len(self.markets)), dtype=np.int32)])
                self.cash = np.append(self.cash, np.int64(0))
        if not addresses:
            return
        haircut = self.weth_haircut()
        for address, ((quote, weth_wei, _), _, views) in self.reader.read(addresses).items():
            i = self.index[address]
            cash = quote
            if weth_wei:
                cash += risk.weth_value(weth_wei // 10**9, self.weth_price, haircut)
            for m, p in enumerate(self.markets):
                size, open_notional, _, _, owed = views[m]
                self.lots[i, m] = size // p.lot_size
                cash -= open_notional + owed
            self.cash[i] = cash

    def weth_haircut(self) -> int:
        if self.haircut is None:
            self.haircut = self.ch.functions.haircutBps().call()
        return self.haircut

    def scan(self) -> np.ndarray:
        """Indices of accounts below maintenance margin (the numba kernel over all of them)."""
        if not len(self.index):
            return np.zeros(0, dtype=np.int64)
        flags, _ = self.scan_markets.liquidatable(self.lots, self.cash, self.prices)
        return np.nonzero(flags)[0]

    # ------------------------------------------------------------------ loop
    def poll(self) -> None:
        head = self.w3.eth.block_number
        if head <= self.last_block:
            self._check_pending()
            return
        frm, to = self.last_block + 1, head
        self.last_block = head
        touched: set[str] = set()
        prices_moved = False
        events = self.events.read(frm, to)

        def of(name: str) -> list:
            return events.get(name, [])
        for ev in of("PriceUpdated"):
            prices_moved |= self._on_price(ev.args.id, ev.args.price)
        touched.update(e.args.account for e in of("Deposited") + of("Withdrawn"))
        for e in of("Liquidated"):
            touched.update((e.args.account, e.args.liquidator))
        for e in of("Deleveraged"):
            touched.update((e.args.account, e.args.counterparty))
        for e in of("BatchSettled"):
            tx = self.w3.eth.get_transaction(e.transactionHash)
            _, args = self.ch.decode_function_input(tx.input)
            touched.update(fill_accounts(bytes(args["fills"])))
        for e in of("HaircutSet"):
            self.haircut = e.args.haircutBps
        if of("FundingUpdated") or of("HaircutSet") or prices_moved:
            touched.update(self.index)  # funding owed or WETH values moved for everyone
        self.refresh_many(sorted(touched, key=lambda a: (self.index.get(a, len(self.index)), a)))
        self._check_pending()
        for i in self.scan():
            self._liquidate(list(self.index)[i])

    def _on_price(self, oracle_id: int, price: int) -> bool:
        """Records a price; True if any market or WETH collateral uses it."""
        used = oracle_id == self.weth_oracle_id
        if used:
            self.weth_price = price
        for m, p in enumerate(self.markets):
            if p.oracle_id == oracle_id:
                self.prices[m] = price
                used = True
        return used

    def _liquidate(self, account: str) -> None:
        if account in self.pending:
            return
        equity, _, maintenance = self.ch.functions.health(account).call()
        if equity >= maintenance:
            return  # the mirror was behind the chain; it is fine
        real = self.unhaircut_equity(account, equity)
        if real < 0 and -real > self.insurance_available():
            self.bankrupt(account, real)
            return
        i = self.index[account]
        prices = self.prices.astype(object)
        notional = [abs(int(self.lots[i, m])) * p.lot_size * prices[m] for m, p in enumerate(self.markets)]
        market = int(np.argmax(notional))
        p = self.markets[market]
        held = abs(int(self.lots[i, market])) * p.lot_size
        if not held:
            return
        # Sized to restore health (the contract's own rule, mirrored): partial unless past the
        # full-close threshold. The contract clamps too, so a mirror a block behind is harmless.
        buffer_bps, full_close_bps = self.risk_params[2], self.risk_params[3]
        size = risk.max_liquidation(held, equity, maintenance, int(prices[market]), p.lot_size, p.im_bps_1,
                                    p.liquidation_penalty_bps, buffer_bps, full_close_bps)
        try:
            self.pending[account] = self.sender.send(self.ch.functions.liquidate(account, market, size),
                                                     gas=600_000, label=f"liquidate {account[:10]} m{market} size {size}")
        except Exception as exc:
            log.info("%s: liquidation of %s not sent: %s", self.name, account, exc)

    def unhaircut_equity(self, account: str, equity: int) -> int:
        """`equity` (the contract's, WETH after the haircut) with WETH at its full oracle value:
        what the contract measures a shortfall by (LiquidationModule._unhaircutEquity)."""
        weth_wei = self.ch.functions.balances(account).call()[1]
        if not weth_wei:
            return equity
        gwei, haircut = weth_wei // 10**9, self.ch.functions.haircutBps().call()  # exact at the decision
        return equity + risk.weth_value(gwei, self.weth_price, 0) - risk.weth_value(gwei, self.weth_price, haircut)

    def insurance_available(self) -> int:
        """What the insurance fund holds above its floor (risk parameter)."""
        floor = self.ch.functions.riskParams().call()[4]
        return max(0, self.ch.functions.insuranceFund().call() - floor)

    def bankrupt(self, account: str, equity: int) -> None:
        """An account whose shortfall the insurance fund cannot cover: the contract refuses to
        liquidate it (ShortfallNeedsAdl); `keeper adl` deleverages it."""
        log.info("%s: %s is bankrupt (equity %d) beyond the insurance fund: left to auto-deleveraging", self.name,
                 account, equity)
        self.pending[account] = {"hash": None, "sent_block": self.w3.eth.block_number}

    def _check_pending(self) -> None:
        for account, pending in list(self.pending.items()):
            try:
                receipt = self.w3.eth.get_transaction_receipt(pending["hash"]) if pending["hash"] else None
            except Exception:
                receipt = None
            if receipt is None:
                if self.w3.eth.block_number - pending["sent_block"] > 10:
                    del self.pending[account]  # give up on it; the next scan decides again
                continue
            del self.pending[account]
            if receipt.status == 1:
                self.liquidations += 1
                events = self.ch.events.Liquidated().process_receipt(receipt, errors=DISCARD)
                log.info("%s liquidated %s: size %s penalty %s insurance %s (block %d)", self.name, account,
                         events[0].args.size, events[0].args.penalty, events[0].args.insuranceCut, receipt.blockNumber)
            else:
                log.info("%s lost the race for %s (block %d): someone else got there first", self.name, account,
                         receipt.blockNumber)
            self.refresh(account)

    def warm_up(self) -> None:
        """Compiles the scan kernels now (numba JIT, seconds on a cold cache) rather than at the
        first price drop, when every block counts."""
        self.scan_markets.warm_up()

    def start(self) -> None:
        """Compiles the scan and loads the chain's prices and accounts; `poll` then follows it
        block by block (`run` on the devnet; the scenario lab calls `poll` once a block)."""
        self.warm_up()
        # Prices first (WETH collateral is valued at its oracle price), then every account that
        # ever deposited, then follow the chain from here.
        self.last_block = self.w3.eth.block_number
        for oracle_id, price in read_oracle_prices(self.oracle, self.markets, self.weth_oracle_id).items():
            self._on_price(oracle_id, price)
        self.refresh_many(dict.fromkeys(e.args.account for e in self.ch.events.Deposited().get_logs(
            from_block=0, to_block=self.last_block)))
        log.info("%s watching %d accounts from block %d", self.name, len(self.index), self.last_block)

    def run(self, stop) -> None:
        self.start()
        while not stop.is_set():
            try:
                self.poll()
            except TxFailed as exc:
                log.info("%s: %s", self.name, exc)
            except Exception:
                log.exception("%s: poll failed", self.name)
                time.sleep(0.5)
            stop.wait(self.poll_s)


class Deleverager(Liquidator):
    """`keeper adl`: the liquidator's mirror and scan, acting only on bankrupt accounts (equity
    below zero by more than the insurance fund holds above its floor). For each it ranks the
    other side of the account's largest position by the contract's score (read from the chain's
    views, computed as `risk.adl_score`) and calls `deleverage` with the queue (highest first,
    each closed whole but the last)."""

    def __init__(self, *args, name: str = "adl", **kw):
        super().__init__(*args, name=name, **kw)
        self.deleveraged = 0

    def _liquidate(self, account: str) -> None:
        if account in self.pending:
            return
        equity = self.unhaircut_equity(account, self.ch.functions.health(account).call()[0])
        if equity >= 0 or -equity <= self.insurance_available():
            return  # the liquidator's case, or fine
        views = {m: self.ch.functions.position(account, m).call() for m in range(len(self.markets))}
        market = max(views, key=lambda m: abs(views[m][1]))
        size = views[market][0]
        if not size:
            return
        price = int(self.prices[market])
        candidates = []
        for other in self.index:
            if other == account:
                continue
            o_size, o_open, _, _, _ = self.ch.functions.position(other, market).call()
            if not o_size or (o_size > 0) == (size > 0):
                continue
            o_equity = self.ch.functions.health(other).call()[0]
            score = risk.adl_score(o_size, o_open, price, o_equity)
            if score > 0:
                candidates.append((other, abs(o_size), score))
        names, sizes = risk.adl_queue(candidates, abs(size))
        if not names:
            log.info("%s: %s is bankrupt but nobody on the other side of market %d is in profit", self.name,
                     account, market)
            return
        log.info("%s: deleveraging %s (equity %d) in market %d against %s", self.name, account, equity, market,
                 list(zip(names, sizes)))
        try:
            self.pending[account] = self.sender.send(self.ch.functions.deleverage(account, market, names, sizes),
                                                     gas=300_000 + 150_000 * len(names),
                                                     label=f"deleverage {account[:10]} m{market}")
        except Exception as exc:
            log.info("%s: deleveraging %s not sent: %s", self.name, account, exc)

    def bankrupt(self, account: str, equity: int) -> None:  # never reached: _liquidate handles it
        pass

    def _check_pending(self) -> None:
        for account, pending in list(self.pending.items()):
            receipt = None
            try:
                receipt = self.w3.eth.get_transaction_receipt(pending["hash"])
            except Exception:
                pass
            if receipt is None:
                if self.w3.eth.block_number - pending["sent_block"] > 10:
                    del self.pending[account]
                continue
            del self.pending[account]
            if receipt.status == 1:
                events = self.ch.events.Deleveraged().process_receipt(receipt, errors=DISCARD)
                self.deleveraged += len(events)
                for e in events:
                    log.info("%s deleveraged %s: %s closed %d at %d, paid %d of the shortfall (block %d)", self.name,
                             account, e.args.counterparty, e.args.size, e.args.price, e.args.socialised,
                             receipt.blockNumber)
            else:
                log.info("%s: deleverage of %s reverted (block %d)", self.name, account, receipt.blockNumber)
            self.refresh(account)
