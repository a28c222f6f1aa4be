// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IOracle} from "./interfaces/IOracle.sol";

/// @title Oracle
/// @notice Prices pushed by keepers, one slot per feed: (uint192 price, uint64 timestamp).
contract Oracle is IOracle {
    struct PriceData {
        uint192 price;
        uint64 timestamp;
    }

    address public owner;
    address public pendingOwner;
    mapping(address => bool) public isKeeper;
    mapping(uint256 => PriceData) internal _prices;

    constructor(address owner_) {
        owner = owner_;
    }

    /// @inheritdoc IOracle
    function transferOwnership(address newOwner) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(msg.sender, newOwner);
    }

    /// @inheritdoc IOracle
    function acceptOwnership() external {
        if (msg.sender != pendingOwner || msg.sender == address(0)) revert NotPendingOwner(msg.sender);
        address previous = owner;
        owner = msg.sender;
        delete pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }

    /// @inheritdoc IOracle
    function setKeeper(address keeper, bool enabled) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        isKeeper[keeper] = enabled;
        emit KeeperSet(keeper, enabled);
    }

    /// @inheritdoc IOracle
    function setPrices(uint256[] calldata ids, uint256[] calldata prices, uint256 timestamp) external {
        if (!isKeeper[msg.sender]) revert NotKeeper(msg.sender);
        if (ids.length != prices.length) revert LengthMismatch(ids.length, prices.length);
        if (timestamp > block.timestamp) revert TimestampInFuture(timestamp, block.timestamp);
        for (uint256 i; i < ids.length; ++i) {
            uint256 id = ids[i];
            uint256 price = prices[i];
            if (price == 0 || price > type(uint64).max) revert InvalidPrice(id, price);
            uint256 stored = _prices[id].timestamp;
            if (timestamp <= stored) revert PriceNotNewer(id, timestamp, stored);
            _prices[id] = PriceData(uint192(price), uint64(timestamp));
            emit PriceUpdated(id, price, timestamp);
        }
    }

    /// @inheritdoc IOracle
    function getPrice(uint256 id) external view returns (uint256 price, uint256 updatedAt) {
        PriceData memory p = _prices[id];
        if (p.timestamp == 0) revert NoPrice(id);
        return (p.price, p.timestamp);
    }

    /// @inheritdoc IOracle
    function priceAge(uint256 id) external view returns (uint256) {
        uint256 ts = _prices[id].timestamp;
        if (ts == 0) revert NoPrice(id);
        return block.timestamp - ts;
    }
}
