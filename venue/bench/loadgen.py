"""A lean HTTP/1.1 load generator for the API benchmark: requests are encoded before the clock
starts, each keep-alive connection keeps `depth` requests in flight (HTTP pipelining, which
uvicorn serves in order), and responses are parsed just enough to be counted. The client must
cost far less than the server it measures: both share this machine's two cores."""

from __future__ import annotations

import asyncio
import json
import time


def encode_post(path: str, payload: dict, host: str = "127.0.0.1") -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    return status, await reader.readexactly(length)


async def _connection(host: str, port: int, requests: list[bytes], depth: int, out: list) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    sent = 0
    for _ in range(min(depth, len(requests))):
        writer.write(requests[sent])
        sent += 1
    for _ in range(len(requests)):
        out.append(await _read_response(reader))
        if sent < len(requests):
            writer.write(requests[sent])
            sent += 1
    writer.close()


async def _run(host: str, port: int, requests: list[bytes], connections: int, depth: int):
    results: list[list] = [[] for _ in range(connections)]
    start = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, requests[c::connections], depth, results[c])
                           for c in range(connections)))
    return time.perf_counter() - start, [r for rs in results for r in rs]


def hammer(host: str, port: int, requests: list[bytes], *, connections: int = 8, depth: int = 4):
    """Sends every request; returns (seconds, [(status, body), ...])."""
    try:
        import uvloop

        return uvloop.run(_run(host, port, requests, connections, depth))
    except ImportError:
        return asyncio.run(_run(host, port, requests, connections, depth))
