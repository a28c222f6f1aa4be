// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClearingHouse, PositionView, MarketState} from "../interfaces/IClearingHouse.sol";
import {IERC20Minimal} from "../interfaces/IERC20Minimal.sol";

/// @title InvariantLens
/// @notice Test helper: reads, in one eth_call, everything the invariant tests check after each
///         step (so ten thousand steps fit in `make test`). It only calls the ClearingHouse's
///         public views; it holds nothing and is never part of a deployment.
contract InvariantLens {
    struct Totals {
        uint256 quoteHeld; // the quote token balance of the ClearingHouse
        int256 claims; // sum over accounts of quote - sum of cost bases
        int256 pools; // feePool + fundingPool + insuranceFund
        uint256 wethHeld;
        uint256 wethBalances;
        int256[] sizeSums; // per market
        uint256[] longSums; // per market
        uint256[] openInterest; // per market, as stored
        int256[] equity; // per account
        uint256[] maintenance; // per account
        uint256[] initial; // per account
        uint256[] marketMask; // per account
        uint256[] wethWei; // per account
    }

    function totals(IClearingHouse ch, address[] calldata accounts) external view returns (Totals memory t) {
        uint256 markets = ch.marketCount();
        uint256 n = accounts.length;
        t.quoteHeld = IERC20Minimal(ch.quoteToken()).balanceOf(address(ch));
        t.wethHeld = IERC20Minimal(ch.weth()).balanceOf(address(ch));
        t.pools = int256(ch.feePool()) + int256(ch.fundingPool()) + int256(ch.insuranceFund());
        t.sizeSums = new int256[](markets);
        t.longSums = new uint256[](markets);
        t.openInterest = new uint256[](markets);
        t.equity = new int256[](n);
        t.maintenance = new uint256[](n);
        t.initial = new uint256[](n);
        t.marketMask = new uint256[](n);
        t.wethWei = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            (int256 quote, uint256 wethWei, uint256 mask) = ch.balances(accounts[i]);
            t.claims += quote;
            t.wethBalances += wethWei;
            t.wethWei[i] = wethWei;
            t.marketMask[i] = mask;
            (t.equity[i], t.initial[i], t.maintenance[i]) = ch.health(accounts[i]);
            for (uint256 m; m < markets; ++m) {
                PositionView memory p = ch.position(accounts[i], m);
                t.claims -= p.openNotional;
                t.sizeSums[m] += p.size;
                if (p.size > 0) t.longSums[m] += uint256(p.size);
            }
        }
        for (uint256 m; m < markets; ++m) {
            MarketState memory s = ch.market(m);
            t.openInterest[m] = s.openInterest;
        }
    }
}
