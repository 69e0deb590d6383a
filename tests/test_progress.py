"""What a search prints when its output is not a terminal: whole values, never a half."""

from __future__ import annotations

import pytest

import hpstore
from hpstore.progress import _fmt_value


def _values_part(line: str) -> str:
    """The ``name=value, ...`` part of a per-trial progress line."""
    return line.split(": ", 1)[1]


def test_trial_lines_are_cut_between_values_never_inside_one(capsys):
    def build(hp):
        hp.Float("learning_rate", 1e-5, 0.1, sampling="log")
        hp.Choice("activation", ["relu", "tanh"])
        hp.Choice("comment", ["a rather long piece of text, with a comma, that goes on " * 2])
        for i in range(6):
            hp.Int(f"layer_{i}_units", 100_000, 999_999)

    tuner = hpstore.Tuner(hpstore.RandomSearchOracle("loss", max_trials=3, seed=2),
                          hypermodel=build, run_trial=lambda t: 1.0, verbose=1)
    tuner.search()
    lines = [line for line in capsys.readouterr().out.splitlines() if " trial " in line]
    assert len(lines) == 3
    for line, trial in zip(lines, sorted(tuner.oracle.trials.values(),
                                         key=lambda t: int(t.trial_id))):
        whole = [_fmt_value(k, v) for k, v in trial.hyperparameters.values.items()]
        items = _values_part(line).split(", ")
        assert items[-1].startswith("... (+") and items[-1].endswith(" more)"), line
        shown = items[:-1]
        assert shown == whole[:len(shown)], line  # each one whole, in order
        assert int(items[-1][6:-6]) == len(whole) - len(shown)


def test_a_value_too_long_to_show_is_described_and_line_breaks_are_quoted():
    assert _fmt_value("notes", "x" * 500) == "notes=<str of 502 characters>"
    assert _fmt_value("name", "two\nlines") == "name='two\\nlines'"
    assert _fmt_value("lr", 0.000123456) == "lr=0.0001235"
    assert _fmt_value("units", 64) == "units=64"


def test_a_display_that_cannot_encode_a_name_shows_an_escape_and_the_search_goes_on(
        monkeypatch):
    # stdout in ASCII (PYTHONIOENCODING=ascii, a C locale): the search stopped after its
    # first trial with UnicodeEncodeError
    import io
    import sys

    raw = io.BytesIO()
    ascii_out = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", ascii_out)

    def build(hp):
        hp.Choice("modèle", ["forêt", "木", "x"])

    tuner = hpstore.Tuner(hpstore.RandomSearchOracle("loss", max_trials=3, seed=2),
                          hypermodel=build, run_trial=lambda t: 1.0, verbose=1)
    tuner.search()
    # the summaries a script prints next, too (a UnicodeEncodeError once the search was done)
    tuner.search_space_summary()
    tuner.results_summary(1)
    tuner.oracle.get_best_trials(1)[0].summary()
    ascii_out.flush()
    assert len(tuner.oracle.trials) == 3
    shown = raw.getvalue().decode("ascii")
    assert "mod\\xe8le=" in shown and shown.count(" trial ") >= 3
    # (the search's end, results_summary and summary: each shows the best trial)
    assert "mod\\xe8le (Choice" in shown and shown.count("mod\\xe8le: ") == 3, shown


def test_a_search_started_with_its_output_closed_runs_to_its_end(tmp_path):
    # a job scheduler or a daemon may start a script with no standard output at all
    # (sys.stdout is None): the display ended the search on an AttributeError
    import os
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    script = ("import hpstore\n"
              "def build(hp):\n"
              "    hp.Float('x', -1, 1)\n"
              "tuner = hpstore.Tuner(hpstore.RandomSearchOracle('loss', max_trials=4, "
              "database='s.db'), hypermodel=build, run_trial=lambda t: t.hyperparameters"
              ".get('x') ** 2, verbose=1)\n"
              "tuner.search()\n"
              "tuner.results_summary()\n")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, preexec_fn=lambda: os.close(1),
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT count(*) FROM trials WHERE status = 'COMPLETED'"
                            ).fetchone()[0] == 4


