"""What comes out of the file, checked to be what hpstore put in.

A search file is a plain SQLite file: other programs can write into it, and a damaged or
crafted one can hold a BLOB where hpstore writes text, or JSON of the wrong shape. Every
value read back is decoded here, so such a file gives one clear error naming the table and
column at fault, never a stray ``TypeError`` deep inside an algorithm. Nothing read is
ever evaluated: JSON is parsed with ``json.loads`` and nothing else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from hpstore.errors import NotAnHpstoreFileError

# Infinite metric values and scores (a diverged loss is -inf or inf) are kept in the file as
# SQLite reals; in the JSON of get_state() they are these strings, so the state is standard
# JSON that any reader accepts.
_INFINITIES = {math.inf: "Infinity", -math.inf: "-Infinity"}
_FROM_TEXT = {text: value for value, text in _INFINITIES.items()}

#: every shape of JSON value (an algorithm's state may be a number or a list)
ANY_JSON = (dict, list, str, int, float, bool, type(None))


def damaged(where: str, value: Any) -> NotAnHpstoreFileError:
    """The error for a value hpstore never writes, found at ``where`` ("table.column")."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    # (said of the search, not of a file: a schema on a server is read through here too)
    return NotAnHpstoreFileError(
        f"The search's {where} holds {shown}, which hpstore never writes: it was damaged or "
        "changed by another program. Restore it from a backup, or correct that row with SQL."
    )


def from_json(text: Any, where: str, shape: type | tuple[type, ...] = dict) -> Any:
    """Decode the JSON column ``where`` and check it is a ``shape`` (a JSON object unless
    told otherwise).

    Raises:
        NotAnHpstoreFileError: not text, not JSON, or JSON of another shape.
    """
    if not isinstance(text, str):
        raise damaged(where, text)
    try:
        value = json.loads(text)
    except ValueError:
        raise damaged(where, text) from None
    if not isinstance(value, shape):
        raise damaged(where, text)
    return value


def check_row(row: Sequence[Any], columns: Sequence[str], table: str) -> None:
    """Refuse a row holding bytes: hpstore writes text, numbers and NULL, never a BLOB.

    Raises:
        NotAnHpstoreFileError: naming the first column that holds a BLOB.
    """
    for name, value in zip(columns, row):
        if isinstance(value, bytes):
            raise damaged(f"{table}.{name}", value)


def infinity_to_json(value: float | None) -> float | str | None:
    """A metric value or score as strict JSON: ±inf become "Infinity" / "-Infinity"."""
    return _INFINITIES.get(value, value) if isinstance(value, float) else value


def infinity_from_json(value: Any) -> Any:
    """The inverse of :func:`infinity_to_json` (other values pass through unchanged)."""
    return _FROM_TEXT.get(value, value) if isinstance(value, str) else value
