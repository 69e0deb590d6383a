"""hpstore stress: workers run a search on one file while a chaos loop kills them, then every
invariant of the file is checked.

    hpstore stress [--oracle random|grid|bayesian|hyperband|all] [--processes 4]
                   [--trials 200] [--kill-every 1.0] [--minutes 0] [--seed 0] [--keep DIR]
                   [--database postgresql://...]

Each round is a new search file, or with ``--database URL`` a new schema of that
PostgreSQL database (dropped after a round that held every invariant). ``--processes``
worker processes (tuner ids w0, w1, ...) run the search while the chaos loop sends SIGKILL
to a random worker every ``--kill-every`` seconds on average, aimed in turn at each point a
worker passes through (opening and migrating the store, create_trial, update_trial,
end_trial, a WAL checkpoint, between calls), and restarts it under the same tuner id.
Each oracle's rounds repeat for ``--minutes`` (one round when 0). After each round it
checks:

- the store's health is clean (a file: PRAGMA integrity_check and foreign_key_check);
- every trial a worker saw end COMPLETED is COMPLETED in the store with the same score;
- trial ids and numbers are unique, numbers run 0..n-1, no set of values was run twice;
- the search finished: every trial has a final status and their count is what the oracle
  promises (max_trials, the grid's size, or Hyperband's schedule);
- every interruption was recorded: each run ends by its own worker, or (only when that
  worker was killed) is handed back by another process and counted as an interruption;
- the status log replays to each trial's stored status, run count and interruptions;
- no worker failed with an error.

Exit status 0 when every invariant held, 1 when any was violated (the files of failed
rounds are kept and named). Ctrl-C or SIGTERM stops the workers and removes the rounds'
files and schemas (unless ``--keep``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import mmap
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hpstore.errors import HpStoreError, OutputFileError
from hpstore.output_file import check_output, write_output
from hpstore.store import open_store
from hpstore.store.postgresql import is_url, redact
from hpstore.tooling import (
    at_least,
    command_parser,
    error_line,
    help_text,
    seconds,
    terminated_as_interrupted,
)

ORACLES = ("random", "grid", "bayesian", "hyperband")
# What a worker is doing, one byte per worker in a shared file the chaos loop reads.
PHASES = ("open", "create", "update", "end", "checkpoint", "between")
_CODE = {name: i + 1 for i, name in enumerate(PHASES)}
_HYPERBAND: dict[str, Any] = {"max_epochs": 9, "factor": 3}
_IDLE_WAIT = 0.005  # seconds a worker waits before asking an IDLE oracle again (polling)


# -- the search every worker runs -------------------------------------------------------------
def build_oracle(kind: str, path: str, trials: int, seed: int,
                 early_stopping: bool = False) -> Any:
    import hpstore

    hp = hpstore.HyperParameters()
    hp.Int("a", 0, 19)
    hp.Float("x", -5.0, 5.0, step=1.0 if kind == "grid" else None)
    model = hp.Choice("model", ["linear", "tree"])
    with hp.conditional_scope("model", "tree"):
        hp.Int("depth", 1, 4)
    del model
    common: dict[str, Any] = {
        "objective": "loss", "hyperparameters": hp, "seed": seed, "database": path,
        "max_retries_per_trial": 1, "max_consecutive_failed_trials": 10_000,
        # trials stopped inside update_trial, by a rule reading the other workers' values
        "early_stopping": hpstore.MedianStopping(min_trials=3) if early_stopping else None}
    if kind == "random":
        return hpstore.RandomSearchOracle(max_trials=trials, **common)
    if kind == "grid":
        return hpstore.GridSearchOracle(max_trials=trials, **common)
    if kind == "bayesian":
        return hpstore.BayesianOptimizationOracle(max_trials=trials, num_initial_points=10,
                                                  **common)
    if kind == "hyperband":
        per_iteration = hyperband_total(1)
        return hpstore.HyperbandOracle(hyperband_iterations=max(1, trials // per_iteration),
                                       **_HYPERBAND, **common)
    raise ValueError(f"Unknown oracle {kind!r}; choose one of {', '.join(ORACLES)}.")


def hyperband_total(iterations: int) -> int:
    from hpstore.oracles.hyperband import bracket_size, num_brackets

    m, f = _HYPERBAND["max_epochs"], _HYPERBAND["factor"]
    brackets = range(num_brackets(m, f))
    return iterations * sum(bracket_size(m, f, b, r) for b in brackets for r in range(b + 1))


def expected_trials(kind: str, trials: int) -> int:
    """How many trials the search ends with when nothing goes wrong."""
    if kind == "grid":
        return min(trials, 20 * 11 * (1 + 4))  # a x x x (linear, or tree x depth)
    if kind == "hyperband":
        return hyperband_total(max(1, trials // hyperband_total(1)))
    return trials


def loss(values: dict[str, Any], step: int) -> float:
    base = (values["a"] - 7) ** 2 / 10 + (values["x"] - 1.5) ** 2
    if values["model"] == "tree":
        base += abs(values.get("depth", 1) - 3) * 0.5
    return base + 1.0 / (1 + step + values.get("tuner/initial_epoch", 0))


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


def worker(args: argparse.Namespace) -> int:
    """One worker: run trials until the oracle says STOPPED, telling what it is doing."""
    with open(args.phase_file, "r+b") as f:
        phases = mmap.mmap(f.fileno(), 0)

    def phase(name: str) -> None:
        phases[args.slot] = _CODE[name]

    phase("open")
    oracle = build_oracle(args.oracle, args.database, args.trials, args.seed,
                          args.early_stopping)
    phase("between")
    tuner_id = f"w{args.slot}"
    done = 0
    with open(args.report, "a", encoding="utf-8") as report:
        while True:
            phase("create")
            trial = oracle.create_trial(tuner_id)
            phase("between")
            if trial.status == "STOPPED":
                return 0
            if trial.status == "IDLE":
                time.sleep(_IDLE_WAIT)  # polling the oracle, as a tuner does
                continue
            values = dict(trial.hyperparameters.values)
            steps = 3
            if "tuner/epochs" in values:
                steps = max(1, min(3, values["tuner/epochs"] - values["tuner/initial_epoch"]))
            for step in range(steps):
                time.sleep(args.step_time)  # the "training"
                phase("update")
                answer = oracle.update_trial(trial.trial_id, {"loss": loss(values, step)},
                                             step=step)
                phase("between")
                if answer.status == "STOPPED":
                    break
            # One first run in twenty ends INVALID, to keep the retry queue busy.
            invalid = trial.run == 1 and _digest(f"{trial.trial_id}") % 20 == 0
            trial.status = "INVALID" if invalid else "COMPLETED"
            phase("end")
            oracle.end_trial(trial)
            phase("between")
            report.write(json.dumps([trial.trial_id, trial.status, trial.score]) + "\n")
            report.flush()
            done += 1
            if done % 5 == 0:
                phase("checkpoint")
                oracle.store.checkpoint()
                phase("between")


# -- the chaos loop ---------------------------------------------------------------------------
class Round:
    """One search file, its workers, and what the chaos loop did to them."""

    def __init__(self, opts: argparse.Namespace, kind: str, folder: Path, number: int) -> None:
        self.opts, self.kind, self.folder = opts, kind, folder
        self.path = folder / f"{kind}-{number:03d}.db"
        #: where the workers keep the search: the file, or a schema of its own in the
        #: PostgreSQL database given
        self.database = str(self.path)
        self.schema: str | None = None
        if opts.database:
            from hpstore.store.postgresql import admin

            self.schema = f"hpstore_stress_{os.getpid()}_{kind}_{number:03d}"
            self.database = admin.create_schema(opts.database, self.schema)
        self.phase_file = folder / f"{kind}-{number:03d}.phases"
        self.phase_file.write_bytes(bytes(opts.processes))
        self.rng = random.Random(f"{opts.seed}:{kind}:{number}")
        self.kills: collections.Counter[str] = collections.Counter()
        self.killed: set[int] = set()  # pids of the workers SIGKILLed
        self.errors: list[str] = []
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.finished: set[int] = set()
        self.seed = opts.seed + number

    def report_path(self, slot: int) -> Path:
        return self.folder / f"{self.path.stem}.w{slot}.jsonl"

    def log_path(self, slot: int) -> Path:
        return self.folder / f"{self.path.stem}.w{slot}.log"

    def start(self, slot: int) -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--slot", str(slot),
               "--oracle", self.kind, "--trials", str(self.opts.trials), "--seed",
               str(self.seed), "--database", self.database, "--phase-file",
               str(self.phase_file), "--report", str(self.report_path(slot)),
               "--step-time", str(self.opts.step_time),
               *(["--early-stopping"] if self.opts.early_stopping else [])]
        log = open(self.log_path(slot), "ab")  # noqa: SIM115 - handed to the child
        self.procs[slot] = subprocess.Popen(cmd, stdout=log, stderr=log)
        log.close()

    def run(self) -> None:
        try:
            self._run()
        except BaseException:  # Ctrl-C: no worker goes on writing behind the user's back
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            raise

    def _run(self) -> None:
        for slot in range(self.opts.processes):
            self.start(slot)
        with open(self.phase_file, "r+b") as f:
            phases = mmap.mmap(f.fileno(), 0)
        next_kill = time.monotonic() + self.rng.expovariate(1 / self.opts.kill_every)
        while len(self.finished) < self.opts.processes:
            for slot, proc in list(self.procs.items()):
                if slot in self.finished or proc.poll() is None:
                    continue
                if proc.returncode == 0:
                    self.finished.add(slot)
                else:
                    tail = self.log_path(slot).read_text(encoding="utf-8", errors="replace")[-2000:]
                    self.errors.append(f"worker w{slot} exited with {proc.returncode}:\n{tail}")
                    self.finished.add(slot)
            live = [s for s in self.procs if s not in self.finished]
            if live and time.monotonic() >= next_kill:
                self.kill_one(live, phases)
                next_kill = time.monotonic() + self.rng.expovariate(1 / self.opts.kill_every)
            else:
                time.sleep(0.002)  # the chaos loop's own pace, not synchronisation

    def kill_one(self, live: list[int], phases: mmap.mmap) -> None:
        """SIGKILL a worker, preferably while it is at a chosen point; restart it."""
        target = self.rng.choice(PHASES)
        deadline = time.monotonic() + 0.5
        victim = None
        while victim is None and time.monotonic() < deadline:
            at = [s for s in live if phases[s] == _CODE[target]
                  and self.procs[s].poll() is None]
            if at:
                victim = self.rng.choice(at)
        if victim is None:
            victim, target = self.rng.choice(live), "any moment"
        proc = self.procs[victim]
        if proc.poll() is not None:
            return  # it finished on its own meanwhile; the main loop sees it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.returncode != -signal.SIGKILL:
            return  # it exited just before the signal
        self.kills[target] += 1
        self.killed.add(proc.pid)
        self.start(victim)

    def reported(self) -> list[tuple[str, str, float | None]]:
        found = []
        for slot in range(self.opts.processes):
            path = self.report_path(slot)
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                # the last line of a worker killed while writing it may be cut short
                with contextlib.suppress(ValueError):
                    found.append(tuple(json.loads(line)))
        return found  # type: ignore[return-value]


def check(database: str | Path, expected: int,
          reported: list[tuple[str, str, float | None]], killed: set[int],
          at_most: bool = False) -> list[str]:
    """Every invariant of a finished stress round; returns the violations found."""
    if not is_url(database) and not Path(database).exists():
        return ["no search file was written"]
    try:
        store = open_store(database, read_only=True, check=False)
    except HpStoreError as exc:
        # a file that cannot be read is the worst finding of a round, not a crash of the tool
        return [f"the search cannot be read: {exc}"]
    try:
        return _check(store, expected, reported, killed, at_most)
    except HpStoreError as exc:
        return [f"the search cannot be read: {exc}"]
    finally:
        store.close()


def _check(store: Any, expected: int, reported: list[tuple[str, str, float | None]],
           killed: set[int], at_most: bool = False) -> list[str]:
    problems = [f"{what}: {says}" for what, fine, says in store.health() if not fine]
    projects = store.projects()
    if not projects:
        return [*problems, "no project was written"]
    project = store.open_project(projects[0])
    rows = project.trials()
    trials = {t.trial_id: t for t in rows}
    if len(trials) != len(rows):
        problems.append("duplicate trial ids")
    if [t.number for t in rows] != list(range(len(rows))):
        problems.append("trial numbers are not 0..n-1")
    keys = collections.Counter(t.values_key for t in rows)
    twice = [k for k, n in keys.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} set(s) of values run twice")
    open_ = [t.trial_id for t in rows if t.status not in ("COMPLETED", "FAILED", "STOPPED")]
    if open_:
        problems.append(f"trials not finished: {open_[:10]}")
    if len(rows) > expected or (len(rows) < expected and not at_most):
        problems.append(f"{len(rows)} trials, expected {'at most ' if at_most else ''}"
                        f"{expected}")
    for trial_id, status, score in reported:
        trial = trials.get(trial_id)
        if status != "COMPLETED":
            continue
        if trial is None or trial.status != "COMPLETED":
            problems.append(f"trial {trial_id} was COMPLETED by a worker but is "
                            f"{None if trial is None else trial.status} in the store")
        elif trial.score != score:
            problems.append(f"trial {trial_id} scored {score} by its worker, {trial.score} "
                            "in the store")
    interruptions = sum(t.interruptions for t in rows)
    if interruptions > len(killed):
        problems.append(f"{interruptions} interruptions recorded, but only {len(killed)} "
                        "workers were killed")
    log = collections.defaultdict(list)
    for change in project.transitions():
        log[change.trial_id].append((change.from_status, change.to_status, change.message,
                                     change.pid))
    for trial in rows:
        problems += replay(trial, log.get(trial.trial_id, []), killed)
    return problems


def replay(trial: Any, log: list[tuple[Any, ...]], killed: set[int]) -> list[str]:
    """The status log of one trial against its row and the kills.

    The log must chain (each entry starts where the last ended) and end at the stored
    status, with one RUNNING entry per run. Each run ends either by its own worker (the same
    pid) or, when that worker was killed, by another process handing the trial back: those
    are the interruptions, and their number must be the one stored. A run taken from a
    worker that was never killed is a violation.
    """
    trial_id, status = trial.trial_id, trial.status
    run_count, interruptions = trial.run, trial.interruptions
    problems = []
    state, runner = None, None
    runs = cuts = 0
    for before, after, message, pid in log:
        if before != state:
            problems.append(f"trial {trial_id}: log goes {before} -> {after} from {state}")
        if state == "RUNNING" and pid != runner:
            if runner not in killed:
                problems.append(f"trial {trial_id}: taken from live worker pid {runner} by "
                                f"pid {pid}")
            elif "died" not in (message or ""):
                problems.append(f"trial {trial_id}: interruption logged without saying so: "
                                f"{message!r}")
            cuts += 1
        if after == "RUNNING":
            runs += 1
            runner = pid
        state = after
    if state != status:
        problems.append(f"trial {trial_id}: log replays to {state}, stored {status}")
    if runs != run_count:
        problems.append(f"trial {trial_id}: {runs} runs in the log, {run_count} stored")
    if cuts != interruptions:
        problems.append(f"trial {trial_id}: {cuts} interruptions in the log, "
                        f"{interruptions} stored")
    return problems


def interruptions(database: str | Path) -> int:
    if not is_url(database) and not Path(database).exists():
        return 0
    try:
        store = open_store(database, read_only=True, check=False)
    except HpStoreError:
        return 0
    try:
        return sum(t.interruptions for record in store.projects()
                   for t in store.open_project(record).trials())
    except HpStoreError:
        return 0
    finally:
        store.close()


def run_round(opts: argparse.Namespace, kind: str, folder: Path, number: int) -> dict[str, Any]:
    start = time.monotonic()
    rnd = Round(opts, kind, folder, number)
    try:
        rnd.run()
    except KeyboardInterrupt:  # stopped: nothing left behind, on disk or on the server
        if not opts.keep:
            _remove_round(opts, rnd)
        raise
    expected = expected_trials(kind, opts.trials)
    reported = rnd.reported()
    # A Hyperband round shrinks by the trials stopped early in the round before it (they
    # are never promoted), so with a stopping rule the schedule is an upper bound.
    at_most = kind == "hyperband" and opts.early_stopping
    problems = rnd.errors + check(rnd.database, expected, reported, rnd.killed, at_most)
    result = {"oracle": kind, "round": number, "processes": opts.processes,
              "trials": expected, "kills": dict(rnd.kills),
              "interruptions": interruptions(rnd.database),
              "completed_by_workers": sum(1 for r in reported if r[1] == "COMPLETED"),
              "violations": problems, "seconds": round(time.monotonic() - start, 1),
              "file": redact(rnd.database) + f" (schema {rnd.schema})" if rnd.schema
              else str(rnd.path)}
    if not problems and not opts.keep:  # a round with a violation keeps its search
        _remove_round(opts, rnd)
    return result


def _remove_round(opts: argparse.Namespace, rnd: Round) -> None:
    if rnd.schema is not None:
        from hpstore.store.postgresql import admin

        with contextlib.suppress(Exception):  # the server may be what stopped the round
            admin.drop_schema(opts.database, rnd.schema)
    shutil.rmtree(rnd.folder / f"{rnd.path.name}.hpstore", ignore_errors=True)
    for p in rnd.folder.glob(f"{rnd.path.stem}*"):
        p.unlink()


def stress(opts: argparse.Namespace, out: Any = sys.stdout) -> list[dict[str, Any]]:
    """Run rounds for each chosen oracle; returns one result per round."""
    kinds = ORACLES if opts.oracle == "all" else (opts.oracle,)
    # `--keep=~/rounds` reaches us with its `~`: a folder named `~` made here would be
    # one a later `rm -rf ~` mistakes for the home folder
    folder = Path(opts.keep).expanduser() if opts.keep else Path(
        tempfile.mkdtemp(prefix="hpstore-stress-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for kind in kinds:
            until = time.monotonic() + opts.minutes * 60
            number = 0
            while True:
                r = run_round(opts, kind, folder, number)
                results.append(r)
                kills = sum(r["kills"].values())
                print(f"{kind} round {number}: {r['processes']} processes, {r['trials']} trials, "
                      f"{kills} kills, {r['interruptions']} interruptions, "
                      f"{len(r['violations'])} violations, {r['seconds']} s", file=out, flush=True)
                for v in r["violations"]:
                    print(f"  VIOLATION: {v}", file=out)
                if r["violations"]:
                    print(f"  kept: {r['file']}", file=out)
                number += 1
                if time.monotonic() >= until:
                    break
    finally:  # a run stopped with Ctrl-C leaves nothing behind either, unless kept
        if not opts.keep and not any(r["violations"] for r in results):
            shutil.rmtree(folder, ignore_errors=True)
    return results


def summary(results: list[dict[str, Any]]) -> str:
    lines = ["| oracle | rounds | processes | trials | kills | interruptions | violations |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for kind in dict.fromkeys(r["oracle"] for r in results):
        rs = [r for r in results if r["oracle"] == kind]
        kills: collections.Counter[str] = collections.Counter()
        for r in rs:
            kills.update(r["kills"])
        where = ", ".join(f"{k} {n}" for k, n in sorted(kills.items()))
        lines.append(f"| {kind} | {len(rs)} | {rs[0]['processes']} | "
                     f"{sum(r['trials'] for r in rs)} | {sum(kills.values())} ({where}) | "
                     f"{sum(r['interruptions'] for r in rs)} | "
                     f"{sum(len(r['violations']) for r in rs)} |")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = command_parser(prog="hpstore stress", description=help_text(__doc__, __file__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--oracle", default="random", choices=(*ORACLES, "all"),
                   help="the search algorithm the workers run; all: each in turn")
    p.add_argument("--processes", type=at_least(1), default=4,
                   help="worker processes sharing the search file")
    p.add_argument("--trials", type=at_least(1), default=200,
                   help="trials per round (max_trials)")
    p.add_argument("--kill-every", type=float, default=1.0,
                   help="mean seconds between kills")
    p.add_argument("--minutes", type=float, default=0.0,
                   help="repeat rounds for this long per oracle (0: one round)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the searches and of the kills' timing: a run repeats")
    p.add_argument("--step-time", type=seconds, default=0.002,
                   help="seconds each simulated training step takes")
    p.add_argument("--keep", help="keep every round's files in this folder (new, or without "
                                  "an earlier run's rounds)")
    p.add_argument("--json", help="write the results here (a new file; never a SQLite file)")
    p.add_argument("--force", action="store_true",
                   help="replace the --json file if it exists (never a SQLite file)")
    p.add_argument("--database", metavar="URL",
                   help="a postgresql:// URL: each round runs in a new schema of that database "
                        "(default: a new search file per round)")
    p.add_argument("--early-stopping", action="store_true",
                   help="give the searches a median stopping rule, so trials are also "
                        "stopped inside update_trial while workers are killed")
    # a worker's own arguments (the chaos loop starts workers with these)
    for name in ("--slot", "--phase-file", "--report"):
        p.add_argument(name, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p


def _refuse_earlier_rounds(folder: Path) -> None:
    """A round's files are named by oracle and number: another run's files in the folder
    would be opened as this run's rounds (a finished search, reports that are not theirs)."""
    if not folder.is_dir():
        return
    names = re.compile(rf"({'|'.join(ORACLES)})-\d{{3}}\.(db|phases)$")
    earlier = sorted(p.name for p in folder.iterdir() if names.match(p.name))
    if earlier:
        shown = ", ".join(earlier[:3]) + (", ..." if len(earlier) > 3 else "")
        parser().error(f"--keep {folder} holds the rounds of an earlier run ({shown}): give "
                       "a new or empty folder")


