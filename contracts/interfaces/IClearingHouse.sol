// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Why a fill in a batch was skipped. Stable codes: off-chain code maps them by number.
enum RejectReason {
    None, //                0
    MarketNotListed, //     1  market unknown, halted, or the two orders name different markets
    SameSide, //            2  both orders buy or both sell
    SelfTrade, //           3  maker and taker are the same account
    InvalidSignature, //    4  signer is neither the account nor one of its agents
    Expired, //             5  order expiry has passed
    OrderClosed, //         6  order cancelled, fully filled, or below the account's minimum nonce
    Overfill, //            7  cumulative fills under the (account, nonce) would exceed the signed size
    PriceNotCrossing, //    8  fill price violates the maker's or the taker's limit
    TickSize, //            9  price not a multiple of the tick size
    LotSize, //            10  size zero or not a multiple of the lot size
    MinNotional, //        11  fill notional below the market minimum
    PriceOutsideBand, //   12  fill price too far from the oracle price
    OracleStale, //        13  a price the fill needs is older than the maximum age
    PostOnlyTaker, //      14  a post-only order was the taker
    IocMaker, //           15  an immediate-or-cancel order was the maker
    ReduceOnly, //         16  a reduce-only order would open, grow or flip a position
    PositionCap, //        17  the account's position would exceed the market's maximum
    OpenInterestCap, //    18  open interest would exceed the market's cap
    InsufficientMargin, // 19  an account whose risk grew would fall below initial margin
    MaintenanceWorsened, //20  a fill that did not grow an account's risk left it below maintenance
    //                         margin with equity - maintenance margin lower than before, or with
    //                         negative equity (the closing rule, see ClearingHouse)
    MarketReduceOnly, //   21  the guardian put the market in reduce-only mode and the fill grows risk
    ExposureCap //         22  an account whose risk grew in a market of an exposure group would hold
    //                         more notional (at oracle prices) across the group's markets than its cap
}

/// @notice Listing parameters of a market. Sizes in 1e-8 base units, prices and notionals in quote
///         base units (see MarginLib), rates in WAD per hour, fees and margins in basis points.
struct MarketParams {
    uint16 oracleId;
    uint64 tickSize;
    uint64 lotSize;
    uint64 minNotional;
    uint16 bandBps;
    int16 makerFeeBps;
    uint16 takerFeeBps;
    uint16 imBps1;
    uint16 imBps2;
    uint128 tierCap1;
    uint16 liquidationPenaltyBps;
    uint64 maxPosition;
    uint64 openInterestCap;
    uint64 maxFundingRatePerHour;
}

/// @notice Venue-wide risk parameters.
struct RiskParams {
    /// @dev Oldest accepted oracle observation, in seconds.
    uint32 maxPriceAge;
    /// @dev Share of a liquidation penalty that goes to the insurance fund.
    uint16 insuranceShareBps;
    /// @dev A partial liquidation may restore equity up to maintenance margin * (1 + buffer).
    uint16 liquidationBufferBps;
    /// @dev Below equity < maintenance margin * this / 1e4, a position may be closed whole.
    uint16 fullCloseThresholdBps;
    /// @dev The insurance fund is never drawn below this (quote units): a bankrupt account's
    ///      shortfall beyond what lies above it is auto-deleveraged (`deleverage`).
    uint64 insuranceFloor;
    /// @dev Escape hatch: with an exit request pending and no batch settled for this many
    ///      seconds, anyone may freeze the venue.
    uint32 escapeDelay;
}

/// @notice One position as the views report it.
struct PositionView {
    int256 size;
    int256 openNotional;
    uint256 entryPrice;
    int256 unrealizedPnl;
    int256 fundingOwed;
}

