"""How a new trial is decided and recorded on a PostgreSQL server: the statements sent and
the round trips they take, deciding ahead of the decision lock and giving way when the
facts changed, and the reads kept outside the lock while other workers run trials."""

from __future__ import annotations

import threading

import pytest
from _pg_oracles import ORACLES, another_worker, finish, space
from _postgres import fresh_url, wait_until

import hpstore


class Trace:
    """The statements the main thread sends (their first two words), and how many had
    been sent as each pipeline opened."""

    def __init__(self, monkeypatch):
        import psycopg

        self.sent, self.trips = [], []
        execute, pipeline = psycopg.Connection.execute, psycopg.Connection.pipeline
        trace = self

        def recording(self, query, params=None, **kwargs):
            if threading.current_thread() is threading.main_thread():  # not liveness
                trace.sent.append(str(query).split(" ", 2)[:2])
            return execute(self, query, params, **kwargs)

        def counting(self):
            trace.trips.append(len(trace.sent))
            return pipeline(self)

        monkeypatch.setattr(psycopg.Connection, "execute", recording)
        monkeypatch.setattr(psycopg.Connection, "pipeline", counting)

    def of(self, call):
        self.sent.clear()
        self.trips.clear()
        result = call()
        return result, [" ".join(words) for words in self.sent], list(self.trips)


INSERT = "WITH lock"  # a new trial's insert (with the status log's lock)
# the decision lock and the insert, a transaction of their own (up to the pipeline's end)
ONE_TRIP = ["SELECT pg_advisory_xact_lock(%s,", INSERT]


def test_a_decision_on_a_server_is_two_round_trips(monkeypatch):
    # On a file random search draws before the lock; on a server every read is a round
    # trip, so create_trial decides in the transaction, whose opening (BEGIN, the running
    # trials ahead of the lock, the lock, the facts) is one round trip, and the insert with
    # its COMMIT another; the decision's values are looked up by the insert.
    oracle = ORACLES["random"](fresh_url())
    finish(oracle, stop_after=2)
    oracle._project._foreseen = False  # (see the next test)
    trial, sent, trips = Trace(monkeypatch).of(lambda: oracle.create_trial("w"))
    assert trial.status == "RUNNING"
    # + the running trials, the lock, the facts, the insert, COMMIT
    assert sent[0] == "BEGIN" and len(sent) == 6
    assert sent[1:3] == ["SELECT id,", "SELECT txid_current(),"]  # (the lock with the id)
    assert trips == [0, 4]  # two pipelines: the opening, then the insert with its COMMIT
    oracle.close()


def test_a_worker_alone_on_a_server_records_a_trial_in_one_round_trip(monkeypatch):
    # Once a decision found the facts its worker expected (the number after its last
    # trial, nothing queued, nothing running, the same settings and space), the next is
    # decided on those facts before any lock, and the lock and the insert (which checks
    # the facts under the lock) go in one round trip, committed at its end.
    url = fresh_url()
    oracle = ORACLES["random"](url)
    trace = Trace(monkeypatch)
    shapes = []
    for _ in range(4):
        trial, sent, trips = trace.of(lambda: oracle.create_trial("w"))
        shapes.append((sent, trips))
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
    assert len(shapes[0][0]) > 5  # the first: the liveness lock, the running trials ...
    assert len(shapes[1][0]) == 6 and shapes[1][1] == [0, 4]  # expected nothing yet
    assert shapes[2] == shapes[3] == (ONE_TRIP, [0])
    # the same trials as a worker that never decides ahead
    reference = ORACLES["random"](fresh_url())
    reference._project._voided = 99  # (as a decider that reads the store: never ahead)
    finish(reference, stop_after=4)
    assert values_of(oracle) == values_of(reference)
    oracle.close()
    reference.close()


def values_of(oracle):
    """Each trial's values, by number."""
    return [t.hyperparameters.values for t in oracle.trials.values()]


