"""Warm starts: a search started from another search's results (a file, a project of it,
a URL), through the library, several processes and the commands."""

from __future__ import annotations

import json
import warnings

import pytest
from _steering import run
from _workers import objective_value, open_oracle, space

import hpstore


def _source(path):
    oracle = open_oracle(path, max_trials=8, seed=1)
    ran = run(oracle)
    return oracle, ran


def test_a_warm_start_adds_the_fitting_completed_trials_once(tmp_path):
    source, ran = _source(tmp_path / "old.db")
    source.retire_trial(ran[0][0], "bad run")
    narrow = hpstore.HyperParameters()
    narrow.Float("x", -10, 10)
    narrow.Int("y", 0, 4)  # the old search went up to 10
    narrow.Choice("c", ["a", "b"])
    fits = [v for tid, v in ran[1:] if v["y"] <= 4]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        oracle = hpstore.BayesianOptimizationOracle(
            "loss", max_trials=5, hyperparameters=narrow, database=tmp_path / "new.db",
            warm_start_from=tmp_path / "old.db")
    assert sorted(json.dumps(t.hyperparameters.values, sort_keys=True)
                  for t in oracle.trials.values()) == sorted(
        json.dumps(v, sort_keys=True) for v in fits)
    skipped = oracle.warm_start.skipped
    assert len(skipped) == len(ran) - 1 - len(fits) and skipped
    assert all("outside the range" in why for _, why in skipped)
    if skipped:
        assert any("did not fit this search" in str(w.message) for w in caught)
    assert oracle.remaining_trials() == 5  # not counted towards max_trials
    record = oracle.project.trial(oracle.warm_start.added[0])
    assert record.origin.startswith("warm start: old.db 'untitled_project' trial ")
    scores = {json.dumps(t.hyperparameters.values, sort_keys=True): t.score
              for t in oracle.trials.values()}
    assert all(scores[json.dumps(v, sort_keys=True)] == pytest.approx(objective_value(v))
               for v in fits)
    # opened again (another worker, a restart): nothing is added twice, nor said again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = hpstore.BayesianOptimizationOracle(database=tmp_path / "new.db",
                                                   warm_start_from=(tmp_path / "old.db",
                                                                    "untitled_project"))
    assert again.warm_start.added == [] and again.warm_start.already == len(fits)
    assert len(again.trials) == len(fits)


def test_a_warm_start_into_several_objectives_names_the_metric_a_source_lacks(tmp_path):
    # the reason named the combined objective's own name, 'multi_objective', no metric
    _source(tmp_path / "old.db")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oracle = hpstore.RandomSearchOracle(
            ["loss", "val_loss"], max_trials=5, hyperparameters=space(),
            database=tmp_path / "new.db", warm_start_from=tmp_path / "old.db")
    reasons = {why for _, why in oracle.warm_start.skipped}
    assert reasons == {"it reported no 'val_loss'"}


def _user_warnings(caught):
    return [w for w in caught if issubclass(w.category, UserWarning)]


def test_a_warm_start_from_hyperband_takes_each_configuration_at_its_longest_run(tmp_path):
    source = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, hyperparameters=space(),
                                     database=tmp_path / "old.db", seed=5)
    while (trial := source.create_trial("w")).status == "RUNNING":
        values = trial.hyperparameters.values
        for epoch in range(values["tuner/initial_epoch"], values["tuner/epochs"]):
            # longer training scores better: a shorter run's score is not the longest's
            source.update_trial(trial.trial_id,
                                {"loss": objective_value(values) + 1 / (epoch + 1)}, step=epoch)
        trial.status = "COMPLETED"
        source.end_trial(trial)
    ran = {tid: t for tid, t in source.trials.items() if t.status == "COMPLETED"}
    continued = {t.hyperparameters.values["tuner/trial_id"]: tid for tid, t in ran.items()
                 if t.hyperparameters.values.get("tuner/trial_id")}
    assert continued  # the source promoted some configurations

    def longest(tid):  # the end of a chain of continuations
        while tid in continued:
            tid = continued[tid]
        return tid

    def own(values):
        return json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/")},
                          sort_keys=True)

    ends = {tid for tid in ran if tid not in continued}
    with pytest.warns(UserWarning, match=f"{len(continued)} completed trials were left out "
                      "for holding the values of a later run"):
        oracle = open_oracle(tmp_path / "new.db", max_trials=3,
                             warm_start_from=tmp_path / "old.db")
    result = oracle.warm_start
    assert len(result.added) == len(ends) and result.already == 0
    assert dict(result.skipped) == {
        tid: f"same values as trial {longest(tid)}, a later run of them, which was taken "
             "in instead" for tid in continued}
    held = {own(t.hyperparameters.values): t for t in oracle.trials.values()}
    assert len(held) == len(ends)
    for tid in ends:
        trial = held[own(ran[tid].hyperparameters.values)]
        assert trial.score == pytest.approx(ran[tid].score)
        assert oracle.project.trial(trial.trial_id).origin.endswith(f" trial {tid}")