/// @notice A market's parameters and state, as `market(id)` returns it; also its storage layout
///         (four slots, ClearingHouseBase): field order and widths are the packing.
struct MarketState {
    // slot 0
    uint64 tickSize;
    uint64 lotSize;
    uint64 minNotional;
    uint16 oracleId;
    uint16 bandBps;
    /// @dev 0 active, 1 halted (owner: no fills), 2 reduce-only (guardian: only fills that do not grow risk).
    uint8 status;
    /// @dev Exposure group (0: none): an account's combined notional in the group's markets is
    ///      capped at `exposureCap` (the same in every market of the group; `setExposureGroup`).
    uint8 exposureGroup;
    // slot 1
    int16 makerFeeBps;
    uint16 takerFeeBps;
    uint16 imBps1;
    uint16 imBps2;
    uint16 liquidationPenaltyBps;
    uint112 tierCap1;
    /// @dev The exposure group's cap in quote units (0 when the market is in no group).
    uint64 exposureCap;
    // slot 2
    uint64 maxPosition;
    uint64 openInterestCap;
    /// @dev The long side; always equal to the short side.
    uint64 openInterest;
    uint64 maxFundingRatePerHour;
    // slot 3: the index accrued up to lastFundingTime; lastFundingRate applies from then on
    int128 fundingIndex;
    uint64 lastFundingTime;
    int64 lastFundingRate;
}

/// @title IClearingHouseBase
/// @notice The errors and events of every part of the clearinghouse (entry contract and modules).
interface IClearingHouseBase {
    /* ERRORS */