def test_a_worker_that_grows_the_space_still_decides_ahead(monkeypatch):
    # each trial declares a hyperparameter of its own (a branch only it takes): the space
    # this worker grew is the one its next decision is made ahead on
    oracle = ORACLES["random"](fresh_url())
    trace = Trace(monkeypatch)
    for i in range(5):
        trial, sent, _ = trace.of(lambda: oracle.create_trial("w"))
        assert set(trial.hyperparameters.values) == {"a", "x", *(f"n{j}" for j in range(i))}
        trial.hyperparameters.Int(f"n{i}", 0, 3)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
    assert sent == ONE_TRIP and oracle._project._voided == 0
    oracle.close()


def test_a_decider_that_reads_the_store_is_not_asked_ahead_for_long(monkeypatch, tmp_path):
    # the grid reads its position from the store: a decision made ahead on it would rest
    # on a read the insert cannot check, so it is made the usual way; after a few such
    # tries the grid is not asked ahead again
    from hpstore.store.ahead import MAX_VOIDED

    oracle = ORACLES["grid"](fresh_url())
    finish(oracle, stop_after=8)
    assert oracle._project._voided == MAX_VOIDED
    trial, sent, _ = Trace(monkeypatch).of(lambda: oracle.create_trial("w"))
    assert sent[0] == "BEGIN" and trial.status == "RUNNING"
    # the same trials, in the same order, as the grid on a file
    local = ORACLES["grid"](str(tmp_path / "g.db"))
    finish(local, stop_after=9)
    assert values_of(oracle) == values_of(local)
    oracle.close()
    local.close()


def _trial_after(monkeypatch, change):
    """(a lone worker whose next decision is made ahead, the trial it gets after
    ``change(url)`` made its expected facts untrue, what it sent for it)."""
    url = fresh_url()
    oracle = ORACLES["random"](url)
    finish(oracle, stop_after=3)  # the next decision is made ahead
    assert oracle._project._foreseen
    change(url)
    trace = Trace(monkeypatch)
    trial, sent, _ = trace.of(lambda: oracle.create_trial("w"))
    return oracle, trial, sent


def test_a_decision_made_ahead_on_facts_gone_untrue_is_made_again_under_the_lock(
        monkeypatch):
    # another worker's trial since: the number expected is taken; nothing is written
    # and the decision is made the usual way, for the next number
    def another_trial(url):
        other = another_worker(ORACLES["random"](url))
        finish(other, stop_after=1)
        other.close()

    oracle, trial, sent = _trial_after(monkeypatch, another_trial)
    assert sent[:2] == ONE_TRIP and sent[2] == "BEGIN" and len(sent) == 8
    assert trial.trial_id == "4"  # 0-2 this worker's, 3 the other's
    assert len({tuple(sorted(t.hyperparameters.values.items()))
                for t in oracle.trials.values()}) == 5
    oracle.close()


def test_a_decision_made_ahead_gives_way_to_a_queued_trial(monkeypatch):
    enqueued = {}

    def enqueue(url):
        other = ORACLES["random"](url)
        enqueued["id"] = other.enqueue_trial({"a": 0, "x": 0.5})
        other.close()

    oracle, trial, sent = _trial_after(monkeypatch, enqueue)
    assert sent[:2] == ONE_TRIP  # tried, refused
    assert trial.trial_id == enqueued["id"]
    assert trial.hyperparameters.values == {"a": 0, "x": 0.5}
    oracle.close()


def test_a_decision_made_ahead_gives_way_to_its_own_trial_to_run_again(monkeypatch):
    # this worker's last trial ended INVALID and waits in the queue to run again: the
    # number expected is still free, only the queue differs
    oracle = hpstore.RandomSearchOracle("loss", max_trials=8, hyperparameters=space(),
                                        seed=4, database=fresh_url(),
                                        max_retries_per_trial=1)
    finish(oracle, stop_after=3)
    trial = oracle.create_trial("w")
    trial.status = "INVALID"
    oracle.end_trial(trial)
    again, sent, _ = Trace(monkeypatch).of(lambda: oracle.create_trial("w"))
    assert sent[:2] == ONE_TRIP and sent[2] == "BEGIN"  # refused, then made again
    assert again.trial_id == trial.trial_id == "3"
    assert again.hyperparameters.values == trial.hyperparameters.values
    oracle.close()


