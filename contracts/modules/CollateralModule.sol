// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {PositionView, MarketState} from "../interfaces/IClearingHouse.sol";
import {ClearingHouseBase, Config} from "../storage/ClearingHouseBase.sol";
import {MathLib} from "../libraries/MathLib.sol";
import {MarginLib} from "../libraries/MarginLib.sol";
import {FundingLib} from "../libraries/FundingLib.sol";
import {TransferLib} from "../libraries/TransferLib.sol";

/// @title CollateralModule
/// @notice Deposits, withdrawals, agents, on-chain cancels and the account views. Runs by
///         delegatecall from ClearingHouse over its storage; see ICollateralModule for the API.
contract CollateralModule is ClearingHouseBase {
    using MathLib for uint256;

    constructor(Config memory c) ClearingHouseBase(c) {}

    /* COLLATERAL */

    function deposit(address token, uint256 amount) external {
        if (paused) revert VenuePaused();
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        if (token == quoteToken) {
            a.quote = _toInt88(int256(a.quote) + int256(amount));
        } else if (token == weth) {
            if (amount % MarginLib.GWEI_PER_ETH != 0) revert NotGweiMultiple(amount);
            a.wethGwei = _toUint64(uint256(a.wethGwei) + amount / MarginLib.GWEI_PER_ETH);
        } else {
            revert UnsupportedToken(token);
        }
        emit Deposited(msg.sender, token, amount);
        TransferLib.pull(token, msg.sender, amount);
    }

    function withdraw(address token, uint256 amount) external {
        if (frozenAt != 0) revert VenueFrozen(); // exitFrozen pays out at the frozen marks
        if (amount == 0) revert ZeroAmount();
        AccountMem memory a = _loadAccount(msg.sender);
        if (token == quoteToken) {
            if (a.quote < int256(amount)) revert InsufficientBalance(msg.sender, a.quote, amount);
            a.quote -= int256(amount);
        } else if (token == weth) {
            if (amount % MarginLib.GWEI_PER_ETH != 0) revert NotGweiMultiple(amount);
            uint256 amountGwei = amount / MarginLib.GWEI_PER_ETH;
            if (a.wethGwei < amountGwei) revert InsufficientBalance(msg.sender, int256(a.wethGwei * 1e9), amount);
            a.wethGwei -= amountGwei;
        } else {
            revert UnsupportedToken(token);
        }
        PriceCache memory cache = _newCache(true, false);
        (, int256 equity, uint256 raw) = _health(msg.sender, a, type(uint256).max, _emptyPos(), cache);
        uint256 im = MarginLib.initialMargin(raw);
        if (equity < int256(im)) revert InsufficientMargin(msg.sender, equity, im);
        _storeAccount(msg.sender, a);
        emit Withdrawn(msg.sender, token, amount);
        TransferLib.push(token, msg.sender, amount);
    }

    /* ESCAPE HATCH */

    function requestExit() external {
        if (frozenAt != 0) revert VenueFrozen();
        exitRequestedAt[msg.sender] = block.timestamp;
        emit ExitRequested(msg.sender, block.timestamp);
    }

    function freeze(address requester) external {
        if (frozenAt != 0) revert VenueFrozen();
        uint256 requested = exitRequestedAt[requester];
        if (requested == 0) revert NoExitRequest(requester);
        uint256 since = lastSettledAt > requested ? lastSettledAt : requested;
        uint256 due = since + riskParams.escapeDelay;
        if (block.timestamp < due) revert EscapeNotDue(requester, due);
        frozenAt = uint40(block.timestamp);
        paused = true;
        // The marks: each market's latest oracle price, whatever its age (the operator may be
        // gone, the oracle keeper too); funding accrued to now and stored, none after.
        PriceCache memory cache = _newCache(false, true);
        for (uint256 i; i < marketCount; ++i) {
            (MarketView memory v, uint256 price,) = _market(cache, i);
            if (v.fundingChanged) _storeFunding(i, v);
            frozenPrice[i] = price;
        }
        (frozenPrice[MAX_MARKETS],) = _price(cache, cache.price.length - 1);
        emit Frozen(requester, block.timestamp);
    }

    function exitFrozen() external returns (uint256 quotePaid, uint256 wethPaid) {
        if (frozenAt == 0) revert VenueNotFrozen();
        if (exited[msg.sender]) revert AlreadyExited(msg.sender);
        exited[msg.sender] = true;
        AccountMem memory a = _loadAccount(msg.sender);
        int256 realized;
        int256 fundingPaid;
        uint256 mask = a.mask;
        while (mask != 0) {
            uint256 i = _lowestBit(mask);
            mask &= mask - 1;
            PositionMem memory p = _loadPosition(msg.sender, i);
            MarketState storage m = _markets[i];
            fundingPaid += _settleFunding(a, p, m.fundingIndex); // accrued to the freeze
            // Long and short sides close at the same mark: zero-sum, each value rounded down.
            int256 pnl = MarginLib.positionValue(p.size, frozenPrice[i]) - p.openNotional;
            a.quote += pnl;
            realized += pnl;
            if (p.size > 0) m.openInterest -= uint64(uint256(p.size));
            p.size = 0;
            p.openNotional = 0;
            _storePosition(msg.sender, i, p);
        }
        a.mask = 0;
        if (fundingPaid != 0) _addToPools(0, fundingPaid);
        uint256 wethGwei = a.wethGwei;
        if (a.quote < 0) {
            // Below zero: the insurance fund pays the quote deficit and takes the account's WETH
            // up to its value at the frozen ETH mark; what it cannot pay is bad debt.
            uint256 deficit = uint256(-a.quote);
            uint256 ethMark = frozenPrice[MAX_MARKETS];
            uint256 seize = ethMark == 0 ? wethGwei : MathLib.min(wethGwei, deficit.mulDivUp(MarginLib.GWEI_PER_ETH, ethMark));
            wethGwei -= seize;
            seizedWethGwei += seize;
            uint256 covered = MathLib.min(deficit, insuranceFund);
            insuranceFund -= covered;
            if (covered != 0) emit InsuranceUsed(msg.sender, covered);
            if (deficit > covered) emit BadDebt(msg.sender, deficit - covered);
            a.quote = 0;
        }
        quotePaid = uint256(a.quote);
        wethPaid = wethGwei * MarginLib.GWEI_PER_ETH;
        a.quote = 0;
        a.wethGwei = 0;
        _storeAccount(msg.sender, a);
        emit ExitedFrozen(msg.sender, quotePaid, wethPaid, realized);
        if (quotePaid != 0) TransferLib.push(quoteToken, msg.sender, quotePaid);
        if (wethPaid != 0) TransferLib.push(weth, msg.sender, wethPaid);
    }

    function setAgent(address agent, bool approved) external {
        isAgent[msg.sender][agent] = approved;
        emit AgentSet(msg.sender, agent, approved);
    }

    /* ORDERS */

    function cancelOrders(uint256[] calldata nonces) external {
        if (nonces.length != 0) _accounts[msg.sender].flags |= uint8(FLAG_ORDER_WORDS);
        for (uint256 i; i < nonces.length; ++i) {
            uint256 nonce = nonces[i];
            uint256 shift = (nonce & 127) << 1;
            uint256 word = _orderWords[msg.sender][nonce >> 7];
            _orderWords[msg.sender][nonce >> 7] = (word & ~(uint256(3) << shift)) | (STATE_CLOSED << shift);
            delete filledAmount[msg.sender][nonce];
            emit OrderCancelled(msg.sender, nonce);
        }
    }

    /// @dev The minimum nonce is a uint64 like the signed nonce, so every signed nonce but
    ///      2^64 - 1 can be reached (that one: `cancelOrders`).
    function cancelAllBelow(uint256 minNonce) external {
        Account storage a = _accounts[msg.sender];
        if (minNonce <= a.minNonce || minNonce > type(uint64).max) revert NonceNotIncreasing(a.minNonce, minNonce);
        a.minNonce = uint64(minNonce);
        emit NoncesCancelledBelow(msg.sender, minNonce);
    }

    /* VIEWS */

    function market(uint256 marketId) external view returns (MarketState memory) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        return _markets[marketId];
    }

    function currentFundingIndex(uint256 marketId) external view returns (int256) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        (MarketView memory m,,) = _market(_newCache(false, true), marketId);
        return m.fundingIndex;
    }

    function health(address account)
        external
        view
        returns (int256 equity, uint256 initialMargin, uint256 maintenanceMargin)
    {
        PriceCache memory cache = _newCache(false, true);
        uint256 raw;
        (, equity, raw) = _health(account, _loadAccount(account), type(uint256).max, _emptyPos(), cache);
        return (equity, MarginLib.initialMargin(raw), MarginLib.maintenanceMargin(raw));
    }

    function groupExposure(address account, uint256 group) external view returns (uint256 notional, uint256 cap) {
        PriceCache memory cache = _newCache(false, true);
        (cap,) = exposureGroup(group);
        if (cap != 0) (, notional) = _groupExposure(account, _loadAccount(account).mask, group, type(uint256).max, _emptyPos(), cache);
    }

    function exposureGroup(uint256 group) public view returns (uint256 cap, uint256 marketMask) {
        if (group == 0) return (0, 0);
        for (uint256 i; i < marketCount; ++i) {
            MarketState storage m = _markets[i];
            if (m.exposureGroup == group) {
                cap = m.exposureCap;
                marketMask |= 1 << i;
            }
        }
    }

    function position(address account, uint256 marketId) external view returns (PositionView memory v) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        PositionMem memory p = _loadPosition(account, marketId);
        (MarketView memory m, uint256 price,) = _market(_newCache(false, true), marketId);
        v.size = p.size;
        v.openNotional = p.openNotional;
        if (p.size != 0) v.entryPrice = MathLib.abs(p.openNotional) * uint256(SIZE_SCALE) / MathLib.abs(p.size);
        v.unrealizedPnl = MarginLib.positionValue(p.size, price) - p.openNotional;
        v.fundingOwed = FundingLib.owed(p.size, m.fundingIndex, p.fundingSnapshot);
    }

    function balances(address account) external view returns (int256 quote, uint256 wethWei, uint256 marketMask) {
        Account memory a = _accounts[account];
        return (a.quote, uint256(a.wethGwei) * MarginLib.GWEI_PER_ETH, a.marketMask);
    }

    function orderState(address account, uint256 nonce) external view returns (uint256) {
        if (nonce < _accounts[account].minNonce) return STATE_CLOSED;
        return (_orderWords[account][nonce >> 7] >> ((nonce & 127) << 1)) & 3;
    }
}
