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
    Overfill, //            7  cumulative fills would exceed the signed size
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
    InsufficientMargin //  19  an account whose risk grew would fall below initial margin
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
}

/// @notice One position as the views report it.
struct PositionView {
    int256 size;
    int256 openNotional;
    uint256 entryPrice;
    int256 unrealizedPnl;
    int256 fundingOwed;
}

/// @title IClearingHouse
/// @notice Cross-margin perpetual futures clearing: collateral, markets, settlement of batches of
///         EIP-712 signed orders matched off-chain, fees, funding, liquidation and insurance.
interface IClearingHouse {
    /* ERRORS */

    /// @notice The caller lacks `role` (0 owner, 1 operator, 2 funding keeper, 3 risk admin, 4 risk keeper).
    error Unauthorized(address caller, uint8 role);
    /// @notice A batch arrived out of order: every batch index settles exactly once, in sequence.
    error BatchIndexMismatch(uint256 expected, uint256 given);
    /// @notice Batch calldata is not a whole number of packed fills.
    error MalformedBatch(uint256 length);
    /// @notice `marketId` is not listed.
    error MarketNotListed(uint256 marketId);
    /// @notice A listing parameter is out of range; `code` names which (see ClearingHouse._checkParams).
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

    /* EVENTS */

    event RoleSet(uint8 indexed role, address indexed account, bool enabled);
    event Deposited(address indexed account, address indexed token, uint256 amount);
    event Withdrawn(address indexed account, address indexed token, uint256 amount);
    event AgentSet(address indexed account, address indexed agent, bool approved);
    event MarketListed(uint256 indexed marketId, MarketParams params);
    event MarketHalted(uint256 indexed marketId, bool halted);
    event RiskParamsSet(RiskParams params);
    event HaircutSet(uint256 haircutBps);
    event OrderCancelled(address indexed account, uint256 nonce);
    event NoncesCancelledBelow(address indexed account, uint256 minNonce);
    /// @notice Batch `batchIndex` settled: every fill not named by a FillRejected event settled.
    event BatchSettled(uint256 indexed batchIndex, uint256 fills, uint256 settled);
    /// @notice Fill `fillIndex` of batch `batchIndex` was skipped because of `reason`; `account` is the order owner at fault.
    event FillRejected(uint256 indexed batchIndex, uint256 fillIndex, RejectReason reason, address account);
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
    event FeesSwept(address indexed to, uint256 amount);

    /* COLLATERAL */

    /// @notice Deposits `amount` of the quote token or WETH for the caller.
    function deposit(address token, uint256 amount) external;

    /// @notice Withdraws `amount` of `token`. Reverts with InsufficientMargin if the account would
    ///         fall below initial margin, and with StalePrice if a price it needs is stale.
    function withdraw(address token, uint256 amount) external;

    /// @notice Allows (or stops) `agent` to sign orders for the caller.
    function setAgent(address agent, bool approved) external;

    /* ORDERS AND SETTLEMENT */

    /// @notice Cancels the caller's orders with these nonces; they can never settle afterwards.
    function cancelOrders(uint256[] calldata nonces) external;

    /// @notice Cancels every order of the caller with a nonce below `minNonce`.
    function cancelAllBelow(uint256 minNonce) external;

    /// @notice Settles batch `batchIndex` of packed fills (layout in OrderLib). Operator only; the
    ///         index must equal `nextBatchIndex`. An invalid fill is skipped with FillRejected.
    function settle(uint256 batchIndex, bytes calldata fills) external;

    /* FUNDING AND LIQUIDATION */

    /// @notice Advances the funding index of `marketId` with `premiumRatePerHour` (WAD), clamped
    ///         to the market's cap, over the time since the last update. Funding keeper only.
    function updateFunding(uint256 marketId, int256 premiumRatePerHour) external;

    /// @notice Takes over up to `size` of `account`'s position in `marketId` at the oracle price
    ///         moved against the account by the market's penalty. The account must be below
    ///         maintenance margin. The size is capped at what restores maintenance margin plus the
    ///         buffer, unless equity is under the full-close threshold.
    /// @return closed The size actually taken over.
    function liquidate(address account, uint256 marketId, uint256 size) external returns (uint256 closed);

    /// @notice Adds `amount` of the quote token to the insurance fund.
    function depositInsurance(uint256 amount) external;

    /* VIEWS */

    /// @notice The EIP-712 domain separator orders are signed under.
    function domainSeparator() external view returns (bytes32);
    /// @notice The EIP-712 Order type string.
    function orderType() external pure returns (string memory);
    /// @notice keccak256 of the Order type string: the EIP-712 type hash orders are signed with.
    function orderTypeHash() external pure returns (bytes32);
    /// @notice Equity (collateral + unrealized PnL - funding owed), initial and maintenance margin at oracle prices.
    function health(address account) external view returns (int256 equity, uint256 initialMargin, uint256 maintenanceMargin);
    /// @notice Position of `account` in `marketId` with entry price, unrealized PnL and funding owed.
    function position(address account, uint256 marketId) external view returns (PositionView memory);
    /// @notice Quote balance (may be negative), WETH balance in wei, and the active-market bitmask.
    function balances(address account) external view returns (int256 quote, uint256 wethWei, uint256 marketMask);
    /// @notice Cumulative filled size of an order digest that has been partly filled.
    function orderState(address account, uint256 nonce) external view returns (uint256 state);
}
