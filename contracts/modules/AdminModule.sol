// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketParams, MarketState, RiskParams} from "../interfaces/IClearingHouse.sol";
import {ClearingHouseBase, Config} from "../storage/ClearingHouseBase.sol";
import {TransferLib} from "../libraries/TransferLib.sol";
import {MarginLib} from "../libraries/MarginLib.sol";

/// @title AdminModule
/// @notice Owner (two-step transfer), guardian controls (pause, reduce-only markets), roles,
///         listings and risk parameters. Runs by delegatecall from ClearingHouse over its
///         storage; see IAdminModule for the API.
contract AdminModule is ClearingHouseBase {
    constructor(Config memory c) ClearingHouseBase(c) {}

    /* OWNER */

    function setRole(uint8 role, address account, bool enabled) external only(ROLE_OWNER) {
        if (role == ROLE_OWNER || role > ROLE_GUARDIAN) revert Unauthorized(msg.sender, role);
        hasRole[role][account] = enabled;
        emit RoleSet(role, account, enabled);
    }

    function transferOwnership(address newOwner) external only(ROLE_OWNER) {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(msg.sender, newOwner);
    }

    function acceptOwnership() external {
        if (msg.sender != pendingOwner || msg.sender == address(0)) revert Unauthorized(msg.sender, ROLE_PENDING_OWNER);
        address previous = owner;
        owner = msg.sender;
        delete pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }

    function listMarket(MarketParams calldata p) external only(ROLE_OWNER) returns (uint256 marketId) {
        marketId = marketCount;
        if (marketId >= MAX_MARKETS) revert InvalidMarketParams(0);
        _checkParams(p, riskParams);
        MarketState storage m = _markets[marketId];
        m.tickSize = p.tickSize;
        m.lotSize = p.lotSize;
        m.minNotional = p.minNotional;
        m.oracleId = p.oracleId;
        m.bandBps = p.bandBps;
        m.makerFeeBps = p.makerFeeBps;
        m.takerFeeBps = p.takerFeeBps;
        m.imBps1 = p.imBps1;
        m.imBps2 = p.imBps2;
        m.liquidationPenaltyBps = p.liquidationPenaltyBps;
        m.tierCap1 = uint112(p.tierCap1); // _checkParams: it fits
        m.maxPosition = p.maxPosition;
        m.openInterestCap = p.openInterestCap;
        m.maxFundingRatePerHour = p.maxFundingRatePerHour;
        m.lastFundingTime = uint64(block.timestamp);
        marketCount = marketId + 1;
        emit MarketListed(marketId, p);
    }

    /// @dev Halting overrides reduce-only; resuming a halted market makes it active.
    function setMarketHalted(uint256 marketId, bool halted) external only(ROLE_OWNER) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        _markets[marketId].status = uint8(halted ? STATUS_HALTED : STATUS_ACTIVE);
        emit MarketHalted(marketId, halted);
    }

    function setRiskParams(RiskParams calldata p) external only(ROLE_OWNER) {
        _checkRiskParams(p);
        for (uint256 i; i < marketCount; ++i) {
            MarketState storage m = _markets[i];
            if (uint256(m.liquidationPenaltyBps) * 2 * BPS >= uint256(m.imBps1) * (BPS + p.liquidationBufferBps)) {
                revert InvalidRiskParams();
            }
        }
        riskParams = p;
        emit RiskParamsSet(p);
    }

    function setHaircut(uint256 newHaircutBps) external only(ROLE_RISK_ADMIN) {
        if (newHaircutBps < minHaircutBps || newHaircutBps > maxHaircutBps) {
            revert HaircutOutOfBounds(newHaircutBps, minHaircutBps, maxHaircutBps);
        }
        haircutBps = newHaircutBps;
        emit HaircutSet(newHaircutBps);
    }

    function raiseHaircut(uint256 newHaircutBps) external only(ROLE_RISK_KEEPER) {
        if (newHaircutBps <= haircutBps) revert HaircutCanOnlyRise(haircutBps, newHaircutBps);
        if (newHaircutBps > maxHaircutBps) revert HaircutOutOfBounds(newHaircutBps, minHaircutBps, maxHaircutBps);
        haircutBps = newHaircutBps;
        emit HaircutSet(newHaircutBps);
    }

    function setExposureGroup(uint256 group, uint256 cap, uint256 marketMask) external only(ROLE_RISK_ADMIN) {
        uint256 n = marketCount;
        if (
            group == 0 || group > type(uint8).max || cap > type(uint64).max || (marketMask >> n) != 0
                || (cap == 0) != (marketMask == 0)
        ) revert InvalidExposureGroup(group, cap, marketMask);
        for (uint256 i; i < n; ++i) {
            MarketState storage m = _markets[i];
            if ((marketMask >> i) & 1 != 0) {
                m.exposureGroup = uint8(group);
                m.exposureCap = uint64(cap);
            } else if (m.exposureGroup == group) {
                m.exposureGroup = 0;
                m.exposureCap = 0;
            }
        }
        emit ExposureGroupSet(group, cap, marketMask);
    }

    function sweepFees(address to, uint256 amount) external only(ROLE_OWNER) {
        int256 pool = feePool;
        if (amount == 0 || int256(amount) > pool) revert InsufficientFees(pool, amount);
        feePool = int128(pool - int256(amount));
        emit FeesSwept(to, amount);
        TransferLib.push(quoteToken, to, amount);
    }

    /// @dev After a freeze: the insurance fund, the funding pool's rounding dust and any WETH
    ///      seized from accounts below zero go to `to` (the fee pool goes by `sweepFees`).
    function withdrawFrozenReserves(address to) external only(ROLE_OWNER) {
        if (frozenAt == 0) revert VenueNotFrozen();
        uint256 quote = insuranceFund;
        int256 dust = fundingPool;
        if (dust > 0) {
            quote += uint256(dust);
            fundingPool = 0;
        }
        uint256 wethWei = seizedWethGwei * MarginLib.GWEI_PER_ETH;
        insuranceFund = 0;
        seizedWethGwei = 0;
        emit FrozenReservesWithdrawn(to, quote, wethWei);
        if (quote != 0) TransferLib.push(quoteToken, to, quote);
        if (wethWei != 0) TransferLib.push(weth, to, wethWei);
    }

    /* GUARDIAN */

    function pause() external only(ROLE_GUARDIAN) {
        paused = true;
        emit VenuePausedSet(true, msg.sender);
    }

    function unpause() external only(ROLE_GUARDIAN) {
        if (frozenAt != 0) revert VenueFrozen(); // a freeze is for good
        paused = false;
        emit VenuePausedSet(false, msg.sender);
    }

    /// @dev A halted market stays halted (the owner resumes it); reduce-only applies to active markets.
    function setMarketReduceOnly(uint256 marketId, bool reduceOnly) external only(ROLE_GUARDIAN) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        MarketState storage m = _markets[marketId];
        uint256 status = m.status;
        uint256 next = reduceOnly ? STATUS_REDUCE_ONLY : STATUS_ACTIVE;
        if (status == STATUS_HALTED) revert InvalidMarketStatus(marketId, status, next);
        m.status = uint8(next);
        emit MarketReduceOnly(marketId, reduceOnly, msg.sender);
    }
}