def test_a_warm_start_warns_once_about_repeats_and_misfits(tmp_path):
    source, ran = _source(tmp_path / "old.db")
    repeat = {"x": 1.0, "y": 1, "c": "a"}
    first = source.add_trial(repeat, {"loss": 5.0}).trial_id
    later = source.add_trial(repeat, {"loss": 2.0}).trial_id
    narrow = hpstore.HyperParameters()
    narrow.Float("x", -10, 10)
    narrow.Int("y", 0, 4)
    narrow.Choice("c", ["a", "b"])
    misfits = {tid for tid, v in ran if v["y"] > 4}
    assert misfits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        oracle = hpstore.RandomSearchOracle(
            "loss", max_trials=5, hyperparameters=narrow, database=tmp_path / "new.db",
            warm_start_from=tmp_path / "old.db")
    said = _user_warnings(caught)
    assert len(said) == 1
    assert f"{len(misfits) + 1} completed trials were left out" in str(said[0].message)
    result = oracle.warm_start
    assert result.already == 0
    assert len(result.added) == len(ran) - len(misfits) + 1
    assert dict(result.skipped)[first] == (f"same values as trial {later}, a later run of "
                                           "them, which was taken in instead")
    assert {tid for tid, _ in result.skipped} == misfits | {first}
    scores = [t.score for t in oracle.trials.values() if t.hyperparameters.values == repeat]
    assert scores == [2.0]
    # another process opens the same search: nothing added, nothing said again
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = hpstore.RandomSearchOracle(database=tmp_path / "new.db",
                                           warm_start_from=tmp_path / "old.db")
    assert _user_warnings(caught) == []
    assert again.warm_start.added == [] and again.warm_start.already == len(result.added)
    assert again.warm_start.skipped == result.skipped
    # nor when it takes in a result the source has since: the same misfits were said
    # again at each such open (each worker's, in a search whose source goes on)
    fresh = source.add_trial({"x": 2.0, "y": 2, "c": "b"}, {"loss": 1.0}).trial_id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        later_open = hpstore.RandomSearchOracle(database=tmp_path / "new.db",
                                                warm_start_from=tmp_path / "old.db")
    assert _user_warnings(caught) == []
    assert len(later_open.warm_start.added) == 1 and later_open.warm_start.skipped == \
        result.skipped
    assert later_open.project.trial(later_open.warm_start.added[0]).origin.endswith(
        f" trial {fresh}")


