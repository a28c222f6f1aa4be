"""The API's pieces that need no chain: the front middleware's limits and error answers, the
failure throttle, request validation's codes, and the websocket subscription's numbering and
lag. (The whole API, under schemathesis and by hand, is tests/e2e/test_api_hardening.py.)"""

import asyncio
import json

import pytest

from pydantic import ValidationError

from venue.api.app import Front, Throttle, validation_error
from venue.api.schemas import BatchIn, CancelIn, OrderIn
from venue.service import LAGGED, Subscription
from venue.settings import Settings
from venue.signing import checksum_address


def run_asgi(app, method="POST", path="/cancel", body=b"{}", headers=((b"content-type", b"application/json"),),
             chunks=None):
    """One request through an ASGI app: the messages it sent."""
    sent = []
    parts = chunks if chunks is not None else [body]

    async def receive():
        if parts:
            part = parts.pop(0)
            return {"type": "http.request", "body": part, "more_body": bool(parts)}
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers), "client": ("10.0.0.1", 1),
             "app": None}
    asyncio.run(app(scope, receive, send))
    return sent


def answer(sent) -> tuple[int, dict, dict]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), dict(start["headers"])


def front(app, **settings) -> Front:
    s = Settings(**settings)
    return Front(app, {}, s, Throttle(s.auth_fail_burst, s.auth_fail_per_s))


def test_a_bug_is_answered_as_json_500_and_does_not_escape_to_the_server():
    async def broken(scope, receive, send):
        raise ZeroDivisionError("a bug")

    status, body, headers = answer(run_asgi(front(broken)))
    assert status == 500 and body["code"] == "INTERNAL" and headers[b"content-type"] == b"application/json"
    # GETs too; and a bug after the answer started is not answered twice.
    assert answer(run_asgi(front(broken), method="GET", path="/x", body=b""))[0] == 500

    async def late(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ZeroDivisionError("late")

    sent = run_asgi(front(late))
    assert [m["type"] for m in sent] == ["http.response.start"]


def test_bodies_must_be_json_and_at_most_the_limit_which_is_checked_before_reading_it_whole():
    reached = []

    async def app(scope, receive, send):
        reached.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    f = front(app, max_body_bytes=1000)
    assert answer(run_asgi(f, headers=((b"content-type", b"text/plain"),)))[:2] == (
        415, {"code": "UNSUPPORTED_MEDIA_TYPE", "msg": "send the body as JSON with content-type application/json"})
    assert answer(run_asgi(f, headers=()))[0] == 415
    big = ((b"content-type", b"application/json"), (b"content-length", b"1001"))
    assert answer(run_asgi(f, headers=big, chunks=[]))[1]["code"] == "BODY_TOO_LARGE"  # nothing read
    parts = [b" " * 600, b" " * 600, b" " * 600]
    assert answer(run_asgi(f, chunks=parts))[0] == 413 and len(parts) == 1  # stopped at the crossing
    assert answer(run_asgi(f, headers=((b"content-type", b"application/json; charset=utf-8"),), body=b"{}"))[0] == 200
    assert reached == [b"{}"]


def test_the_throttle_refuses_a_client_after_its_burst_and_refills_it():
    t = Throttle(burst=3, per_s=1000)
    assert t.retry_after("a") == 0
    t.fail("a", 3)
    assert 0 < t.retry_after("a") <= 0.001 and t.retry_after("b") == 0
    slow = Throttle(burst=2, per_s=0.5)
    slow.fail("a", 100)  # floored at -burst: a huge batch waits (burst + 1) / rate at most
    assert 5 < slow.retry_after("a") <= 6


def test_signed_routes_are_refused_with_429_and_retry_after_once_the_client_is_over_its_limit():
    async def unauthorized(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    f = front(unauthorized, auth_fail_burst=2, auth_fail_per_s=0.1)
    assert [answer(run_asgi(f))[0] for _ in range(3)] == [401, 401, 429]
    status, body, headers = answer(run_asgi(f))
    assert status == 429 and body["code"] == "RATE_LIMITED" and int(headers[b"retry-after"]) >= 1
    assert answer(run_asgi(f, path="/not-signed"))[0] == 401  # only signed routes are limited


@pytest.mark.parametrize("field,value,code", [
    ("price", "-1", "INVALID_REQUEST"), ("price", "²", "INVALID_REQUEST"), ("size", "9" * 5000, "OUT_OF_RANGE"),
    ("size", str(2**64), "OUT_OF_RANGE"), ("nonce", 2**64, "OUT_OF_RANGE"), ("market", -1, "OUT_OF_RANGE"),
    ("account", "0x" + "Ab" * 20, "INVALID_ADDRESS"), ("account", {}, "INVALID_ADDRESS"),
])
def test_validation_errors_map_to_codes_naming_the_field(field, value, code):
    order = {"account": "0x" + "ab" * 20, "market": 0, "isBuy": True, "price": "1", "size": "1", "nonce": 1,
             "signature": "0x" + "00" * 64}
    OrderIn.model_validate(order)
    with pytest.raises(ValidationError) as exc:
        OrderIn.model_validate_json(json.dumps(dict(order, **{field: value})))
    status, body = validation_error(exc.value.errors(), ("body",))
    assert (status, body["code"]) == (422, code) and body["msg"].startswith(f"body.{field}")
    with pytest.raises(ValidationError) as exc:
        BatchIn.model_validate_json(b"{not json")
    assert validation_error(exc.value.errors())[0] == 400
    assert OrderIn.model_validate(order).account == checksum_address("0x" + "ab" * 20) != "0x" + "ab" * 20
    assert CancelIn.model_validate({"account": "0x" + "ab" * 20, "market": "ETH-PERP", "nonce": 1, "expiry": 1,
                                    "signature": "0x" + "00" * 65}).market == "ETH-PERP"


def test_a_subscription_numbers_each_channel_filters_private_messages_and_lags_past_its_limit():
    me = "0x" + "aB" * 20

    async def go():
        sub = Subscription(me, limit=3)
        sub.offer({"channel": "trades", "data": {}})
        sub.offer({"channel": "fills", "data": {"maker": "0xsomeone", "taker": "0xelse"}})  # not mine: skipped
        sub.offer({"channel": "fills", "data": {"maker": me, "taker": "0xelse"}})
        sub.offer({"channel": "trades", "data": {}})
        for _ in range(4):  # past the limit: lagged, and counted
            sub.offer({"channel": "trades", "data": {}})
        sub.offer({"channel": "orders", "data": {"account": me}})
        got = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
        return got, sub.missed

    got, missed = asyncio.run(go())
    assert [(m["channel"], m["seq"]) for m in got[:3]] == [("trades", 1), ("fills", 1), ("trades", 2)]
    assert got[3] is LAGGED and len(got) == 4
    assert missed == {"trades": [3, 6], "orders": [1, 1]}