    /// @notice The caller lacks `role` (0 owner, 1 operator, 2 funding keeper, 3 risk admin,
    ///         4 risk keeper, 5 guardian, 6 pending owner).
    error Unauthorized(address caller, uint8 role);
    /// @notice A batch arrived out of order: every batch index settles exactly once, in sequence.
    error BatchIndexMismatch(uint256 expected, uint256 given);
    /// @notice Batch calldata is not a whole number of packed fills.
    error MalformedBatch(uint256 length);
    /// @notice `marketId` is not listed.
    error MarketNotListed(uint256 marketId);
    /// @notice A listing parameter is out of range; `code` names which (see ClearingHouseBase._checkParams).
    error InvalidMarketParams(uint256 code);
    /// @notice Risk parameters out of range.
    error InvalidRiskParams();
    /// @notice `token` is not a collateral token.
    error UnsupportedToken(address token);
    /// @notice Zero amount.
    error ZeroAmount();
    /// @notice WETH amounts move in whole gwei.
    error NotGweiMultiple(uint256 amount);
    /// @notice A withdrawal exceeds the account's balance of that token.
    error InsufficientBalance(address account, int256 balance, uint256 amount);
    /// @notice The account would fall below initial margin.
    error InsufficientMargin(address account, int256 equity, uint256 initialMargin);
    /// @notice A price is older than the maximum age.
    error StalePrice(uint256 oracleId, uint256 updatedAt, uint256 maxAge);
    /// @notice Equity is not below maintenance margin.
    error AccountNotLiquidatable(address account, int256 equity, uint256 maintenanceMargin);
    /// @notice The account holds no position in the market.
    error NoPosition(address account, uint256 marketId);
    /// @notice Liquidation size is zero or not a multiple of the lot size.
    error InvalidLiquidationSize(uint256 size, uint256 lotSize);
    /// @notice An account cannot liquidate itself.
    error SelfLiquidation(address account);
    /// @notice A haircut outside [min, max].
    error HaircutOutOfBounds(uint256 haircutBps, uint256 minBps, uint256 maxBps);
    /// @notice The risk keeper may only raise the haircut.
    error HaircutCanOnlyRise(uint256 currentBps, uint256 requestedBps);
    /// @notice The minimum nonce can only increase.
    error NonceNotIncreasing(uint256 current, uint256 requested);
    /// @notice The fee pool holds less than asked for.
    error InsufficientFees(int256 feePool, uint256 amount);
    /// @notice A value does not fit its storage field.
    error Overflow(int256 value);
    /// @notice The guardian paused the venue: no settlement and no deposits (withdrawals of free
    ///         collateral and liquidations go on).
    error VenuePaused();
    /// @notice No part of the clearinghouse answers `selector`.
    error UnknownSelector(bytes4 selector);
    /// @notice A module was built with other immutables than the entry contract.
    error ModuleMismatch(address module);
    /// @notice `marketId`'s status cannot change from `current` to `requested` by this caller.
    error InvalidMarketStatus(uint256 marketId, uint256 current, uint256 requested);
    /// @notice Group 0 (it means "no group"), a zero cap for a non-empty group, or a market mask
    ///         naming an unlisted market.
    error InvalidExposureGroup(uint256 group, uint256 cap, uint256 marketMask);
    /// @notice The account's negative equity (WETH at its full value, not after the haircut) is
    ///         more than the insurance fund holds above its floor: it is closed by
    ///         auto-deleveraging (`deleverage`), not liquidation.
    error ShortfallNeedsAdl(address account, uint256 shortfall, uint256 insuranceAvailable);
    /// @notice Auto-deleveraging needs a shortfall the insurance fund cannot cover.
    error NoShortfall(address account, int256 equity, uint256 insuranceAvailable);
    /// @notice Entry `index` of an auto-deleveraging list is malformed (a zero or off-lot size, the
    ///         bankrupt account itself, more than the counterparty holds, lists of unequal length).
    error InvalidAdlEntry(uint256 index);
    /// @notice The sizes named add up to more than the bankrupt position.
    error AdlExceedsPosition(uint256 total, uint256 position);
    /// @notice A counterparty is not on the other side of the bankrupt position, or not in profit.
    error AdlNotEligible(address counterparty, int256 size, int256 unrealizedPnl);
    /// @notice Counterparties must come in ranking order (score = unrealized PnL x notional /
    ///         equity, highest first), each one closed whole before the next is touched.
    error AdlOutOfOrder(address counterparty, uint256 score, uint256 previousScore, bool previousStillOpen);
    /// @notice The venue is frozen (escape hatch): accounts leave by `exitFrozen`; nothing else moves.
    error VenueFrozen();
    /// @notice Only after a freeze.
    error VenueNotFrozen();
    /// @notice `requester` has not requested an exit.
    error NoExitRequest(address requester);
    /// @notice No batch has settled since `requester`'s exit request, but the escape delay runs
    ///         until `dueAt` (unix seconds).
    error EscapeNotDue(address requester, uint256 dueAt);
    /// @notice The account has already left the frozen venue.
    error AlreadyExited(address account);

    /* EVENTS */

