"""The chain poller backs off while the node fails and is back to its interval once it answers
(a venue whose node is gone used to poll and log a traceback every 100 ms)."""

import asyncio
import time
from types import SimpleNamespace

from venue.service import POLL_BACKOFF_MAX_S, Venue


def test_the_chain_poller_backs_off_while_the_node_fails_and_resumes_its_interval():
    calls: list[float] = []
    node_up = {"at": None}

    async def poll_once():
        calls.append(time.monotonic())
        if node_up["at"] is None or time.monotonic() < node_up["at"]:
            raise ConnectionError("node gone")

    fake = SimpleNamespace(settings=SimpleNamespace(poll_interval_ms=20), poll_once=poll_once)

    async def run():
        task = asyncio.create_task(Venue._chain_poller(fake))
        await asyncio.sleep(1.5)
        failing = len(calls)
        node_up["at"] = time.monotonic()
        await asyncio.sleep(POLL_BACKOFF_MAX_S + 0.5)
        recovered = len(calls)
        await asyncio.sleep(0.5)
        task.cancel()
        return failing, recovered, len(calls)

    failing, recovered, end = asyncio.run(run())
    assert failing <= 8  # 20, 40, 80, ... ms: 7 tries in 1.5 s instead of 75
    assert end - recovered >= 15  # back to every 20 ms once the node answers
