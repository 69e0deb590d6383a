"""Warm starts: another project's results taken in (its source named, read, and its
trials that fit this space chosen), and the one warning about those left out."""

from __future__ import annotations

import os
import shlex
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpstore.errors import NotAnHpstoreFileError, ProjectChoiceError
from hpstore.store import shown
from hpstore.store.contract import Store
from hpstore.store.records import BOOKKEEPING, ProjectRecord


@dataclass
class WarmStart:
    """What a warm start took in: the trial ids added here, the source's trials it
    skipped, each with why (outside this space, no objective value, the same values as a
    later run that was taken instead), and how many it would have added but this search
    held already (an earlier open took them in)."""

    source: str
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    already: int = 0


def warn_left_out(result: WarmStart, repeated: int) -> None:
    """The one warning about the source's trials a warm start left out."""
    count = len(result.skipped)
    misfit = count - repeated
    if not repeated:
        what = "did not fit this search and " + ("were" if count != 1 else "was") + " left out"
    elif not misfit:
        what = (f"{'were' if count != 1 else 'was'} left out for holding the values of a "
                "later run, taken in instead")
    else:
        what = (f"were left out: {misfit} did not fit this search, {repeated} held the "
                "values of a later run, taken in instead")
    listed = "; ".join(f"trial {t}: {why}" for t, why in result.skipped[:3])
    more = count - 3
    later = (" A trial left out for a hyperparameter this search has not declared yet is "
             "taken in once a trial declares it."
             if any("not a hyperparameter of this search" in why for _, why in result.skipped)
             else "")
    warnings.warn(
        f"warm_start_from {result.source}: {count} completed trial{'s' if count != 1 else ''} "
        f"{what} ({listed}{f'; and {more} more' if more > 0 else ''}). The oracle's "
        f"`warm_start` lists them all.{later}", UserWarning, stacklevel=callers_level())


def callers_level() -> int:
    """The ``stacklevel`` that points a warning given here at the line of the program
    that made the oracle (or ended the trial), past hpstore's own frames and KerasTuner's
    (which make and call an oracle for a Keras tuner): how deep that is depends on the
    oracle class and on where the warm start runs."""
    ours = os.path.dirname(os.path.dirname(__file__)) + os.sep  # the hpstore package
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and (
            frame.f_code.co_filename.startswith(ours)
            or f"{os.sep}keras_tuner{os.sep}" in frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    return level


def own_values(values: Mapping[str, Any]) -> dict[str, Any]:
    # Hyperband's bookkeeping values belong to the search that ran them, not to the
    # configuration.
    return {k: v for k, v in values.items() if k not in BOOKKEEPING}


def origin_label(where: Any) -> str:
    """``where`` as a warm-started trial's origin names it: a file by its name, a
    database by its URL without the password."""
    from hpstore.store.postgresql import is_url, redact

    return redact(where) if is_url(where) else Path(str(where)).name


def same_store(a: Store, b: Store) -> bool:
    return a is b or a.identity() == b.identity()


def warm_source(source: Any) -> tuple[Any, str | None]:
    """``warm_start_from`` as (file or URL, project name or None).

    Raises:
        TypeError: neither a file (or URL) nor a (file, project_name) pair.
        NotAnHpstoreFileError: a KerasTuner project folder (to import first).
    """
    if isinstance(source, tuple) and len(source) == 2:
        where, name = source
    elif isinstance(source, (str, os.PathLike)):
        where, name = source, None
    else:
        raise TypeError("`warm_start_from` takes a search file (or store URL), or a "
                        f"(file, project_name) pair; received {source!r}.")
    if not isinstance(where, (str, os.PathLike)):
        raise TypeError("`warm_start_from` takes a search file (or store URL), or a "
                        f"(file, project_name) pair; received {source!r}.")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"The project name in `warm_start_from` must be a string, "
                        f"received {name!r}.")
    _refuse_keras_tuner_folder(where)
    return where, name