    event RoleSet(uint8 indexed role, address indexed account, bool enabled);
    event OwnershipTransferStarted(address indexed owner, address indexed pendingOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event Deposited(address indexed account, address indexed token, uint256 amount);
    event Withdrawn(address indexed account, address indexed token, uint256 amount);
    event AgentSet(address indexed account, address indexed agent, bool approved);
    event MarketListed(uint256 indexed marketId, MarketParams params);
    /// @notice The owner halted (or resumed) a market: no fills settle in it while halted.
    event MarketHalted(uint256 indexed marketId, bool halted);
    /// @notice The guardian put a market in reduce-only mode (or lifted it).
    event MarketReduceOnly(uint256 indexed marketId, bool reduceOnly, address indexed by);
    /// @notice The guardian paused (true) or unpaused the whole venue.
    event VenuePausedSet(bool paused, address indexed by);
    event RiskParamsSet(RiskParams params);
    event HaircutSet(uint256 haircutBps);
    /// @notice The markets in `marketMask` form exposure group `group` with this cap (an empty
    ///         mask dissolves the group); markets of the group left out of the mask leave it.
    event ExposureGroupSet(uint256 indexed group, uint256 cap, uint256 marketMask);
    event OrderCancelled(address indexed account, uint256 nonce);
    event NoncesCancelledBelow(address indexed account, uint256 minNonce);
    /// @notice Batch `batchIndex` settled: every fill not named by a FillRejected event settled.
    event BatchSettled(uint256 indexed batchIndex, uint256 fills, uint256 settled);
    /// @notice Fill `fillIndex` of batch `batchIndex` was skipped because of `reason`; `account` is the order owner at fault.
    event FillRejected(uint256 indexed batchIndex, uint256 fillIndex, RejectReason reason, address account);
    /// @notice A new funding rate applies from `timestamp` on; `fundingIndex` is the index accrued up to then.
    event FundingUpdated(uint256 indexed marketId, int256 ratePerHour, int256 fundingIndex, uint256 timestamp);
    /// @notice `liquidator` took `size` (signed, the liquidated account's side) of `account`'s position at `price`.
    event Liquidated(
        address indexed account,
        address indexed liquidator,
        uint256 indexed marketId,
        int256 size,
        uint256 price,
        uint256 penalty,
        uint256 insuranceCut
    );
    event InsuranceDeposited(address indexed from, uint256 amount);
    event InsuranceUsed(address indexed account, uint256 amount);
    /// @notice Negative equity the insurance fund could not cover; it stays on the account as a debt.
    event BadDebt(address indexed account, uint256 amount);
    /// @notice Auto-deleveraging: `counterparty` closed `size` (signed, its own side) of its
    ///         position in `marketId` against bankrupt `account` at the oracle price `price`, and
    ///         paid `socialised` quote units of the account's shortfall (its share pro rata to
    ///         size: together they are the bankruptcy price).
    event Deleveraged(
        address indexed account,
        address indexed counterparty,
        uint256 indexed marketId,
        int256 size,
        uint256 price,
        uint256 socialised
    );
    event FeesSwept(address indexed to, uint256 amount);
    /// @notice `account` asked to leave: if no batch settles for `escapeDelay` from now, anyone may freeze.
    event ExitRequested(address indexed account, uint256 at);
    /// @notice The venue froze on `requester`'s pending exit request: marks are fixed, settlement stops for good.
    event Frozen(address indexed requester, uint256 at);
    /// @notice `account` left the frozen venue: its positions closed at the marks (`realizedPnl`),
    ///         and it was paid its quote balance and WETH.
    event ExitedFrozen(address indexed account, uint256 quote, uint256 wethWei, int256 realizedPnl);
    event FrozenReservesWithdrawn(address indexed to, uint256 quote, uint256 wethWei);
}

/// @title ISettlement
/// @notice What the entry contract (ClearingHouse) answers itself: settlement, funding, the
///         EIP-712 domain, and the module addresses it routes every other call to.
interface ISettlement is IClearingHouseBase {
    /// @notice Settles batch `batchIndex` of packed fills (layout in OrderLib). Operator only; the
    ///         index must equal `nextBatchIndex`; reverts VenuePaused while paused. An invalid
    ///         fill is skipped with FillRejected and the rest of the batch settles.
    /// @dev Before any position in a market changes, the market's funding index is brought up to
    ///      date at the last posted rate (see `updateFunding`). Every account whose risk grows
    ///      must hold initial margin afterwards; every account whose risk does not grow must
    ///      pass the closing rule: afterwards at or above maintenance margin, or equity -
    ///      maintenance margin not lower than before the fill and equity not below zero
    ///      (otherwise MaintenanceWorsened).
    function settle(uint256 batchIndex, bytes calldata fills) external;

    /// @notice Brings the funding index of `marketId` up to now at the rate in force, then sets
    ///         the rate to `premiumRatePerHour` (WAD), clamped to the market's cap, from now on.
    ///         Funding keeper only. Funding accrues continuously: a position held t seconds pays
    ///         t seconds of the rates in force (each accrual step applies at most
    ///         MAX_FUNDING_STEP seconds, so a stale rate cannot run on).
    function updateFunding(uint256 marketId, int256 premiumRatePerHour) external;

