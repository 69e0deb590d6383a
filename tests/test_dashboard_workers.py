"""The dashboard never gets in the way: open on a file while four workers write, followed
by a page that asks as fast as it can, the workers finish with no error and the file holds
what they write without it; the dashboard's process holds the search file read-only."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _dashboard import DEADLINE, api, comparable, fetch, run_workers

from hpstore.store import open_store

TRIALS, WORKERS = 60, 4


def dump(path: str) -> dict[str, Any]:
    store = open_store(path, read_only=True)
    try:
        record = store.find_project("p")
        assert record is not None
        return store.open_project(record).dump()
    finally:
        store.close()


def descriptors(pid: int, path: str) -> dict[str, int]:
    """How the process holds the file and its companions: name -> open flags."""
    real = os.path.realpath(path)
    held = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            flags = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue  # closed meanwhile
        if target.startswith(real):
            held[target[len(real) - len(os.path.basename(real)):]] = int(flags, 8)
    return held


class Page(threading.Thread):
    """What a dashboard page asks, as fast as the server answers: the poll, the table and
    the plots, from the positions it holds, until told to stop."""

    def __init__(self, url: str, pid: int, path: str) -> None:
        super().__init__(daemon=True)
        self.url, self.pid, self.path = url, pid, path
        self.stop, self.opened = threading.Event(), threading.Event()
        self.polls = 0
        self.changes: list[int] = []
        self.errors: list[str] = []
        self.holds: list[dict[str, int]] = []
        self.reply: dict[str, Any] = {}

    def poll(self) -> None:
        self.reply = api(self.url, "/api/poll", {
            "seq": self.reply["seq"], "obs": self.reply["obs"],
            "generation": self.reply["generation"]})
        self.polls += 1
        self.changes += [c["seq"] for c in self.reply["changes"]]

    def run(self) -> None:
        try:
            self.reply = api(self.url, "/api/poll")  # the page opens before the workers start
            self.opened.set()
            while not self.stop.is_set():
                self.poll()
                for path in ("/api/trials?sort=best", "/api/plots"):
                    status, _, body = fetch(self.url, path)
                    if status != 200:
                        self.errors.append(f"{path}: {status} {body[:300]!r}")
                self.holds.append(descriptors(self.pid, self.path))
        except Exception as exc:  # reported by the test
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self.opened.set()

    def finish(self) -> None:
        """Stop, then take in what the last poll did not see yet."""
        self.stop.set()
        self.join(DEADLINE)
        while True:
            self.poll()
            if not self.reply["changes"]:
                return


@pytest.mark.slow
def test_four_workers_beside_an_open_dashboard_write_what_they_write_alone(tmp_path):
    alone, watched = str(tmp_path / "alone.db"), str(tmp_path / "watched.db")
    run_workers(alone, "p", TRIALS, WORKERS)

    pages: list[Page] = []
    dashboard: list[subprocess.Popen[str]] = []

    def open_page() -> None:
        proc = subprocess.Popen([sys.executable, "-m", "hpstore", "dashboard", watched,
                                 "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        dashboard.append(proc)
        assert proc.stdout is not None
        found = re.search(r"http://\S+/", proc.stdout.readline())
        assert found
        page = Page(found.group(0), proc.pid, watched)
        pages.append(page)
        page.start()
        assert page.opened.wait(DEADLINE)

    run_workers(watched, "p", TRIALS, WORKERS, before=open_page)
    page, proc = pages[0], dashboard[0]
    page.finish()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=DEADLINE)

    assert page.errors == [] and err.strip() == "hpstore: interrupted"
    # it followed the search as it was written: every status change once, in order
    assert page.changes == sorted(set(page.changes)) and len(page.changes) == 2 * TRIALS
    assert page.reply["total"] == TRIALS and page.reply["finished"] is not None
    # the search file is held read-only (SQLite opens its -wal and -shm read-write for any
    # reader of a WAL file: a reader keeps its read marks in the -shm)
    main = os.path.basename(watched)
    assert any(main in held for held in page.holds)
    for held in page.holds:
        assert held.get(main, os.O_RDONLY) & os.O_ACCMODE == os.O_RDONLY
    # the same search as the workers write alone, apart from times, process and tuner ids
    assert comparable(dump(watched)) == comparable(dump(alone))