def _on_a_terminal(tmp_path, hp, tuner_id: str, columns: int) -> str:
    """What a display writes to a terminal ``columns`` wide for three trials."""
    import fcntl
    import pty
    import struct
    import termios

    from _tools import read_terminal

    from hpstore.progress import Progress

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    screen = open(follower, "w", encoding="utf-8", closefd=True)  # noqa: SIM115
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, seed=2, hyperparameters=hp,
                                        database=str(tmp_path / "wide.db"))
    progress = Progress(oracle.project, "min", 1, stream=screen)
    for _ in range(3):
        trial = oracle.create_trial(tuner_id)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        progress.poll()
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        progress.poll()
    progress.close()
    screen.close()
    oracle.close()
    return read_terminal(leader)


def _live_lines(tmp_path, hp, tuner_id: str, columns: int) -> list[str]:
    """The live lines a display shows of three trials in a terminal ``columns`` wide:
    what follows each clearing with no line end (a permanent trial line may wrap: it
    stays, in a log too)."""
    shown = _on_a_terminal(tmp_path, hp, tuner_id, columns)
    return [part for part in shown.split("\r\x1b[2K")[1:] if part and "\n" not in part]


@pytest.fixture(autouse=True)
def _a_terminal_that_redraws(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")  # (whatever runs the tests: a CI job may set none)


def test_a_dumb_terminal_gets_the_trial_lines_and_no_control_sequence(tmp_path, monkeypatch):
    # Emacs' shell and CI logs (TERM=dumb) showed "^M^[[2K0/4 done | running ..." as text
    hp = hpstore.HyperParameters()
    hp.Int("units", 1, 100)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert "\x1b[2K" in _on_a_terminal(tmp_path / "a", hp, "w", 80)  # (xterm: it redraws)
    monkeypatch.setenv("TERM", "dumb")
    shown = _on_a_terminal(tmp_path / "b", hp, "w", 80)
    assert "\x1b" not in shown and "\r\x1b" not in shown
    assert shown.count(" COMPLETED ") == 3, shown


def test_the_live_line_fits_the_terminal_it_is_shown_in(tmp_path):
    # it was cut at 200 characters whatever the terminal's width: a line wrapped in an
    # 80-column terminal, and clearing it left its first row behind at every redraw
    hp = hpstore.HyperParameters()
    for i in range(6):
        hp.Int(f"layer_{i}_units", 100_000, 999_999)
    live = _live_lines(tmp_path, hp, "a-worker-with-a-long-name", 60)
    assert live and all(len(p) <= 59 for p in live), live


def test_the_live_line_fits_the_terminal_in_columns_with_wide_characters(tmp_path):
    # cut by characters, a line of CJK names took twice the columns it was given: it
    # wrapped, and every redraw left a row behind
    hp = hpstore.HyperParameters()
    for i in range(6):
        hp.Choice(f"層{i}", ["日本語のテキスト", "中文の値"])
    live = _live_lines(tmp_path, hp, "作業者", 60)
    # every character past ASCII here is a CJK one, two columns wide
    assert live and all(any(ord(c) > 127 for c in p) for p in live), live
    assert all(len(p) + sum(ord(c) > 127 for c in p) <= 59 for p in live), live


def _end_one(oracle, loss=1.0):
    """A trial of ``oracle`` created, reported and ended COMPLETED."""
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": loss})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_the_count_of_done_trials_never_steps_back_when_trials_end_between_two_reads(
        tmp_path, monkeypatch):
    # The status log and the count of finished trials were read apart: trials that ended
    # between the two reads were in the count and not among the log's changes, so the
    # lines ran ahead (2/.., 3/..) and the next poll's stepped back to 2/...
    import io
    import re

    from hpstore import progress, queries

    path = str(tmp_path / "s.db")

    def oracle():
        made = hpstore.RandomSearchOracle("loss", max_trials=10, seed=1, database=path)
        made.hyperparameters.Float("x", 0, 1)
        return made

    mine, other = oracle(), oracle()
    end_one = _end_one

    out = io.StringIO()
    shown = progress.Progress(mine.project, "min", 1, out)
    end_one(mine)
    read = queries.status_changes
    armed = [True]

    def changes_then_two_more_end(project, after):
        found = read(project, after)
        if armed[0]:  # another worker ends two trials right after the log was read
            armed[0] = False
            end_one(other)
            end_one(other)
        return found

    monkeypatch.setattr(progress.queries, "status_changes", changes_then_two_more_end)
    shown.poll()
    shown.poll()
    counts = [int(n) for n in re.findall(r"\((\d+)/10\)", out.getvalue())]
    assert counts == [1, 2, 3], out.getvalue()
    mine.close()
    other.close()


