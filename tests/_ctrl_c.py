"""Pressing Ctrl-C on a long ``hpstore stress`` run, as a user at a terminal does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _processes_naming(text: str) -> list[int]:
    """The running processes whose command line holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
                state = (entry / "stat").read_text().split(") ")[-1][:1]
            except OSError:
                continue  # ended meanwhile
            if text in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


def stop_a_run_with_ctrl_c(tmp_path: Path, *args: str, sig: int = signal.SIGINT
                           ) -> tuple[Path, int]:
    """Start ``hpstore stress`` for minutes, wait until its workers write reports, then
    press Ctrl-C on it alone (SIGINT to the command, not to its workers; or ``sig``, as
    ``kill`` or a job scheduler sends SIGTERM). Returns the temp folder it ran in and its
    process id, once the command has ended."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpstore", "stress", "--oracle", "random", "--processes", "2",
         "--trials", "100000", "--minutes", "5", "--step-time", "0.01", *args],
        env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        # Both workers have written reports and both are running: the chaos loop kills and
        # restarts workers meanwhile, so a look can fall between a kill and its restart and
        # see one; look again until both are seen at once.
        while (not any(p.stat().st_size for p in scratch.rglob("*.w1.jsonl"))
               or len(_processes_naming(str(scratch))) != 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout
            time.sleep(0.05)  # polling for the reports, not waiting in their place
        proc.send_signal(sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert _processes_naming(str(scratch)) == []  # its workers were stopped with it
    return scratch, proc.pid

