"""FastAPI application: thin routes over `venue.service.Venue`. Errors are `{code, msg}` with a
4xx status; malformed requests never reach the engine."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from web3 import Web3

from ..engine import EngineError
from ..service import SignatureRejected, Venue, VenueUnavailable, order_json, trade_json
from ..settings import Settings
from ..signing import (
    ACTION_TYPE, ACTION_TYPES, EIP712_TYPES, ORDER_TYPE, Order, address_bytes, recover_action_signer, to_checksum,
)
from .schemas import BatchIn, BatchStatus, CancelIn, DeadmanIn, Error, ModifyIn, OrderIn, OrderStatus

log = logging.getLogger("venue.api")

STP = {"expireMaker": 0, "cancelTaker": 1, "cancelBoth": 2}
# Every error body is {code, msg}; listed so the OpenAPI schema documents them.
ERRORS = {status: {"model": Error} for status in (400, 401, 404, 422, 429, 500, 503)}


_json = json.JSONEncoder(separators=(",", ":")).encode


def json_response(data) -> Response:
    """A JSON body written directly (no response-model validation): the hot routes build their
    bodies from values the engine produced."""
    return Response(_json(data), media_type="application/json")


def invalid_json(errors: list, prefix: tuple = ()) -> dict:
    """{code, msg} for a request that fails validation: where, and what is wrong, of the first error."""
    first = errors[0] if errors else {}
    where = ".".join(str(x) for x in (*prefix, *first.get("loc", ())))
    return {"code": "INVALID_REQUEST", "msg": f"{where}: {first.get('msg', 'invalid')}"}


async def order_route(venue: Venue, handler, body: bytes) -> tuple[int, bytes]:
    """Runs a hot route's handler on the raw body: (status, JSON) with {code, msg} errors, the
    same bodies the FastAPI exception handlers write."""
    try:
        status, data = 200, await handler(venue, body)
    except EngineError as exc:
        status, data = exc.status, {"code": exc.code, "msg": exc.msg}
    except ValidationError as exc:
        status, data = 422, invalid_json(exc.errors(), ("body",))
    return status, _json(data).encode()


async def answer_http(venue: Venue, handler, body: bytes) -> Response:
    status, payload = await order_route(venue, handler, body)
    return Response(payload, status_code=status, media_type="application/json")


class HotRoutes:
    """Pure-ASGI middleware answering `POST /orders` and `POST /orders/batch` itself: the signed
    order path skips FastAPI's request, dependency and response machinery (about half of a
    single order's server time, `make bench-api`). Everything else passes through."""

    def __init__(self, app, routes: dict):
        self.app = app
        self.routes = routes

    async def __call__(self, scope, receive, send):
        handler = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            return await self.app(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, payload = await order_route(scope["app"].state.venue, handler, body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]})
        await send({"type": "http.response.body", "body": payload})


@functools.lru_cache(maxsize=1 << 16)
def checksum(address: str) -> str:
    """EIP-55 form of an address as clients send it (cached: the same accounts trade all day)."""
    return to_checksum(address_bytes(address))


def get_venue(request: Request) -> Venue:
    return request.app.state.venue


