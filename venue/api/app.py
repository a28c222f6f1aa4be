"""FastAPI application: thin routes over `venue.service.Venue`.

Every answer is JSON. Every error is `{code, msg}` with a documented 4xx (or 503 while the venue
cannot take risk; 500 only for a bug, which is logged and still answered in that shape on a
connection that stays open). `Front`, a pure-ASGI middleware in front of everything, enforces
what holds for every request: JSON bodies only (415), at most `max_body_bytes` (413, refused
before the body is read whole), per-client-address limits on unauthenticated failures (429 with
Retry-After); and it answers the signed order routes itself, skipping FastAPI's machinery."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import Counter
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engine import EngineError, OrderRejected
from ..hl import HlInfo
from ..hl_exchange import GATEWAY_NONCE_BASE, UNVERIFIED
from ..hl_ws import HlSocket
from ..service import (
    LAGGED, UNAUTHENTICATED, SignatureRejected, Venue, VenueUnavailable, order_json, trade_json,
)
from ..settings import Settings
from ..signing import ACTION_TYPE, ACTION_TYPES, EIP712_TYPES, ORDER_TYPE, AddressError, Order, checksum_address
from .schemas import (
    TriggerIn,
    BatchEnvelope, BatchIn, BatchStatus, BulkIn, BulkStatus, CancelIn, Cancelled, DeadmanIn, DeadmanSet, Error, ModifyIn,
    OrderIn, OrderStatus,
)

log = logging.getLogger("venue.api")
UI_PAGE = Path(__file__).with_name("ui.html")

STP = {"expireMaker": 0, "cancelTaker": 1, "cancelBoth": 2}
# The statuses each kind of route can answer, all with an {code, msg} body (OpenAPI lists them).
POST_ERRORS = (400, 401, 403, 404, 413, 415, 422, 429, 500, 503)
GET_ERRORS = (400, 404, 422, 500, 503)
SIGNED_ROUTES = frozenset({"/orders", "/orders/batch", "/modify", "/cancel", "/deadman", "/triggers"})
HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE",
              415: "UNSUPPORTED_MEDIA_TYPE", 429: "RATE_LIMITED"}
RANGE_ERRORS = frozenset({"out_of_range", "greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def errors_doc(statuses) -> dict:
    return {status: {"model": Error} for status in statuses}


class InvalidRequest(EngineError):
    status = 422


_json = json.JSONEncoder(separators=(",", ":")).encode


def json_response(data) -> Response:
    """A JSON body written directly (no response-model validation): the hot routes build their
    bodies from values the engine produced."""
    return Response(_json(data), media_type="application/json")


def validation_error(errors: list, prefix: tuple = ()) -> tuple[int, dict]:
    """(status, {code, msg}) for a request that fails validation, from its first error: 400
    INVALID_JSON for a body that is not JSON; 422 OUT_OF_RANGE for a number outside its field's
    range, INVALID_ADDRESS, or INVALID_REQUEST; the message names the field."""
    first = errors[0] if errors else {}
    kind = first.get("type", "")
    where = ".".join(str(x) for x in (*prefix, *first.get("loc", ())))
    msg = f"{where}: {first.get('msg', 'invalid')}"
    if kind == "json_invalid":
        return 400, {"code": "INVALID_JSON", "msg": msg}
    code = "OUT_OF_RANGE" if kind in RANGE_ERRORS else "INVALID_ADDRESS" if kind == "address" else "INVALID_REQUEST"
    return 422, {"code": code, "msg": msg}


def unauthenticated(status: int, data) -> int:
    """How many unauthenticated failures an answer reports (a batch: one per such order)."""
    if status in (401, 403):
        return 1
    if status == 200 and isinstance(data, dict) and "statuses" in data:
        return sum(1 for s in data["statuses"] if s.get("code") in UNAUTHENTICATED)
    return 0


async def order_route(venue: Venue, handler, body: bytes) -> tuple[int, dict]:
    """Runs a hot route's handler on the raw body: (status, data) with {code, msg} errors, the
    same bodies the FastAPI exception handlers write. Counted in the venue's metrics."""
    started = time.perf_counter()
    try:
        status, data = 200, await handler(venue, body)
    except EngineError as exc:
        status, data = exc.status, {"code": exc.code, "msg": exc.msg}
    except ValidationError as exc:
        status, data = validation_error(exc.errors(), ("body",))
    venue.metrics.answered(data, time.perf_counter() - started)
    return status, data


