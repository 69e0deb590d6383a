"""The grid, Hyperband and Bayesian oracles as their users drive them: spaces declared
while trials run, several workers at once, odd objectives."""

from __future__ import annotations

import collections
import multiprocessing as mp
import threading

import psycopg
import pytest
from _postgres import fresh_url, wait_until

import hpstore
from hpstore.oracle import values_key

DEADLINE = 120.0


def declare(hp):
    """A space a trial declares as it runs (nothing given to the oracle, no hypermodel)."""
    hp.Choice("model", ["a", "b", "c"])
    hp.Float("x", 0.0, 1.0)


def test_hyperband_keeps_its_first_bracket_whole_when_a_second_worker_asks_early():
    # The first trial runs with no values (its space is declared as it runs); a second
    # worker asking meanwhile finds nothing new to start. That is no reason to close the
    # bracket at one trial: once the first trial has declared the space, the bracket's
    # first round gets its 9 trials, as it does with one worker.
    oracle = hpstore.HyperbandOracle(max_epochs=9, factor=3, seed=1)
    first = oracle.create_trial("w0")
    assert oracle.create_trial("w1").status == "IDLE"
    seen = []
    trial = first
    while trial.status == "RUNNING":
        declare(trial.hyperparameters)
        seen.append(trial.hyperparameters.values)
        oracle.update_trial(trial.trial_id,
                            {"default_objective": trial.hyperparameters.values["x"]})
        oracle.end_trial(trial)
        trial = oracle.create_trial("w0")
    assert trial.status == "STOPPED"
    rounds = collections.Counter((v["tuner/bracket"], v["tuner/round"]) for v in seen)
    assert rounds == {(2, 0): 9, (2, 1): 3, (2, 2): 1, (1, 0): 5, (1, 1): 2, (0, 0): 3}


def _tell(conn, message, answer):
    conn.send(message)
    assert conn.poll(DEADLINE) and conn.recv() == answer


def _have_it_ended(ours, url, engine):
    """Tell the other worker to end the first trial, from inside a decision, and wait: on
    a file until it ended; on PostgreSQL until its end waits for this decision's lock (an
    end that grows the space waits for a decision in flight, and is recorded after it)."""
    if engine == "sqlite":
        _tell(ours, "end", "ended")
        return
    ours.send("end")
    wait_until(lambda: _waiting_for_a_lock(url), DEADLINE, "the end waiting for the decision")


def _end_first_trial_when_told(url, kind, conn, hold_decision=False):
    """A worker of its own process: takes the first trial (no values yet: the space is
    declared as it runs; with ``hold_decision``, once the test lets its decision go on),
    then ends it, declaring the space, when the test says."""
    oracle = ORACLES_BY_KIND[kind](url)
    if hold_decision:  # (until the test says: it holds the decision's lock meanwhile)
        type(oracle).on_decide = lambda: _tell(conn, "deciding", "go")
    trial = oracle.create_trial("first")
    conn.send(trial.hyperparameters.values)
    if not conn.poll(DEADLINE):
        return
    declare(trial.hyperparameters)
    oracle.update_trial(trial.trial_id, {"default_objective": 0.5})
    oracle.end_trial(trial)
    conn.send("ended")
    conn.poll(DEADLINE)  # (kept alive until the test is done with it)
    oracle.close()


class _Hooked:
    """Runs ``on_decide`` (once) when this process's next decision starts choosing values:
    after the running trials and the space were read."""

    on_decide = None

    def populate_space(self, trial_id):
        hook, type(self).on_decide = type(self).on_decide, None
        if hook is not None:
            hook()
        return super().populate_space(trial_id)


class _Hyperband(_Hooked, hpstore.HyperbandOracle):
    # (a class with its own populate_space decides as a slow one unless it says otherwise:
    # this one decides as the built-in class does)
    decides_quickly = hpstore.HyperbandOracle.decides_quickly


class _Bayesian(_Hooked, hpstore.BayesianOptimizationOracle):
    decides_quickly = hpstore.BayesianOptimizationOracle.decides_quickly


ORACLES_BY_KIND = {"hyperband": lambda url: _Hyperband(database=url, max_epochs=9, seed=1),
                   "bayesian": lambda url: _Bayesian(database=url, seed=1)}


@pytest.mark.parametrize(("kind", "engine"), [("hyperband", "postgresql"),
                                              ("bayesian", "postgresql"),
                                              ("bayesian", "sqlite")])
def test_a_trial_ending_mid_decision_is_not_run_again(kind, engine, tmp_path):
    # A worker reads the running trials (the first, with no values) and decides; meanwhile
    # the first trial ends, recorded with the values it declared (on a file the Bayesian
    # oracle thinks outside the write lock; on PostgreSQL the end, which grows the space,
    # waits for the decision in flight and is recorded after it). The look-up of the
    # first trial's values missed it, and the same (empty) set of values was handed out
    # again: the same model run twice. (A quick decision on a file is made in the write
    # transaction, where no trial ends meanwhile.)
    url = fresh_url() if engine == "postgresql" else str(tmp_path / "search.db")
    racing = ORACLES_BY_KIND[kind](url)
    ours, theirs = mp.Pipe()
    other = mp.get_context("spawn").Process(target=_end_first_trial_when_told,
                                             args=(url, kind, theirs))
    other.start()
    try:
        assert ours.poll(DEADLINE)
        ours.recv()
        type(racing).on_decide = lambda: _have_it_ended(ours, url, engine)
        trial = racing.create_trial("second")
        _end_and_check_no_values_twice(racing, trial, declare)
    finally:
        _stop(ours, other, racing)


