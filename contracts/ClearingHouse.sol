// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {
    IClearingHouse, MarketParams, RiskParams, PositionView, RejectReason
} from "./interfaces/IClearingHouse.sol";
import {IOracle} from "./interfaces/IOracle.sol";
import {MathLib} from "./libraries/MathLib.sol";
import {MarginLib} from "./libraries/MarginLib.sol";
import {PositionLib} from "./libraries/PositionLib.sol";
import {FundingLib} from "./libraries/FundingLib.sol";
import {OrderLib} from "./libraries/OrderLib.sol";
import {TransferLib} from "./libraries/TransferLib.sol";

/// @title ClearingHouse
/// @notice Cross-margin perpetual futures clearing for crossbook. See IClearingHouse for the API.
/// @dev Storage is laid out for settlement gas: one slot per account (both collaterals, the
///      active-market mask and the minimum nonce), one slot per position (size, cost basis,
///      funding snapshot), and two bits of order state per nonce (fresh, partly filled, closed),
///      so a fill of fresh orders by accounts that have traded before writes only warm or
///      already-set slots.
contract ClearingHouse is IClearingHouse {
    using MathLib for uint256;

    /* TYPES */

    struct Market {
        // slot 0
        uint64 tickSize;
        uint64 lotSize;
        uint64 minNotional;
        uint16 oracleId;
        uint16 bandBps;
        bool halted;
        // slot 1
        int16 makerFeeBps;
        uint16 takerFeeBps;
        uint16 imBps1;
        uint16 imBps2;
        uint16 liquidationPenaltyBps;
        uint128 tierCap1;
        // slot 2
        uint64 maxPosition;
        uint64 openInterestCap;
        uint64 openInterest; // long side; always equal to the short side
        uint64 maxFundingRatePerHour;
        // slot 3
        int128 fundingIndex;
        uint64 lastFundingTime;
        int64 lastFundingRate;
    }

    struct Account {
        int96 quote; // quote token base units; negative only after a loss beyond collateral
        uint64 wethGwei;
        uint32 marketMask;
        uint56 minNonce; // every order with a lower nonce is closed
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

    /// @dev One side of a fill while it is being checked; nothing is written until both pass.
    struct Party {
        OrderLib.Order order;
        bytes32 digest;
        uint256 wordIndex;
        uint256 word;
        uint256 state;
        uint256 filled;
        AccountMem account;
        PositionMem pos;
        int256 oldSize;
        // Opened, grew or flipped (caps and initial margin apply), and how margin is decided:
        // 0 no check (risk did not grow, or the fill path's single-market check passed),
        // 1 `_health` decides, 2 failed the fill path's check.
        uint256 margin;
        uint256 accountSlot; // storage slots, computed once for the read and the write
        uint256 positionSlot;
    }

    /// @dev A market's parameters and mutable totals, read from storage once per call.
    struct MarketView {
        bool loaded;
        bool halted;
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
    }

    /* CONSTANTS AND IMMUTABLES */

    uint8 internal constant ROLE_OWNER = 0;
    uint8 internal constant ROLE_OPERATOR = 1;
    uint8 internal constant ROLE_FUNDING_KEEPER = 2;
    uint8 internal constant ROLE_RISK_ADMIN = 3;
    uint8 internal constant ROLE_RISK_KEEPER = 4;

    uint256 internal constant MAX_MARKETS = 32;
    /// @dev Two bits of order state per nonce. The settlement assembly (`_fillParties`,
    ///      `_commitParties`) writes these three values as the literals 0, 1 and 2.
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

    IOracle public immutable oracle;
    address public immutable quoteToken;
    address public immutable weth;
    uint256 public immutable wethOracleId;
    uint256 public immutable minHaircutBps;
    uint256 public immutable maxHaircutBps;
    uint256 internal immutable _chainId;
    bytes32 internal immutable _cachedDomainSeparator;

    /* STORAGE */

    address public owner;
    mapping(uint8 => mapping(address => bool)) public hasRole;
    RiskParams public riskParams;
    uint256 public haircutBps;
    uint256 public nextBatchIndex;
    uint256 public marketCount;
    int256 public feePool;
    uint256 public insuranceFund;

    mapping(uint256 => Market) internal _markets;
    mapping(address => Account) internal _accounts;
    mapping(address => mapping(uint256 => Position)) internal _positions;
    mapping(address => mapping(address => bool)) public isAgent;
    mapping(address => mapping(uint256 => uint256)) internal _orderWords;
    /// @notice Cumulative filled size of a partly filled order, by EIP-712 digest.
    mapping(bytes32 => uint256) public filledAmount;

    constructor(
        address owner_,
        IOracle oracle_,
        address quoteToken_,
        address weth_,
        uint256 wethOracleId_,
        uint256 haircutBps_,
        uint256 minHaircutBps_,
        uint256 maxHaircutBps_,
        RiskParams memory riskParams_
    ) {
        if (minHaircutBps_ > haircutBps_ || haircutBps_ > maxHaircutBps_ || maxHaircutBps_ >= BPS) {
            revert HaircutOutOfBounds(haircutBps_, minHaircutBps_, maxHaircutBps_);
        }
        owner = owner_;
        oracle = oracle_;
        quoteToken = quoteToken_;
        weth = weth_;
        wethOracleId = wethOracleId_;
        haircutBps = haircutBps_;
        minHaircutBps = minHaircutBps_;
        maxHaircutBps = maxHaircutBps_;
        _checkRiskParams(riskParams_);
        riskParams = riskParams_;
        _chainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    /* ADMIN */

    modifier only(uint8 role) {
        if (role == ROLE_OWNER ? msg.sender != owner : !hasRole[role][msg.sender]) {
            revert Unauthorized(msg.sender, role);
        }
        _;
    }

    function setRole(uint8 role, address account, bool enabled) external only(ROLE_OWNER) {
        if (role == ROLE_OWNER || role > ROLE_RISK_KEEPER) revert Unauthorized(msg.sender, role);
        hasRole[role][account] = enabled;
        emit RoleSet(role, account, enabled);
    }

    /// @notice Lists a market and returns its id (ids count up from 0).
    function listMarket(MarketParams calldata p) external only(ROLE_OWNER) returns (uint256 marketId) {
        marketId = marketCount;
        if (marketId >= MAX_MARKETS) revert InvalidMarketParams(0);
        _checkParams(p, riskParams);
        Market storage m = _markets[marketId];
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
        m.tierCap1 = p.tierCap1;
        m.maxPosition = p.maxPosition;
        m.openInterestCap = p.openInterestCap;
        m.maxFundingRatePerHour = p.maxFundingRatePerHour;
        m.lastFundingTime = uint64(block.timestamp);
        marketCount = marketId + 1;
        emit MarketListed(marketId, p);
    }

    function setMarketHalted(uint256 marketId, bool halted) external only(ROLE_OWNER) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        _markets[marketId].halted = halted;
        emit MarketHalted(marketId, halted);
    }

    function setRiskParams(RiskParams calldata p) external only(ROLE_OWNER) {
        _checkRiskParams(p);
        for (uint256 i; i < marketCount; ++i) {
            Market storage m = _markets[i];
            if (uint256(m.liquidationPenaltyBps) * 2 * BPS >= uint256(m.imBps1) * (BPS + p.liquidationBufferBps)) {
                revert InvalidRiskParams();
            }
        }
        riskParams = p;
        emit RiskParamsSet(p);
    }

    /// @notice Sets the WETH haircut within the deployment's bounds. Risk admin only.
    function setHaircut(uint256 newHaircutBps) external only(ROLE_RISK_ADMIN) {
        if (newHaircutBps < minHaircutBps || newHaircutBps > maxHaircutBps) {
            revert HaircutOutOfBounds(newHaircutBps, minHaircutBps, maxHaircutBps);
        }
        haircutBps = newHaircutBps;
        emit HaircutSet(newHaircutBps);
    }

    /// @notice Raises the WETH haircut when volatility rises; never lowers it. Risk keeper only.
    function raiseHaircut(uint256 newHaircutBps) external only(ROLE_RISK_KEEPER) {
        if (newHaircutBps <= haircutBps) revert HaircutCanOnlyRise(haircutBps, newHaircutBps);
        if (newHaircutBps > maxHaircutBps) revert HaircutOutOfBounds(newHaircutBps, minHaircutBps, maxHaircutBps);
        haircutBps = newHaircutBps;
        emit HaircutSet(newHaircutBps);
    }

    /// @notice Sends `amount` of accrued fees to `to`. Owner only.
    function sweepFees(address to, uint256 amount) external only(ROLE_OWNER) {
        int256 pool = feePool;
        if (amount == 0 || int256(amount) > pool) revert InsufficientFees(pool, amount);
        feePool = pool - int256(amount);
        emit FeesSwept(to, amount);
        TransferLib.push(quoteToken, to, amount);
    }

    /* COLLATERAL */

    /// @inheritdoc IClearingHouse
    function deposit(address token, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        if (token == quoteToken) {
            a.quote = _toInt96(int256(a.quote) + int256(amount));
        } else if (token == weth) {
            if (amount % MarginLib.GWEI_PER_ETH != 0) revert NotGweiMultiple(amount);
            a.wethGwei = _toUint64(uint256(a.wethGwei) + amount / MarginLib.GWEI_PER_ETH);
        } else {
            revert UnsupportedToken(token);
        }
        emit Deposited(msg.sender, token, amount);
        TransferLib.pull(token, msg.sender, amount);
    }

    /// @inheritdoc IClearingHouse
    function withdraw(address token, uint256 amount) external {
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

    /// @inheritdoc IClearingHouse
    function setAgent(address agent, bool approved) external {
        isAgent[msg.sender][agent] = approved;
        emit AgentSet(msg.sender, agent, approved);
    }

    /* ORDERS */

    /// @inheritdoc IClearingHouse
    function cancelOrders(uint256[] calldata nonces) external {
        if (nonces.length != 0) _accounts[msg.sender].flags |= uint8(FLAG_ORDER_WORDS);
        for (uint256 i; i < nonces.length; ++i) {
            uint256 nonce = nonces[i];
            uint256 shift = (nonce & 127) << 1;
            uint256 word = _orderWords[msg.sender][nonce >> 7];
            _orderWords[msg.sender][nonce >> 7] = (word & ~(uint256(3) << shift)) | (STATE_CLOSED << shift);
            emit OrderCancelled(msg.sender, nonce);
        }
    }

    /// @inheritdoc IClearingHouse
    function cancelAllBelow(uint256 minNonce) external {
        Account storage a = _accounts[msg.sender];
        if (minNonce <= a.minNonce || minNonce > type(uint56).max) revert NonceNotIncreasing(a.minNonce, minNonce);
        a.minNonce = uint56(minNonce);
        emit NoncesCancelledBelow(msg.sender, minNonce);
    }

    /* SETTLEMENT */

    /// @inheritdoc IClearingHouse
    function settle(uint256 batchIndex, bytes calldata fills) external only(ROLE_OPERATOR) {
        if (batchIndex != nextBatchIndex) revert BatchIndexMismatch(nextBatchIndex, batchIndex);
        // The maker table, then the fills (layout in OrderLib).
        uint256 makers;
        uint256 table;
        assembly ("memory-safe") {
            makers := shr(248, calldataload(fills.offset))
            table := add(fills.offset, 1)
        }
        uint256 head = 1 + 20 * makers;
        if (makers == 0 || fills.length <= head || (fills.length - head) % OrderLib.FILL_BYTES != 0) {
            revert MalformedBatch(fills.length);
        }
        nextBatchIndex = batchIndex + 1;
        uint256 count = (fills.length - head) / OrderLib.FILL_BYTES;
        PriceCache memory cache = _newCache(false, false);
        uint256 settled;
        uint256 start = table + 20 * makers;
        // One pair of working structs for the whole batch; `_settleFill` overwrites or resets
        // every field it reads.
        Party memory maker;
        Party memory taker;
        for (uint256 i; i < count; ++i) {
            uint256 freeMemory;
            assembly ("memory-safe") {
                freeMemory := mload(0x40)
            }
            uint256 fill = start + i * OrderLib.FILL_BYTES;
            address makerAccount;
            bytes4 malformed = MalformedBatch.selector;
            assembly ("memory-safe") {
                let index := shr(248, calldataload(add(fill, 16)))
                if iszero(lt(index, makers)) { // the maker's index lies outside the table
                    mstore(0x00, malformed)
                    mstore(0x04, fills.length)
                    revert(0x00, 0x24)
                }
                makerAccount := shr(96, calldataload(add(table, mul(20, index))))
            }
            (RejectReason reason, address culprit) = _settleFill(fill, makerAccount, cache, maker, taker);
            if (reason == RejectReason.None) {
                ++settled;
            } else {
                emit FillRejected(batchIndex, i, reason, culprit);
            }
            // Nothing allocated while settling a fill outlives it: reuse the memory.
            assembly ("memory-safe") {
                mstore(0x40, freeMemory)
            }
        }
        for (uint256 i; i < cache.markets.length; ++i) {
            MarketView memory v = cache.markets[i];
            if (v.openInterestChanged) _markets[i].openInterest = uint64(uint256(v.openInterest));
        }
        if (cache.feeDelta != 0) feePool += cache.feeDelta;
        emit BatchSettled(batchIndex, count, settled);
    }

    /// @dev Checks one packed fill and applies it, or returns why not without writing anything.
    function _settleFill(uint256 start, address makerAccount, PriceCache memory cache, Party memory maker, Party memory taker)
        internal
        returns (RejectReason, address)
    {
        // Unchecked: sizes and prices are uint64 (calldata), oracle prices <= 2^64, balances int96,
        // positions int64; no product or sum here exceeds 2^200.
        unchecked {
            address takerAccount;
            assembly ("memory-safe") {
                takerAccount := shr(96, calldataload(add(start, 112)))
            }
            OrderLib.decodeInto(maker.order, makerAccount, start + 17);
            OrderLib.decodeInto(taker.order, takerAccount, start + 132);
            uint256 marketId = maker.order.market;
            if (marketId != taker.order.market || marketId >= cache.markets.length) {
                return (RejectReason.MarketNotListed, taker.order.account);
            }
            MarketView memory m = cache.markets[marketId];
            if (!m.loaded) _loadView(m, marketId);
            (uint256 oraclePrice, bool fresh) = _price(cache, marketId);

            // The fill's own checks, both parties (signature, order state, account, position with
            // funding settled, the trade), fees, caps, open interest and single-market margin.
            (uint256 code, address culprit, int256 openInterest, int256 fees) =
                _fillParties(start, maker, taker, m, marketId, oraclePrice, fresh);
            if (code != 0) return (RejectReason(code), culprit);

            // Initial margin for every account whose risk grew and that the fill path did not
            // already clear, maker first.
            if ((maker.margin | taker.margin) != 0) {
                if (maker.margin == 2 || (maker.margin == 1 && !_meetsInitialMargin(maker, marketId, cache))) {
                    return (RejectReason.InsufficientMargin, maker.order.account);
                }
                if (taker.margin == 2 || (taker.margin == 1 && !_meetsInitialMargin(taker, marketId, cache))) {
                    return (RejectReason.InsufficientMargin, taker.order.account);
                }
            }

            // Effects.
            _commitParties(maker, taker, marketId, start);
            m.openInterest = openInterest;
            m.openInterestChanged = true;
            cache.feeDelta += fees;
            return (RejectReason.None, address(0));
        }
    }

    /// @dev The settlement hot path for both parties of a fill, in assembly: via-IR inlines no
    ///      helper into a function this large, and the Solidity version (one helper call per
    ///      rule, memory structs between them) spent ~40 % of a fill's gas on calls. The money
    ///      math is PositionLib.applyTrade, FundingLib.owed and the fee rounding of `liquidate`,
    ///      written out; MarginLib stays the one implementation of margin (`_meetsInitialMargin`).
    ///      tests/contracts/test_differential.py plays random fills (flips, funding, fees) through
    ///      here and checks every position and balance against venue/risk.py bit for bit.
    ///      Returns a RejectReason code (0: none) and the account to blame; otherwise the new
    ///      open interest and the fees (taker + maker, a rebate negative) the fill accrues.
    ///      Writes nothing to storage: `_commitParties` does, once margin has passed.
    /// @dev Party layout (see the struct): order 0x00, digest 0x20, wordIndex 0x40, word 0x60,
    ///      state 0x80, filled 0xa0, account 0xc0, pos 0xe0, oldSize 0x100, margin 0x120,
    ///      accountSlot 0x140, positionSlot 0x160. Order: account 0x00, market 0x20,
    ///      isBuy 0x40, price 0x60, size 0x80, flags 0xa0, expiry 0xc0, nonce 0xe0, r 0x100,
    ///      vs 0x120. AccountMem: quote, wethGwei, mask, minNonce, flags. PositionMem: size,
    ///      openNotional, fundingSnapshot.
    function _fillParties(
        uint256 start,
        Party memory maker,
        Party memory taker,
        MarketView memory m,
        uint256 marketId,
        uint256 oraclePrice,
        bool fresh
    ) internal view returns (uint256 code, address culprit, int256 openInterest, int256 fees) {
        bytes32 domain = _domainSeparatorV4();
        bytes32 typeHash = OrderLib.ORDER_TYPEHASH;
        uint256 halfOrder = OrderLib.HALF_CURVE_ORDER;
        assembly ("memory-safe") {
            // keccak256(key . slot): the storage slot of mapping[key].
            function mapSlot(key, slot) -> s {
                mstore(0x00, key)
                mstore(0x20, slot)
                s := keccak256(0x00, 0x40)
            }
            // floor(a / d) for signed a, d != 0 (MathLib.floorDiv).
            function floorDiv(a, d) -> q {
                q := sdiv(a, d)
                if and(iszero(iszero(smod(a, d))), iszero(eq(slt(a, 0), slt(d, 0)))) { q := sub(q, 1) }
            }
            function absolute(a) -> r {
                r := a
                if slt(a, 0) { r := sub(0, a) }
            }

            // Signature, order state and remaining size of `p`'s order; then its account and its
            // position in the market with funding settled to `idx`. Returns a RejectReason code.
            function openParty(p, dom, th, half, sz, mkt, idx, accts, poss, agents, words, filledMap) -> rc {
                let o := mload(p)
                let holder := mload(o)
                // EIP-712 digest (OrderLib.ORDER_TYPE field order) and ecrecover, in scratch memory.
                // The order's first eight words are the EIP-712 fields in type order: hash them in
                // place with the type hash in the word before (saved and put back).
                let before := sub(o, 0x20)
                let saved := mload(before)
                mstore(before, th)
                let structHash := keccak256(before, 0x120)
                mstore(before, saved)
                let fm := mload(0x40)
                mstore(fm, 0x1901)
                mstore(add(fm, 0x20), dom)
                mstore(add(fm, 0x40), structHash)
                let d := keccak256(add(fm, 0x1e), 0x42)
                let signer := 0
                let vs := mload(add(o, 0x120))
                let sig := and(vs, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
                // s above secp256k1n / 2 is malleable: refused.
                if iszero(gt(sig, half)) {
                    mstore(fm, d)
                    mstore(add(fm, 0x20), add(27, shr(255, vs)))
                    mstore(add(fm, 0x40), mload(add(o, 0x100)))
                    mstore(add(fm, 0x60), sig)
                    mstore(0x00, 0)
                    if staticcall(gas(), 1, fm, 0x80, 0x00, 0x20) { signer := mload(0x00) }
                }
                if iszero(signer) {
                    rc := 4
                    leave
                }
                if iszero(eq(signer, holder)) {
                    if iszero(sload(mapSlot(signer, mapSlot(holder, agents)))) {
                        rc := 4
                        leave
                    }
                }
                mstore(add(p, 0x20), d)
                // Account (packed: quote int96 | wethGwei uint64 | mask uint32 | minNonce uint56 | flags uint8).
                let a := mload(add(p, 0xc0))
                mstore(0x00, holder)
                mstore(0x20, accts)
                let aslot := keccak256(0x00, 0x40)
                mstore(add(p, 0x140), aslot)
                let w := sload(aslot)
                mstore(a, signextend(11, w))
                mstore(add(a, 0x20), and(shr(96, w), 0xffffffffffffffff))
                mstore(add(a, 0x40), and(shr(160, w), 0xffffffff))
                let minNonce := and(shr(192, w), 0xffffffffffffff)
                mstore(add(a, 0x60), minNonce)
                let aflags := shr(248, w)
                mstore(add(a, 0x80), aflags)
                // Order state: below the minimum nonce is closed; words only once the account has any.
                let nonce := mload(add(o, 0xe0))
                if lt(nonce, minNonce) {
                    rc := 6
                    leave
                }
                let state := 0
                let filled := 0
                if and(aflags, 1) {
                    let wordIndex := shr(7, nonce)
                    let word := sload(mapSlot(wordIndex, mapSlot(holder, words)))
                    mstore(add(p, 0x40), wordIndex)
                    mstore(add(p, 0x60), word)
                    state := and(shr(shl(1, and(nonce, 127)), word), 3)
                    if eq(state, 2) {
                        rc := 6
                        leave
                    }
                    if eq(state, 1) { filled := sload(mapSlot(d, filledMap)) }
                }
                mstore(add(p, 0x80), state)
                mstore(add(p, 0xa0), filled)
                if gt(add(filled, sz), mload(add(o, 0x80))) {
                    rc := 7
                    leave
                }
                // Position (packed: size int64 | openNotional int96 | fundingSnapshot int96), funding paid.
                let pos := mload(add(p, 0xe0))
                mstore(0x00, holder)
                mstore(0x20, poss)
                mstore(0x20, keccak256(0x00, 0x40))
                mstore(0x00, mkt)
                let pslot := keccak256(0x00, 0x40)
                mstore(add(p, 0x160), pslot)
                w := sload(pslot)
                let held := signextend(7, w)
                mstore(pos, held)
                mstore(add(pos, 0x20), signextend(11, shr(64, w)))
                mstore(add(pos, 0x40), idx)
                mstore(add(p, 0x100), held)
                // FundingLib.owed: ceil(size * (index - snapshot) / (SIZE_SCALE * INDEX_SCALE)).
                let f := mul(held, sub(idx, signextend(11, shr(160, w))))
                let owed := sdiv(f, 100000000000000000)
                if and(sgt(f, 0), iszero(iszero(smod(f, 100000000000000000)))) { owed := add(owed, 1) }
                mstore(a, sub(mload(a), owed))
            }

            // Reduce-only, then the trade at `px` (PositionLib.applyTrade; through zero: a full
            // close, then an open, `quote` split pro rata as in `_applyTrade`), and whether risk grew.
            function tradeParty(p, delta, px) -> rc {
                let pos := mload(add(p, 0xe0))
                let a := mload(add(p, 0xc0))
                let s := mload(pos)
                if and(mload(add(mload(p), 0xa0)), 4) {
                    // Reduce-only: only against an open position and no larger than it.
                    if or(iszero(s), or(eq(sgt(s, 0), sgt(delta, 0)), gt(absolute(delta), absolute(s)))) {
                        rc := 16
                        leave
                    }
                }
                let basis := mload(add(pos, 0x20))
                let quote := sdiv(mul(delta, px), 100000000)
                let newSize := add(s, delta)
                switch or(iszero(s), eq(sgt(s, 0), sgt(delta, 0)))
                case 1 { basis := add(basis, quote) }
                default {
                    switch gt(absolute(delta), absolute(s))
                    case 1 {
                        // Flip: close all of `s` for its share of the quote, open the rest.
                        let closeQuote := floorDiv(mul(quote, sub(0, s)), delta)
                        mstore(a, sub(sub(mload(a), basis), closeQuote))
                        basis := sub(quote, closeQuote)
                    }
                    default {
                        let newBasis := floorDiv(mul(basis, newSize), s)
                        mstore(a, add(mload(a), sub(sub(newBasis, basis), quote)))
                        basis := newBasis
                    }
                }
                mstore(pos, newSize)
                mstore(add(pos, 0x20), basis)
                // Risk grew: opened, moved away from zero, or flipped (`_riskGrew`).
                let grew := 0
                if newSize {
                    switch or(iszero(s), slt(xor(s, newSize), 0))
                    case 1 { grew := 1 }
                    default {
                        switch sgt(s, 0)
                        case 1 { grew := sgt(newSize, s) }
                        default { grew := slt(newSize, s) }
                    }
                }
                mstore(add(p, 0x120), grew)
            }

            // The fill: [0:8] size, [8:16] price. MarketView fields by offset: halted 0x20,
            // tickSize 0x60, lotSize 0x80, minNotional 0xa0, bandBps 0xc0, makerFeeBps 0xe0,
            // takerFeeBps 0x100, imBps1 0x120, imBps2 0x140, tierCap1 0x160, maxPosition 0x180,
            // openInterestCap 0x1a0, openInterest 0x1c0, fundingIndex 0x1e0.
            let size := shr(192, calldataload(start))
            let price := shr(192, calldataload(add(start, 8)))
            let notional := div(mul(size, price), 100000000) // exact once lot and tick are checked
            let mo := mload(maker)
            let to := mload(taker)
            for {} 1 {} {
                // The fill's own checks, in this order (each names its culprit): halted, same
                // side, self-trade, IOC maker, post-only taker, expiry (maker, taker), limit
                // prices (maker, taker), tick, lot, minimum notional, oracle age, price band.
                culprit := mload(to)
                if mload(add(m, 0x20)) {
                    code := 1
                    break
                }
                let makerBuys := mload(add(mo, 0x40))
                let takerBuys := mload(add(to, 0x40))
                if eq(makerBuys, takerBuys) {
                    code := 2
                    break
                }
                if eq(mload(mo), mload(to)) {
                    code := 3
                    break
                }
                if and(mload(add(mo, 0xa0)), 2) {
                    code := 15
                    culprit := mload(mo)
                    break
                }
                if and(mload(add(to, 0xa0)), 1) {
                    code := 14
                    break
                }
                let expiry := mload(add(mo, 0xc0))
                if and(iszero(iszero(expiry)), lt(expiry, timestamp())) {
                    code := 5
                    culprit := mload(mo)
                    break
                }
                expiry := mload(add(to, 0xc0))
                if and(iszero(iszero(expiry)), lt(expiry, timestamp())) {
                    code := 5
                    break
                }
                let limit := mload(add(mo, 0x60))
                if or(and(makerBuys, gt(price, limit)), and(iszero(makerBuys), lt(price, limit))) {
                    code := 8
                    culprit := mload(mo)
                    break
                }
                limit := mload(add(to, 0x60))
                if or(and(takerBuys, gt(price, limit)), and(iszero(takerBuys), lt(price, limit))) {
                    code := 8
                    break
                }
                if or(iszero(price), mod(price, mload(add(m, 0x60)))) {
                    code := 9
                    break
                }
                if or(iszero(size), mod(size, mload(add(m, 0x80)))) {
                    code := 10
                    break
                }
                if lt(notional, mload(add(m, 0xa0))) {
                    code := 11
                    break
                }
                if iszero(fresh) {
                    code := 13
                    break
                }
                let diff := sub(price, oraclePrice)
                if lt(price, oraclePrice) { diff := sub(oraclePrice, price) }
                if gt(mul(diff, 10000), mul(oraclePrice, mload(add(m, 0xc0)))) {
                    code := 12
                    break
                }
                culprit := 0
                code := openParty(maker, domain, typeHash, halfOrder, size, marketId, mload(add(m, 0x1e0)), _accounts.slot, _positions.slot, isAgent.slot, _orderWords.slot, filledAmount.slot)
                if code {
                    culprit := mload(mload(maker))
                    break
                }
                code := openParty(taker, domain, typeHash, halfOrder, size, marketId, mload(add(m, 0x1e0)), _accounts.slot, _positions.slot, isAgent.slot, _orderWords.slot, filledAmount.slot)
                if code {
                    culprit := mload(mload(taker))
                    break
                }
                let takerDelta := size
                if iszero(mload(add(mload(taker), 0x40))) { takerDelta := sub(0, size) }
                code := tradeParty(maker, sub(0, takerDelta), price)
                if code {
                    culprit := mload(mload(maker))
                    break
                }
                code := tradeParty(taker, takerDelta, price)
                if code {
                    culprit := mload(mload(taker))
                    break
                }
                // Fees: the taker pays (rounded up); the maker pays (up) or earns a rebate (down).
                let takerFee := div(add(mul(notional, mload(add(m, 0x100))), 9999), 10000)
                let makerFee := 0
                let makerFeeBps := mload(add(m, 0xe0))
                switch slt(makerFeeBps, 0)
                case 0 { makerFee := div(add(mul(notional, makerFeeBps), 9999), 10000) }
                default { makerFee := sub(0, div(mul(notional, sub(0, makerFeeBps)), 10000)) }
                let ta := mload(add(taker, 0xc0))
                let ma := mload(add(maker, 0xc0))
                mstore(ta, sub(mload(ta), takerFee))
                mstore(ma, sub(mload(ma), makerFee))
                fees := add(takerFee, makerFee)
                // Caps: position size for whoever grew, then open interest (long side).
                let makerSize := mload(mload(add(maker, 0xe0)))
                let takerSize := mload(mload(add(taker, 0xe0)))
                let cap := mload(add(m, 0x180))
                if and(mload(add(maker, 0x120)), or(sgt(makerSize, cap), slt(add(makerSize, cap), 0))) {
                    code := 17
                    culprit := mload(mload(maker))
                    break
                }
                if and(mload(add(taker, 0x120)), or(sgt(takerSize, cap), slt(add(takerSize, cap), 0))) {
                    code := 17
                    culprit := mload(mload(taker))
                    break
                }
                let oldOpenInterest := mload(add(m, 0x1c0))
                // Long open interest: each party's long size after the fill, less before.
                openInterest := oldOpenInterest
                if sgt(makerSize, 0) { openInterest := add(openInterest, makerSize) }
                if sgt(takerSize, 0) { openInterest := add(openInterest, takerSize) }
                let before := mload(add(maker, 0x100))
                if sgt(before, 0) { openInterest := sub(openInterest, before) }
                before := mload(add(taker, 0x100))
                if sgt(before, 0) { openInterest := sub(openInterest, before) }
                if and(sgt(openInterest, oldOpenInterest), sgt(openInterest, mload(add(m, 0x1a0)))) {
                    code := 18
                    culprit := mload(mload(taker))
                    break
                }
                // Initial margin of an account whose only position is in this market and whose
                // only collateral is quote: MarginLib's formulas for one market, at the fresh
                // oracle price checked above (funding owed is zero: just settled). Any other
                // account is left to `_health` (margin stays 1).
                for { let i := 0 } lt(i, 2) { i := add(i, 1) } {
                    let p := maker
                    if i { p := taker }
                    if eq(mload(add(p, 0x120)), 1) {
                        let a := mload(add(p, 0xc0))
                        if and(iszero(mload(add(a, 0x20))), iszero(and(mload(add(a, 0x40)), not(shl(marketId, 1))))) {
                            let pos := mload(add(p, 0xe0))
                            let held := mload(pos)
                            let value := mul(held, oraclePrice)
                            let floored := sdiv(value, 100000000)
                            if and(slt(value, 0), iszero(iszero(smod(value, 100000000)))) { floored := sub(floored, 1) }
                            let equity := sub(add(mload(a), floored), mload(add(pos, 0x20)))
                            let exposure := div(add(mul(absolute(held), oraclePrice), 99999999), 100000000)
                            let imBps1 := mload(add(m, 0x120))
                            let tierCap := mload(add(m, 0x160))
                            let raw := mul(exposure, imBps1)
                            if gt(exposure, tierCap) { raw := add(mul(tierCap, imBps1), mul(sub(exposure, tierCap), mload(add(m, 0x140)))) }
                            switch slt(equity, div(add(raw, 9999), 10000))
                            case 1 { mstore(add(p, 0x120), 2) }
                            default { mstore(add(p, 0x120), 0) }
                        }
                    }
                }
                break
            }
        }
    }

    /// @dev True when a position went from `oldSize` to `newSize` by opening, growing or flipping.
    ///      Same sign (or opened from zero): grew if it moved away from zero; opposite signs: flipped.
    function _riskGrew(int256 oldSize, int256 newSize) internal pure returns (bool) {
        if (newSize == 0) return false;
        if (oldSize == 0 || (oldSize ^ newSize) < 0) return true;
        return oldSize > 0 ? newSize > oldSize : newSize < oldSize;
    }

    function _meetsInitialMargin(Party memory p, uint256 marketId, PriceCache memory cache)
        internal
        view
        returns (bool)
    {
        p.account.mask = _maskWith(p.account.mask, marketId, p.pos.size);
        (bool fresh, int256 equity, uint256 raw) = _health(p.order.account, p.account, marketId, p.pos, cache);
        return fresh && equity >= int256(MarginLib.initialMargin(raw));
    }

    /// @dev Writes both parties of a fill that passed every check: order state (the minimum
    ///      nonce when filled in nonce order, else the two-bit word and the partial-fill amount),
    ///      the account and the position, each one packed SSTORE, with range checks.
    function _commitParties(Party memory maker, Party memory taker, uint256 marketId, uint256 start) internal {
        uint256 wordsSlot;
        uint256 filledSlot;
        bytes4 overflow = Overflow.selector;
        assembly ("memory-safe") {
            wordsSlot := _orderWords.slot
            filledSlot := filledAmount.slot
        }
        assembly ("memory-safe") {
            function mapSlot(key, slot) -> s {
                mstore(0x00, key)
                mstore(0x20, slot)
                s := keccak256(0x00, 0x40)
            }
            function commitParty(p, mkt, sz, words, filledMap, selector) {
                let o := mload(p)
                let a := mload(add(p, 0xc0))
                let pos := mload(add(p, 0xe0))
                let nonce := mload(add(o, 0xe0))
                let filled := add(mload(add(p, 0xa0)), sz)
                let prior := mload(add(p, 0x80))
                let state := 1
                if eq(filled, mload(add(o, 0x80))) { state := 2 }
                switch and(eq(state, 2), and(eq(nonce, mload(add(a, 0x60))), lt(nonce, 0xffffffffffffff)))
                case 1 { mstore(add(a, 0x60), add(nonce, 1)) } // closed in nonce order: no word to write
                default {
                    if iszero(eq(state, prior)) {
                        let holder := mload(o)
                        if iszero(and(mload(add(a, 0x80)), 1)) {
                            mstore(add(a, 0x80), or(mload(add(a, 0x80)), 1))
                            mstore(add(p, 0x40), shr(7, nonce))
                            mstore(add(p, 0x60), sload(mapSlot(shr(7, nonce), mapSlot(holder, words))))
                        }
                        let shift := shl(1, and(nonce, 127))
                        let word := or(and(mload(add(p, 0x60)), not(shl(shift, 3))), shl(shift, state))
                        sstore(mapSlot(mload(add(p, 0x40)), mapSlot(holder, words)), word)
                    }
                }
                switch state
                case 1 { sstore(mapSlot(mload(add(p, 0x20)), filledMap), filled) }
                default { if eq(prior, 1) { sstore(mapSlot(mload(add(p, 0x20)), filledMap), 0) } }
                // Account and position, packed as _writeAccount and _writePosition do.
                let held := mload(pos)
                let mask := mload(add(a, 0x40))
                switch held
                case 0 { mask := and(mask, not(shl(mkt, 1))) }
                default { mask := or(mask, shl(mkt, 1)) }
                let quote := mload(a)
                let basis := mload(add(pos, 0x20))
                let snapshot := mload(add(pos, 0x40))
                // Range checks (int96 quote, int64 size, int96 basis and snapshot): Overflow with
                // the first value that does not fit, in that order.
                if iszero(and(and(eq(signextend(11, quote), quote), eq(signextend(7, held), held)),
                              and(eq(signextend(11, basis), basis), eq(signextend(11, snapshot), snapshot)))) {
                    let bad := snapshot
                    if iszero(eq(signextend(11, basis), basis)) { bad := basis }
                    if iszero(eq(signextend(7, held), held)) { bad := held }
                    if iszero(eq(signextend(11, quote), quote)) { bad := quote }
                    mstore(0x00, selector)
                    mstore(0x04, bad)
                    revert(0x00, 0x24)
                }
                // wethGwei, mask (market ids < 32), minNonce (< 2^56 - 1 before the increment above)
                // and flags are within their widths already.
                let w := and(quote, 0xffffffffffffffffffffffff)
                w := or(w, shl(96, mload(add(a, 0x20))))
                w := or(w, shl(160, mask))
                w := or(w, shl(192, mload(add(a, 0x60))))
                sstore(mload(add(p, 0x140)), or(w, shl(248, mload(add(a, 0x80)))))
                w := or(and(held, 0xffffffffffffffff), shl(64, and(basis, 0xffffffffffffffffffffffff)))
                sstore(mload(add(p, 0x160)), or(w, shl(160, and(snapshot, 0xffffffffffffffffffffffff))))
            }
            let size := shr(192, calldataload(start)) // the fill's size
            commitParty(maker, marketId, size, wordsSlot, filledSlot, overflow)
            commitParty(taker, marketId, size, wordsSlot, filledSlot, overflow)
        }
    }

    /* FUNDING */

    /// @inheritdoc IClearingHouse
    function updateFunding(uint256 marketId, int256 premiumRatePerHour) external only(ROLE_FUNDING_KEEPER) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        Market storage m = _markets[marketId];
        PriceCache memory cache = _newCache(true, false);
        (uint256 price,) = _price(cache, marketId);
        int256 rate = FundingLib.clamp(premiumRatePerHour, m.maxFundingRatePerHour);
        int256 index = int256(m.fundingIndex) + FundingLib.indexDelta(price, rate, block.timestamp - m.lastFundingTime);
        m.fundingIndex = int128(index);
        m.lastFundingTime = uint64(block.timestamp);
        m.lastFundingRate = int64(rate);
        emit FundingUpdated(marketId, rate, index, block.timestamp);
    }

    /* LIQUIDATION */

    /// @inheritdoc IClearingHouse
    function liquidate(address account, uint256 marketId, uint256 size) external returns (uint256 closed) {
        if (account == msg.sender) revert SelfLiquidation(account);
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        Market storage m = _markets[marketId];
        if (size == 0 || size % m.lotSize != 0) revert InvalidLiquidationSize(size, m.lotSize);
        PriceCache memory cache = _newCache(true, false);

        AccountMem memory a = _loadAccount(account);
        uint256 price;
        {
            (, int256 equity, uint256 raw) = _health(account, a, type(uint256).max, _emptyPos(), cache);
            uint256 maintenance = MarginLib.maintenanceMargin(raw);
            if (equity >= int256(maintenance)) revert AccountNotLiquidatable(account, equity, maintenance);
            (price,) = _price(cache, marketId);
            closed = MathLib.min(size, _maxLiquidation(account, marketId, equity, maintenance, price));
        }
        if (closed == 0) revert NoPosition(account, marketId);

        PositionMem memory p = _loadPosition(account, marketId);
        int256 index = m.fundingIndex;
        _settleFunding(a, p, index);
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
        _settleFunding(l, lp, index);
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

        // Negative equity once every position is gone: the insurance fund covers what it can.
        uint256 covered;
        uint256 badDebt;
        if (a.mask == 0) {
            (, int256 equityAfter,) = _health(account, a, type(uint256).max, _emptyPos(), cache);
            if (equityAfter < 0) {
                uint256 shortfall = uint256(-equityAfter);
                covered = MathLib.min(shortfall, insuranceFund);
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
        Market storage m = _markets[marketId];
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

    /// @inheritdoc IClearingHouse
    function depositInsurance(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        insuranceFund += amount;
        emit InsuranceDeposited(msg.sender, amount);
        TransferLib.pull(quoteToken, msg.sender, amount);
    }

    /* MARGIN */

    /// @dev Equity and the raw tier sum of `account` at oracle prices, with `overridePos` standing
    ///      in for the stored position in `overrideMarket`. `fresh` is false if a price used was stale.
    function _health(
        address account,
        AccountMem memory a,
        uint256 overrideMarket,
        PositionMem memory overridePos,
        PriceCache memory cache
    ) internal view returns (bool fresh, int256 equity, uint256 raw) {
        // Unchecked: at most 32 markets of terms below 2^200 (int64 sizes x uint64 prices, int96
        // balances, int128 funding indices).
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
                MarketView memory m = cache.markets[i];
                if (!m.loaded) _loadView(m, i);
                (uint256 price, bool ok) = _price(cache, i);
                fresh = fresh && ok;
                equity += MarginLib.positionValue(p.size, price) - p.openNotional
                    - FundingLib.owed(p.size, m.fundingIndex, p.fundingSnapshot);
                raw += MarginLib.marginRaw(
                    MarginLib.notionalUp(MathLib.abs(p.size), price), m.tierCap1, m.imBps1, m.imBps2
                );
            }
        }
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

    function _settleFunding(AccountMem memory a, PositionMem memory p, int256 index) internal pure {
        a.quote -= FundingLib.owed(p.size, index, p.fundingSnapshot);
        p.fundingSnapshot = index;
    }

    /* PRICES */

    function _newCache(bool strict, bool ignoreAge) internal view returns (PriceCache memory cache) {
        uint256 n = marketCount + 1;
        cache.price = new uint256[](n);
        cache.fresh = new bool[](n);
        cache.strict = strict;
        cache.ignoreAge = ignoreAge;
        cache.markets = new MarketView[](n - 1);
    }

    /// @dev Fills the cache's view of market `i` (`cache.markets[i]`, read once per call, then
    ///      carrying the call's own changes). Callers take the element and load it in place:
    ///      a function returning a memory struct allocates a zeroed one first (~300 gas).
    function _loadView(MarketView memory v, uint256 i) internal view {
        Market storage m = _markets[i];
        v.loaded = true;
        v.halted = m.halted;
        v.tickSize = m.tickSize;
        v.lotSize = m.lotSize;
        v.minNotional = m.minNotional;
        v.bandBps = m.bandBps;
        v.makerFeeBps = m.makerFeeBps;
        v.takerFeeBps = m.takerFeeBps;
        v.imBps1 = m.imBps1;
        v.imBps2 = m.imBps2;
        v.tierCap1 = m.tierCap1;
        v.maxPosition = m.maxPosition;
        v.openInterestCap = m.openInterestCap;
        v.openInterest = int256(uint256(m.openInterest));
        v.fundingIndex = m.fundingIndex;
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

    /// @dev Account slot, low to high bits: quote int96 | wethGwei uint64 | marketMask uint32 |
    ///      minNonce uint56 | flags uint8. Read and written whole, one SLOAD and one SSTORE.
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
        a.quote = int256(int96(uint96(w)));
        a.wethGwei = uint64(w >> 96);
        a.mask = uint32(w >> 160);
        a.minNonce = uint56(w >> 192);
        a.flags = uint8(w >> 248);
    }

    function _storeAccount(address account, AccountMem memory a) internal {
        _writeAccount(_accountSlot(account), a);
    }

    function _writeAccount(uint256 slot, AccountMem memory a) internal {
        int256 quote = a.quote;
        if (int256(int96(quote)) != quote) revert Overflow(quote);
        // The other fields are kept in range by their writers; packed as the casts above would.
        assembly ("memory-safe") {
            let w := and(quote, 0xffffffffffffffffffffffff)
            w := or(w, shl(96, and(mload(add(a, 0x20)), 0xffffffffffffffff)))
            w := or(w, shl(160, and(mload(add(a, 0x40)), 0xffffffff)))
            w := or(w, shl(192, and(mload(add(a, 0x60)), 0xffffffffffffff)))
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

    function _emptyPos() internal pure returns (PositionMem memory) {}

    function _toInt96(int256 x) internal pure returns (int96) {
        if (x > type(int96).max || x < type(int96).min) revert Overflow(x);
        return int96(x);
    }

    function _toUint64(uint256 x) internal pure returns (uint64) {
        if (x > type(uint64).max) revert Overflow(int256(x));
        return uint64(x);
    }

    /* PARAMETER CHECKS */

    /// @dev Codes: 1 tick, 2 lot, 3 lot*tick not a multiple of 1e8 (keeps notionals exact),
    ///      4 band, 5 fees, 6 margin tiers, 7 liquidation penalty, 8 caps, 9 funding cap.
    function _checkParams(MarketParams calldata p, RiskParams memory r) internal pure {
        if (p.tickSize == 0) revert InvalidMarketParams(1);
        if (p.lotSize == 0) revert InvalidMarketParams(2);
        if ((uint256(p.lotSize) * p.tickSize) % uint256(SIZE_SCALE) != 0) revert InvalidMarketParams(3);
        if (p.bandBps == 0 || p.bandBps >= BPS) revert InvalidMarketParams(4);
        if (p.takerFeeBps > 1_000 || p.makerFeeBps > 1_000 || int256(p.makerFeeBps) + int256(uint256(p.takerFeeBps)) < 0) {
            revert InvalidMarketParams(5);
        }
        if (p.imBps1 == 0 || p.imBps2 < p.imBps1 || p.imBps2 > BPS) revert InvalidMarketParams(6);
        if (p.liquidationPenaltyBps == 0 || uint256(p.liquidationPenaltyBps) * 2 * BPS >= uint256(p.imBps1) * (BPS + r.liquidationBufferBps)) {
            revert InvalidMarketParams(7);
        }
        if (p.maxPosition == 0 || p.maxPosition > uint64(type(int64).max) || p.openInterestCap == 0) {
            revert InvalidMarketParams(8);
        }
        if (p.maxFundingRatePerHour == 0 || p.maxFundingRatePerHour > uint64(type(int64).max)) revert InvalidMarketParams(9);
    }

    function _checkRiskParams(RiskParams memory p) internal pure {
        if (p.maxPriceAge == 0 || p.insuranceShareBps > BPS || p.fullCloseThresholdBps > BPS || p.liquidationBufferBps > BPS) {
            revert InvalidRiskParams();
        }
    }

    /* VIEWS */

    /// @inheritdoc IClearingHouse
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice ERC-5267: the EIP-712 domain.
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", "crossbook", "1", block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    /// @inheritdoc IClearingHouse
    function orderType() external pure returns (string memory) {
        return OrderLib.ORDER_TYPE;
    }

    /// @inheritdoc IClearingHouse
    function orderTypeHash() external pure returns (bytes32) {
        return OrderLib.ORDER_TYPEHASH;
    }

    /// @notice Parameters of a listed market and its funding and open-interest state.
    function market(uint256 marketId) external view returns (Market memory) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        return _markets[marketId];
    }

    /// @inheritdoc IClearingHouse
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

    /// @inheritdoc IClearingHouse
    function position(address account, uint256 marketId) external view returns (PositionView memory v) {
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        PositionMem memory p = _loadPosition(account, marketId);
        PriceCache memory cache = _newCache(false, true);
        (uint256 price,) = _price(cache, marketId);
        v.size = p.size;
        v.openNotional = p.openNotional;
        if (p.size != 0) v.entryPrice = MathLib.abs(p.openNotional) * uint256(SIZE_SCALE) / MathLib.abs(p.size);
        v.unrealizedPnl = MarginLib.positionValue(p.size, price) - p.openNotional;
        v.fundingOwed = FundingLib.owed(p.size, _markets[marketId].fundingIndex, p.fundingSnapshot);
    }

    /// @inheritdoc IClearingHouse
    function balances(address account) external view returns (int256 quote, uint256 wethWei, uint256 marketMask) {
        Account memory a = _accounts[account];
        return (a.quote, uint256(a.wethGwei) * MarginLib.GWEI_PER_ETH, a.marketMask);
    }

    /// @inheritdoc IClearingHouse
    function orderState(address account, uint256 nonce) external view returns (uint256) {
        if (nonce < _accounts[account].minNonce) return STATE_CLOSED;
        return (_orderWords[account][nonce >> 7] >> ((nonce & 127) << 1)) & 3;
    }

    function _domainSeparatorV4() internal view returns (bytes32) {
        return block.chainid == _chainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    function _buildDomainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("crossbook"),
                keccak256("1"),
                block.chainid,
                address(this)
            )
        );
    }
}
