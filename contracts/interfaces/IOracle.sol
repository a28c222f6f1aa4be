// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IOracle
/// @notice Keeper-pushed prices. A price is in quote-token base units per one whole unit of the
///         asset (ETH at 3,000 USDC with a 6-decimal quote token is 3_000_000_000), stamped with the
///         time the keeper observed it. Readers decide how old is too old.
interface IOracle {
    /// @notice The caller is not a price keeper.
    error NotKeeper(address caller);
    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The caller is not the pending owner.
    error NotPendingOwner(address caller);
    /// @notice `ids` and `prices` differ in length.
    error LengthMismatch(uint256 ids, uint256 prices);
    /// @notice A price of zero, or one wider than 64 bits, was pushed for `id`.
    error InvalidPrice(uint256 id, uint256 price);
    /// @notice The observation time lies after the current block's time.
    error TimestampInFuture(uint256 timestamp, uint256 blockTimestamp);
    /// @notice The update for `id` is not newer than the stored one.
    error PriceNotNewer(uint256 id, uint256 timestamp, uint256 storedTimestamp);
    /// @notice No price has ever been pushed for `id`.
    error NoPrice(uint256 id);

    /// @notice A keeper pushed `price` for `id`, observed at `timestamp`.
    event PriceUpdated(uint256 indexed id, uint256 price, uint256 timestamp);
    /// @notice `keeper` was allowed (`enabled`) or disallowed to push prices.
    event KeeperSet(address indexed keeper, bool enabled);

    event OwnershipTransferStarted(address indexed owner, address indexed pendingOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice Starts a two-step ownership transfer; `newOwner` must call `acceptOwnership`. Owner only.
    function transferOwnership(address newOwner) external;

    /// @notice Completes an ownership transfer. Pending owner only.
    function acceptOwnership() external;

    /// @notice Pushes prices for several feeds in one call, all observed at `timestamp`.
    /// @dev Reverts unless the caller is a keeper, the arrays match, every price is positive,
    ///      `timestamp` is not in the future and is newer than each stored timestamp.
    function setPrices(uint256[] calldata ids, uint256[] calldata prices, uint256 timestamp) external;

    /// @notice The latest price of `id` and the time it was observed. Reverts with NoPrice if none.
    function getPrice(uint256 id) external view returns (uint256 price, uint256 updatedAt);

    /// @notice Seconds since the latest price of `id` was observed. Reverts with NoPrice if none.
    function priceAge(uint256 id) external view returns (uint256);

    /// @notice Allows or disallows `keeper` to push prices. Owner only.
    function setKeeper(address keeper, bool enabled) external;
}