V = Annotated[Venue, Depends(get_venue)]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

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

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse({"code": "INTERNAL", "msg": f"{type(exc).__name__}: the venue failed on this request"},
                            status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        return JSONResponse(invalid_json(exc.errors()), status_code=422)

    async def authorize(venue: Venue, account: str, action: str, nonce: int, expiry: int, signature: str) -> None:
        """A signed Action: unexpired, not too far ahead, a nonce not seen from the account, signed
        by the account or its agent. The nonce is then remembered (durably, until the expiry)."""
        venue.check_action_terms(account, nonce, expiry)
        try:
            signer = recover_action_signer(account, action, nonce, expiry, venue.domain, bytes.fromhex(signature[2:]))
        except Exception as exc:  # an unrecoverable signature is the client's error, not ours
            raise SignatureRejected("BAD_SIGNATURE", f"signature does not recover: {exc}") from exc
        await venue.check_signer(account, address_bytes(signer))
        venue.remember_action(account, nonce, expiry)

    def to_order(o: OrderIn) -> Order:
        return Order(checksum(o.account), o.market, o.isBuy, int(o.price), int(o.size), o.flags, o.expiry,
                     o.nonce)

    async def place_one(venue: Venue, o: OrderIn, offload: bool = False) -> dict:
        return status_json(await venue.place(to_order(o), bytes.fromhex(o.signature[2:]), o.tif, o.clientId,
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

    @app.get("/health")
    async def health(venue: V):
        """The venue's state with numbers (see Venue.health); 503 when it is down (cancel-only)."""
        body = venue.health()
        return JSONResponse(body, status_code=503 if body["status"] == "down" else 200)

    @app.get("/markets")
    async def markets(venue: V):
        return [{"id": i, "symbol": p.symbol, "oracleId": p.oracle_id, "tickSize": str(p.tick_size),
                 "lotSize": str(p.lot_size), "minNotional": str(p.min_notional), "bandBps": p.band_bps,
                 "makerFeeBps": p.maker_fee_bps, "takerFeeBps": p.taker_fee_bps, "imBps": [p.im_bps_1, p.im_bps_2],
                 "tierCap": str(p.tier_cap_1), "maxPosition": str(p.max_position),
                 "oraclePrice": str(venue.engine.markets[i].oracle_price)} for i, p in enumerate(venue.markets)]

    @app.get("/eip712")
    async def eip712(venue: V):
        return {"domain": venue.domain.as_dict(), "types": {**EIP712_TYPES, "Action": ACTION_TYPES["Action"]},
                "primaryType": "Order", "orderType": ORDER_TYPE, "actionType": ACTION_TYPE}

    @app.get("/book/{market}", responses=ERRORS)
    async def book(venue: V, market: int, depth: Annotated[int, Query(ge=1, le=500)] = 20):
        if not 0 <= market < len(venue.markets):
            raise EngineError("UNKNOWN_MARKET", f"no market {market}")
        bids, asks = venue.engine.l2(market, depth)
        return {"market": market, "bids": [[str(p), str(s)] for p, s in bids],
                "asks": [[str(p), str(s)] for p, s in asks]}

    @app.get("/trades/{market}", responses=ERRORS)
    async def trades(venue: V, market: int):
        if not 0 <= market < len(venue.markets):
            raise EngineError("UNKNOWN_MARKET", f"no market {market}")
        return [trade_json(f) for f in reversed(venue.trades[market])]

    async def place_body(venue: Venue, body: bytes) -> dict:
        status = await place_one(venue, OrderIn.model_validate_json(body), offload=True)
        await venue.durable()  # journalled before it is acknowledged
        return status

    async def place_batch_body(venue: Venue, body: bytes) -> dict:
        orders = BatchIn.model_validate_json(body).orders
        results = await venue.place_many([(to_order(o), bytes.fromhex(o.signature[2:]), o.tif, o.clientId, STP[o.stp])
                                          for o in orders])
        await venue.durable()
        return {"statuses": [{"status": "error", "code": r.code, "msg": r.msg} if isinstance(r, EngineError)
                             else status_json(r) for r in results]}

    # The order routes are answered by `HotRoutes` (below) before FastAPI's routing; these
    # declarations give them their OpenAPI entries and serve them if the middleware is removed.
    @app.post("/orders", response_model=OrderStatus, responses=ERRORS, openapi_extra=body_schema(OrderIn))
    async def place(request: Request):
        return await answer_http(request.app.state.venue, place_body, await request.body())

    @app.post("/orders/batch", response_model=BatchStatus, responses=ERRORS, openapi_extra=body_schema(BatchIn))
    async def place_batch(request: Request):
        return await answer_http(request.app.state.venue, place_batch_body, await request.body())

    app.add_middleware(HotRoutes, routes={"/orders": place_body, "/orders/batch": place_batch_body})

    @app.post("/modify", response_model=OrderStatus, responses=ERRORS)
    async def modify(venue: V, body: ModifyIn):
        o = body.order
        ack = await venue.modify(body.orderId, to_order(o), bytes.fromhex(o.signature[2:]), o.tif, o.clientId)
        await venue.durable()
        return json_response(status_json(ack))

    @app.post("/cancel", responses=ERRORS)
    async def cancel(venue: V, body: CancelIn):
        account = Web3.to_checksum_address(body.account)
        if body.orderId is not None:
            action = f"cancel:{body.orderId}"
        elif body.clientId is not None:
            action = f"cancelClient:{body.clientId}"
        else:
            action = f"cancelAll:{'*' if body.market is None else body.market}"
        await authorize(venue, account, action, body.nonce, body.expiry, body.signature)
        if body.orderId is None and body.clientId is None:
            orders = venue.engine.cancel_all(venue.now_ms(), account, body.market)
            await venue.durable()
            return {"cancelled": [o.id for o in orders]}
        order = venue.cancel(account, body.orderId, body.clientId)
        await venue.durable()
        return {"cancelled": [order.id]}

    @app.post("/deadman", responses=ERRORS)
    async def deadman(venue: V, body: DeadmanIn):
        account = Web3.to_checksum_address(body.account)
        await authorize(venue, account, f"deadman:{body.at}", body.nonce, body.expiry, body.signature)
        venue.engine.schedule_cancel(venue.now_ms(), account, body.at)
        await venue.durable()
        return {"account": account, "cancelAt": body.at}

    @app.get("/accounts/{address}/order", responses=ERRORS)
    async def order_status(venue: V, address: str, orderId: Annotated[int | None, Query(ge=1, lt=2**62)] = None,
                           clientId: Annotated[str | None, Query(max_length=128)] = None):
        """One order's latest state by `orderId` or `clientId`, also once it has left the book
        (filled, cancelled, expired...), with its fills and their settlement status: what to ask
        after a timeout."""
        if not Web3.is_address(address):
            raise EngineError("INVALID_ADDRESS", f"{address} is not an address")
        if (orderId is None) == (clientId is None):
            raise EngineError("BAD_REQUEST", "give exactly one of orderId and clientId")
        return venue.order_status(Web3.to_checksum_address(address), orderId, clientId)

    @app.get("/accounts/{address}", responses=ERRORS)
    async def account(venue: V, address: str):
        if not Web3.is_address(address):
            raise EngineError("INVALID_ADDRESS", f"{address} is not an address")
        try:
            return await asyncio.to_thread(venue.account_view, Web3.to_checksum_address(address))
        except Exception as exc:  # noqa: BLE001: the view reads the chain; the node may be away
            raise VenueUnavailable("CHAIN_UNAVAILABLE", f"cannot read the account from the chain: "
                                                        f"{type(exc).__name__}") from exc

    @app.websocket("/ws")
    async def ws(socket: WebSocket, account: str | None = None):
        """On connect: book snapshots (with each market's `bookSeq`) and, for an account, its open
        orders and recent fills; then L2 deltas (`l2`, numbered per market by `bookSeq`), public
        trades, fill and order updates (all, or the account's); every message carries the
        connection's own `seq`. Signed orders may be posted on the same socket (see `post`)."""
        await socket.accept()
        venue: Venue = socket.app.state.venue
        queue: asyncio.Queue = asyncio.Queue()
        venue.subscribers.add(queue)

        acks: set[asyncio.Task] = set()

        def answer(request_id, data: dict) -> None:
            queue.put_nowait({"channel": "post", "id": request_id, "data": data})

        async def answer_when_durable(request_id, data: dict) -> None:
            await venue.durable()  # journalled before it is acknowledged, as over HTTP
            answer(request_id, data)

        async def post(text: str) -> None:
            """`{"method": "post", "id": ..., "request": {"type": "order", "order": {...}}}`: an
            order as `POST /orders` takes it, answered on the `post` channel with the same id."""
            request_id = None
            try:
                message = json.loads(text)
                request_id = message.get("id")
                request = message["request"]
                if message.get("method") != "post" or request.get("type") != "order":
                    raise ValueError("expected method 'post' with a request of type 'order'")
                order = OrderIn.model_validate(request["order"])
            except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
                answer(request_id, {"status": "error", "code": "INVALID_REQUEST", "msg": str(exc).split("\n")[0]})
                return
            try:
                status = await place_one(venue, order)
            except EngineError as exc:
                answer(request_id, {"status": "error", "code": exc.code, "msg": exc.msg})
                return
            task = asyncio.create_task(answer_when_durable(request_id, status))
            acks.add(task)
            task.add_done_callback(acks.discard)

        async def read():
            """Posted orders in; a closed connection (the client left, or the server is shutting
            down) wakes the sender with None, so the handler ends."""
            try:
                while (message := await socket.receive())["type"] != "websocket.disconnect":
                    if message.get("text"):
                        await post(message["text"])
            finally:
                queue.put_nowait(None)

        watcher = asyncio.create_task(read())
        seq = 0
        try:
            for m in range(len(venue.markets)):
                bids, asks = venue.engine.l2(m, 50)
                seq += 1
                await socket.send_json({"seq": seq, "channel": "book", "market": m, "bookSeq": venue.book_seq[m],
                                        "bids": [[str(p), str(s)] for p, s in bids],
                                        "asks": [[str(p), str(s)] for p, s in asks]})
            if account:
                seq += 1
                await socket.send_json({"seq": seq, "channel": "openOrders",
                                        "data": [order_json(o) for o in venue.engine.open_orders(account)]})
                seq += 1
                await socket.send_json({"seq": seq, "channel": "recentFills",
                                        "data": [r.as_json() for r in venue.account_fills(account)[-100:]]})
            while (message := await queue.get()) is not None:
                data = message["data"]
                private = message["channel"] in ("fills", "orders")
                if account and private and account not in (data.get("account"), data.get("maker"), data.get("taker")):
                    continue
                seq += 1
                await socket.send_json({"seq": seq, **message})
        except WebSocketDisconnect:
            pass
        finally:
            venue.subscribers.discard(queue)
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
