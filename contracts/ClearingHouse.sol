// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketState, RejectReason, RiskParams} from "./interfaces/IClearingHouse.sol";
import {ClearingHouseBase, Config} from "./storage/ClearingHouseBase.sol";
import {MarginLib} from "./libraries/MarginLib.sol";
import {FundingLib} from "./libraries/FundingLib.sol";
import {OrderLib} from "./libraries/OrderLib.sol";

/// @title ClearingHouse
/// @notice Cross-margin perpetual futures clearing for crossbook: the entry contract. It answers
///         settlement (the hot path), funding rate updates and the EIP-712 domain itself, and
///         routes every other call by selector to a module that runs by delegatecall over the
///         same storage (ClearingHouseBase): CollateralModule, LiquidationModule, AdminModule.
///         IClearingHouse is the whole surface; tools bind its ABI to this address.
/// @dev Why this split (an Aave-v3-style thin entry contract plus Synthetix-v3-style modules over
///      one storage layout, routed here rather than by a separate proxy): settlement pays no
///      routing cost at all (its selector is this contract's own), the modules share every
///      storage helper through the base instead of an external library call per helper, and the
///      module set is fixed at construction (immutables), so there is no upgrade key to guard.
contract ClearingHouse is ClearingHouseBase {
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
        // How margin is decided: 0 no check needed (or the fill path's single-market check
        // passed), 1 initial margin and the exposure cap by `_health` (risk grew), 2 failed
        // initial margin in the fill path, 3 the closing rule by `_health` (risk did not grow),
        // 4 failed the closing rule, 5 over the exposure group's cap in the fill path.
        uint256 margin;
        uint256 accountSlot; // storage slots, computed once for the read and the write
        uint256 positionSlot;
        int256 quoteBefore; // the account's quote and the position's basis before the trade,
        int256 basisBefore; // funding settled (the closing rule compares against them)
        int256 fundingPaid;
    }

    address public immutable collateralModule;
    address public immutable liquidationModule;
    address public immutable adminModule;
    uint256 internal immutable _chainId;
    bytes32 internal immutable _cachedDomainSeparator;

    constructor(
        address owner_,
        Config memory config,
        uint256 haircutBps_,
        RiskParams memory riskParams_,
        address collateralModule_,
        address liquidationModule_,
        address adminModule_
    ) ClearingHouseBase(config) {
        if (config.minHaircutBps > haircutBps_ || haircutBps_ > config.maxHaircutBps || config.maxHaircutBps >= BPS) {
            revert HaircutOutOfBounds(haircutBps_, config.minHaircutBps, config.maxHaircutBps);
        }
        bytes32 h = configHash();
        if (ClearingHouseBase(payable(collateralModule_)).configHash() != h) revert ModuleMismatch(collateralModule_);
        if (ClearingHouseBase(payable(liquidationModule_)).configHash() != h) revert ModuleMismatch(liquidationModule_);
        if (ClearingHouseBase(payable(adminModule_)).configHash() != h) revert ModuleMismatch(adminModule_);
        collateralModule = collateralModule_;
        liquidationModule = liquidationModule_;
        adminModule = adminModule_;
        owner = owner_;
        haircutBps = haircutBps_;
        _checkRiskParams(riskParams_);
        riskParams = riskParams_;
        _chainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        lastSettledAt = uint40(block.timestamp);
    }

    /* ROUTER */

    /// @dev Every selector this contract does not implement goes to its module by delegatecall;
    ///      the module's answer (or revert) is returned as is.
    fallback() external override {
        address module = _moduleFor(msg.sig);
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), module, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }

    /// @dev The module that implements `s`: the liquidation and admin selectors are listed; the
    ///      collateral module takes the rest (and answers UnknownSelector for what it lacks).
    function _moduleFor(bytes4 s) internal view returns (address) {
        if (
            s == bytes4(keccak256("liquidate(address,uint256,uint256)")) || s == bytes4(keccak256("depositInsurance(uint256)"))
                || s == bytes4(keccak256("deleverage(address,uint256,address[],uint256[])"))
                || s == bytes4(keccak256("adlScore(address,uint256)"))
        ) {
            return liquidationModule;
        }
        if (
            s == bytes4(keccak256("setRole(uint8,address,bool)")) || s == bytes4(keccak256("transferOwnership(address)"))
                || s == bytes4(keccak256("acceptOwnership()"))
                || s == bytes4(keccak256("listMarket((uint16,uint64,uint64,uint64,uint16,int16,uint16,uint16,uint16,uint128,uint16,uint64,uint64,uint64))"))
                || s == bytes4(keccak256("setMarketHalted(uint256,bool)"))
                || s == bytes4(keccak256("setMarketReduceOnly(uint256,bool)")) || s == bytes4(keccak256("pause()"))
                || s == bytes4(keccak256("unpause()")) || s == bytes4(keccak256("setRiskParams((uint32,uint16,uint16,uint16,uint64,uint32))"))
                || s == bytes4(keccak256("setHaircut(uint256)")) || s == bytes4(keccak256("raiseHaircut(uint256)"))
                || s == bytes4(keccak256("sweepFees(address,uint256)"))
                || s == bytes4(keccak256("withdrawFrozenReserves(address)"))
                || s == bytes4(keccak256("setExposureGroup(uint256,uint256,uint256)"))
        ) {
            return adminModule;
        }
        return collateralModule;
    }

    /* SETTLEMENT */

    /// @dev See ISettlement.settle.
    function settle(uint256 batchIndex, bytes calldata fills) external only(ROLE_OPERATOR) {
        // Slot 4: nextBatchIndex (uint64) | paused (bool) << 64, read and written whole.
        uint256 word;
        assembly ("memory-safe") {
            word := sload(nextBatchIndex.slot)
        }
        if ((word >> 64) & 0xff != 0) revert VenuePaused();
        if (batchIndex != uint64(word)) revert BatchIndexMismatch(uint64(word), batchIndex);
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
        if (batchIndex >= type(uint64).max) revert Overflow(int256(batchIndex));
        assembly ("memory-safe") {
            // Not paused (so not frozen either): index + 1 and the settlement time.
            sstore(nextBatchIndex.slot, or(add(batchIndex, 1), shl(72, timestamp())))
        }
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
            // The accrued funding index is stored where positions changed (they snapshot it).
            if (v.openInterestChanged && v.fundingChanged) _storeFunding(i, v);
        }
        if ((cache.feeDelta | cache.fundingDelta) != 0) _addToPools(cache.feeDelta, cache.fundingDelta);
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
            // The market with its funding index accrued to now (stored once, after the batch).
            // Loaded in place: `_market` would allocate a zeroed view to return (~300 gas a fill).
            MarketView memory m = cache.markets[marketId];
            (uint256 oraclePrice, bool fresh) = _price(cache, marketId);
            if (!m.loaded) {
                _loadView(m, marketId);
                _accrue(m, oraclePrice);
            }

            // The fill's own checks, both parties (signature, order state, account, position with
            // funding settled, the trade), fees, caps, open interest and single-market margin.
            (uint256 code, address culprit, int256 openInterest, int256 fees) =
                _fillParties(start, maker, taker, m, marketId, oraclePrice, fresh);
            if (code != 0) return (RejectReason(code), culprit);

            // Margin for every account the fill path did not already clear, maker first: initial
            // margin where risk grew, the closing rule where it did not.
            if ((maker.margin | taker.margin) != 0) {
                RejectReason r = _marginCheck(maker, marketId, cache);
                if (r != RejectReason.None) return (r, maker.order.account);
                r = _marginCheck(taker, marketId, cache);
                if (r != RejectReason.None) return (r, taker.order.account);
            }

            // Effects.
            _commitParties(maker, taker, marketId, start, cache);
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
    ///      written out; MarginLib stays the one implementation of margin (`_marginCheck`).
    ///      tests/contracts/test_differential.py plays random fills (flips, funding, fees) through
    ///      here and checks every position and balance against venue/risk.py bit for bit.
    ///      Returns a RejectReason code (0: none) and the account to blame; otherwise the new
    ///      open interest and the fees (taker + maker, a rebate negative) the fill accrues.
    ///      Writes nothing to storage: `_commitParties` does, once margin has passed.
    /// @dev Party layout (see the struct): order 0x00, digest 0x20, wordIndex 0x40, word 0x60,
    ///      state 0x80, filled 0xa0, account 0xc0, pos 0xe0, oldSize 0x100, margin 0x120,
    ///      accountSlot 0x140, positionSlot 0x160, quoteBefore 0x180, basisBefore 0x1a0,
    ///      fundingPaid 0x1c0. Order: account 0x00, market 0x20,
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
                // Account (packed: quote int88 | wethGwei uint64 | mask uint32 | minNonce uint64 | flags uint8).
                let a := mload(add(p, 0xc0))
                mstore(0x00, holder)
                mstore(0x20, accts)
                let aslot := keccak256(0x00, 0x40)
                mstore(add(p, 0x140), aslot)
                let w := sload(aslot)
                mstore(a, signextend(10, w))
                mstore(add(a, 0x20), and(shr(88, w), 0xffffffffffffffff))
                mstore(add(a, 0x40), and(shr(152, w), 0xffffffff))
                let minNonce := and(shr(184, w), 0xffffffffffffffff)
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
                    // Filled size per (account, nonce): two orders signed with one nonce share it.
                    if eq(state, 1) { filled := sload(mapSlot(nonce, mapSlot(holder, filledMap))) }
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
                // FundingLib.owed: ceil(size * (index - snapshot) / (SIZE_SCALE * INDEX_SCALE)),
                // nothing when the position already settled to this index (a maker's second fill
                // in a batch). Paid into the funding pool once the fill commits.
                let f := mul(held, sub(idx, signextend(11, shr(160, w))))
                let owed := 0
                if f {
                    owed := sdiv(f, 100000000000000000)
                    if and(sgt(f, 0), iszero(iszero(smod(f, 100000000000000000)))) { owed := add(owed, 1) }
                    mstore(a, sub(mload(a), owed))
                }
                mstore(add(p, 0x1c0), owed)
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
                // Risk grew (`_riskGrew`): opened or moved away from zero, or flipped; a pure
                // reduction (to zero included) did not. `delta` is never zero (lot size checked).
                let grew := 1
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
                        grew := 0
                        mstore(add(p, 0x180), mload(a)) // before the trade, for the closing rule
                        mstore(add(p, 0x1a0), basis)
                        let newBasis := floorDiv(mul(basis, newSize), s)
                        mstore(a, add(mload(a), sub(sub(newBasis, basis), quote)))
                        basis := newBasis
                    }
                }
                mstore(pos, newSize)
                mstore(add(pos, 0x20), basis)
                mstore(add(p, 0x120), grew)
            }

            // The fill: [0:8] size, [8:16] price. MarketView fields by offset: status 0x20,
            // tickSize 0x60, lotSize 0x80, minNotional 0xa0, bandBps 0xc0, makerFeeBps 0xe0,
            // takerFeeBps 0x100, imBps1 0x120, imBps2 0x140, tierCap1 0x160, maxPosition 0x180,
            // openInterestCap 0x1a0, openInterest 0x1c0, fundingIndex 0x1e0, exposureCap 0x280.
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
                if eq(mload(add(m, 0x20)), 1) { // status: 0 active, 1 halted, 2 reduce-only
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
                if mload(add(m, 0x20)) {
                    // Reduce-only market (the guardian's): no fill that grows either party's risk.
                    if mload(add(maker, 0x120)) {
                        code := 21
                        culprit := mload(mload(maker))
                        break
                    }
                    if mload(add(taker, 0x120)) {
                        code := 21
                        culprit := mload(mload(taker))
                        break
                    }
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
                // Margin of an account whose only position is in this market and whose only
                // collateral is quote: MarginLib's formulas for one market, at the fresh oracle
                // price checked above (funding owed is zero: just settled). Where risk grew,
                // initial margin; where it did not, the closing rule (`_closingRuleHolds`): at or
                // above maintenance margin after, or equity - MM not lower than before and
                // equity >= 0. Any other account is left to `_health` (margin 1 or 3).
                for { let i := 0 } lt(i, 2) { i := add(i, 1) } {
                    let p := maker
                    if i { p := taker }
                    let a := mload(add(p, 0xc0))
                    switch and(iszero(mload(add(a, 0x20))), iszero(and(mload(add(a, 0x40)), not(shl(marketId, 1)))))
                    case 0 { mstore(add(p, 0x120), sub(3, shl(1, mload(add(p, 0x120))))) } // 1 grew, 3 did not
                    default {
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
                        switch mload(add(p, 0x120))
                        case 1 {
                            // Initial margin, then the exposure group's cap (exposureCap 0x280:
                            // the maximum uint when the market is in no group).
                            switch slt(equity, div(add(raw, 9999), 10000))
                            case 1 { mstore(add(p, 0x120), 2) }
                            default { mstore(add(p, 0x120), mul(5, gt(exposure, mload(add(m, 0x280))))) }
                        }
                        default {
                            let mm := div(add(raw, 19999), 20000)
                            if slt(equity, mm) {
                                held := mload(add(p, 0x100))
                                value := mul(held, oraclePrice)
                                floored := sdiv(value, 100000000)
                                if and(slt(value, 0), iszero(iszero(smod(value, 100000000)))) { floored := sub(floored, 1) }
                                let equityBefore := sub(add(mload(add(p, 0x180)), floored), mload(add(p, 0x1a0)))
                                exposure := div(add(mul(absolute(held), oraclePrice), 99999999), 100000000)
                                let rawBefore := mul(exposure, imBps1)
                                if gt(exposure, tierCap) { rawBefore := add(mul(tierCap, imBps1), mul(sub(exposure, tierCap), mload(add(m, 0x140)))) }
                                let mmBefore := div(add(rawBefore, 19999), 20000)
                                if or(slt(equity, 0), slt(sub(equity, mm), sub(equityBefore, mmBefore))) { mstore(add(p, 0x120), 4) }
                            }
                        }
                    }
                }
                break
            }
        }
    }

    /// @dev The margin decision the fill path left to `_health` (Party.margin), for one party.
    function _marginCheck(Party memory p, uint256 marketId, PriceCache memory cache)
        internal
        view
        returns (RejectReason)
    {
        uint256 how = p.margin;
        if (how == 0) return RejectReason.None;
        if (how == 2) return RejectReason.InsufficientMargin;
        if (how == 4) return RejectReason.MaintenanceWorsened;
        if (how == 5) return RejectReason.ExposureCap;
        AccountMem memory a = p.account;
        uint256 maskBefore = a.mask;
        a.mask = _maskWith(maskBefore, marketId, p.pos.size);
        (bool fresh, int256 equity, uint256 raw) = _health(p.order.account, a, marketId, p.pos, cache);
        if (how == 1) {
            if (!fresh || equity < int256(MarginLib.initialMargin(raw))) return RejectReason.InsufficientMargin;
            // Risk grew: the account's notional across the market's exposure group (prices fresh).
            MarketView memory m = cache.markets[marketId];
            if (m.exposureGroup == 0) return RejectReason.None;
            (, uint256 notional) = _groupExposure(p.order.account, a.mask, m.exposureGroup, marketId, p.pos, cache);
            return notional > m.exposureCap ? RejectReason.ExposureCap : RejectReason.None;
        }
        // The closing rule: the same account before the trade (funding settled, no fee).
        AccountMem memory before = AccountMem(p.quoteBefore, a.wethGwei, maskBefore, 0, 0);
        PositionMem memory posBefore = PositionMem(p.oldSize, p.basisBefore, p.pos.fundingSnapshot);
        (, int256 equityBefore, uint256 rawBefore) = _health(p.order.account, before, marketId, posBefore, cache);
        return fresh && _closingRuleHolds(equityBefore, rawBefore, equity, raw)
            ? RejectReason.None
            : RejectReason.MaintenanceWorsened;
    }

    /// @dev Writes both parties of a fill that passed every check: order state (the minimum
    ///      nonce when filled in nonce order, else the two-bit word and the partial-fill amount),

    ///      The funding both paid is added to `cache.fundingDelta` (the funding pool's batch total).
    function _commitParties(Party memory maker, Party memory taker, uint256 marketId, uint256 start, PriceCache memory cache)
        internal
    {
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
                switch and(eq(state, 2), and(eq(nonce, mload(add(a, 0x60))), lt(nonce, 0xffffffffffffffff)))
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
                case 1 { sstore(mapSlot(nonce, mapSlot(mload(o), filledMap)), filled) }
                default { if eq(prior, 1) { sstore(mapSlot(nonce, mapSlot(mload(o), filledMap)), 0) } }
                // Account and position, packed as _writeAccount and _writePosition do.
                let held := mload(pos)
                let mask := mload(add(a, 0x40))
                switch held
                case 0 { mask := and(mask, not(shl(mkt, 1))) }
                default { mask := or(mask, shl(mkt, 1)) }
                let quote := mload(a)
                let basis := mload(add(pos, 0x20))
                let snapshot := mload(add(pos, 0x40))
                // Range checks (int88 quote, int64 size, int96 basis and snapshot): Overflow with
                // the first value that does not fit, in that order.
                if iszero(and(and(eq(signextend(10, quote), quote), eq(signextend(7, held), held)),
                              and(eq(signextend(11, basis), basis), eq(signextend(11, snapshot), snapshot)))) {
                    let bad := snapshot
                    if iszero(eq(signextend(11, basis), basis)) { bad := basis }
                    if iszero(eq(signextend(7, held), held)) { bad := held }
                    if iszero(eq(signextend(10, quote), quote)) { bad := quote }
                    mstore(0x00, selector)
                    mstore(0x04, bad)
                    revert(0x00, 0x24)
                }
                // wethGwei, mask (market ids < 32), minNonce (< 2^64 - 1 before the increment above)
                // and flags are within their widths already.
                let w := and(quote, 0xffffffffffffffffffffff)
                w := or(w, shl(88, mload(add(a, 0x20))))
                w := or(w, shl(152, mask))
                w := or(w, shl(184, mload(add(a, 0x60))))
                sstore(mload(add(p, 0x140)), or(w, shl(248, mload(add(a, 0x80)))))
                w := or(and(held, 0xffffffffffffffff), shl(64, and(basis, 0xffffffffffffffffffffffff)))
                sstore(mload(add(p, 0x160)), or(w, shl(160, and(snapshot, 0xffffffffffffffffffffffff))))
            }
            let size := shr(192, calldataload(start)) // the fill's size
            commitParty(maker, marketId, size, wordsSlot, filledSlot, overflow)
            commitParty(taker, marketId, size, wordsSlot, filledSlot, overflow)
            // PriceCache.fundingDelta at 0xc0 (price, fresh, strict, ignoreAge, markets, feeDelta, fundingDelta).
            let fundingDelta := add(cache, 0xc0)
            mstore(fundingDelta, add(mload(fundingDelta), add(mload(add(maker, 0x1c0)), mload(add(taker, 0x1c0)))))
        }
    }

    /* FUNDING */

    function updateFunding(uint256 marketId, int256 premiumRatePerHour) external only(ROLE_FUNDING_KEEPER) {
        if (frozenAt != 0) revert VenueFrozen();
        if (marketId >= marketCount) revert MarketNotListed(marketId);
        (MarketView memory v,,) = _market(_newCache(true, false), marketId);
        MarketState storage m = _markets[marketId];
        int256 rate = FundingLib.clamp(premiumRatePerHour, m.maxFundingRatePerHour);
        m.fundingIndex = int128(v.fundingIndex);
        m.lastFundingTime = uint64(block.timestamp);
        m.lastFundingRate = int64(rate);
        emit FundingUpdated(marketId, rate, v.fundingIndex, block.timestamp);
    }

    /* VIEWS */

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

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

    function orderType() external pure returns (string memory) {
        return OrderLib.ORDER_TYPE;
    }

    function orderTypeHash() external pure returns (bytes32) {
        return OrderLib.ORDER_TYPEHASH;
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
