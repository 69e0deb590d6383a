"""The files the tools write (`hpstore report -o`, `hpstore export -o`): never over a search
file, its companions or any SQLite file; an existing file only with --force; a bad path is
one error line; new files 0644 whatever the umask."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _workers import open_oracle

from hpstore.cli import main

ROOT = Path(__file__).resolve().parent.parent
WRITERS = [("report", []), ("export", []), ("export", ["--format", "json"])]


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content's digest (folders as "dir")."""
    return {p.relative_to(folder).as_posix(): "dir" if p.is_dir() else "link" if not p.exists()
            else hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))}


@pytest.fixture
def search(tmp_path) -> Path:
    """A small search whose worker is still alive: the -wal, -shm and lock files exist."""
    path = tmp_path / "search.db"
    oracle = open_oracle(str(path), max_trials=4)
    for _ in range(2):
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.create_trial("w")  # running: its liveness lock is held
    yield path
    oracle.close()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> bool:
    return err.startswith("hpstore: error:") and err.count("\n") == 1


def companions(path: Path) -> list[Path]:
    sidecar = path.with_name(path.name + ".hpstore")
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal"), sidecar,
            sidecar / "oracle.lock", sidecar / "new-file.html"]


@pytest.mark.parametrize(("tool", "extra"), WRITERS)
def test_never_writes_over_the_search_file_or_its_companions(search, tmp_path, capsys, tool,
                                                             extra):
    assert Path(f"{search}-wal").exists() and list(
        search.with_name("search.db.hpstore").glob("worker-*.alive"))
    targets = companions(search)
    targets += [search.with_name("search.db.hpstore") / p.name
                for p in search.with_name("search.db.hpstore").glob("worker-*.alive")]
    (tmp_path / "sym.db").symlink_to(search)  # a symbolic link to the file
    (tmp_path / "sym-wal").symlink_to(Path(f"{search}-wal"))
    (tmp_path / "dangling").symlink_to(Path(f"{search}-journal"))  # to a companion to be
    os.link(search, tmp_path / "hard.db")  # a hard link: another name, the same inode
    (tmp_path / "sub").mkdir()
    targets += [tmp_path / "sym.db", tmp_path / "sym-wal", tmp_path / "dangling",
                tmp_path / "hard.db", tmp_path / "sub" / ".." / "search.db"]
    before = tree_digest(tmp_path)
    for target in targets:
        for force in ([], ["--force"]):
            code, _, err = run(capsys, tool, str(search), *extra, "-o", str(target), *force)
            assert code == 2 and one_error_line(err), (target, force, err)
            assert "Refusing" in err, err
    assert tree_digest(tmp_path) == before  # not a byte changed, nothing created


@pytest.mark.parametrize(("tool", "extra"), WRITERS)
def test_never_writes_over_any_sqlite_file(search, tmp_path, capsys, tool, extra):
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    code, _, err = run(capsys, tool, str(search), *extra, "-o", str(other), "--force")
    assert code == 2 and one_error_line(err) and "SQLite database" in err
    assert other.read_bytes() == before


@pytest.mark.parametrize(("tool", "extra"), WRITERS)
def test_an_existing_file_is_replaced_only_with_force(search, tmp_path, capsys, tool, extra):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    code, _, err = run(capsys, tool, str(search), *extra, "-o", str(target))
    assert code == 2 and one_error_line(err) and "--force" in err
    assert target.read_text() == "keep me"
    code, _, err = run(capsys, tool, str(search), *extra, "-o", str(target), "--force")
    assert code == 0, err
    assert "keep me" not in target.read_text() and target.stat().st_size > 100


