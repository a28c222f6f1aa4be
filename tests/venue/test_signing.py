"""The fast EIP-712 path agrees with eth-account on random orders, bad signatures included."""

import random

import pytest

from venue.signing import (
    Domain, Order, SignatureError, address_of, keccak, order_digest, order_digest_reference, recover_address,
    recover_address_reference, recover_many, recover_signer, recover_signer_reference, sign_digest, sign_order,
)

DOMAIN = Domain(31337, "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9")


def random_order(rng: random.Random, account: str) -> Order:
    return Order(account, rng.randrange(2**16), rng.random() < 0.5, rng.randrange(2**64), rng.randrange(2**64),
                 rng.randrange(8), rng.randrange(2**32), rng.randrange(2**64))


def test_fast_digest_and_recovery_match_eth_account_on_random_orders():
    rng = random.Random(7)
    for _ in range(200):
        key = rng.randbytes(32)
        account = address_of(key)
        order = random_order(rng, account)
        assert order_digest(order, DOMAIN.separator) == order_digest_reference(order, DOMAIN)
        sig = sign_order(order, DOMAIN.separator, key)
        digest = order_digest(order, DOMAIN.separator)
        assert recover_signer(digest, sig) == recover_signer_reference(order, DOMAIN, sig) == account


def test_tampered_order_or_signature_recovers_someone_else_in_both_paths():
    rng = random.Random(11)
    for _ in range(50):
        key = rng.randbytes(32)
        order = random_order(rng, address_of(key))
        sig = sign_order(order, DOMAIN.separator, key)
        tampered = Order(order.account, order.market, order.is_buy, order.price ^ 1, order.size, order.flags,
                         order.expiry, order.nonce)
        fast = recover_signer(order_digest(tampered, DOMAIN.separator), sig)
        assert fast == recover_signer_reference(tampered, DOMAIN, sig)
        assert fast != order.account
        bad_r = bytes([sig[0] ^ 0xFF]) + sig[1:]
        try:
            fast_bad = recover_signer(order_digest(order, DOMAIN.separator), bad_r)
        except SignatureError:
            fast_bad = None
        try:
            ref_bad = recover_signer_reference(order, DOMAIN, bad_r)
        except Exception:
            ref_bad = None
        assert fast_bad == ref_bad and fast_bad != order.account


def test_high_s_and_wrong_length_signatures_are_refused():
    key = bytes(range(1, 33))
    digest = bytes(32)
    sig = sign_digest(digest, key)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    vs = int.from_bytes(sig[32:], "big")
    s, v = vs & ((1 << 255) - 1), vs >> 255
    high_s = sig[:32] + (n - s).to_bytes(32, "big") + bytes([27 + (1 - v)])
    with pytest.raises(SignatureError):
        recover_signer(digest, high_s)
    with pytest.raises(SignatureError):
        recover_signer(digest, sig[:40])


def test_cffi_recovery_and_keccak_match_coincurve_and_pycryptodome():
    """The hand-written calls into libsecp256k1 against coincurve's PublicKey on good and broken
    signatures; the C keccak against pycryptodome's."""
    from Crypto.Hash import keccak as reference_keccak

    rng = random.Random(13)
    outcomes = set()
    for i in range(300):
        data = rng.randbytes(rng.randrange(0, 300))
        assert keccak(data) == reference_keccak.new(digest_bits=256, data=data).digest()
        digest, key = rng.randbytes(32), rng.randbytes(32)
        sig = bytearray(sign_digest(digest, key))
        if i % 3 == 1:
            sig[rng.randrange(32)] ^= 1 << rng.randrange(8)  # r no longer a valid x (often) or a different key
        if i % 3 == 2:
            sig[:32] = bytes(32)  # r = 0: never recovers
        results = []
        for recover in (recover_address, recover_address_reference):
            try:
                results.append(recover(digest, bytes(sig)))
            except SignatureError:
                results.append(None)
        assert results[0] == results[1]
        outcomes.add("ok" if results[0] is not None else "refused")
    assert outcomes == {"ok", "refused"}


