"""The journal rebuilds the identical engine, and survives the engine being killed mid-load."""

import json
import random
import signal
import subprocess
import sys

from venue.domain import DEVNET_MARKETS, FLAG_POST_ONLY, usdc
from venue.engine import IOC, Engine, EngineError, Limits
from venue.journal import Journal, replay

PX = usdc(3_000)
ACCOUNTS = [f"0x{i:040x}" for i in range(1, 9)]


def random_session(engine: Engine, rng: random.Random, n: int) -> None:
    engine.set_oracle_price(0, 0, PX)
    for a in ACCOUNTS:
        engine.set_account(0, a, usdc(1_000_000), {})
    for i in range(n):
        ts = 1 + i
        a = rng.choice(ACCOUNTS)
        r = rng.random()
        try:
            if r < 0.55:
                engine.place(ts, a, 0, rng.random() < 0.5, PX + rng.randrange(-300, 300) * 10_000,
                             rng.randrange(1, 50) * 100_000, tif=IOC if rng.random() < 0.1 else 0,
                             flags=FLAG_POST_ONLY if rng.random() < 0.1 else 0,
                             client_id=f"c{i}" if rng.random() < 0.3 else None,
                             expiry=ts + rng.randrange(5, 200) if rng.random() < 0.2 else 0)
            elif r < 0.8 and engine.orders:
                order = rng.choice(list(engine.orders.values()))
                if rng.random() < 0.5:
                    engine.cancel(ts, order.account, order.id)
                else:
                    engine.modify(ts, order.account, order.id, order.price, max(100_000, order.remaining - 100_000))
            elif r < 0.85:
                engine.schedule_cancel(ts, a, ts + rng.randrange(10, 100))
            elif r < 0.9:
                engine.set_oracle_price(ts, 0, PX + rng.randrange(-50, 50) * 10_000)
            else:
                engine.cancel_all(ts, a)
        except EngineError:
            pass
        if engine.journal is not None and rng.random() < 0.3:
            engine.journal.commit()


