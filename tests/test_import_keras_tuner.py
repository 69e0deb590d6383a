"""`hpstore import-keras-tuner` against a project directory written by real KerasTuner.

tests/fixtures/keras_tuner_project holds only the JSON files (oracle.json, tuner0.json,
trial_*/trial.json) of a search run with KerasTuner 1.4.8 (keras 3.15.1 on torch, CPU): a
``kt.RandomSearch`` subclass whose ``run_trial`` reports ``loss`` and ``val_accuracy`` for
3 steps through ``oracle.update_trial``; objective ``Objective("val_accuracy", "max")``,
``max_trials=8``, ``seed=7``, ``max_retries_per_trial=1``; space ``Int units`` (8..64 step
8), ``Float lr`` (1e-4..0.1, log), ``Boolean dropout``, ``Choice model`` (mlp, cnn) and
``Int kernel`` (3..7 step 2) only when model is cnn. Trial 2 crashed on its first run
(INVALID, retried, then COMPLETED: run_times 2), trial 3 reported step 1 twice (averaged),
trial 4 raised FailedTrialError after one step (FAILED), trials with dropout peak at step 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

import hpstore
from hpstore.cli import load_tool, main

FIXTURE = Path(__file__).parent / "fixtures" / "keras_tuner_project"
PROJECT = "keras_tuner_project"


#: how the tools say a search of the two objectives these tests import
COMBINED = "objective loss (min), val_accuracy (max): loss - val_accuracy, minimised"


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def kt_trials():
    """The fixture's trials, read straight from the JSON files, by trial id."""
    trials = {}
    for path in FIXTURE.glob("trial_*/trial.json"):
        doc = json.loads(path.read_text())
        trials[doc["trial_id"]] = doc
    return trials