def test_recover_many_gives_each_signer_or_the_reason_it_failed():
    digests = [bytes([i]) * 32 for i in range(1, 5)]
    keys = [bytes([i + 1]) * 32 for i in range(4)]
    pairs = [(d, sign_digest(d, k)) for d, k in zip(digests, keys)]
    pairs[2] = (pairs[2][0], pairs[2][1][:40])  # truncated
    out = recover_many(pairs)
    assert [o if isinstance(o, str) else "0x" + o.hex() for o in out][:2] == [address_of(k).lower() for k in keys[:2]]
    assert isinstance(out[2], str) and "64 or 65 bytes" in out[2]
    assert out[3] == recover_address(*pairs[3])


def test_65_byte_signatures_from_eth_account_normalise_to_the_compact_form_the_contract_verifies():
    """eth-account's default signature is 65 bytes (r, s, v with v 27/28); some signers give v as
    0/1. Both become the 64-byte (r, vs) form settlement packs, recovering the same signer, over
    random keys with both recovery ids; high s and other recovery ids are refused."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from venue.signing import EIP712_TYPES, compact_signature

    rng = random.Random(23)
    recovery_ids = set()
    for _ in range(120):
        key = rng.randbytes(32)
        order = random_order(rng, address_of(key))
        signed = Account.sign_message(encode_typed_data(full_message={
            "types": EIP712_TYPES, "primaryType": "Order", "domain": DOMAIN.as_dict(),
            "message": order.typed_message()}), key)
        full = bytes(signed.signature)
        assert len(full) == 65 and full[64] in (27, 28)
        recovery_ids.add(full[64])
        compact = compact_signature(full)
        digest = order_digest(order, DOMAIN.separator)
        assert compact == sign_order(order, DOMAIN.separator, key)  # RFC 6979: the same signature
        assert compact == compact_signature(full[:64] + bytes([full[64] - 27])) == compact_signature(compact)
        assert recover_signer(digest, compact) == recover_signer(digest, full) == order.account
    assert recovery_ids == {27, 28}
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high = full[:32] + (n - int.from_bytes(full[32:64], "big")).to_bytes(32, "big") + bytes([full[64] ^ 1])
    for bad in (high, full[:64] + bytes([29]), full[:63]):
        with pytest.raises(SignatureError):
            compact_signature(bad)


def test_action_digest_and_recovery_match_eth_account_on_random_actions():
    """Cancels and the dead-man's switch take the orders' fast path; eth-account signs them (65
    bytes, v 27/28, as a wallet does) and is the reference for the digest and the signer."""
    from venue.signing import action_digest, action_digest_reference, recover_action_signer_reference, sign_action

    rng = random.Random(11)
    texts = ["cancel:1", "cancelClient:é-ü 雪", "cancelAll:*", "cancelAll:ETH-PERP", "deadman:0", "", "x" * 500]
    for k in range(100):
        key = "0x" + rng.randbytes(32).hex()
        account = address_of(key)
        text, nonce, expiry = texts[k % len(texts)], rng.randrange(2**64), rng.randrange(2**64)
        digest = action_digest(account, text, nonce, expiry, DOMAIN.separator)
        assert digest == action_digest_reference(account, text, nonce, expiry, DOMAIN)
        sig = bytes.fromhex(sign_action(account, text, nonce, expiry, DOMAIN, key)[2:])
        assert len(sig) == 65 and sig[64] in (27, 28)
        assert recover_signer(digest, sig) == recover_action_signer_reference(account, text, nonce, expiry, DOMAIN,
                                                                              sig) == account
        other = action_digest(account, text + "!", nonce, expiry, DOMAIN.separator)
        assert recover_signer(other, sig) != account


def test_addresses_lower_case_is_normalised_and_a_wrong_checksum_refused():
    from venue.signing import AddressError, checksum_address

    good = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"
    assert checksum_address(good) == checksum_address(good.lower()) == checksum_address("0X" + good[2:].upper()) == good
    for bad in (good[:-1] + "8", "0x" + good[2:].swapcase(), good[:-1], good + "0", "0x" + "g" * 40, good[2:] + "00"):
        with pytest.raises(AddressError):
            checksum_address(bad)
