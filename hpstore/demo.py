"""`hpstore demo`: a real small search, numpy only, two local worker processes.

The model is chosen by the search: ridge regression (one hyperparameter) or a network of
one hidden layer trained by gradient descent (its own conditional hyperparameters), fitted
to generated data. Every epoch's validation loss is reported, so the file holds real
metric histories to query afterwards.
"""

from __future__ import annotations

import os
import shlex
import sys
import warnings
from typing import Any

import numpy as np

import hpstore
from hpstore.handing_back import RESUME_HINT
from hpstore.progress import OutputClosed
from hpstore.store import open_store, shown
from hpstore.store.postgresql import is_url
from hpstore.tooling import command_parser, help_text, positive_int, silence_stdout

# (the demo's project only, and the trials that count: a file may hold other searches,
# and trials retired with `hpstore retire`)
QUERIES = [
    ("The five best trials",
     "SELECT trial_id, round(score, 4) AS val_loss, hp_values FROM trial_overview "
     "WHERE project = 'demo' AND status = 'COMPLETED' AND retired IS NULL "
     "ORDER BY score LIMIT 5;"),
    ("Mean validation loss per model",
     "SELECT v.value AS model, count(*) AS trials, round(avg(v.score), 4) AS mean_val_loss "
     "FROM trial_values v JOIN trial_overview t ON t.project = v.project AND "
     "t.trial_id = v.trial_id WHERE v.project = 'demo' AND v.name = 'model' AND "
     "t.retired IS NULL GROUP BY v.value;"),
    ("Trials per worker and their mean duration",
     "SELECT tuner_id, count(*) AS trials, round(avg(seconds), 3) AS mean_seconds "
     "FROM trial_overview WHERE project = 'demo' AND status = 'COMPLETED' "
     "AND retired IS NULL GROUP BY tuner_id;"),
]
#: max_trials of a new demo search (a demo resumed keeps its own unless --trials is given)
DEFAULT_TRIALS = 40


def build(hp: hpstore.HyperParameters) -> str:
    """Declare the space the way a KerasTuner hypermodel does; returns the model kind."""
    model = hp.Choice("model", ["ridge", "mlp"])
    with hp.conditional_scope("model", ["ridge"]):
        hp.Float("l2", 1e-6, 10.0, sampling="log")
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("units", 8, 64, step=8)
        hp.Float("learning_rate", 1e-3, 0.5, sampling="log")
        hp.Choice("activation", ["tanh", "relu"])
    hp.Int("epochs", 10, 100, step=10)
    return str(model)


def make_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(600, 3))
    y = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2 - x[:, 2] + rng.normal(0, 0.1, 600)
    return x[:400], y[:400], x[400:], y[400:]


def train(values: dict[str, Any], data: tuple[np.ndarray, ...], report: Any) -> None:
    """Fit the chosen model; call ``report(epoch, val_loss)`` once per epoch."""
    xt, yt, xv, yv = data
    epochs = int(values["epochs"])
    if values["model"] == "ridge":
        # Ridge on polynomial features, solved once; epochs repeat the report so every
        # trial has the same shape of history.
        def feats(x: np.ndarray) -> np.ndarray:
            return np.hstack([x, x**2, np.ones((len(x), 1))])

        a, b = feats(xt), feats(xv)
        w = np.linalg.solve(a.T @ a + values["l2"] * np.eye(a.shape[1]), a.T @ yt)
        loss = float(np.mean((b @ w - yv) ** 2))
        for epoch in range(epochs):
            report(epoch, loss)
        return
    with np.errstate(all="ignore"):  # a learning rate too high may diverge; that is data
        _train_network(values, xt, yt, xv, yv, epochs, report)


def _train_network(values: dict[str, Any], xt: np.ndarray, yt: np.ndarray, xv: np.ndarray,
                   yv: np.ndarray, epochs: int, report: Any) -> None:
    rng = np.random.default_rng(int(values["units"]))
    units, lr = int(values["units"]), float(values["learning_rate"])
    w1 = rng.normal(0, 1 / np.sqrt(3), (3, units))
    w2 = rng.normal(0, 1 / np.sqrt(units), units)
    act = np.tanh if values["activation"] == "tanh" else (lambda z: np.maximum(z, 0))
    for epoch in range(epochs):
        for start in range(0, len(xt), 32):
            xb, yb = xt[start:start + 32], yt[start:start + 32]
            z = xb @ w1
            h = act(z)
            err = h @ w2 - yb
            dh = np.outer(err, w2) * ((1 - h**2) if values["activation"] == "tanh" else (z > 0))
            w2 -= lr * h.T @ err / len(xb)
            w1 -= lr * xb.T @ dh / len(xb)
        val = float(np.mean((act(xv @ w1) @ w2 - yv) ** 2))
        # A diverged network scores as badly as predicting nothing useful, not NaN.
        report(epoch, min(val, 10.0) if np.isfinite(val) else 10.0)