def _refuse_keras_tuner_folder(where: str | os.PathLike[str]) -> None:
    """Say how to warm start from KerasTuner's own search (a folder of JSON files, which
    no store opens): import it into a search file first.

    Raises:
        NotAnHpstoreFileError: ``where`` is a KerasTuner project folder, or a KerasTuner
            ``directory`` holding some.
    """
    from hpstore.store.postgresql import is_url

    if is_url(where) or not os.path.isdir(where):
        return
    folder = Path(where)
    projects = ([folder] if (folder / "oracle.json").is_file()
                else sorted(p.parent for p in folder.glob("*/oracle.json")))
    if projects:
        what = ("is a KerasTuner project folder (it holds oracle.json)"
                if projects[0] == folder else
                f"holds KerasTuner project folders ({projects[0].name}/oracle.json)")
        raise NotAnHpstoreFileError(
            f"warm_start_from: {shown(where)} {what}, not a search file. Import it into "
            "one first: `hpstore "
            f"import-keras-tuner {shlex.quote(str(projects[0]))} kt.db`, then "
            "warm_start_from='kt.db'.")


def choose_warm_project(records: list[ProjectRecord], name: str | None, project_name: str,
                        place: str, *, own: bool = False) -> ProjectRecord:
    """The project of ``records`` (a warm start's source) to take trials from: the one
    named ``name``; with no name, the only one, else the one named like this search.
    With ``own`` (the source is the store this search is in), this search's own project
    is never chosen: the others are the candidates.

    Raises:
        ProjectChoiceError: no such project, or several and none named, or (``own``) only
            this search's own project named or left to choose.
    """
    if own:
        if name == project_name:
            raise ProjectChoiceError(
                f"warm_start_from names this very project ({name!r} in {place}); "
                "name another project, or another file.")
        records = [r for r in records if r.name != project_name]
        if not records and name is None:
            raise ProjectChoiceError(
                f"warm_start_from: {place} is this search's own file, and holds no project "
                f"but this one ({project_name!r}); name another file, or a (file, "
                "project_name) pair.")
    names = [r.name for r in records]
    if name is not None:
        chosen = next((r for r in records if r.name == name), None)
        if chosen is None:
            raise ProjectChoiceError(
                f"warm_start_from: no project {name!r} in {place}; it holds: "
                f"{', '.join(names) or '(none)'}.")
        return chosen
    chosen = records[0] if len(records) == 1 else next(
        (r for r in records if r.name == project_name), None)
    if chosen is None:
        raise ProjectChoiceError(
            f"warm_start_from: {place} holds "
            f"{'no project' if not records else 'several projects'}"
            f"{': ' + ', '.join(names) if names else ''}; name one, as in "
            f"warm_start_from=({place!r}, {(names or ['name'])[0]!r}).")
    return chosen


@dataclass
class WarmSource:
    """A ``warm_start_from`` read before the search is made: what tells its store from
    any other, and the projects it held."""

    identity: tuple[Any, ...]
    records: list[ProjectRecord]
    name: str | None
    place: str

    def check_against(self, store: Store, project_name: str) -> None:
        """Refuse, once the search's own store is open and before anything is written to
        it, a source that is that store and leaves no other project to warm from.

        Raises:
            ProjectChoiceError: the source names this search's project, or holds no other.
        """
        if store.identity() == self.identity:
            choose_warm_project(self.records, self.name, project_name, self.place, own=True)


def check_warm_source(source: Any, project_name: str) -> WarmSource:
    """Refuse a ``warm_start_from`` that cannot be read, or names no project it holds,
    before the search is made; what it holds, for :meth:`WarmSource.check_against`.

    Raises:
        TypeError: not a file, URL or (file, project_name) pair.
        DatabaseError: the store cannot be opened (a file that does not exist, say).
        ProjectChoiceError: the project to warm from is not there, or not named.
    """
    from hpstore.store import open_store

    where, name = warm_source(source)
    store = open_store(where, read_only=True)
    try:
        records = store.projects()
        choose_warm_project(records, name, project_name, shown(where))
        return WarmSource(store.identity(), records, name, shown(where))
    finally:
        store.close()
