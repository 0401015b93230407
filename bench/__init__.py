"""Homing's benchmarks: `python -m bench [--quick]` (see README, Performance)."""
