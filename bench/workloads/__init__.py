"""Workloads: one module each, registered here in the order they run.

A workload module has NAME, a one-line TITLE, `add_arguments(parser)` for its own
options, and `async def run(ctx) -> list[Figure]`. Adding a workload is adding a
module and one line below.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from bench.workloads import (
    bigdb,
    bot,
    bus,
    compliance,
    connections,
    export,
    group_fanout,
    idle,
    message_path,
    recall,
    reconnect,
    search,
    surge,
)

WORKLOADS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        message_path,
        connections,
        surge,
        reconnect,
        idle,
        group_fanout,
        recall,
        search,
        export,
        compliance,
        bot,
        bus,
        bigdb,
    )
}


@dataclass
class RunContext:
    args: argparse.Namespace
    quick: bool
    log_dir: Path
    results_dir: Path
    stamp: str
    notes: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(text, flush=True)