def test_random_search_decides_ahead_beside_other_workers_running_trials(monkeypatch):
    # random search needs of the running trials only that none runs its values, nor will
    # once it declares what it lacks: the insert checks that under the lock, so the trials
    # other workers (and this one, under other tuner ids) run do not send it the long way
    url = fresh_url()
    other = another_worker(ORACLES["random"](url))
    held = other.create_trial("v")  # another process's worker: number 0, running
    oracle = ORACLES["random"](url)
    finish(oracle, stop_after=3)
    assert oracle._project._foreseen
    trace = Trace(monkeypatch)
    first, sent, _ = trace.of(lambda: oracle.create_trial("w1"))
    assert sent == ONE_TRIP and first.trial_id == "4"
    second, sent, _ = trace.of(lambda: oracle.create_trial("w2"))
    assert sent == ONE_TRIP and second.trial_id == "5"
    # a running trial of this very tuner is handed back: the decision made ahead is
    # refused, and the long way gives it back
    again, sent, _ = trace.of(lambda: oracle.create_trial("w1"))
    assert sent[:2] == ONE_TRIP and sent[2] == "BEGIN"
    assert (again.trial_id, again.hyperparameters.values) == (
        first.trial_id, first.hyperparameters.values)
    assert held.status == first.status == second.status == "RUNNING"
    assert len({t.values_key for t in oracle.project.trials()}) == 6
    other.close()
    oracle.close()


def _longer(url):
    return hpstore.RandomSearchOracle("loss", max_trials=16, hyperparameters=space(), seed=4,
                                      database=url)


def test_workers_taking_turns_foresee_their_numbers_and_decide_ahead(monkeypatch):
    # two workers in turn: each takes every other number, and foresees it from the strides
    # between its last numbers, so both decide ahead in one round trip
    url = fresh_url()
    first, second = another_worker(_longer(url)), _longer(url)
    trace = Trace(monkeypatch)
    shapes, numbers = {first: [], second: []}, {first: [], second: []}

    def turn(oracle):
        trial, sent, _ = trace.of(lambda: oracle.create_trial("w"))
        shapes[oracle].append(sent)
        numbers[oracle].append(int(trial.trial_id))
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)

    for _ in range(4):
        turn(first)
        turn(second)
    assert numbers[first] == [0, 2, 4, 6] and numbers[second] == [1, 3, 5, 7]
    # (the second decision learns the stride, the third finds the number it foresaw)
    assert shapes[first][-1] == shapes[second][-1] == ONE_TRIP
    # the second worker leaves: the first, alone, expects 8 (right), then 10 (refused:
    # 9 is next, and it had foreseen every number so far, so it sent that one decision
    # alone)
    second.close()
    for _ in range(5):
        turn(first)
    assert numbers[first][4:] == [8, 9, 10, 11, 12]
    assert shapes[first][4] == ONE_TRIP
    assert shapes[first][5][:2] == ONE_TRIP and shapes[first][5][2] == "BEGIN"
    # Its strides (2, 2, 2, 1) still foresee 11 after 9, but a number not foreseen came
    # lately, so the decisions for the numbers near 11 go along: the insert takes 10, the
    # one that is next, in one round trip; then its strides agree on 1
    assert first._project._expected.number == 13
    assert shapes[first][6] == shapes[first][7] == shapes[first][8] == ONE_TRIP
    # another worker takes 13 out of turn: the first takes 14 in one round trip
    third = another_worker(_longer(url))
    taken = third.create_trial("v")
    turn(first)
    assert (taken.trial_id, numbers[first][-1], shapes[first][-1]) == ("13", 14, ONE_TRIP)
    third.update_trial(taken.trial_id, {"loss": 1.0})
    third.end_trial(taken)
    third.close()
    # the values are those any way of deciding gives each number
    reference = _longer(fresh_url())
    finish(reference, stop_after=15)
    assert values_of(first) == values_of(reference)
    first.close()
    reference.close()


