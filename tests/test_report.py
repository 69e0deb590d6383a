"""tools/report.py (`hpstore report`) against real search files: two worker processes,
failed and retried trials, NaN metrics, a maximised objective and hostile names."""

from __future__ import annotations

import math
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from _dashboard import columns_search
from _tools import read_terminal

import hpstore
from hpstore.cli import available_tools, load_tool
from hpstore.cli import main as hpstore_main

HOSTILE = "<b>&\"x'"
PROJECT = "<script>alert('p&q')</script>"
SECTIONS = ["history", "hyperparameters", "parallel", "curves", "timeline", "trials"]
report = load_tool("report")


def build(hp: hpstore.HyperParameters) -> None:
    hp.Choice(HOSTILE, ["<i>a</i>", "b&c"])
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Int("layers", 1, 4)
    hp.Boolean("flag")
    hp.Fixed("fixed", "<const>")


class ReportingTuner(hpstore.Tuner):
    """Reports accuracy per step; some configurations fail, one kind on every try."""

    def run_trial(self, trial: hpstore.Trial) -> None:
        v = trial.hyperparameters.values
        if v["layers"] == 4:
            raise hpstore.FailedTrialError("four layers & more: <refused>")
        if v["layers"] == 1 and v["flag"]:
            raise ValueError("bad <combination>")  # INVALID, retried once, then FAILED
        top = 0.9 - abs(math.log10(v["lr"]) + 2.5) * 0.1 - 0.05 * v["layers"]
        for step in range(6):
            acc = top * (1 - math.exp(-(step + 1) / 2))
            time.sleep(0.02)
            self.report(trial, {"acc": float("nan") if step == 2 else acc}, step=step)


@pytest.fixture(scope="module")
def search_db(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("report") / "search.db")
    oracle = hpstore.RandomSearchOracle(
        objective=hpstore.Objective("acc", "max"), max_trials=16, seed=5, database=path,
        project_name=PROJECT, max_retries_per_trial=1, max_consecutive_failed_trials=50)
    ReportingTuner(oracle, hypermodel=build, tuner_id="w<&>", verbose=0).search(workers=2)
    oracle.close()
    return path


