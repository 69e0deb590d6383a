"""Many workers on one PostgreSQL search: shared over TCP, killed, cut off from the server
(the machine vanished), and the server restarted under them."""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
import signal
import sys
import threading

import pytest
from _pgworkers import hold_a_trial, oracle_on, run_trials, score
from _postgres import ENV, backend_pids, base_url, fresh_url, server, terminate, wait_until

from hpstore.store import open_store

CTX = mp.get_context("spawn")
DEADLINE = 120.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX")


def start_workers(url, count, max_trials, step_time=0.0):
    begin, results = CTX.Barrier(count + 1, timeout=DEADLINE), CTX.Queue()
    procs = [CTX.Process(target=run_trials,
                         args=(url, max_trials, f"w{i}", begin, results, step_time))
             for i in range(count)]
    for p in procs:
        p.start()
    begin.wait()
    return procs, results


def collect(procs, results):
    reports = [results.get(timeout=DEADLINE * 2) for _ in procs]
    for p in procs:
        p.join(DEADLINE)
    return reports


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_a_databases_isolation_default_does_not_reach_hpstores_workers(isolation):
    # hpstore's decisions read, once their lock is held, what was committed before: under
    # a snapshot taken earlier, workers died on "duplicate key" or "could not serialize"
    from urllib.parse import urlsplit

    from _postgres import fresh_database
    from psycopg import connect, sql

    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_isolation = {}").format(
            sql.Identifier(urlsplit(url).path.lstrip("/")), sql.Literal(isolation)))
    oracle_on(url, 300).close()
    procs, results = start_workers(url, 3, 300)
    reports = collect(procs, results)
    assert [errors for _, _, _, errors in reports] == [[]] * 3
    done = [trial_id for _, _, finished, _ in reports for trial_id, _ in finished]
    assert len(done) == len(set(done)) == 300


def test_four_processes_share_1600_trials_over_tcp():
    url = fresh_url()  # 127.0.0.1: TCP, as from other machines
    assert "127.0.0.1" in url
    oracle_on(url, 1600).close()
    procs, results = start_workers(url, 4, 1600)
    reports = collect(procs, results)
    assert [errors for _, _, _, errors in reports] == [[]] * 4
    done = [trial_id for _, _, finished, _ in reports for trial_id, _ in finished]
    assert len(done) == len(set(done)) == 1600  # each trial run by one worker, once
    assert all(len(finished) > 0 for _, _, finished, _ in reports)  # all four took part
    store = open_store(url, read_only=True)
    project = store.open_project(store.projects()[0])
    trials = project.trials()
    assert len(trials) == 1600 and project.counts_by_status() == {"COMPLETED": 1600}
    assert sorted(t.number for t in trials) == list(range(1600))
    assert len({t.trial_id for t in trials}) == len({t.values_key for t in trials}) == 1600
    log = collections.Counter(c.trial_id for c in project.transitions())
    assert set(log.values()) == {2}  # RUNNING, COMPLETED: nothing handed back or redone
    store.close()


def hold(url):
    ready, info, go, outcome = CTX.Event(), CTX.Queue(), CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=hold_a_trial, args=(url, ready, info, go, outcome))
    proc.start()
    assert ready.wait(DEADLINE)
    return proc, info.get(timeout=DEADLINE), go, outcome


def test_a_worker_killed_holding_a_trial_has_it_run_again_by_another():
    url = fresh_url()
    oracle_on(url, 10).close()
    proc, (trial_id, token, pid, values), _, _ = hold(url)
    other = oracle_on(url, 10)
    assert other.store.is_alive(token)
    os.kill(pid, signal.SIGKILL)
    proc.join(DEADLINE)
    wait_until(lambda: not other.store.is_alive(token), DEADLINE, "the lock's release")
    again = other.create_trial("survivor")  # reaps the dead worker's trial and runs it
    assert (again.trial_id, again.hyperparameters.values) == (trial_id, values)
    record = other.project.trial(trial_id)
    assert (record.run, record.interruptions, record.tuner_id) == (2, 1, "survivor")
    assert [c.to_status for c in other.project.transitions(trial_id=trial_id)] == [
        "RUNNING", "IDLE", "RUNNING"]
    other.close()


