"""What the dashboard costs: a page of a 100,000-trial search, a poll, and the workers of a
search it watches.

    python -m benchmarks dashboard [--trials 100000] [--repeats 3] [--worker-trials 2000]
                                   [--json dashboard.json]

1. A search of ``--trials`` trials (three hyperparameters, five metric values each, every
   tenth FAILED) is written straight into a file. For each repeat a new dashboard opens it
   and the requests of a first page of the project are timed, in the order the page makes
   them: the page, its script and style, the poll, the trials table, the plots. Then a
   poll with nothing new, and after 100 more trials were written, the poll and the table
   and plots the page then asks for again. With Chromium installed, the page is also timed
   in a real browser, from navigation to the best trial and the table shown, and to every
   plot drawn.
2. Four worker processes share ``--worker-trials`` trials (each reports four steps), alone,
   beside a dashboard followed by a page polling as the page does, and beside one asked as
   fast as it answers: the wall time of the workers in each case, runs interleaved.

Bars: first page render and a poll of the largest search each under a second; the workers
beside a page within noise of alone (reported, with the spread of the runs alone).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks import add_json_option, at_least, check_json
from benchmarks.throughput import machine

PAGE = ["/project", "/assets/dashboard.js", "/assets/dashboard.css", "/api/poll",
        "/api/trials?sort=number&desc=0&page=1&size=50", "/api/plots"]


def _space() -> Any:
    import hpstore

    hp = hpstore.HyperParameters()
    hp.Float("x", -1, 1)
    hp.Int("y", 0, 9)
    hp.Choice("c", ["a", "b", "c"])
    return hp


def build(path: str, trials: int, steps: int = 5, start: int = 0) -> None:
    """Trials ``start`` .. ``start + trials - 1`` of project "big", written as hpstore writes
    them (RUNNING, metric values, then ended), a thousand at a time so that the status log
    interleaves them as workers do."""
    import hpstore

    if start == 0:
        hpstore.RandomSearchOracle(objective="loss", max_trials=trials, seed=1, database=path,
                                   project_name="big", hyperparameters=_space()).close()
    conn = sqlite3.connect(path)
    project = conn.execute("SELECT project_id FROM projects WHERE name = 'big'").fetchone()[0]
    for first in range(start, start + trials, 1000):
        numbers = range(first, min(first + 1000, start + trials))
        with conn:
            conn.executemany(
                "INSERT INTO trials (project_id, number, trial_id, status, hp_values, "
                "values_key, tuner_id, run_count, created_at, started_at, changed_at) VALUES "
                "(?, ?, ?, 'RUNNING', ?, ?, ?, 1, ?, ?, ?)",
                [(project, n, f"{n:06d}", json.dumps({"x": ((n * 7919) % 2000) / 1000 - 1,
                                                      "y": n % 10, "c": "abc"[n % 3]}),
                  f"k{n}", f"w{n % 8}", 1e6 + n, 1e6 + n, 1e6 + n) for n in numbers])
            conn.executemany(
                "INSERT INTO observations (trial, run, metric, direction, step, value, at) "
                "SELECT id, 1, 'loss', 'min', ?, ? + number % 97, started_at + ? FROM trials "
                "WHERE project_id = ? AND number BETWEEN ? AND ?",
                [(s, 1.0 / (s + 1), s * 0.1, project, numbers[0], numbers[-1])
                 for s in range(steps)])
            conn.execute(
                "UPDATE trials SET status = CASE WHEN number % 10 = 9 THEN 'FAILED' ELSE "
                "'COMPLETED' END, score = CASE WHEN number % 10 = 9 THEN NULL ELSE "
                "((number * 7919) % 1000) / 100.0 + 100.0 / (number + 1) END, message = CASE "
                "WHEN number % 10 = 9 THEN 'Traceback:' || char(10) || 'ValueError: ' || number "
                "END, best_step = 4, ended_at = started_at + 0.5, changed_at = started_at + 0.5 "
                "WHERE project_id = ? AND number BETWEEN ? AND ?",
                (project, numbers[0], numbers[-1]))
    conn.execute("UPDATE projects SET max_trials = NULL")
    conn.commit()
    conn.close()


def _get(url: str, path: str) -> tuple[float, int, Any]:
    begin = time.perf_counter()
    with urllib.request.urlopen(url.rstrip("/") + path, timeout=600) as reply:
        body = reply.read()
    took = time.perf_counter() - begin
    return took, len(body), json.loads(body) if path.startswith("/api") else None


def page_and_poll(path: str) -> dict[str, Any]:
    """One new dashboard: its opening, a first page, a quiet poll, a poll after 100 trials."""
    from hpstore.dashboard import open_dashboard

    begin = time.perf_counter()
    running = open_dashboard(path, port=0).start()
    opened = time.perf_counter() - begin
    try:
        first: dict[str, float] = {}
        size = 0
        reply: Any = None
        for part in PAGE:
            took, length, body = _get(running.url, part)
            first[part.split("?")[0]] = took
            size += length
            reply = body if part == "/api/poll" else reply
        query = f"?seq={reply['seq']}&obs={reply['obs']}&generation={reply['generation']}"
        quiet = _get(running.url, "/api/poll" + query)[0]
        total = reply["total"]
        build(path, 100, start=total)
        changed, _, after = _get(running.url, "/api/poll" + query)
        table = _get(running.url, PAGE[4])[0]
        plots = _get(running.url, "/api/plots")[0]
        assert len(after["changes"]) == 200, len(after["changes"])
    finally:
        running.close()
    return {"open_s": opened, "first": first, "first_s": sum(first.values()),
            "first_bytes": size, "quiet_poll_s": quiet, "poll_after_100_s": changed,
            "table_after_100_s": table, "plots_after_100_s": plots, "trials": total}


def in_browser(path: str, folder: str, repeats: int) -> dict[str, float] | None:
    """Seconds from navigation to the project page showing its best trial and its table,
    and to its plots drawn, in headless Chromium, each time with a new dashboard (median of
    ``repeats``); None without Chromium (or outside a checkout)."""
    tests = Path(__file__).resolve().parent.parent / "tests"
    if not (tests / "_browser.py").is_file():
        return None
    sys.path.insert(0, str(tests))
    try:
        from _browser import Browser, browser_path
    finally:
        sys.path.remove(str(tests))
    if browser_path() is None:
        return None
    from hpstore.dashboard import open_dashboard

    browser = Browser(Path(tempfile.mkdtemp(dir=folder)))
    shown, drawn = [], []
    try:
        for _ in range(repeats):
            running = open_dashboard(path, port=0).start()
            try:
                browser.open("about:blank")
                begin = time.perf_counter()
                browser.send("Page.navigate", session=True, url=running.url + "project")
                browser.wait_for("!!document.querySelector('#best-score') && document."
                                 "querySelectorAll('#trials-list tbody tr').length === 50",
                                 deadline=120)
                shown.append(time.perf_counter() - begin)
                browser.wait_for("document.querySelectorAll('svg.plot').length >= 7",
                                 deadline=120)
                drawn.append(time.perf_counter() - begin)
            finally:
                running.close()
    finally:
        browser.close()
    return {"shown_s": statistics.median(shown), "drawn_s": statistics.median(drawn)}


# -- workers beside a dashboard ----------------------------------------------------------------

def _worker(path: str, start: Any, results: Any) -> None:
    import hpstore

    try:
        oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=None, database=path,
                                            project_name="work", hyperparameters=_space())
        start.wait(60)
        while True:
            trial = oracle.create_trial(f"w{os.getpid()}")
            if trial.status != "RUNNING":
                break
            v = trial.hyperparameters.values
            for step in range(4):
                oracle.update_trial(trial.trial_id, {"loss": v["x"] ** 2 + v["y"] / (step + 1)},
                                    step=step)
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
        oracle.close()
        results.put(None)
    except Exception as exc:  # counted, not hidden
        results.put(f"{type(exc).__name__}: {exc}")


class _Page(threading.Thread):
    """A page following the search: as the page does (``fast`` False), or as fast as the
    dashboard answers."""

    def __init__(self, url: str, fast: bool) -> None:
        super().__init__(daemon=True)
        self.url, self.fast = url, fast
        self.stop = threading.Event()
        self.requests = 0

    def run(self) -> None:
        reply = _get(self.url, "/api/poll")[2]
        plotted, every = 0.0, 2.0
        while not self.stop.is_set():
            query = f"?seq={reply['seq']}&obs={reply['obs']}&generation={reply['generation']}"
            reply = _get(self.url, "/api/poll" + query)[2]
            self.requests += 1
            if reply["changes"] or self.fast:
                _get(self.url, PAGE[4])
                self.requests += 1
            if self.fast or time.monotonic() - plotted > max(every, 2 * reply["interval"]):
                drawn = _get(self.url, "/api/plots")[2]
                self.requests += 1
                plotted = time.monotonic()
                if drawn["seconds"] > 0:  # as the page: fifty times the last drawing
                    every = max(2.0, 50 * drawn["seconds"])
            if not self.fast:
                self.stop.wait(0 if reply["more"] else reply["interval"])


def workers(folder: str, trials: int, page: str) -> dict[str, Any]:
    """Wall time of four workers sharing ``trials`` trials, beside ``page`` ("none",
    "page" or "fast")."""
    import hpstore
    from hpstore.dashboard import open_dashboard

    path = tempfile.mktemp(suffix=".db", dir=folder)
    hpstore.RandomSearchOracle(objective="loss", max_trials=trials, seed=3, database=path,
                               project_name="work", hyperparameters=_space()).close()
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(5, timeout=120), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(path, start, results)) for _ in range(4)]
    for p in procs:
        p.start()
    running = follower = None
    if page != "none":
        running = open_dashboard(path, port=0).start()
        follower = _Page(running.url, page == "fast")
        follower.start()
    start.wait()
    begin, cpu = time.perf_counter(), time.process_time()
    errors = [e for e in (results.get(timeout=600) for _ in procs) if e]
    wall, cpu = time.perf_counter() - begin, time.process_time() - cpu
    for p in procs:
        p.join(60)
    requests = 0
    if follower is not None and running is not None:
        follower.stop.set()
        follower.join(60)
        requests = follower.requests
        running.close()
    # cpu: this process's, the dashboard's and its page's (the workers are other processes)
    return {"page": page, "wall_s": wall, "errors": errors, "requests": requests,
            "cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks dashboard",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=at_least(1), default=100_000)
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--worker-trials", type=at_least(1), default=2000)
    add_json_option(parser)
    args = parser.parse_args(argv)
    check_json(parser, args)
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "big.db")
        begin = time.perf_counter()
        build(path, args.trials)
        print(f"Built a {args.trials:,}-trial search in {time.perf_counter() - begin:.1f} s "
              f"({os.path.getsize(path) / 2**20:.0f} MiB).", flush=True)
        runs: list[dict[str, Any]] = []
        for _ in range(args.repeats):
            copy = os.path.join(folder, f"run-{len(runs)}.db")
            with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
                source.backup(target)  # each run adds 100 trials: each starts from the same
            runs.append(page_and_poll(copy))
        results["page"] = runs
        results["browser"] = in_browser(path, folder, args.repeats)
        order = ["none", "page", "fast"] * args.repeats
        results["workers"] = [workers(folder, args.worker_trials, p) for p in order]
    print(report(results, args.trials))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def report(results: dict[str, Any], trials: int) -> str:
    runs = results["page"]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    lines = [f"Machine: {results['machine']}", "",
             f"A {trials:,}-trial search, median of {len(runs)} new dashboards:", "",
             "| request | ms |", "|---|---:|"]
    lines += [f"| opening the search (once, before serving) | {med('open_s') * 1e3:.0f} |"]
    for part in runs[0]["first"]:
        lines.append(f"| first page: {part} | "
                     f"{statistics.median(r['first'][part] for r in runs) * 1e3:.0f} |")
    lines += [f"| **first page, every request** | **{med('first_s') * 1e3:.0f}** |",
              f"| a poll, nothing new | {med('quiet_poll_s') * 1e3:.1f} |",
              f"| **a poll after 100 trials ended** | **{med('poll_after_100_s') * 1e3:.0f}** |",
              f"| the table again | {med('table_after_100_s') * 1e3:.0f} |",
              f"| the plots again | {med('plots_after_100_s') * 1e3:.0f} |"]
    if results.get("browser") is not None:
        lines += [f"| headless Chromium: navigation to the best trial and the table shown | "
                  f"{results['browser']['shown_s'] * 1e3:.0f} |",
                  f"| headless Chromium: navigation to every plot drawn | "
                  f"{results['browser']['drawn_s'] * 1e3:.0f} |"]
    lines += ["", f"The first page's answers weigh {runs[0]['first_bytes'] / 2**20:.1f} MiB "
              "(the plots: inline SVG of a sample of the trials).", ""]
    by: dict[str, list[dict[str, Any]]] = {}
    for w in results["workers"]:
        by.setdefault(w["page"], []).append(w)
    alone = statistics.median(w["wall_s"] for w in by["none"])
    lines += ["Four workers sharing a search, runs interleaved (median wall time):", "",
              "| beside | wall s | vs alone | requests answered | CPU of dashboard and page, "
              "s | errors |", "|---|---:|---:|---:|---:|---:|"]
    names = {"none": "nothing", "page": "a dashboard page (polls as the page does)",
             "fast": "a dashboard asked as fast as it answers"}
    for kind, found in by.items():
        wall = statistics.median(w["wall_s"] for w in found)
        lines.append(f"| {names[kind]} | {wall:.2f} | {wall / alone:.2f} | "
                     f"{statistics.median(w['requests'] for w in found):.0f} | "
                     f"{statistics.median(w['cpu_s'] for w in found):.2f} | "
                     f"{sum(len(w['errors']) for w in found)} |")
    spread = [w["wall_s"] for w in by["none"]]
    lines += ["", f"Runs alone spread from {min(spread):.2f} to {max(spread):.2f} s."]
    first_ok = med("first_s") < 1.0
    poll_ok = med("poll_after_100_s") < 1.0
    lines += ["", f"- [{'met' if first_ok else 'missed'}] first page render "
                  f"{med('first_s'):.2f} s (bar: under 1 s)",
              f"- [{'met' if poll_ok else 'missed'}] a poll after 100 trials "
              f"{med('poll_after_100_s'):.2f} s (bar: under 1 s)"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