def write_report(tmp_path, *argv: str) -> str:
    out = tmp_path / "report.html"
    assert report.main([*argv, "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def section(page: str, key: str) -> str:
    found = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    assert found, f"no section {key}"
    return found.group(1)


def count(fragment: str, tag: str) -> int:
    return len(re.findall(rf"<{tag}[\s>]", fragment))


def test_report_is_listed_and_runs_through_the_hpstore_command(search_db, tmp_path, capsys):
    assert "report" in available_tools()
    out = tmp_path / "via-cli.html"
    assert hpstore_main(["report", search_db, "-o", str(out)]) == 0
    assert "Wrote" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_is_self_contained_with_six_drawn_sections(search_db, tmp_path):
    page = write_report(tmp_path, search_db)
    for forbidden in ("http://", "https://", "<script", "<link", "<img", "@import", "url("):
        assert forbidden not in page
    conn = sqlite3.connect(f"file:{search_db}?mode=ro", uri=True)
    trials = conn.execute("SELECT trial_id, status, score FROM trials").fetchall()
    runs = conn.execute("SELECT count(*) FROM transitions WHERE to_status = 'RUNNING'").fetchone()
    workers = {r[0] for r in conn.execute("SELECT DISTINCT tuner_id FROM transitions")}
    conn.close()
    scored = [t for t in trials if t[2] is not None]
    assert len(scored) >= 5 and any(t[1] == "FAILED" for t in trials) and len(workers) == 2

    parts = {key: section(page, key) for key in SECTIONS}
    for key in SECTIONS[:5]:
        assert count(parts[key], "svg") >= 1 and 'class="empty"' not in parts[key], key
    history = parts["history"]
    dots = count(history, "circle") + history.count('class="off"')  # off-scale: triangles
    assert dots == len(scored) and count(history, "path") >= 1
    assert count(parts["hyperparameters"], "svg") == 5  # one scatter per hyperparameter
    assert count(parts["hyperparameters"], "circle") >= len(scored)
    assert count(parts["parallel"], "path") == len(scored)
    assert 1 <= count(parts["curves"], "path") <= 5 and count(parts["curves"], "circle") >= 5
    timeline = parts["timeline"]
    assert count(timeline, "rect") >= runs[0]  # a bar per run, plus the frame
    assert all(f">{report.esc(w)}<" in timeline for w in workers)
    assert report.STATUS_COLOURS["FAILED"] in timeline
    assert count(parts["trials"], "tr") == len(trials) + 1

    best = max(scored, key=lambda t: t[2])  # the objective is maximised
    assert f"Best: trial {best[0]}, score {best[2]:.6g}" in page


def test_user_text_is_escaped(search_db, tmp_path):
    page = write_report(tmp_path, search_db)
    assert HOSTILE not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;b&gt;&amp;&quot;x&#x27;" in page  # the hyperparameter's name
    assert "&lt;i&gt;a&lt;/i&gt;" in page  # a value
    assert "&lt;script&gt;alert(&#x27;p&amp;q&#x27;)&lt;/script&gt;" in page  # the project
    assert "w&lt;&amp;&gt;-1" in page  # a worker
    assert "four layers &amp; more: &lt;refused&gt;" in page  # a message
    assert "&lt;const&gt;" in page


def small_search(path: str, name: str, trials: int, space=None, **kwargs) -> None:
    """A project with ``trials`` trials reported straight to the oracle, one step each (on
    ``space``, by default a Float x in -1 .. 1)."""
    hp = space
    if hp is None:
        hp = hpstore.HyperParameters()
        hp.Float("x", -1, 1)
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=10, seed=1, database=path,
                                        project_name=name, hyperparameters=hp, **kwargs)
    for i in range(trials):
        trial = oracle.create_trial("solo")
        oracle.update_trial(trial.trial_id, {"loss": float(i)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()


@pytest.mark.parametrize("trials", [0, 1])
def test_a_project_with_no_or_one_trial_gets_sentences(tmp_path, trials):
    path = str(tmp_path / "small.db")
    small_search(path, "small", trials)
    page = write_report(tmp_path, path)
    for key in SECTIONS[:4]:
        part = section(page, key)
        assert "<svg" not in part and 'class="empty"' in part, key
    timeline = section(page, "timeline")
    assert (count(timeline, "svg") == trials) and ('class="empty"' in timeline) == (trials == 0)
    assert count(section(page, "trials"), "tr") == (trials + 1 if trials else 0)


@pytest.mark.parametrize("scores", [[1e308, -1e308], [1.79e308, -1.79e308, 0.0],
                                    [5e-324, 1e-323]], ids=["huge", "widest", "subnormal"])
def test_scores_at_the_ends_of_the_float_range_are_drawn(tmp_path, scores):
    # a span past the float range (OverflowError) or too small for a round step (math
    # domain error): the report and the dashboard's plots failed on either
    path = str(tmp_path / "ends.db")
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=len(scores), hyperparameters=hp,
                                        seed=1, database=path)
    for score in scores:
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": score, "other": -score}, step=0)
        oracle.update_trial(trial.trial_id, {"loss": score, "other": score}, step=1)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()
    page = write_report(tmp_path, path)
    drawn = section(page, "history")
    assert "<svg" in drawn and "NaN" not in page and "inf" not in drawn


@pytest.mark.parametrize("bounds", [(1e300, 1.7e308), (5e-324, 1e-20)],
                         ids=["near-the-largest", "subnormal"])
def test_a_log_hyperparameter_at_the_ends_of_the_float_range_is_drawn(tmp_path, bounds):
    # its axis, widened by a margin, passed the float range (OverflowError) or fell to 0
    # (math domain error): the report and the dashboard's plots failed
    path = str(tmp_path / "log.db")
    hp = hpstore.HyperParameters()
    hp.Float("x", *bounds, sampling="log")
    small_search(path, "log", 3, space=hp)
    page = write_report(tmp_path, path)
    drawn = section(page, "hyperparameters")
    assert "<svg" in drawn and "NaN" not in page and "inf" not in drawn


def scored_search(path: str, losses: list[float], stop: tuple[int, ...] = ()) -> list[str]:
    """A project whose trials report these losses; those at ``stop`` are STOPPED by hand
    (a partial score). Returns the trial ids."""
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=len(losses), hyperparameters=hp,
                                        seed=1, database=path)
    ids = []
    for i, loss in enumerate(losses):
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": loss})
        trial.status = "STOPPED" if i in stop else "COMPLETED"
        oracle.end_trial(trial)
        ids.append(trial.trial_id)
    oracle.close()
    return ids


def test_infinite_scores_rank_and_show_as_in_every_other_tool(tmp_path):
    path = str(tmp_path / "inf.db")
    ids = scored_search(path, [1.0, math.inf, -math.inf, 2.0])
    page = write_report(tmp_path, path)
    best = hpstore.RandomSearchOracle("loss", database=path).get_best_trials(1)[0]
    assert best.trial_id == ids[2]
    assert f"Best: trial {ids[2]}, score -inf" in page  # was trial 0, score 1
    rows = dict(re.findall(r"<tr[^>]*><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td>",
                           section(page, "trials")))
    assert rows[ids[1]] == "inf" and rows[ids[2]] == "-inf"
    history = section(page, "history")
    assert "no score" not in history  # they were ticks "COMPLETED, no score"
    assert f"trial {ids[1]}: inf" in history and "drawn as triangles at the edge" in history


def test_retired_trials_keep_their_score_in_the_table_and_leave_the_plots(tmp_path):
    path = str(tmp_path / "retired.db")
    ids = scored_search(path, [0.0, 1.0, 2.0, 3.0])
    oracle = hpstore.RandomSearchOracle("loss", database=path)
    oracle.retire_trial(ids[0], "bad data")
    oracle.close()
    page = write_report(tmp_path, path)
    assert f"Best: trial {ids[1]}, score 1" in page
    rows = re.findall(r"<tr[^>]*><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>",
                      section(page, "trials"))
    assert (ids[0], "COMPLETED (retired)", "0") in rows  # its score was blank
    history = section(page, "history")
    assert "no score" not in history and f"trial {ids[0]}:" not in history


def test_a_stopped_trials_partial_score_is_not_named_the_best(tmp_path):
    path = str(tmp_path / "stopped.db")
    ids = scored_search(path, [5.0, 0.5, 3.0], stop=(1,))
    page = write_report(tmp_path, path)
    assert f"Best: trial {ids[2]}, score 3" in page  # as get_best_trials: COMPLETED only
    assert re.search(rf'<tr class="best[^"]*"><td>{ids[2]}</td>', section(page, "trials"))


def test_several_projects_need_a_choice(tmp_path, capsys):
    path = str(tmp_path / "two.db")
    small_search(path, "a", 2)
    small_search(path, "b", 3)
    assert hpstore_main(["report", path, "-o", str(tmp_path / "r.html")]) == 2
    assert "--project" in capsys.readouterr().err
    page = write_report(tmp_path, path, "--project", "b")
    assert count(section(page, "history"), "circle") == 3


def test_the_file_is_opened_read_only(search_db, tmp_path):
    files = [Path(search_db), Path(search_db + "-wal")]
    before = [f.read_bytes() if f.exists() else None for f in files]
    write_report(tmp_path, search_db)
    assert [f.read_bytes() if f.exists() else None for f in files] == before


def _report_to_stdout(path: str, stderr_on_a_terminal: bool, term: str = "xterm"
                      ) -> tuple[bytes, str]:
    """(stdout, stderr) of ``hpstore report PATH -o -``, its stderr a pseudo-terminal (of
    the kind ``term``) or a pipe."""
    import pty

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
           "TERM": term}
    argv = [sys.executable, "-m", "hpstore", "report", path, "-o", "-"]
    if not stderr_on_a_terminal:
        done = subprocess.run(argv, capture_output=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr.decode()
    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=child_fd, env=env)
    os.close(child_fd)
    assert proc.stdout is not None
    page = proc.stdout.read()  # (what it writes to the terminal is a few lines: no stall)
    shown = read_terminal(main_fd)
    assert proc.wait(120) == 0
    return page, shown