@pytest.mark.parametrize(("tool", "extra"), WRITERS)
def test_a_bad_output_path_is_one_error_line(search, tmp_path, capsys, tool, extra):
    for target, words in [(tmp_path / "missing" / "out.html", "does not exist"),
                          (tmp_path, "is a folder"), ("", "empty")]:
        code, _, err = run(capsys, tool, str(search), *extra, "-o", str(target))
        assert code == 2 and one_error_line(err) and words in err, (target, err)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o500)
    try:
        if os.access(tmp_path / "locked", os.W_OK):  # root writes anywhere
            return
        code, _, err = run(capsys, tool, str(search), *extra, "-o",
                             str(tmp_path / "locked" / "out"))
        assert code == 2 and one_error_line(err) and "ermission" in err, err
    finally:
        (tmp_path / "locked").chmod(0o700)


@pytest.mark.parametrize(("tool", "extra", "suggested"), [
    ("report", [], "report.html"), ("export", [], "trials.csv"),
    ("export", ["--format", "jsonl"], "trials.jsonl")])
def test_a_folder_given_as_output_gets_a_file_name_of_the_tools_kind(
        search, tmp_path, capsys, tool, extra, suggested):
    code, _, err = run(capsys, tool, str(search), *extra, "-o", str(tmp_path))
    assert code == 2 and f"such as {tmp_path / suggested}." in err, err


@pytest.mark.parametrize("tool", ["summary", "trials", "best", "history", "export", "check",
                                  "report", "sql", "show", "watch"])
def test_a_bad_database_path_is_one_error_line(tmp_path, capsys, tool):
    extra = {"sql": ["SELECT 1"], "show": ["1"], "watch": ["--once"],
             "report": ["-o", str(tmp_path / "r.html")]}.get(tool, [])
    for database, words in [(tmp_path / "nowhere" / "x.db", "does not exist"),
                            (tmp_path, "is a folder")]:
        code, _, err = run(capsys, tool, str(database), *extra)
        assert code == 2 and one_error_line(err) and words in err, (tool, err)
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "r.html").exists()


def test_the_scripts_print_no_traceback(search, tmp_path):
    for argv in (["report", str(search), "-o", str(search)],
                 ["export", str(search), "-o", str(tmp_path / "no" / "such" / "dir.csv")],
                 ["report", str(search), "-o", str(tmp_path)]):
        done = subprocess.run([sys.executable, str(ROOT / "tools" / f"{argv[0]}.py"), *argv[1:]],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 2 and one_error_line(done.stderr), done.stderr


@pytest.mark.parametrize(("tool", "extra"), WRITERS)
def test_outputs_are_not_world_writable_under_umask_zero(search, tmp_path, capsys, tool,
                                                         extra):
    target = tmp_path / "out.file"
    old = os.umask(0)
    try:
        code, _, err = run(capsys, tool, str(search), *extra, "-o", str(target))
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_import_into_a_bad_database_path_is_one_error_line(tmp_path, capsys):
    fixture = ROOT / "tests" / "fixtures" / "keras_tuner_project"
    for database, words in [(tmp_path / "nowhere" / "x.db", "does not exist"),
                            (tmp_path, "is a folder")]:
        code, _, err = run(capsys, "import-keras-tuner", str(fixture), str(database))
        assert code == 2 and one_error_line(err) and words in err, err
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(("name", "args", "first"), [
    ("t.json", [], "["), ("t.JSONL", [], "{"), ("t.csv", [], "trial_id,"),
    ("t.txt", [], "trial_id,"), ("t.json", ["--format", "csv"], "trial_id,")])
def test_export_writes_the_format_its_file_is_named_for(search, tmp_path, name, args, first):
    # -o trials.json wrote CSV under a .json name, which enqueue --file then refused
    out = tmp_path / name
    assert main(["export", str(search), "-o", str(out), *args]) == 0
    assert out.read_text().startswith(first)



def test_exports_help_gives_the_format_it_really_defaults_to(capsys):
    # --help said "(default: csv)" for --format, while `-o t.json` writes JSON
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: csv)" not in text
    assert "the -o file's extension" in text

