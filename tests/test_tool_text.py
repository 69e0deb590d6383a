"""What the tools print of hostile text a search file can hold: no escape sequence reaches a
terminal, one line per row, no CSV cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _tools import read_terminal
from _workers import end_trials, open_oracle

import hpstore
from hpstore.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- hostile text: terminals and spreadsheets -------------------------------------------------

ESC = "\x1b]8;;http://evil.example\x07link\x1b]8;;\x07\x1b[2J\r\u202e\u200f\u200e\u061c"
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+cmd", "@SUM(A1)", "-2+3",
            "\tx", "\rx"]
PLAIN_NUMBERS = ["-1.5", "+3e-4"]


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory):
    """Names, values, project, tuner id and messages full of escape sequences and formulas."""
    path = str(tmp_path_factory.mktemp("hostile") / "hostile.db")
    hp = hpstore.HyperParameters()
    hp.Choice("kind" + ESC, [*FORMULAS, *PLAIN_NUMBERS, "v" + ESC])
    hp.Float("lr", -1, 1)
    oracle = hpstore.RandomSearchOracle(objective="loss" + ESC, max_trials=20, seed=3,
                                        database=path, project_name="p" + ESC,
                                        hyperparameters=hp)
    for i in range(12):
        trial = oracle.create_trial("w" + ESC)
        oracle.update_trial(trial.trial_id, {"loss" + ESC: float(i)}, step=0)
        if i % 3 == 0:
            trial.status = "FAILED"
            trial.message = f"Traceback (most recent call last):\n  line {ESC}\nValueError: {ESC}"
        else:
            trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()
    return path


def controls(text: str) -> set[str]:
    """The control and bidi characters in ``text`` (line breaks between lines are fine)."""
    return {c for c in text if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) <= 0x9f
            or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"}


@pytest.mark.parametrize("argv", [["summary"], ["trials"], ["best", "-n", "3"], ["history"],
                                  ["show", "00"], ["show", "1"], ["watch", "--once"], ["check"],
                                  ["sql", "SELECT * FROM trial_overview"],
                                  ["sql", "SELECT * FROM status_log"],
                                  ["show", "nope" + ESC], ["trials", "--project", "x" + ESC]])
def test_control_characters_never_reach_the_terminal(hostile_db, capsys, argv):
    code, out, err = run(capsys, argv[0], hostile_db, *argv[1:])
    assert code in (0, 2), err
    assert controls(out) == set() and controls(err) == set(), (out, err)
    assert code == 2 or "\\x1b" in out or "\\u001b" in out  # shown as escapes, not dropped
    if code == 2:
        assert err.count("\n") == 1


def test_tables_keep_one_line_per_row(hostile_db, capsys):
    code, out, _ = run(capsys, "sql", hostile_db, "SELECT trial_id, message FROM trials "
                       "WHERE message IS NOT NULL ORDER BY number")
    assert code == 0 and len(out.splitlines()) == 2 + 4  # title, rule, four failed trials
    assert "\\n" in out
    code, out, _ = run(capsys, "history", hostile_db)
    lines = out.splitlines()
    assert len(lines) == 2 + 24 and all("ValueError" in line for line in lines if "FAILED" in line)
    assert "Traceback" not in out  # the last line of the message, not the first


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("tool", ["trials", "export", "best", "sql"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(hostile_db, capsys, tool):
    extra = {"sql": ["SELECT * FROM trial_values"]}.get(tool, [])
    code, out, err = run(capsys, tool, hostile_db, *extra, "--format", "csv")
    assert code == 0, err
    column = "value" if tool == "sql" else next(c for c in csv_rows(out)[0] if "kind" in c)
    cells = {r[column] for r in csv_rows(out) if r[column] and not r[column][0].isalpha()
             and r[column] != "0" and not r[column][0].isdigit()}
    seen_formulas = {c for c in cells if c.lstrip("'") in FORMULAS}
    assert seen_formulas, cells
    assert all(c.startswith("'") for c in seen_formulas)
    assert not any(c.lstrip("'") in PLAIN_NUMBERS and c.startswith("'") for c in cells)
    for row in csv_rows(out):  # numbers stay numbers, negative ones too
        for key in ("score", "lr") if tool != "sql" else ():
            if row.get(key):
                float(row[key])
    code, raw, _ = run(capsys, tool, hostile_db, *extra, "--format", "csv", "--raw")
    raw_cells = {r[column] for r in csv_rows(raw)}
    assert {c.lstrip("'") for c in seen_formulas} <= raw_cells


def test_a_long_note_is_cut_in_a_table_and_whole_in_csv(tmp_path, capsys):
    # every row of a table is padded to its longest cell: one note of 2 MB made each line
    # of `hpstore trials` 2 MB long
    path = str(tmp_path / "notes.db")
    oracle = end_trials(open_oracle(path, max_trials=3), ["COMPLETED"] * 3)
    first = sorted(oracle.trials)[0]
    oracle.set_trial_note(first, "x" * 100_000)
    oracle.close()
    code, out, _ = run(capsys, "trials", path)
    assert code == 0 and max(len(line) for line in out.splitlines()) < 2_000
    assert "x" * 999 + "\u2026" in out
    code, out, _ = run(capsys, "trials", path, "--format", "csv")
    assert code == 0 and "x" * 100_000 in out


def _on_a_terminal(*argv: str, term: str = "xterm") -> str:
    """What ``hpstore ARGV`` writes to a terminal (a pseudo-terminal as its stdout) of
    the kind ``term``."""
    import pty

    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "hpstore", *argv], stdout=child_fd,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": term})
    os.close(child_fd)
    out = read_terminal(main_fd)
    assert proc.wait(60) == 0
    return out


@pytest.mark.parametrize("argv", [["export"], ["trials", "--format", "csv"],
                                  ["history", "--format", "csv"],
                                  ["sql", "SELECT message FROM trials", "--format", "csv"]])
def test_csv_on_a_terminal_shows_the_files_escape_sequences_as_escapes(hostile_db, argv):
    # CSV keeps cells as stored: printed on a terminal, an escape sequence from a note or
    # a message ran there (a title change, a cleared screen)
    name, *rest = argv
    args = [name, hostile_db, *rest]
    if name != "sql":
        args += ["--project", "p" + ESC]
    shown = _on_a_terminal(*args)
    assert "\\x1b" in shown and "\x1b" not in shown


def test_watch_clears_a_terminal_but_not_a_dumb_one(tmp_path):
    # on TERM=dumb (Emacs' shell, a CI log) each view began with "^[[H^[[2J" as text
    path = str(tmp_path / "done.db")
    end_trials(open_oracle(path, max_trials=2), ["COMPLETED"] * 2).close()
    assert _on_a_terminal("watch", path).startswith("\x1b[H\x1b[2J")
    shown = _on_a_terminal("watch", path, term="dumb")
    assert "\x1b" not in shown and "trials done 2/2" in shown, shown


def test_one_long_choice_is_cut_and_does_not_push_the_other_lines_conditions_far_right():
    # a Choice of a hundred values set every line's "when ..." hundreds of columns right
    from hpstore.rendering import space_lines

    hp = hpstore.HyperParameters()
    hp.Choice("model", ["mlp", "cnn"])
    hp.Choice("tokenizer", [f"vocabulary-{n}" for n in range(100)])
    with hp.conditional_scope("model", ["cnn"]):
        hp.Int("filters", 8, 64)
    lines = space_lines(hp.get_config()["space"])
    long_line, conditional = lines[1], lines[2]
    # the first 20 values and how many there are, as search_space_summary() lists them (a
    # Choice of 20,000 ids printed one line of 128,901 characters)
    assert "vocabulary-19, ... (100 values)" in long_line and "vocabulary-20" not in long_line
    assert conditional.index("when model in [cnn]") < 80
    assert lines[0].startswith("  model      Choice  mlp, cnn")  # the others still aligned
    assert conditional.startswith("  filters    Int     8 .. 64")


# -- what a table shows: terminal columns, and a message's telling line ------------------------

WIDE = set("日本語木😀")  # two columns each on a terminal
COMBINING = "\u0301"  # an acute accent written after its letter: no column of its own


def columns_of(text: str) -> int:
    return sum(2 if c in WIDE else 0 if c == COMBINING else 1 for c in text)


def test_columns_line_up_on_a_terminal_whatever_the_characters(tmp_path, capsys):
    # widths counted characters: a CJK value took two columns per character and pushed
    # the next column right, a combining accent took none and pulled it left
    path = str(tmp_path / "wide.db")
    oracle = end_trials(open_oracle(path, max_trials=4), ["COMPLETED"] * 4)
    for trial_id, word in zip(sorted(oracle.trials),
                              ["日本語", f"e{COMBINING}te{COMBINING}", "😀", "plain"]):
        oracle.set_trial_note(trial_id, word)
    oracle.close()
    code, out, err = run(capsys, "sql", path, "SELECT note, trial_id AS next FROM trials "
                         "ORDER BY number")
    assert code == 0, err
    rows = out.splitlines()[2:]
    assert len(rows) == 4
    starts = {columns_of(row[:row.rindex(" ") + 1]) for row in rows}
    assert len(starts) == 1, rows


def test_a_long_cell_of_wide_characters_is_cut_to_the_columns_of_any_other(tmp_path, capsys):
    path = str(tmp_path / "wide_note.db")
    oracle = end_trials(open_oracle(path, max_trials=1), ["COMPLETED"])
    oracle.set_trial_note(sorted(oracle.trials)[0], "木" * 5_000)
    oracle.close()
    code, out, _ = run(capsys, "sql", path, "SELECT note FROM trials")
    cell = out.splitlines()[2]
    assert code == 0 and cell.endswith("\u2026") and set(cell[:-1]) == {"木"}
    assert columns_of(cell) <= 1_000 and columns_of(cell) >= 998  # (cut to the table's 1,000)


def test_a_table_shows_a_tracebacks_own_exception_with_all_its_lines(tmp_path, capsys):
    # tables showed a message's last line: "second", for RuntimeError("first\nsecond")
    def run_trial(trial):
        try:
            raise KeyError("the cause")
        except KeyError as exc:
            raise RuntimeError("first\nsecond") from exc

    path = str(tmp_path / "fails.db")
    oracle = hpstore.RandomSearchOracle("loss", max_trials=1, seed=1, database=path,
                                        max_consecutive_failed_trials=1)
    with pytest.raises(RuntimeError, match="consecutive failures"):
        hpstore.Tuner(oracle, hypermodel=lambda hp: hp.Float("x", 0, 1),
                      run_trial=run_trial, verbose=0).search()
    oracle.close()
    for argv in (["history"], ["show", "0"]):
        code, out, _ = run(capsys, argv[0], path, *argv[1:])
        # (history's row of the change to FAILED; show's, in its table of changes, last)
        line = [line for line in out.splitlines() if "FAILED" in line][-1]
        assert code == 0 and "RuntimeError: first\\nsecond" in line and "KeyError" not in line, out


def test_utf8_text_read_in_an_ascii_locale_is_said_to_be_utf8(tmp_path):
    # LC_ALL=C with PYTHONUTF8=0: the note "nöte" was refused as "bytes that are not UTF-8"
    path = str(tmp_path / "locale.db")
    end_trials(open_oracle(path, max_trials=1), ["COMPLETED"]).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C", "PYTHONUTF8": "0",
           "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run([sys.executable, "-m", "hpstore", "note", path, "0", "n\u00f6te"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and "is UTF-8 text" in done.stderr, done.stderr
    assert "PYTHONUTF8=1" in done.stderr and "not UTF-8" not in done.stderr


def test_a_long_first_look_is_said_on_a_terminal_and_a_second_look_is_quiet(
        tmp_path, monkeypatch, capsys):
    # the first look at a large file checked every row for seconds (12 s at 20 million
    # values) with nothing on the screen
    import fcntl
    import pty
    import struct
    import termios

    from _tools import read_terminal

    from hpstore.store.sqlite import checkmarks

    monkeypatch.setattr(checkmarks, "LONG_CHECK", 5, raising=False)  # (small for large)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TERM", "xterm")
    path = str(tmp_path / "large.db")
    end_trials(open_oracle(path, max_trials=10), ["COMPLETED"] * 4).close()
    shown = []
    for _ in range(2):
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 400, 0, 0))
        with open(follower, "w", encoding="utf-8", closefd=True) as screen:
            monkeypatch.setattr(sys, "stderr", screen)
            assert main(["summary", path]) == 0
        shown.append(read_terminal(leader))
    assert "Checking every row of the file" in shown[0] and shown[0].endswith("\r\x1b[2K")
    assert shown[1] == ""  # marked: only what is new is checked
    assert "Checking" not in capsys.readouterr().out  # (stdout stays the command's)


@pytest.mark.parametrize(("text", "columns"), [
    ("\U0001F468\u200d\U0001F469\u200d\U0001F467", 2),  # a family: one emoji of three
    ("\u2764\ufe0f", 2),  # a heart turned to an emoji
    ("\u1100\u1161", 2),  # a Hangul syllable written as its letters
    ("e\u0301te\u0301", 3), ("日本", 4), ("plain", 5)])
def test_what_a_terminal_draws_as_one_character_takes_its_columns(text, columns):
    from hpstore.rendering import cut_to_width, display_width

    assert display_width(text) == columns
    cut = cut_to_width(text + "x" * 10, columns + 1)  # room for it and the mark only
    assert cut == text + "\u2026"  # never cut inside it


def test_a_cut_to_no_room_is_empty_and_a_cut_never_splits_an_emoji():
    from hpstore.rendering import cut_to_width, display_width

    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert cut_to_width("abc", 0) == "" and display_width(cut_to_width("abc", 2)) == 2
    assert cut_to_width(family + "abc", 2) == "\u2026"  # the family does not fit whole


def test_check_says_on_a_terminal_what_it_reads_meanwhile(tmp_path, monkeypatch, capsys):
    # check reads every page and every row (27 s at a gigabyte) with nothing shown until
    # its first finding
    import pty

    from _tools import read_terminal

    monkeypatch.setenv("TERM", "xterm")
    path = str(tmp_path / "checked.db")
    end_trials(open_oracle(path, max_trials=3), ["COMPLETED"]).close()
    leader, follower = pty.openpty()
    with open(follower, "w", encoding="utf-8", closefd=True) as screen:
        monkeypatch.setattr(sys, "stderr", screen)
        assert main(["check", path]) == 0
    shown = read_terminal(leader)
    assert "Checking every page and every row of the search ..." in shown
    assert shown.endswith("\r\x1b[2K")  # cleared once done
    out = capsys.readouterr().out
    assert "integrity: ok" in out and "Checking" not in out


def _in_the_c_locale(*argv: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C", "PYTHONUTF8": "0",
           "PYTHONCOERCECLOCALE": "0"}
    return subprocess.run([sys.executable, "-m", "hpstore", *argv], capture_output=True,
                          env=env, timeout=60)


def test_data_sent_to_a_file_or_pipe_is_utf8_whatever_the_locale(tmp_path):
    # under LC_ALL=C, `hpstore export DB > f.csv` wrote "é" as the four characters \xe9
    # (what -o wrote was UTF-8), exit 0: enqueue --file then refused it as no value
    path = str(tmp_path / "c.db")
    hp = hpstore.HyperParameters()
    hp.Choice("act", ["\u00e9lu", "\u65e5"])
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=hp, database=path)
    end_trials(oracle, ["COMPLETED", "COMPLETED"]).close()
    for argv in (["export", path, "--format", "csv"], ["trials", path, "--format", "csv"],
                 ["sql", "--format", "csv", path,
                  "SELECT json_extract(hp_values, '$.act') AS act FROM trials"]):
        done = _in_the_c_locale(*argv)
        assert done.returncode == 0, done.stderr
        text = done.stdout.decode("utf-8")
        assert "\u00e9lu" in text and "\u65e5" in text and "\\xe9" not in text, text
    table = _in_the_c_locale("trials", path)  # (a table is for reading: escaped)
    assert table.returncode == 0 and b"\\xe9lu" in table.stdout


def test_a_project_named_in_utf8_under_an_ascii_locale_is_said_to_be_utf8(tmp_path):
    # "No project 'proj\udcc3\udca9' in this file; it holds: proj\xe9." with no word of why
    path = str(tmp_path / "p.db")
    open_oracle(path, project_name="proj\u00e9").close()
    done = _in_the_c_locale("summary", path, "--project", "proj\u00e9")
    err = done.stderr.decode()
    assert done.returncode == 2 and "is UTF-8 text" in err and "PYTHONUTF8=1" in err, err


def test_with_its_error_stream_closed_a_command_keeps_its_errors_out_of_its_output(
        tmp_path):
    # `hpstore export missing.db 2>&- > out.csv` wrote the error line into out.csv
    # (print to a stderr of None writes to stdout); with both closed it exited 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    missing = shlex.quote(str(tmp_path / "missing.db"))
    with open(tmp_path / "out.csv", "wb") as out:
        done = subprocess.run(f"{sys.executable} -m hpstore export {missing} 2>&-",
                              shell=True, stdout=out, env=env, timeout=60)
    assert done.returncode == 2 and (tmp_path / "out.csv").read_bytes() == b""
    done = subprocess.run(f"{sys.executable} -m hpstore export {missing} 2>&- >&-",
                          shell=True, env=env, timeout=60)
    assert done.returncode == 2


def test_with_its_error_stream_closed_an_unknown_command_writes_nothing_to_its_output(
        tmp_path):
    # `hpstore expot DB 2>&- > out.csv` wrote "unknown command" and the usage into out.csv
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "out.csv", "wb") as out:
        done = subprocess.run(f"{sys.executable} -m hpstore expot x.db 2>&-", shell=True,
                              stdout=out, env=env, timeout=60)
    assert done.returncode == 2 and (tmp_path / "out.csv").read_bytes() == b""


@pytest.mark.parametrize("output", ["closed", "full disk"])
def test_a_change_made_with_the_output_closed_succeeds_once(tmp_path, output):
    # enqueue committed, then failed to print its line to a closed stdout: exit 2 for a
    # change made, and a script's retry enqueued the configuration twice
    path = str(tmp_path / "s.db")
    end_trials(open_oracle(path), ["COMPLETED"])
    first = hpstore.Oracle.attach(path).get_best_trials(1)[0].trial_id
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = [["enqueue", path, "--values", '{"x": 0.5}', "--again"],
                ["note", path, first, "seen"], ["retire", path, first],
                ["restore", path, first], ["report", path, "-o", str(tmp_path / "r.html")]]
    with open("/dev/full", "w") as full:
        for argv in commands:
            done = subprocess.run(
                [sys.executable, "-m", "hpstore", *argv], env=env, stderr=subprocess.PIPE,
                text=True, timeout=60,
                **({"preexec_fn": lambda: os.close(1)} if output == "closed" else
                   {"stdout": full}))
            assert done.returncode == 0, (argv, done.stderr)
            assert "error" not in done.stderr, done.stderr
    assert len(hpstore.Oracle.attach(path).enqueued()) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT note, retired_at FROM trials WHERE trial_id = ?",
                            (first,)).fetchone() == ("seen", None)
    assert (tmp_path / "r.html").stat().st_size > 0


def test_columns_line_up_where_the_output_cannot_hold_a_character(tmp_path):
    # under PYTHONIOENCODING=ascii, "act_日本" was padded as 6 columns and shown as 16
    path = str(tmp_path / "a.db")
    hp = hpstore.HyperParameters()
    hp.Choice("act_\u65e5\u672c", ["\u00e9lu", "relu"])
    hp.Int("n", 1, 2)
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=hp, database=path)
    end_trials(oracle, ["COMPLETED"] * 4).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-m", "hpstore", "trials", path],
                          capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode("ascii").splitlines()
    head = lines[0]
    assert "act_\\u65e5\\u672c" in head
    at = head.index(" n ") + 1 if " n " in head else head.rindex(" n") + 1
    # every row's value of n starts under its title
    assert all(len(line) > at and line[at] in "12" for line in lines[2:]), "\n".join(lines)


def test_nothing_reads_or_writes_text_in_the_locales_encoding(tmp_path):
    # under -X warn_default_encoding -W error, every command that reads a search file
    # failed on the checked-contents cache opened without an encoding (and printed a
    # warning twice without -W error)
    path = str(tmp_path / "e.db")
    script = (f"import hpstore\n"
              f"o = hpstore.RandomSearchOracle('loss', max_trials=2, database={path!r})\n"
              "hpstore.Tuner(o, run_trial=lambda t: 1.0, verbose=0).search()\no.close()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    strict = [sys.executable, "-X", "warn_default_encoding", "-W", "error::EncodingWarning"]
    done = subprocess.run([*strict, "-c", script], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    for argv in (["summary", path], ["check", path], ["trials", path], ["check", path]):
        done = subprocess.run([*strict, "-m", "hpstore", *argv], capture_output=True,
                              text=True, env=env, timeout=60)
        assert done.returncode == 0 and "warning" not in done.stderr, (argv, done.stderr)


def test_every_commands_help_is_whole_under_python_oo():
    # -OO strips docstrings: enqueue's --help lost its FILE format, sql's its limits
    from hpstore.cli import TOOLS

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in sorted(TOOLS):
        helps = [subprocess.run([sys.executable, *flags, "-m", "hpstore", command, "--help"],
                                capture_output=True, text=True, env=env, timeout=60).stdout
                 for flags in ([], ["-OO"])]
        assert helps[0].count("\n") > 3 and helps[1] == helps[0], command


def test_a_status_line_is_cut_to_a_narrow_terminals_width(monkeypatch):
    # a line wider than the terminal wraps, and clearing it clears its last row only: on
    # a pane of 30 columns each update of `hpstore backup` left a row behind
    import fcntl
    import pty
    import struct
    import termios

    from _tools import read_terminal

    from hpstore.rendering import cut_middle, display_width
    from hpstore.tooling import StatusLine

    monkeypatch.setenv("TERM", "xterm")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 30, 0, 0))
    with open(follower, "w", encoding="utf-8", closefd=True) as screen:
        line = StatusLine(screen)
        for done in (12, 18, 100):
            line.show(f"Copying /a/long/folder/huge.db: {done}% of 68.3 MB")
        line.clear()
    rows = read_terminal(leader).split("\r\x1b[2K")[1:]
    assert len(rows) == 4 and rows[-1] == ""
    assert all(display_width(r) == 29 for r in rows[:-1]), rows
    # what runs, and how far (the count, at its end)
    assert rows[0].startswith("Copying ") and rows[0].endswith(" 12% of 68.3 MB ...")
    assert rows[2] == "Copying /\u2026100% of 68.3 MB ..."
    wide = "\u65e5\u672c\u8a9e\u306e\u30d5\u30a1\u30a4\u30eb.db"  # (never half a character)
    assert cut_middle(wide, 9) == "\u65e5\u2026\u30eb.db"