def test_a_terminal_is_told_what_the_report_reads_and_the_page_is_not(search_db):
    # a report of a large search took seconds with nothing shown; the page written to a
    # redirected stdout holds none of it, nor does a log
    page, shown = _report_to_stdout(search_db, stderr_on_a_terminal=True)
    assert "Reading the runs of the status log ..." in shown
    assert re.search(r"Drawing \d+ trials and \d+ runs \.\.\.", shown)
    assert shown.endswith("\r\x1b[2K")  # the line cleared once the page is made
    assert page.startswith(b"<!DOCTYPE html>") and b"\x1b" not in page
    assert b"Reading the" not in page
    logged, told = _report_to_stdout(search_db, stderr_on_a_terminal=False)
    assert told == "" and len(logged) == len(page)
    # a terminal that shows control sequences as text (TERM=dumb): told nothing either
    _, told = _report_to_stdout(search_db, stderr_on_a_terminal=True, term="dumb")
    assert told == ""


def test_axes_and_scales():
    assert report.nice_ticks(0, 1, 5) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert report.nice_ticks(0, 3, 10, integer=True) == [0, 1, 2, 3]
    assert report.log_ticks(1e-4, 1e-1) == [1e-4, 1e-3, 1e-2, 1e-1]
    log = report.axis_for("Float", {"min_value": 1e-4, "max_value": 1e-1, "sampling": "log"}, [])
    assert log.kind == "log" and abs(log.unit(1e-4 * 10**1.5) - 0.5) < 1e-9
    cats = report.axis_for("Boolean", {}, [True])
    assert cats.labels == ["False", "True"] and cats.unit(True) == 0.75 and cats.unit(1) is None
    axis = report.score_axis([1.0] * 5 + [1.1, 1.2, 1.3, 100.0], "min")
    assert axis.hi < 2 and axis.unit(100.0) > 1  # one very bad score left off the axis
    assert report.score_axis([1.0] * 8 + [100.0], "max").hi > 100


