"""HTTP and websocket API (FastAPI)."""
