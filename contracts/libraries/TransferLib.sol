// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20Minimal} from "../interfaces/IERC20Minimal.sol";

/// @title TransferLib
/// @notice ERC-20 transfers that accept tokens returning nothing and revert on failure.
library TransferLib {
    error TransferFailed(address token, address from, address to, uint256 amount);

    function pull(address token, address from, uint256 amount) internal {
        (bool ok, bytes memory ret) =
            token.call(abi.encodeCall(IERC20Minimal.transferFrom, (from, address(this), amount)));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) {
            revert TransferFailed(token, from, address(this), amount);
        }
    }

    function push(address token, address to, uint256 amount) internal {
        (bool ok, bytes memory ret) = token.call(abi.encodeCall(IERC20Minimal.transfer, (to, amount)));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) {
            revert TransferFailed(token, address(this), to, amount);
        }
    }
}
