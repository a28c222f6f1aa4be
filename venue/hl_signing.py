"""Hyperliquid request signatures, verified the way Hyperliquid verifies them (the facade's
`/hl/exchange` builds on this; ../shared/reference/hyperliquid-api.md §5).

L1 actions (orders, cancels, modifications, scheduleCancel, ...) are signed as a "phantom agent":
the action is msgpack-packed in the key order it arrived in, followed by the nonce, the vault flag
and the optional `expiresAfter`, and hashed; that hash is the `connectionId` of an EIP-712
`Agent(string source,bytes32 connectionId)` in the `Exchange` domain (chain id 1337). A local
venue is "testnet" to the SDK, so the source is "b". User-signed actions (`approveAgent`) are
plain EIP-712 in the `HyperliquidSignTransaction` domain on the chain id the action names.

A wrong hash never fails to recover: it recovers some other address. So the caller must require
the recovered signer to be one it knows (the account, or an agent the account approved).

Hashing uses msgpack and the venue's C keccak, recovery libsecp256k1 (venue/signing.py); the
SDK's own functions (eth-account's typed-data encoder) are the reference in the tests.
"""

from __future__ import annotations

import msgpack

from .signing import SignatureError, keccak, recover_address, to_checksum

ZERO_ADDRESS = bytes(20)


def _eip712_domain(name: str, version: str, chain_id: int) -> bytes:
    typehash = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    return keccak(typehash + keccak(name.encode()) + keccak(version.encode()) + chain_id.to_bytes(32, "big")
                  + bytes(12) + ZERO_ADDRESS)


EXCHANGE_DOMAIN = _eip712_domain("Exchange", "1", 1337)
AGENT_TYPEHASH = keccak(b"Agent(string source,bytes32 connectionId)")
APPROVE_AGENT_TYPEHASH = keccak(b"HyperliquidTransaction:ApproveAgent(string hyperliquidChain,address agentAddress,"
                                b"string agentName,uint64 nonce)")


def action_hash(action: dict, vault_address: str | None, nonce: int, expires_after: int | None) -> bytes:
    """keccak(msgpack(action) || nonce || vault flag [|| vault] [|| 0 || expiresAfter]), with the
    action's keys in the order they arrived (re-ordering them changes the hash)."""
    data = msgpack.packb(action) + nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault_address.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak(data)


def l1_digest(action: dict, nonce: int, vault_address: str | None = None, expires_after: int | None = None,
              source: str = "b") -> bytes:
    """The EIP-712 digest an L1 action's signature is over."""
    struct = keccak(AGENT_TYPEHASH + keccak(source.encode()) + action_hash(action, vault_address, nonce, expires_after))
    return keccak(b"\x19\x01" + EXCHANGE_DOMAIN + struct)


def approve_agent_digest(action: dict) -> bytes:
    """The digest of a user-signed `approveAgent` (its `agentName` is "" when the SDK omits it)."""
    chain_id = int(str(action["signatureChainId"]), 16)
    struct = keccak(APPROVE_AGENT_TYPEHASH + keccak(str(action["hyperliquidChain"]).encode())
                    + bytes(12) + bytes.fromhex(str(action["agentAddress"]).removeprefix("0x"))
                    + keccak(str(action.get("agentName") or "").encode()) + int(action["nonce"]).to_bytes(32, "big"))
    return keccak(b"\x19\x01" + _eip712_domain("HyperliquidSignTransaction", "1", chain_id) + struct)


def signature_bytes(signature: dict) -> bytes:
    """{"r": hex, "s": hex, "v": 27|28} as the SDK sends it (hex without leading zeros) -> 65 bytes."""
    try:
        r, s, v = int(str(signature["r"]), 16), int(str(signature["s"]), 16), int(signature["v"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureError(f"signature: expected r, s (hex) and v: {exc}") from None
    if not (0 <= r < 2**256 and 0 <= s < 2**256 and v in (27, 28)):
        raise SignatureError("signature: r or s out of range, or v not 27/28")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def recover_l1(action: dict, signature: dict, nonce: int, vault_address: str | None = None,
               expires_after: int | None = None, source: str = "b") -> str:
    """The address that signed an L1 action (EIP-55)."""
    return to_checksum(recover_address(l1_digest(action, nonce, vault_address, expires_after, source),
                                       signature_bytes(signature)))


def recover_approve_agent(action: dict, signature: dict) -> str:
    return to_checksum(recover_address(approve_agent_digest(action), signature_bytes(signature)))
