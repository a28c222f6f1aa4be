// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClearingHouseBase, MarketParams, MarketState, RiskParams} from "../interfaces/IClearingHouse.sol";
import {IOracle} from "../interfaces/IOracle.sol";
import {MathLib} from "../libraries/MathLib.sol";
import {MarginLib} from "../libraries/MarginLib.sol";
import {PositionLib} from "../libraries/PositionLib.sol";
import {FundingLib} from "../libraries/FundingLib.sol";

/// @notice Deployment-wide constants, the same for the entry contract and every module (each
///         holds them as immutables; ClearingHouse's constructor checks the modules agree).
struct Config {
    IOracle oracle;
    address quoteToken;
    address weth;
    uint256 wethOracleId;
    uint256 minHaircutBps;
    uint256 maxHaircutBps;
}

/// @title ClearingHouseBase
/// @notice The one storage layout the entry contract and its modules share (modules run by
///         delegatecall in the entry contract's storage), and the logic more than one of them
///         needs: margin, prices, funding accrual, packed storage access.
/// @dev Derived contracts declare no storage of their own. Append new fields at the end only.
///      Storage is laid out for settlement gas: one slot per account (both collaterals, the
///      active-market mask and the minimum nonce), one slot per position (size, cost basis,
///      funding snapshot), and two bits of order state per nonce (fresh, partly filled, closed).
abstract contract ClearingHouseBase is IClearingHouseBase {
    using MathLib for uint256;

    /* TYPES */

    struct Account {
        int88 quote; // quote token base units; negative only after a loss beyond collateral
        uint64 wethGwei;
        uint32 marketMask;
        uint64 minNonce; // every order with a lower nonce is closed
        uint8 flags; // FLAG_ORDER_WORDS: order-state words hold entries at or above minNonce
    }

    struct Position {
        int64 size;
        int96 openNotional;
        int96 fundingSnapshot;
    }

    struct AccountMem {
        int256 quote;
        uint256 wethGwei;
        uint256 mask;
        uint256 minNonce;
        uint256 flags;
    }

    struct PositionMem {
        int256 size;
        int256 openNotional;
        int256 fundingSnapshot;
    }

    /// @dev A market's parameters and mutable totals, read from storage once per call, with its
    ///      funding index accrued to now in memory (`fundingChanged`: the accrual is to be stored).
    struct MarketView {
        bool loaded;
        uint256 status;
        bool openInterestChanged;
        uint256 tickSize;
        uint256 lotSize;
        uint256 minNotional;
        uint256 bandBps;
        int256 makerFeeBps;
        uint256 takerFeeBps;
        uint256 imBps1;
        uint256 imBps2;
        uint256 tierCap1;
        uint256 maxPosition;
        uint256 openInterestCap;
        int256 openInterest;
        int256 fundingIndex;
        uint256 fundingTime;
        int256 fundingRate;
        bool fundingChanged;
        uint256 exposureGroup; // 0: none
        uint256 exposureCap; // type(uint256).max when the market is in no group
    }

    /// @dev Oracle prices and market views read once per call (a whole batch in `settle`).
    ///      Slot i < marketCount is market i; the last price slot is WETH.
    struct PriceCache {
        uint256[] price;
        bool[] fresh;
        bool strict; // revert with StalePrice instead of reporting staleness
        bool ignoreAge; // views: use the latest price whatever its age
        MarketView[] markets;
        int256 feeDelta; // fees accrued by the batch, added to the pool once
        int256 fundingDelta; // funding paid by the batch's accounts, added to the funding pool once
    }

    /* CONSTANTS AND IMMUTABLES */

    uint8 internal constant ROLE_OWNER = 0;
    uint8 internal constant ROLE_OPERATOR = 1;
    uint8 internal constant ROLE_FUNDING_KEEPER = 2;
    uint8 internal constant ROLE_RISK_ADMIN = 3;
    uint8 internal constant ROLE_RISK_KEEPER = 4;
    uint8 internal constant ROLE_GUARDIAN = 5;
    uint8 internal constant ROLE_PENDING_OWNER = 6;

    uint256 internal constant STATUS_ACTIVE = 0;
    uint256 internal constant STATUS_HALTED = 1;
    uint256 internal constant STATUS_REDUCE_ONLY = 2;

    uint256 internal constant MAX_MARKETS = 32;
    /// @dev Two bits of order state per nonce. The settlement assembly writes these three values
    ///      as the literals 0, 1 and 2.
    uint256 internal constant STATE_FRESH = 0;
    uint256 internal constant STATE_PARTIAL = 1;
    uint256 internal constant STATE_CLOSED = 2;
    /// @dev Set on an account once an order-state word records a nonce at or above its minimum
    ///      nonce (a cancel, a partial fill, an out-of-order fill). Until then every order at or
    ///      above the minimum is fresh without reading a word, and an order filled in nonce order
    ///      closes by advancing the minimum nonce: the fast path for bots that number their orders.
    uint256 internal constant FLAG_ORDER_WORDS = 1;
    uint256 internal constant BPS = 10_000;
    int256 internal constant SIZE_SCALE = 1e8;
    /// @notice The longest stretch one funding accrual applies the last posted rate over: a
    ///         market nobody touches (no fill, no liquidation, no rate update) for longer accrues
    ///         at most this much, so a rate whose keeper went silent cannot run on.
    uint256 public constant MAX_FUNDING_STEP = 7200;
    /// @notice The highest funding cap a market may list (10 %/h, WAD): with MAX_FUNDING_STEP (two hours: a keeper
    ///         posting hourly may be late by an hour without losing a second of funding) it
    ///         bounds one accrual step, so the index stays within its 96-bit width for decades.
    uint256 public constant MAX_FUNDING_RATE = 1e17;

    IOracle public immutable oracle;
    address public immutable quoteToken;
    address public immutable weth;
    uint256 public immutable wethOracleId;
    uint256 public immutable minHaircutBps;
    uint256 public immutable maxHaircutBps;

    /* STORAGE (slot numbers are read by venue/chain.py) */

    address public owner; // 0
    mapping(uint8 => mapping(address => bool)) public hasRole; // 1
    RiskParams public riskParams; // 2
    uint256 public haircutBps; // 3
    uint64 public nextBatchIndex; // 4, with `paused` and `lastSettledAt`: settlement reads and writes the slot whole
    bool public paused;
    uint40 public lastSettledAt; // when the last batch settled (deployment time before the first)
    uint256 public marketCount; // 5
    int128 public feePool; // 6, with `fundingPool`: a batch writes both with one SSTORE
    int128 public fundingPool;
    uint256 public insuranceFund; // 7

    /// @dev MarketState's four slots: parameters (slots 0-2, with open interest and status) and
    ///      funding (slot 3: the index accrued up to lastFundingTime; lastFundingRate applies from then on).
    mapping(uint256 => MarketState) internal _markets; // 8
    mapping(address => Account) internal _accounts; // 9
    mapping(address => mapping(uint256 => Position)) internal _positions; // 10
    mapping(address => mapping(address => bool)) public isAgent; // 11
    mapping(address => mapping(uint256 => uint256)) internal _orderWords; // 12
    /// @dev Cumulative size settled under (account, nonce) while its order is partly filled.
    mapping(address => mapping(uint256 => uint256)) public filledAmount; // 13
    address public pendingOwner; // 14
    /// @dev Escape hatch (CollateralModule): when the venue was frozen, 0 while it is not.
    uint40 public frozenAt; // 15
    mapping(address => uint256) public exitRequestedAt; // 16
    /// @dev The frozen marks: each market's oracle price at the freeze; key MAX_MARKETS is WETH's.
    mapping(uint256 => uint256) public frozenPrice; // 17
    mapping(address => bool) public exited; // 18
    /// @dev WETH taken at exit from accounts whose quote balance was negative (the reserves').
    uint256 public seizedWethGwei; // 19

    constructor(Config memory c) {
        oracle = c.oracle;
        quoteToken = c.quoteToken;
        weth = c.weth;
        wethOracleId = c.wethOracleId;
        minHaircutBps = c.minHaircutBps;
        maxHaircutBps = c.maxHaircutBps;
    }

    /// @notice keccak256 of this contract's immutables: equal across the entry contract and its modules.
    function configHash() public view returns (bytes32) {
        return keccak256(abi.encode(oracle, quoteToken, weth, wethOracleId, minHaircutBps, maxHaircutBps));
    }

    modifier only(uint8 role) {
        if (role == ROLE_OWNER ? msg.sender != owner : !hasRole[role][msg.sender]) {
            revert Unauthorized(msg.sender, role);
        }
        _;
    }

    /* MARGIN */

    /// @dev Equity and the raw tier sum of `account` at oracle prices, with `overridePos` standing
    ///      in for the stored position in `overrideMarket`, funding accrued to now. `fresh` is false
    ///      if a price used was stale.
    function _health(
        address account,
        AccountMem memory a,
        uint256 overrideMarket,
        PositionMem memory overridePos,
        PriceCache memory cache
    ) internal view returns (bool fresh, int256 equity, uint256 raw) {
        // Unchecked: at most 32 markets of terms below 2^200 (int64 sizes x uint64 prices, int88
        // balances, int96 funding indices).
        unchecked {
            fresh = true;
            equity = a.quote;
            if (a.wethGwei != 0) {
                (uint256 ethPrice, bool ok) = _price(cache, cache.price.length - 1);
                fresh = fresh && ok;
                equity += int256(MarginLib.wethValue(a.wethGwei, ethPrice, haircutBps));
            }
            uint256 mask = a.mask;
            while (mask != 0) {
                uint256 i = _lowestBit(mask);
                mask &= mask - 1;
                PositionMem memory p = i == overrideMarket ? overridePos : _loadPosition(account, i);
                (MarketView memory m, uint256 price, bool ok) = _market(cache, i);
                fresh = fresh && ok;
                equity += MarginLib.positionValue(p.size, price) - p.openNotional
                    - FundingLib.owed(p.size, m.fundingIndex, p.fundingSnapshot);
                raw += MarginLib.marginRaw(
                    MarginLib.notionalUp(MathLib.abs(p.size), price), m.tierCap1, m.imBps1, m.imBps2
                );
            }
        }
    }

    /// @dev The notional of `account` across the markets of exposure group `group` at oracle
    ///         prices, each |size| * price rounded up, with `overridePos` standing in for the
    ///         stored position in `overrideMarket` (as in `_health`); `fresh` as there.
    function _groupExposure(
        address account,
        uint256 mask,
        uint256 group,
        uint256 overrideMarket,
        PositionMem memory overridePos,
        PriceCache memory cache
    ) internal view returns (bool fresh, uint256 notional) {
        unchecked {
            fresh = true;
            while (mask != 0) {
                uint256 i = _lowestBit(mask);
                mask &= mask - 1;
                (MarketView memory m, uint256 price, bool ok) = _market(cache, i);
                if (m.exposureGroup != group) continue;
                fresh = fresh && ok;
                int256 size = i == overrideMarket ? overridePos.size : _loadPosition(account, i).size;
                notional += MarginLib.notionalUp(MathLib.abs(size), price);
            }
        }
    }

    /// @dev The closing rule for an account whose risk did not grow: afterwards at or above
    ///      maintenance margin, or equity - maintenance margin not lower than before and equity
    ///      not below zero. Inputs are equity and raw tier sums before and after.
    ///      Example (ETH at 3,000, MM 2.5 %): a 10 ETH long with equity 800 (MM 750) that sells
    ///      all 10 at 2,850 (the band edge) ends with equity 800 - 1,500 - fee < 0: refused. Selling
    ///      at 3,000 leaves equity 800 - fee >= MM 0: allowed.
    function _closingRuleHolds(int256 equityBefore, uint256 rawBefore, int256 equityAfter, uint256 rawAfter)
        internal
        pure
        returns (bool)
    {
        int256 mmAfter = int256(MarginLib.maintenanceMargin(rawAfter));
        if (equityAfter >= mmAfter) return true;
        return equityAfter >= 0
            && equityAfter - mmAfter >= equityBefore - int256(MarginLib.maintenanceMargin(rawBefore));
    }

    function _lowestBit(uint256 x) internal pure returns (uint256 i) {
        while (x & 1 == 0) {
            x >>= 1;
            ++i;
        }
    }

    function _maskWith(uint256 mask, uint256 marketId, int256 size) internal pure returns (uint256) {
        return size == 0 ? mask & ~(uint256(1) << marketId) : mask | (uint256(1) << marketId);
    }

    /// @dev True when a position went from `oldSize` to `newSize` by opening, growing or flipping.
    function _riskGrew(int256 oldSize, int256 newSize) internal pure returns (bool) {
        if (newSize == 0) return false;
        if (oldSize == 0 || (oldSize ^ newSize) < 0) return true;
        return oldSize > 0 ? newSize > oldSize : newSize < oldSize;
    }

    /// @dev Applies a trade; a trade through zero closes, then opens, splitting `quote` pro rata.
    function _applyTrade(AccountMem memory a, PositionMem memory p, int256 delta, int256 quote) internal pure {
        // Unchecked: |quote| < 2^128 and |size|, |delta| < 2^65.
        unchecked {
            int256 size = p.size;
            if (size != 0 && (size > 0) != (delta > 0) && MathLib.abs(delta) > MathLib.abs(size)) {
                int256 closeQuote = MathLib.floorDiv(quote * -size, delta);
                _applyTrade(a, p, -size, closeQuote);
                _applyTrade(a, p, delta + size, quote - closeQuote);
                return;
            }
            (int256 newSize, int256 newOpen, int256 realized) = PositionLib.applyTrade(size, p.openNotional, delta, quote);
            p.size = newSize;
            p.openNotional = newOpen;
            a.quote += realized;
        }
    }

    /// @dev Pays `p`'s funding to `index` out of `a` and returns what it paid (into the funding pool).
    function _settleFunding(AccountMem memory a, PositionMem memory p, int256 index) internal pure returns (int256 paid) {
        paid = FundingLib.owed(p.size, index, p.fundingSnapshot);
        a.quote -= paid;
        p.fundingSnapshot = index;
    }

    /* PRICES AND MARKETS */

    function _newCache(bool strict, bool ignoreAge) internal view returns (PriceCache memory cache) {
        uint256 n = marketCount + 1;
        cache.price = new uint256[](n);
        cache.fresh = new bool[](n);
        cache.strict = strict;
        cache.ignoreAge = ignoreAge;
        cache.markets = new MarketView[](n - 1);
    }

    /// @dev Market `i`'s view with its funding accrued to now, and its price.
    function _market(PriceCache memory cache, uint256 i)
        internal
        view
        returns (MarketView memory m, uint256 price, bool fresh)
    {
        m = cache.markets[i];
        (price, fresh) = _price(cache, i);
        if (!m.loaded) {
            _loadView(m, i);
            _accrue(m, price);
        }
    }

    /// @dev Fills the cache's view of market `i` (`cache.markets[i]`, read once per call, then
    ///      carrying the call's own changes). Callers take the element and load it in place:
    ///      a function returning a memory struct allocates a zeroed one first (~300 gas).
    function _loadView(MarketView memory v, uint256 i) internal view {
        MarketState storage m = _markets[i];
        v.loaded = true;
        v.status = m.status;
        v.tickSize = m.tickSize;
        v.lotSize = m.lotSize;
        v.minNotional = m.minNotional;
        v.bandBps = m.bandBps;
        v.makerFeeBps = m.makerFeeBps;
        v.takerFeeBps = m.takerFeeBps;
        v.imBps1 = m.imBps1;
        v.imBps2 = m.imBps2;
        v.tierCap1 = m.tierCap1;
        uint256 group = m.exposureGroup;
        v.exposureGroup = group;
        v.exposureCap = group == 0 ? type(uint256).max : m.exposureCap;
        v.maxPosition = m.maxPosition;
        v.openInterestCap = m.openInterestCap;
        v.openInterest = int256(uint256(m.openInterest));
        uint256 w;
        assembly ("memory-safe") {
            w := sload(add(m.slot, 3))
        }
        v.fundingIndex = int256(int128(uint128(w)));
        v.fundingTime = uint64(w >> 128);
        v.fundingRate = int256(int64(uint64(w >> 192)));
    }

    /// @dev Accrues the view's funding index to now at its rate, over at most MAX_FUNDING_STEP
    ///      seconds, at `price` (FundingLib.indexDelta, rounded down). A zero rate changes nothing
    ///      and leaves the time alone (the index is the same at any later time). The index must fit
    ///      the positions' 96-bit snapshot: Overflow otherwise.
    ///      Example: index 0, rate 1e14 (0.01 %/h) posted 1,800 s ago, ETH at 3_000_000_000:
    ///      index += floor(3e9 * 1e14 * 1800 / 3.6e12) = 1.5e14; a 2 ETH long then owes
    ///      ceil(2e8 * 1.5e14 / 1e17) = 300_000 (0.30 USDC, half an hour of 0.01 % on 6,000).
    function _accrue(MarketView memory v, uint256 price) internal view {
        if (v.fundingRate == 0 || price == 0) return;
        uint256 elapsed = block.timestamp - v.fundingTime;
        if (elapsed == 0) return;
        if (elapsed > MAX_FUNDING_STEP) elapsed = MAX_FUNDING_STEP;
        int256 index = v.fundingIndex + FundingLib.indexDelta(price, v.fundingRate, elapsed);
        if (int256(int96(index)) != index) revert Overflow(index);
        v.fundingIndex = index;
        v.fundingTime = block.timestamp;
        v.fundingChanged = true;
    }

    /// @dev Stores a view's accrued funding index and time (slot 3; the rate is unchanged).
    function _storeFunding(uint256 marketId, MarketView memory v) internal {
        MarketState storage m = _markets[marketId];
        m.fundingIndex = int128(v.fundingIndex);
        m.lastFundingTime = uint64(v.fundingTime);
    }

    /// @dev Price of market `i` (or of WETH for the last slot), read from the oracle once per call.
    function _price(PriceCache memory cache, uint256 i) internal view returns (uint256 price, bool fresh) {
        // Callers pass i < cache.price.length (a listed market, or the WETH slot): read unchecked.
        uint256[] memory prices = cache.price;
        bool[] memory freshness = cache.fresh;
        assembly ("memory-safe") {
            price := mload(add(prices, shl(5, add(i, 1))))
            fresh := mload(add(freshness, shl(5, add(i, 1))))
        }
        if (price != 0) return (price, fresh);
        uint256 oracleId = i == prices.length - 1 ? wethOracleId : _markets[i].oracleId;
        uint256 updatedAt;
        (bool ok, bytes memory ret) = address(oracle).staticcall(abi.encodeCall(IOracle.getPrice, (oracleId)));
        if (ok && ret.length == 64) (price, updatedAt) = abi.decode(ret, (uint256, uint256));
        uint256 maxAge = riskParams.maxPriceAge;
        fresh = price != 0 && (cache.ignoreAge || block.timestamp <= updatedAt + maxAge);
        if (!fresh && cache.strict) revert StalePrice(oracleId, updatedAt, maxAge);
        cache.price[i] = price;
        cache.fresh[i] = fresh;
    }

    /* STORAGE HELPERS */

    /// @dev Account slot, low to high bits: quote int88 | wethGwei uint64 | marketMask uint32 |
    ///      minNonce uint64 | flags uint8. Read and written whole, one SLOAD and one SSTORE.
    function _loadAccount(address account) internal view returns (AccountMem memory a) {
        _readAccount(a, _accountSlot(account));
    }

    /// @dev Storage slot of `account`'s packed Account, computed once where it is read and written.
    function _accountSlot(address account) internal view returns (uint256 slot) {
        Account storage ref = _accounts[account];
        assembly ("memory-safe") {
            slot := ref.slot
        }
    }

    /// @dev `_loadAccount` into an existing struct (the settlement path allocates nothing).
    function _readAccount(AccountMem memory a, uint256 slot) internal view {
        uint256 w;
        assembly ("memory-safe") {
            w := sload(slot)
        }
        a.quote = int256(int88(uint88(w)));
        a.wethGwei = uint64(w >> 88);
        a.mask = uint32(w >> 152);
        a.minNonce = uint64(w >> 184);
        a.flags = uint8(w >> 248);
    }

    function _storeAccount(address account, AccountMem memory a) internal {
        _writeAccount(_accountSlot(account), a);
    }

    function _writeAccount(uint256 slot, AccountMem memory a) internal {
        int256 quote = a.quote;
        if (int256(int88(quote)) != quote) revert Overflow(quote);
        // The other fields are kept in range by their writers; packed as the casts above would.
        assembly ("memory-safe") {
            let w := and(quote, 0xffffffffffffffffffffff)
            w := or(w, shl(88, and(mload(add(a, 0x20)), 0xffffffffffffffff)))
            w := or(w, shl(152, and(mload(add(a, 0x40)), 0xffffffff)))
            w := or(w, shl(184, and(mload(add(a, 0x60)), 0xffffffffffffffff)))
            sstore(slot, or(w, shl(248, and(mload(add(a, 0x80)), 0xff))))
        }
    }

    /// @dev Position slot, low to high bits: size int64 | openNotional int96 | fundingSnapshot int96.
    function _loadPosition(address account, uint256 marketId) internal view returns (PositionMem memory p) {
        _readPosition(p, _positionSlot(account, marketId));
    }

    function _positionSlot(address account, uint256 marketId) internal view returns (uint256 slot) {
        Position storage ref = _positions[account][marketId];
        assembly ("memory-safe") {
            slot := ref.slot
        }
    }

    function _readPosition(PositionMem memory p, uint256 slot) internal view {
        uint256 w;
        assembly ("memory-safe") {
            w := sload(slot)
        }
        p.size = int256(int64(uint64(w)));
        p.openNotional = int256(int96(uint96(w >> 64)));
        p.fundingSnapshot = int256(int96(uint96(w >> 160)));
    }

    function _storePosition(address account, uint256 marketId, PositionMem memory p) internal {
        _writePosition(_positionSlot(account, marketId), p);
    }

    function _writePosition(uint256 slot, PositionMem memory p) internal {
        int256 size = p.size;
        int256 openNotional = p.openNotional;
        int256 snapshot = p.fundingSnapshot;
        if (int256(int64(size)) != size) revert Overflow(size);
        if (int256(int96(openNotional)) != openNotional) revert Overflow(openNotional);
        if (int256(int96(snapshot)) != snapshot) revert Overflow(snapshot);
        assembly ("memory-safe") {
            let w := or(and(size, 0xffffffffffffffff), shl(64, and(openNotional, 0xffffffffffffffffffffffff)))
            sstore(slot, or(w, shl(160, and(snapshot, 0xffffffffffffffffffffffff))))
        }
    }

    /// @dev Adds to the fee pool and the funding pool (one slot, both int128), checked.
    function _addToPools(int256 fees, int256 funding) internal {
        int256 f = int256(feePool) + fees;
        int256 g = int256(fundingPool) + funding;
        if (int256(int128(f)) != f) revert Overflow(f);
        if (int256(int128(g)) != g) revert Overflow(g);
        feePool = int128(f);
        fundingPool = int128(g);
    }

    function _emptyPos() internal pure returns (PositionMem memory) {}

    function _toInt88(int256 x) internal pure returns (int88) {
        if (int256(int88(x)) != x) revert Overflow(x);
        return int88(x);
    }

    function _toUint64(uint256 x) internal pure returns (uint64) {
        if (x > type(uint64).max) revert Overflow(int256(x));
        return uint64(x);
    }

    /* PARAMETER CHECKS */

    /// @dev Codes: 1 tick, 2 lot, 3 lot*tick not a multiple of 1e8 (keeps notionals exact),
    ///      4 band, 5 fees, 6 margin tiers, 7 liquidation penalty, 8 caps, 9 funding cap.
    function _checkParams(MarketParams memory p, RiskParams memory r) internal pure {
        if (p.tickSize == 0) revert InvalidMarketParams(1);
        if (p.lotSize == 0) revert InvalidMarketParams(2);
        if ((uint256(p.lotSize) * p.tickSize) % uint256(SIZE_SCALE) != 0) revert InvalidMarketParams(3);
        if (p.bandBps == 0 || p.bandBps >= BPS) revert InvalidMarketParams(4);
        if (p.takerFeeBps > 1_000 || p.makerFeeBps > 1_000 || int256(p.makerFeeBps) + int256(uint256(p.takerFeeBps)) < 0) {
            revert InvalidMarketParams(5);
        }
        if (p.imBps1 == 0 || p.imBps2 < p.imBps1 || p.imBps2 > BPS || p.tierCap1 > type(uint112).max) {
            revert InvalidMarketParams(6);
        }
        if (p.liquidationPenaltyBps == 0 || uint256(p.liquidationPenaltyBps) * 2 * BPS >= uint256(p.imBps1) * (BPS + r.liquidationBufferBps)) {
            revert InvalidMarketParams(7);
        }
        if (p.maxPosition == 0 || p.maxPosition > uint64(type(int64).max) || p.openInterestCap == 0) {
            revert InvalidMarketParams(8);
        }
        if (p.maxFundingRatePerHour == 0 || p.maxFundingRatePerHour > MAX_FUNDING_RATE) revert InvalidMarketParams(9);
    }

    function _checkRiskParams(RiskParams memory p) internal pure {
        if (
            p.maxPriceAge == 0 || p.insuranceShareBps > BPS || p.fullCloseThresholdBps > BPS || p.liquidationBufferBps > BPS
                || p.escapeDelay == 0
        ) {
            revert InvalidRiskParams();
        }
    }


    /// @dev Every part answers a selector nobody implements with UnknownSelector.
    fallback() external virtual {
        revert UnknownSelector(msg.sig);
    }
}
