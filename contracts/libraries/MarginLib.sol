// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MathLib} from "./MathLib.sol";

/// @title MarginLib
/// @notice Position value, tiered initial and maintenance margin, collateral haircuts.
///         venue/risk.py mirrors every function here bit for bit.
/// @dev Units. price: quote base units per whole base unit (ETH at 3,000 USDC = 3_000_000_000).
///      size: base in 1e-8 units (1 ETH = 100_000_000). notional = size * price / 1e8 in quote units.
/// @dev Arithmetic is unchecked: sizes fit int64, prices uint64 (the oracle refuses wider) and
///      basis points 1e4, so no product here comes near 2^255.
library MarginLib {
    using MathLib for uint256;

    int256 internal constant SIZE_SCALE = 1e8;
    uint256 internal constant BPS = 10_000;
    /// @dev WETH collateral is held in gwei (1e9 wei) units.
    uint256 internal constant GWEI_PER_ETH = 1e9;

    /// @notice Mark-to-market value of a signed position, rounded down (toward negative infinity).
    /// @dev Example: size = -150_000_000 (short 1.5 ETH), price = 2_000_000_001 ->
    ///      floor(-3_000_000_001.5) = -3_000_000_002.
    function positionValue(int256 size, uint256 price) internal pure returns (int256) {
        unchecked {
        return MathLib.floorDiv(size * int256(price), SIZE_SCALE);
        }
    }

    /// @notice Absolute notional of a position, rounded up.
    function notionalUp(uint256 absSize, uint256 price) internal pure returns (uint256) {
        unchecked {
        return (absSize * price).divUp(uint256(SIZE_SCALE));
        }
    }

    /// @notice Tiered margin before scaling: the first `tierCap` of notional at `imBps1`, the rest
    ///         at `imBps2`. Result is notional * bps; IM = ceil(raw / 1e4), MM = ceil(raw / 2e4).
    /// @dev Example: notional 150_000e6, tierCap 100_000e6, imBps1 500 (20x), imBps2 1000 (10x):
    ///      raw = 100_000e6 * 500 + 50_000e6 * 1000 = 1e14; IM = 10_000e6 (10,000 USDC);
    ///      MM = 5_000e6 (5,000 USDC).
    function marginRaw(uint256 notional, uint256 tierCap, uint256 imBps1, uint256 imBps2)
        internal
        pure
        returns (uint256)
    {
        unchecked {
        if (notional <= tierCap) return notional * imBps1;
        return tierCap * imBps1 + (notional - tierCap) * imBps2;
        }
    }

    /// @notice Initial margin from a raw tier sum, rounded up.
    function initialMargin(uint256 raw) internal pure returns (uint256) {
        unchecked {
        return raw.divUp(BPS);
        }
    }

    /// @notice Maintenance margin (half the initial margin) from a raw tier sum, rounded up.
    function maintenanceMargin(uint256 raw) internal pure returns (uint256) {
        unchecked {
        return raw.divUp(2 * BPS);
        }
    }

    /// @notice Value of WETH collateral after the haircut, rounded down.
    /// @dev Example: 2 WETH = 2e9 gwei at 3_000_000_000 with a 1,000 bps haircut:
    ///      2e9 * 3e9 * 9_000 / (1e9 * 1e4) = 5_400_000_000 (5,400 USDC).
    function wethValue(uint256 wethGwei, uint256 price, uint256 haircutBps) internal pure returns (uint256) {
        unchecked {
        return (wethGwei * price * (BPS - haircutBps)) / (GWEI_PER_ETH * BPS);
        }
    }
}
