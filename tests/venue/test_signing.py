"""The fast EIP-712 path agrees with eth-account on random orders, bad signatures included."""

import random

import pytest

from venue.signing import (
    Domain, Order, SignatureError, address_of, order_digest, order_digest_reference,
    recover_signer, recover_signer_reference, sign_digest, sign_order,
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
