// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title OrderLib
/// @notice EIP-712 orders: the typed-data hash, compact (EIP-2098) signature recovery, and the
///         packed calldata layout the operator uses to submit fills.
/// @dev Packed order, 115 bytes:
///        [0:20] account  [20:22] market  [22] bit7 isBuy | bits0-6 flags  [23:31] price
///        [31:39] size    [39:43] expiry  [43:51] nonce   [51:83] r        [83:115] vs
///      Packed fill, 246 bytes: [0:8] size  [8:16] price  [16:131] maker order  [131:246] taker order.
///      All integers are big-endian. `vs` is s with the recovery bit (v - 27) in its top bit.
library OrderLib {
    uint256 internal constant FLAG_POST_ONLY = 1;
    uint256 internal constant FLAG_IOC = 2;
    uint256 internal constant FLAG_REDUCE_ONLY = 4;
    uint256 internal constant FLAG_MASK = 7;

    uint256 internal constant ORDER_BYTES = 115;
    uint256 internal constant FILL_BYTES = 246;

    string internal constant ORDER_TYPE =
        "Order(address account,uint16 market,bool isBuy,uint64 price,uint64 size,uint8 flags,uint32 expiry,uint64 nonce)";
    /// @dev keccak256(bytes(ORDER_TYPE)), written out: via-IR evaluates the expression at run time
    ///      (copying the string to memory and hashing it, ~270 gas per digest). The contract's
    ///      `orderTypeHash()` returns it and a test checks it against the string.
    bytes32 internal constant ORDER_TYPEHASH = 0xba4a711f928bdbe99936aa2e5e01100f7d7bc0eeab326067a230f7f1575ad5cd;

    /// @dev secp256k1n / 2: signatures with a larger s are malleable and refused.
    uint256 internal constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @dev Field order matters: `hash` and `decode` address fields by offset.
    struct Order {
        address account; // 0x00
        uint256 market; // 0x20
        bool isBuy; // 0x40
        uint256 flags; // 0x60
        uint256 price; // 0x80
        uint256 size; // 0xa0
        uint256 expiry; // 0xc0
        uint256 nonce; // 0xe0
        bytes32 r; // 0x100
        bytes32 vs; // 0x120
    }

    /// @notice Reads the packed order that starts at `start` in calldata into `o` (in place:
    ///         settlement decodes two orders per fill and allocates nothing for them).
    function decodeInto(Order memory o, uint256 start) internal pure {
        assembly ("memory-safe") {
            let w := calldataload(start)
            mstore(o, shr(96, w))
            mstore(add(o, 0x20), and(shr(80, w), 0xffff))
            let fb := and(shr(72, w), 0xff)
            mstore(add(o, 0x40), shr(7, fb))
            mstore(add(o, 0x60), and(fb, 0x7f))
            mstore(add(o, 0x80), and(shr(8, w), 0xffffffffffffffff))
            let w2 := calldataload(add(start, 31))
            mstore(add(o, 0xa0), shr(192, w2))
            mstore(add(o, 0xc0), and(shr(160, w2), 0xffffffff))
            mstore(add(o, 0xe0), and(shr(96, w2), 0xffffffffffffffff))
            mstore(add(o, 0x100), calldataload(add(start, 51)))
            mstore(add(o, 0x120), calldataload(add(start, 83)))
        }
    }

    /// @notice The EIP-712 digest of `o` under `domainSeparator`, and the address that signed it
    ///         (address(0) if the compact signature `o.r, o.vs` is invalid or malleable).
    /// @dev One assembly block: the struct hash, the digest and the ecrecover precompile call
    ///      share the scratch memory above the free memory pointer (nothing is allocated).
    function digestAndSigner(Order memory o, bytes32 domainSeparator) internal view returns (bytes32 d, address signer) {
        bytes32 typeHash = ORDER_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            mstore(add(m, 0x20), mload(o))
            mstore(add(m, 0x40), mload(add(o, 0x20)))
            mstore(add(m, 0x60), mload(add(o, 0x40)))
            mstore(add(m, 0x80), mload(add(o, 0x80)))
            mstore(add(m, 0xa0), mload(add(o, 0xa0)))
            mstore(add(m, 0xc0), mload(add(o, 0x60)))
            mstore(add(m, 0xe0), mload(add(o, 0xc0)))
            mstore(add(m, 0x100), mload(add(o, 0xe0)))
            let structHash := keccak256(m, 0x120)
            mstore(m, 0x1901)
            mstore(add(m, 0x20), domainSeparator)
            mstore(add(m, 0x40), structHash)
            d := keccak256(add(m, 0x1e), 0x42)
            // ecrecover(d, v, r, s) with v = 27 + the top bit of vs and s = vs without it.
            let vs := mload(add(o, 0x120))
            let sig := and(vs, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
            if iszero(gt(sig, HALF_CURVE_ORDER)) {
                mstore(m, d)
                mstore(add(m, 0x20), add(27, shr(255, vs)))
                mstore(add(m, 0x40), mload(add(o, 0x100)))
                mstore(add(m, 0x60), sig)
                mstore(0x00, 0)
                if staticcall(gas(), 1, m, 0x80, 0x00, 0x20) { signer := mload(0x00) }
            }
        }
    }
}