async def answer_http(venue: Venue, handler, body: bytes) -> Response:
    status, data = await order_route(venue, handler, body)
    return Response(_json(data), status_code=status, media_type="application/json")


class Throttle:
    """Unauthenticated failures per client address, as a token bucket: `burst` of them, refilled
    at `per_s` a second. While a client's bucket is empty its signed requests are refused with
    429 before any signature work (so a flood of garbage signatures costs the venue a dict
    lookup per request)."""

    def __init__(self, burst: int, per_s: float):
        self.burst, self.per_s = float(burst), float(per_s)
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def _level(self, client: str, now: float) -> float:
        tokens, when = self.buckets.get(client, (self.burst, now))
        return min(self.burst, tokens + (now - when) * self.per_s)

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again: 0 when it has credit."""
        if client not in self.buckets:
            return 0.0
        level = self._level(client, time.monotonic())
        return 0.0 if level >= 1 else (1 - level) / self.per_s

    def fail(self, client: str, n: int = 1) -> None:
        now = time.monotonic()
        self.buckets[client] = (max(self._level(client, now) - n, -self.burst), now)
        if len(self.buckets) > 100_000:  # forget clients whose buckets are full again
            self.buckets = {c: b for c, b in self.buckets.items() if self._level(c, now) < self.burst}


async def send_json(send, status: int, data: dict, headers: tuple = ()) -> None:
    payload = _json(data).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload)),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


def rate_limited(wait: float) -> tuple[dict, tuple]:
    seconds = max(1, math.ceil(wait))
    return ({"code": "RATE_LIMITED", "msg": f"too many requests from this address failed authentication: "
                                            f"retry in {seconds} s"},
            ((b"retry-after", str(seconds).encode()),))


class Front:
    """Pure-ASGI middleware in front of the whole app (see the module's docstring). The signed
    order routes (`POST /orders`, `POST /orders/batch`) are answered here: about half of a single
    order's server time is FastAPI's request, dependency and response machinery
    (`make bench-api`)."""

    def __init__(self, app, hot: dict, settings: Settings, throttle: Throttle):
        self.app, self.hot, self.max_body, self.throttle = app, hot, settings.max_body_bytes, throttle

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = []

        async def tracked(message):
            if message["type"] == "http.response.start":
                started.append(message["status"])
            await send(message)

        try:
            await self.serve(scope, receive, tracked, started)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_json(send, 500, {"code": "INTERNAL", "msg": "the venue failed on this request (a bug; "
                                                                       "it is logged)"})

    async def serve(self, scope, receive, send, started: list) -> None:
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path, client = scope["path"], (scope.get("client") or ("?",))[0]
        signed = path in SIGNED_ROUTES
        if signed and (wait := self.throttle.retry_after(client)):
            body, headers = rate_limited(wait)
            return await send_json(send, 429, body, headers)
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
        if content_type is None or content_type.split(b";")[0].strip().lower() != b"application/json":
            return await send_json(send, 415, {"code": "UNSUPPORTED_MEDIA_TYPE",
                                               "msg": "send the body as JSON with content-type application/json"})
        too_large = {"code": "BODY_TOO_LARGE", "msg": f"the request body may be at most {self.max_body} bytes"}
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await send_json(send, 413, too_large)
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                return await send_json(send, 413, too_large)
            if not message.get("more_body"):
                break
        handler = self.hot.get(path)
        if handler is not None:
            status, data = await order_route(scope["app"].state.venue, handler, body)
            await send_json(send, status, data)
        else:
            delivered = False

            async def replay():
                nonlocal delivered
                if delivered:
                    return await receive()
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            status, data = (started[0] if started else 0), None
        if signed and (n := unauthenticated(status, data)):
            self.throttle.fail(client, n)


def get_venue(request: Request) -> Venue:
    return request.app.state.venue


V = Annotated[Venue, Depends(get_venue)]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    throttle = Throttle(settings.auth_fail_burst, settings.auth_fail_per_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        venue = Venue(settings)
        await venue.start()
        app.state.venue = venue
        yield
        await venue.stop()

    # OpenTelemetry off: nothing here exports it, and FastAPI's per-request check for configured
    # providers is a measurable share of a request.
    app = FastAPI(title="crossbook venue", version="0.1.0", lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
                  description="Signed perpetual-futures orders, matched off-chain, settled on Anvil.")

    @app.exception_handler(EngineError)
    async def engine_error(_: Request, exc: EngineError):
        return JSONResponse({"code": exc.code, "msg": exc.msg}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        status, body = validation_error(exc.errors())
        return JSONResponse(body, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        code = HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        return JSONResponse({"code": code, "msg": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    def to_order(venue: Venue, o: OrderIn) -> Order:
        market = o.market if type(o.market) is int else venue.market_id(o.market)
        return Order(o.account, market, o.isBuy, int(o.price), int(o.size), o.flags, o.expiry, o.nonce)

    async def place_one(venue: Venue, o: OrderIn, offload: bool = False) -> dict:
        return status_json(await venue.place(to_order(venue, o), bytes.fromhex(o.signature[2:]), o.tif, o.clientId,
                                             STP[o.stp], offload=offload))

    def status_json(ack) -> dict:
        status = {"status": ack.status, "orderId": ack.order_id, "filled": str(ack.filled),
                  "remaining": str(ack.remaining)}
        if ack.cancel_reason:
            status["reason"] = ack.cancel_reason
        return status

    def body_schema(model: type[BaseModel]) -> dict:
        return {"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}

    @app.get("/health", responses={503: {"description": "down: the venue is cancel-only; the same body with "
                                                        "`code` CANCEL_ONLY and `msg` the reason",
                                         "content": {"application/json": {"schema": {"type": "object"}}}}})
    async def health(venue: V):
        """The venue's state with numbers (see Venue.health); 503 when it is down (cancel-only)."""
        body = venue.health()
        if body["status"] == "down":
            return JSONResponse({"code": "CANCEL_ONLY", "msg": body["reason"], **body}, status_code=503)
        if body["status"] == "frozen":
            return JSONResponse({"code": "VENUE_FROZEN", "msg": "the venue is frozen (escape hatch): accounts leave "
                                                                "by exitFrozen() on the ClearingHouse", **body},
                                status_code=503)
        return JSONResponse(body)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(venue: V):
        """Prometheus exposition (prometheus-client): orders and fills, latencies, pending fills,
        batch gas, rejections, websocket clients and lag, oracle age, insurance fund, alerts."""
        return Response(venue.metrics.scrape(venue), media_type=CONTENT_TYPE_LATEST)

    @app.get("/alerts")
    async def alerts(venue: V):
        """Alerts open now and the latest resolved ones, newest first (see venue/alerts.py)."""
        return json_response({"active": venue.alerts.active(), "recent": venue.alerts.recent(),
                              "rules": list(venue.alerts.rules)})

    @app.get("/risk")
    async def risk_view(venue: V):
        """What the console's risk and markets panels show, from the latest evaluation (at most
        `alert_interval_s` old): accounts sorted by distance to liquidation, each market's chain
        state (open interest and cap, funding), the insurance fund over time, bad debt, keeper
        activity seen on-chain, oracle ages against the staleness limit."""
        snap = venue.last_snapshot or await asyncio.to_thread(venue.risk_snapshot)
        h = venue.health()
        markets = []
        for m, (p, view) in enumerate(zip(venue.markets, snap["markets"])):
            bids, asks = venue.engine.l2(m, 1)
            markets.append({
                "id": m, "symbol": p.symbol, "oraclePrice": str(view["oraclePrice"]),
                "mid": str((bids[0][0] + asks[0][0]) // 2) if bids and asks else None,
                "openInterest": str(view["openInterest"]), "openInterestCap": str(view["openInterestCap"]),
                "fundingRatePerHour": str(view["lastFundingRate"]), "fundingCapPerHour": str(view["maxFundingRatePerHour"]),
                "lastFundingTime": view["lastFundingTime"], "status": h["marketStatus"][p.symbol],
                "oracleAgeS": h["oracleAgeS"][p.symbol]})
        return json_response({
            "at": snap["at"], "markets": markets, "maxPriceAgeS": h["maxPriceAgeS"],
            "accounts": [{**a, **{k: str(a[k]) for k in ("equity", "maintenance", "initial", "notional",
                                                           "collateralQuote", "wethWei", "collateralAfterHaircut")},
                          "positions": [{**q, "size": str(q["size"]), "entryPrice": str(q["entryPrice"]),
                                         "liquidationPrice": None if q["liquidationPrice"] is None
                                         else str(q["liquidationPrice"])} for q in a["positions"]]}
                         for a in snap["accounts"][:100]],
            "insuranceFund": str(snap["insurance"]),
            "insuranceHistory": [[t, str(v)] for t, v in list(venue.insurance_history)[-600:]],
            "badDebt": str(venue.bad_debt),
            "keepers": {"lastOraclePush": max(venue.oracle_updated.values(), default=None),
                        "lastLiquidation": venue.last_liquidation, "lastFundingUpdate": venue.last_funding_at},
            "rejections": dict(Counter(reason for _, reason, _ in venue.rejected_recent)),
        })

    @app.post("/hl/info", responses=errors_doc(POST_ERRORS), openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}}}}})
    async def hl_info(request: Request):
        """Hyperliquid's `/info` (venue/hl.py): `{"type": ...}` answered in Hyperliquid's shapes, so
        the official SDK's `Info(base_url="http://127.0.0.1:8000/hl")` works unchanged. Types not
        served answer 400 `{code: UNSUPPORTED, msg}`."""
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            raise InvalidRequest("INVALID_JSON", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidRequest("INVALID_REQUEST", "the body is a JSON object with a type")
        return json_response(await HlInfo(request.app.state.venue).answer(body))

    @app.post("/hl/exchange", responses=errors_doc(POST_ERRORS), openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["action", "nonce", "signature"],
            "properties": {"action": {"type": "object"}, "nonce": {"type": "integer"},
                           "signature": {"type": "object"}}}}}}})
    async def hl_exchange(request: Request):
        """Hyperliquid's `/exchange` (venue/hl_exchange.py): a signed action as the official SDK
        sends it (`order`, `cancel`, `cancelByCloid`, `modify`, `batchModify`, `scheduleCancel`,
        `updateLeverage`, `approveAgent`, `noop`), answered `{"status": "ok", "response": ...}`.
        An action refused as a whole (unknown signer, used nonce, unsupported type) answers 200
        `{"status": "err", "response": text}` as Hyperliquid does; a body that is not an action
        at all, 400 {code, msg}."""
        client = request.client.host if request.client else "?"
        if wait := throttle.retry_after(client):  # this address sent too many unverifiable requests
            body, headers = rate_limited(wait)
            return JSONResponse(body, status_code=429, headers={k.decode(): v.decode() for k, v in headers})
        answer = await request.app.state.venue.hl.exchange(await request.body())
        if answer["status"] == "err" and answer["response"].startswith(UNVERIFIED):
            throttle.fail(client)  # each costs a signature recovery and a chain query: limited per address
        return json_response(answer)

    @app.get("/hl/gateway")
    async def hl_gateway(venue: V):
        """The gateway key's address: what an account approves on-chain once (`setAgent(address,
        true)`, or `venue hl approve`) so its Hyperliquid-API orders can settle."""
        return {"gateway": venue.hl.address, "nonceBase": str(GATEWAY_NONCE_BASE)}

    @app.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    async def ui():
        """The operations console: one self-contained page (no CDN, no build step)."""
        return HTMLResponse(UI_PAGE.read_text())

    @app.get("/markets")
    async def markets(venue: V):
        return [{"id": i, "symbol": p.symbol, "oracleId": p.oracle_id, "tickSize": str(p.tick_size),
                 "lotSize": str(p.lot_size), "minNotional": str(p.min_notional), "bandBps": p.band_bps,
                 "makerFeeBps": p.maker_fee_bps, "takerFeeBps": p.taker_fee_bps, "imBps": [p.im_bps_1, p.im_bps_2],
                 "tierCap": str(p.tier_cap_1), "maxPosition": str(p.max_position),
                 "exposureGroup": p.exposure_group, "exposureCap": str(p.exposure_cap),
                 "oraclePrice": str(venue.engine.markets[i].oracle_price)} for i, p in enumerate(venue.markets)]

    @app.get("/eip712")
    async def eip712(venue: V):
        return {"domain": venue.domain.as_dict(), "types": {**EIP712_TYPES, "Action": ACTION_TYPES["Action"]},
                "primaryType": "Order", "orderType": ORDER_TYPE, "actionType": ACTION_TYPE}

    @app.get("/book/{market}", responses=errors_doc(GET_ERRORS))
    async def book(venue: V, market: str, depth: Annotated[int, Query(ge=1, le=500)] = 20):
        """L2 book of a market (id or symbol), best first, `depth` levels a side."""
        return venue.book_json(venue.market_id(market), depth)

    @app.get("/trades/{market}", responses=errors_doc(GET_ERRORS))
    async def trades(venue: V, market: str):
        """The market's latest public trades (up to 200), newest first."""
        market = venue.market_id(market)
        return [trade_json(f) for f in reversed(venue.trades[market])]

    async def place_body(venue: Venue, body: bytes) -> dict:
        status = await place_one(venue, OrderIn.model_validate_json(body), offload=True)
        await venue.durable()  # journalled before it is acknowledged
        return status

    def batch_orders(body: bytes) -> list:
        """The batch's orders, each an `OrderIn` or, for one that fails validation, its error
        (the others still go ahead). The whole body is validated at once when it is all good."""
        try:
            return BatchIn.model_validate_json(body).orders
        except ValidationError:
            items = BatchEnvelope.model_validate_json(body).orders  # raises for a bad envelope
        out = []
        for k, item in enumerate(items):
            try:
                out.append(OrderIn.model_validate(item))
            except ValidationError as exc:
                out.append(OrderRejected(*validation_error(exc.errors(), ("body", "orders", k))[1].values()))
        return out

    async def place_batch_body(venue: Venue, body: bytes) -> dict:
        results: list = batch_orders(body)
        items, index = [], []
        for k, o in enumerate(results):
            if isinstance(o, EngineError):
                continue
            try:
                items.append((to_order(venue, o), bytes.fromhex(o.signature[2:]), o.tif, o.clientId, STP[o.stp]))
                index.append(k)
            except EngineError as exc:
                results[k] = exc
        for k, r in zip(index, await venue.place_many(items) if items else []):
            results[k] = r
        await venue.durable()
        return {"statuses": [{"status": "error", "code": r.code, "msg": r.msg} if isinstance(r, EngineError)
                             else status_json(r) for r in results]}

    # The order routes are answered by `Front` (below) before FastAPI's routing; these
    # declarations give them their OpenAPI entries and serve them if the middleware is removed.
    @app.post("/orders", response_model=OrderStatus, responses=errors_doc(POST_ERRORS),
              openapi_extra=body_schema(OrderIn))
    async def place(request: Request):
        return await answer_http(request.app.state.venue, place_body, await request.body())

    @app.post("/orders/batch", response_model=BatchStatus, responses=errors_doc(POST_ERRORS),
              openapi_extra=body_schema(BatchIn))
    async def place_batch(request: Request):
        return await answer_http(request.app.state.venue, place_batch_body, await request.body())

    app.add_middleware(Front, hot={"/orders": place_body, "/orders/batch": place_batch_body}, settings=settings,
                       throttle=throttle)

    @app.post("/modify", response_model=OrderStatus, responses=errors_doc(POST_ERRORS))
    async def modify(venue: V, body: ModifyIn):
        o = body.order
        ack = await venue.modify(body.orderId, to_order(venue, o), bytes.fromhex(o.signature[2:]), o.tif, o.clientId)
        await venue.durable()
        return json_response(status_json(ack))

    def cancel_action(venue: Venue, body: CancelIn) -> tuple[str, int | None]:
        """The signed text a cancel request stands for, and its market (for a cancel-all)."""
        named = [body.orderId is not None, body.orderIds is not None, body.clientId is not None]
        if sum(named) > 1:
            raise InvalidRequest("INVALID_REQUEST", "give one of orderId, orderIds and clientId")
        market = None if body.market is None else venue.market_id(body.market)
        if body.orderId is not None:
            return f"cancel:{body.orderId}", market
        if body.orderIds is not None:
            return "cancel:" + ",".join(map(str, body.orderIds)), market
        if body.clientId is not None:
            return f"cancelClient:{body.clientId}", market
        return f"cancelAll:{'*' if body.market is None else body.market}", market

    @app.post("/triggers", responses=errors_doc(POST_ERRORS))
    async def place_trigger(venue: V, body: TriggerIn):
        """A stop-loss or take-profit order (venue/triggers.py): held off the book until the mark
        price crosses `triggerPrice`, then entered as a market (IOC) or limit order exactly as
        signed. Answers `waitingForTrigger` with its `triggerId` (an id above 2^40: cancel it
        with `POST /cancel`, see it at `GET /accounts/{address}/order?orderId=`), or `triggered`
        with the `orderId` it became when it was already due."""
        o = body.order
        t = await venue.place_trigger(to_order(venue, o), bytes.fromhex(o.signature[2:]), o.tif, o.clientId,
                                      int(body.triggerPrice), body.tpsl, body.isMarket, body.attached)
        await venue.durable()
        return json_response({"status": "waitingForTrigger" if t.status == "waiting" else t.status,
                              "triggerId": t.id, "orderId": t.child})

    @app.post("/cancel", response_model=Cancelled, responses=errors_doc(POST_ERRORS))
    async def cancel(venue: V, body: CancelIn):
        """One order by `orderId` or `clientId`, several by `orderIds` (those still open are
        cancelled), or all of the account's (in `market`, or all markets), signed as an `Action`
        whose text is `cancel:<orderId>`, `cancel:<id>,<id>,...`, `cancelClient:<clientId>` or
        `cancelAll:<market as sent | *>`."""
        action, market = cancel_action(venue, body)
        await venue.authorize(body.account, action, body.nonce, body.expiry, bytes.fromhex(body.signature[2:]))
        if body.orderIds is not None:
            done = venue.cancel_each(body.account, body.orderIds)
            await venue.durable()
            return json_response({"cancelled": [d["orderId"] for d in done if d["status"] == "cancelled"]})
        if body.orderId is None and body.clientId is None:
            orders = venue.cancel_all(body.account, market)
            await venue.durable()
            return json_response({"cancelled": [o.id for o in orders]})
        try:
            order = venue.cancel(body.account, body.orderId, body.clientId)
        except EngineError:
            await venue.durable()  # the spent action nonce is durable before the refusal is answered
            raise
        await venue.durable()
        return json_response({"cancelled": [order.id]})

    def convert(items: list, fn) -> tuple[list, list]:
        """(a slot per item: None, or the EngineError that refused it early; the converted others)."""
        slots, out = [], []
        for item in items:
            try:
                out.append(fn(item))
                slots.append(None)
            except EngineError as exc:
                slots.append(exc)
        return slots, out

    def merge(slots: list, results: list) -> list:
        it = iter(results)
        return [next(it) if r is None else r for r in slots]

    @app.post("/batch", response_model=BulkStatus, responses=errors_doc(POST_ERRORS))
    async def bulk(venue: V, body: BulkIn):
        """A quoting bot's changes in one request: `cancel` (a signed cancel naming `orderIds`),
        then `modify` (as `POST /modify`, each), then `orders` (as `POST /orders/batch`). Every
        item is answered on its own; one refused item changes nothing else. A bad cancel
        signature refuses the whole request before anything changes."""
        if body.cancel is not None and (body.cancel.orderIds is None and body.cancel.orderId is None):
            raise InvalidRequest("INVALID_REQUEST", "cancel: name the orders (orderIds); use POST /cancel to cancel all")
        cancel = None
        if body.cancel is not None:
            c = body.cancel
            cancel_action(venue, c)  # refuses a cancel naming several things
            cancel = (c.account, c.orderIds or [c.orderId], c.nonce, c.expiry, bytes.fromhex(c.signature[2:]))
        modified, items = convert(body.modify, lambda m: (m.orderId, to_order(venue, m.order),
                                                           bytes.fromhex(m.order.signature[2:]), m.order.tif,
                                                           m.order.clientId))
        placed, orders = convert(body.orders, lambda o: (to_order(venue, o), bytes.fromhex(o.signature[2:]), o.tif,
                                                          o.clientId, STP[o.stp]))
        cancelled, modify_results, place_results = await venue.bulk(cancel, items, orders)
        await venue.durable()
        modified, placed = merge(modified, modify_results), merge(placed, place_results)

        def statuses(rs):
            return [{"status": "error", "code": r.code, "msg": r.msg} if isinstance(r, EngineError) else status_json(r)
                    for r in rs]
        return json_response({"cancelled": cancelled, "modified": statuses(modified), "placed": statuses(placed)})

    @app.post("/deadman", response_model=DeadmanSet, responses=errors_doc(POST_ERRORS))
    async def deadman(venue: V, body: DeadmanIn):
        """Dead-man's switch: at unix ms `at`, every open order of the account is cancelled unless
        re-armed later (0 disarms). Signed as the `Action` `deadman:<at>`."""
        await venue.authorize(body.account, f"deadman:{body.at}", body.nonce, body.expiry,
                              bytes.fromhex(body.signature[2:]))
        venue.engine.schedule_cancel(venue.now_ms(), body.account, body.at)
        await venue.durable()
        return json_response({"account": body.account, "cancelAt": body.at})

    def path_address(address: str) -> str:
        try:
            return checksum_address(address)
        except AddressError as exc:
            raise InvalidRequest("INVALID_ADDRESS", f"address: {exc}") from None

    @app.get("/accounts/{address}/order", responses=errors_doc(GET_ERRORS))
    async def order_status(venue: V, address: str, orderId: Annotated[int | None, Query(ge=1, lt=2**62)] = None,
                           clientId: Annotated[str | None, Query(max_length=64)] = None):
        """One order's latest state by `orderId` or `clientId`, also once it has left the book
        (filled, cancelled, expired...), with its fills and their settlement status: what to ask
        after a timeout."""
        address = path_address(address)
        if (orderId is None) == (clientId is None):
            raise InvalidRequest("INVALID_REQUEST", "give exactly one of orderId and clientId")
        return venue.order_status(address, orderId, clientId)

    @app.get("/accounts/{address}/orders", responses=errors_doc(GET_ERRORS))
    async def open_orders(venue: V, address: str, after: Annotated[int, Query(ge=0, lt=2**62)] = 0,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 1000):
        """The account's open orders in order of id, `limit` at a time from the first id above
        `after`; `next` is the `after` of the following page (null on the last)."""
        address = path_address(address)
        orders = venue.engine.open_orders(address, after, limit + 1)
        more = len(orders) > limit
        orders = orders[:limit]
        return json_response({"orders": [order_json(o) for o in orders],
                              "next": orders[-1].id if more else None})

    @app.get("/accounts/{address}", responses=errors_doc(GET_ERRORS))
    async def account(venue: V, address: str):
        """The account: collateral, equity and margins as the ClearingHouse computes them (read at
        most once a block), positions with the size including fills not yet settled, open orders
        and recent fills with their settlement status."""
        address = path_address(address)
        try:
            return json_response(await venue.account_view(address))
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001: the view reads the chain; the node may be away
            raise VenueUnavailable("CHAIN_UNAVAILABLE", f"cannot read the account from the chain: "
                                                        f"{type(exc).__name__}") from exc

    @app.websocket("/hl/ws")
    async def hl_ws(socket: WebSocket):
        """Hyperliquid's websocket (venue/hl_ws.py): l2Book, bbo, allMids, trades, orderUpdates,
        userEvents and userFills subscriptions in Hyperliquid's shapes; ping/pong."""
        await HlSocket(socket.app.state.venue, socket).run()

    @app.websocket("/ws")
    async def ws(socket: WebSocket, account: str | None = None):
        """On connect: book snapshots (with each market's `bookSeq`) and, for `?account=`, its
        open orders and recent fills; then L2 deltas (`l2`, numbered per market by `bookSeq`),
        public trades, fill and order updates (all, or the account's). Every message carries
        `seq`, numbered per channel for this connection from 1, so a gap is visible. A client more
        than `ws_queue_limit` messages behind gets one `lagged` message naming the seqs it missed
        per channel and is closed (code 4008): reconnect for fresh snapshots. Signed orders may be
        posted on the same socket (see `post`)."""
        await socket.accept()
        if account is not None:
            try:
                account = checksum_address(account)
            except AddressError as exc:
                await socket.close(code=1008, reason=f"account: {exc}"[:120])  # policy violation
                return
        venue: Venue = socket.app.state.venue
        client = (socket.client.host if socket.client else "?")
        sub = venue.subscribe(account)
        acks: set[asyncio.Task] = set()

        def answer(request_id, data: dict) -> None:
            sub.offer({"channel": "post", "id": request_id, "data": data})

        def refuse(request_id, code: str, msg: str) -> None:
            answer(request_id, {"status": "error", "code": code, "msg": msg})

        async def answer_when_durable(request_id, data: dict) -> None:
            await venue.durable()  # journalled before it is acknowledged, as over HTTP
            answer(request_id, data)

        async def post(text: str) -> None:
            """`{"method": "post", "id": ..., "request": {"type": "order", "order": {...}}}`: an
            order as `POST /orders` takes it, answered on the `post` channel with the same id.
            Anything malformed is answered there too (INVALID_JSON, INVALID_REQUEST, OUT_OF_RANGE
            ...), and the connection stays open."""
            request_id = None
            try:
                message = json.loads(text)
                if not isinstance(message, dict):
                    raise ValueError("a post is a JSON object")
                request_id = message.get("id")
                if not (request_id is None or isinstance(request_id, (int, str))) or len(str(request_id)) > 64:
                    request_id = None
                    raise ValueError("id: an integer or a string of at most 64 characters")
                request = message.get("request")
                if message.get("method") != "post" or not isinstance(request, dict) or request.get("type") != "order":
                    raise ValueError("expected method 'post' with a request of type 'order'")
                order = OrderIn.model_validate(request.get("order"))
            except ValidationError as exc:
                _, body = validation_error(exc.errors(), ("request", "order"))
                return refuse(request_id, body["code"], body["msg"])
            except (ValueError, RecursionError) as exc:  # json's errors are ValueErrors
                code = "INVALID_JSON" if isinstance(exc, (json.JSONDecodeError, RecursionError)) else "INVALID_REQUEST"
                return refuse(request_id, code, str(exc).split("\n")[0][:200])
            if wait := throttle.retry_after(client):
                return refuse(request_id, "RATE_LIMITED", rate_limited(wait)[0]["msg"])
            try:
                status = await place_one(venue, order)
            except EngineError as exc:
                if exc.code in UNAUTHENTICATED:
                    throttle.fail(client)
                return refuse(request_id, exc.code, exc.msg)
            task = asyncio.create_task(answer_when_durable(request_id, status))
            acks.add(task)
            task.add_done_callback(acks.discard)

        async def read():
            """Posted orders in; a closed connection (the client left, or the server is shutting
            down) wakes the sender with None, so the handler ends. An error in one post is
            answered and logged; it never ends the reader."""
            try:
                while (message := await socket.receive())["type"] != "websocket.disconnect":
                    if message.get("text") is not None:
                        try:
                            await post(message["text"])
                        except Exception:  # noqa: BLE001: a bug; the connection lives on
                            log.exception("websocket post failed")
                            answer(None, {"status": "error", "code": "INTERNAL", "msg": "the venue failed on this "
                                                                                        "post (a bug; it is logged)"})
                    elif message.get("bytes") is not None:
                        refuse(None, "INVALID_REQUEST", "send posts as text frames of JSON")
            finally:
                sub.close()

        watcher = asyncio.create_task(read())
        try:
            await socket.send_json({"seq": sub.next_seq("venue"), "channel": "venue", "data": {
                "paused": venue.paused, "frozen": bool(venue.frozen_at), "frozenAt": venue.frozen_at or None}})
            for m in range(len(venue.markets)):
                bids, asks = venue.engine.l2(m, 50)
                await socket.send_json({"seq": sub.next_seq("book"), "channel": "book", "market": m,
                                        "bookSeq": venue.book_seq[m], "bids": [[str(p), str(s)] for p, s in bids],
                                        "asks": [[str(p), str(s)] for p, s in asks]})
            if account:
                await socket.send_json({"seq": sub.next_seq("openOrders"), "channel": "openOrders",
                                        "data": [order_json(o) for o in venue.engine.open_orders(account)]})
                await socket.send_json({"seq": sub.next_seq("recentFills"), "channel": "recentFills",
                                        "data": [r.as_json() for r in venue.account_fills(account)[-100:]]})
            while (message := await sub.queue.get()) is not None:
                if message is LAGGED:
                    missed = {channel: {"from": first, "to": last} for channel, (first, last) in sub.missed.items()}
                    await socket.send_json({"channel": "lagged", "data": {
                        "missed": missed, "queueLimit": sub.limit,
                        "msg": "this connection fell behind; reconnect for fresh snapshots"}})
                    await socket.close(code=4008, reason="lagged")
                    break
                await socket.send_json(message)
        except (WebSocketDisconnect, RuntimeError):  # the client left (RuntimeError: sent on a closed socket)
            pass
        finally:
            venue.subscribers.discard(sub)
            watcher.cancel()

    def openapi() -> dict:
        """FastAPI's schema plus the bodies the hot routes validate themselves (`parse`), so each
        `$ref` in `openapi_extra` resolves."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (OrderIn, BatchIn):
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in body.pop("$defs", {}).items():
                    components.setdefault(name, definition)
                components.setdefault(model.__name__, body)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app