def main(argv: list[str] | None = None) -> int:
    opts = parser().parse_args(argv)
    if opts.worker:
        opts.slot = int(opts.slot)
        return worker(opts)
    if not 0 < opts.kill_every < float("inf"):  # (NaN too)
        parser().error(f"argument --kill-every: must be a number of seconds above 0, "
                       f"received {opts.kill_every}")
    if not 0 <= opts.minutes < float("inf"):
        parser().error(f"argument --minutes: must be 0 or more minutes, received "
                       f"{opts.minutes}")
    if opts.json is not None:  # checked before the rounds, not after them
        try:
            check_output(opts.json, database=None, force=opts.force, example="stress.json",
                         option="--json")
        except OutputFileError as exc:  # one line, as every tool says of its output file
            print(error_line(str(exc)), file=sys.stderr)
            raise SystemExit(2) from None
    if opts.database and not is_url(opts.database):
        parser().error("--database takes a postgresql:// URL (a file search gets a new file "
                       "per round by itself)")
    if opts.keep:
        _refuse_earlier_rounds(Path(opts.keep).expanduser())
    with terminated_as_interrupted():
        results = stress(opts)
    print(summary(results))
    if opts.json is not None:
        try:
            write_output(opts.json, json.dumps(results, indent=1), database=None,
                         force=opts.force, example="stress.json", option="--json")
        except OutputFileError as exc:  # (the rounds' figures are printed above)
            print(f"hpstore stress: error: {exc}", file=sys.stderr)
            return 2
    return 1 if any(r["violations"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
