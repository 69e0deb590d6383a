"""database="postgresql://..." wherever a search file is taken: every built-in oracle, the
Tuner with worker processes, KerasTuner's tuners, get_state / set_state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _pg_oracles import ORACLES, finish
from _postgres import fresh_url

from hpstore.store import open_store

SCRIPTS = Path(__file__).parent / "scripts"
DEADLINE = 180.0


@pytest.mark.parametrize("kind", list(ORACLES))
def test_every_built_in_oracle_runs_and_resumes_on_postgresql(kind, tmp_path):
    url = fresh_url()
    first = ORACLES[kind](url)
    finish(first, stop_after=3)
    first.close()  # as if the process ended: the next one resumes
    again = ORACLES[kind](url)
    finish(again)
    on_pg = again.get_state()
    again.close()
    # the same search in a file, without the interruption, ends the same
    alone = ORACLES[kind](str(tmp_path / "s.db"))
    finish(alone)
    in_file = alone.get_state()
    alone.close()
    assert [(t["trial_id"], t["hp_values"], t["score"]) for t in on_pg["trials"]] == [
        (t["trial_id"], t["hp_values"], t["score"]) for t in in_file["trials"]]
    assert on_pg["oracle_state"] == in_file["oracle_state"]


def test_set_state_moves_a_search_between_engines(tmp_path):
    source = ORACLES["bayesian"](str(tmp_path / "s.db"))
    finish(source, stop_after=5)
    state = source.get_state()
    target = ORACLES["bayesian"](fresh_url())
    target.set_state(state)
    assert target.get_state()["trials"] == state["trials"]
    source.close()
    target.close()


def test_a_tuner_with_worker_processes_shares_a_postgresql_search():
    url = fresh_url()
    done = subprocess.run([sys.executable, str(SCRIPTS / "search.py"), url, "12", "--workers",
                           "2"], capture_output=True, text=True, timeout=DEADLINE, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    store = open_store(url, read_only=True)
    project = store.open_project(store.projects()[0])
    assert project.counts_by_status() == {"COMPLETED": 12}
    store.close()


def test_a_keras_tuner_keeps_its_search_in_postgresql(tmp_path):
    pytest.importorskip("keras_tuner")
    import _keras_models as models

    import hpstore.keras as kt

    url = fresh_url()
    x, y = models.data()
    tuner = kt.RandomSearch(models.build, objective="val_accuracy", max_trials=2, seed=1,
                            directory=str(tmp_path), project_name="p", database=url)
    tuner.search(x, y, epochs=2, validation_data=(x, y), verbose=0)
    assert tuner.get_best_models()[0] is not None
    store = open_store(url, read_only=True)
    project = store.open_project(store.find_project("p"))
    assert project.counts_by_status() == {"COMPLETED": 2}
    trial = project.trials()[0]
    assert sorted({o.step for o in project.observations(trial)}) == [0, 1]  # every epoch
    store.close()


_DROPPING = """
import gc, sys
import hpstore
hp = hpstore.HyperParameters()
hp.Float("x", 0, 1)
for i in range(5):
    oracle = hpstore.RandomSearchOracle("loss", max_trials=50, hyperparameters=hp, seed=1,
                                        database=sys.argv[1])
    trial = oracle.create_trial(f"cell-{i}")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    del oracle, trial  # as KerasTuner code does: its tuners have no close()
    gc.collect()
print(len(hpstore.RandomSearchOracle("loss", hyperparameters=hp, database=sys.argv[1]).trials))
"""


def test_an_oracle_dropped_unclosed_closes_its_connection_without_a_warning():
    # psycopg warned "deleted while still open" for each one: a test suite with warnings
    # as errors failed on KerasTuner-style code
    url = fresh_url()
    done = subprocess.run([sys.executable, "-X", "dev", "-W", "error", "-c", _DROPPING, url],
                          capture_output=True, text=True, timeout=DEADLINE, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["5"]
    assert "Warning" not in done.stderr and "Exception ignored" not in done.stderr, (
        done.stderr[-2000:])


@pytest.mark.parametrize("engine", ["file", "postgresql"])
@pytest.mark.parametrize("kind", ["random", "grid", "bayesian"])
def test_a_hyperparameter_of_ones_own_named_tuner_slash_tells_trials_apart(kind, engine,
                                                                            tmp_path):
    # every tuner/... name was left out of a trial's identity, as Hyperband's bookkeeping
    # is: of 10 configurations two ran, and the search said the space was used up
    import hpstore

    hp = hpstore.HyperParameters()
    with hp.name_scope("tuner"):
        hp.Int("units", 1, 5)
    hp.Choice("act", ["relu", "tanh"])
    oracle = {"random": hpstore.RandomSearchOracle, "grid": hpstore.GridSearchOracle,
              "bayesian": hpstore.BayesianOptimizationOracle}[kind](
        "loss", max_trials=30, hyperparameters=hp, seed=1,
        database=str(tmp_path / "s.db") if engine == "file" else fresh_url())
    ran = set()
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        values = trial.hyperparameters.values
        ran.add((values["tuner/units"], values["act"]))
        oracle.update_trial(trial.trial_id, {"loss": float(values["tuner/units"])})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()
    assert len(ran) == 10