def _end_and_check_no_values_twice(racing, trial, declare):
    """End the racing worker's trial (declaring what it declares as it runs), then no two
    trials of the search hold the same values."""
    if trial.status == "RUNNING":
        declare(trial.hyperparameters)
        racing.update_trial(trial.trial_id, {"default_objective": 1.0})
        racing.end_trial(trial)
    keys = [values_key(t.hyperparameters.values) for t in racing.trials.values()]
    assert len(keys) == len(set(keys)), [t.hyperparameters.values
                                         for t in racing.trials.values()]


def _stop(ours, other, racing):
    """Let the other process end, and close this one's oracle."""
    ours.send("done")
    other.join(DEADLINE)
    if other.is_alive():
        other.kill()
    racing.close()


def _waiting_for_a_lock(url):
    """Whether a connection to the server waits for an advisory lock (a worker queued
    for the decision's lock)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
            "wait_event = 'advisory'").fetchone()[0])


@pytest.mark.parametrize(("kind", "engine"), [("bayesian", "sqlite"),
                                              ("bayesian", "postgresql"),
                                              ("hyperband", "postgresql")])
def test_a_trial_started_while_a_worker_waited_to_decide_is_not_run_again(kind, engine,
                                                                          tmp_path):
    # A worker reads the running trials, then waits for the worker deciding ahead of it
    # (on a file the Bayesian oracle thinks under a lock of its own, outside the write
    # transaction; on PostgreSQL the running trials are read ahead of the decision's
    # lock). That worker starts the first trial (no values: the space is declared as it
    # runs), which ends, grown, while this one decides: its empty set of values was not
    # among the running trials read, nor found by its digest, and ran again.
    url = fresh_url() if engine == "postgresql" else str(tmp_path / "search.db")
    racing = ORACLES_BY_KIND[kind](url)  # (opening takes the decisions' lock too)
    ours, theirs = mp.Pipe()
    other = mp.get_context("spawn").Process(target=_end_first_trial_when_told,
                                             args=(url, kind, theirs, True))
    other.start()
    try:
        assert ours.poll(DEADLINE) and ours.recv() == "deciding"
        read = threading.Event()
        if engine == "sqlite":
            running = racing._project.running

            def read_running():
                found = running()
                read.set()  # (from here on, this worker waits for the decision's lock)
                return found

            racing._project.running = read_running
        type(racing).on_decide = lambda: (ours.recv(), _have_it_ended(ours, url, engine))
        made = []
        second = threading.Thread(target=lambda: made.append(racing.create_trial("second")))
        second.start()
        if engine == "sqlite":
            assert read.wait(DEADLINE)
        else:
            while not _waiting_for_a_lock(url):
                assert second.is_alive()
        ours.send("go")  # the first trial is recorded, then this worker decides
        second.join(DEADLINE)
        trial = made[0]
        _end_and_check_no_values_twice(racing, trial, declare)
    finally:
        _stop(ours, other, racing)


@pytest.mark.parametrize("cls", [hpstore.GridSearchOracle, hpstore.HyperbandOracle,
                                 hpstore.BayesianOptimizationOracle])
def test_max_trials_zero_says_what_to_give_for_no_limit(cls):
    # KerasTuner takes max_trials=0 as no limit; a user porting it is told what means that
    # here, on the oracle and when the limit is changed on an open one
    with pytest.raises(ValueError, match="KerasTuner takes 0 as no limit"):
        cls(max_trials=0)
    oracle = cls(max_trials=1)
    with pytest.raises(ValueError, match="KerasTuner takes 0 as no limit"):
        oracle.max_trials = 0
    assert oracle.max_trials == 1


def _declare_on_the_oracle(url):
    """Another worker: declares nothing; what the first declared on its oracle is the
    search's space."""
    other = hpstore.RandomSearchOracle("loss", database=url)
    trial = other.create_trial("other")
    values = dict(trial.hyperparameters.values)
    other.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    other.end_trial(trial)
    other.close()
    return values


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_hyperparameters_declared_on_the_oracle_itself_are_the_searchs(engine, tmp_path):
    # oracle.hyperparameters.Float(...) after the oracle was made (KerasTuner's oracle keeps
    # them in its state): they were used by that object alone; another worker, the search
    # resumed and the tools saw an empty space, and ran trials with no values at all
    url = fresh_url() if engine == "postgresql" else str(tmp_path / "search.db")
    oracle = hpstore.RandomSearchOracle("loss", max_trials=6, database=url, seed=1)
    oracle.hyperparameters.Float("lr", 1e-4, 1e-1, sampling="log")
    trial = oracle.create_trial("first")
    assert set(trial.hyperparameters.values) == {"lr"}
    with mp.get_context("spawn").Pool(1) as pool:
        other = pool.apply(_declare_on_the_oracle, (url,))
    assert set(other) == {"lr"} and 1e-4 <= other["lr"] <= 1e-1
    # declared later, while the search runs: joins it too, for the next trial
    oracle.hyperparameters.Choice("act", ["relu", "tanh"])
    oracle.update_trial(trial.trial_id, {"loss": 0.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    resumed = hpstore.RandomSearchOracle("loss", database=url)
    assert [hp.name for hp in resumed.get_space().space] == ["lr", "act"]
    trial = resumed.create_trial("third")
    assert set(trial.hyperparameters.values) == {"lr", "act"}
    resumed.close()
    oracle.close()