# -- the page as a browser draws it ----------------------------------------------------------

def browser() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)


def png_facts(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the filtered pixel data) of a PNG. A page of
    one colour filters to almost nothing but zeros; a drawn page to hundreds of values."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            width, height = struct.unpack(">II", data[pos + 8:pos + 16])
        elif kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


@pytest.mark.skipif(browser() is None, reason="chromium is not on PATH (apt-get install "
                    "chromium) - the rendering check needs a real browser")
def test_the_report_renders_in_headless_chromium(search_db, tmp_path):
    write_report(tmp_path, search_db)
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1400,3000", (tmp_path / "report.html").as_uri()],
        check=True, capture_output=True, timeout=180)
    data = shot.read_bytes()
    width, height, distinct = png_facts(data)
    assert (width, height) == (1400, 3000)
    assert len(data) > 20_000, len(data)
    assert distinct > 64, distinct


# -- a large search ------------------------------------------------------------------------------

def large_search(path: Path, trials: int) -> None:
    """A search of ``trials`` trials, written straight into the file: a real project made by
    the library, then rows inserted as hpstore writes them (RUNNING, then ended)."""
    hp = hpstore.HyperParameters()
    hp.Float("x", -1, 1)
    hp.Int("y", 0, 9)
    hp.Choice("c", ["a", "b", "c"])
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=trials, seed=1,
                                        database=str(path), project_name="big",
                                        hyperparameters=hp)
    oracle.close()
    conn = sqlite3.connect(path)
    width = len(str(trials))
    rows = []
    for n in range(trials):
        x, y, c = ((n * 7919) % 2000) / 1000 - 1, n % 10, "abc"[n % 3]
        rows.append((n, f"{n:0{width}d}", f'{{"x": {x}, "y": {y}, "c": "{c}"}}', str(n),
                     1000.0 + n, f"w{n % 8}"))
    with conn:
        conn.executemany(
            "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key, "
            "tuner_id, run_count, created_at, started_at, changed_at) VALUES "
            "(1, ?, ?, 'RUNNING', ?, ?, ?, 1, ?, ?, ?)",
            [(n, trial_id, values, key, worker, at, at, at)
             for n, trial_id, values, key, at, worker in rows])
        # a slowly improving score, every tenth trial FAILED with a traceback
        conn.execute(
            "UPDATE trials SET status = CASE WHEN number % 10 = 9 THEN 'FAILED' ELSE "
            "'COMPLETED' END, score = CASE WHEN number % 10 = 9 THEN NULL ELSE "
            "((number * 7919) % 1000) / 100.0 + 100.0 / (number + 1) END, "
            "message = CASE WHEN number % 10 = 9 THEN 'Traceback:' || char(10) || "
            "'ValueError: ' || number END, ended_at = started_at + 0.5, "
            "changed_at = started_at + 0.5")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@pytest.fixture(scope="module")
