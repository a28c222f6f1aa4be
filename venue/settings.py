"""Venue settings (environment variables prefixed VENUE_, e.g. VENUE_PORT=8001)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VENUE_")

    rpc_url: str | None = None  # default: the deployment file's "rpc", else http://127.0.0.1:8545
    deployment: str = "devnet/deployment.json"
    operator_key: str = ""  # defaults to the deployment file's operator key
    host: str = "127.0.0.1"
    port: int = 8000
    journal: str = "devnet/journal.sqlite"
    batch_max_fills: int = 64  # a batch goes out when it holds this many fills ...
    batch_interval_ms: int = 100  # ... or when its oldest fill is this old
    poll_interval_ms: int = 100  # chain events and receipts
    priority_fee_gwei: float = 1.0
    max_fee_gwei: float = 200.0
    # 1: batches recover their signatures in a worker process beside the event loop
    # (venue/recovery.py); 0: on the loop.
    recovery_workers: int = 1
    # Health and cancel-only mode (GET /health): settlement is "stalled" when the oldest fill not yet
    # settled is older than `stall_blocks` blocks or `stall_seconds` seconds, or the RPC has not
    # answered the probe (every `probe_interval_ms`, timeout `rpc_timeout_s`) for `rpc_down_s`
    # seconds; then the venue is "down" and cancel-only until it recovers by itself.
    stall_blocks: int = 10
    stall_seconds: float = 15.0
    probe_interval_ms: int = 500
    rpc_timeout_s: float = 2.0
    rpc_down_s: float = 3.0
    lag_blocks_degraded: int = 3  # "degraded" when the venue's processed block trails the head by more
    clock_interval_ms: int = 10  # how often the clock checks for due expiries and dead-man's switches
    # Memory bounds (`make bench-soak`): order nonces remembered per account (a new one must lie
    # above the lowest of them: venue/nonces.py), settled fills and finished orders kept in memory
    # for the account views and order status (older ones live in the journal).
    # Per-account order rate (a token bucket: `orders_per_s` refill, `orders_burst` deep); orders,
    # modifications and their re-placements count. Market makers usually get more (bench-mm: 20,000).
    orders_per_s: int = 1_000
    orders_burst: int = 2_000
    # Alerts (venue/alerts.py; GET /alerts, the `alerts` websocket channel, the webhook) and the
    # thresholds of their rules.
    alert_interval_s: float = 2.0
    alert_webhook: str = ""  # POSTed every raised, updated and resolved alert as JSON
    alert_oracle_stale_s: float = 45.0
    alert_near_liq_pct: float = 2.0  # an account within this % of its notional from maintenance margin...
    alert_near_liq_notional_usdc: float = 100_000.0  # ...and such accounts together holding more than this
    alert_insurance_move_pct: float = 10.0  # the move against every position...
    alert_insurance_cover_pct: float = 100.0  # ...whose shortfall the insurance fund should cover this share of
    alert_unsettled_blocks: int = 5
    alert_rejections: int = 5
    alert_rejections_window_s: float = 60.0
    alert_quotes_pulled_s: float = 10.0
    # The Hyperliquid-compatible API (venue/hl_exchange.py): the gateway key that re-signs its
    # orders (default: the deployment file's "gateway" key), and whether Hyperliquid mainnet
    # signatures (source "a", ccxt without sandbox mode) are accepted too.
    hl_gateway_key: str = ""
    hl_accept_mainnet: bool = False
    nonce_window: int = 1_000
    fills_in_memory: int = 50_000
    order_states_in_memory: int = 100_000
    # API limits: request bodies above `max_body_bytes` get 413 before they are read whole; a
    # client address whose requests fail authentication (a bad signature, an account with nothing
    # deposited) more than `auth_fail_burst` times, refilled at `auth_fail_per_s` a second, gets 429
    # with Retry-After until it has credit again; a websocket subscriber more than
    # `ws_queue_limit` messages behind is sent `lagged` and closed.
    max_body_bytes: int = 1 << 20
    auth_fail_burst: int = 50
    auth_fail_per_s: float = 10.0
    ws_queue_limit: int = 10_000
