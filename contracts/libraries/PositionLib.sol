// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MathLib} from "./MathLib.sol";

/// @title PositionLib
/// @notice Applies a trade to a position held as (size, openNotional), the signed cost basis.
///         A long of 2 ETH bought at 3,000 has size 2e8 and openNotional 6_000e6; a short has both
///         negative. Entry price = openNotional * 1e8 / size.
/// @dev Unchecked: |size| < 2^64 and |openNotional| < 2^96 (their storage widths), so
///      openNotional * newSize and the sums stay far below 2^255.
library PositionLib {
    /// @notice Applies a trade of signed `delta` (positive buys) costing signed `quote` (positive
    ///         when buying). Returns the new size, new cost basis and the realized PnL.
    /// @dev Increasing: the cost basis grows by `quote`. Reducing: the cost basis shrinks in
    ///      proportion, rounded toward negative infinity; realized = newBasis - basis - quote.
    ///      The rounding only moves value between realized and unrealized PnL, equity is exact.
    ///      Flipping through zero is a full close followed by an open; the caller splits `quote`.
    ///      Example: long 1 ETH at 100 (1e8, 100e6), sell 1e8 for quote -120e6 ->
    ///      (0, 0, realized 20e6).
    function applyTrade(int256 size, int256 openNotional, int256 delta, int256 quote)
        internal
        pure
        returns (int256 newSize, int256 newOpenNotional, int256 realized)
    {
        unchecked {
        newSize = size + delta;
        if (size == 0 || (size > 0) == (delta > 0)) {
            return (newSize, openNotional + quote, 0);
        }
        // Reducing; callers never pass a delta that flips the sign.
        newOpenNotional = MathLib.floorDiv(openNotional * newSize, size);
        realized = newOpenNotional - openNotional - quote;
        }
    }
}