def _read_all(leader: int) -> bytes:
    import os

    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed: all read
            return shown
        if not chunk:
            return shown
        shown += chunk


def test_the_live_line_shows_the_trial_running_and_gives_way_to_what_it_prints(tmp_path):
    # in a search of one process the live line was drawn only after each trial ended, so
    # it always read "running 0 []" with its clock stopped; and what the next trial
    # printed ran on from the end of that line
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    script = ("import hpstore\n"
              "def build(hp):\n"
              "    hp.Int('units', 1, 100)\n"
              "def run(trial):\n"
              "    print('epoch of', trial.trial_id, flush=True)\n"
              "    return 1.0\n"
              "oracle = hpstore.RandomSearchOracle('loss', max_trials=3, seed=0, "
              "database='tty.db')\n"
              "hpstore.Tuner(oracle, hypermodel=build, run_trial=run, tuner_id='w').search()\n")
    leader, follower = pty.openpty()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdin=follower,
                            stdout=follower, stderr=follower,
                            env={**os.environ, "PYTHONPATH": str(root)})
    os.close(follower)
    shown = _read_all(leader)
    os.close(leader)
    assert proc.wait(timeout=120) == 0, shown
    parts = shown.replace(b"\r\n", b"\n").split(b"\r\x1b[2K")
    live = [p for p in parts if b" done | running " in p]
    # each trial's live line, drawn before it runs, names it running
    for trial_id in (b"0", b"1", b"2"):
        assert any(b"running 1 [w:" + trial_id + b"]" in p for p in live), live
    # what a trial prints starts a line of its own: the live line is cleared before it
    for trial_id in (b"0", b"1", b"2"):
        printed = [p for p in parts if b"epoch of " + trial_id in p]
        assert printed and all(p.startswith(b"epoch of ") for p in printed), parts


def test_a_poll_costs_the_same_at_any_size_of_search(tmp_path):
    # Each poll (two a trial) counted the trials by status, reading every trial: at 80,000
    # trials the display cost 18 ms a trial, 50 times a trivial trial itself (verbose=1,
    # the default). The count is kept from the status log's changes; SQLite's instructions
    # are counted here, not time.
    import io

    from hpstore import progress

    def steps_of_a_poll(trials: int) -> int:
        path = str(tmp_path / f"s{trials}.db")
        oracle = hpstore.RandomSearchOracle("loss", max_trials=trials + 1, seed=1,
                                            database=path)
        oracle.hyperparameters.Float("x", 0, 1)
        for _ in range(trials):
            _end_one(oracle)
        out = io.StringIO()
        shown = progress.Progress(oracle.project, "min", 1, out)
        _end_one(oracle, 0.5)
        steps = [0]
        conn = oracle.project.db.connect()
        conn.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 100)
        shown.poll()
        conn.set_progress_handler(None, 100)
        assert f"({trials + 1}/{trials + 1})" in out.getvalue()  # (the count kept is right)
        oracle.close()
        return steps[0]

    small, large = steps_of_a_poll(100), steps_of_a_poll(2_000)
    assert large < 2 * max(small, 1), (small, large)
