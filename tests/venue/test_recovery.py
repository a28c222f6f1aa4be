"""The signature recovery worker: same answers as recovering on the loop, bad signatures
included; a worker that dies loses nothing; back-pressure falls back to the loop."""

import asyncio
import random

from venue import recovery
from venue.recovery import RecoveryWorker
from venue.signing import recover_many, sign_digest


def pairs(seed: int, n: int) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        digest = rng.randbytes(32)
        sig = sign_digest(digest, rng.randbytes(32))
        if i % 5 == 3:
            sig = sig[:40]  # malformed
        if i % 5 == 4:
            sig = bytes(32) + sig[32:]  # r = 0: does not recover
        out.append((digest, sig))
    return out


def run(coro):
    return asyncio.run(coro)


def test_worker_answers_like_the_loop_in_order_with_trips_in_flight():
    async def go():
        worker = RecoveryWorker(asyncio.get_running_loop())
        try:
            batches = [pairs(seed, 20) for seed in range(6)]
            answers = await asyncio.gather(*(worker.recover(b) for b in batches))  # six trips in flight
            assert answers == [recover_many(b) for b in batches]
            assert worker.alive and {type(a) for a in answers[0]} == {bytes, str}
        finally:
            worker.close()
        assert worker.process.returncode == 0  # ended on its own when the pipe closed

    run(go())


def test_a_dead_worker_loses_nothing_and_later_work_runs_on_the_loop():
    async def go():
        worker = RecoveryWorker(asyncio.get_running_loop())
        try:
            await worker.recover([])  # up and answering
            batch = pairs(7, 30)
            in_flight = worker.recover(batch)
            worker.process.kill()  # by its own handle
            assert await asyncio.wait_for(in_flight, 10) == recover_many(batch)
            # The trip may have been answered before the kill landed: the death shows when the
            # pipe closes (polled with a deadline, not assumed at once).
            deadline = asyncio.get_running_loop().time() + 10
            while worker.alive and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            assert not worker.alive
            later = pairs(8, 5)
            assert await worker.recover(later) == recover_many(later)
        finally:
            worker.close()

    run(go())


def test_past_the_in_flight_limit_work_is_recovered_on_the_loop(monkeypatch):
    monkeypatch.setattr(recovery, "MAX_IN_FLIGHT", 0)

    async def go():
        worker = RecoveryWorker(asyncio.get_running_loop())
        try:
            batch = pairs(9, 10)
            trip = worker.recover(batch)
            assert trip.done() and trip.result() == recover_many(batch)  # answered without a trip
        finally:
            worker.close()

    run(go())


def test_single_pairs_of_one_loop_turn_share_a_trip_and_one_alone_stays_on_the_loop(monkeypatch):
    trips = []

    async def go():
        worker = RecoveryWorker(asyncio.get_running_loop())
        sent = worker.recover
        monkeypatch.setattr(worker, "recover", lambda p: trips.append(len(p)) or sent(p))
        try:
            group = pairs(10, 6)
            answers = await asyncio.gather(*(worker.recover_one(d, s) for d, s in group))
            assert answers == recover_many(group)  # bad ones included, in order
            (alone,) = pairs(11, 1)
            assert await worker.recover_one(*alone) == recover_many([alone])[0]
        finally:
            worker.close()

    run(go())
    assert trips == [6]  # the six shared one trip; the lone pair made none