def test_decisions_sent_with_the_numbers_near_never_run_values_twice(monkeypatch):
    # Two workers out of step on a space of 12 sets of values: their decisions made ahead
    # go with the numbers near the one foreseen, and, as the space fills, the one whose
    # number is next often holds values run before. The insert refuses it; the decision
    # is made again under the lock. Every set runs once, and each number holds the values
    # a worker alone gives it.
    import psycopg

    def oracle(url):
        hp = hpstore.HyperParameters()
        hp.Int("a", 0, 11)
        return hpstore.RandomSearchOracle("loss", max_trials=40, hyperparameters=hp,
                                          seed=7, database=url)

    near, execute = [], psycopg.Connection.execute

    def recording(self, query, params=None, **kwargs):
        if "AS c(number" in str(query):
            near.append(query)
        return execute(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", recording)
    url = fresh_url()
    workers = [another_worker(oracle(url)), oracle(url)]
    turns = [0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0] * 3
    for who in turns:
        trial = workers[who].create_trial(f"w{who}")
        if trial.status == "STOPPED":
            break
        workers[who].update_trial(trial.trial_id, {"loss": 1.0})
        workers[who].end_trial(trial)
    assert trial.status == "STOPPED" and near
    values = [t.hyperparameters.values["a"] for t in workers[0].trials.values()]
    assert sorted(values) == list(range(12))
    reference = oracle(fresh_url())
    while (trial := reference.create_trial("w")).status == "RUNNING":
        reference.update_trial(trial.trial_id, {"loss": 1.0})
        reference.end_trial(trial)
    assert values_of(workers[0]) == values_of(reference)
    for worker in (*workers, reference):
        worker.close()


def test_an_oracle_that_changes_how_random_search_proposes_does_not_draw_ahead():
    class Proposes(hpstore.RandomSearchOracle):
        def random_values(self):
            return super().random_values()

    class Avoids(hpstore.RandomSearchOracle):
        def is_taken(self, values, key=None):
            return super().is_taken(values, key)

    class Says(Avoids):
        draws_ahead = True  # its author vouches for it

    assert hpstore.RandomSearchOracle.draws_ahead and Says.draws_ahead
    assert not Proposes.draws_ahead and not Proposes.decides_quickly
    assert not Avoids.draws_ahead


class _Quick(hpstore.RandomSearchOracle):
    """A decider of its own that says it is quick, but not that it draws ahead: it may use
    the running trials for more than not repeating them."""

    decides_quickly = True

    def populate_space(self, trial_id):
        return {"status": "RUNNING", "values": self.random_values()}


def test_a_quick_decider_that_does_not_draw_ahead_gives_way_to_any_running_trial(
        monkeypatch):
    url = fresh_url()
    oracle = _Quick("loss", max_trials=8, hyperparameters=space(), seed=4, database=url)
    finish(oracle, stop_after=3)
    assert oracle._project._foreseen and not oracle.draws_ahead
    first, sent, _ = Trace(monkeypatch).of(lambda: oracle.create_trial("w1"))
    assert sent == ONE_TRIP  # nothing running: made ahead
    second, sent, _ = Trace(monkeypatch).of(lambda: oracle.create_trial("w2"))
    assert sent[:2] == ONE_TRIP and sent[2] == "BEGIN"  # refused, then made again
    assert second.trial_id == "4" and first.status == second.status == "RUNNING"
    assert oracle._project._foreseen is False
    oracle.close()


def test_a_running_trial_of_another_branch_never_refuses_a_decision_made_ahead(
        monkeypatch):
    # in a conditional space a running trial has the values of its branch only: fewer than
    # a decision in a larger branch, but with one the decision lacks, so it can never end
    # up running the decision's values, and the decision made ahead is recorded
    def conditional():
        hp = hpstore.HyperParameters()
        hp.Choice("model", ["small", "large"])
        with hp.conditional_scope("model", "small"):
            hp.Int("p", 0, 100)
        with hp.conditional_scope("model", "large"):
            hp.Int("q", 0, 100)
            hp.Int("r", 0, 100)
        return hp

    url = fresh_url()
    other = another_worker(hpstore.RandomSearchOracle(
        "loss", max_trials=12, hyperparameters=conditional(), seed=4, database=url))
    other.enqueue_trial({"model": "small", "p": 5})
    held = other.create_trial("v")  # two values, running
    assert held.hyperparameters.values == {"model": "small", "p": 5}
    oracle = hpstore.RandomSearchOracle("loss", max_trials=12,
                                        hyperparameters=conditional(), seed=4, database=url)
    trace, shapes, large = Trace(monkeypatch), [], []
    for _ in range(8):
        trial, sent, _ = trace.of(lambda: oracle.create_trial("w"))
        shapes.append(sent)
        large.append(trial.hyperparameters.values["model"] == "large")
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
    # from the third on, every decision is made ahead, those of the larger branch too
    assert shapes[2:] == [ONE_TRIP] * 6 and any(large[2:])
    other.close()
    oracle.close()


def test_a_decision_made_ahead_gives_way_to_a_running_trial_with_fewer_values(monkeypatch):
    # a trial started before the space grew may still declare what it lacks (at its
    # default), and so end up running the values drawn: while one runs, the decision is
    # refused and made again, seeing it (hpstore.oracle.values.completes)
    url = fresh_url()
    other = another_worker(ORACLES["random"](url))
    held = other.create_trial("v")  # a and x only
    hp = space()
    hp.Int("b", 5, 6)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=8, hyperparameters=hp, seed=4,
                                        database=url)
    finish(oracle, stop_after=3)
    assert oracle._project._foreseen
    trace = Trace(monkeypatch)
    trial, sent, _ = trace.of(lambda: oracle.create_trial("w"))
    assert sent[:2] == ONE_TRIP and sent[2] == "BEGIN"
    assert trial.status == "RUNNING" and set(trial.hyperparameters.values) == {"a", "x", "b"}
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    oracle.end_trial(trial)
    other.update_trial(held.trial_id, {"loss": 1.0})
    other.end_trial(held)
    _, sent, _ = trace.of(lambda: oracle.create_trial("w"))
    assert sent == ONE_TRIP  # none with fewer values runs now
    other.close()
    oracle.close()


