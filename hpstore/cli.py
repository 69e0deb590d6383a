"""The `hpstore` command: a thin dispatcher to the demo and the scripts in tools/.

Each inspection tool is one script in the repository's tools/ folder (shipped inside the
wheel as hpstore/_tools), runnable on its own from a checkout; this module only finds it
and calls its ``main``.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

TOOLS = {
    "summary": "projects, objective, counts per status, best trial and space",
    "trials": "one row per trial, a column per hyperparameter (table, csv or json)",
    "show": "one trial: values, metric history per step, status changes",
    "best": "the best N trials",
    "history": "the status log, of all trials, one trial or one worker",
    "export": "every trial as csv, json or jsonl",
    "watch": "a live view of a running search (read-only)",
    "check": "integrity, schema version, interrupted trials and what to do",
    "sql": "run a read-only SQL query (table, csv or json)",
}
# These also only read the search; they take more than the search file's name.
READING = {
    "report": "a self-contained HTML report with plots",
    "dashboard": "the search live in a web browser (127.0.0.1 only unless told otherwise)",
    "backup": "copy a search into one new file, consistent even while workers run",
}
# The commands that write: into a search file, or searches of their own.
WRITING = {
    "enqueue": "configurations to run before the search's own proposals, each once",
    "retire": "take ended trials out of the results (logged; nothing deleted)",
    "restore": "bring retired trials back into the results",
    "note": "attach a note to a trial",
    "import-keras-tuner": "bring a KerasTuner project directory into a search file",
    "copy": "copy searches between stores: a file to PostgreSQL and back",
    "stress": "kill workers at random while they search, then check every invariant",
}


def tools_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_tools", here.parent / "tools"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"hpstore's tools are missing (looked in {here / '_tools'}).")


# Commands whose script has another name: a tools/ script named like a standard module
# (copy.py) would shadow it for the scripts run from that folder.
SCRIPTS = {"copy": "copy_search"}


def load_tool(name: str) -> ModuleType:
    path = tools_dir() / f"{SCRIPTS.get(name, name.replace('-', '_'))}.py"
    spec = importlib.util.spec_from_file_location(f"hpstore_tool_{path.stem}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(f"no tool script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def available_tools() -> dict[str, str]:
    """Every command of tools/, the read-only ones first."""
    return {**TOOLS, **READING, **WRITING}


def usage() -> str:
    def listed(group: dict[str, str]) -> str:
        return "".join(f"  {name:<20} {text}\n" for name, text in group.items())

    return ("usage: hpstore COMMAND [ARGS]   (hpstore COMMAND --help for its options)\n"
            "       hpstore --version\n\n"
            "reading a search (never changes it, never holds up its workers):\n"
            + listed({**TOOLS, **READING})
            + "\nwriting:\n  demo                 run a real small search into hpstore-demo.db\n"
            + listed(WRITING))


def main(argv: list[str] | None = None) -> int:
    if sys.stderr is None:  # started with it closed: print(file=None) writes to stdout,
        # and "unknown command" went into the output (`hpstore expot DB 2>&- > f.csv`)
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    try:
        return _command(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # also while a tool's modules load, before its own handler
        print("hpstore: interrupted", file=sys.stderr)
        return 130


def _command(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        return _show(usage())
    if args[0] in ("-V", "--version"):
        from hpstore import __version__

        return _show(f"hpstore {__version__}\n")
    command, rest = args[0], args[1:]
    if command == "demo":
        from hpstore.demo import main as demo
        from hpstore.tooling import escape_what_the_terminal_cannot_show

        escape_what_the_terminal_cannot_show()  # (as every tool: a name LANG=C cannot hold)
        return demo(rest)
    if command in available_tools():
        from hpstore.tooling import run_tool

        return run_tool(load_tool(command).main, rest)
    near = difflib.get_close_matches(command, ["demo", *available_tools()], n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    print(f"hpstore: unknown command {command!r}{hint}\n\n{usage()}", end="",
          file=sys.stderr)
    return 2


def _show(text: str) -> int:
    """Print ``text`` as a tool prints: a full disk or a closed output is one error line,
    a pipe closed by its reader (``| head``) an exit without a word."""
    from hpstore.tooling import run_tool

    def show(_: Any) -> int:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0

    return run_tool(show, [])


if __name__ == "__main__":
    raise SystemExit(main())
