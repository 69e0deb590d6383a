"""Paths that name no regular file, or that the system cannot follow: a device, a FIFO, a
socket, a loop of symbolic links, the root folder, a path longer than the system allows.
Each is refused with one clear error naming it, by the library and by every tool, and is
left as it was (a device was replaced by a search file; a FIFO made the oracle wait for
ever; a loop escaped as a RuntimeError and the tools printed a traceback)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _workers import DEADLINE, open_oracle

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX: FIFOs, mknod")

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

# Opens the path given in a fresh process: a FIFO would hold it for ever, so the test waits
# for its answer with a deadline instead of hanging itself.
_OPEN = """
import sys, hpstore
hp = hpstore.HyperParameters(); hp.Float("x", 0, 1)
try:
    hpstore.RandomSearchOracle(objective="loss", max_trials=3, hyperparameters=hp,
                               database=sys.argv[1]).close()
except hpstore.DatabaseError as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
print("opened")
"""


def library(path: str | Path) -> str:
    """What opening ``path`` as a search raised (class and message), in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", _OPEN, str(path)], capture_output=True,
                          text=True, timeout=DEADLINE, env=ENV)
    assert proc.returncode == 3 and proc.stderr == "", (proc.stdout, proc.stderr)
    return proc.stdout.strip()


def tool(*args: str | Path) -> str:
    """The one error line an ``hpstore`` command printed (exit code 2, no traceback)."""
    proc = subprocess.run([sys.executable, "-m", "hpstore", *map(str, args)],
                          capture_output=True, text=True, timeout=DEADLINE, env=ENV)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpstore: error: "), proc.stderr
    return lines[0]


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


def _device(path: Path) -> None:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of its own
    except PermissionError:
        pytest.skip("making a device needs root (CAP_MKNOD)")


@pytest.mark.parametrize(("make", "kind"), [(_fifo, "a FIFO"), (_socket, "a socket"),
                                            (_device, "a character device")],
                         ids=["fifo", "socket", "device"])
def test_a_special_file_is_refused_by_the_library_and_the_tools_and_left_alone(
        tmp_path, make, kind):
    special = tmp_path / "special.db"
    kept = make(special)
    before = os.stat(special)
    (tmp_path / "src").mkdir()
    source = tmp_path / "src" / "source.db"  # (its log and lock folder stay beside it)
    open_oracle(str(source), max_trials=2).close()
    try:
        said = library(special)
        assert said.startswith("NotAnHpstoreFileError ") and f"is {kind}" in said
        assert str(special) in said
        for command in (["summary", special], ["trials", special], ["check", special],
                        ["copy", source, special]):
            assert f"is {kind}" in tool(*command)
        after = os.stat(special)
        assert (after.st_mode, after.st_ino, after.st_rdev) == (
            before.st_mode, before.st_ino, before.st_rdev)  # not replaced by a search file
        assert sorted(p.name for p in tmp_path.iterdir()) == ["special.db", "src"]
    finally:
        if kept is not None:
            kept.close()


