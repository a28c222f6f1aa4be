"""The scenario lab: named, deterministic stress scenarios on the real venue and keepers in
simulated time (venue/scenario/lab.py), with metrics and event logs."""