    /// @notice The EIP-712 domain separator orders are signed under.
    function domainSeparator() external view returns (bytes32);
    /// @notice The EIP-712 Order type string.
    function orderType() external pure returns (string memory);
    /// @notice keccak256 of the Order type string: the EIP-712 type hash orders are signed with.
    function orderTypeHash() external pure returns (bytes32);
    /// @notice ERC-5267: the EIP-712 domain.
    function eip712Domain()
        external
        view
        returns (bytes1, string memory, string memory, uint256, address, bytes32, uint256[] memory);
    /// @notice The module answering collateral, order-cancel and account views.
    function collateralModule() external view returns (address);
    /// @notice The module answering liquidation and the insurance fund.
    function liquidationModule() external view returns (address);
    /// @notice The module answering owner, guardian and risk administration.
    function adminModule() external view returns (address);
}

/// @title ICollateralModule
/// @notice Collateral, agents, on-chain order cancels, and the account views.
interface ICollateralModule is IClearingHouseBase {
    /// @notice Deposits `amount` of the quote token or WETH for the caller. Reverts VenuePaused while paused.
    function deposit(address token, uint256 amount) external;

    /// @notice Escape hatch, step 1: the caller asks to leave (the operator is not acting for it).
    function requestExit() external;

    /// @notice Escape hatch, step 2 (anyone): freezes the venue if `requester`'s exit request is
    ///         pending and no batch has settled for `escapeDelay` since the later of the request
    ///         and the last settlement. Every market's mark is fixed at its latest oracle price
    ///         (WETH's too), funding accrues up to now and no further, and settlement, deposits,
    ///         withdrawals, liquidations and funding updates stop for good.
    function freeze(address requester) external;

    /// @notice Escape hatch, step 3: the caller's positions close at the frozen marks (long and
    ///         short at the same price: zero-sum, values rounded down), funding is paid to the
    ///         freeze, and its quote balance and WETH are paid out. Below zero, the insurance fund
    ///         pays the deficit and takes the account's WETH up to its value at the WETH mark.
    function exitFrozen() external returns (uint256 quotePaid, uint256 wethPaid);

    /// @notice Withdraws `amount` of `token`. Reverts with InsufficientMargin if the account would
    ///         fall below initial margin, and with StalePrice if a price it needs is stale.
    ///         Allowed while the venue is paused.
    function withdraw(address token, uint256 amount) external;

    /// @notice Allows (or stops) `agent` to sign orders for the caller.
    function setAgent(address agent, bool approved) external;

    /// @notice Cancels the caller's orders with these nonces; they can never settle afterwards.
    function cancelOrders(uint256[] calldata nonces) external;

    /// @notice Cancels every order of the caller with a nonce below `minNonce` (any uint64).
    function cancelAllBelow(uint256 minNonce) external;