def test_a_worker_deciding_ahead_beside_others_still_reaps_a_killed_workers_trial():
    # Random search decides ahead of the lock beside other workers' running trials (the
    # insert checks them under it): one whose worker was killed must refuse that decision,
    # so that the long way reaps the trial and runs it again
    url = fresh_url()
    oracle_on(url, 10).close()
    proc, (trial_id, token, pid, values), _, _ = hold(url)
    other = oracle_on(url, 10)
    project, landed = other.project, []
    decide_ahead = project._decide_ahead

    def recorded(*args):
        made = decide_ahead(*args)
        landed.append(made is not None)
        return made

    project._decide_ahead = recorded
    for _ in range(3):  # beside the held trial: decided ahead once the facts are foreseen
        trial = other.create_trial("survivor")
        other.update_trial(trial.trial_id, {"loss": score(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        other.end_trial(trial)
    assert landed == [True]  # the third was made ahead beside the live worker's trial
    os.kill(pid, signal.SIGKILL)
    proc.join(DEADLINE)
    wait_until(lambda: not other.store.is_alive(token), DEADLINE, "the lock's release")
    again = other.create_trial("survivor")
    assert landed == [True, False]  # asked ahead, refused
    assert (again.trial_id, again.hyperparameters.values) == (trial_id, values)
    assert other.project.trial(trial_id).interruptions == 1
    assert other.project.count() == 4  # nothing new was recorded before the reaping
    other.close()


def test_a_vanished_workers_trial_is_reaped_and_its_late_results_refused():
    """The machine vanished: the worker is frozen (SIGSTOP) and the server ends its
    connections, as its TCP keepalives would. Another worker takes the trial over; when the
    first comes back it is told its trial is gone, and nothing of it is recorded."""
    url = fresh_url()
    oracle_on(url, 10).close()
    proc, (trial_id, token, pid, values), go, outcome = hold(url)
    os.kill(pid, signal.SIGSTOP)
    try:
        backends = backend_pids(f":{pid}")
        assert len(backends) == 2  # its work and its liveness lock: two connections
        terminate(backends)
        other = oracle_on(url, 10)
        wait_until(lambda: not other.store.is_alive(token), DEADLINE, "the lock's release")
        again = other.create_trial("survivor")
        assert (again.trial_id, again.hyperparameters.values) == (trial_id, values)
        other.update_trial(trial_id, {"loss": score(values)})
        again.status = "COMPLETED"
        other.end_trial(again)
    finally:
        os.kill(pid, signal.SIGCONT)
    go.set()
    said = outcome.get(timeout=DEADLINE)
    proc.join(DEADLINE)
    assert said.startswith("TrialNotRunningError"), said  # told, in words
    record = other.project.trial(trial_id)
    assert (record.status, record.score, record.run) == ("COMPLETED", score(values), 2)
    assert [o.value for o in other.project.observations(record, every_run=True)] == [
        score(values)]  # the late worker's 123.0 was refused
    assert [c.to_status for c in other.project.transitions(trial_id=trial_id)] == [
        "RUNNING", "IDLE", "RUNNING", "COMPLETED"]
    other.close()


def test_a_vanished_workers_trial_handed_on_twice_still_refuses_its_late_results():
    """As above, but the worker that took the trial over is killed (kill -9) and a third
    takes it, in run 3: the first, back, is told its trial was handed on (its run is in
    the trial's status log: it was not lost), and nothing of it lands in the third's run."""
    url = fresh_url()
    oracle_on(url, 10).close()
    proc, (trial_id, token, pid, values), go, outcome = hold(url)
    os.kill(pid, signal.SIGSTOP)
    try:
        terminate(backend_pids(f":{pid}"))
        other = oracle_on(url, 10)
        wait_until(lambda: not other.store.is_alive(token), DEADLINE, "the lock's release")
        second, (taken, second_token, second_pid, _), _, _ = hold(url)
        assert taken == trial_id
        os.kill(second_pid, signal.SIGKILL)
        second.join(DEADLINE)
        wait_until(lambda: not other.store.is_alive(second_token), DEADLINE,
                   "the second lock's release")
        again = other.create_trial("survivor")
        assert (again.trial_id, again.hyperparameters.values) == (trial_id, values)
        assert other.project.trial(trial_id).run == 3
    finally:
        os.kill(pid, signal.SIGCONT)
    go.set()
    said = outcome.get(timeout=DEADLINE)
    proc.join(DEADLINE)
    assert said.startswith("TrialNotRunningError") and "run 3" in said, said
    other.update_trial(trial_id, {"loss": score(values)})
    again.status = "COMPLETED"
    other.end_trial(again)
    record = other.project.trial(trial_id)
    assert (record.status, record.score, record.run) == ("COMPLETED", score(values), 3)
    assert [o.value for o in other.project.observations(record, every_run=True)] == [
        score(values)]  # the first worker's late 123.0 was refused
    other.close()


@pytest.mark.skipif(server() is None, reason=f"restarts the tests' own server ({ENV} is set)")
def test_workers_live_through_a_server_restart_and_nothing_committed_is_lost():
    url = fresh_url()
    total = 240
    oracle_on(url, total).close()
    procs, results = start_workers(url, 3, total, step_time=0.01)
    watcher = open_store(url, read_only=True)
    project = watcher.open_project(watcher.projects()[0])
    wait_until(lambda: project.counts_by_status().get("COMPLETED", 0) >= 40, DEADLINE,
               "40 trials completed")
    watcher.close()
    found = server()
    assert found is not None
    found.restart("fast")
    reports = collect(procs, results)
    errors = [e for _, _, _, es in reports for e in es]
    # each worker reconnected, or stopped with a clear error; none crashed, and none had
    # its trial handed back while it lived
    assert not [e for e in errors if e.startswith(("CRASH", "gone"))], errors
    finisher = oracle_on(url, total)  # finishes whatever a stopped worker left
    while (trial := finisher.create_trial("finisher")).status == "RUNNING":
        finisher.update_trial(trial.trial_id, {"loss": score(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        finisher.end_trial(trial)
    trials = {t.trial_id: t for t in finisher.project.trials()}
    assert len(trials) == total and {t.status for t in trials.values()} == {"COMPLETED"}
    assert sorted(t.number for t in trials.values()) == list(range(total))
    assert len({t.values_key for t in trials.values()}) == total
    reported = [(trial_id, value) for _, _, done, _ in reports for trial_id, value in done]
    assert len({trial_id for trial_id, _ in reported}) == len(reported)  # none done twice
    for trial_id, value in reported:  # every completion a worker saw is in the store
        assert (trials[trial_id].status, trials[trial_id].score) == ("COMPLETED", value)
    completions = collections.Counter(c.trial_id for c in finisher.project.transitions()
                                      if c.to_status == "COMPLETED")
    assert set(completions.values()) == {1}
    finisher.close()


@pytest.mark.skipif(server() is None, reason=f"restarts the tests' own server ({ENV} is set)")
@pytest.mark.parametrize("how", ["restart", "crash"])
def test_a_worker_not_back_yet_after_a_server_restart_keeps_its_trial(how):
    """A restart drops every worker's liveness lock at once. A worker that has not taken
    its lock again yet (here frozen until the server is back) is alive: the first worker
    back must not hand its trial back (it did: the late worker then lost its trial, and
    its search stopped on the refusal)."""
    url = fresh_url()
    oracle_on(url, 10).close()
    proc, (trial_id, token, pid, _), go, outcome = hold(url)
    os.kill(pid, signal.SIGSTOP)
    try:
        found = server()
        assert found is not None
        if how == "restart":
            found.restart("fast")
        else:  # a backend killed: the server ends every session, recovers, and goes on
            import psycopg

            victim = psycopg.connect(base_url(), autocommit=True)
            canary = psycopg.connect(base_url(), autocommit=True)
            # (the trial's commit on disk first: a crash loses the last commits of
            # durability="normal", synchronous_commit off, by design)
            victim.execute("CHECKPOINT")
            os.kill(victim.execute("SELECT pg_backend_pid()").fetchone()[0], signal.SIGKILL)
            # the crash seen by the server (it ends every session, the canary's too) before
            # "accepting" is asked: asked sooner, a connection made just before the server
            # noticed passed for its return, and the next one was closed by the reset
            wait_until(lambda: _ended(canary), DEADLINE, "the server ending every session")
            wait_until(_accepting, DEADLINE, "the server back after its crash")
        other = oracle_on(url, 10)
        assert not other.store.is_alive(token)  # its lock is gone with the old server
        fresh = other.create_trial("first-back")
        assert fresh.trial_id != trial_id  # a new trial: the frozen worker's is still its own
        other.update_trial(fresh.trial_id, {"loss": score(fresh.hyperparameters.values)})
        fresh.status = "COMPLETED"
        other.end_trial(fresh)
    finally:
        os.kill(pid, signal.SIGCONT)
    go.set()
    assert outcome.get(timeout=DEADLINE) == "finished"  # its end recorded, not refused
    proc.join(DEADLINE)
    record = other.project.trial(trial_id)
    assert (record.status, record.run, record.interruptions) == ("COMPLETED", 1, 0)
    assert [c.to_status for c in other.project.transitions(trial_id=trial_id)] == [
        "RUNNING", "COMPLETED"]
    other.close()


@pytest.mark.skipif(server() is None, reason=f"restarts the tests' own server ({ENV} is set)")
def test_an_oracle_opened_while_the_server_restarts_waits_for_it(monkeypatch):
    """A worker started while the server restarts was refused at once ("the database
    system is shutting down"), where one already running waits for the server."""
    import psycopg

    url = fresh_url()
    oracle_on(url, 5).close()
    held, restarter, restarted = _smart_restart_begun()
    refusals, real_connect = threading.Event(), psycopg.connect

    def watched(*args, **kwargs):  # the same connect, noting a refusal
        try:
            return real_connect(*args, **kwargs)
        except psycopg.OperationalError:
            refusals.set()
            raise

    monkeypatch.setattr(psycopg, "connect", watched)  # (the module hpstore connects with)
    opened: list[object] = []

    def open_and_run() -> None:
        try:
            oracle = oracle_on(url, 5)
            trial = oracle.create_trial("late")
            oracle.update_trial(trial.trial_id, {"loss": score(trial.hyperparameters.values)})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
            oracle.close()
            opened.append(trial.status)
        except BaseException as exc:  # reported to the test
            opened.append(exc)

    opener = threading.Thread(target=open_and_run)
    opener.start()
    assert refusals.wait(DEADLINE)  # it asked while the server shut down, and was refused
    _let_the_restart_go(held)  # the server goes down, and starts again
    restarter.join(DEADLINE * 2)
    opener.join(DEADLINE * 2)
    assert restarted == [None] and opened == ["COMPLETED"], opened


@pytest.mark.skipif(server() is None, reason=f"restarts the tests' own server ({ENV} is set)")
def test_a_store_closed_while_its_liveness_waits_for_a_restarting_server_lets_it_go():
    """The liveness thread, taking its lock again while the server restarted, waited out
    its reconnection whatever close() said: close() went on without it, and the thread
    then took the lock on a connection nobody would close (the worker looked alive for as
    long as the process lived)."""

    url = fresh_url()
    store = open_store(url)
    token = store.session()
    mine = store._liveness
    assert mine is not None and mine.token == token
    held, restarter, restarted = _smart_restart_begun()
    try:
        # (through the connection held: no other is let in while the server shuts down)
        ended = held.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE "
                             "locktype = 'advisory' AND granted AND classid::bigint = %s AND "
                             "objid::bigint = %s AND objsubid = 2",
                             (mine.cls, mine.key)).fetchone()[0]
        assert ended == 1  # the backend holding this store's liveness lock
        wait_until(lambda: not mine.holding, DEADLINE, "the lock's connection dropping")
        store.close()  # while the thread waits for the server to take connections again
        assert not mine._thread.is_alive()
    finally:
        _let_the_restart_go(held)
        restarter.join(DEADLINE * 2)
    assert restarted == [None]
    other = open_store(url, read_only=True)
    assert not other.is_alive(token)
    other.close()


def _smart_restart_begun():
    """A smart restart of the tests' server, begun in a thread and held up (the server
    shutting down, refusing new connections) until the connection returned is closed:
    (that connection, the thread, a list that gets the restart's error or None)."""
    import psycopg

    found = server()
    assert found is not None
    held = psycopg.connect(base_url(), autocommit=True)  # a smart restart waits for it
    restarted: list[BaseException | None] = []
    restarter = threading.Thread(target=lambda: restarted.append(_call(found.restart, "smart")))
    restarter.start()
    wait_until(_shutting_down, DEADLINE, "the server shutting down")
    return held, restarter, restarted


def _let_the_restart_go(held) -> None:
    """End every other session (a smart shutdown waits for them all: connections other
    tests of this process left open would hold it up), then the one held."""
    held.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
                 "pg_backend_pid() AND backend_type = 'client backend'")
    held.close()


def _ended(conn) -> bool:
    """Whether the server ended the session of ``conn``."""
    import psycopg

    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def _accepting() -> bool:
    """Whether the server takes new connections (again)."""
    import psycopg

    try:
        psycopg.connect(base_url(), autocommit=True).close()
    except psycopg.OperationalError:
        return False
    return True


def _shutting_down() -> bool:
    """Whether the server refuses new connections for now: shutting down."""
    import psycopg

    try:
        psycopg.connect(base_url(), autocommit=True).close()
    except psycopg.OperationalError as exc:
        return "shutting down" in str(exc)
    return False


def _call(function, *args):
    try:
        function(*args)
    except BaseException as exc:  # reported to the test
        return exc
    return None


def test_a_decision_lock_held_too_long_times_out_naming_its_holder():
    """A worker stopped inside a decision (Ctrl-Z, a debugger) holds the others up for the
    timeout, not for ever; the error names the backend holding the lock."""
    import psycopg
    from _stores import first_free, new_project

    from hpstore.errors import LockTimeoutError

    url = fresh_url()
    store = open_store(url, timeout=0.5)
    project = store.create_project(new_project())
    with psycopg.connect(url, autocommit=True, application_name="the stuck one") as stuck:
        stuck.execute("SELECT pg_advisory_lock(%s, %s)",
                      (store.db.keys["decide"], project.project_id))
        holder = stuck.info.backend_pid
        with pytest.raises(LockTimeoutError, match=f"backend {holder} \\(the stuck one"):
            project.decide(first_free(project, range(10)), tuner_id="w",
                           session=store.session())
    assert project.count() == 0  # nothing recorded
    # the lock is free again: the same connection, after its failed pipeline, decides
    trial = project.decide(first_free(project, range(10)), tuner_id="w",
                           session=store.session())
    assert (trial.number, project.count()) == (0, 1)
    store.close()


def test_a_lock_timeout_set_in_the_urls_options_is_named_by_the_timeout():
    """A URL's options win over hpstore's lock_timeout: workers timed out at once, told it
    "took too long" and "Nobody holds it now", or of a stopped worker."""
    import psycopg
    from _stores import first_free, new_project

    from hpstore.errors import LockTimeoutError

    url = fresh_url()
    with_option = f"{url}{'&' if '?' in url else '?'}options=-clock_timeout%3D5"
    store = open_store(with_option)
    project = store.create_project(new_project())
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)",
                      (store.db.keys["decide"], project.project_id))
        with pytest.raises(LockTimeoutError) as raised:
            project.decide(first_free(project, range(10)), tuner_id="w",
                           session=store.session())
    said = str(raised.value)
    assert "set lock_timeout to 5" in said and "remove it from the URL" in said, said
    assert "Nobody holds it" not in said and "stopped worker" not in said
    store.close()


def test_a_table_lock_held_too_long_times_out_naming_its_holder():
    """An administrator's LOCK TABLE (or VACUUM FULL, ALTER TABLE) left open holds every
    worker up: the timeout said "Nobody holds it now: run again", as only hpstore's own
    advisory locks were looked for."""
    import psycopg
    from _stores import first_free, new_project

    from hpstore.errors import LockTimeoutError

    url = fresh_url()
    store = open_store(url, timeout=0.5)
    project = store.create_project(new_project())
    session = store.session()
    with psycopg.connect(url, application_name="the maintenance") as admin:
        admin.execute("LOCK TABLE trials IN ACCESS EXCLUSIVE MODE")
        holder = admin.info.backend_pid
        with pytest.raises(LockTimeoutError) as raised:
            project.decide(first_free(project, range(10)), tuner_id="w", session=session)
        said = str(raised.value)
        assert f"backend {holder} (the maintenance" in said, said
        assert "AccessExclusiveLock on trials" in said, said
        admin.rollback()
    # the lock is gone: the same store decides, and nothing of the refused step was kept
    trial = project.decide(first_free(project, range(10)), tuner_id="w", session=session)
    assert (trial.number, project.count()) == (0, 1)
    store.close()


def test_rows_held_by_a_session_left_in_its_transaction_time_out_naming_it():
    """An UPDATE typed in psql and left open (idle in transaction) holds up the worker that
    needs those rows: the timeout said "Nobody holds it now: run again" while it held on."""
    import psycopg
    from _stores import first_free, new_project

    from hpstore.errors import LockTimeoutError

    url = fresh_url()
    store = open_store(url, timeout=0.5)
    project = store.create_project(new_project())
    session = store.session()
    project.decide(first_free(project, range(10)), tuner_id="w", session=session)
    with psycopg.connect(url, application_name="a psql of mine") as person:
        person.execute("UPDATE trials SET note = 'look at this'")
        holder = person.info.backend_pid
        with pytest.raises(LockTimeoutError) as raised:
            project.set_note(project.trials()[0].trial_id, "mine")
        said = str(raised.value)
        assert f"backend {holder} (a psql of mine, idle in transaction" in said, said
        assert "RowExclusiveLock on trials" in said and "Nobody holds it" not in said
        person.rollback()
    project.set_note(project.trials()[0].trial_id, "mine")  # ended: the write goes through
    assert project.trials()[0].note == "mine"
    store.close()


def test_a_table_lock_met_by_a_new_workers_liveness_lock_is_named_too():
    """A worker starting while an administrator's LOCK TABLE is open: its liveness lock's
    look-up of the trials timed out saying only "took too long", the one lock timeout that
    did not name the holder."""
    import psycopg

    from hpstore.errors import LockTimeoutError

    url = fresh_url()
    store = open_store(url, timeout=0.5)
    with psycopg.connect(url, application_name="the maintenance") as admin:
        admin.execute("LOCK TABLE trials IN ACCESS EXCLUSIVE MODE")
        holder = admin.info.backend_pid
        with pytest.raises(LockTimeoutError) as raised:
            store.session()
        said = str(raised.value)
        assert f"backend {holder} (the maintenance" in said, said
        assert "AccessExclusiveLock on trials" in said, said
        admin.rollback()
    assert store.session()  # the lock gone, the worker's liveness lock is taken
    store.close()


def test_a_statement_cancelled_by_an_administrator_is_said_so_and_the_trial_goes_on():
    """pg_cancel_backend on a worker's statement (an administrator ending what waits on
    a lock): the worker read 'PostgreSQL failed on URL: canceling statement due to user
    request', blaming the server, with nothing of what to do."""
    import psycopg

    from hpstore.errors import DatabaseError

    url = fresh_url()
    oracle = oracle_on(url, max_trials=2)
    trial = oracle.create_trial("w")
    backend = oracle.store.db.query("SELECT pg_backend_pid()")[0][0]
    failed: list[BaseException] = []

    def report() -> None:
        try:
            oracle.update_trial(trial.trial_id, {"loss": 1.0})
        except BaseException as exc:
            failed.append(exc)

    def waiting() -> bool:
        with psycopg.connect(base_url(), autocommit=True) as conn:
            return conn.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE "
                                "pid = %s", (backend,)).fetchone()[0] is True

    with psycopg.connect(url) as blocker:  # (a transaction open until the block ends)
        blocker.execute("LOCK TABLE observations IN ACCESS EXCLUSIVE MODE")
        thread = threading.Thread(target=report, daemon=True)
        thread.start()
        wait_until(waiting, DEADLINE, "the report waiting for the table's lock")
        with psycopg.connect(base_url(), autocommit=True) as admin:
            assert admin.execute("SELECT pg_cancel_backend(%s)", (backend,)).fetchone()[0]
        thread.join(DEADLINE)
        blocker.rollback()
    assert len(failed) == 1 and isinstance(failed[0], DatabaseError), failed
    said = str(failed[0])
    assert "cancelled a statement" in said and "pg_cancel_backend" in said, said
    assert "run again to resume" in said, said
    # nothing of the report was recorded, and the trial goes on where it was
    assert not oracle.trials[trial.trial_id].metrics.exists("loss")
    oracle.update_trial(trial.trial_id, {"loss": 2.0})
    oracle.end_trial(oracle.trials[trial.trial_id])
    assert oracle.trials[trial.trial_id].status == "COMPLETED"
    assert oracle.trials[trial.trial_id].score == 2.0
    oracle.close()


def test_an_opening_statement_needs_a_write_transaction():
    # it is sent with a write transaction's BEGIN: asked of any other, it is refused
    # rather than silently left out
    url = fresh_url()
    for read_only, begin in ((False, "snapshot"), (True, "write")):
        store = open_store(url, read_only=read_only)
        with pytest.raises(ValueError, match="opening statement"):
            store.db.transaction(lambda conn: None, begin=begin, opening=("SELECT 1", ()))
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_children_forked_while_a_thread_runs_trials_use_connections_of_their_own():
    # a child forked while a parent thread was inside a transaction went on in it, on the
    # parent's connection: a trial handed out that no table held, a duplicate-key error in
    # the parent, or a child waiting for ever on the parent's connection lock
    from _store import fork_children_while_a_thread_runs_trials, reported_by

    url = fresh_url()
    status, reports, loop_errors = reported_by(fork_children_while_a_thread_runs_trials,
                                               url, 6)
    assert status == "ok", reports
    assert loop_errors == []
    assert [r[2] for r in reports] == [None] * 6
    ids = [t for r in reports for t in r[1]]
    assert len(ids) == len(set(ids)) == 18
    store = open_store(url, read_only=True)
    project = store.open_project(store.projects()[0])
    ended = {t.trial_id for t in project.trials() if t.status == "COMPLETED"}
    assert set(ids) <= ended  # each child's trial is in the tables, ended
    store.close()



@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_child_forked_inside_another_threads_transaction_opens_its_own_connection():
    # (deterministic: the fork goes past a transaction held open) the child ran in the
    # parent's transaction, and the parent's thread then failed on a duplicate key
    from _pgworkers import fork_inside_a_transaction
    from _store import reported_by

    url = fresh_url()
    status, child, thread = reported_by(fork_inside_a_transaction, url)
    assert status == "ok", child
    assert isinstance(child, tuple) and isinstance(thread, tuple), (child, thread)
    assert child[1] == thread[1] == "COMPLETED" and child[0] != thread[0]
    store = open_store(url, read_only=True)
    project = store.open_project(store.projects()[0])
    trials = {t.trial_id: t.status for t in project.trials()}
    assert len(trials) == 3 and trials[child[0]] == trials[thread[0]] == "COMPLETED"
    store.close()
