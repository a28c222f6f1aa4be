"""Hyperliquid signatures (venue/hl_signing.py) against the official SDK's signing code and the
reference vectors in ../shared/reference/hyperliquid-api.md §5."""

import json
import random

import pytest
from eth_account import Account
from hyperliquid.utils import signing as sdk

from venue.hl_signing import (
    AGENT_TYPEHASH, EXCHANGE_DOMAIN, action_hash, approve_agent_digest, recover_approve_agent, recover_l1,
    signature_bytes,
)
from venue.signing import SignatureError

KEY = "0x" + "0123456789" * 6 + "0123"  # the reference vector's key, 0x0123...0123


def order_action(a=0, b=True, p="3001.5", s="0.25", tif="Alo", cloid=None):
    order = {"a": a, "b": b, "p": p, "s": s, "r": False, "t": {"limit": {"tif": tif}}}
    if cloid is not None:
        order["c"] = cloid
    return {"type": "order", "orders": [order], "grouping": "na"}


def test_the_reference_vectors():
    assert AGENT_TYPEHASH.hex() == "26f05c2f7239b6983075e58321292d77b3aa173d19b27257ac96ab362570f508"
    assert EXCHANGE_DOMAIN.hex() == "d79297fcdf2ffcd4ae223d01edaa2ba214ff8f401d7c9300d995d17c82aa4040"
    sdk_test = {"type": "order", "orders": [{"a": 4, "b": True, "p": "1670.1", "s": "0.0147", "r": False,
                                             "t": {"limit": {"tif": "Ioc"}}}], "grouping": "na"}
    assert action_hash(sdk_test, None, 1677777606040, None).hex() == \
        "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"
    ours = order_action(cloid="0x00000000000000000000000000000001")
    assert action_hash(ours, None, 1764650000000, None).hex() == \
        "902bc6b2281105bfbf51f9fd1b8ad952b1335307473b378df3353f0c4a131a07"
    signature = sdk.sign_l1_action(Account.from_key(KEY), ours, None, 1764650000000, None, False)
    assert signature["r"].startswith("0xa32798e2") and signature["r"].endswith("8c74")
    assert signature["s"].startswith("0x7da260b3") and signature["s"].endswith("bf3d") and signature["v"] == 27
    assert recover_l1(ours, signature, 1764650000000) == "0x14791697260E4c9A71f18484C9f997B308e59325"
    agent = {"type": "approveAgent", "agentAddress": "0x000000000000000000000000000000000000dEaD", "nonce": 1764650000000,
             "signatureChainId": "0x66eee", "hyperliquidChain": "Testnet"}
    digest = approve_agent_digest(agent).hex()
    assert digest.startswith("6049dcb6") and digest.endswith("d56c")


@pytest.mark.parametrize("seed", range(20))
def test_recovery_equals_the_sdks_for_what_the_sdk_signs(seed):
    rng = random.Random(seed)
    wallet = Account.from_key(bytes(rng.randrange(256) for _ in range(31)) + b"\x01")
    actions = [order_action(rng.randrange(3), rng.random() < .5, f"{rng.randrange(1, 99999)}.5", "0.01"),
               {"type": "cancel", "cancels": [{"a": 0, "o": rng.randrange(1, 2**40)}]},
               {"type": "scheduleCancel", "time": rng.randrange(2**41)}, {"type": "noop"},
               {"type": "batchModify", "modifies": [{"oid": 7, "order": order_action()["orders"][0]}]}]
    nonce = 1_700_000_000_000 + rng.randrange(10**9)
    expires = None if seed % 2 else nonce + 60_000
    for action in actions:
        signature = sdk.sign_l1_action(wallet, action, None, nonce, expires, False)
        assert recover_l1(action, signature, nonce, None, expires) == wallet.address
        assert sdk.recover_agent_or_user_from_l1_action(action, signature, None, nonce, expires, False) == wallet.address
        # What was signed is what counts: another nonce, expiry, source or key order recovers someone else.
        assert recover_l1(action, signature, nonce + 1, None, expires) != wallet.address
        assert recover_l1(action, signature, nonce, None, expires, source="a") != wallet.address
        reordered = json.loads(json.dumps(dict(reversed(list(action.items())))))
        if list(reordered) != list(action):
            assert recover_l1(reordered, signature, nonce, None, expires) != wallet.address


def test_approve_agent_as_the_sdk_signs_it_with_and_without_a_name():
    wallet = Account.from_key(KEY)
    for name in (None, "bot-1"):
        action = {"type": "approveAgent", "agentAddress": "0x000000000000000000000000000000000000dEaD",
                  "agentName": name or "", "nonce": 1764650000000}
        signature = sdk.sign_agent(wallet, action, False)
        if name is None:
            del action["agentName"]  # the SDK deletes an empty name after signing
        assert recover_approve_agent(action, signature) == wallet.address
        assert approve_agent_digest({**action, "hyperliquidChain": "Mainnet"}) != approve_agent_digest(action)


def test_malformed_signatures_are_refused_with_a_reason():
    for bad in ({"r": "0x1", "s": "0x2"}, {"r": "zz", "s": "0x2", "v": 27}, {"r": "0x1", "s": "0x2", "v": 29},
                {"r": hex(2**256), "s": "0x2", "v": 27}, "0xabc", None):
        with pytest.raises(SignatureError):
            signature_bytes(bad)
    short = {"r": "0x" + "1" * 62, "s": "0x" + "2" * 64, "v": 28}  # leading zeros dropped, as the SDK sends
    assert signature_bytes(short)[:32] == bytes.fromhex("00" + "1" * 62)