def test_a_decision_made_ahead_sees_a_lower_max_trials_and_a_grown_space(monkeypatch):
    def lower(url):
        other = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=space(),
                                           seed=4, database=url)
        other.close()

    oracle, trial, sent = _trial_after(monkeypatch, lower)
    assert sent[:2] == ONE_TRIP and trial.status == "STOPPED"
    oracle.close()

    def grow(url):
        hp = space()
        hp.Int("b", 5, 6)
        other = hpstore.RandomSearchOracle("loss", hyperparameters=hp, seed=4, database=url)
        other.close()

    oracle, trial, sent = _trial_after(monkeypatch, grow)
    assert sent[:2] == ONE_TRIP and "b" in trial.hyperparameters.values
    oracle.close()


def test_while_other_workers_run_trials_a_decision_takes_two_round_trips(monkeypatch):
    # Alone, a worker decides ahead and records in one round trip. While another worker's
    # trial runs, the running trials and whether their workers live are read in the round
    # trip that takes the decision lock (BEGIN, the running trials ahead of the lock, the
    # lock, the facts); the insert comes with the COMMIT. No round trip of its own for the
    # running trials, and no read of pg_locks, whose cost grows with every lock on the
    # server.
    import psycopg

    url = fresh_url()
    # (random search would decide ahead beside the running trial: see above)
    other, oracle = (another_worker(_Quick("loss", max_trials=8, hyperparameters=space(),
                                           seed=4, database=url)),
                     _Quick("loss", max_trials=8, hyperparameters=space(), seed=4,
                            database=url))
    sent: list[str] = []
    execute = psycopg.Connection.execute

    def recording(self, query, params=None, **kwargs):
        if threading.current_thread() is threading.main_thread():  # not a liveness thread
            sent.append(" ".join(str(query).split()))
        return execute(self, query, params, **kwargs)

    def creating():
        """The statements create_trial sent, each by its first two words."""
        sent.clear()
        trial = oracle.create_trial("w")
        words = [" ".join(q.split(" ", 2)[:2]) for q in sent]
        assert not any("pg_locks" in q for q in sent), sent
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
        return words

    read_with_facts = ["BEGIN", "SELECT id,", "SELECT txid_current(),",
                       "SELECT p.max_trials,", "WITH lock", "COMMIT"]
    monkeypatch.setattr(psycopg.Connection, "execute", recording)
    creating()  # (the first also takes the worker's liveness lock)
    assert creating() == read_with_facts  # alone, facts not yet foreseen
    assert creating() == ["SELECT pg_advisory_xact_lock(%s,", "WITH lock"]  # one trip
    held = other.create_trial("v")  # another worker's trial runs (another session)
    # decided ahead on the facts expected (refused: a trial runs), then read with them
    assert creating() == ["SELECT pg_advisory_xact_lock(%s,", "WITH lock", *read_with_facts]
    assert creating() == read_with_facts
    other.update_trial(held.trial_id, {"loss": 2.0})
    other.end_trial(held)
    assert creating() == read_with_facts  # (finds none running)
    assert creating() == ["SELECT pg_advisory_xact_lock(%s,", "WITH lock"]
    assert len(oracle.trials) == 8  # (max_trials: all of the search)
    other.close()
    oracle.close()