    /// @notice Equity (collateral + unrealized PnL - funding owed), initial and maintenance margin
    ///         at oracle prices, funding accrued to now.
    function health(address account) external view returns (int256 equity, uint256 initialMargin, uint256 maintenanceMargin);
    /// @notice The combined notional of `account`'s positions in the markets of exposure group
    ///         `group`, each |size| * oracle price rounded up (MarginLib.notionalUp), and the cap.
    function groupExposure(address account, uint256 group) external view returns (uint256 notional, uint256 cap);
    /// @notice Exposure group `group`'s cap and its markets as a bitmask (0, 0 for no such group).
    function exposureGroup(uint256 group) external view returns (uint256 cap, uint256 marketMask);
    /// @notice Position of `account` in `marketId` with entry price, unrealized PnL and funding owed.
    function position(address account, uint256 marketId) external view returns (PositionView memory);
    /// @notice Quote balance (may be negative), WETH balance in wei, and the active-market bitmask.
    function balances(address account) external view returns (int256 quote, uint256 wethWei, uint256 marketMask);
    /// @notice Order state of `account`'s nonce: 0 fresh, 1 partly filled, 2 closed.
    function orderState(address account, uint256 nonce) external view returns (uint256 state);
    /// @notice Parameters of a listed market and its funding and open-interest state.
    function market(uint256 marketId) external view returns (MarketState memory);
    /// @notice The market's funding index accrued to now at its last posted rate (what the next
    ///         settlement touching it will store).
    function currentFundingIndex(uint256 marketId) external view returns (int256);
}

/// @title ILiquidationModule
/// @notice Liquidation and the insurance fund.
interface ILiquidationModule is IClearingHouseBase {
    /// @notice Takes over up to `size` of `account`'s position in `marketId` at the oracle price
    ///         moved against the account by the market's penalty. The account must be below
    ///         maintenance margin. The size is capped at what restores maintenance margin plus the
    ///         buffer, unless equity is under the full-close threshold. Allowed while the venue is
    ///         paused and in halted or reduce-only markets (an insolvent account must not wait).
    /// @return closed The size actually taken over.
    function liquidate(address account, uint256 marketId, uint256 size) external returns (uint256 closed);

    /// @notice Adds `amount` of the quote token to the insurance fund.
    function depositInsurance(uint256 amount) external;

    /// @notice Auto-deleveraging. `account`'s equity, with WETH at its full oracle value (the
    ///         haircut is a margin buffer, not a loss), is below zero by more than the insurance
    ///         fund holds above its floor: the fund pays what lies above the floor, and the rest
    ///         (the shortfall) is paid by closing `sizes` of `counterparties`' positions in
    ///         `marketId` against the account's, each at the oracle price plus its share of the
    ///         shortfall pro rata to size (the bankruptcy price; shares round up, so the account
    ///         ends at zero or a few units above). Risk keeper only; the keeper ranks candidates
    ///         off-chain (`keeper adl`), the contract checks what it can exactly: a shortfall
    ///         exists; every counterparty is on the other side and in profit; the sizes do not
    ///         exceed the position; the list is in non-increasing `adlScore` order and each
    ///         counterparty but the last is closed whole. Allowed while paused or halted.
    /// @return total The size of the bankrupt position closed.
    function deleverage(address account, uint256 marketId, address[] calldata counterparties,
        uint256[] calldata sizes) external returns (uint256 total);

