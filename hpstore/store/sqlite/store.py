"""A SQLite search file (or an in-memory search) as a store: the contract's Store."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from hpstore.errors import DatabaseError, NotAnHpstoreFileError, ReadOnlyDatabaseError
from hpstore.store.records import NewProject, ProjectRecord
from hpstore.store.rows import check_state_document, malformed
from hpstore.store.sqlite import files
from hpstore.store.sqlite.checks import UNREADABLE, check_writable, unreadable
from hpstore.store.sqlite.database import WAL_SIZE_LIMIT, Database
from hpstore.store.sqlite.locks import Session
from hpstore.store.sqlite.project import (
    SQLiteProject,
    all_projects,
    find_project,
    insert_project,
)
from hpstore.store.sqlite.readonly import ReadOnlyDatabase, check_contents, run_user_sql
from hpstore.store.sqlite.schema import SCHEMA_VERSION


class SQLiteStore:
    """One search file; see :class:`hpstore.store.contract.Store`.

    Args:
        path: the file (created if missing), or None / ":memory:".
        durability: "normal" or "full" (SQLite's synchronous setting).
        timeout: seconds a writer waits for another before giving up.

    Raises:
        DatabaseError and its subclasses: the file cannot be used.
        ValueError: an unknown durability.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, durability: str = "normal",
                 timeout: float = 60.0, read_only: bool = False, check: bool = True) -> None:
        self.read_only = read_only
        self.db: Database | ReadOnlyDatabase
        if read_only:
            if path is None or str(path) == ":memory:":
                raise DatabaseError("An in-memory search lives in one process; there is no "
                                    "file to read. Give the path of a search file.")
            self.db = ReadOnlyDatabase(path, check=check)
        else:
            self.db = Database(path, durability=durability, timeout=timeout)
        self.memory = self.db.memory
        self.path = self.db.path
        self.location = ":memory:" if self.path is None else str(self.path)
        self.holder = "memory store" if self.path is None else "file"

    def identity(self) -> tuple[Any, ...]:
        """The file's (device, inode), or this object for a search kept in memory."""
        if self.path is None:
            return ("memory", id(self))
        return ("sqlite", *(files.identity(self.path) or (str(self.path),)))

    def unwritable(self) -> str | None:
        if self.path is None:
            return None
        try:
            check_writable(self.path)  # (what a worker opening the file is told)
        except ReadOnlyDatabaseError as exc:
            return str(exc)
        return None

    def projects(self) -> list[ProjectRecord]:
        return all_projects(self.db)

    def find_project(self, name: str) -> ProjectRecord | None:
        return find_project(self.db, name)

    def check_new(self, new: NewProject, state: Mapping[str, Any] | None = None) -> None:
        """Nothing to refuse: a file holds names of any length."""

    def check_space(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Nothing to refuse: a file holds any name."""

    def create_project(self, new: NewProject, *, replace: bool = False) -> SQLiteProject:
        with self.db.write() as conn:
            project_id = insert_project(conn, new, replace=replace)
        return SQLiteProject(self.db, project_id, new.name)

    def import_project(self, new: NewProject, state: Mapping[str, Any], *,
                       replace: bool = False) -> SQLiteProject:
        """A new project holding ``state`` (a ``get_state()`` document), in one step.

        Raises:
            HpStoreError: the state is malformed; nothing was written.
        """
        check_state_document(state)
        try:
            with self.db.write() as conn:
                project_id = insert_project(conn, new, replace=replace)
                project = SQLiteProject(self.db, project_id, new.name)
                project.load_into(conn, state)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise malformed(exc) from None
        return project

    def open_project(self, record: ProjectRecord) -> SQLiteProject:
        return SQLiteProject(self.db, record.project_id, record.name)

    @property
    def snapshot(self) -> bool:
        """Whether this reads a copy of the file made when it was opened (read-only, a
        file of an older schema upgraded in memory): later writes are not seen."""
        return bool(getattr(self.db, "snapshot", False))

    def session(self) -> str | None:
        session = self.db.session()
        return None if session is None else session.token

    def is_alive(self, token: str, pid: int | None = None) -> bool:
        return self.db.is_alive(token, pid)

    def now(self) -> float:
        return time.time()  # (one machine, one clock)

    def contended(self) -> bool:
        """Whether this process's writes lately had to wait for another writer's."""
        return isinstance(self.db, Database) and self.db.contended()

    def alive(self, tokens: Mapping[str, int | None]) -> set[str]:
        return {token for token, pid in tokens.items() if self.db.is_alive(token, pid)}

    def owns(self, token: str | None) -> bool:
        return self.db.owns(token)

    def live_workers(self) -> int:
        """How many worker processes hold a liveness lock on this search right now."""
        if self.path is None:
            return 0
        folder = files.lock_folder(self.path)
        return sum(Session.probe(folder, name[len("worker-"):-len(".alive")], tidy=False)
                   for name in (p.name for p in folder.glob("worker-*.alive")))

    @contextmanager
    def mutex(self, holder: str | None = None) -> Iterator[None]:
        with self.db.lock(holder):
            yield

    def close(self) -> None:
        self.db.close()

    # -- what only a SQLite file has ------------------------------------------------------
    def sql(self, query: str, *, timeout: float | None = None) -> tuple[list[str], list[Any]]:
        """One read-only statement a person wrote: (columns, rows). See ``hpstore sql``."""
        with self.sql_rows(query, timeout=timeout) as (columns, rows):
            return columns, list(rows)

    def sql_rows(self, query: str, *, timeout: float | None = None
                 ) -> AbstractContextManager[tuple[list[str], Iterator[Any]]]:
        """One read-only statement a person wrote: its columns and its rows, read as they
        are iterated, within the block. See ``hpstore sql``."""
        return run_user_sql(self.db.connect(), query, timeout)

    def checkpoint(self) -> None:
        """Fold the log into the file now, without waiting for anyone (what SQLite does by
        itself every thousand pages; the stress tool kills workers in the middle of it)."""
        self.db.query("PRAGMA wal_checkpoint(PASSIVE)")

    def health(self) -> list[tuple[str, bool, str]]:
        """What ``hpstore check`` reports of the file: (what, fine, what it says)."""
        findings: list[tuple[str, bool, str]] = []
        if self.path is not None:
            links = self.path.stat().st_nlink
            if links > 1:
                findings.append((
                    "names", False,
                    f"{links} (hard links to one file): the library refuses it, since workers "
                    "on two names would corrupt it. Keep one name, or copy the search with "
                    "`hpstore backup`."))
            log = _log_size(str(self.path) + "-wal")
            if log > 2 * WAL_SIZE_LIMIT:
                # Not damage: a reader holding one snapshot (a transaction left open in a
                # notebook or a DB browser, a query paused half-read) stops every checkpoint
                # at it, so each commit grows the log, for as long as that reader lasts.
                findings.append((
                    "log", True,
                    f"{log / 2**20:.0f} MiB in {self.path.name}-wal (it is folded into the "
                    f"file at about {WAL_SIZE_LIMIT / 2**20:.0f} MiB): a reader has held one "
                    "snapshot of the search for a long time, so the workers cannot fold "
                    "what they write into the file, and every write slows as the log "
                    "grows. End that reader (a transaction left open in sqlite3, pandas or "
                    "a DB browser; a query paused half-read, or stopped with Ctrl-Z); the "
                    "log is cut back at the next checkpoints."))
        # A damaged page stops any of these queries where it lies: that is a finding too,
        # beside the others, not the end of the command.
        try:
            integrity = [r[0] for r in self.db.query("PRAGMA integrity_check")]
        except DatabaseError as exc:
            integrity = [f"the check itself stopped: {exc}"]
        if integrity == ["ok"]:
            findings.append(("integrity", True, "ok"))
        else:
            findings.append(("integrity", False, "DAMAGED\n  " + "\n  ".join(integrity[:20])
                             + "\n  Restore the file from a backup, or copy out what is "
                             "readable with `sqlite3 DB .recover`."))
        try:
            if self.db.query("PRAGMA foreign_key_check"):
                findings.append(("foreign keys", False, "rows point at rows that are gone"))
        except DatabaseError as exc:
            findings.append(("foreign keys", False, f"cannot be checked: {exc}"))
        try:  # every row, not only those added since a tool last looked (see checkmarks)
            check_contents(self.db.connect())
            findings.append(("contents", True, "every value as hpstore writes it"))
        except NotAnHpstoreFileError as exc:
            findings.append(("contents", False, str(exc)))
        except UNREADABLE as exc:
            findings.append(("contents", False, f"cannot be read: {unreadable(exc)} (the "
                                                "file is damaged: see integrity)"))
        # the file's own version: an old file is read through an upgraded copy
        version = (self.db.file_version if isinstance(self.db, ReadOnlyDatabase)
                   else int(self.db.query("PRAGMA user_version")[0][0]))
        findings.append(("schema version", True, f"{version} (this hpstore: {SCHEMA_VERSION})"
                         + ("" if version == SCHEMA_VERSION else self._upgrade_advice())))
        return findings

    def _upgrade_advice(self) -> str:
        """What upgrades an older file: the library opening it, where it may write there."""
        if self.path is None:
            return "; opening it with the library upgrades it"
        try:
            check_writable(self.path)
        except ReadOnlyDatabaseError:
            return ("; the library cannot upgrade it where it is (it may not write there): "
                    "`hpstore backup` copies it, upgraded, to a writable place")
        except DatabaseError:  # (what stops a writer otherwise, the library says)
            pass
        return "; opening it with the library upgrades it"


def _log_size(path: str) -> int:
    """The size of the log file in bytes (0 when there is none)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
