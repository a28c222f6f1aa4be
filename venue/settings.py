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
