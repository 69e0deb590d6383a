"""The words and the one try of a trial handed back to run again: after Ctrl-C, after
its end raised, or when the search's store failed under it.

``hpstore.Tuner``, ``hpstore.keras``'s tuners and ``search(workers=N)`` say the same
things the same way; the hand-backs themselves are theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpstore.errors import DatabaseError, HpStoreError
from hpstore.trial import Trial, TrialStatus

RESUME_HINT = "Run the same command again to resume."


#: the message of a trial handed back because end_trial raised (a score_trial of the user's)
END_RAISED = "end_trial raised; queued to run again."
#: the message of a trial found left RUNNING in this process by a run that did not end it
#: (an earlier search() stopped, or its end lost with a server's last commits)
LEFT_RUNNING = ("Left running in this process by a run that did not end it (an earlier "
                "search() stopped, or its end lost with the server's last commits); queued "
                "to run again.")


def end_failed(exc: BaseException) -> str:
    """The message of a trial handed back because the store failed as its end was written."""
    return (f"The search's store failed as this run ended ({type(exc).__name__}); queued "
            "to run again.")


def interrupted_what(handed_back: list[tuple[str, str]], unsaid: int = 0) -> str:
    """What became of the trials a Ctrl-C handed back (``(trial_id, status)`` each, as its
    end was written, in one process, or gathered from every worker and read again once
    they all stopped), in the words after "Search interrupted; ". A trial a stopping rule
    had stopped ended STOPPED, not queued again; one another worker took and ended since
    says so. ``unsaid``: worker processes that stopped without saying what they held (ended
    by force after the grace period): a trial one held runs again once found."""
    last: dict[str, str] = {}  # (a trial handed back twice is told once, as it ended)
    for trial_id, status in handed_back:
        last.pop(trial_id, None)
        last[trial_id] = status
    stopped = [t for t, status in last.items() if status == TrialStatus.STOPPED]
    ended = [t for t, status in last.items() if status in _ENDED_SINCE]
    back = [t for t, status in last.items()
            if status != TrialStatus.STOPPED and status not in _ENDED_SINCE]
    parts = []
    if back:
        parts.append(f"{_trials(back)} handed back to run again")
    if ended:
        parts.append(f"{_trials(ended)} handed back, and run to its end since by another "
                     "worker")
    if stopped:
        stay = "stays" if len(stopped) == 1 else "stay"
        parts.append(f"{_trials(stopped)} stopped early and {stay} STOPPED")
    if unsaid:
        workers = "a worker" if unsaid == 1 else f"{unsaid} workers"
        parts.append(f"{workers} had to be ended before handing back a trial, which runs "
                     "again when the search resumes")
    return "; ".join(parts) or "no trial was running"


#: the statuses a trial handed back may have reached by the time the message is written
#: (another worker of search(workers=N) took it from the queue and ended it)
_ENDED_SINCE = (TrialStatus.COMPLETED, TrialStatus.FAILED)


def _trials(ids: list[str]) -> str:
    if len(ids) == 1:
        return f"trial {ids[0]} was"
    return f"trials {', '.join(ids[:-1])} and {ids[-1]} were"


def left_running(trial: Trial) -> bool:
    """Whether ``trial``, as create_trial handed it to a tuner, is that tuner's own, left
    RUNNING in this process by an earlier search() with values reported (its end and
    hand-back refused by a full disk, say): run again in that same run, its reports from
    its start would add to those values and count twice in its score."""
    return trial.status == TrialStatus.RUNNING and bool(trial.metrics.metrics)


def give_back(end_trial: Callable[[Any], Any], trial: Any, failure: DatabaseError) -> None:
    """After the store failed during a run or at its end: hand ``trial`` (its status set
    to IDLE) back to run again through ``end_trial``, in one try: the store that just
    failed may fail again (a stopped writer: one more timeout, not two; a disk still
    full). When it does, the trial stays RUNNING under this process, and ``failure``'s
    message says what becomes of it (its type stays the store's: a trial the search had
    stopped stays STOPPED, ended at the stop); nothing is raised."""
    try:
        end_trial(trial)
    except DatabaseError as again:
        stopped = getattr(again, "stopped_by", None) or getattr(failure, "stopped_by", None)
        if stopped is not None:
            # the stop ended its run in the store already: only its worker's end is lost
            failure.args = (
                f"{failure} Trial {trial.trial_id} was stopped early by the search before "
                f"this ({stopped}): it stays STOPPED, scored on what it reached and ended "
                "at the stop, and is not run again; only its worker's own end of the run "
                "could not be written.", *failure.args[1:])
            return
        failure.args = (
            f"{failure} Trial {trial.trial_id} could not be handed back either: it "
            "stays RUNNING under this process until the search resumes, and then runs "
            "again from its start, in a run of its own (the values it reported so far "
            "stay in the store with this run, and do not count towards its score): call "
            "search() again in this process once the store takes writes again, or let "
            "this process end and another worker takes it over.", *failure.args[1:])
    except HpStoreError:
        pass  # (no longer this process's: handed on, or ended by another)
