// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title MathLib
/// @notice Integer helpers. Every function names its rounding direction.
/// @dev floorDiv and ceilDiv are unchecked: callers never pass d == 0 or type(int256).min.
library MathLib {
    /// @dev floor(x * y / d) for unsigned values.
    function mulDivDown(uint256 x, uint256 y, uint256 d) internal pure returns (uint256) {
        return (x * y) / d;
    }

    /// @dev ceil(x * y / d) for unsigned values.
    function mulDivUp(uint256 x, uint256 y, uint256 d) internal pure returns (uint256) {
        return (x * y + (d - 1)) / d;
    }

    /// @dev ceil(x / d) for unsigned values.
    function divUp(uint256 x, uint256 d) internal pure returns (uint256) {
        return (x + (d - 1)) / d;
    }

    /// @dev floor(a / d) toward negative infinity, for any d != 0.
    ///      Examples: floorDiv(-7, 2) = -4; floorDiv(7, -2) = -4; floorDiv(-7, -2) = 3.
    function floorDiv(int256 a, int256 d) internal pure returns (int256 q) {
        unchecked {
            q = a / d;
            if (a % d != 0 && ((a < 0) != (d < 0))) q -= 1;
        }
    }

    /// @dev ceil(a / d) toward positive infinity, for any d != 0.
    ///      Examples: ceilDiv(-7, 2) = -3; ceilDiv(7, 2) = 4; ceilDiv(7, -2) = -3.
    function ceilDiv(int256 a, int256 d) internal pure returns (int256 q) {
        unchecked {
            q = a / d;
            if (a % d != 0 && ((a < 0) == (d < 0))) q += 1;
        }
    }

    /// @dev |a| as uint256, exact for every int256: unchecked, -type(int256).min wraps to itself,
    ///      which as uint256 is 2^255, its absolute value.
    function abs(int256 a) internal pure returns (uint256) {
        unchecked {
            return uint256(a >= 0 ? a : -a);
        }
    }

    function max0(int256 a) internal pure returns (int256) {
        return a > 0 ? a : int256(0);
    }

    function min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }
}
