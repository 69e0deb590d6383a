"""The runs of a project's status log (:meth:`ProjectStore.runs`): the statements both
engines send, in their own placeholders and joins, and the records made of their rows.

A run starts at a change to RUNNING and ends at the trial's next change of status (a row
that retires or restores a trial, from a status to the same one, changes none): a change
to RUNNING again ends it IDLE (that run was lost); one that ended STOPPED and whose trial
then changes to another status than RUNNING (its worker failed after the stop) ends at
that change, in its status. A run with no end yet is still open.

Only the starts are read in full (two short columns a run), in each worker's order; the
runs kept are then paired with their ends by the log's index on the trial. Read into
Python and paired there, the whole log of a 100,000-trial search took 1.1 s (1.5 s in the
report); paired by a window over it in SQL, 1.2 s; this way 0.22 s for the 2,000 runs the
report draws (on PostgreSQL 0.37 s, against 1.3 s read into Python).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hpstore.store.decode import damaged
from hpstore.store.records import RunRecord
from hpstore.trial import TrialStatus

#: a row of the log that changes a status (a change to RUNNING always does: a new run)
_CHANGE = ("(c.to_status = 'RUNNING' OR c.from_status IS NULL OR "
           "c.from_status <> c.to_status)")

# Filled with ``%`` by each engine: "p", its placeholder; "starts", the project's log as
# rows s joined to their trials t; "kept", what picks the log's rows s of the starts kept;
# "materialized", what makes the engine read each step of RUNS apart (PostgreSQL folded
# the steps together and joined the ends found by hashing the whole log: 0.18 s against
# 0.05 s for 2,000 runs of 100,000; SQLite finds them by index either way).

#: (worker, id) of each start of a run, each worker's in order of start (then of the log)
STARTS = ("SELECT coalesce(s.tuner_id, '(unknown)') AS worker, s.id FROM %(starts)s "
          "WHERE t.project_id = %(p)s AND s.to_status = 'RUNNING' ORDER BY worker, s.at, s.id")

#: the runs that start at the given ids: (trial id, worker, start, end, status, position in
#: order of end, whether still open, start's position). The end is found by the log's index
#: on the trial (a few rows a trial); a run still open is placed by the first of the last
#: starts in a row of its trial, where the log read in order meets it.
RUNS = (
    "WITH kept AS %(materialized)s (SELECT s.id, s.trial, s.at, "
    "coalesce(s.tuner_id, '(unknown)') AS worker, "
    "(SELECT min(c.id) FROM transitions c WHERE c.trial = s.trial AND c.id > s.id AND "
    + _CHANGE + ") AS next_id FROM transitions s WHERE %(kept)s), "
    "ends AS %(materialized)s (SELECT k.id, k.trial, k.at, k.worker, k.next_id, "
    "b.to_status AS ended, "
    "b.at AS ended_at, CASE WHEN b.to_status = 'STOPPED' THEN (SELECT min(c.id) FROM "
    "transitions c WHERE c.trial = k.trial AND c.id > b.id AND " + _CHANGE + ") END AS after_id "
    "FROM kept k LEFT JOIN transitions b ON b.id = k.next_id) "
    "SELECT t.trial_id, e.worker, e.at, CASE WHEN d.from_status = 'STOPPED' AND "
    "d.to_status <> 'RUNNING' THEN d.at ELSE e.ended_at END, CASE WHEN e.ended IS NULL THEN "
    "'RUNNING' WHEN e.ended = 'RUNNING' THEN 'IDLE' WHEN d.from_status = 'STOPPED' AND "
    "d.to_status <> 'RUNNING' THEN d.to_status ELSE e.ended END, coalesce(e.next_id, "
    "(SELECT min(c.id) FROM transitions c WHERE c.trial = e.trial AND c.to_status = 'RUNNING' "
    "AND c.id > coalesce((SELECT max(l.id) FROM transitions l WHERE l.trial = e.trial AND "
    "l.to_status <> 'RUNNING' AND (l.from_status IS NULL OR l.from_status <> l.to_status)), "
    "0))), CASE WHEN e.next_id IS NULL THEN 1 ELSE 0 END, e.id "
    "FROM ends e JOIN trials t ON t.id = e.trial LEFT JOIN transitions d ON d.id = e.after_id")


def kept_starts(starts: Sequence[Sequence[Any]], limit: int) -> list[int]:
    """The ids of the starts whose runs are read, of STARTS' rows: every one up to
    ``limit``; past it, of each worker's n starts, the start i * n // share for i below
    share = max(1, n * limit // total): an even sample in proportion to what the worker
    ran, one at least."""
    total = len(starts)
    if total <= limit:
        return [int(s[1]) for s in starts]
    kept: list[int] = []
    first = 0
    while first < total:
        last = first
        while last < total and starts[last][0] == starts[first][0]:
            last += 1
        n = last - first
        share = max(1, n * limit // total)
        kept += [int(starts[first + i * n // share][1]) for i in range(share)]
        first = last
    return kept


def run_records(rows: Sequence[Sequence[Any]], total: int, limit: int) -> list[RunRecord]:
    """The runs of RUNS' rows: every run in the order they ended (the open ones last),
    or, of a sample (``total`` runs past ``limit``), in order of start, thinned to
    ``limit`` when more workers than ``limit`` keep one each.

    Raises:
        NotAnHpstoreFileError: a status hpstore never writes, or a time that is not a
            number (changed by hand since a tool last checked).
    """
    for row in rows:
        if row[4] not in TrialStatus.ALL:
            raise damaged("transitions.to_status", row[4])
        for at in (row[2], row[3]):
            if at is not None and type(at) is not float and type(at) is not int:
                raise damaged("transitions.at", at)
    if total <= limit:
        ordered = sorted(rows, key=lambda r: (int(r[6]), int(r[5])))
    else:
        ordered = sorted(rows, key=lambda r: (r[2], int(r[7])))
    runs = [RunRecord(r[0], r[1], r[2], r[3], r[4]) for r in ordered]
    if len(runs) > limit:  # more workers than the limit: one run each, evenly thinned
        runs = [runs[i * len(runs) // limit] for i in range(limit)]
    return runs