def test_a_loop_of_symbolic_links_is_named_by_the_library_and_the_tools(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    good = tmp_path / "good.db"
    open_oracle(str(good), max_trials=2).close()
    before = sorted(tmp_path.iterdir())
    for looped in (tmp_path / "a", tmp_path / "a" / "s.db"):  # the file, a folder on its way
        said = library(looped)
        assert said.startswith("DatabaseError ") and str(looped) in said, said
        assert "leads back to itself" in said
        for command in (["summary", looped], ["trials", looped], ["check", looped],
                        ["watch", looped, "--once"],  # (it waited for ever)
                        ["backup", looped, tmp_path / "copy.db"], ["backup", good, looped]):
            assert "leads back to itself" in tool(*command)
    assert sorted(tmp_path.iterdir()) == before


def test_the_root_folder_and_a_path_too_long_are_named(tmp_path):
    said = library("/")
    assert said == "NotAnHpstoreFileError / is a folder, not a search file."
    long = tmp_path.joinpath(*["d" * 200] * 22, "s.db")  # over PATH_MAX (4096 bytes)
    said = library(long)
    assert said.startswith("DatabaseError The path ") and "is too long for this system" in said
    assert str(tmp_path)[:40] in said
    assert "too long" in tool("summary", long)
    assert "too long" in tool("watch", long, "--once")  # (a traceback)
    # one name over the 255 bytes of a name: "shorten its folders' names" could not help
    for named in (tmp_path / f"{'a' * 253}.db", tmp_path / ("b" * 256) / "s.db"):
        said = library(named)
        assert said.startswith("DatabaseError The name ") and "is 256 bytes, longer than the " \
            "255 bytes a file system takes for one name" in said, said
        assert "Give it a shorter name." in said and "folders" not in said
    assert list(tmp_path.iterdir()) == []


def test_a_search_moved_to_a_path_too_long_for_sqlite_is_named_by_the_tools(tmp_path):
    made = tmp_path / "s.db"
    with open_oracle(str(made), max_trials=3) as oracle:
        oracle.end_trial(oracle.create_trial("t"))
    deep = tmp_path.joinpath(*["d" * 100] * 5)  # the file fits here, not SQLite's journal
    deep.mkdir(parents=True)
    moved = made.rename(deep / "s.db")
    assert len(os.fsencode(moved)) < 4096
    for command in (["summary"], ["check"], ["watch", "--once"], ["backup", "-"]):
        args = [str(tmp_path / "copy.db") if a == "-" else a for a in command[1:]]
        said = tool(command[0], moved, *args)  # was sqlite3's "unable to open database file"
        assert "too long for SQLite" in said and "512 bytes" in said, said
        assert "bytes over" in said and "shorter" in said, said


def test_a_search_on_a_read_only_mount_says_so_and_the_tools_still_read_it(tmp_path):
    from _faults import in_a_mount

    path = tmp_path / "s.db"
    with open_oracle(str(path), max_trials=3) as oracle:
        oracle.end_trial(oracle.create_trial("t"))
    ro = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"'
    done = in_a_mount(tmp_path, ro, sys.executable, "-c", _OPEN, str(path))
    assert done.returncode == 3, (done.stdout, done.stderr)
    # was "... is read-only. hpstore writes every trial to it: make it writable", which
    # no chmod can do there
    assert done.stdout.startswith(f"ReadOnlyDatabaseError {path} is on a file system "
                                  "mounted read-only"), done.stdout
    assert "make it writable" not in done.stdout and "hpstore backup" in done.stdout
    done = in_a_mount(tmp_path, ro, sys.executable, "-c", _OPEN, str(tmp_path / "new.db"))
    assert done.stdout.startswith(f"ReadOnlyDatabaseError {tmp_path / 'new.db'} cannot be "
                                  "created: its folder"), done.stdout
    assert "mounted read-only" in done.stdout
    done = in_a_mount(tmp_path, ro, sys.executable, "-m", "hpstore", "trials", str(path))
    assert done.returncode == 0 and done.stdout.count("\n") == 3, done.stderr


@pytest.fixture(scope="module")
def search_in_a_latin1_folder(tmp_path_factory):
    """A search in a folder whose name is not UTF-8 (``lat\\xe9``: made on a Latin-1
    system, or unpacked from an old archive), one trial completed."""
    folder = Path(os.fsdecode(os.fsencode(tmp_path_factory.mktemp("names")) + b"/lat\xe9"))
    folder.mkdir()
    path = folder / "s.db"
    with open_oracle(str(path), max_trials=3) as oracle:
        trial = oracle.create_trial("t")
        oracle.update_trial(trial.trial_id, {"loss": 0.25})
        oracle.end_trial(trial)
    return path


@pytest.mark.parametrize("command", [
    ["summary", "DB"], ["trials", "DB"], ["show", "DB", "00"], ["best", "DB"],
    ["history", "DB"], ["export", "DB"], ["watch", "DB", "--once"], ["check", "DB"],
    ["sql", "DB", "SELECT count(*) AS n FROM trials"], ["report", "DB", "-o", "OUT"]])
def test_the_tools_read_a_search_in_a_folder_whose_name_is_not_utf8(
        search_in_a_latin1_folder, command, tmp_path):
    named = {"DB": str(search_in_a_latin1_folder), "OUT": str(tmp_path / "report.html")}
    args = [named.get(a, a) for a in command]
    proc = subprocess.run([sys.executable, "-m", "hpstore", *args], capture_output=True,
                          timeout=DEADLINE, env=ENV)
    # every tool raised sqlite3's "Could not decode to UTF-8 column 'file'" (the file's
    # path, as SQLite lists the databases a connection has open)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode(
        errors="replace")
    # (what it read; report -o says on stderr what it wrote)
    assert proc.stdout or (command[0] == "report" and proc.stderr.startswith(b"Wrote "))


def test_the_dashboard_shows_a_search_in_a_folder_whose_name_is_not_utf8(
        search_in_a_latin1_folder):
    from _dashboard import api, fetch

    from hpstore.dashboard import open_dashboard

    with open_dashboard(str(search_in_a_latin1_folder), port=0) as running:
        running.start()
        # both answered "The dashboard failed: UnicodeEncodeError" (the path, in JSON)
        listed = api(running.url, "/api/projects")
        assert listed["location"].endswith("lat\\xe9/s.db")
        name = listed["projects"][0]["name"]
        assert api(running.url, "/api/poll", {"p": name})["location"] == listed["location"]
        for endpoint, params in [("/", {}), ("/api/trials", {"p": name}),
                                 ("/api/plots", {"p": name, "select": "00"}),
                                 ("/api/trial", {"p": name, "t": "00"}),
                                 ("/api/compare", {"a": name, "b": name}),
                                 ("/download", {"p": name})]:
            status, _, body = fetch(running.url, endpoint, params)
            assert status == 200, (endpoint, body[:300])