@pytest.mark.parametrize(("tool", "extra"), WRITERS)
def test_a_named_pipe_is_written_to_its_reader_started_before_or_after(
        search, tmp_path, capsys, tool, extra):
    # with no reader yet, the tools waited for one, saying nothing (a hang, to the user)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, there first
    try:
        code, _, err = run(capsys, tool, str(search), *extra, "-o", str(fifo))
        assert code == 0, err
        received = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert len(received) > 100 and stat.S_ISFIFO(fifo.stat().st_mode)
    with subprocess.Popen(  # no reader yet: it says what it waits for, then writes
            [sys.executable, "-m", "hpstore", tool, str(search), *extra, "-o", str(fifo),
             "--force"], stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)}) as proc:
        assert proc.stderr is not None
        said = proc.stderr.readline()
        assert said.startswith(f"hpstore: waiting for a program to read {fifo}"), said
        with open(fifo, "rb") as pipe:
            received = pipe.read()
        assert proc.wait(timeout=120) == 0
    assert len(received) > 100


@pytest.mark.parametrize(("tool", "extra"), WRITERS)
def test_a_pipe_whose_reader_stopped_is_an_error(search, tool, extra):
    # it was an exit code 0 with the output cut short and nothing said
    read_end, write_end = os.pipe()
    os.close(read_end)
    done = subprocess.run(
        [sys.executable, "-m", "hpstore", tool, str(search), *extra, "-o",
         f"/dev/fd/{write_end}"], pass_fds=(write_end,), capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    os.close(write_end)
    assert done.returncode == 2 and one_error_line(done.stderr), done.stderr
    assert "the program reading it stopped" in done.stderr


@pytest.mark.parametrize(("tool", "extra"), WRITERS)
def test_a_pipe_given_by_its_descriptor_is_written(search, tool, extra):
    # /dev/fd/N, as a shell's `-o >(gzip > out.gz)` gives it: its link names no path, and
    # the tools refused it as "No such file or directory"
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe:
        done = subprocess.run(
            [sys.executable, "-m", "hpstore", tool, str(search), *extra, "-o",
             f"/dev/fd/{write_end}"], pass_fds=(write_end,), capture_output=True, text=True,
            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        os.close(write_end)
        received = pipe.read()
    assert done.returncode == 0, done.stderr
    assert len(received) > 100


def test_a_tools_times_are_the_views_times_to_the_millisecond(tmp_path, capsys):
    # a tool cut the milliseconds where the views round them: joined on the time, a third
    # of `hpstore history`'s rows found no row of status_log
    import csv
    import io
    import random

    from hpstore.rendering import iso_time

    conn = sqlite3.connect(":memory:")
    rng = random.Random(5)
    times = [rng.uniform(1.6e9, 1.9e9) for _ in range(3000)]
    times += [round(t, 3) + 0.0005 for t in times[:1000]]  # halves: SQLite's rounding
    for at in times:
        (view,) = conn.execute("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?, 'unixepoch')",
                               (at,)).fetchone()
        assert iso_time(at) == view, at
    path = tmp_path / "timed.db"
    with open_oracle(str(path), max_trials=20) as oracle:
        for _ in range(20):
            trial = oracle.create_trial("w")
            trial.status = "COMPLETED"
            oracle.update_trial(trial.trial_id, {"loss": 1.0})
            oracle.end_trial(trial)
    code, out, _ = run(capsys, "history", str(path), "--format", "csv")
    assert code == 0
    printed = sorted((r["trial_id"], r["at"]) for r in csv.DictReader(io.StringIO(out)))
    with sqlite3.connect(path) as db:
        logged = sorted(db.execute("SELECT trial_id, at FROM status_log"))
    assert printed == logged and len(logged) == 40


@pytest.mark.parametrize("tool, extra, first", [("report", [], "<!DOCTYPE html>"),
                                                ("export", [], "trial_id,"),
                                                ("export", ["--format", "json"], "[")])
def test_a_dash_writes_to_standard_output_and_no_file(search, tmp_path, monkeypatch, capsys,
                                                      tool, extra, first):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, tool, str(search), "-o", "-", *extra)
    assert code == 0, err
    assert out.lstrip().startswith(first), out[:80]
    assert not (tmp_path / "-").exists()


# -- no room for the output ----------------------------------------------------------------------
def _report_into(folder: Path, search: Path, *extra: str) -> list[str]:
    """A shell command (for in_a_mount) writing the report of ``search`` to
    ``folder``/out.html, then showing what the file holds (or that there is none)."""
    script = (f'"{sys.executable}" -m hpstore report "{search}" -o "{folder}/out.html" '
              f'{" ".join(extra)}; echo "exit $?"; cat "{folder}/out.html" 2>/dev/null '
              '|| echo "no file"')
    return ["sh", "-c", script]


@pytest.mark.skipif(sys.platform == "win32", reason="mount namespaces")
def test_an_output_onto_a_full_disk_names_it_and_leaves_no_part_of_it(search, tmp_path):
    from _faults import in_a_mount

    target = tmp_path / "small"
    target.mkdir()
    done = in_a_mount(target, 'mount -t tmpfs -o size=4k tmpfs "$1"',
                      *_report_into(target, search))
    said = done.stderr.splitlines()
    assert said and said[-1].startswith(f"hpstore: error: Cannot write {target}/out.html: "
                                        f"the disk holding {target} is full"), done.stderr
    assert "nothing was written" in said[-1] and "Traceback" not in done.stderr
    assert done.stdout.splitlines() == ["exit 2", "no file"], done.stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="a Linux device")
