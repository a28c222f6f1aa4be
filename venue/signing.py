"""EIP-712 orders: the typed data the ClearingHouse verifies, a fast digest and secp256k1 path,
and eth-account as the reference the fast path is tested against.

Fast path: the Order struct has a fixed layout, so its digest is two keccak calls over
pre-built byte strings (safe-pysha3's C keccak), and recovery calls libsecp256k1 through the
cffi bindings coincurve ships (its `PublicKey` wrapper adds ~7 us per order; it stays the
reference, `recover_address_reference`, and tests/venue/test_signing.py checks parity).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sha3
from coincurve import PrivateKey, PublicKey
from coincurve._libsecp256k1 import ffi as _ffi, lib as _lib
from coincurve.context import GLOBAL_CONTEXT as _CONTEXT

ORDER_TYPE = (
    "Order(address account,uint16 market,bool isBuy,uint64 price,uint64 size,uint8 flags,"
    "uint32 expiry,uint64 nonce)"
)
DOMAIN_NAME = "crossbook"
DOMAIN_VERSION = "1"
HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

EIP712_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Order": [
        {"name": "account", "type": "address"},
        {"name": "market", "type": "uint16"},
        {"name": "isBuy", "type": "bool"},
        {"name": "price", "type": "uint64"},
        {"name": "size", "type": "uint64"},
        {"name": "flags", "type": "uint8"},
        {"name": "expiry", "type": "uint32"},
        {"name": "nonce", "type": "uint64"},
    ],
}


def keccak(data: bytes) -> bytes:
    return sha3.keccak_256(data).digest()


ORDER_TYPEHASH = keccak(ORDER_TYPE.encode())
_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


class SignatureError(ValueError):
    """A signature that is malformed or does not recover."""


@dataclass(frozen=True, slots=True)
class Order:
    """A signed order's fields, exactly the EIP-712 `Order` struct."""

    account: str
    market: int
    is_buy: bool
    price: int
    size: int
    flags: int
    expiry: int
    nonce: int

    def typed_message(self) -> dict:
        return {
            "account": self.account, "market": self.market, "isBuy": self.is_buy,
            "price": self.price, "size": self.size, "flags": self.flags,
            "expiry": self.expiry, "nonce": self.nonce,
        }


@dataclass(frozen=True, slots=True)
class Domain:
    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict:
        return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                "verifyingContract": self.verifying_contract}

    @property
    def separator(self) -> bytes:
        return keccak(
            _DOMAIN_TYPEHASH + keccak(DOMAIN_NAME.encode()) + keccak(DOMAIN_VERSION.encode())
            + self.chain_id.to_bytes(32, "big") + bytes(12) + address_bytes(self.verifying_contract)
        )


def address_bytes(address: str) -> bytes:
    raw = bytes.fromhex(address[2:] if address.startswith(("0x", "0X")) else address)
    if len(raw) != 20:
        raise ValueError(f"not a 20-byte address: {address}")
    return raw


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def order_digest(order: Order, domain_separator: bytes) -> bytes:
    """EIP-712 digest of `order`: keccak(0x1901 || domainSeparator || hashStruct(order))."""
    struct_hash = keccak(
        ORDER_TYPEHASH + bytes(12) + address_bytes(order.account) + _word(order.market)
        + _word(1 if order.is_buy else 0) + _word(order.price) + _word(order.size)
        + _word(order.flags) + _word(order.expiry) + _word(order.nonce)
    )
    return keccak(b"\x19\x01" + domain_separator + struct_hash)


def order_digest_reference(order: Order, domain: Domain) -> bytes:
    """The same digest through eth-account's generic EIP-712 encoder (the reference)."""
    from eth_account.messages import encode_typed_data

    signable = encode_typed_data(full_message={
        "types": EIP712_TYPES, "primaryType": "Order", "domain": domain.as_dict(),
        "message": order.typed_message(),
    })
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign_digest(digest: bytes, private_key: bytes | str) -> bytes:
    """Compact EIP-2098 signature (r || vs), 64 bytes, with low s."""
    if isinstance(private_key, str):
        private_key = bytes.fromhex(private_key.removeprefix("0x"))
    sig = PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    r, s, recid = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    return r + (s | (recid << 255)).to_bytes(32, "big")


def sign_order(order: Order, domain_separator: bytes, private_key: bytes | str) -> bytes:
    return sign_digest(order_digest(order, domain_separator), private_key)


