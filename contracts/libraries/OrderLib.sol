// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title OrderLib
/// @notice EIP-712 orders: the type, its hash, the malleability bound for compact (EIP-2098)
///         signatures, and the packed calldata layout the operator uses to submit fills. The
///         digest and the signature recovery are computed in ClearingHouse's settlement path.
/// @dev Packed batch: [0] k, the number of makers (>= 1)  [1 : 1 + 20k] their addresses,
///      then fills of 227 bytes: [0:8] size  [8:16] price  [16:112] maker order  [112:227] taker order.
///      Taker order, 115 bytes:
///        [0:20] account  [20:22] market  [22] bit7 isBuy | bits0-6 flags  [23:31] price
///        [31:39] size    [39:43] expiry  [43:51] nonce   [51:83] r        [83:115] vs
///      Maker order, 96 bytes: the same, its account replaced by [0] the maker's index in the table
///      (a market maker quotes many orders per batch: 20 bytes of calldata once, not per fill).
///      All integers are big-endian. `vs` is s with the recovery bit (v - 27) in its top bit.
library OrderLib {
    uint256 internal constant FLAG_POST_ONLY = 1;
    uint256 internal constant FLAG_IOC = 2;
    uint256 internal constant FLAG_REDUCE_ONLY = 4;
    uint256 internal constant FLAG_MASK = 7;

    uint256 internal constant MAKER_BYTES = 96;
    uint256 internal constant TAKER_BYTES = 115;
    uint256 internal constant FILL_BYTES = 16 + MAKER_BYTES + TAKER_BYTES;

    string internal constant ORDER_TYPE =
        "Order(address account,uint16 market,bool isBuy,uint64 price,uint64 size,uint8 flags,uint32 expiry,uint64 nonce)";
    /// @dev keccak256(bytes(ORDER_TYPE)), written out: via-IR evaluates the expression at run time
    ///      (copying the string to memory and hashing it, ~270 gas per digest). The contract's
    ///      `orderTypeHash()` returns it and a test checks it against the string.
    bytes32 internal constant ORDER_TYPEHASH = 0xba4a711f928bdbe99936aa2e5e01100f7d7bc0eeab326067a230f7f1575ad5cd;

    /// @dev secp256k1n / 2: signatures with a larger s are malleable and refused.
    uint256 internal constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @dev Field order matters: `decodeInto` and the settlement assembly address fields by offset.
    ///      The first eight are the EIP-712 fields in ORDER_TYPE's order, so the struct hash is
    ///      one keccak over them with the type hash in the word before.
    struct Order {
        address account; // 0x00
        uint256 market; // 0x20
        bool isBuy; // 0x40
        uint256 price; // 0x60
        uint256 size; // 0x80
        uint256 flags; // 0xa0
        uint256 expiry; // 0xc0
        uint256 nonce; // 0xe0
        bytes32 r; // 0x100
        bytes32 vs; // 0x120
    }

    /// @notice Reads a packed order into `o` (in place: settlement decodes two orders per fill and
    ///         allocates nothing for them): `account`, then the fields from `market` on, which
    ///         start at calldata offset `fields`.
    function decodeInto(Order memory o, address account, uint256 fields) internal pure {
        assembly ("memory-safe") {
            // [0:2] market [2] side|flags [3:11] price [11:19] size [19:23] expiry [23:31] nonce
            let w := calldataload(fields)
            mstore(o, account)
            mstore(add(o, 0x20), shr(240, w))
            let fb := and(shr(232, w), 0xff)
            mstore(add(o, 0x40), shr(7, fb))
            mstore(add(o, 0xa0), and(fb, 0x7f))
            mstore(add(o, 0x60), and(shr(168, w), 0xffffffffffffffff))
            mstore(add(o, 0x80), and(shr(104, w), 0xffffffffffffffff))
            mstore(add(o, 0xc0), and(shr(72, w), 0xffffffff))
            mstore(add(o, 0xe0), and(shr(8, w), 0xffffffffffffffff))
            mstore(add(o, 0x100), calldataload(add(fields, 31)))
            mstore(add(o, 0x120), calldataload(add(fields, 63)))
        }
    }
}