def test_a_worker_asking_again_on_a_server_gets_its_running_trial_back():
    # the running trials come with the decision's facts; this tuner's own among them
    # sends create_trial the long way, which hands it back
    oracle = ORACLES["random"](fresh_url())
    first = oracle.create_trial("w")
    again = oracle.create_trial("w")
    assert (again.trial_id, again.hyperparameters.values) == (
        first.trial_id, first.hyperparameters.values)
    other = oracle.create_trial("v")
    assert other.trial_id != first.trial_id and sorted(oracle.trials) == sorted(
        [first.trial_id, other.trial_id])
    oracle.close()


def test_without_pipelines_the_statements_go_one_by_one_to_the_same_end(monkeypatch, tmp_path):
    # libpq before version 14 cannot pipeline (psycopg refuses): the statements a
    # decision sends together are then sent one after the other
    import psycopg

    from hpstore.store.postgresql import database

    def refused(self):
        raise psycopg.NotSupportedError("libpq too old")

    monkeypatch.setattr(database, "_can_pipeline", lambda psycopg: False)
    monkeypatch.setattr(psycopg.Connection, "pipeline", refused)
    on_pg = ORACLES["random-exhausted"](fresh_url())
    assert finish(on_pg) == 12
    alone = ORACLES["random-exhausted"](str(tmp_path / "s.db"))
    finish(alone)
    assert [(t["hp_values"], t["score"]) for t in on_pg.get_state()["trials"]] == [
        (t["hp_values"], t["score"]) for t in alone.get_state()["trials"]]
    on_pg.close()
    alone.close()


@pytest.mark.parametrize("ending", ["runs again", "grows the space"])
def test_an_end_that_queues_a_trial_or_grows_the_space_waits_for_a_decision_in_flight(
        ending):
    # A decision holds the decision lock from its reading of the facts (nothing queued, the
    # space's version) to the commit of its trial. An end that puts a trial back in the
    # queue, or grows the space, takes that lock too: committed in between, it would log
    # a new trial after a trial waiting to run again, or decided on a space grown since.
    import psycopg

    url = fresh_url()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=8, hyperparameters=space(),
                                        seed=4, max_retries_per_trial=1, database=url)
    trial = oracle.create_trial("w")
    if ending == "runs again":
        trial.status = "INVALID"
    else:
        trial.hyperparameters.Int("grown", 0, 3)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
    decide = oracle.store.db.keys["decide"]
    project = oracle.project.project_id
    ended = threading.Event()

    def end():
        oracle.end_trial(trial)
        ended.set()

    def waiting():
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                "AND NOT granted AND classid::bigint = %s",
                                (decide,)).fetchone()[0] == 1

    with psycopg.connect(url) as decision:  # holds the lock until it commits
        decision.execute("SELECT pg_advisory_xact_lock(%s, %s)", (decide, project))
        ender = threading.Thread(target=end)
        ender.start()
        wait_until(waiting, 30, "the end waiting for the decision lock")
        assert not ended.is_set()
        decision.commit()
    ender.join(30)
    assert ended.is_set()
    stored = oracle.project.trial(trial.trial_id)
    if ending == "runs again":
        assert (stored.status, stored.queued is not None) == ("INVALID", True)
        again = oracle.create_trial("w2")  # the queue comes first
        assert again.trial_id == trial.trial_id
    else:
        assert stored.status == "COMPLETED" and "grown" in stored.values
        assert "grown" in oracle.get_space().values
    oracle.close()