def test_a_device_that_takes_nothing_is_not_called_a_full_disk(search, capsys):
    # -o /dev/full said "the disk holding /dev is full (..., 12630093824 bytes free of the
    # 31964 it needs)"
    code, _, err = run(capsys, "report", str(search), "-o", "/dev/full")
    assert code == 2, err
    assert err.startswith("hpstore: error: Cannot write /dev/full: it refused the data"), err
    assert "is full" not in err and "such as /dev/full" in err and "another output" in err


@pytest.mark.skipif(sys.platform == "win32", reason="mount namespaces")
def test_a_file_replaced_with_force_on_a_full_disk_stays_as_it_was(search, tmp_path):
    # --force over an existing file: the disk filled half-way through left the first
    # half of the new output in its place, read as a whole one
    from _faults import in_a_mount

    target = tmp_path / "small"
    target.mkdir()
    done = in_a_mount(target, 'mount -t tmpfs -o size=8k tmpfs "$1" && echo old > '
                      '"$1/out.html"', *_report_into(target, search, "--force"))
    assert f"the disk holding {target} is full" in done.stderr, done.stderr
    assert f"{target}/out.html is as it was" in done.stderr, done.stderr
    assert done.stdout.splitlines() == ["exit 2", "old"], done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_an_output_past_the_file_size_limit_names_the_limit(search, tmp_path):
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.RLIM_INFINITY))

    out = tmp_path / "out.html"
    done = subprocess.run([sys.executable, "-m", "hpstore", "report", str(search), "-o",
                           str(out)], capture_output=True, text=True, timeout=120,
                          preexec_fn=limit)
    assert done.returncode == 2, done.stderr
    assert one_error_line(done.stderr), done.stderr
    assert "(ulimit -f: 8192 bytes)" in done.stderr and str(out) in done.stderr, done.stderr
    assert not out.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("form", ["csv", "json"])
def test_a_standard_output_that_runs_out_of_room_is_an_error_not_a_cut_output(tmp_path, form):
    # `hpstore export DB > f.csv` onto a disk that filled part of the way through: Python's
    # buffered writer kept the first 8 KiB, dropped the rest, and the command exited 0
    import resource

    path = tmp_path / "long.db"
    with open_oracle(str(path), max_trials=4) as oracle:
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        oracle.set_trial_note(trial.trial_id, "n" * 200_000)
    command = [sys.executable, "-m", "hpstore", "export", str(path), "--format", form]
    whole = subprocess.run(command, capture_output=True, timeout=120)
    assert whole.returncode == 0 and len(whole.stdout) > 200_000, whole.stderr
    cap = 65536  # room for SQLite's index of the log (32 KiB), not for the output

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, resource.RLIM_INFINITY))

    out = tmp_path / "out.txt"
    with open(out, "wb") as stdout:
        done = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True,
                              timeout=120, preexec_fn=limit)
    assert done.returncode == 2, done.stderr
    assert one_error_line(done.stderr) and "cut short" in done.stderr, done.stderr
    assert "ulimit -f" in done.stderr and "Traceback" not in done.stderr
    assert out.stat().st_size <= cap and whole.stdout.startswith(out.read_bytes())