def test_a_warm_start_names_its_source_clearly(tmp_path):
    _source(tmp_path / "old.db")
    open_oracle(tmp_path / "old.db", project_name="other").close()
    with pytest.raises(hpstore.ProjectChoiceError, match="several projects"):
        open_oracle(tmp_path / "new.db", project_name="fresh",
                    warm_start_from=tmp_path / "old.db")
    with pytest.raises(hpstore.ProjectChoiceError, match="no project 'nope'"):
        open_oracle(tmp_path / "new.db", warm_start_from=(tmp_path / "old.db", "nope"))
    with pytest.raises(hpstore.DatabaseError, match="does not exist"):
        open_oracle(tmp_path / "new.db", warm_start_from=tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(hpstore.ProjectChoiceError, match="this very project"):
        open_oracle(tmp_path / "old.db", warm_start_from=(tmp_path / "old.db",
                                                          "untitled_project"))
    # its own file named alone: the other project of it is the source
    oracle = open_oracle(tmp_path / "old.db", warm_start_from=tmp_path / "old.db")
    assert oracle.warm_start.source.endswith("'other'")
    oracle.close()


def test_a_warm_start_waits_for_the_space_a_tuners_hypermodel_declares(tmp_path):
    # the space was empty when the oracle was made, so every source trial was skipped, and
    # the first search ran without them
    _source(tmp_path / "old.db")

    def build(hp):
        hp.Float("x", -10, 10)
        hp.Int("y", 0, 10)
        hp.Choice("c", ["a", "b"])

    seen = []

    def run_trial(trial):
        seen.append(len([t for t in oracle.trials.values() if t.status == "COMPLETED"]))
        return objective_value(trial.hyperparameters.values)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is skipped: nothing to warn about
        oracle = hpstore.BayesianOptimizationOracle(
            "loss", max_trials=3, database=tmp_path / "new.db",
            warm_start_from=tmp_path / "old.db")
        assert oracle.warm_start is None  # waits for the space
        hpstore.Tuner(oracle, hypermodel=build, run_trial=run_trial, verbose=0).search()
    assert len(oracle.warm_start.added) == 8 and oracle.warm_start.skipped == []
    assert seen[0] == 8  # the first trial of the search already had them


def test_a_warm_start_that_cannot_be_read_leaves_no_search_behind(tmp_path):
    target = tmp_path / "new.db"
    for source, error in ((tmp_path / "last-weeek.db", hpstore.DatabaseError),
                          (5, TypeError), ((tmp_path / "old.db", 7), TypeError)):
        with pytest.raises(error):
            open_oracle(target, warm_start_from=source)
        assert not target.exists()
        assert list(tmp_path.iterdir()) == []


def test_a_warm_start_naming_no_project_of_its_source_leaves_no_search_behind(tmp_path):
    # a typo in the project's name was refused only once the search had been made with its
    # seed and max_trials, so the corrected call was refused as a changed search
    _source(tmp_path / "old.db")
    open_oracle(tmp_path / "old.db", project_name="other").close()
    target = tmp_path / "new.db"
    for source in ((tmp_path / "old.db", "typo"), tmp_path / "old.db"):
        with pytest.raises(hpstore.ProjectChoiceError):
            open_oracle(target, project_name="mine", seed=1, warm_start_from=source)
        assert not target.exists()
    oracle = open_oracle(target, project_name="mine", seed=2,
                         warm_start_from=(tmp_path / "old.db", "other"))
    assert oracle.seed == 2


@pytest.mark.parametrize("objective", ["loss", ["loss", hpstore.Objective("acc", "max")]])
def test_a_step_reported_twice_keeps_its_mean_in_the_warm_started_copy(tmp_path, objective):
    # only the last report of a step was copied: a trial of two executions (0.1, then 0.9)
    # scored 0.5 in its search and 0.9 in the copy, and fell behind one of 0.6
    source = open_oracle(str(tmp_path / "source.db"), objective=objective, max_trials=4)
    for reports in ([0.1, 0.9], [0.6]):
        trial = source.create_trial("w")
        for loss in reports:  # one report per execution, at the same step
            source.update_trial(trial.trial_id, {"loss": loss, "acc": 0.5}, step=0)
        trial.status = "COMPLETED"
        source.end_trial(trial)
    before = sorted((t.hyperparameters.values["x"], t.score) for t in source.trials.values())
    source.close()
    target = open_oracle(str(tmp_path / "target.db"), objective=objective, max_trials=4,
                         warm_start_from=str(tmp_path / "source.db"))
    after = sorted((t.hyperparameters.values["x"], t.score) for t in target.trials.values())
    assert after == before and len(after) == 2
    target.close()


def _stored(path):
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute(
            "SELECT p.name, p.max_trials, p.oracle_config, p.updated_at, count(t.id) "
            "FROM projects p LEFT JOIN trials t ON t.project_id = p.project_id "
            "GROUP BY p.project_id"))
    finally:
        conn.close()


def test_a_warm_start_from_the_searchs_own_project_is_refused_before_anything_is_written(
        tmp_path):
    _source(tmp_path / "s.db")[0].close()
    before = _stored(tmp_path / "s.db")
    assert before[0][0] == "untitled_project" and before[0][4] == 8
    # with overwrite=True the old trials were deleted before the refusal; without it, the
    # refused open had stored its own max_trials and retries all the same
    for overwrite in (True, False):
        with pytest.raises(hpstore.ProjectChoiceError, match="holds no project but this one"):
            open_oracle(tmp_path / "s.db", max_trials=50, max_retries_per_trial=4,
                        overwrite=overwrite, warm_start_from=tmp_path / "s.db")
        assert _stored(tmp_path / "s.db") == before
    with pytest.raises(hpstore.ProjectChoiceError, match="this very project"):
        open_oracle(tmp_path / "s.db", max_trials=50, overwrite=True,
                    warm_start_from=(tmp_path / "s.db", "untitled_project"))
    assert _stored(tmp_path / "s.db") == before


def test_a_new_project_warm_starts_from_another_project_of_its_own_file(tmp_path):
    # the check before the search was made chose 'untitled_project', the file's only
    # project; once 'new' was made beside it, the warm start chose 'new' itself (named like
    # the search) and refused, leaving an empty project behind
    _source(tmp_path / "s.db")[0].close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oracle = open_oracle(tmp_path / "s.db", project_name="new",
                             warm_start_from=tmp_path / "s.db")
    assert len(oracle.warm_start.added) == 8
    assert oracle.warm_start.source.endswith("'untitled_project'")
    oracle.close()
    with warnings.catch_warnings():  # opened again, with 'new' now in the file: the same
        warnings.simplefilter("ignore")
        again = open_oracle(tmp_path / "s.db", project_name="new",
                            warm_start_from=tmp_path / "s.db")
    assert again.warm_start.added == [] and again.warm_start.already == 8
    again.close()
