"""Signature recovery beside the event loop: a worker process (`python -m venue.recovery`, its
stdin and stdout the pipe) that turns (digest, signature) pairs into signers, so the second
core does the secp256k1 work (~43 µs an order here) while the loop parses, matches and answers.
It is started as its own program rather than with multiprocessing's spawn, which would import
the venue's main module again in the child (a script that starts the server without a
`__main__` guard would start it twice).

One trip is one pipe message each way (marshal: a list of pairs in, a list of 20-byte signers
or error texts out), answered in order. A batch of orders makes one trip; single orders over
HTTP that ask in the same turn of the event loop share one (`recover_one`, the way the
journal's group commit shares a write), and one alone is recovered on the loop. A trip costs the
loop ~36 µs with one pair in it and ~6 µs a pair with eight (the pipe and marshal, measured),
against ~41 µs to recover one on the loop itself.

Measured with `make bench-api`: over 32 connections with one request each, single orders went
from ~4.9k to ~6.1k/s (the loop's CPU per order 190 -> 142 µs). A websocket's posts are
handled one after another, so each would wait a round trip: they recover on the loop (sending
them too took websocket posting from 5.5k to 3.7k/s). With 8 connections pipelining 4 each,
which uvicorn serves one request at a time per connection, the gain is smaller (~3.6k ->
~4.2k/s).

Back-pressure: with `MAX_IN_FLIGHT` trips unanswered, new work is recovered on the loop, so the
pipe never fills. If the worker dies, the pairs it held are recovered on the loop and every
later one too; nothing waits forever.
"""

from __future__ import annotations

import asyncio
import logging
import marshal
import os
import subprocess
import sys
from collections import deque
from multiprocessing.connection import Connection

from .signing import recover_many

log = logging.getLogger("venue.recovery")

MAX_IN_FLIGHT = 64


def main() -> int:
    """The worker: answers trips (framed as multiprocessing connections frame them) from stdin
    on stdout until the venue closes its end."""
    trips, answers = Connection(os.dup(0), writable=False), Connection(os.dup(1), readable=False)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing else may write into the answer pipe
    while True:
        try:
            data = trips.recv_bytes()
        except (EOFError, OSError):
            return 0
        answers.send_bytes(marshal.dumps(recover_many(marshal.loads(data))))


class RecoveryWorker:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.process = subprocess.Popen([sys.executable, "-m", "venue.recovery"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
        self._trips = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self._answers = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()  # the connections hold their own copies of the pipe ends
        self.process.stdout.close()
        self._loop = loop
        self._waiting: deque[tuple[asyncio.Future, list]] = deque()  # trips in flight, oldest first
        self._queued: list[tuple[tuple[bytes, bytes], asyncio.Future]] = []  # single pairs of this loop turn
        self.alive = True
        loop.add_reader(self._answers.fileno(), self._on_answer)

    def recover(self, pairs: list[tuple[bytes, bytes]]) -> asyncio.Future:
        """A future of `recover_many(pairs)`, computed in the worker (one trip)."""
        fut = self._loop.create_future()
        if not self.alive or len(self._waiting) >= MAX_IN_FLIGHT:
            fut.set_result(recover_many(pairs))
            return fut
        try:
            self._trips.send_bytes(marshal.dumps(pairs))
        except OSError:
            self._died()
            fut.set_result(recover_many(pairs))
            return fut
        self._waiting.append((fut, pairs))
        return fut

    def recover_one(self, digest: bytes, signature: bytes) -> asyncio.Future:
        """A future of one signer (20 bytes, or the error text). Pairs asked for in the same turn
        of the event loop travel together; one alone is recovered on the loop (a trip costs the
        loop about what recovering it does)."""
        fut = self._loop.create_future()
        self._queued.append(((digest, signature), fut))
        if len(self._queued) == 1:
            self._loop.call_soon(self._send_queued)
        return fut

    def _send_queued(self) -> None:
        group, self._queued = self._queued, []
        if len(group) == 1:
            (pair, fut), = group
            fut.set_result(recover_many([pair])[0])
            return
        trip = self.recover([pair for pair, _ in group])

        def deliver(done: asyncio.Future) -> None:
            for (_, fut), signer in zip(group, done.result()):
                if not fut.done():
                    fut.set_result(signer)

        trip.add_done_callback(deliver)

    def _on_answer(self) -> None:
        try:
            while self._answers.poll():
                answer = marshal.loads(self._answers.recv_bytes())
                fut, _ = self._waiting.popleft()
                if not fut.done():
                    fut.set_result(answer)
        except (EOFError, OSError):
            self._died()

    def _died(self) -> None:
        if not self.alive:
            return
        log.error("the signature recovery worker is gone; recovering on the event loop from now on")
        self.alive = False
        self._loop.remove_reader(self._answers.fileno())
        while self._waiting:
            fut, pairs = self._waiting.popleft()
            if not fut.done():
                fut.set_result(recover_many(pairs))

    def close(self, timeout: float = 5) -> None:
        """Closes the pipe (the worker ends on EOF) and waits for it; terminates it (by its own
        process id) if it does not end in time."""
        if self.alive:
            self._loop.remove_reader(self._answers.fileno())
            self.alive = False
        self._trips.close()
        self._answers.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout)


if __name__ == "__main__":
    sys.exit(main())
