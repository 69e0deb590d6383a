"""The fixtures of the store-contract suites (test_store_contract*.py): one store per
engine, a project in it, and a running trial started and ended through the contract."""

from __future__ import annotations

import pytest
from _stores import ENGINES, first_free, location, new_project

from hpstore.store import TrialRecord, open_store


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture
def store(engine, tmp_path):
    opened = open_store(location(engine, tmp_path))
    yield opened
    opened.close()


@pytest.fixture
def project(store):
    return store.create_project(new_project())


def start(project, store, tuner="w", x=None):
    """A new running trial (the next free x, or ``x``)."""
    choices = range(10) if x is None else range(x, x + 1)
    outcome = project.decide(first_free(project, choices), tuner_id=tuner,
                             session=store.session())
    assert isinstance(outcome, TrialRecord), outcome
    return outcome


def end(project, trial, status="COMPLETED", score=1.0, **kw):
    project.finish(trial, status, None, trial.values_json, trial.values_key, score, 0,
                   invalid=kw.get("invalid", False), requeue=kw.get("requeue", False),
                   space=kw.get("space"))


def make_id(number, max_trials):
    """Trial ids of two digits, for the store's steering calls."""
    return f"{number:02d}"
