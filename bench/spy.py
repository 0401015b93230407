"""py-spy around a phase of a workload (not a fixed duration): start, do the work, stop.

Writes `bench/results/profile-<stamp>-<key>.txt.raw` (collapsed stacks) and its summary
`.txt` (bench/profile_summary.py), and prints the summary.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


class Spy:
    def __init__(self, ctx: Any, pid: int, key: str) -> None:
        self.ctx = ctx
        self.pid = pid
        self.raw = ctx.results_dir / f"profile-{ctx.stamp}-{key}.txt.raw"
        self.proc: subprocess.Popen[bytes] | None = None
        self.done: list[str] | None = None

    async def start(self) -> bool:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            self.ctx.say("    py-spy not installed (pip install -e '.[bench]'); no profile")
            return False
        cmd = [spy, "record", "--pid", str(self.pid), "--rate", "250", "--nonblocking"]
        cmd += ["--format", "raw", "-o", str(self.raw)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: ASYNC220
        await asyncio.sleep(0.5)  # attached before the phase starts
        self.ctx.say(f"    py-spy recording pid {self.pid}")
        return True

    async def stop(self) -> list[str]:
        if self.done is not None:
            return self.done
        self.done = []
        if self.proc is None:
            return self.done
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
            try:
                await asyncio.to_thread(self.proc.wait, 60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.raw.exists():
            from bench.profile_summary import summarize

            text = summarize(self.raw.read_text(), top=20)
            txt = self.raw.with_suffix("")  # .txt.raw -> .txt
            txt.write_text(text)
            self.done = [str(self.raw), str(txt)]
            self.ctx.say(text)
        else:
            err = (
                self.proc.stderr.read().decode(errors="replace")[-500:] if self.proc.stderr else ""
            )
            self.ctx.say(f"    py-spy wrote nothing: {err}")
        return self.done