def large_reports(tmp_path_factory) -> dict[int, tuple[str, Path]]:
    """Reports of a 5,000-trial and a 40,000-trial search: (page, file)."""
    folder = tmp_path_factory.mktemp("large")
    pages = {}
    for trials in (5_000, 40_000):
        path = folder / f"large-{trials}.db"
        large_search(path, trials)
        out = folder / f"report-{trials}.html"
        assert report.main([str(path), "-o", str(out)]) == 0
        pages[trials] = (out.read_text(encoding="utf-8"), path)
    return pages


def test_a_large_search_gives_a_page_of_bounded_size(large_reports):
    small, large = (len(large_reports[n][0].encode()) for n in (5_000, 40_000))
    assert large < 3_000_000, large
    assert large < small * 1.25, (small, large)  # eight times the trials, about the same page


def test_a_large_report_says_what_it_shows(large_reports):
    page, path = large_reports[40_000]
    assert "Showing 2,000 of 40,000 trials" in page
    assert "Showing 2,000 of 40,000 runs" in section(page, "timeline")
    history = section(page, "history")
    assert count(history, "circle") + history.count('class="off"') + history.count(
        'stroke-width="2.5"') == report.MAX_POINTS
    assert "best-so-far line follows every completed trial" in history
    table = section(page, "trials")
    assert count(table, "tr") == report.TABLE_ROWS + 1
    assert "The 200 best of 40,000 trials" in table and "hpstore export" in table
    conn = sqlite3.connect(path)
    best = conn.execute("SELECT trial_id, score FROM trials WHERE status = 'COMPLETED' "
                        "ORDER BY score, number LIMIT 200").fetchall()
    conn.close()
    shown = re.findall(r'<tr class="[^"]*"><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td>',
                       table)
    assert [tid for tid, _ in shown] == [tid for tid, _ in best]


def test_a_sample_of_the_runs_keeps_every_worker(large_reports):
    # 40,000 runs taken in turn by 8 workers: an even sample of them all (every 20th run)
    # held only w0 and w4
    timeline = section(large_reports[40_000][0], "timeline")
    assert "Showing 2,000 of 40,000 runs" in timeline
    assert set(re.findall(r"<title>trial \d+ on (w\d):", timeline)) == {
        f"w{i}" for i in range(8)}


def test_the_plots_of_a_sample_say_how_many_best_they_keep(large_reports):
    # the 2,000 trials loaded keep the 500 best: each plot shows them all, not a quarter
    plots = section(large_reports[40_000][0], "hyperparameters")
    assert re.search(r"Each plot shows 1,\d{3} of the 36,000 scored trials: the 500 best",
                     plots), plots[-400:]


