"""Names PostgreSQL's indexes hold: a project name, metric name or trial id longer than
NAME_BYTES bytes of UTF-8 is refused before anything is written (a file takes it); one of
exactly NAME_BYTES is stored."""

from __future__ import annotations

import random
import string

import pytest
from _postgres import fresh_url
from _workers import RandomTestOracle, open_oracle, space

import hpstore
from hpstore.cli import main
from hpstore.store import open_store
from hpstore.store.postgresql.names import NAME_BYTES

REFUSED = f"at most {NAME_BYTES:,} bytes"
# just over the limit, and over what a btree row holds (the server's own error)
OVER = [NAME_BYTES + 1, 3000]


def text(size: int, alphabet: str = string.ascii_letters) -> str:
    """``size`` bytes of UTF-8 that do not compress (the server compresses a long index
    entry; a repeated name would fit where a varied one does not)."""
    chars = random.Random(size).choices(alphabet, k=size // len(alphabet[0].encode()))
    return "".join(chars)


def projects(url: str) -> list[str]:
    store = open_store(url, read_only=True)
    try:
        return [r.name for r in store.projects()]
    finally:
        store.close()


@pytest.mark.parametrize("size", OVER)
def test_a_project_or_objective_name_too_long_is_refused_and_nothing_written(size):
    url = fresh_url()
    with pytest.raises(ValueError, match=REFUSED) as raised:
        open_oracle(url, max_trials=2, project_name=text(size))
    assert isinstance(raised.value, hpstore.NameTooLongError)
    assert "project name" in str(raised.value) and "Give a shorter" in str(raised.value)
    with pytest.raises(ValueError, match=REFUSED):
        open_oracle(url, max_trials=2, project_name="p",
                    objective=hpstore.Objective(text(size), "min"))
    assert projects(url) == []


@pytest.mark.parametrize("size", OVER)
def test_a_metric_name_too_long_is_refused_and_the_trial_goes_on(size):
    url = fresh_url()
    oracle = open_oracle(url, max_trials=2)
    try:
        trial = oracle.create_trial("w")
        long = text(size)
        with pytest.raises(ValueError, match=REFUSED):
            oracle.update_trial(trial.trial_id, {"loss": 1.0, long: 2.0}, step=0)
        assert oracle.project.trial_with_observations(trial.trial_id)[1] == []
        oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=0)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        assert oracle.trials[trial.trial_id].status == "COMPLETED"
        with pytest.raises(ValueError, match=REFUSED):
            oracle.add_trial({"x": 1.0, "y": 5}, {"loss": 2.0, long: 1.0})
        assert oracle.project.count() == 1
    finally:
        oracle.close()


class _KeepsALongKey(RandomTestOracle):
    """Keeps a value under a key of ``key_bytes`` with each decision."""

    key_bytes = NAME_BYTES + 1

    def populate_space(self, trial_id):
        self.set_state_value(text(self.key_bytes), 1)
        return super().populate_space(trial_id)


@pytest.mark.parametrize("size", OVER)
def test_a_key_an_oracle_keeps_too_long_is_refused_with_the_decision(size):
    url = fresh_url()
    oracle = _KeepsALongKey("loss", database=url, hyperparameters=space(), max_trials=3)
    try:
        oracle.key_bytes = NAME_BYTES
        first = oracle.create_trial("w")
        first.status = "COMPLETED"
        oracle.update_trial(first.trial_id, {"loss": 1.0}, step=0)
        oracle.end_trial(first)
        oracle.key_bytes = size
        for _ in range(2):  # a refused decision leaves nothing half made behind it
            with pytest.raises(ValueError, match=REFUSED) as raised:
                oracle.create_trial("w")
            assert "oracle state key" in str(raised.value)
            assert oracle.project.count() == 1
        oracle.key_bytes = 1
        assert oracle.create_trial("w").status == "RUNNING"
    finally:
        oracle.close()


def test_a_tuner_returning_a_metric_name_too_long_fails_the_trial_and_stops():
    # a mistake every trial would repeat: not retried as INVALID
    url = fresh_url()
    oracle = open_oracle(url, max_trials=4, max_retries_per_trial=2)
    long = text(3000)
    try:
        with pytest.raises(hpstore.NameTooLongError, match=REFUSED):
            hpstore.Tuner(oracle, run_trial=lambda t: {"loss": 1.0, long: 2.0},
                          verbose=0).search()
        assert [t.status for t in oracle.trials.values()] == ["FAILED"]
        assert "NameTooLongError" in oracle.get_trial("0").message
    finally:
        oracle.close()


def test_names_of_exactly_the_limit_are_stored():
    url = fresh_url()
    name, metric = text(NAME_BYTES), text(NAME_BYTES, "éàüßøåçñ")  # two bytes each
    assert len(metric.encode()) == NAME_BYTES
    oracle = open_oracle(url, max_trials=2, project_name=name,
                         objective=hpstore.Objective(metric, "min"))
    try:
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {metric: 1.0}, step=0)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        assert oracle.trials[trial.trial_id].score == 1.0
    finally:
        oracle.close()
    assert projects(url) == [name]


