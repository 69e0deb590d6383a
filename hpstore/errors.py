"""The library's errors: one root, a subclass per kind of trouble.

Where KerasTuner raises ``ValueError`` or ``TypeError`` for the same mistake, the
hpstore error also derives from that built-in, so code written for KerasTuner keeps
catching what it caught before.
"""

from __future__ import annotations


class HpStoreError(Exception):
    """Root of every error hpstore raises on purpose."""


class NotJSONSerializableError(HpStoreError, ValueError):
    """A value that has to be stored cannot be represented in JSON."""


class InvalidMetricError(HpStoreError, TypeError, ValueError):
    """A metric name is not a string (or is the name of the combined value of several
    objectives), or a metric value is not a real number.

    A ``TypeError`` and a ``ValueError``: KerasTuner raises the one or the other for these
    (``float()`` of a list, of ``"n/a"``), and code written for it catches either."""


class MissingObjectiveError(HpStoreError, ValueError):
    """Metrics reported for a trial without the objective's value (a misspelt name, say).

    A ``ValueError``, as KerasTuner raises for it; a Tuner's search stops on it, as every
    trial would repeat the mistake."""


class DatabaseError(HpStoreError):
    """The search file cannot be used: not SQLite, damaged, foreign, too new or unwritable."""


class NotAnHpstoreFileError(DatabaseError):
    """The file is not an hpstore search file (not SQLite, or another application's SQLite file)."""


class ForeignSchemaError(NotAnHpstoreFileError):
    """The file holds a table, index, view or trigger that hpstore did not write, or lacks
    one it did: a file changed by another program, or crafted."""


class SchemaVersionError(DatabaseError):
    """The file was written by a newer hpstore than this one."""


class ReadOnlyDatabaseError(DatabaseError):
    """The file, or the folder it lives in, cannot be written."""


class FileIdentityError(DatabaseError):
    """A path does not name the one file hpstore must use: the search file has several
    names (hard links), was moved or replaced while open, or its lock folder is (or holds)
    a symbolic link, or is another user's that every user may write in."""


class LockTimeoutError(DatabaseError):
    """Another process held one of hpstore's locks for longer than the timeout; the message
    names it and says what to do."""


class ProjectMismatchError(HpStoreError, ValueError, RuntimeError):
    """The arguments given disagree with what the file already holds for this project (a
    ValueError; a RuntimeError too, as KerasTuner raises on reloading a project it cannot,
    made by another tuner, say)."""


class TrialNotFoundError(HpStoreError, KeyError):
    """No trial with that id in this project."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class TrialLostError(TrialNotFoundError):
    """A trial this process was running is no longer in the store: its last commits were
    lost (a server crash with ``durability="normal"``), or the search was restored from an
    earlier copy. Nothing of that run is recorded; the search goes on with a new trial."""


class TunerIdInUseError(HpStoreError):
    """Two live processes asked for trials under the same tuner id."""


class ProjectRemovedError(HpStoreError):
    """The project this oracle opened was removed or replaced by another process
    (``overwrite=True`` elsewhere); this process must stop writing to it."""


class TrialNotRunningError(HpStoreError):
    """A trial was updated or ended that is not running (it ended already, or was handed
    to another worker)."""


class NameTooLongError(HpStoreError, ValueError):
    """A name is longer than the store's indexes hold: on PostgreSQL, a project name, metric
    name or trial id of more than 2,000 bytes of UTF-8; or a name PostgreSQL's text cannot
    hold at all, one with a NUL character (a hyperparameter's too). Nothing was written."""


class ValuesOutsideSpaceError(HpStoreError, ValueError):
    """A configuration given by hand (enqueued, added, warm-started) names a hyperparameter
    the search does not have, or a value outside its range; nothing was recorded."""


class SearchFullError(HpStoreError):
    """A trial was enqueued into a search that already holds ``max_trials`` trials."""


class TrialNotEndedError(HpStoreError):
    """A trial was retired or restored that has not ended yet (it is waiting or running)."""


class NotAnOracleError(HpStoreError, TypeError, ValueError):
    """What was given as a tuner's ``oracle=`` is no oracle hpstore runs (a TypeError; the
    ValueError KerasTuner raises too)."""


class OracleContractError(HpStoreError):
    """An oracle subclass broke the Oracle contract (e.g. ``populate_space`` returned
    something that is not a decision)."""


class DuplicateValuesError(HpStoreError):
    """An oracle proposed a set of values that this search has already run."""


class FailedTrialError(HpStoreError):
    """Raise it in ``run_trial`` to mark the trial FAILED at once (no retries)."""


class FatalError(HpStoreError):
    """Raise it in ``run_trial`` to stop the whole search; the trial is marked FAILED."""


class FatalValueError(FatalError, ValueError):
    """A fatal error about a value (e.g. ``run_trial`` returned something unusable)."""


class MissingMetricError(FatalValueError, MissingObjectiveError, KeyError):
    """The objective names a metric that a trial's training never logged: a ``val_``
    metric without validation data, a metric the model was not compiled with, or a
    misspelt name. Every trial would miss it the same way, so the search stops at the
    first (its trial FAILED). A ``MissingObjectiveError`` (the objective's value is missing,
    here from what the training logged); a ``KeyError``, as KerasTuner raises for a History
    without the objective, and a ``ValueError``, as it raises for a dict without it."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NothingToRunError(FatalError, NotImplementedError):
    """A Tuner with no ``run_trial`` of its own, no ``run_trial=`` and no hypermodel with
    ``fit``: every trial would fail the same way, so the search stops at the first."""


class FatalTypeError(FatalError, TypeError):
    """A fatal error about a type (e.g. ``run_trial`` returned an unsupported type)."""


class OutputFileError(HpStoreError):
    """A tool cannot write its output file there: it would replace the search file, one of
    its companions, a SQLite file or (without ``--force``) an existing file."""


class QueryTimeoutError(HpStoreError):
    """A query run by ``hpstore sql`` ran longer than its time limit and was stopped."""


class ProjectChoiceError(HpStoreError):
    """The store holds several projects (or none of that name) and one must be chosen."""


class KerasTunerImportError(HpStoreError):
    """A KerasTuner project directory cannot be brought into a search file as it is."""


class EngineUnavailableError(DatabaseError):
    """The database named needs an engine whose optional package is not installed."""


class ServerUnavailableError(DatabaseError):
    """The database server cannot be reached now, is starting up or shutting down, or has no
    connection free: the same step may succeed later."""


class NoSearchYetError(DatabaseError):
    """Opened to read, the store holds no search yet (a database schema without hpstore's
    tables): a worker given it creates them."""
