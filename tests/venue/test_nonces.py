"""The venue's per-account nonce window: bounded memory, and a forgotten nonce can never be used."""

import random

from venue.nonces import NonceWindow


def test_a_nonce_is_taken_once_and_forgotten_ones_fall_below_the_floor():
    rng = random.Random(3)
    window = NonceWindow()
    taken = []
    for _ in range(5_000):
        nonce = rng.randrange(10**9)
        refusal = window.refusal(nonce)
        if nonce in taken:
            assert refusal is not None  # never twice, remembered or forgotten
        if refusal is None:
            window.take(nonce, 100)
            taken.append(nonce)
        else:
            assert refusal[0] in ("DUPLICATE_NONCE", "NONCE_TOO_LOW")
        assert len(window) <= 100  # bounded
        # Everything forgotten lies at or below the floor: refused.
        assert all(window.refusal(n) is not None for n in taken)
    assert len(taken) > 400


def test_counting_up_never_meets_the_floor():
    window = NonceWindow()
    for nonce in range(1, 10_001):
        assert window.refusal(nonce) is None
        window.take(nonce, 1_000)
    assert window.floor == 9_000 and window.refusal(9_000)[0] == "NONCE_TOO_LOW"
    assert window.refusal(9_500)[0] == "DUPLICATE_NONCE" and window.refusal(10_001) is None