def run(capsys, *argv):
    code = main(["import-keras-tuner", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project_dir(tmp_path):
    """A copy of the fixture to damage."""
    target = tmp_path / PROJECT
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def imported(tmp_path, capsys):
    db = tmp_path / "search.db"
    code, out, err = run(capsys, FIXTURE, db)
    assert code == 0, err
    return db, out


def test_fixture_is_small_and_json_only():
    files = [p for p in FIXTURE.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".json"}
    assert sum(p.stat().st_size for p in files) < 100_000
    assert len(kt_trials()) == 8


def test_trials_match_the_keras_tuner_files(imported):
    db, out = imported
    expected = kt_trials()
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT trial_id, number, status, hp_values, score, best_step, "
                        "run_count, queued FROM trials ORDER BY number").fetchall()
    # ids kept, in creation order (KerasTuner's ids are its creation counter)
    assert [r[0] for r in rows] == sorted(expected, key=int)
    assert [r[1] for r in rows] == [int(r[0]) for r in rows]
    for tid, _, status, values, score, best_step, runs, queued in rows:
        kt = expected[tid]
        assert status == kt["status"]
        assert json.loads(values) == kt["hyperparameters"]["values"]
        assert score == kt["score"]
        # KerasTuner writes best_step 0 for a trial it never scored; hpstore: None
        assert best_step == (kt["best_step"] if kt["score"] is not None else None)
        assert queued is None
        assert runs == json.loads((FIXTURE / "oracle.json").read_text())["run_times"][tid]
    assert dict(conn.execute("SELECT status, count(*) FROM trials GROUP BY status")) == {
        "COMPLETED": 7, "FAILED": 1}
    assert "COMPLETED 7, FAILED 1" in out and "best: trial 7, score 0.681021 at step 1" in out

    # every observation, value by value and step by step
    for tid, kt in expected.items():
        got = {}
        for metric, direction, step, value in conn.execute(
                "SELECT o.metric, o.direction, o.step, o.value FROM observations o JOIN trials t "
                "ON t.id = o.trial WHERE t.trial_id = ? ORDER BY o.id", (tid,)):
            entry = got.setdefault(metric, {"direction": direction, "observations": []})
            obs = entry["observations"]
            if obs and obs[-1]["step"] == step:
                obs[-1]["value"].append(value)
            else:
                obs.append({"value": [value], "step": step})
        assert got == kt["metrics"]["metrics"], tid


def test_the_oracle_reads_the_import(imported):
    db, _ = imported
    expected = kt_trials()
    oracle = hpstore.RandomSearchOracle(database=str(db), project_name=PROJECT)
    try:
        assert oracle.objective == hpstore.Objective("val_accuracy", "max")
        assert oracle.seed == 7 and oracle.max_trials == 8
        space = {hp.name: hp for hp in oracle.hyperparameters.space}
        assert list(space) == ["units", "lr", "dropout", "model", "kernel"]
        assert isinstance(space["lr"], hpstore.Float) and space["lr"].sampling == "log"
        assert isinstance(space["dropout"], hpstore.Boolean)
        assert [c.name for c in space["kernel"].conditions] == ["model"]
        assert list(oracle.trials) == sorted(expected, key=int)
        for tid, kt in expected.items():
            trial = oracle.get_trial(tid)
            assert trial.metrics.get_config() == kt["metrics"]
            assert trial.hyperparameters.values == kt["hyperparameters"]["values"]
            assert trial.message == kt["message"]
        # the step reported twice averages, as in KerasTuner
        assert oracle.get_trial("3").score == pytest.approx(0.225135)
        best = oracle.get_best_trials(2)
        assert [t.trial_id for t in best] == ["7", "1"]
        assert best[0].best_step == 1
    finally:
        oracle.close()


def test_resume_with_the_hpstore_oracle(imported):
    db, _ = imported
    before = {json.dumps(t["hyperparameters"]["values"], sort_keys=True)
              for t in kt_trials().values()}
    with pytest.raises(hpstore.ProjectMismatchError):
        hpstore.BayesianOptimizationOracle(database=str(db), project_name=PROJECT)
    oracle = hpstore.RandomSearchOracle(database=str(db), project_name=PROJECT, max_trials=9)
    try:
        trial = oracle.create_trial("resumer")
        assert trial.status == "RUNNING" and trial.trial_id == "8"
        values = trial.hyperparameters.values
        assert json.dumps(values, sort_keys=True) not in before
        assert ("kernel" in values) == (values["model"] == "cnn")
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.9, "loss": 0.1}, step=0)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        assert oracle.get_best_trials(1)[0].trial_id == "8"
        assert oracle.create_trial("resumer").status == "STOPPED"
        assert len(oracle.trials) == 9
    finally:
        oracle.close()


def test_existing_project_needs_overwrite(imported, capsys):
    db, _ = imported
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    before = digest(db)
    code, _, err = run(capsys, FIXTURE, db)
    assert code == 2 and "already holds a project 'keras_tuner_project'" in err
    assert "--overwrite" in err and digest(db) == before
    code, out, _ = run(capsys, FIXTURE, db, "--project", "copy")
    assert code == 0 and "as project 'copy'" in out
    old = hpstore.RandomSearchOracle(database=db, project_name=PROJECT)  # still searching
    (old_id,) = sqlite3.connect(db).execute(
        "SELECT project_id FROM projects WHERE name = ?", (PROJECT,)).fetchone()
    code, _, err = run(capsys, FIXTURE, db, "--overwrite")
    assert code == 0, err
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM trials").fetchone()[0] == 16
    assert [r[0] for r in conn.execute("SELECT name FROM projects ORDER BY name")] == [
        "copy", PROJECT]
    (new_id,) = conn.execute("SELECT project_id FROM projects WHERE name = ?",
                             (PROJECT,)).fetchone()
    assert new_id > max(old_id, 2)  # never an id given before
    with pytest.raises(hpstore.ProjectRemovedError):
        old.create_trial("old-worker")
    old.close()
    # a name of the same look, its accent written otherwise: refused, as an oracle refuses
    # it (two projects that look the same everywhere, and split a search between scripts)
    hpstore.RandomSearchOracle(database=db, project_name="cafe\u0301").close()
    for more in ([], ["--overwrite"]):
        code, _, err = run(capsys, FIXTURE, db, "--project", "caf\u00e9", *more)
        assert code == 2 and "the same letters with other code points" in err
    assert sorted(r[0] for r in sqlite3.connect(db).execute("SELECT name FROM projects")) == [
        "cafe\u0301", "copy", PROJECT]


