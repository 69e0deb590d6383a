"""hpstore enqueue DB --values JSON | --file FILE: configurations to run before the search's
own proposals, each once.

Each configuration names some or all of the search's hyperparameters; the ones left out are
filled as a random search would, the same way by every process. A configuration the search
already holds (waiting, running or run) is not enqueued again, unless --again. Every
configuration is checked against the space before any is enqueued: one outside it (an
unknown name, a value out of range or off its grid) stops the command with nothing written.

FILE is JSON (one object, or a list of objects), JSON Lines (one object per line) or CSV (a
header of hyperparameter names, one configuration per row; an empty cell is left out; a
cell is read as JSON when it is valid JSON, such as 0.01, true or "relu", else as text; and
as text, or True / False as a boolean, when that is what its hyperparameter takes).

What `hpstore export` writes (csv, json or jsonl) reads back: its columns of trial facts
(trial_id, status, score, ...) are left out, a hyperparameter it wrote as hp:NAME is NAME,
an empty cell or null (a hyperparameter inactive in that trial) is left out, and a text it
wrote with a leading ' (so that a spreadsheet does not run it as a formula) is read
without it.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from hpstore.errors import HpStoreError, SearchFullError
from hpstore.hyperparameters import HyperParameters
from hpstore.oracle import values_key
from hpstore.queries import TRIAL_COLUMNS
from hpstore.rendering import terminal_text, unescaped
from hpstore.tooling import attach_oracle, help_text, run_tool, writing_parser


def main(argv: list[str] | None = None) -> int:
    parser = writing_parser("enqueue", help_text(__doc__, __file__))
    parser.add_argument("--values", action="append", default=[], metavar="JSON",
                        help='one configuration as a JSON object, e.g. \'{"lr": 0.01}\' '
                             "(may be given several times)")
    # (expanded here: `--file=~/c.json` reaches us with its `~`, which the search file's
    # own argument takes as the home folder)
    parser.add_argument("--file", type=lambda text: Path(text).expanduser(),
                        help="configurations in a JSON, JSONL or CSV file")
    parser.add_argument("--again", action="store_true",
                        help="enqueue a configuration even if the search already holds it")
    args = parser.parse_args(argv)
    # ("--values 1" read as the value 1 given)
    named = ["--values"] if len(args.values) == 1 else [
        f"--values (the {_ordinal(i + 1)})" for i in range(len(args.values))]
    configs = [(where, _json_object(text, where)) for where, text in zip(named, args.values)]
    if args.file is not None:
        configs += read_configurations(args.file)
    if not configs:
        parser.error("give at least one configuration: --values JSON or --file FILE")
    oracle = attach_oracle(args.database, args.project)
    try:
        declared = oracle.get_space()
        space = declared.space
        configs = [(where, _from_export(cfg, declared) if isinstance(cfg, _ExportRow) else cfg)
                   for where, cfg in configs]
        configs = [(where, {name: _as_written(value, name, space) for name, value in cfg.items()})
                   for where, cfg in configs]
        plans = [(where, oracle.enqueue_plan(values, what=where)) for where, values in configs]
        left = oracle.remaining_trials()
        keys = [values_key(v) for _, (v, _) in plans]
        # (without --again, values given twice take one place, as they get one trial)
        new = keys if args.again else [k for k in dict.fromkeys(keys)
                                        if not oracle.project.has_values(k)]
        if left is not None and len(new) > left:
            raise SearchFullError(
                f"{len(new)} new configuration{'s' if len(new) != 1 else ''} given, but the "
                f"search has room for {left} more trial{'s' if left != 1 else ''} "
                f"(max_trials={oracle.max_trials}); nothing was enqueued. Raise max_trials "
                "first (give the Oracle a larger max_trials).")
        for where, (values, earlier) in plans:
            try:
                record, created = oracle.enqueue_values(values, skip_if_exists=not args.again,
                                                        earlier=earlier)
            except SearchFullError as exc:
                raise SearchFullError(f"{where}: {exc}") from None
            shown = terminal_text(json.dumps(record.values, ensure_ascii=False))
            if created:
                print(f"trial {record.trial_id} enqueued: {shown}", file=sys.stderr)
            else:
                print(f"trial {record.trial_id} already holds these values ({record.status}); "
                      f"not enqueued again: {shown}", file=sys.stderr)
    finally:
        oracle.close()
    return 0


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th ... 11th, 12th, 13th ... 21st."""
    last = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{last}"


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HpStoreError(f"{where} is not valid JSON ({exc.msg} at character {exc.pos}); "
                           'give an object such as {"lr": 0.01}.') from None
    if not isinstance(value, dict):
        raise HpStoreError(f"{where} is {type(value).__name__} JSON; give an object of "
                           'hyperparameter name to value, such as {"lr": 0.01}.')
    return value


