"""Faults of the disk under the search file: a full disk (and a file at its size limit), and
read-only parts of a search (the file, its folder, its log, index or lock folder, a read-only
file system, another user's visit). Real processes, real SIGKILL. The other faults around the
file: test_faults.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _faults import (
    NOBODY,
    OTHER_USER,
    STEPS,
    a_trial_left_running,
    act_as,
    an_ext4_image,
    assert_finished,
    close_with_no_room_to_fold,
    close_with_the_fold_warning_an_error,
    complete_one,
    digest,
    fill_the_disk,
    finish,
    in_a_mount,
    integrity,
    kill,
    query,
    run_child,
    size,
)
from _workers import DEADLINE, hold, open_oracle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32",
                       reason="POSIX: SIGKILL, file modes, RLIMIT_FSIZE, mount namespaces"),
]


# -- helpers --------------------------------------------------------------------------------------
def open_up(folder: Path) -> None:
    """Make everything under ``folder`` writable by everyone again."""
    os.chmod(folder, 0o777)
    for parent, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(parent, name), 0o777)
        for name in files:
            os.chmod(os.path.join(parent, name), 0o666)


@contextlib.contextmanager
def shared_folder(mode: int = 0o777) -> Any:
    """A folder other users can reach (pytest's tmp_path sits in a folder only we can)."""
    folder = Path(tempfile.mkdtemp(prefix="hpstore-faults-"))
    os.chmod(folder, mode)
    try:
        yield folder
    finally:
        open_up(folder)
        shutil.rmtree(folder)


READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1"'


# -- 1. a full disk -------------------------------------------------------------------------------
MAX_FULL = 40


@pytest.mark.parametrize("point", [*STEPS, "checkpoint"])
def test_a_full_disk_fails_one_step_cleanly_and_the_search_resumes(tmp_path, point):
    path = str(tmp_path / "full.db")
    open_oracle(path, max_trials=MAX_FULL, seed=11).close()
    report = run_child(fill_the_disk, path, point, 10)
    assert "crash" not in report, report["crash"]
    # the user gets an hpstore error, not sqlite3's, saying what was lost and what to do
    assert report["error_is_database_error"] and report["error_is_hpstore"], report["error_type"]
    assert not report["error_type"].startswith("sqlite3")
    message = report["message"]
    assert path in message
    assert "Nothing of the failed step was kept" in message and "run again" in message
    if point == "checkpoint":
        # checkpoints could not grow the main file while commits went on into the log
        assert report["main_size_at_failure"] == report["main_size"]
        assert report["done_at_failure"] > report["done_before_cap"]
    else:
        assert report["failed_step"] == point
    # nothing of the failed step was kept (seen by another connection right after it)
    seen = report["seen"]
    if report["failed_step"] == "create_trial":
        assert seen == {"trials": report["done_at_failure"]}
    else:
        observations = 0 if report["failed_step"] == "update_trial" else 1
        assert seen == {"trials": report["done_at_failure"] + 1, "status": "RUNNING",
                        "observations": observations}
    # space freed, the same process retried the step and finished that trial
    assert len(report["done"]) == report["done_at_failure"] + 1
    # in a process without the cap: the file is whole, every trial the child completed is
    # there with its score and nothing else is, and a fresh oracle finishes the search
    assert integrity(path) == [("ok",)]
    completed = query(path, "SELECT trial_id, score FROM trials WHERE status = 'COMPLETED'")
    assert dict(completed) == dict(report["done"])
    finish(path, MAX_FULL)
    assert_finished(path, MAX_FULL)


def test_a_healthy_file_on_a_full_disk_is_not_called_damaged(tmp_path):
    # SQLite makes the log and its index even to read a file: on a full disk the library
    # and every tool said "cannot be read (disk I/O error); it is damaged or not a
    # database", and a user might have deleted a healthy search
    done = in_a_mount(tmp_path, 'mount -t tmpfs -o size=1m tmpfs "$1"', sys.executable,
                       "-c", "import sys, _faults; _faults.open_on_a_full_disk(sys.argv[1])",
                       str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    full = f"the disk holding {tmp_path} is full ({report['free']} bytes free"
    kind, said = report["library"]
    assert kind == "DatabaseError" and full in said and "free some space" in said, said
    assert "damaged" not in said
    for tool in ("summary", "check"):
        code, err = report[tool]
        assert code == 2 and err.startswith("hpstore: error: ") and full in err, err
        assert err.count("\n") == 1 and "damaged" not in err
    assert report["unchanged"]
    assert report["completed"] == 6  # space freed, the same search finished


@pytest.mark.parametrize("resume", ["search again", "new tuner", "another process"])
def test_a_tuner_whose_trial_cannot_end_on_a_full_disk_runs_it_again_afresh(tmp_path, resume):
    # The disk filled up as a Tuner's trial ran, so that the end of its run could not be
    # written, nor its hand-back: the trial stayed RUNNING under the live process, the
    # error did not say so, and search() again in that process handed it out in the same
    # run, whose reports from step 0 then counted twice (a score made of both runs)
    done = in_a_mount(tmp_path, 'mount -t tmpfs -o size=512k tmpfs "$1"', sys.executable,
                      "-c", "import sys, _faults; _faults.a_tuner_on_a_full_disk(*sys.argv[1:])",
                      str(tmp_path), resume)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    trial, trials = a_trial_left_running(report, tmp_path)
    # run again in a run of its own; the first run's values kept with that run, once
    values = report["values"]
    assert [v for v in values if v[0] == 1] == [[1, 0, 30.0], [1, 1, 31.0], [1, 2, 32.0]]
    again = [v for v in values if v[0] == 2]
    assert trials[trial][1] == 2 and len(values) == 3 + len(again)
    assert trials[trial][2] == min(v[2] for v in again)  # scored on its new run alone
    if resume != "another process":
        assert report["ran"].count(trial) == 2
        assert [v[1] for v in again] == [0, 1, 2]


@pytest.mark.parametrize("resume", ["search again", "new tuner", "another process"])
def test_a_stopped_trial_whose_end_meets_a_full_disk_keeps_its_verdict(tmp_path, resume):
    # A rule stopped the trial, then the disk filled up before its worker ended it: the
    # error said the trial stayed RUNNING and would run again from its start, and the
    # file kept it STOPPED with no end time, under the session of a worker long gone.
    done = in_a_mount(tmp_path, 'mount -t tmpfs -o size=512k tmpfs "$1"', sys.executable,
                      "-c", "import sys, _faults; "
                      "_faults.a_stopped_trial_on_a_full_disk(*sys.argv[1:])",
                      str(tmp_path), resume)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    kind, said, is_database_error = report["error"]
    assert kind == "DatabaseError" and is_database_error, said
    trial = report["failed"]
    assert f"the disk holding {tmp_path} is full" in said and "free some space" in said
    assert "RUNNING" not in said and "runs again" not in said, said
    assert f"Trial {trial} was stopped early" in said and "stays STOPPED" in said, said
    # as the stop left it: stopped, scored, its run ended, held by no worker
    assert report["seen"] == [["STOPPED", 5000.0, 1, 1, None]]
    assert report["ran"].count(trial) == 1  # never run again
    assert report["integrity"] == [["ok"]]
    trials = {t: (status, run, score) for t, status, run, score in report["trials"]}
    assert trials.pop(trial) == ("STOPPED", 1, 5000.0)
    assert len(trials) == 4 and {s for s, _, _ in trials.values()} == {"COMPLETED"}


def test_a_healthy_file_on_a_disk_with_no_free_inode_is_not_called_damaged(tmp_path):
    # with bytes to spare but no inode, SQLite cannot make the log ("unable to open
    # database file"): the library called the file damaged; a worker could not make its
    # lock file and died on a bare OSError
    done = in_a_mount(tmp_path, 'mount -t tmpfs -o size=8m,nr_inodes=64 tmpfs "$1"',
                       sys.executable, "-c", "import sys, _faults; "
                       "_faults.open_on_a_full_disk(sys.argv[1], 'inodes')", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    full = f"the disk holding {tmp_path} has no free inodes"
    kind, said = report["library"]
    assert kind == "DatabaseError" and full in said and "damaged" not in said, said
    kind, said = report["trial"]
    assert kind == "DatabaseError" and "has no free inodes" in said, said
    assert "delete files on that disk" in said
    for tool in ("summary", "check"):
        code, err = report[tool]
        assert code == 2 and err.startswith("hpstore: error: ") and full in err, err
        assert err.count("\n") == 1 and "damaged" not in err
    assert report["unchanged"]
    assert report["completed"] == 6


@pytest.mark.parametrize("left", [1, 2])
def test_a_new_search_on_a_disk_that_runs_out_of_inodes_as_it_is_made_says_so(tmp_path, left):
    # With two inodes left, the lock folder and its lock were made, and the file built in
    # it was not: a bare OSError naming a hidden file
    fill = " ".join(f'"$1/f{n}"' for n in range(8 - left - 1))  # (the mount's root is one)
    script = ("import hpstore, sys\n"
              "try:\n"
              "    hpstore.RandomSearchOracle('loss', max_trials=3, database=sys.argv[1])\n"
              "except Exception as exc:\n"
              "    print(type(exc).__name__, exc)\n")
    done = in_a_mount(tmp_path, f'mount -t tmpfs -o size=8m,nr_inodes=8 tmpfs "$1" && '
                      f'touch {fill}', sys.executable, "-c", script, str(tmp_path / "new.db"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.startswith("DatabaseError ") and "has no free inodes" in done.stdout
    assert "delete files on that disk" in done.stdout


def test_a_file_at_its_size_limit_is_named_in_the_error(tmp_path):
    path = str(tmp_path / "limit.db")
    open_oracle(path, max_trials=MAX_FULL, seed=11).close()
    report = run_child(fill_the_disk, path, "create_trial", 3)
    assert "crash" not in report, report["crash"]
    assert re.search(r"\bfull\b|size limit|too large", report["message"], re.IGNORECASE), (
        report["message"])


def test_a_close_that_cannot_fold_the_log_into_the_file_says_so_and_loses_nothing(tmp_path):
    """A closed search's file alone is the whole search, so `cp` copies it: when there is no
    room to fold the log in as it closes, the close warns that the log must stay (and that
    `hpstore backup` copies it), and the next open with room finishes the fold."""
    path = str(tmp_path / "fold.db")
    open_oracle(path, max_trials=MAX_FULL, seed=11).close()
    report = run_child(close_with_no_room_to_fold, path, 40)
    assert "crash" not in report, report["crash"]
    assert report["wal_size"] > 0  # the fold did fail: the commits are in the log
    [said] = [w for w in report["warnings"] if "could not be folded" in w]
    assert "fold.db-wal" in said and "hpstore backup" in said and "size limit" in said
    assert_finished(path, 40)  # every trial is in the file with its log
    open_oracle(path, max_trials=MAX_FULL).close()  # a close with room folds it in
    assert not Path(path + "-wal").exists() or size(path + "-wal") == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(path, alone / "fold.db")
    assert_finished(str(alone / "fold.db"), 40)


def test_a_close_whose_fold_warning_is_made_an_error_still_lets_go_of_the_file(tmp_path):
    # under -W error the fold's warning escaped close() half way: the file's share, the
    # lock folder's watch and the descriptors were kept
    path = str(tmp_path / "fold.db")
    open_oracle(path, max_trials=MAX_FULL, seed=11).close()
    report = run_child(close_with_the_fold_warning_an_error, path, 20)
    assert "crash" not in report, report["crash"]
    assert "could not be folded" in report["raised"]
    assert report["share_left"] is False and report["connection_left"] is False
    assert_finished(path, 20)


_FILL_WITH_TRIALS = """
import os, sys
import hpstore
from _workers import open_oracle
oracle = open_oracle(sys.argv[1], max_trials=100000, seed=3)
try:
    while True:
        trial = oracle.create_trial("filler")
        for step in range(50):
            oracle.update_trial(trial.trial_id, {"loss": float(step), "m%d" % step: 1.0},
                                step=step)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
except hpstore.DatabaseError as exc:
    print("full" if "is full" in str(exc) else exc, flush=True)
os._exit(0)  # as a worker that died there: the log and its index stay
"""


def test_a_search_that_filled_a_disk_of_small_blocks_is_said_full_not_killed_by_sigbus(
        tmp_path):
    # ext4 of 1 KiB blocks (mke2fs's default below 512 MB): once a search had filled it,
    # every reader (the tools, an oracle, plain sqlite3) died of SIGBUS writing the log's
    # index that SQLite maps into memory, with no word said
    image, target = an_ext4_image(tmp_path, 6, "-m", "0", "-b", "1024")
    script = ('mount -o loop "$0" "$1" || exit 99; '
              f'"{sys.executable}" -c "$2" "$1/s.db"; ls "$1"; '
              f'"{sys.executable}" -m hpstore summary "$1/s.db"; echo "exit $?"')
    done = subprocess.run(["unshare", "--mount", "sh", "-c", script, str(image), str(target),
                           _FILL_WITH_TRIALS], capture_output=True, text=True,
                          timeout=DEADLINE, env={**os.environ,
                                                 "PYTHONPATH": os.pathsep.join(sys.path)})
    if done.returncode == 99:
        pytest.skip(f"no loop device to mount an image on: {done.stderr}")
    said = done.stdout.split()
    assert said[0] == "full" and "s.db-wal" in said, done.stdout + done.stderr
    assert said[-2:] == ["exit", "2"], done.stdout + done.stderr
    assert f"the disk holding {target} is full" in done.stderr and "SIGBUS" in done.stderr
    assert "file itself is unchanged" in done.stderr


_AFTER_THE_SWITCH = """
import sys
import hpstore
for path in sys.argv[1:]:
    try:
        hpstore.RandomSearchOracle("loss", max_trials=5, database=path)
    except Exception as exc:
        print(type(exc).__name__, "|", exc)
"""


def test_a_file_system_switched_to_read_only_after_an_error_is_said_so(tmp_path):
    # ext4 mounted errors=remount-ro turns itself read-only after an error of its disk,
    # with no read-only flag a check can see: a bare OSError for a new search, and an
    # existing one called "damaged or not a database"
    image, target = an_ext4_image(tmp_path, 16)
    made = ("import sys\nfrom _faults import complete_one\nfrom _workers import open_oracle\n"
            "with open_oracle(sys.argv[1], max_trials=5) as o:\n"
            "    [complete_one(o, 'w') for _ in range(3)]\n")
    script = (
        'mount -o loop,errors=remount-ro "$0" "$1" || exit 99; '
        f'"{sys.executable}" -c "$2" "$1/s.db" || exit 98; '
        'dev=$(basename "$(findmnt -n -o SOURCE "$1")"); '
        '[ -w "/sys/fs/ext4/$dev/trigger_fs_error" ] || exit 97; '
        'echo 1 > "/sys/fs/ext4/$dev/trigger_fs_error"; '
        f'"{sys.executable}" -c "$3" "$1/s.db" "$1/new.db"; '
        f'"{sys.executable}" -m hpstore summary "$1/s.db"; echo "exit $?"; ls -A "$1"')
    done = subprocess.run(["unshare", "--mount", "sh", "-c", script, str(image), str(target),
                           made, _AFTER_THE_SWITCH], capture_output=True, text=True,
                          timeout=DEADLINE,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if done.returncode in (97, 99):
        pytest.skip(f"no loop device, or no ext4 error trigger: {done.stderr}")
    lines = done.stdout.splitlines()
    assert len(lines) >= 4, done.stdout + done.stderr
    for line, path in zip(lines[:2], ("s.db", "new.db")):
        kind, said = line.split(" | ", 1)
        assert kind == "ReadOnlyDatabaseError" and f"{target}/{path}" in said, line
        assert "read-only" in said and "damaged" not in said and "dmesg" in said, line
    assert lines[2] == "exit 2" and "refuses every write as read-only" in done.stderr
    assert not any("probe" in name for name in lines[3:]), lines  # nothing left beside it


# -- 2. read-only parts of a search ---------------------------------------------------------------
@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """A search as a clean exit leaves it ("quiet": WAL mode, no log file) and as kill -9
    leaves it ("hot": a log holding commits, a dead worker's trial RUNNING)."""
    top = tmp_path_factory.mktemp("templates")
    quiet = top / "quiet"
    quiet.mkdir()
    path = quiet / "s.db"
    with open_oracle(str(path), max_trials=50, seed=3) as oracle:
        done = [complete_one(oracle, "owner") for _ in range(3)]
    assert query(str(path), "PRAGMA journal_mode") == [("wal",)]
    assert not Path(f"{path}-wal").exists()  # the last close folded the log into the file
    hot = top / "hot"
    shutil.copytree(quiet, hot)
    proc, held, _ = hold(str(hot / "s.db"), "doomed")
    kill(proc)
    assert size(hot / "s.db-wal") > 0
    return {"quiet": quiet, "hot": hot, "done": done, "held": held}


def _read_only(*names: str, folder_mode: int | None = None) -> Any:
    def apply(folder: Path) -> None:
        for name in names:
            target = folder / name
            if target.is_dir():
                for inner in target.iterdir():
                    os.chmod(inner, 0o444)
                os.chmod(target, 0o555)
            else:
                os.chmod(target, 0o444)
        if folder_mode is not None:
            os.chmod(folder, folder_mode)
    return apply


# name: (template, what the ordinary user does, what is made read-only)
REFUSALS = {
    "file": ("hot", "open", _read_only("s.db")),
    "folder": ("hot", "open", _read_only(folder_mode=0o555)),
    "wal": ("hot", "open", _read_only("s.db-wal")),
    "shm": ("hot", "open", _read_only("s.db-shm")),
    "sidecar": ("hot", "open", _read_only("s.db.hpstore")),
    "quiet folder, open": ("quiet", "open", _read_only(folder_mode=0o555)),
    "quiet folder, trials": ("quiet", "trials", _read_only(folder_mode=0o555)),
}


@dataclass
class Refusal:
    folder: Path
    outcome: str
    text: str
    before: dict[str, Any]
    after: dict[str, Any]


def _files(folder: Path) -> dict[str, Any]:
    """The names under ``folder``, and the main file and log byte for byte (the -shm index
    is rebuilt by any reader and not compared)."""
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    return {"names": names, "s.db": digest(folder / "s.db"), "wal": digest(folder / "s.db-wal")}


@pytest.fixture(scope="module")
def refusals(templates):
    """Copies of the templates with one part read-only, each opened by an ordinary user (one
    child does them all): what it got, and the copy's files before and after."""
    with shared_folder(0o755) as top:
        jobs, before = [], {}
        for number, (name, (template, action, make_read_only)) in enumerate(REFUSALS.items()):
            folder = top / f"case{number}"
            shutil.copytree(templates[template], folder)
            open_up(folder)
            make_read_only(folder)
            jobs.append((name, action, str(folder / "s.db")))
            before[name] = _files(folder)
        outcomes = run_child(act_as, NOBODY, jobs)
        assert "crash" not in outcomes, outcomes["crash"]
        yield {name: Refusal(Path(path).parent, *outcomes[name], before[name],
                             _files(Path(path).parent)) for name, _, path in jobs}


@pytest.mark.parametrize("part", ["file", "folder", "wal", "shm"])
def test_a_crashed_search_with_a_read_only_part_is_refused_at_open(refusals, templates, part):
    case = refusals[part]
    assert case.outcome == "ReadOnlyDatabaseError", case.text
    assert str(case.folder) in case.text
    assert case.after == case.before  # nothing created or removed; file and log unchanged
    # made writable again, the search resumes with everything the crash left committed
    open_up(case.folder)
    with open_oracle(str(case.folder / "s.db")) as oracle:
        for trial_id, score in templates["done"]:
            assert oracle.get_trial(trial_id).status == "COMPLETED"
            assert oracle.get_trial(trial_id).score == score
        assert oracle.create_trial("owner").trial_id == templates["held"]  # the dead one's


@pytest.mark.parametrize("part, culprit", [("sidecar", "s.db.hpstore"), ("wal", "s.db-wal"),
                                           ("shm", "s.db-shm")])
def test_a_read_only_part_is_named_in_the_error(refusals, part, culprit):
    case = refusals[part]
    assert case.outcome == "ReadOnlyDatabaseError" and culprit in case.text, (
        case.outcome, case.text)
    assert case.after == case.before


def test_a_finished_search_in_a_read_only_folder_is_refused_as_read_only(refusals):
    case = refusals["quiet folder, open"]
    assert case.outcome == "ReadOnlyDatabaseError", (case.outcome, case.text)
    assert "read-only" in case.text


def test_a_finished_search_in_a_read_only_folder_can_be_inspected(refusals, templates):
    case = refusals["quiet folder, trials"]
    assert case.outcome == "ok", case.text
    listed = {row["trial_id"]: row["score"] for row in json.loads(case.text)}
    assert listed == dict(templates["done"])


def test_a_crashed_search_on_a_read_only_file_system_can_be_checked(tmp_path, templates):
    # (a snapshot, a backup disk: hpstore check opened a dead worker's liveness file for
    # writing and stopped at "Read-only file system", where a folder the user may not
    # write was read fine)
    folder = tmp_path / "hot"
    shutil.copytree(templates["hot"], folder)
    assert any(n.endswith(".alive") for n in os.listdir(folder / "s.db.hpstore"))
    before = _files(folder)
    done = in_a_mount(folder, READ_ONLY, sys.executable, "-m", "hpstore", "check",
                       str(folder / "s.db"))
    assert done.returncode == 0 and done.stderr == "", (done.stdout, done.stderr)
    assert "integrity: ok" in done.stdout
    assert f"trial {templates['held']}: its worker 'doomed' is gone" in done.stdout
    assert _files(folder) == before


def test_a_crashed_search_without_its_logs_index_on_a_read_only_mount_is_said_so(tmp_path,
                                                                                    templates):
    # its commits in the -wal, the -shm gone: SQLite cannot read it on a read-only mount,
    # which was told "switched itself to read-only after an error of its disk"
    folder = tmp_path / "hot"
    shutil.copytree(templates["hot"], folder)
    os.unlink(folder / "s.db-shm")
    done = in_a_mount(folder, READ_ONLY, sys.executable, "-m", "hpstore", "summary",
                      str(folder / "s.db"))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "is on a file system mounted read-only" in done.stderr, done.stderr
    assert "s.db-shm" in done.stderr and "dmesg" not in done.stderr


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="switching between two ordinary users needs root")
@pytest.mark.parametrize("visit", ["open", "trials"])
def test_another_users_visit_leaves_nothing_that_stops_the_owner(visit):
    with shared_folder(0o1777) as folder:  # shared, as /tmp is
        path = str(folder / "s.db")
        first = run_child(act_as, NOBODY, [("start", "search", path)])
        assert first["start"][0] == "ok", first
        names = sorted(os.listdir(folder))
        visited = run_child(act_as, OTHER_USER, [("visit", visit, path)])
        outcome, text = visited["visit"]
        assert outcome == ("ReadOnlyDatabaseError" if visit == "open" else "ok"), text
        assert sorted(os.listdir(folder)) == names
        again = run_child(act_as, NOBODY, [("resume", "search", path)])
        assert again["resume"][0] == "ok", again


def test_a_new_search_file_on_a_disk_without_room_for_it_is_not_left_damaged(tmp_path):
    # Its log could not be folded into it as it closed (the disk full), which sqlite3's
    # close() does not say: the file without its pages was put in place, and every later
    # open, once there was room, called the search damaged
    done = in_a_mount(tmp_path, "true", sys.executable, "-c",
                      "import sys, _faults; _faults.new_files_on_small_disks(sys.argv[1])",
                      str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    unmade = [disk for disk in report if "s.db" not in disk["left"]]
    assert unmade and len(unmade) < len(report)  # (disks too small, and large enough)
    for disk in report:
        if disk["first"] is not None:
            kind, said = disk["first"]
            assert kind == "DatabaseError" and "is full" in said, disk
            assert "damaged" not in said
        assert disk["integrity"] == [["ok"]], disk  # room given: the search goes on
        assert disk["trials"] == (1 if disk in unmade else 2), disk


def limited_search(path: Path, before: bool) -> str:
    """What a search in a process limited to files of 300,000 bytes (``ulimit -f``, set
    before or after the search is opened) says as it fails, run until it does."""
    limit = "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))\n"
    script = ("import resource, sys, _faults, hpstore\n" + (limit if before else "")
              + "oracle = _faults.open_oracle(sys.argv[1], max_trials=100_000)\n"
              + ("" if before else limit)
              + "try:\n"
              "    while _faults.complete_one(oracle, 'w'):\n"
              "        pass\n"
              "except hpstore.DatabaseError as exc:\n"
              "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, timeout=DEADLINE,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_search_under_a_file_size_limit_fills_the_file_not_its_log(tmp_path):
    # the log, folded every 10,000 pages (10 MB), reached the limit at a 51 KB file: on a
    # small disk or under a small limit the log is folded sooner
    said = limited_search(tmp_path / "s.db", before=True)
    assert "the file reached this process's file size limit of 300000 bytes" in said, said
    assert (tmp_path / "s.db").stat().st_size > 300_000 * 0.9


def test_a_file_size_limit_reached_by_the_log_names_the_log(tmp_path):
    # "the file reached this process's file size limit": its log it was (a limit set once
    # the search was open, its log then folded every 10,000 pages)
    said = limited_search(tmp_path / "s.db", before=False)
    assert "its log s.db-wal reached this process's file size limit of 300000 bytes " \
           "(ulimit -f)" in said, said
    assert (tmp_path / "s.db").stat().st_size < 300_000 / 2


def test_a_search_on_a_small_disk_fills_it_with_trials_not_its_log(tmp_path):
    # a 2 MB disk was full of log at about 30 trials, their data 15 KB
    script = ("import sys, _faults\n"
              "oracle = _faults.open_oracle(sys.argv[1] + '/s.db', max_trials=1000)\n"
              "done = 0\n"
              "while _faults.complete_one(oracle, 'w'):\n"
              "    done += 1\n"
              "oracle.close()\n"
              "print(done)\n")
    done = in_a_mount(tmp_path, 'mount -t tmpfs -o size=2m tmpfs "$1"', sys.executable, "-c",
                      script, str(tmp_path))
    assert done.returncode == 0 and done.stdout.split() == ["1000"], done.stderr