def test_copy_into_postgresql_refuses_a_long_name_before_writing_any_project(tmp_path,
                                                                             capsys):
    source = str(tmp_path / "long.db")
    for project in ("short", text(3000)):  # a file takes it
        oracle = open_oracle(source, max_trials=2, project_name=project)
        oracle.close()
    url = fresh_url()
    assert main(["copy", source, url]) == 2
    err = capsys.readouterr().err
    assert REFUSED in err and "project name" in err and "Traceback" not in err, err
    assert projects(url) == []
    # a metric reported beside the objective, in a trial's values only
    metrics = str(tmp_path / "metrics.db")
    oracle = open_oracle(metrics, max_trials=2, project_name="m")
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 1.0, text(3000): 2.0}, step=0)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    state = oracle.get_state()
    oracle.close()
    assert main(["copy", metrics, url]) == 2
    err = capsys.readouterr().err
    assert REFUSED in err and "metric name" in err, err
    assert projects(url) == []
    # and set_state of such a document into a project on the server changes nothing
    target = open_oracle(url, max_trials=2, project_name="m")
    try:
        with pytest.raises(ValueError, match=REFUSED):
            target.set_state(state)
        assert target.project.count() == 0
    finally:
        target.close()


def test_a_name_with_a_nul_is_looked_up_as_one_no_search_holds(capsys):
    # A look-up is no write: a trial id or project name with a NUL (from a dashboard URL,
    # a command's argument) named nothing on a file, and on a server was "the search could
    # not be read" (a 503 of the dashboard, and its whole plots answer with it)
    url = fresh_url()
    with open_oracle(url, max_trials=3) as oracle:
        trial = oracle.create_trial("w")
        project = oracle.project
        with pytest.raises(hpstore.TrialNotFoundError):
            project.trial(trial.trial_id + "\x00")
        assert project.trials_by_id([trial.trial_id, "\x00"]) == {
            trial.trial_id: project.trial(trial.trial_id)}
        assert oracle.store.find_project("untitled_project\x00") is None
    assert main(["show", url, "0\x00"]) == 2
    err = capsys.readouterr().err
    assert "No trial" in err and "could not be read" not in err, err


NUL_REFUSED = "The NUL character"


def test_a_name_with_a_nul_is_refused_where_it_is_given_and_nothing_written():
    # The server refuses a NUL in a text column only as the row is written: an objective
    # or a metric named with one failed every report, a hyperparameter every trial's end
    url = fresh_url()
    for given in ({"objective": hpstore.Objective("a\x00b", "min")},
                  {"project_name": "p\x00"}):
        with pytest.raises(hpstore.NameTooLongError, match=NUL_REFUSED) as raised:
            open_oracle(url, max_trials=2, **given)
        assert "'a\\x00b'" in str(raised.value) or "'p\\x00'" in str(raised.value)
    hp = space()
    hp.Float("h\x00", 0, 1)
    with pytest.raises(hpstore.NameTooLongError, match="hyperparameter name 'h\\\\x00'"):
        open_oracle(url, max_trials=2, hyperparameters=hp)
    assert projects(url) == []
    with open_oracle(url, max_trials=3) as oracle:
        trial = oracle.create_trial("w")
        with pytest.raises(hpstore.NameTooLongError, match="metric name 'acc\\\\x00'"):
            oracle.update_trial(trial.trial_id, {"loss": 1.0, "acc\x00": 2.0}, step=0)
        with pytest.raises(hpstore.NameTooLongError, match=NUL_REFUSED):
            oracle.add_trial({"x": 1.0, "y": 5, "c": "a"}, {"loss": 2.0, "acc\x00": 1.0})
        grown = hpstore.HyperParameters()
        grown.Int("late\x00", 0, 5)
        with pytest.raises(hpstore.NameTooLongError, match=NUL_REFUSED):
            oracle.update_space(grown)
        assert [h.name for h in oracle.hyperparameters.space] == ["x", "y", "c"]
        assert oracle.project.trial_with_observations(trial.trial_id)[1] == []
        assert oracle.project.count() == 1
        # a trial that declared one by hand ends FAILED, not left RUNNING for good
        trial.hyperparameters.Int("late\x00", 0, 5)
        oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=0)
        with pytest.raises(hpstore.NameTooLongError, match=NUL_REFUSED):
            oracle.end_trial(trial)
        assert oracle.project.trial(trial.trial_id).status == "FAILED"
        assert [h.name for h in oracle.hyperparameters.space] == ["x", "y", "c"]
        assert oracle.create_trial("w").status == "RUNNING"


@pytest.mark.parametrize("where", ["metric", "hyperparameter"])
def test_a_tuner_naming_with_a_nul_fails_the_trial_and_stops(where):
    # was: the trial handed back "until the store takes writes again" (a metric) or left
    # RUNNING (a hyperparameter declared in run_trial), at every search()
    url = fresh_url()

    def run_trial(trial):
        if where == "hyperparameter":
            trial.hyperparameters.Int("late\x00name", 0, 5)
            return {"loss": 1.0}
        return {"loss": 1.0, "acc\x00": 2.0}

    with open_oracle(url, max_trials=4, max_retries_per_trial=2) as oracle:
        for _ in range(2):
            with pytest.raises(hpstore.NameTooLongError, match=NUL_REFUSED) as raised:
                hpstore.Tuner(oracle, run_trial=run_trial, verbose=0).search()
            assert f"{where} name" in str(raised.value)
        assert [t.status for t in oracle.trials.values()] == ["FAILED", "FAILED"]
        assert "NameTooLongError" in oracle.get_trial("0").message
        assert [h.name for h in oracle.hyperparameters.space] == ["x", "y", "c"]
