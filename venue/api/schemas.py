"""Request and response bodies. Prices and sizes travel as decimal strings of integer units
(see venue/domain.py), as market makers know them from Hyperliquid's API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

IntStr = str


def _int_string(v: str) -> str:
    if not isinstance(v, str) or not v.lstrip("-").isdigit():
        raise ValueError("must be a decimal string of an integer")
    return v


class OrderIn(BaseModel):
    account: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    market: int = Field(ge=0, lt=2**16)
    isBuy: bool
    price: IntStr = Field(description="limit price in quote base units per whole base unit")
    size: IntStr = Field(description="size in 1e-8 base units")
    flags: int = Field(0, ge=0, le=7, description="1 post-only, 2 IOC, 4 reduce-only (as signed)")
    expiry: int = Field(0, ge=0, lt=2**32, description="unix seconds, 0 for none (as signed)")
    nonce: int = Field(ge=0, lt=2**56)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{128}([0-9a-fA-F]{2})?$",
                           description="EIP-712 signature: 64-byte compact (r, vs) or 65-byte (r, s, v)")
    tif: Literal["Gtc", "Ioc", "Fok", "Alo", "Market"] = Field(
        "Gtc", description="Market: an IOC (signed with the IOC flag) bounded by the signed price and by the "
                           "venue's slippage cap from the oracle price, whichever is tighter")
    clientId: str | None = Field(None, max_length=64)
    stp: Literal["expireMaker", "cancelTaker", "cancelBoth"] = "expireMaker"

    _ints = field_validator("price", "size")(_int_string)


class BatchIn(BaseModel):
    orders: list[OrderIn] = Field(min_length=1, max_length=100)


class ModifyIn(BaseModel):
    orderId: int = Field(description="the resting order to replace")
    order: OrderIn = Field(description="the new order, signed; same price, side and a size no larger than what "
                                       "remains keeps queue priority")


class CancelIn(BaseModel):
    account: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    orderId: int | None = None
    clientId: str | None = None
    market: int | None = None
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="EIP-712 Action signature (65 bytes)")
    nonce: int = Field(ge=0, lt=2**64, description="the Action's nonce: never twice from an account while unexpired "
                                                   "(a ms timestamp does)")
    expiry: int = Field(ge=0, lt=2**64, description="unix seconds after which this request is refused (at most a day "
                                                    "ahead)")


class DeadmanIn(BaseModel):
    account: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    at: int = Field(ge=0, lt=2**62, description="unix ms at which every order is cancelled, 0 to disarm")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")
    nonce: int = Field(ge=0, lt=2**64)
    expiry: int = Field(ge=0, lt=2**64)


class OrderStatus(BaseModel):
    status: Literal["resting", "filled", "cancelled", "error"]
    orderId: int | None = None
    filled: IntStr | None = None
    remaining: IntStr | None = None
    reason: str | None = None
    code: str | None = None
    msg: str | None = None


class BatchStatus(BaseModel):
    statuses: list[OrderStatus]


class Error(BaseModel):
    code: str
    msg: str
