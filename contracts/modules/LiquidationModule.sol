// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketState, RiskParams} from "../interfaces/IClearingHouse.sol";
import {ClearingHouseBase, Config} from "../storage/ClearingHouseBase.sol";
import {MathLib} from "../libraries/MathLib.sol";
import {MarginLib} from "../libraries/MarginLib.sol";
import {TransferLib} from "../libraries/TransferLib.sol";

/// @title LiquidationModule
/// @notice Liquidation and the insurance fund. Runs by delegatecall from ClearingHouse over its
///         storage; see ILiquidationModule for the API. Liquidation works while the venue is
///         paused and in halted or reduce-only markets: an account below maintenance margin is
///         closed down whatever the guardian did, at the oracle price.
contract LiquidationModule is ClearingHouseBase {
    using MathLib for uint256;

    constructor(Config memory c) ClearingHouseBase(c) {}

    function liquidate(address account, uint256 marketId, uint256 size) external returns (uint256 closed) {
        if (frozenAt != 0) revert VenueFrozen(); // positions close at the frozen marks (exitFrozen)
        if (account == msg.sender) revert SelfLiquidation(account);
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        MarketState storage m = _markets[marketId];
        if (size == 0 || size % m.lotSize != 0) revert InvalidLiquidationSize(size, m.lotSize);
        PriceCache memory cache = _newCache(true, false);

        AccountMem memory a = _loadAccount(account);
        uint256 price;
        MarketView memory view_;
        {
            (, int256 equity, uint256 raw) = _health(account, a, type(uint256).max, _emptyPos(), cache);
            uint256 maintenance = MarginLib.maintenanceMargin(raw);
            if (equity >= int256(maintenance)) revert AccountNotLiquidatable(account, equity, maintenance);
            uint256 available = _insuranceAvailable();
            int256 real = _unhaircutEquity(a, equity, cache);
            if (real < 0 && uint256(-real) > available) revert ShortfallNeedsAdl(account, uint256(-real), available);
            (view_, price,) = _market(cache, marketId);
            closed = MathLib.min(size, _maxLiquidation(account, marketId, equity, maintenance, price));
        }
        if (closed == 0) revert NoPosition(account, marketId);

        // Funding up to now, stored before any position in the market changes.
        int256 index = view_.fundingIndex;
        if (view_.fundingChanged) _storeFunding(marketId, view_);
        PositionMem memory p = _loadPosition(account, marketId);
        int256 fundingPaid = _settleFunding(a, p, index);
        uint256 penaltyBps = m.liquidationPenaltyBps;
        // The account's side of the trade, at the oracle price moved against it by the penalty.
        int256 delta = p.size > 0 ? -int256(closed) : int256(closed);
        uint256 oracleNotional = closed * price / uint256(SIZE_SCALE);
        uint256 execNotional;
        uint256 penalty;
        if (delta < 0) {
            execNotional = closed.mulDivDown(price * (BPS - penaltyBps), uint256(SIZE_SCALE) * BPS);
            penalty = oracleNotional - execNotional;
        } else {
            execNotional = closed.mulDivUp(price * (BPS + penaltyBps), uint256(SIZE_SCALE) * BPS);
            penalty = execNotional - oracleNotional;
        }
        int256 quote = delta > 0 ? int256(execNotional) : -int256(execNotional);
        uint256 insuranceCut = penalty.mulDivDown(riskParams.insuranceShareBps, BPS);
        int256 oldSize = p.size;
        _applyTrade(a, p, delta, quote);
        a.mask = _maskWith(a.mask, marketId, p.size);

        // The liquidator takes the other side and pays the insurance share out of its gain.
        AccountMem memory l = _loadAccount(msg.sender);
        PositionMem memory lp = _loadPosition(msg.sender, marketId);
        fundingPaid += _settleFunding(l, lp, index);
        int256 liquidatorOldSize = lp.size;
        _applyTrade(l, lp, -delta, -quote);
        l.quote -= int256(insuranceCut);
        l.mask = _maskWith(l.mask, marketId, lp.size);
        if (_riskGrew(liquidatorOldSize, lp.size)) {
            if (MathLib.abs(lp.size) > m.maxPosition) revert InsufficientMargin(msg.sender, 0, 0);
            (, int256 lEquity, uint256 lRaw) = _health(msg.sender, l, marketId, lp, cache);
            uint256 im = MarginLib.initialMargin(lRaw);
            if (lEquity < int256(im)) revert InsufficientMargin(msg.sender, lEquity, im);
        }
        m.openInterest = uint64(
            uint256(
                int256(uint256(m.openInterest)) + MathLib.max0(p.size) - MathLib.max0(oldSize) + MathLib.max0(lp.size)
                    - MathLib.max0(liquidatorOldSize)
            )
        );
        insuranceFund += insuranceCut;
        if (fundingPaid != 0) _addToPools(0, fundingPaid);

        // Negative equity once every position is gone: the insurance fund covers what it can.
        uint256 covered;
        uint256 badDebt;
        if (a.mask == 0) {
            (, int256 equityAfter,) = _health(account, a, type(uint256).max, _emptyPos(), cache);
            if (equityAfter < 0) {
                uint256 shortfall = uint256(-equityAfter);
                covered = MathLib.min(shortfall, _insuranceAvailable());
                badDebt = shortfall - covered;
                insuranceFund -= covered;
                a.quote += int256(covered);
            }
        }
        _storeAccount(account, a);
        _storePosition(account, marketId, p);
        _storeAccount(msg.sender, l);
        _storePosition(msg.sender, marketId, lp);
        emit Liquidated(account, msg.sender, marketId, delta, execNotional * uint256(SIZE_SCALE) / closed, penalty, insuranceCut);
        if (covered != 0) emit InsuranceUsed(account, covered);
        if (badDebt != 0) emit BadDebt(account, badDebt);
    }

    /// @dev Largest size one call may close: the whole position past the full-close threshold,
    ///      otherwise the size whose closing restores equity >= MM * (1 + buffer), rounded up to
    ///      a lot. Closing notional n lowers equity by n * penalty and maintenance margin by at
    ///      least n * imBps1 / 2, hence n >= 2e4 * (MM * (1e4 + b) - E * 1e4) / (imBps1 * (1e4 + b) - 2e4 * penalty).
    function _maxLiquidation(address account, uint256 marketId, int256 equity, uint256 maintenance, uint256 price)
        internal
        view
        returns (uint256)
    {
        MarketState storage m = _markets[marketId];
        uint256 held = MathLib.abs(_positions[account][marketId].size);
        RiskParams memory r = riskParams;
        if (equity * int256(BPS) < int256(maintenance * r.fullCloseThresholdBps)) return held;
        int256 buffered = int256(BPS + r.liquidationBufferBps);
        int256 numerator = 2 * int256(BPS) * (int256(maintenance) * buffered - equity * int256(BPS));
        int256 denominator = int256(uint256(m.imBps1)) * buffered - 2 * int256(BPS) * int256(uint256(m.liquidationPenaltyBps));
        uint256 notional = uint256(MathLib.ceilDiv(numerator, denominator));
        uint256 needed = (notional * uint256(SIZE_SCALE)).divUp(price);
        uint256 lot = m.lotSize;
        needed = needed.divUp(lot) * lot;
        return MathLib.min(needed, held);
    }

    /// @dev What the insurance fund holds above its floor.
    function _insuranceAvailable() internal view returns (uint256) {
        uint256 floor = riskParams.insuranceFloor;
        return insuranceFund > floor ? insuranceFund - floor : 0;
    }

    /// @dev `equity` (from `_health`, WETH after the haircut) with the account's WETH at its full
    ///      oracle value instead.
    function _unhaircutEquity(AccountMem memory a, int256 equity, PriceCache memory cache) internal view returns (int256) {
        if (a.wethGwei == 0) return equity;
        (uint256 ethPrice,) = _price(cache, cache.price.length - 1);
        return equity + int256(MarginLib.wethValue(a.wethGwei, ethPrice, 0))
            - int256(MarginLib.wethValue(a.wethGwei, ethPrice, haircutBps));
    }

    /// @dev Locals of `deleverage` (one struct: fewer stack slots).
    struct Adl {
        uint256 held; // the bankrupt position's size at the start
        uint256 deficit; // its shortfall at the start, after the insurance fund paid its part
        uint256 price;
        int256 index;
        int256 fundingPaid;
        uint256 previousScore;
        bool previousOpen;
    }

    function deleverage(address account, uint256 marketId, address[] calldata counterparties, uint256[] calldata sizes)
        external
        only(ROLE_RISK_KEEPER)
        returns (uint256 total)
    {
        if (frozenAt != 0) revert VenueFrozen();
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        if (counterparties.length == 0 || counterparties.length != sizes.length) revert InvalidAdlEntry(0);
        PriceCache memory cache = _newCache(true, false);
        AccountMem memory a = _loadAccount(account);
        PositionMem memory p = _loadPosition(account, marketId);
        Adl memory d;
        {
            (, int256 equity,) = _health(account, a, type(uint256).max, _emptyPos(), cache);
            // A real shortfall: WETH counted at its full oracle value, not after the haircut (the
            // haircut is a margin buffer, not a loss the other side should pay for).
            equity = _unhaircutEquity(a, equity, cache);
            uint256 available = _insuranceAvailable();
            if (equity >= 0 || uint256(-equity) <= available) revert NoShortfall(account, equity, available);
            if (p.size == 0) revert NoPosition(account, marketId);
            if (available != 0) {
                insuranceFund -= available;
                a.quote += int256(available);
                emit InsuranceUsed(account, available);
            }
            d.deficit = uint256(-equity) - available;
            d.held = MathLib.abs(p.size);
            MarketView memory view_;
            (view_, d.price,) = _market(cache, marketId);
            d.index = view_.fundingIndex;
            if (view_.fundingChanged) _storeFunding(marketId, view_);
        }
        // Equity counted the funding owed: paying it now leaves the deficit as it is.
        d.fundingPaid = _settleFunding(a, p, d.index);
        uint256 lot = _markets[marketId].lotSize;
        for (uint256 i; i < counterparties.length; ++i) {
            address c = counterparties[i];
            uint256 size = sizes[i];
            if (c == account || size == 0 || size % lot != 0) revert InvalidAdlEntry(i);
            total += size;
            if (total > d.held) revert AdlExceedsPosition(total, d.held);
            AccountMem memory ca = _loadAccount(c);
            PositionMem memory cp = _loadPosition(c, marketId);
            int256 pnl = MarginLib.positionValue(cp.size, d.price) - cp.openNotional;
            if (cp.size == 0 || (cp.size > 0) == (p.size > 0) || pnl <= 0) revert AdlNotEligible(c, cp.size, pnl);
            if (size > MathLib.abs(cp.size)) revert InvalidAdlEntry(i);
            uint256 score = _adlScore(c, ca, cp, pnl, d.price, cache);
            if (i != 0 && (score > d.previousScore || d.previousOpen)) {
                revert AdlOutOfOrder(c, score, d.previousScore, d.previousOpen);
            }
            d.previousScore = score;
            d.previousOpen = size < MathLib.abs(cp.size);
            d.fundingPaid += _settleFunding(ca, cp, d.index);
            // At the oracle price, plus the counterparty's share of the deficit (rounded up).
            uint256 share = d.deficit.mulDivUp(size, d.held);
            int256 delta = cp.size > 0 ? -int256(size) : int256(size);
            int256 notional = int256(size * d.price / uint256(SIZE_SCALE));
            int256 cost = (delta > 0 ? notional : -notional) + int256(share);
            _applyTrade(ca, cp, delta, cost);
            _applyTrade(a, p, -delta, -cost);
            ca.mask = _maskWith(ca.mask, marketId, cp.size);
            _storeAccount(c, ca);
            _storePosition(c, marketId, cp);
            emit Deleveraged(account, c, marketId, delta, d.price, share);
        }
        a.mask = _maskWith(a.mask, marketId, p.size);
        _storeAccount(account, a);
        _storePosition(account, marketId, p);
        MarketState storage m = _markets[marketId];
        m.openInterest = uint64(uint256(m.openInterest) - total); // one side of every ADL trade was long
        if (d.fundingPaid != 0) _addToPools(0, d.fundingPaid);
    }

    function adlScore(address account, uint256 marketId) external view returns (uint256) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        PriceCache memory cache = _newCache(false, true);
        AccountMem memory a = _loadAccount(account);
        PositionMem memory p = _loadPosition(account, marketId);
        (, uint256 price,) = _market(cache, marketId);
        int256 pnl = MarginLib.positionValue(p.size, price) - p.openNotional;
        return pnl <= 0 ? 0 : _adlScore(account, a, p, pnl, price, cache);
    }

    /// @dev Unrealized PnL x notional / equity (PnL times effective leverage), equity below 1 as 1.
    function _adlScore(
        address account,
        AccountMem memory a,
        PositionMem memory p,
        int256 pnl,
        uint256 price,
        PriceCache memory cache
    ) internal view returns (uint256) {
        (, int256 equity,) = _health(account, a, type(uint256).max, _emptyPos(), cache);
        uint256 notional = MarginLib.notionalUp(MathLib.abs(p.size), price);
        return uint256(pnl) * notional / (equity > 1 ? uint256(equity) : 1);
    }

    function depositInsurance(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        insuranceFund += amount;
        emit InsuranceDeposited(msg.sender, amount);
        TransferLib.pull(quoteToken, msg.sender, amount);
    }
}