class DemoTuner(hpstore.Tuner):
    """Trains the chosen model and reports its validation loss after every epoch."""

    # a command: piped into head, it stops once head has its lines
    _stop_when_output_closed = True

    def run_trial(self, trial: hpstore.Trial, data: tuple[np.ndarray, ...]) -> None:
        def report(epoch: int, loss: float) -> None:
            self.report(trial, {"val_loss": loss}, step=epoch)

        train(trial.hyperparameters.values, data, report)


def holds_a_demo(path: str) -> bool:
    """Whether ``path`` holds a demo search already (a file that cannot be read is left
    to the oracle, which says why)."""
    if not os.path.isfile(path):
        return False
    try:
        store = open_store(path, read_only=True)
    except (hpstore.HpStoreError, OSError):
        return False
    try:
        return store.find_project("demo") is not None
    except (hpstore.HpStoreError, OSError):
        return False
    finally:
        store.close()


def make_tuner(path: str, trials: int | None, verbose: int = 1) -> DemoTuner:
    oracle = hpstore.RandomSearchOracle(objective="val_loss", max_trials=trials, seed=1,
                                        database=path, project_name="demo")
    # its own tuner ids (demo-PID-1, demo-PID-2): a second demo on the same file, started
    # while the first runs, shares the search rather than being refused
    return DemoTuner(oracle, hypermodel=build, tuner_id=f"demo-{os.getpid()}",
                     verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code: 0 done, 2 an unusable file (one ``hpstore:
    error:`` line on stderr), 130 interrupted by Ctrl-C (the last line says how to
    resume). An argument of the wrong kind is argparse's usage and error, exit code 2, as
    for every command."""
    parser = command_parser(prog="hpstore demo", description=help_text(__doc__, __file__))
    parser.add_argument("--database", default="hpstore-demo.db",
                        help="the search file (default: %(default)s; run again to resume)")
    parser.add_argument("--trials", type=positive_int, default=None,
                        help=f"max_trials of the search (default: {DEFAULT_TRIALS} for a new "
                             "one; a search resumed keeps its own)")
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="worker processes of this run (default: %(default)s)")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1),
                        help="0: no line per trial (default: %(default)s)")
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:  # (--help piped into head)
        silence_stdout()
        return 0
    except OSError as exc:  # --help into a full disk or a closed output
        print(f"hpstore: error: {exc.strerror or _one_line(exc)}.", file=sys.stderr)
        return 2
    if is_url(args.database):  # (it was taken for a folder named "postgresql:")
        parser.error(f"--database: the demo writes a search file, and {shown(args.database)} "
                     "is a PostgreSQL URL. Run the demo on a file, then copy its search to "
                     f"the server: hpstore copy hpstore-demo.db {shown(args.database)}")
    # `--database=~/d.db` reaches us with its `~` (a shell expands it only at a word's
    # start): the same file the library and the other tools open for that name
    path = os.path.abspath(os.path.expanduser(args.database))
    tuner: DemoTuner | None = None
    try:
        trials = args.trials
        if trials is None and not holds_a_demo(path):
            trials = DEFAULT_TRIALS  # a new search (one resumed keeps its max_trials)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            tuner = make_tuner(path, trials, args.verbose)  # the file is checked here
        for warning in said:  # (a command's words, not a Python warning's source line)
            print(f"hpstore demo: {warning.message}", file=sys.stderr, flush=True)
        workers = f"{args.workers} worker process{'es' if args.workers != 1 else ''}"
        limit = tuner.oracle.max_trials
        print(f"hpstore demo: a random search of {limit if limit else 'unlimited'} trials "
              f"over a small numpy model, {workers}, into {path}", flush=True)
        tuner.search_space_summary()
        tuner.search(make_data(), workers=args.workers)
        print(f"\nThe whole search is in {path}. Try:")
        store = open_store(path, read_only=True, check=False)
        try:
            for title, sql in QUERIES:
                print(f"\n-- {title}\nsqlite3 {shlex.quote(path)} \"{sql}\"")
                for row in store.sql(sql)[1][:5]:
                    print("   ", " | ".join(str(v) for v in row))
        finally:
            store.close()
    except (OutputClosed, BrokenPipeError):
        # piped into head, which has its lines (a search under way handed its trials back)
        silence_stdout()
        return 0
    except KeyboardInterrupt:
        if tuner is None or not tuner.interrupted or not tuner.verbose:
            # interrupted outside the search, which prints this itself
            print(f"\nhpstore demo interrupted. {RESUME_HINT}", flush=True)
        return 130
    except (hpstore.HpStoreError, ValueError, OSError) as exc:
        print(f"hpstore: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, (hpstore.HpStoreError, ValueError)) else (
        f"{type(exc).__name__}: {text}")
