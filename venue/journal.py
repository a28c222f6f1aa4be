"""Append-only SQLite journal (WAL). Commands and the fills they produced are buffered and
committed together; the caller acknowledges only after `commit()`. Replaying the commands
rebuilds the identical engine.

A group commit writes one row per table: the group's commands (and its fills) marshalled as one
list, keyed by the group's first sequence number. One insert per group instead of one per
command is what keeps the journal cheap (`make bench-engine`, journal on)."""

from __future__ import annotations

import marshal
import sqlite3
from pathlib import Path


class Journal:
    def __init__(self, path: str | Path, synchronous: str = "NORMAL"):
        """`synchronous=NORMAL` in WAL mode survives a killed process (what the crash test does);
        `FULL` also survives power loss, at an fsync per commit."""
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        # commands: [(kind, args), ...] numbered first_seq, first_seq + 1, ...
        self.db.execute("CREATE TABLE IF NOT EXISTS command_groups (first_seq INTEGER PRIMARY KEY, "
                        "last_seq INTEGER NOT NULL, commands BLOB NOT NULL)")
        # fills: [(fill_seq, command_seq, market, price, size, taker_is_buy, maker_order, taker_order,
        #          maker, taker, ts), ...]
        self.db.execute("CREATE TABLE IF NOT EXISTS fill_groups (first_fill_seq INTEGER PRIMARY KEY, "
                        "fills BLOB NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS settlement (fill_seq INTEGER PRIMARY KEY, status TEXT NOT NULL, "
                        "batch INTEGER, tx TEXT, reason TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self.db.execute("SELECT COALESCE(MAX(last_seq), 0) FROM command_groups").fetchone()
        self.last_seq = row[0]
        self.pending: list[tuple[str, tuple]] = []
        self.pending_fills: list[tuple] = []
        self.pending_settlement: list[tuple] = []
        self.pending_meta: dict[str, str] = {}
        self.replay_skipped: list[tuple[int, str, str]] = []

    def set_settlement(self, fill_seq: int, status: str, batch: int | None, tx: str | None, reason: str | None) -> None:
        """Where a fill stands on-chain: submitted (in batch, with tx), settled or rejected."""
        self.pending_settlement.append((fill_seq, status, batch, tx, reason))

    def set_meta(self, key: str, value) -> None:
        self.pending_meta[key] = str(value)

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def settlement(self) -> dict[int, tuple]:
        return {row[0]: row[1:] for row in self.db.execute("SELECT * FROM settlement")}

    def append(self, kind: str, args: tuple) -> None:
        self.last_seq += 1
        self.pending.append((kind, args))

    def append_fill(self, fill) -> None:
        self.pending_fills.append((fill.seq, self.last_seq, fill.market, fill.price, fill.size, int(fill.taker_is_buy),
                                   fill.maker.id, fill.taker.id, fill.maker.account, fill.taker.account, fill.ts))

    def append_fill_row(self, row: tuple) -> None:
        """A fill already in the journal's row form (see `fills`)."""
        self.pending_fills.append(row)

    def commit(self) -> None:
        """Makes everything appended durable. Only then may the commands be acknowledged."""
        if not (self.pending or self.pending_settlement or self.pending_meta):
            return
        db = self.db
        db.execute("BEGIN")
        if self.pending:
            db.execute("INSERT INTO command_groups VALUES (?, ?, ?)",
                       (self.last_seq - len(self.pending) + 1, self.last_seq, marshal.dumps(self.pending)))
        if self.pending_fills:
            db.execute("INSERT INTO fill_groups VALUES (?, ?)", (self.pending_fills[0][0], marshal.dumps(self.pending_fills)))
        if self.pending_settlement:
            db.executemany("INSERT OR REPLACE INTO settlement VALUES (?, ?, ?, ?, ?)", self.pending_settlement)
        if self.pending_meta:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(self.pending_meta.items()))
        db.execute("COMMIT")
        self.pending.clear()
        self.pending_fills.clear()
        self.pending_settlement.clear()
        self.pending_meta.clear()

    def commands(self):
        """(seq, kind, args) of every committed command, in order."""
        for first, blob in self.db.execute("SELECT first_seq, commands FROM command_groups ORDER BY first_seq"):
            for offset, (kind, args) in enumerate(marshal.loads(blob)):
                yield first + offset, kind, args

    def fills(self) -> list[tuple]:
        """Every committed fill as (fill_seq, command_seq, market, price, size, taker_is_buy,
        maker_order, taker_order, maker, taker, ts), in order."""
        return [tuple(f) for (blob,) in self.db.execute("SELECT fills FROM fill_groups ORDER BY first_fill_seq")
                for f in marshal.loads(blob)]

    def close(self) -> None:
        self.commit()
        self.db.close()


def replay(engine, journal: Journal, on_entry=None, on_result=None) -> int:
    """Re-applies every journalled command to a fresh `engine`. Returns how many. `on_entry(kind,
    args)` takes the entries of the engine's owner (the venue's spent nonces) and says whether it
    did. An entry that cannot be applied is skipped, with what follows applied: each is listed in
    `journal.replay_skipped` as (seq, kind, error) for the caller to report; the live path
    validates before anything reaches the journal, so a correct journal skips nothing.
    `on_result(kind, args, result)` sees what each applied command returned (a place's Ack, a
    bulk run's commands and results), as the live path's caller did."""
    engine.replaying = True
    count = 0
    journal.replay_skipped = []
    try:
        for seq, kind, a in journal.commands():
            count += 1
            try:
                result = _apply(engine, kind, a, on_entry)
                if on_result is not None:
                    on_result(kind, a, result)
            except Exception as exc:  # noqa: BLE001: reported, never fatal
                journal.replay_skipped.append((seq, kind, f"{type(exc).__name__}: {exc}"))
    finally:
        engine.replaying = False
    return count


def _apply(engine, kind: str, a, on_entry):
    if kind == "place":
        (ts, account, market, is_buy, price, size, tif, flags, client_id, stp, expiry, is_market, nonce,
         signature) = a
        return engine.place(ts, account, market, is_buy, price, size, tif=tif, flags=flags, client_id=client_id,
                            stp=stp, expiry=expiry, is_market=is_market, nonce=nonce, signature=signature)
    elif kind == "cancel":
        engine.cancel(a[0], a[1], a[2])
    elif kind == "cancel_all":
        engine.cancel_all(*a)
    elif kind == "modify":
        engine.modify(*a)
    elif kind == "deadman":
        engine.schedule_cancel(*a)
    elif kind == "tick":
        engine.tick(*a)
    elif kind == "oracle":
        engine.set_oracle_price(*a)
    elif kind == "halt":
        engine.set_halted(*a)
    elif kind == "exposure":
        engine.set_exposure_group(*a)
    elif kind == "account":
        engine.set_account(*a)
    elif kind == "unwind":
        engine.on_fill_rejected(*a)
    elif kind == "bulk":
        return engine.replay_bulk(*a)
    elif on_entry is None or not on_entry(kind, a):
        raise ValueError(f"unknown journal entry {kind!r}")