def read_configurations(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, configuration) of each configuration in a JSON, JSONL or CSV file.

    Raises:
        HpStoreError: the file cannot be read as one of those, naming the line or row.
        OSError: the file cannot be opened.
    """
    name = str(path)
    try:
        # utf-8-sig: a byte-order mark (a spreadsheet's "CSV UTF-8") is not part of a name;
        # no newline translation: a CR inside a quoted cell is the value's (read as a
        # newline, an exported "a\rb" came back "a\nb"), and csv reads any line end
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise HpStoreError(f"{name} is not UTF-8 text (byte {exc.start}: "
                           f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8.") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            raise HpStoreError(f"{name} is empty; give a header of hyperparameter names and "
                               "one row per configuration.")
        header, out = rows[0], []
        names = [h.strip() for h in header]
        row_type = _ExportCsvRow if set(TRIAL_COLUMNS) <= set(names) else dict
        twice = sorted({h for h in names if names.count(h) > 1})
        if twice:
            raise HpStoreError(f"{name}: column {twice[0]!r} appears more than once in the "
                               "header; give each hyperparameter one column.")
        for n, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise HpStoreError(f"{name} row {n} has {len(row)} cells; the header has "
                                   f"{len(header)}.")
            # an export's empty cell may be a Choice's None: kept (as None) for its space
            out.append((f"{name} row {n}", row_type(
                (h.strip(), _Cell(c) if c.strip() else None) for h, c in zip(header, row)
                if c.strip() or row_type is _ExportCsvRow)))
        if not out:
            raise HpStoreError(f"{name} has a header but no configuration; add one row per "
                               "configuration under it.")
        return out
    if path.suffix.lower() == ".jsonl":
        return [(f"{name} line {n}", _exported(_json_object(line, f"{name} line {n}")))
                # (lines end at "\n" alone: a value may hold U+2028 or U+0085, which JSON
                # leaves as they are and str.splitlines() takes for line ends)
                for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HpStoreError(f"{name} is not valid JSON ({exc.msg}, line {exc.lineno}); give "
                           "an object, a list of objects, or use .jsonl or .csv.") from None
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise HpStoreError(f"{name} item {i + 1} is {type(item).__name__}; each "
                               "configuration is an object of hyperparameter name to value.")
    return [(f"{name} item {i + 1}", _exported(item)) for i, item in enumerate(items)]


class _Cell(str):
    """A CSV cell as written: what it holds is decided by its hyperparameter."""


class _ExportRow(dict[str, Any]):
    """A configuration read from what `hpstore export` wrote (it has every trial column)."""


class _ExportCsvRow(_ExportRow):
    """One read from the CSV export writes, whose titles a spreadsheet would run as a
    formula have a leading ' (JSON keys are the names as they are)."""


def _exported(item: dict[str, Any]) -> dict[str, Any]:
    return _ExportRow(item) if set(TRIAL_COLUMNS) <= set(item) else item


def _from_export(row: dict[str, Any], declared: HyperParameters) -> dict[str, Any]:
    """The hyperparameters of an exported trial, each under its own name: without the
    trial columns, a column title as export wrote it (a hyperparameter called like a
    trial column, "status", as hp:status; one a spreadsheet would take for a formula with
    a leading '), and the empty values (null, an empty cell) of hyperparameters inactive
    in that trial; an empty value of an active Choice that holds None is that None, else
    its "" when it holds one."""
    names = {hp.name for hp in declared.space}
    out: dict[str, Any] = {}
    empty: list[str] = []
    for title, value in row.items():
        if title in TRIAL_COLUMNS:
            continue
        name = title
        bare = unescaped(name) if isinstance(row, _ExportCsvRow) else None
        if bare is not None and bare in names:
            # export escaped it: '=a is the title of "=a", ''=a that of "'=a" (taken as
            # written, '=a matched "'=a" first, and two columns fell on one name)
            name = bare
        while name not in names and name.startswith("hp:"):
            name = name[3:]
        name = name if name in names else title
        if value is None:
            empty.append(name)
        else:
            out[name] = value
    settled = declared.copy()
    settled.values = dict(out)
    for hp in declared.space:  # in order: a parent is settled before its children
        if hp.name in empty and settled.is_active(hp):
            # an active hyperparameter's empty cell is its None, else its "" (a CSV cell
            # cannot tell them apart; export wrote one of them)
            held = [v for v in (None, "") if v in (hp.values or [])]
            if held:
                out[hp.name] = settled.values[hp.name] = held[0]
    return out


def _as_written(value: Any, name: str, space: list[Any]) -> Any:
    """A CSV cell as a value of the hyperparameter ``name``: the cell read as JSON when
    valid (0.01, true, "relu"), else its text; or, when the hyperparameter takes only the
    other, its text (the string choice "2") or a spreadsheet's True / False. Any other
    value is returned as is (and checked against the space with the rest)."""
    if not isinstance(value, _Cell):
        return value
    text = value.strip()
    try:
        candidates = [json.loads(text)]
    except json.JSONDecodeError:
        candidates = []
    if str(value) != text:  # the cell as written first: a string choice " pad"
        candidates.insert(0, str(value))
    if unescaped(text) is not None:
        candidates.append(text[1:])  # kept from a spreadsheet's formulas by export
    candidates.append(text)
    if text.lower() in ("true", "false"):
        candidates.append(text.lower() == "true")
    for candidate in candidates:
        for hp in space:
            if hp.name != name:
                continue
            try:
                hp.check_value(candidate)
            except (TypeError, ValueError):
                continue
            return candidate
    return candidates[0]  # refused with the other values, naming the cell's row


if __name__ == "__main__":
    sys.exit(run_tool(main))