@pytest.mark.skipif(sys.platform != "linux", reason="an ext4 image mounted on a loop device")
def test_a_file_replaced_with_force_on_a_full_ext4_disk_keeps_its_size(search, tmp_path):
    # ext4 allocates in steps: out of room part of the way, posix_fallocate had already
    # grown the old file with zeros ("old" then KBs of NUL bytes), said "as it was"
    from _faults import an_ext4_image

    image, target = an_ext4_image(tmp_path, 4, "-m", "0")
    fill = ('mount -o loop "$0" "$1" || exit 99; echo old > "$1/out.html"; fallocate -l '
            '$(( ($(df -k --output=avail "$1" | tail -1) - 8) * 1024 )) "$1/filler"; '
            f'"{sys.executable}" -m hpstore report "{search}" -o "$1/out.html" --force; '
            'echo "exit $?"; wc -c < "$1/out.html"; head -c 4 "$1/out.html"')
    done = subprocess.run(["unshare", "--mount", "sh", "-c", fill, str(image), str(target)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if done.returncode == 99:
        pytest.skip(f"no loop device to mount an image on: {done.stderr}")
    assert f"the disk holding {target} is full" in done.stderr, done.stderr
    assert done.stdout.split() == ["exit", "2", "4", "old"], done.stdout + done.stderr


@pytest.mark.parametrize("tool,extra", WRITERS)
def test_a_file_replaced_with_force_is_whole_or_as_it_was(search, tmp_path, capsys,
                                                          monkeypatch, tool, extra):
    # written in place, a tool killed half-way (timeout, cron) left the new text followed
    # by the old file's tail, which read as a whole file
    from hpstore import output_file

    target = tmp_path / "out.txt"
    old = b"OLD" * 300_000
    target.write_bytes(old)
    os.chmod(target, 0o600)
    before = target.stat()

    def cut_off(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise KeyboardInterrupt  # (the process stopped half-way)

    with monkeypatch.context() as patched:
        patched.setattr(output_file, "_write_all", cut_off)
        assert main([tool, str(search), *extra, "-o", str(target), "--force"]) == 130
    assert target.read_bytes() == old  # as it was
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    capsys.readouterr()
    assert run(capsys, tool, str(search), *extra, "-o", str(target), "--force")[0] == 0
    after = target.stat()
    assert b"OLD" not in target.read_bytes() and after.st_ino != before.st_ino
    assert stat.S_IMODE(after.st_mode) == 0o600  # its mode kept
    # a file with another name (a hard link) keeps being one file: written in place
    os.link(target, tmp_path / "other-name.txt")
    target.write_bytes(old)
    assert run(capsys, tool, str(search), *extra, "-o", str(target), "--force")[0] == 0
    assert (tmp_path / "other-name.txt").read_bytes() == target.read_bytes() != old


def test_a_file_with_extended_attributes_is_replaced_in_place_keeping_them(search, tmp_path,
                                                                           capsys):
    # renamed over, a file lost its attributes (and the ACLs kept in them)
    target = tmp_path / "tagged.csv"
    target.write_text("OLD\n")
    try:
        os.setxattr(target, "user.tag", b"kept")
    except OSError as exc:  # (a file system without user attributes has none to lose)
        pytest.skip(f"no user extended attributes here: {exc}")
    before = target.stat().st_ino
    assert run(capsys, "export", str(search), "-o", str(target), "--force")[0] == 0
    assert os.getxattr(target, "user.tag") == b"kept" and target.stat().st_ino == before
    assert "OLD" not in target.read_text()
