// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MathLib} from "./MathLib.sol";

/// @title FundingLib
/// @notice A cumulative funding index per market, paid lazily when a position is touched.
/// @dev The index is in quote base units * 1e9 per whole base unit. A keeper posts the premium
///      rate per hour (WAD: 1e18 = 100 %), clamped to the market's cap, applied over the seconds
///      since the previous update:
///          indexDelta = floor(price * rate * elapsed / (3600 * 1e9))
///          owed       = ceil(size * (index - snapshot) / (1e8 * 1e9))     (positive: account pays)
///      Worked example: ETH at 3,000 USDC (price 3_000_000_000), rate 0.01 %/h (1e14),
///      elapsed 3,600 s: indexDelta = 3e9 * 1e14 * 3600 / (3600 * 1e9) = 3e14.
///      A 2 ETH long (size 2e8) owes ceil(2e8 * 3e14 / 1e17) = 600_000 = 0.60 USDC, which is
///      2 ETH * 3,000 * 0.0001; the 2 ETH short owes ceil(-600_000) = -600_000, i.e. receives
///      0.60 USDC. When the division is not exact both sides round up: the venue keeps the dust.
/// @dev Unchecked: price < 2^64, |rate| < 2^63, elapsed < 2^40, |size| < 2^63, |index| < 2^127.
library FundingLib {
    int256 internal constant INDEX_SCALE = 1e9;
    int256 internal constant SIZE_SCALE = 1e8;
    int256 internal constant SECONDS_PER_HOUR = 3600;

    /// @notice Clamps `rate` to [-cap, cap].
    function clamp(int256 rate, uint256 cap) internal pure returns (int256) {
        int256 c = int256(cap);
        if (rate > c) return c;
        if (rate < -c) return -c;
        return rate;
    }

    /// @notice Index increment for `rate` (WAD per hour) over `elapsed` seconds, rounded down.
    function indexDelta(uint256 price, int256 rate, uint256 elapsed) internal pure returns (int256) {
        unchecked {
        return MathLib.floorDiv(int256(price) * rate * int256(elapsed), SECONDS_PER_HOUR * INDEX_SCALE);
        }
    }

    /// @notice Funding owed by a position since its snapshot, rounded up (against the account).
    function owed(int256 size, int256 index, int256 snapshot) internal pure returns (int256) {
        unchecked {
        return MathLib.ceilDiv(size * (index - snapshot), SIZE_SCALE * INDEX_SCALE);
        }
    }
}
