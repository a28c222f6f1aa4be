"""Request and response bodies. Prices and sizes travel as decimal strings of integer units
(see venue/domain.py), as market makers know them from Hyperliquid's API.

Validation errors carry a type the API maps to its codes (`app.validation_error`): a number out
of its signed width is `out_of_range` (OUT_OF_RANGE, 422, naming the field), an address with a
wrong EIP-55 checksum `address` (INVALID_ADDRESS)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from ..signing import AddressError, checksum_address

UINT64 = 1 << 64


def _uint64_string(v: object) -> str:
    """A decimal string of an integer in [0, 2^64): what the signed Order's uint64 fields take."""
    if type(v) is not str or not (v.isascii() and v.isdigit()):
        raise PydanticCustomError("int_string", "must be a decimal string of a non-negative integer, e.g. \"3000000000\"")
    digits = v.lstrip("0")
    if len(digits) > 20 or int(digits or "0") >= UINT64:  # checked by length first: no 5,000-digit int()
        raise PydanticCustomError("out_of_range", "must be below 2^64 (a uint64 in the signed order)")
    return v


def _address(v: object) -> str:
    """An address, returned in its EIP-55 form: lower-case is accepted, mixed case must be a
    valid checksum."""
    if type(v) is not str:
        raise PydanticCustomError("address", "must be a string: 0x followed by 40 hex digits")
    try:
        return checksum_address(v)
    except AddressError as exc:
        raise PydanticCustomError("address", str(exc)) from None


def _market_ref(v: object) -> int | str:
    if type(v) is int:
        if not 0 <= v < 1 << 16:
            raise PydanticCustomError("out_of_range", "a market id is a uint16")
        return v
    if type(v) is str and 0 < len(v) <= 32 and v.isascii():
        return v
    raise PydanticCustomError("market", "a market id (integer) or symbol (e.g. \"ETH-PERP\")")


Uint64Str = Annotated[str, BeforeValidator(_uint64_string), WithJsonSchema(
    {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "a decimal string of an integer below 2^64"})]
Address = Annotated[str, BeforeValidator(_address), WithJsonSchema(
    {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$",
     "description": "20-byte hex address: lower-case, or mixed-case with a valid EIP-55 checksum"})]
MarketRef = Annotated[int | str, BeforeValidator(_market_ref), WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 65535}, {"type": "string", "maxLength": 32}],
     "description": "market id (0) or symbol (\"ETH-PERP\")"})]
Signature = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{128}([0-9a-fA-F]{2})?$",
                                 description="EIP-712 signature: 64-byte compact (r, vs) or 65-byte (r, s, v), "
                                             "v 27/28 (eth-account's default) or 0/1")]
Uint64 = Annotated[int, Field(ge=0, lt=UINT64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderIn(Strict):
    account: Address
    market: MarketRef
    isBuy: bool
    price: Uint64Str = Field(description="limit price: quote base units (1e-6 USDC) per whole base unit")
    size: Uint64Str = Field(description="size in 1e-8 base units")
    flags: int = Field(0, ge=0, le=7, description="1 post-only, 2 IOC, 4 reduce-only (as signed)")
    expiry: int = Field(0, ge=0, lt=2**32, description="unix seconds, 0 for none (as signed)")
    nonce: Uint64 = Field(description="the order's nonce (as signed): once per account")
    signature: Signature
    tif: Literal["Gtc", "Ioc", "Fok", "Alo", "Market"] = Field(
        "Gtc", description="Market: an IOC (signed with the IOC flag) bounded by the signed price and by the "
                           "venue's slippage cap from the oracle price, whichever is tighter")
    clientId: str | None = Field(None, max_length=64)
    stp: Literal["expireMaker", "cancelTaker", "cancelBoth"] = "expireMaker"


class TriggerIn(Strict):
    order: OrderIn = Field(description="the order to enter when the trigger fires, signed as any order; its signed "
                                       "price bounds what can settle. Market triggers (isMarket) are signed IOC")
    triggerPrice: Uint64Str = Field(description="the mark (oracle) price that fires it, quote base units")
    tpsl: Literal["tp", "sl"] = Field(description="sl: a sell fires at or below the trigger, a buy at or above; "
                                                  "tp: the other way")
    isMarket: bool = Field(True, description="fires as a market order (IOC within the slippage cap); false: as a "
                                             "limit order at the signed price with the order's tif")
    attached: bool = Field(False, description="cancelled once the account's position in the market is flat "
                                              "(Hyperliquid's positionTpsl)")


class BatchIn(Strict):
    orders: list[OrderIn] = Field(min_length=1, max_length=100, description="each order is validated, checked and "
                                  "answered on its own: one bad order is refused alone")


class BatchEnvelope(Strict):
    """A batch whose orders are validated one by one (when the batch as a whole is not valid)."""

    orders: list[Any] = Field(min_length=1, max_length=100)


class ModifyIn(Strict):
    orderId: int = Field(ge=1, lt=2**62, description="the resting order to replace")
    order: OrderIn = Field(description="the new order, signed; same price, side and a size no larger than what "
                                       "remains keeps queue priority")


class CancelIn(Strict):
    account: Address
    orderId: int | None = Field(None, ge=1, lt=2**62)
    orderIds: list[Annotated[int, Field(ge=1, lt=2**62)]] | None = Field(
        None, min_length=1, max_length=100, description="several orders at once: the Action's text is "
                                                        "`cancel:<id>,<id>,...` in this order")
    clientId: str | None = Field(None, max_length=64)
    market: MarketRef | None = None
    signature: Signature = Field(description="EIP-712 `Action` signature (see GET /eip712)")
    nonce: Uint64 = Field(description="the Action's nonce: never twice from an account while unexpired "
                                      "(a ms timestamp does)")
    expiry: Uint64 = Field(description="unix seconds after which this request is refused (at most a day ahead)")


class BulkIn(Strict):
    """What a quoting bot changes at once: cancels, then modifications, then new orders, each
    item answered on its own."""

    cancel: CancelIn | None = Field(None, description="a signed cancel naming `orderIds` (or one `orderId`)")
    modify: list[ModifyIn] = Field(default_factory=list, max_length=100)
    orders: list[OrderIn] = Field(default_factory=list, max_length=100)


class DeadmanIn(Strict):
    account: Address
    at: int = Field(ge=0, lt=2**62, description="unix ms at which every order is cancelled, 0 to disarm")
    signature: Signature
    nonce: Uint64
    expiry: Uint64


class OrderStatus(BaseModel):
    status: Literal["resting", "filled", "cancelled", "error"]
    orderId: int | None = None
    filled: str | None = None
    remaining: str | None = None
    reason: str | None = None
    code: str | None = None
    msg: str | None = None


class BatchStatus(BaseModel):
    statuses: list[OrderStatus]


class Cancelled(BaseModel):
    cancelled: list[int] = Field(description="ids of the orders taken off the book")


class CancelStatus(BaseModel):
    status: Literal["cancelled", "error"]
    orderId: int
    code: str | None = None
    msg: str | None = None


class BulkStatus(BaseModel):
    cancelled: list[CancelStatus]
    modified: list[OrderStatus]
    placed: list[OrderStatus]


class DeadmanSet(BaseModel):
    account: str
    cancelAt: int = Field(description="unix ms; 0: disarmed")


class Error(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. BAD_SIGNATURE, OUT_OF_RANGE")
    msg: str = Field(description="what was wrong, for a human")