def test_the_best_so_far_line_follows_every_trial(large_reports):
    page, path = large_reports[40_000]
    conn = sqlite3.connect(path)
    best_id, best_score = conn.execute("SELECT trial_id, score FROM trials WHERE score IS NOT "
                                       "NULL ORDER BY score, number LIMIT 1").fetchone()
    first_id, first_score = conn.execute("SELECT trial_id, score FROM trials WHERE score IS "
                                         "NOT NULL ORDER BY number LIMIT 1").fetchone()
    conn.close()
    history = section(page, "history")
    line = re.search(r'<path d="([^"]*)" fill="none" stroke="#e6550d"', history).group(1)
    points = [tuple(map(float, p)) for p in re.findall(r"[ML]([\d.]+),([\d.]+)", line)]
    assert len(points) <= 2 * report.WIDE + 2  # at most a corner or two per pixel

    def dot(trial_id, score):
        found = re.search(rf'<circle cx="([\d.]+)" cy="([\d.]+)" r="3.5" fill="[^"]*"><title>'
                          rf"trial {trial_id}: {score:.6g}</title>", history)
        assert found, trial_id
        return float(found.group(1)), float(found.group(2))

    # it starts at the first trial's score and ends level with the best of all 40,000
    assert points[0] == dot(first_id, first_score)
    assert points[-1][1] == dot(best_id, best_score)[1]


def test_hyperparameters_named_like_the_tables_columns_are_titled_apart(tmp_path):
    # the table had two "status", two "note" and two "message" headers, the
    # hyperparameters' unprefixed (hpstore trials writes hp:status)
    path = str(tmp_path / "columns.db")
    columns_search(path)
    table = section(write_report(tmp_path, path), "trials")
    head = re.findall(r"<th>(.*?)</th>", table)
    assert head == ["trial", "status", "score", "best step", "worker", "runs", "seconds",
                    "hp:status", "hp:note", "hp:message", "hp:best step", "note", "message"]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", table)
    assert cells[7:11] == ["status-value", "note-value", "message-value", "best step-value"]


def test_values_are_shown_with_their_own_letters_not_escapes():
    # the dashboard's running trials showed {"m": "big \u00f8"} where the best trial's line
    # and `hpstore watch` showed ø
    from hpstore.dashboard.api import cell
    from hpstore.report.scales import fmt_value

    values = {"m": "big ø", "name": "日本", "list": ["é"]}
    assert fmt_value(values) == '{"m": "big ø", "name": "日本", "list": ["é"]}'
    assert "ø" in cell(values) and "\\u" not in cell(values)


def test_the_best_so_far_line_follows_completed_trials_only():
    # a stopped trial's partial score (0.99) lifted the line above the best the page named
    # (0.7): "a stopped trial's partial score never competes with full ones"
    from hpstore.report.data import summarise

    rows = [(0, "COMPLETED", 0.6), (1, "STOPPED", 0.99), (2, "COMPLETED", 0.7)]
    overall = summarise(rows, "max", 3)
    assert overall.best_line == [(0, 0.6), (2, 0.7)]
    assert summarise(rows, "min", 3).best_line == [(0, 0.6)]
    assert sorted(overall.goodness) == sorted([-0.6, -0.99, -0.7])  # every score drawn


def test_a_wide_space_keeps_the_trials_table_within_its_cells(tmp_path):
    # 2,000 trials of 600 hyperparameters, every one a row: a page of 24 MB, where 2,001
    # (sampled) made 5.5 MB
    from hpstore.report.page import TABLE_ROWS

    hp = hpstore.HyperParameters()
    for i in range(300):
        hp.Float(f"w{i:03d}", 0, 1)
    path = str(tmp_path / "wide.db")
    oracle = hpstore.RandomSearchOracle("loss", max_trials=700, hyperparameters=hp, seed=1,
                                        database=path)
    for _ in range(700):
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": trial.hyperparameters.values["w000"]})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    best = sorted(oracle.trials.values(), key=lambda t: t.score)[0].trial_id
    oracle.close()
    table = section(write_report(tmp_path, path), "trials")
    rows = count(table, "tr") - 1
    assert TABLE_ROWS <= rows < 700 and rows * 300 <= 100_000
    assert f"The {rows:,} best of 700 trials" in table and "hpstore export" in table
    first = re.search(r'<tr class="[^"]*"><td>([^<]*)</td>', table)
    assert first is not None and first.group(1) == best  # best first
