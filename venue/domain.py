"""Value types and integer units shared by the engine, the API, the keepers and the contracts.

Units (mirrored from contracts/libraries/MarginLib.sol):
  price     quote-token base units per whole base unit (ETH at 3,000 USDC = 3_000_000_000)
  size      base quantity in 1e-8 units (1 ETH = 100_000_000)
  notional  size * price // SIZE_SCALE, in quote-token base units (USDC has 6 decimals)
  rates     WAD (1e18 = 100 %) per hour; fees and margins in basis points
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

SIZE_SCALE = 10**8
BPS = 10_000
WAD = 10**18
GWEI_PER_ETH = 10**9
QUOTE_DECIMALS = 6

FLAG_POST_ONLY = 1
FLAG_IOC = 2
FLAG_REDUCE_ONLY = 4

# Order state per nonce on-chain (2 bits): fresh, partly filled, closed (filled or cancelled).
ORDER_FRESH, ORDER_PARTIAL, ORDER_CLOSED = 0, 1, 2


class RejectReason(IntEnum):
    """Why the clearinghouse skipped a fill; numbers match `RejectReason` in IClearingHouse.sol."""

    NONE = 0
    MARKET_NOT_LISTED = 1
    SAME_SIDE = 2
    SELF_TRADE = 3
    INVALID_SIGNATURE = 4
    EXPIRED = 5
    ORDER_CLOSED = 6
    OVERFILL = 7
    PRICE_NOT_CROSSING = 8
    TICK_SIZE = 9
    LOT_SIZE = 10
    MIN_NOTIONAL = 11
    PRICE_OUTSIDE_BAND = 12
    ORACLE_STALE = 13
    POST_ONLY_TAKER = 14
    IOC_MAKER = 15
    REDUCE_ONLY = 16
    POSITION_CAP = 17
    OPEN_INTEREST_CAP = 18
    INSUFFICIENT_MARGIN = 19
    MAINTENANCE_WORSENED = 20
    MARKET_REDUCE_ONLY = 21
    EXPOSURE_CAP = 22


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Listing parameters of a market, field for field the Solidity `MarketParams` struct."""

    symbol: str
    oracle_id: int
    tick_size: int
    lot_size: int
    min_notional: int
    band_bps: int
    maker_fee_bps: int
    taker_fee_bps: int
    im_bps_1: int
    im_bps_2: int
    tier_cap_1: int
    liquidation_penalty_bps: int
    max_position: int
    open_interest_cap: int
    max_funding_rate_per_hour: int
    # Not listing parameters: the exposure group (0: none) and its cap in quote units, set on the
    # chain by setExposureGroup (`deploy` does it for the groups named here).
    exposure_group: int = 0
    exposure_cap: int = 0

    def as_tuple(self) -> tuple:
        """The Solidity `MarketParams` struct (listMarket's argument)."""
        return (
            self.oracle_id, self.tick_size, self.lot_size, self.min_notional, self.band_bps,
            self.maker_fee_bps, self.taker_fee_bps, self.im_bps_1, self.im_bps_2, self.tier_cap_1,
            self.liquidation_penalty_bps, self.max_position, self.open_interest_cap,
            self.max_funding_rate_per_hour,
        )


@dataclass(frozen=True, slots=True)
class RiskParams:
    max_price_age: int
    insurance_share_bps: int
    liquidation_buffer_bps: int
    full_close_threshold_bps: int
    insurance_floor: int = 0  # quote units the insurance fund keeps; a shortfall beyond the rest is ADL'd
    escape_delay: int = 60  # seconds without a settled batch, with an exit request pending, before a freeze

    def as_tuple(self) -> tuple:
        return (self.max_price_age, self.insurance_share_bps, self.liquidation_buffer_bps,
                self.full_close_threshold_bps, self.insurance_floor, self.escape_delay)


def usdc(amount: int | str) -> int:
    """Whole or decimal USDC to base units, exactly: usdc("1.5") == 1_500_000."""
    from decimal import Decimal

    value = Decimal(str(amount)) * 10**QUOTE_DECIMALS
    if value != value.to_integral_value():
        raise ValueError(f"{amount} USDC has more than {QUOTE_DECIMALS} decimals")
    return int(value)


def base(amount: int | str) -> int:
    """Whole or decimal base units to size units: base("0.5") == 50_000_000."""
    from decimal import Decimal

    value = Decimal(str(amount)) * SIZE_SCALE
    if value != value.to_integral_value():
        raise ValueError(f"{amount} has more than 8 decimals")
    return int(value)


# The devnet's markets. ETH-PERP: tick 0.01 USDC, lot 0.001 ETH; BTC-PERP: tick 1 USDC, lot 0.0001 BTC.
# Tiers: 20x up to 1M USDC notional, 10x beyond. Maker rebate 1 bp, taker 5 bp, liquidation penalty 1 %.
# Both are exposure group 1 ("majors", moving together): at most 5M USDC of notional across the two.
MAJORS, MAJORS_CAP = 1, usdc(5_000_000)
DEVNET_MARKETS = (
    MarketParams(
        symbol="ETH-PERP", oracle_id=0, tick_size=10_000, lot_size=100_000, min_notional=usdc(10),
        band_bps=500, maker_fee_bps=-1, taker_fee_bps=5, im_bps_1=500, im_bps_2=1_000,
        tier_cap_1=usdc(1_000_000), liquidation_penalty_bps=100, max_position=base(1_000),
        open_interest_cap=base(10_000), max_funding_rate_per_hour=4 * WAD // 100,
        exposure_group=MAJORS, exposure_cap=MAJORS_CAP,
    ),
    MarketParams(
        symbol="BTC-PERP", oracle_id=1, tick_size=1_000_000, lot_size=10_000, min_notional=usdc(10),
        band_bps=500, maker_fee_bps=-1, taker_fee_bps=5, im_bps_1=500, im_bps_2=1_000,
        tier_cap_1=usdc(1_000_000), liquidation_penalty_bps=100, max_position=base(100),
        open_interest_cap=base(1_000), max_funding_rate_per_hour=4 * WAD // 100,
        exposure_group=MAJORS, exposure_cap=MAJORS_CAP,
    ),
)
DEVNET_RISK = RiskParams(
    max_price_age=60, insurance_share_bps=5_000, liquidation_buffer_bps=500, full_close_threshold_bps=5_000
)
ETH_ORACLE_ID = 0
WETH_HAIRCUT_BPS, WETH_MIN_HAIRCUT_BPS, WETH_MAX_HAIRCUT_BPS = 1_000, 500, 5_000