def compact_signature(signature: bytes) -> bytes:
    """The 64-byte EIP-2098 form (r || vs) the ClearingHouse verifies, from a 64-byte compact or
    a 65-byte (r || s || v) signature, v being 27/28 (eth-account's default) or 0/1. Refuses a
    high s (the contract refuses it as malleable) and any other recovery id, so what the venue
    accepts is what settles."""
    if len(signature) == 64:
        r, vs = signature[:32], int.from_bytes(signature[32:], "big")
        recid, s = vs >> 255, vs & ((1 << 255) - 1)
    elif len(signature) == 65:
        v = signature[64]
        recid = v - 27 if v >= 27 else v
        r, s = signature[:32], int.from_bytes(signature[32:64], "big")
    else:
        raise SignatureError(f"signature must be 64 or 65 bytes, got {len(signature)}")
    if recid not in (0, 1) or not 0 < s <= HALF_CURVE_ORDER:
        raise SignatureError("signature has an invalid recovery id or a high s")
    return bytes(r) + (s | (recid << 255)).to_bytes(32, "big")


def recover_signer(digest: bytes, signature: bytes) -> str:
    """Address (EIP-55) that produced a compact (64-byte) or classic (65-byte r||s||v) signature."""
    return to_checksum(recover_address(digest, signature))


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """`recover_signer` as 20 raw bytes: the hot path compares bytes and skips the checksum."""
    if len(signature) == 65:
        v = signature[64]
        recid = v - 27 if v >= 27 else v
        r, s = signature[:32], int.from_bytes(signature[32:64], "big")
    elif len(signature) == 64:
        r, vs = signature[:32], int.from_bytes(signature[32:], "big")
        recid, s = vs >> 255, vs & ((1 << 255) - 1)
    else:
        raise SignatureError(f"signature must be 64 or 65 bytes, got {len(signature)}")
    if recid not in (0, 1) or not 0 < s <= HALF_CURVE_ORDER:
        raise SignatureError("signature has an invalid recovery id or a high s")
    if len(digest) != 32:
        raise SignatureError("the digest must be 32 bytes")
    ctx = _CONTEXT.ctx
    sig = _ffi.new("secp256k1_ecdsa_recoverable_signature *")
    pub = _ffi.new("secp256k1_pubkey *")
    if not (_lib.secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, sig, r + s.to_bytes(32, "big"), recid)
            and _lib.secp256k1_ecdsa_recover(ctx, pub, sig, digest)):
        raise SignatureError("signature does not recover")
    out, out_len = _ffi.new("unsigned char[65]"), _ffi.new("size_t *", 65)
    _lib.secp256k1_ec_pubkey_serialize(ctx, out, out_len, pub, _lib.SECP256K1_EC_UNCOMPRESSED)
    return keccak(_ffi.buffer(out, 65)[1:])[-20:]


def recover_many(pairs: list[tuple[bytes, bytes]]) -> list[bytes | str]:
    """`recover_address` over (digest, signature) pairs: each signer's 20 bytes, or the
    `SignatureError` message for a signature that does not recover. Runs in the venue's
    recovery worker process for batches."""
    out: list[bytes | str] = []
    for digest, signature in pairs:
        try:
            out.append(recover_address(digest, signature))
        except SignatureError as exc:
            out.append(str(exc))
    return out


def recover_address_reference(digest: bytes, signature: bytes) -> bytes:
    """`recover_address` through coincurve's `PublicKey` (the reference for the cffi calls)."""
    if len(signature) == 64:
        vs = int.from_bytes(signature[32:], "big")
        signature = signature[:32] + (vs & ((1 << 255) - 1)).to_bytes(32, "big") + bytes([vs >> 255])
    else:
        signature = signature[:64] + bytes([signature[64] - 27 if signature[64] >= 27 else signature[64]])
    try:
        pub = PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except Exception as exc:  # coincurve raises a bare Exception on unrecoverable input
        raise SignatureError(f"signature does not recover: {exc}") from exc
    return keccak(pub.format(compressed=False)[1:])[-20:]


