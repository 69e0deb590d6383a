"""Where a Keras tuner keeps its project folder beside the search file: what it refuses
before anything is written (a search file its ``overwrite`` would delete, a folder of
KerasTuner's own search whose checkpoints it would write over)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hpstore.errors import HpStoreError
from hpstore.store import shown
from hpstore.store.postgresql import is_url

#: what KerasTuner keeps in a project's folder, and hpstore never writes
KERAS_TUNER_STATE = ("oracle.json", "tuner0.json")


def check_project_folder(database: Any, folder: str, project_name: str, *,
                         overwrite: bool, held: bool | None = None) -> None:
    """Refuse, before anything is written, a search file that KerasTuner's ``overwrite``
    would delete, and a project folder that holds a KerasTuner search this one would
    overwrite the checkpoints of. ``held``: whether the search holds trials already (an
    oracle opened before its Tuner); by default, whether the file holds the project.

    Raises:
        ValueError: ``overwrite=True`` with the search file inside the project's folder
            (KerasTuner deletes that folder, the file and its other projects with it).
        HpStoreError: the folder holds KerasTuner's own search (``oracle.json``), and the
            search file holds no project of that name (nothing imported yet).
    """
    local = not is_url(str(database)) and str(database) != ":memory:"
    if overwrite:
        if local and Path(os.path.realpath(folder)) in Path(
                os.path.realpath(str(database))).parents:
            raise ValueError(
                f"The search file {database} is inside {folder}, which overwrite=True deletes "
                "before the search starts (as KerasTuner does), with the file and every "
                "project in it. Keep the file outside that folder (the default is "
                f"{folder}.db).")
        return
    found = [n for n in KERAS_TUNER_STATE if os.path.exists(os.path.join(folder, n))]
    if not found or (_holds_project(database, project_name) if held is None else held):
        return
    raise HpStoreError(
        f"{folder} holds a KerasTuner search ({found[0]}), which hpstore does not read: run "
        f"on, this search would write its checkpoints over that one's. Bring it in once with "
        f"`hpstore import-keras-tuner {folder} {shown(str(database))}` (its trials become "
        "this search's first and the search resumes), or give another project_name or "
        "directory, or overwrite=True to start afresh (deleting that folder, as KerasTuner "
        "does).")


def _holds_project(database: Any, project_name: str) -> bool:
    from hpstore.store import open_store

    if not is_url(str(database)) and not os.path.exists(str(database)):
        return False
    try:
        store = open_store(database, read_only=True)
    except HpStoreError:
        return False  # (opening it for the search says what is wrong with it)
    try:
        return store.find_project(project_name) is not None
    finally:
        store.close()
