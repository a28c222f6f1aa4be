"""The engine as a process with a journal: JSON commands in on stdin, one acknowledgement per
command out on stdout, written only after the journal commit that covers the command. On start
it replays its journal. Used by the crash test (and handy for poking at the engine by hand)."""

from __future__ import annotations

import json
import sys

from .domain import DEVNET_MARKETS
from .engine import Engine, EngineError, Limits
from .journal import Journal, replay


def main(path: str) -> int:
    journal = Journal(path)
    engine = Engine(DEVNET_MARKETS, Limits(max_open_orders=100_000, rate_per_s=10**6, burst=10**6))
    replay(engine, journal)
    engine.journal = journal
    out = sys.stdout
    out.write(json.dumps({"ready": True, "state_hash": engine.state_hash(), "next_order_id": engine.next_order_id})
              + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.pop("op")
        try:
            if op == "place":
                ack = engine.place(**cmd)
                reply = {"ok": True, "order_id": ack.order_id, "status": ack.status, "remaining": ack.remaining,
                         "fills": [[f.seq, f.maker.id, f.taker.id, f.price, f.size] for f in ack.fills]}
            elif op == "cancel":
                reply = {"ok": True, "order_id": engine.cancel(**cmd).id}
            elif op == "oracle":
                engine.set_oracle_price(**cmd)
                reply = {"ok": True}
            elif op == "account":
                engine.set_account(cmd["ts"], cmd["address"], cmd["collateral"], {})
                reply = {"ok": True}
            elif op == "dump":
                reply = {"ok": True, "state_hash": engine.state_hash(),
                         "orders": {o.id: o.remaining for o in engine.orders.values()}}
            else:
                reply = {"ok": False, "code": "UNKNOWN_OP"}
        except EngineError as exc:
            reply = {"ok": False, "code": exc.code}
        journal.commit()  # durable before the acknowledgement leaves
        out.write(json.dumps(reply) + "\n")
        out.flush()
    journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
