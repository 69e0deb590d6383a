"""What every ``hpstore`` command shares: its arguments, its one-line errors, its exit codes.

The tools in ``tools/`` parse their arguments here, open the search read-only with
:func:`open_search`, ask :mod:`hpstore.queries` what to show and print it with
:mod:`hpstore.rendering`; none of them writes SQL.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from hpstore.errors import HpStoreError, ProjectChoiceError
from hpstore.rendering import cut_middle, redraws, terminal_text
from hpstore.store import open_store
from hpstore.store.records import fits_int64
from hpstore.store.sqlite import checkmarks


def holds_search(database: str) -> bool:
    """Whether ``database`` holds a search yet (a file another process is still creating
    does not; nor does a PostgreSQL database without a project, or whose server cannot be
    reached yet).

    Raises:
        DatabaseError: a URL that waiting cannot mend (unreadable, a role or database the
            server does not know, a schema that does not exist, a privilege missing).
    """
    from hpstore.store.postgresql import is_url

    if is_url(database):
        from hpstore.errors import NoSearchYetError, ServerUnavailableError

        try:
            store = open_store(database, read_only=True)
        except (NoSearchYetError, ServerUnavailableError):
            return False
        try:
            return bool(store.projects())
        finally:
            store.close()
    from hpstore.store.sqlite.readonly import holds_search as file_holds_search

    return file_holds_search(database)


def open_search(database: str, *, check: bool = True) -> Any:
    """The store ``database`` (a search file or a ``postgresql://`` URL) names, opened
    read-only (a file is never created, a schema never set up).

    Raises:
        DatabaseError, NotAnHpstoreFileError: it cannot be read as a search.
    """
    line = StatusLine(sys.stderr)
    checkmarks.on_long_check = line.show  # (the first look at a large file takes seconds)
    try:
        store = open_store(database, read_only=True, check=check)
    finally:
        checkmarks.on_long_check = None
        line.clear()
    opened = getattr(_COMMAND, "stores", None)
    if opened is not None:  # a command's, closed when it ends (see run_tool)
        opened.append(store)
    _warn_of_other_names(database)
    return store


#: per thread, the stores open_search opened for the command running in it (none: a
#: dashboard's server thread, a notebook's own calls; those close their stores themselves)
_COMMAND = threading.local()


def _warn_of_other_names(database: str) -> None:
    """A file with another name (a hard link) may hold, in that name's log, what a worker
    wrote through it: read under this name, the search looks older than it is."""
    try:
        names = os.stat(database).st_nlink
    except (OSError, TypeError, ValueError):  # (a URL)
        return
    if names > 1:
        print(error_line(f"{database} has {names} names (hard links); what workers wrote "
                         "through another name and is still in that name's log is not "
                         "shown here. Read the search under the name its workers use.")
              .replace("hpstore: error:", "hpstore: warning:", 1), file=sys.stderr)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``minimum`` to 2**63 - 1 (a count of trials,
    rows, repeats or processes: zero or less made a run divide by zero, wait for ever or
    quietly use a default; more than 2**63 - 1 is what no query's LIMIT or trial number
    holds)."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number, received {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, received {value}")
        if not fits_int64(value):
            raise argparse.ArgumentTypeError(f"must be at most 2**63 - 1, received {value}")
        return value
    parse.__name__ = f"at least {minimum}"  # (argparse names the type in some errors)
    return parse


positive_int = at_least(1)


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, received {text!r}") from None
    if not value >= 0:  # (NaN too)
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, received {text}")
    if value > _MOST_SECONDS:  # a clock cannot wait longer (infinity neither)
        raise argparse.ArgumentTypeError(f"must be at most {_MOST_SECONDS:g} seconds (a "
                                         f"year), received {text}")
    return value


_MOST_SECONDS = 365 * 24 * 3600.0


#: the shortest pause between two looks (a shorter one keeps a processor busy reading)
_LEAST_PAUSE = 0.01


def pause(text: str) -> float:
    """An argparse type: seconds between two looks, at least :data:`_LEAST_PAUSE` (0, or
    next to it, would look again at once, without end: a processor kept busy reading the
    search)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, received {text!r}") from None
    if not value >= _LEAST_PAUSE:  # (NaN too)
        raise argparse.ArgumentTypeError(
            f"must be at least {_LEAST_PAUSE:g} seconds, received {text}: a shorter pause "
            "reads the search again and again without rest (0.1 refreshes ten times a "
            "second)")
    return seconds(text)


def help_text(doc: str | None, source: str) -> str | None:
    """A command's description for its ``--help``: its module's docstring ``doc``, or,
    under ``python -OO``, which strips docstrings, the same read from its ``source`` file
    (else the help lost what a file given to it holds, what a query may do ...)."""
    if doc is not None:
        return doc
    import ast

    try:
        with open(source, encoding="utf-8") as f:
            return ast.get_docstring(ast.parse(f.read()), clean=False)
    except (OSError, SyntaxError, ValueError):
        return None


def command_parser(**kwargs: Any) -> Any:
    """An ``argparse.ArgumentParser`` whose ``--help`` fails as any output of a command
    fails (a full disk, a closed output: one error line, exit 2): argparse's own swallows
    an error of that write (`hpstore trials --help > /dev/full` printed nothing, exit 0)."""
    return _parser_class()(**kwargs)


@functools.cache
def _parser_class() -> Any:
    import argparse  # (on first use: a command starts without it)

    class CommandParser(argparse.ArgumentParser):
        def print_help(self, file: Any = None) -> None:
            # (a stdout closed from the start is None where no tool's run replaced it)
            (file or sys.stdout or _ClosedOutput()).write(self.format_help())

    return CommandParser


def tool_parser(name: str, description: str | None, *, project: bool = True) -> Any:
    """The argument parser every inspection tool starts from: DB and (``project``: for a
    tool that looks at one project) --project."""
    parser = command_parser(prog=f"hpstore {name}", description=description)
    parser.add_argument("database", help="the search file, or a postgresql:// URL (opened "
                        "read-only)")
    if project:
        parser.add_argument("--project", default=None,
                            help="the project (search) in the file; default: the only one")
    return parser


def attach_oracle(database: str, project: str | None) -> Any:
    """The oracle of the project a changing command names with ``--project`` (or the only
    one), opened as :meth:`hpstore.Oracle.attach` opens it.

    Raises:
        ProjectChoiceError: no such project, or several and no ``--project`` (listing them).
    """
    from hpstore.oracle import Oracle
    from hpstore.oracle.steering import attach

    return attach(Oracle, database, project, named_by="--project NAME")


def writing_parser(name: str, description: str | None) -> Any:
    """The argument parser of a command that changes a search: DB and --project."""
    import argparse

    parser = command_parser(prog=f"hpstore {name}", description=description,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", help="the search file (it must exist; it is changed), "
                        "or a postgresql:// URL")
    parser.add_argument("--project", default=None,
                        help="the project (search) in the file; default: the only one")
    return parser


def add_output_options(parser: Any, default: str | None) -> None:
    """-o/--output and --force, for the tools that write a file."""
    parser.add_argument("-o", "--output", default=default,
                        help="the file to write, - for standard output"
                        + (f" (default: {default})" if default else
                           "; default: standard output")
                        + "; never the search file, its companions or any SQLite file")
    parser.add_argument("--force", action="store_true",
                        help="replace the output file if it exists (never a SQLite file)")


def add_format_options(parser: Any, formats: Sequence[str], default: str,
                       default_said: str | None = None) -> None:
    """--format and --raw, for the tools that print rows; ``default_said``: how --help
    names the default, where the tool chooses it (else ``default``)."""
    parser.add_argument("--format", choices=list(formats), default=default,
                        help=f"how to print the rows (default: {default_said or default})")
    if "csv" in formats:
        parser.add_argument("--raw", action="store_true",
                            help="CSV cells exactly as stored: without it, text starting with "
                                 "=, +, -, @, a tab or CR gets a leading ' so that a "
                                 "spreadsheet does not run it as a formula")


def error_line(message: Any) -> str:
    """The one line a tool prints for an error: control characters and line breaks of the
    file's contents shown as escapes."""
    return f"hpstore: error: {terminal_text(str(message).strip())}"


def run_tool(main: Any, argv: Sequence[str] | None = None) -> int:
    """Run a tool's ``main``. An error becomes one line on stderr and exit code 2; Ctrl-C
    (also during a long query) one line and exit code 130; a closed pipe exit code 0; a
    write to a standard output closed from the start an error."""
    if sys.stdout is None:  # started with its standard output closed (`>&-`, a daemon)
        sys.stdout = _ClosedOutput()  # a command that writes nothing there still runs
    if sys.stderr is None:  # (print(file=None) writes to stdout: an error line in the CSV)
        # (the process's own, open to its end)
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    escape_what_the_terminal_cannot_show()
    outer, _COMMAND.stores = getattr(_COMMAND, "stores", None), []
    try:
        with warnings.catch_warnings():  # (a command's words, not a source line of Python)
            warnings.showwarning = _warning_line
            return _run(main, argv)
    finally:
        # a command called in-process (hpstore.cli.main from a notebook) leaves no
        # connection open behind it, and closes no other
        opened, _COMMAND.stores = _COMMAND.stores, outer
        for store in opened:
            with contextlib.suppress(Exception):
                store.close()


def _warning_line(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """A warning as a command says it: one ``hpstore: warning:`` line on stderr."""
    with contextlib.suppress(OSError, ValueError):
        print(f"hpstore: warning: {terminal_text(message)}", file=sys.stderr)


def _run(main: Any, argv: Sequence[str] | None) -> int:
    try:
        code = int(main(argv) or 0)
        # Written out here, not as Python ends, where what a full disk refuses of the last
        # write is dropped without a word (`hpstore export DB > f.csv`: a cut CSV, exit 0).
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        print("hpstore: interrupted", file=sys.stderr)
        return 130
    except (HpStoreError, ValueError) as exc:
        # Bytes that are not UTF-8 in an argument reach Python as lone surrogates, which
        # no text in a search can hold (refused by the library, or by the driver); a path
        # with them is still a path (it works).
        bad = None
        if (isinstance(exc, (UnicodeEncodeError, ProjectChoiceError))
                or "lone surrogate" in str(exc)):
            # (a project named so is not found: "No project 'proj\udcc3\udca9'", of a
            # project the file holds as "projé")
            given = sys.argv[1:] if argv is None else list(argv)
            bad = next((a for a in given if _not_utf8(a)), None)
        print(error_line(exc if bad is None else _not_utf8_said(bad)), file=sys.stderr)
        return 2
    except Warning as exc:  # made an error (-W error, PYTHONWARNINGS=error): one line too
        print(error_line(f"{exc} (a warning, made an error by -W error or "
                         "PYTHONWARNINGS)"), file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        silence_stdout()
        return 0
    except OSError as exc:  # a file or folder given on the command line
        if exc.filename is None and exc.errno in _NO_ROOM:  # the standard output's
            silence_stdout()  # (what is left of it: not tried again as Python ends)
            print(error_line(
                f"The output could not be written in full ({exc.strerror}): what was "
                "written is cut short. Free some space on its disk (or raise `ulimit -f`) "
                "and run again."), file=sys.stderr)
            return 2
        where = f"{exc.filename}: " if exc.filename else ""
        print(error_line(f"{where}{exc.strerror or exc}."), file=sys.stderr)
        return 2


#: what a write refused for want of room says: a full disk, a file size limit, a quota
_NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def _not_utf8_said(argument: str) -> str:
    """Why an argument with bytes Python could not decode is refused, and what to do."""
    try:  # (its bytes as given: the undecoded ones are kept as \udcXX)
        text = os.fsencode(argument).decode("utf-8")
    except UnicodeDecodeError:
        return (f"The argument {argument!r} holds bytes that are not UTF-8 (shown as "
                "\\udcXX), which no name, note or query in a search can hold; give it as "
                "UTF-8 text.")
    return (f"The argument {text!r} is UTF-8 text, which Python read as "
            f"{sys.getfilesystemencoding()} (the locale's encoding, as with LC_ALL=C and "
            "PYTHONUTF8=0). Run with PYTHONUTF8=1, or in a UTF-8 locale (LANG=C.UTF-8).")


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _ClosedOutput(io.TextIOBase):
    """Standard output when the command was started with it closed: the first write is an
    error (one line, exit code 2, as a write to a full disk), as it is for the shell's
    own commands; a command that writes nothing there is not stopped."""

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed, so what this command writes "
                      "cannot be shown: give it a terminal, a file or a pipe (`> /dev/null` "
                      "to discard it)")


class StatusLine:
    """One line of a terminal rewritten in place with what runs now, for work that can take
    seconds. Nothing is written when the stream is not a terminal (a log gets the result
    lines only); tools give it stderr, so that what they write to stdout stays theirs."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        # (None: the command was started with it closed)
        self.live = redraws(stream)
        self.shown = False  # whether a line stands on the terminal now

    def show(self, text: str) -> None:
        if self.live and self.stream is not None:
            # cut to the terminal's width, its start and end kept (what runs, and how
            # far): a line that wraps is cleared by its last row only, and each update
            # left a row behind on a narrow terminal
            line = f"{terminal_text(text)} ..."
            width = self._width()
            if width is not None:
                line = cut_middle(line, max(1, width - 1))
            self.stream.write(f"\r\x1b[2K{line}")
            self.stream.flush()
            self.shown = True

    def _width(self) -> int | None:
        """The terminal's columns; None when it does not say (a size of 0): uncut then."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):
            return None
        return columns if columns > 0 else None

    def clear(self) -> None:
        """Take the line away; nothing is written when none is shown."""
        if self.shown and self.stream is not None:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False


def print_rows(text: str, fmt: str = "table") -> None:
    """Write what a tool renders to stdout in the format ``fmt``. On a terminal, a control
    character from the file (a note, a message, a value) is shown as an escape in every
    format, as the table shows it: CSV keeps cells exactly as stored (quoted) for a file or
    a pipe, and an escape sequence in one would otherwise run in the terminal. CSV, JSON
    and JSON lines sent to a file or a pipe are UTF-8 whatever the locale, as ``-o``
    writes them: data for another program, whose every value must read back as stored
    (under ``LANG=C``, ``é`` became the four characters ``\xe9``)."""
    tty = sys.stdout.isatty()
    if tty:
        text = "\n".join(terminal_text(line.removesuffix("\r"))
                         for line in text.split("\n"))
    out = sys.stdout
    try:
        fd, encoding, errors = out.fileno(), out.encoding, out.errors
    except (AttributeError, OSError, ValueError):  # (a notebook's, a test's capture)
        out.write(text)
        return
    # Written to the descriptor, not through Python's buffered writer, which on a disk
    # that fills part of the way through a write larger than its buffer keeps what the
    # disk took and drops the rest without a word (a CSV cut at 8 KiB, exit 0).
    out.flush()
    if fmt != "table" and not tty:
        encoding, errors = "utf-8", "strict"
    data = memoryview(text.encode(encoding or "utf-8", errors or "strict"))
    while data:
        written = os.write(fd, data)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        data = data[written:]


@contextlib.contextmanager
def terminated_as_interrupted() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, ``timeout``, a job scheduler) stops the command
    as Ctrl-C does, so that what it started and made (worker processes, temporary files, a
    schema on a server) is stopped and removed on the way out; Python's default ends the
    process at once. Off the main thread, where handlers cannot be set, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def escape_what_the_terminal_cannot_show() -> None:
    """A name in the search that the output's encoding cannot hold (LANG=C, an ASCII pipe)
    is written escaped (\\xf8), not a failure of the whole command."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush into the closed pipe does not
    print a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