def recover_signer_reference(order: Order, domain: Domain, signature: bytes) -> str:
    """eth-account's recovery of the order signer (the reference for `recover_signer`)."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    if len(signature) == 64:
        vs = int.from_bytes(signature[32:], "big")
        signature = signature[:32] + (vs & ((1 << 255) - 1)).to_bytes(32, "big") + bytes([27 + (vs >> 255)])
    signable = encode_typed_data(full_message={
        "types": EIP712_TYPES, "primaryType": "Order", "domain": domain.as_dict(),
        "message": order.typed_message(),
    })
    return Account.recover_message(signable, signature=signature)


def to_checksum(raw: bytes) -> str:
    """EIP-55 checksum address."""
    hex_addr = raw.hex()
    digest = keccak(hex_addr.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hex_addr))


def address_of(private_key: bytes | str) -> str:
    if isinstance(private_key, str):
        private_key = bytes.fromhex(private_key.removeprefix("0x"))
    return to_checksum(keccak(PrivateKey(private_key).public_key.format(compressed=False)[1:])[-20:])


# --- addresses as clients send them ------------------------------------------------------------
class AddressError(ValueError):
    """An address that is not 20 bytes of hex, or is mixed-case with a wrong EIP-55 checksum."""


@functools.lru_cache(maxsize=1 << 16)
def checksum_address(text: str) -> str:
    """The EIP-55 form of `text`. All lower-case (or all upper-case) hex carries no checksum and
    is accepted; mixed case is a checksum and must be right (a typo'd address is refused, not
    silently taken for another account). Cached: the same accounts send all day."""
    if not isinstance(text, str) or len(text) != 42 or text[:2] not in ("0x", "0X"):
        raise AddressError("must be 0x followed by 40 hex digits")
    digits = text[2:]
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raise AddressError("must be 0x followed by 40 hex digits") from None
    checksummed = to_checksum(raw)
    if digits != digits.lower() and digits != digits.upper() and checksummed[2:] != digits:
        raise AddressError(f"mixed-case address with a wrong EIP-55 checksum (did you mean {checksummed}?)")
    return checksummed


# --- signed venue actions (cancels, dead-man's switch) ---------------------------------------
# Each carries a nonce the venue refuses to see twice from an account while the action is
# unexpired (a millisecond timestamp does, as Hyperliquid's clients use), and an expiry at most
# MAX_ACTION_LIFETIME_S ahead, so the venue can forget a nonce once its action has expired.
# The venue's path is `action_digest` + `recover_address` (C keccak, libsecp256k1), like orders';
# eth-account's generic EIP-712 encoder is the reference (`action_digest_reference`), and signs
# for clients (`sign_action`).
ACTION_TYPE = "Action(address account,string action,uint64 nonce,uint64 expiry)"
ACTION_TYPEHASH = keccak(ACTION_TYPE.encode())
ACTION_TYPES = {
    "EIP712Domain": EIP712_TYPES["EIP712Domain"],
    "Action": [
        {"name": "account", "type": "address"},
        {"name": "action", "type": "string"},
        {"name": "nonce", "type": "uint64"},
        {"name": "expiry", "type": "uint64"},
    ],
}
MAX_ACTION_LIFETIME_S = 86_400


def action_digest(account: str, action: str, nonce: int, expiry: int, domain_separator: bytes) -> bytes:
    """EIP-712 digest of an `Action` (nonce and expiry must fit uint64)."""
    struct_hash = keccak(ACTION_TYPEHASH + bytes(12) + address_bytes(account) + keccak(action.encode())
                         + _word(nonce) + _word(expiry))
    return keccak(b"\x19\x01" + domain_separator + struct_hash)


def _action_signable(account: str, action: str, nonce: int, expiry: int, domain: Domain):
    from eth_account.messages import encode_typed_data

    return encode_typed_data(full_message={
        "types": ACTION_TYPES, "primaryType": "Action", "domain": domain.as_dict(),
        "message": {"account": account, "action": action, "nonce": nonce, "expiry": expiry},
    })


def action_digest_reference(account: str, action: str, nonce: int, expiry: int, domain: Domain) -> bytes:
    """`action_digest` through eth-account's generic EIP-712 encoder (the reference)."""
    signable = _action_signable(account, action, nonce, expiry, domain)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign_action(account: str, action: str, nonce: int, expiry: int, domain: Domain, private_key: str) -> str:
    """`action` is canonical text: "cancel:<id>", "cancelClient:<clientId>", "cancelAll:<market|*>",
    "deadman:<unix ms>". Signed with eth-account's defaults (65 bytes, v 27/28), as a user's
    wallet would."""
    from eth_account import Account

    signable = _action_signable(account, action, nonce, expiry, domain)
    return "0x" + bytes(Account.sign_message(signable, private_key).signature).hex()


def recover_action_signer_reference(account: str, action: str, nonce: int, expiry: int, domain: Domain,
                                    signature: bytes) -> str:
    """eth-account's recovery of an action's signer (the reference for the venue's path)."""
    from eth_account import Account

    return Account.recover_message(_action_signable(account, action, nonce, expiry, domain), signature=signature)