def _truncate(d):
    text = (d / "oracle.json").read_text()
    (d / "oracle.json").write_text(text[: len(text) // 2])
    return "oracle.json", "not valid JSON"


def _truncate_trial(d):
    path = d / "trial_5" / "trial.json"
    path.write_text(path.read_text()[:300])
    return "trial_5/trial.json", "not valid JSON"


def _no_oracle(d):
    (d / "oracle.json").unlink()
    return PROJECT, "no oracle.json"


def _no_hyperparameters(d):
    path = d / "trial_3" / "trial.json"
    doc = json.loads(path.read_text())
    del doc["hyperparameters"]
    path.write_text(json.dumps(doc))
    return "trial_3/trial.json", "no 'hyperparameters'"


def _missing_trial(d):
    shutil.rmtree(d / "trial_6")
    return "oracle.json", "trial '6'"


def _bad_metric(d):
    path = d / "trial_1" / "trial.json"
    doc = json.loads(path.read_text())
    doc["metrics"]["metrics"]["loss"]["observations"][1]["value"] = ["high"]
    path.write_text(json.dumps(doc))
    return "trial_1/trial.json", "metric 'loss'"


def _bad_status(d):
    path = d / "trial_0" / "trial.json"
    doc = json.loads(path.read_text())
    doc["status"] = "DONE"
    path.write_text(json.dumps(doc))
    return "trial_0/trial.json", "unknown status 'DONE'"


def _not_an_oracle(d):
    (d / "oracle.json").write_text("[1, 2, 3]")
    return "oracle.json", "not a KerasTuner oracle file"


def _bad_space(d):
    doc = json.loads((d / "oracle.json").read_text())
    doc["hyperparameters"]["space"][0]["config"]["max_value"] = 4  # below min_value 8
    (d / "oracle.json").write_text(json.dumps(doc))
    return "oracle.json", "search space cannot be read"


def _value(name, value):
    def damage(d):
        path = d / "trial_2" / "trial.json"
        doc = json.loads(path.read_text())
        doc["hyperparameters"]["values"][name] = value
        path.write_text(json.dumps(doc))
        return "trial_2/trial.json", f"its value of {name!r}"
    damage.__name__ = f"_value_{name}_{value}"
    return damage


def _unknown_name(d):
    _value("zzz", 3)(d)
    return "trial_2/trial.json", "'zzz', which is not a hyperparameter"


DAMAGE = [_truncate, _truncate_trial, _no_oracle, _no_hyperparameters, _missing_trial,
          _bad_metric, _bad_status, _not_an_oracle, _bad_space,
          # values outside the space: off its grid, out of range, of another type
          _value("units", 13), _value("units", 1000), _value("model", "rnn"),
          _value("lr", "fast"), _unknown_name]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_damaged_directory_changes_nothing(damage, project_dir, tmp_path, capsys):
    where, problem = damage(project_dir)
    tool = load_tool("import-keras-tuner")
    # a file that does not exist is not created
    absent = tmp_path / "absent.db"
    with pytest.raises(hpstore.HpStoreError) as info:
        tool.import_project(project_dir, absent)
    assert where in str(info.value) and problem in str(info.value)
    assert "nothing was imported" in str(info.value)
    assert not any(tmp_path.glob("absent.db*"))
    # an existing file stays byte for byte as it was
    db = tmp_path / "existing.db"
    assert run(capsys, FIXTURE, db, "--project", "other")[0] == 0
    before = digest(db)
    code, out, err = run(capsys, project_dir, db)
    assert code == 2 and out == "" and where in err and problem in err
    assert digest(db) == before
    conn = sqlite3.connect(db)
    assert [r[0] for r in conn.execute("SELECT name FROM projects")] == ["other"]


def test_parent_directory_names_its_projects(tmp_path, capsys):
    shutil.copytree(FIXTURE, tmp_path / "runs" / "first")
    code, _, err = run(capsys, tmp_path / "runs", tmp_path / "x.db")
    assert code == 2 and "first" in err and not (tmp_path / "x.db").exists()


def test_running_trial_is_queued_to_run_again(project_dir, tmp_path, capsys):
    path = project_dir / "trial_7" / "trial.json"
    doc = json.loads(path.read_text())
    doc.update(status="RUNNING", score=None, best_step=0)
    path.write_text(json.dumps(doc))
    oracle_doc = json.loads((project_dir / "oracle.json").read_text())
    oracle_doc["ongoing_trials"] = {"tuner0": "7"}
    oracle_doc["end_order"].remove("7")
    del oracle_doc["run_times"]["7"]
    (project_dir / "oracle.json").write_text(json.dumps(oracle_doc))
    db = tmp_path / "search.db"
    code, out, err = run(capsys, project_dir, db)
    assert code == 0, err
    assert "1 trial(s) queued to run again" in out and "IDLE 1" in out
    oracle = hpstore.RandomSearchOracle(database=str(db), project_name=PROJECT)
    try:
        assert oracle.get_trial("7").status == "IDLE"
        assert oracle.get_best_trials(1)[0].trial_id == "1"
        again = oracle.create_trial("tuner0")
        assert again.trial_id == "7" and again.run == 2
        assert again.hyperparameters.values == doc["hyperparameters"]["values"]
    finally:
        oracle.close()


def test_objective_when_the_scores_do_not_tell(project_dir, tmp_path, capsys):
    path = project_dir / "trial_0" / "trial.json"
    doc = json.loads(path.read_text())
    doc["score"] = 0.5  # no metric's best value any more
    path.write_text(json.dumps(doc))
    db = tmp_path / "search.db"
    code, _, err = run(capsys, project_dir, db)
    assert code == 2 and "--objective" in err and not db.exists()
    # a direction not in lower case was read as part of the name
    code, _, err = run(capsys, project_dir, db, "--objective", "val_accuracy:sideways")
    assert code == 2 and "'sideways' after the ':' is not a direction" in err, err
    assert "val_accuracy:min or val_accuracy:max" in err and not db.exists()
    code, out, err = run(capsys, project_dir, db, "--objective", "val_accuracy:MAX")
    assert code == 0 and "objective val_accuracy (max)" in out


@pytest.mark.parametrize(("given", "said"), [
    ("0", "argument --max-trials: must be at least 1, received 0"),
    ("ten", "argument --max-trials: expected a whole number, received 'ten'"),
])
def test_a_max_trials_not_above_zero_is_named_as_every_option_is(tmp_path, capsys, given,
                                                                 said):
    # it said "--max-trials must be at least 1", without the value, unlike every other option
    db = tmp_path / "search.db"
    with pytest.raises(SystemExit) as exited:  # (argparse's exit, as for any option)
        run(capsys, FIXTURE, db, "--max-trials", given)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and said in err, err
    assert not db.exists()


def test_other_oracle_and_max_trials(tmp_path, capsys):
    db = tmp_path / "search.db"
    code, out, err = run(capsys, FIXTURE, db, "--oracle", "BayesianOptimization",
                         "--max-trials", "12")
    assert code == 0, err
    assert "BayesianOptimizationOracle" in out and "max_trials 12" in out
    oracle = hpstore.BayesianOptimizationOracle(database=str(db), project_name=PROJECT)
    try:
        trial = oracle.create_trial("w")
        assert trial.status == "RUNNING" and trial.trial_id == "08"
    finally:
        oracle.close()
    code, _, err = run(capsys, FIXTURE, db, "--oracle", "Annealing", "--project", "x")
    assert code == 2 and "--oracle Annealing" in err


def test_objective_option_rescores(tmp_path, capsys):
    db = tmp_path / "search.db"
    code, out, err = run(capsys, FIXTURE, db, "--objective", "loss")
    assert code == 0, err
    assert "objective loss (min)" in out
    oracle = hpstore.RandomSearchOracle(database=str(db), project_name=PROJECT)
    try:
        best = oracle.get_best_trials(1)[0]
        losses = kt_trials()[best.trial_id]["metrics"]["metrics"]["loss"]["observations"]
        assert best.score == min(sum(o["value"]) / len(o["value"]) for o in losses)
        assert best.best_step == 2
    finally:
        oracle.close()
    code, _, err = run(capsys, FIXTURE, db, "--objective", "nope:min", "--project", "p")
    assert code == 2 and "never reported a value of the objective 'nope'" in err


def test_hyperband_brackets_carry_over(project_dir, tmp_path, capsys):
    # the state KerasTuner's Hyperband adds to oracle.json (max_epochs 3, factor 3: the
    # first round of bracket 1 holds 3 trials, its second 1)
    doc = json.loads((project_dir / "oracle.json").read_text())
    doc.update(max_epochs=3, min_epochs=1, factor=3, hyperband_iterations=1,
               current_bracket=1, current_iteration=0,
               brackets=[{"bracket_num": 1, "rounds": [
                   [{"past_id": None, "id": tid} for tid in ("0", "1", "2")], []]}])
    (project_dir / "oracle.json").write_text(json.dumps(doc))
    db = tmp_path / "search.db"
    code, out, err = run(capsys, project_dir, db)
    assert code == 0, err
    assert "HyperbandOracle (KerasTuner Hyperband)" in out and "max_epochs=3" in out
    # the models a continued trial loads stay in KerasTuner's folder: the advice says where
    # (without it, hpstore.keras.Hyperband failed each continued trial on a missing file)
    assert (f"With hpstore.keras.Hyperband, give it directory="
            f"{str(project_dir.resolve().parent)!r}") in out, out
    oracle = hpstore.HyperbandOracle(max_epochs=3, factor=3, database=str(db),
                                     project_name=PROJECT)
    try:
        promoted = oracle.create_trial("w")
        # the best of round 0 by val_accuracy (max) goes on for 3 epochs
        assert promoted.hyperparameters.values["tuner/trial_id"] == "1"
        assert promoted.hyperparameters.values["tuner/epochs"] == 3
    finally:
        oracle.close()


def test_times_come_from_what_the_files_record_never_from_mtimes(project_dir, tmp_path,
                                                                   capsys):
    copied = 978307200.0  # 2001-01-01: the files' mtimes after a copy that kept none
    for path in project_dir.rglob("*.json"):
        os.utime(path, (copied, copied))
    starts = json.loads((project_dir / "oracle.json").read_text())["display"]["trial_start"]
    db = tmp_path / "times.db"
    code, _, err = run(capsys, project_dir, db)
    assert code == 0, err
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT trial_id, created_at, started_at, ended_at FROM trials")
    for trial_id, created, started, ended in rows:
        expected = datetime.fromisoformat(starts[trial_id]).timestamp()
        assert created == started == expected and ended is None  # no end is recorded
    times = [t for (t,) in conn.execute("SELECT at FROM observations UNION ALL SELECT at FROM "
                                        "transitions UNION ALL SELECT created_at FROM trials")]
    assert times and all(abs(t - copied) > 86400 * 365 for t in times)


def test_without_recorded_starts_the_times_stay_empty(project_dir, tmp_path, capsys):
    oracle_file = project_dir / "oracle.json"
    doc = json.loads(oracle_file.read_text())
    del doc["display"]
    oracle_file.write_text(json.dumps(doc))
    before = time.time()
    code, _, err = run(capsys, project_dir, tmp_path / "bare.db")
    after = time.time()
    assert code == 0, err
    conn = sqlite3.connect(tmp_path / "bare.db")
    rows = conn.execute("SELECT created_at, started_at, ended_at FROM trials").fetchall()
    assert len(rows) == 8 and all(s is None and e is None for _, s, e in rows)
    assert all(before <= c <= after for c, _, _ in rows)  # the time of the import
    seconds = conn.execute("SELECT count(*) FROM trial_overview WHERE seconds IS NOT NULL")
    assert seconds.fetchone()[0] == 0


def _as_multi_objective(project_dir, extra=None):
    """Rewrite the fixture as KerasTuner writes a search with objective=["loss",
    Objective("val_accuracy", "max")]: each step also reports multi_objective (loss minus
    val_accuracy, direction min), the score is its best, and no file names the objectives.
    ``extra`` adds a metric of that name that is always 0."""
    for path in project_dir.glob("trial_*/trial.json"):
        doc = json.loads(path.read_text())
        metrics = doc["metrics"]["metrics"]
        if "loss" not in metrics:
            continue
        val = {o["step"]: o["value"] for o in metrics["val_accuracy"]["observations"]}
        combined = [{"step": o["step"], "value": [a - b for a, b in zip(o["value"],
                                                                         val[o["step"]])]}
                    for o in metrics["loss"]["observations"]]
        metrics["multi_objective"] = {"direction": "min", "observations": combined}
        if extra:
            metrics[extra] = {"direction": "min", "observations": [
                {"step": o["step"], "value": [0.0]} for o in combined]}
        if doc["status"] == "COMPLETED":
            best = min(combined, key=lambda o: (sum(o["value"]) / len(o["value"]), o["step"]))
            doc.update(score=sum(best["value"]) / len(best["value"]), best_step=best["step"])
        path.write_text(json.dumps(doc))


def test_a_list_of_objectives_resumes_with_that_list(project_dir, tmp_path, capsys):
    _as_multi_objective(project_dir)
    db = tmp_path / "search.db"
    code, out, err = run(capsys, project_dir, db)
    assert code == 0, err
    assert COMBINED in out
    # the script's own list of objectives opens the imported search
    oracle = hpstore.RandomSearchOracle(
        objective=["loss", hpstore.Objective("val_accuracy", "max")], database=str(db),
        project_name=PROJECT, max_trials=9)
    try:
        assert isinstance(oracle.objective, hpstore.MultiObjective)
        # the best is KerasTuner's best: the lowest multi_objective score, at its step
        docs = [json.loads(p.read_text()) for p in project_dir.glob("trial_*/trial.json")]
        kt_best = min((d for d in docs if d["status"] == "COMPLETED"),
                      key=lambda d: d["score"])
        best = oracle.get_best_trials(1)[0]
        assert best.trial_id == kt_best["trial_id"] and best.best_step == kt_best["best_step"]
        assert best.score == pytest.approx(kt_best["score"])
        assert oracle.create_trial("w").trial_id == "8"
    finally:
        oracle.close()


def test_a_list_of_objectives_the_files_cannot_tell(project_dir, tmp_path, capsys):
    _as_multi_objective(project_dir, extra="always_zero")  # with it or without, same sums
    db = tmp_path / "search.db"
    code, _, err = run(capsys, project_dir, db)
    assert code == 2 and "several sets of its other metrics" in err, err
    assert "--objective NAME:min|max" in err and not db.exists()
    code, out, err = run(capsys, project_dir, db, "--objective", "loss:min",
                         "--objective", "val_accuracy:max")
    assert code == 0 and COMBINED in out, err


def test_resuming_with_another_oracle_says_how_to_import_again(imported, capsys):
    # KerasTuner's GridSearch writes nothing of its own, so its project imports as
    # RandomSearch unless told; overwrite=True would throw the imported trials away
    db, out = imported
    assert "--oracle GridSearch" in out
    with pytest.raises(hpstore.ProjectMismatchError) as caught:
        hpstore.GridSearchOracle(database=str(db), project_name=PROJECT)
    command = str(caught.value).split("import it again: ")[1]
    assert command == f"hpstore import-keras-tuner {FIXTURE.resolve()} {db} --oracle " \
                      "GridSearch --overwrite"
    code, out, err = run(capsys, *command.split()[2:])
    assert code == 0 and "GridSearchOracle" in out and "--oracle GridSearch" not in out, err
    oracle = hpstore.GridSearchOracle(database=str(db), project_name=PROJECT)
    try:
        assert len(oracle.trials) == 8
    finally:
        oracle.close()


def test_a_custom_oracles_own_state_is_named(project_dir, tmp_path, capsys):
    # what a KerasTuner Oracle subclass adds in get_state() has no place in hpstore's
    # RandomSearch: the import says it leaves it, rather than dropping it unsaid
    doc = json.loads((project_dir / "oracle.json").read_text())
    doc["counter"] = 3
    (project_dir / "oracle.json").write_text(json.dumps(doc))
    code, out, err = run(capsys, project_dir, tmp_path / "search.db")
    assert code == 0, err
    assert "oracle.json also holds 'counter': a custom oracle's own state" in out
    code, out, err = run(capsys, FIXTURE, tmp_path / "search.db", "--project", "plain")
    assert code == 0 and "also holds" not in out, err


def test_a_list_of_objectives_among_too_many_metrics(project_dir, tmp_path, capsys):
    _as_multi_objective(project_dir)
    for path in project_dir.glob("trial_*/trial.json"):
        doc = json.loads(path.read_text())
        for n in range(10):
            doc["metrics"]["metrics"][f"m{n}"] = {"direction": "min", "observations": [
                {"step": 0, "value": [n + 0.5]}]}
        path.write_text(json.dumps(doc))
    code, _, err = run(capsys, project_dir, tmp_path / "search.db")
    assert code == 2 and "more than 10 other metrics" in err and "--objective" in err, err


def test_resuming_with_another_objective_says_how_to_import_again(imported, capsys):
    db, _ = imported
    with pytest.raises(hpstore.ProjectMismatchError) as caught:
        hpstore.RandomSearchOracle(objective=["loss", hpstore.Objective("val_accuracy", "max")],
                                   database=str(db), project_name=PROJECT)
    command = str(caught.value).split("import it again: ")[1]
    assert command == f"hpstore import-keras-tuner {FIXTURE.resolve()} {db} --objective " \
                      "loss:min --objective val_accuracy:max --overwrite"
    code, out, err = run(capsys, *command.split()[2:])
    assert code == 0 and COMBINED in out, err
    oracle = hpstore.RandomSearchOracle(
        objective=["loss", hpstore.Objective("val_accuracy", "max")], database=str(db),
        project_name=PROJECT)
    try:
        assert len(oracle.trials) == 8
    finally:
        oracle.close()


def test_the_report_says_an_imported_runs_time_is_unknown(imported, tmp_path, capsys):
    # KerasTuner records no end: the status log gives each imported run its start as its
    # end, and the report's timeline said "COMPLETED after 0 s"
    db, _ = imported
    out = tmp_path / "report.html"
    assert main(["report", str(db), "-o", str(out)]) == 0
    page = out.read_text()
    assert "COMPLETED after an unknown time (its end was not recorded)" in page
    assert "COMPLETED after 0 s" not in page


def test_what_the_import_prints_of_the_folders_name_is_escaped(tmp_path, capsys):
    # the folder is KerasTuner's project_name (another's tarball, say): printed raw, a
    # sequence in it set the window title and cleared the screen
    name = "proj\x1b]0;owned\x07\x1b[2J"
    shutil.copytree(FIXTURE, tmp_path / name)
    code, out, err = run(capsys, tmp_path / name, tmp_path / "e.db")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert out.startswith("Imported ") and "proj\\x1b]0;owned\\x07\\x1b[2J" in out