    /// @notice The auto-deleveraging rank score of `account`'s position in `marketId`: unrealized
    ///         PnL x notional / equity at oracle prices (PnL times effective leverage; 0 for a
    ///         position not in profit; equity below 1 counts as 1). Higher goes first.
    function adlScore(address account, uint256 marketId) external view returns (uint256);
}

/// @title IAdminModule
/// @notice Owner, guardian and risk administration.
interface IAdminModule is IClearingHouseBase {
    /// @notice Grants or revokes a role (1 operator, 2 funding keeper, 3 risk admin, 4 risk keeper,
    ///         5 guardian). Owner only.
    function setRole(uint8 role, address account, bool enabled) external;
    /// @notice Starts a two-step ownership transfer; `newOwner` must call `acceptOwnership`. Owner only.
    function transferOwnership(address newOwner) external;
    /// @notice Completes an ownership transfer. Pending owner only.
    function acceptOwnership() external;
    /// @notice Lists a market and returns its id (ids count up from 0). Owner only.
    function listMarket(MarketParams calldata p) external returns (uint256 marketId);
    /// @notice Halts or resumes a market (no fills while halted; liquidations go on). Owner only.
    function setMarketHalted(uint256 marketId, bool halted) external;
    /// @notice Puts a market in reduce-only mode (fills that grow risk are rejected with
    ///         MarketReduceOnly; closing fills and liquidations go on), or lifts it. Guardian only.
    function setMarketReduceOnly(uint256 marketId, bool reduceOnly) external;
    /// @notice Pauses the venue (no settlement, no deposits; withdrawals of free collateral and
    ///         liquidations go on). Guardian only.
    function pause() external;
    /// @notice Lifts the pause. Guardian only.
    function unpause() external;
    /// @notice Sets the venue-wide risk parameters. Owner only.
    function setRiskParams(RiskParams calldata p) external;
    /// @notice Sets the WETH haircut within the deployment's bounds. Risk admin only.
    function setHaircut(uint256 newHaircutBps) external;
    /// @notice Makes the markets in `marketMask` exposure group `group` (1-255) with `cap` (quote
    ///         units, at least 1): a fill that grows an account's risk in one of them is rejected
    ///         (ExposureCap) if the account's notional across all of them would then exceed the
    ///         cap. Markets of the group not in the mask leave it; an empty mask (cap 0) dissolves
    ///         it; a market in another group moves to this one. Positions already above a new cap
    ///         are not touched: they may shrink, not grow. Risk admin only.
    function setExposureGroup(uint256 group, uint256 cap, uint256 marketMask) external;
    /// @notice Raises the WETH haircut; never lowers it. Risk keeper only.
    function raiseHaircut(uint256 newHaircutBps) external;
    /// @notice Sends `amount` of accrued fees to `to`. Owner only.
    function sweepFees(address to, uint256 amount) external;
    /// @notice After a freeze: pays the insurance fund, the funding pool's dust and seized WETH to `to`. Owner only.
    function withdrawFrozenReserves(address to) external;
}

/// @title IClearingHouse
/// @notice Cross-margin perpetual futures clearing for crossbook: the whole surface one address
///         answers (the entry contract ClearingHouse and the modules it delegates to), plus the
///         public state getters. Tools bind this ABI to the ClearingHouse address.
interface IClearingHouse is ISettlement, ICollateralModule, ILiquidationModule, IAdminModule {
    function owner() external view returns (address);
    function pendingOwner() external view returns (address);
    function hasRole(uint8 role, address account) external view returns (bool);
    function riskParams()
        external
        view
        returns (
            uint32 maxPriceAge,
            uint16 insuranceShareBps,
            uint16 liquidationBufferBps,
            uint16 fullCloseThresholdBps,
            uint64 insuranceFloor,
            uint32 escapeDelay
        );
    function haircutBps() external view returns (uint256);
    function nextBatchIndex() external view returns (uint64);
    function paused() external view returns (bool);
    function lastSettledAt() external view returns (uint40);
    function frozenAt() external view returns (uint40);
    function exitRequestedAt(address account) external view returns (uint256);
    function frozenPrice(uint256 key) external view returns (uint256);
    function exited(address account) external view returns (bool);
    function seizedWethGwei() external view returns (uint256);
    function marketCount() external view returns (uint256);
    /// @notice Fees accrued (taker fees less maker rebates) not yet swept.
    function feePool() external view returns (int128);
    /// @notice Funding in transit: what accounts paid minus what they received. Funding is rounded
    ///         against each account, so once every position has settled to the same index this is
    ///         the rounding dust the venue kept. Conservation, exact to the unit:
    ///         quoteToken.balanceOf(this) = sum(quote - sum of cost bases) + feePool + fundingPool + insuranceFund.
    function fundingPool() external view returns (int128);
    function insuranceFund() external view returns (uint256);
    function isAgent(address account, address agent) external view returns (bool);
    /// @notice Cumulative size settled under `account`'s `nonce` while its order is partly filled
    ///         (0 once fresh or closed): every order signed with that nonce shares it.
    function filledAmount(address account, uint256 nonce) external view returns (uint256);
    function oracle() external view returns (address);
    function quoteToken() external view returns (address);
    function weth() external view returns (address);
    function wethOracleId() external view returns (uint256);
    function minHaircutBps() external view returns (uint256);
    function maxHaircutBps() external view returns (uint256);
}