def test_replay_rebuilds_the_same_book_queue_priority_and_state_hash(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    live = Engine(DEVNET_MARKETS, Limits(rate_per_s=10**6, burst=10**6), journal=journal)
    random_session(live, random.Random(3), 3_000)
    journal.commit()
    rebuilt = Engine(DEVNET_MARKETS)
    replay(rebuilt, Journal(tmp_path / "j.sqlite"))
    assert rebuilt.state_hash() == live.state_hash()
    for m in range(len(DEVNET_MARKETS)):
        for side in ("bids", "asks"):
            ours = [(o.id, o.remaining) for o in getattr(live.books[m], side).iter_orders()]
            theirs = [(o.id, o.remaining) for o in getattr(rebuilt.books[m], side).iter_orders()]
            assert ours == theirs
    assert len(live.orders) >= 5  # the session left a real book behind


def test_killed_engine_restarts_with_every_acknowledged_order_and_fill(tmp_path):
    path = tmp_path / "crash.sqlite"
    rng = random.Random(5)
    acked_orders: dict[int, int] = {}  # order id -> remaining when acknowledged
    acked_fills: dict[int, list] = {}
    gone: set[int] = set()  # orders later acknowledged as filled or cancelled
    for run in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "venue.engine_process", str(path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, bufsize=1)
        hello = json.loads(proc.stdout.readline())
        assert hello["ready"]

        def send(cmd):
            proc.stdin.write(json.dumps(cmd) + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        ts0 = 10_000 * (run + 1)
        if run == 0:
            send({"op": "oracle", "ts": 1, "market": 0, "price": PX})
            for a in ACCOUNTS:
                send({"op": "account", "ts": 1, "address": a, "collateral": usdc(1_000_000)})
        kill_after = rng.randrange(100, 400)
        for i in range(kill_after):
            a = rng.choice(ACCOUNTS)
            if rng.random() < 0.7 or not acked_orders:
                reply = send({"op": "place", "ts": ts0 + i, "account": a, "market": 0, "is_buy": rng.random() < 0.5,
                              "price": PX + rng.randrange(-40, 40) * 10_000, "size": rng.randrange(1, 20) * 100_000})
                if reply["ok"]:
                    acked_orders[reply["order_id"]] = reply["remaining"]
                    if reply["status"] != "resting":
                        gone.add(reply["order_id"])
                    for f in reply["fills"]:
                        acked_fills[f[0]] = f
            else:
                oid = rng.choice(list(acked_orders))
                reply = send({"op": "cancel", "ts": ts0 + i, "account": a, "order_id": oid})
                if reply["ok"]:
                    gone.add(oid)
        # Kill it mid-stream, with a command in flight whose ack we never read.
        proc.stdin.write(json.dumps({"op": "place", "ts": ts0 + kill_after, "account": ACCOUNTS[0], "market": 0,
                                     "is_buy": True, "price": PX, "size": 100_000}) + "\n")
        proc.stdin.flush()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    journal = Journal(path)
    engine = Engine(DEVNET_MARKETS, Limits(rate_per_s=10**6, burst=10**6, max_open_orders=100_000))
    fate: dict[int, str] = {}
    engine.listeners.append(lambda e: fate.__setitem__(e[1].id, e[2]) if e[0] == "order" else None)
    replay(engine, journal)
    assert engine.next_order_id > max(acked_orders)
    journalled = {row[0]: row for row in journal.fills()}
    for seq, (_, maker_id, taker_id, price, size) in acked_fills.items():
        row = journalled[seq]
        assert (row[6], row[7], row[3], row[4]) == (maker_id, taker_id, price, size)
    for oid, remaining in acked_orders.items():
        if oid in gone:
            assert oid not in engine.orders
        elif oid in engine.orders:
            # later fills (acknowledged or not) may only have reduced it
            assert engine.orders[oid].remaining <= remaining
        else:
            # gone through a fill or self-trade prevention by a later order: the journal says which
            assert fate[oid] in ("filled", "self_trade"), (oid, fate.get(oid))
    assert len(acked_fills) > 20 and len(engine.orders) > 5


def hostile_command(engine: Engine, rng: random.Random, ts: int):
    """A command with any field possibly out of range or of the wrong kind (what a signed request
    can carry): huge markets, ids, prices, sizes and times, negatives, None."""
    a = rng.choice(ACCOUNTS)
    wild = lambda: rng.choice((2**70, 2**63, -1, 0, 10**30, -(2**64), 2**62))  # noqa: E731
    kind = rng.randrange(5)
    if kind == 0:
        return lambda: engine.cancel_all(ts, a, wild())
    if kind == 1:
        return lambda: engine.cancel(ts, a, wild())
    if kind == 2:
        live = list(engine.orders.values())
        target = rng.choice(live).id if live else 1
        return lambda: engine.modify(ts, rng.choice(live).account if live else a, target, wild(), wild())
    if kind == 3:
        return lambda: engine.schedule_cancel(ts, a, wild())
    return lambda: engine.place(ts, a, rng.choice((0, wild())), True, wild(), wild(), expiry=wild())


def test_hostile_commands_are_refused_before_the_journal_and_replay_agrees(tmp_path):
    """Random valid and out-of-range commands through the live path (the 2^70 cancel-all that
    poisoned the journal among them): every refusal leaves nothing in the journal, and a replay
    of it rebuilds the same state hash with nothing skipped."""
    rng = random.Random(5)
    journal = Journal(tmp_path / "j.sqlite")
    live = Engine(DEVNET_MARKETS, Limits(rate_per_s=10**6, burst=10**6))
    live.journal = journal
    random_session(live, rng, 300)
    refused = 0
    for i in range(400):
        ts = 1_000 + i
        live.tick(ts)  # time advances first (expiries and switches due are journalled as a tick)
        before = journal.last_seq
        try:
            hostile_command(live, rng, ts)()
        except EngineError:
            refused += 1
            assert journal.last_seq == before  # refused: not journalled
        if rng.random() < 0.5:
            random_session_step(live, rng, ts)
        journal.commit()
    assert refused > 300
    journal.close()
    journal = Journal(tmp_path / "j.sqlite")
    again = Engine(DEVNET_MARKETS, Limits(rate_per_s=10**6, burst=10**6))
    replay(again, journal)
    assert journal.replay_skipped == []
    assert again.state_hash() == live.state_hash()


def random_session_step(engine: Engine, rng: random.Random, ts: int) -> None:
    a = rng.choice(ACCOUNTS)
    try:
        engine.place(ts, a, 0, rng.random() < 0.5, PX + rng.randrange(-300, 300) * 10_000, rng.randrange(1, 50) * 100_000)
    except EngineError:
        pass


def test_replay_skips_an_entry_it_cannot_apply_says_which_and_keeps_what_follows(tmp_path):
    """A journal written by an older venue that let a bad command through: replay skips that
    entry, reports its sequence number and error, and applies everything after it."""
    journal = Journal(tmp_path / "j.sqlite")
    live = Engine(DEVNET_MARKETS, Limits())
    live.journal = journal
    live.set_oracle_price(0, 0, PX)
    live.set_account(0, ACCOUNTS[0], usdc(1_000_000), {})
    live.place(1, ACCOUNTS[0], 0, True, PX - 10_000, 1_000_000)
    journal.append("cancel_all", (2, ACCOUNTS[0], 2**70))  # what the old live path journalled
    bad_seq = journal.last_seq
    journal.commit()
    after = live.place(3, ACCOUNTS[0], 0, True, PX - 20_000, 2_000_000)
    journal.close()
    journal = Journal(tmp_path / "j.sqlite")
    again = Engine(DEVNET_MARKETS, Limits())
    replay(again, journal)
    assert [(seq, kind) for seq, kind, _ in journal.replay_skipped] == [(bad_seq, "cancel_all")]
    assert "UNKNOWN_MARKET" in journal.replay_skipped[0][2]
    assert after.order_id in again.orders and len(again.orders) == 2
