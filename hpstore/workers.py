"""Worker processes: one search shared by N local processes started with spawn.

:meth:`hpstore.Tuner.search` with ``workers=N`` hands its tuner to :func:`run_workers`,
which starts the processes, shows their progress, stops them all when one raises or
Ctrl-C is pressed (each handing its trial back), and says in words what went wrong when
they cannot start. Each worker runs the tuner's own loop; nothing here knows the store.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hpstore import process_limits
from hpstore.errors import FatalError
from hpstore.progress import Progress

if TYPE_CHECKING:  # (the tuner imports this module)
    from hpstore.tuner import Tuner

#: The variables BLAS and OpenMP libraries read for their thread count when they load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# OpenBLAS also reads this one; a user who set it manages threads.
_USER_THREAD_VARIABLES = (*THREAD_VARIABLES, "GOTO_NUM_THREADS")
# Set in a worker's environment while it starts: the child knows its parent is a Tuner.
WORKER_MARK = "HPSTORE_TUNER_WORKER"
# A worker that found its script calling search(workers=N) while being imported exits
# with this code (EX_CONFIG), silently: the parent says what to change, once.
NO_MAIN_GUARD_EXIT = 78
_RAISED_EXIT = 79  # a worker's search raised (FatalError, too many failures...): all stop
_INTERRUPTED_EXIT = 130  # a worker stopped by Ctrl-C, its trial handed back
_ENDED = 2  # a worker's mark once its search returned (1: it runs)
_STOP_GRACE = 1.0  # seconds workers get to stop on the terminal's own SIGINT
_STOP_DEADLINE = 30.0  # seconds they get after the parent forwards it, before SIGTERM
# what sending an object to a spawned process raises when it cannot be pickled
_PicklingError = mp.reduction.pickle.PicklingError  # type: ignore[attr-defined]


def _cores() -> int:
    """The cores this process may run on (its affinity), or all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def thread_limits(workers: int) -> dict[str, str]:
    """The environment each of ``workers`` local worker processes gets: BLAS and OpenMP
    threads limited to ``cores // workers`` (at least 1), so that N workers using numpy or
    scikit-learn do not each start a thread per core. Empty when the user set any of these
    variables: then the user's setting is kept as it is."""
    if any(name in os.environ for name in _USER_THREAD_VARIABLES):
        return {}
    per_worker = str(max(1, _cores() // max(1, workers)))
    return dict.fromkeys(THREAD_VARIABLES, per_worker)


_ENVIRONMENT_LOCK = threading.Lock()


@contextlib.contextmanager
def _starting_workers(environment: Mapping[str, str]) -> Iterator[None]:
    """The conditions worker processes start under.

    A spawned worker's first act is to import the user's script, and with it numpy, whose
    BLAS reads its thread count at that import: so the limits must already be in the
    environment the worker is born with. They are set in this process's environment for
    the time it takes to start the workers, and restored after.

    SIGINT is ignored meanwhile, and a worker inherits that (an ignored signal stays
    ignored through exec; a blocked one does not stay blocked): a Ctrl-C while a worker
    still imports would otherwise print a traceback from deep inside multiprocessing. The
    worker takes Ctrl-C again once it can hand its trial back quietly (``_worker_main``).
    A Ctrl-C in the milliseconds this process spends starting them is lost; press again.
    """
    # One search at a time sets and restores the environment (two threads' searches
    # interleaved would each restore the other's settings).
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.get(name) for name in (*environment, WORKER_MARK)}
        os.environ.update(environment)
        os.environ[WORKER_MARK] = str(os.getpid())
        previous = ignore_sigint()
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


def ignore_sigint() -> Any:
    """Ignore SIGINT from now on; returns the handler to restore (None off the main thread,
    where handlers cannot be changed)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """A Ctrl-C during the block waits for its end, then acts as it would have (a
    KeyboardInterrupt, or the handler that was in place); so does a SIGTERM that a handler
    takes (see ``terminated_as_ctrl_c``; with Python's default it ends the process at once,
    as ``kill -9``). Off the main thread, where handlers cannot be changed, nothing is
    deferred."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def catch(signum: int, frame: Any) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, catch)
    term = signal.getsignal(signal.SIGTERM)
    if callable(term):
        signal.signal(signal.SIGTERM, catch)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if callable(term):
            signal.signal(signal.SIGTERM, term)
    if caught:
        handler = previous if caught[0] == signal.SIGINT else term
        if callable(handler):
            handler(caught[0], None)  # Python's own handler raises KeyboardInterrupt
        elif handler == signal.SIG_DFL:
            raise KeyboardInterrupt


def importing_in_a_worker() -> bool:
    """Whether this process is a spawned child still importing its parent's script.

    Spawn starts a fresh interpreter that imports the parent's main script as
    ``__mp_main__``; multiprocessing marks the process as inheriting until that import and
    the unpickling of its task are done. A script that calls ``search(workers=N)`` at its
    top level, not under ``if __name__ == "__main__":``, calls it again right here.
    """
    return bool(getattr(mp.current_process(), "_inheriting", False))


def no_main_guard_message(workers: int) -> str:
    return (f"search(workers={workers}) was called while a worker process was importing this "
            "script: each worker imports it again (multiprocessing's spawn), so the code that "
            "starts the search must be under `if __name__ == \"__main__\":` at the end of the "
            "script. Move it there and run the script again.")


def _could_not_start_message(workers: int, codes: list[int | None]) -> str:
    return (f"search(workers={workers}): the worker processes could not start (exit code "
            f"{', '.join(sorted({str(c) for c in codes}))}; their error is printed above), "
            "so nothing was run. Each worker imports this script and rebuilds the tuner from "
            "it: the Tuner subclass, run_trial and the hypermodel must be defined at the top "
            "level of a module, not inside `if __name__ == \"__main__\":` or a function.")


def _cannot_start_message(workers: int, running: int, exc: OSError) -> str:
    """What to say when the operating system refused what a worker process needs (its
    pipes, or the process itself) after ``running`` of them had started."""
    text = exc.strerror or str(exc)
    if exc.errno == errno.EMFILE:
        files = process_limits.descriptors_near_limit()
        held = (f"this process has {files[0]} files open and its limit (ulimit -n) is "
                f"{files[1]}" if files else "this process reached its limit of open files "
                "(ulimit -n)")
        why = (f"{held}, and each worker takes a few of them here (the pipes to it). "
               "Raise the limit (`ulimit -n 4096` in the shell that starts the script) or "
               "ask for fewer workers")
    elif exc.errno == errno.ENFILE:
        why = ("the whole system is out of open files. Close other programs' files or ask "
               "for fewer workers")
    elif exc.errno in (errno.EAGAIN, errno.ENOMEM):
        why = ("the system refused another process: the limit on processes (ulimit -u) "
               "or the memory was reached. Ask for fewer workers, or raise that limit")
    else:
        why = "ask for fewer workers, or see what the system refused"
    stopped = f" The workers already started ({running}) were stopped." if running else ""
    return (f"search(workers={workers}): worker process {running + 1} could not be started "
            f"({text}): {why}.{stopped} Nothing was run by them, and the search is as it "
            "was: run the script again to go on.")


def _close_pipes(pipes: list[tuple[Any, Any]]) -> None:
    for ends in pipes:
        for end in ends:
            with contextlib.suppress(OSError):
                end.close()


def _main_reimported() -> bool:
    """Whether a spawned worker imports the ``__main__`` module again: a script run by its
    path, or a module run by ``python -m pkg.mod``. Not a notebook or an interactive
    session, ``python -c``, a script read from standard input, nor a package's or a
    zipapp's ``__main__.py``, which Python's multiprocessing never imports again."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return name != "__main__" and not name.endswith(".__main__")
    return isinstance(path, str) and os.path.isfile(path)


def _from_an_interactive_session(tuner: Tuner) -> list[str]:
    """What the tuner holds that was defined in ``__main__`` where spawned workers cannot
    import it from (see :func:`_main_reimported`)."""
    if sys.modules.get("__main__") is None or _main_reimported():
        return []
    held = [type(tuner), getattr(tuner, "_run_trial_fn", None), tuner.hypermodel,
            type(tuner.hypermodel), type(tuner.oracle),
            getattr(tuner.hypermodel, "function", None)]  # (a build function, wrapped)
    return sorted({getattr(h, "__qualname__", repr(h)) for h in held
                   if h is not None and getattr(h, "__module__", None) == "__main__"})


def _interactive_message(workers: int, names: list[str]) -> str:
    defined = f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} defined"
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if isinstance(path, str) and os.path.basename(path) == "__main__.py":
        # (python -m pkg, a zipapp: Python's multiprocessing never imports it again)
        return (f"search(workers={workers}) from {path}: each worker process imports what "
                f"the tuner holds from its module, and {defined} in a __main__.py, which "
                "worker processes never import. Move them to another module of the "
                "package (or zipapp) and import them from there, or call search() without "
                "workers=. Nothing was run.")
    return (f"search(workers={workers}) from a notebook, an interactive session, python -c "
            "or a script read from standard input: each worker process imports what the "
            f"tuner holds from files, and {defined} in no file. Put them in a .py file "
            "(beside the notebook) and import them from there, or call search() without "
            "workers=. Nothing was run.")


@contextlib.contextmanager
def _main_not_imported() -> Iterator[None]:
    """While workers start from a ``__main__`` they do not import (see
    :func:`_main_reimported`, and nothing they need is defined there): its ``__file__``
    hidden, which multiprocessing would otherwise run in each worker (a script read from
    standard input is ``<stdin>``: "No such file or directory")."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or _main_reimported() or os.path.isfile(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _unpicklable_message(workers: int, exc: BaseException) -> str:
    return (f"search(workers={workers}) sends the tuner to each worker process, and it cannot "
            f"be sent ({type(exc).__name__}: {exc}). Define run_trial and the hypermodel as "
            "functions (or classes) at the top level of a module, not as a lambda, inside "
            "another function or inside `if __name__ == \"__main__\":`, and keep objects "
            "such as open files or locks out of the tuner. Nothing was run.")


def _worker_main(tuner: Tuner, tuner_id: str, stop: Any, arguments: Any,
                 started: Any = None, index: int = 0, errors: Any = None,
                 says: Any = None) -> None:
    """A worker process: run trials until the search is over or Ctrl-C.

    It starts with SIGINT ignored (see ``_starting_workers``) and takes it from here on.
    On Ctrl-C the trial in hand is handed back (in ``_run_one``) and the process exits
    with code 130, printing nothing: the parent prints one message for everyone. ``stop``
    (an Event) is set by the parent when the search was interrupted: a worker that was
    still importing then, and so ignored the Ctrl-C, stops as soon as it gets here.
    ``arguments`` is the pipe that brings search()'s arguments. What the search raises
    here (a ``FatalError``, too many failures in a row, a store that is gone) stops every
    worker, as it stops a search in one process: it goes to the parent through ``errors``,
    which raises it from ``search()``. ``says`` is the pipe on which a worker stopped by
    Ctrl-C tells the parent what became of the trials it handed back.
    """
    if started is not None:  # it got here: the script imported and the tuner unpickled
        started[index] = 1
    try:
        # the handler first, then the event: the parent sets the event before it forwards
        # SIGINT, so one or the other reaches this process
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _follow_parent()  # (its SIGINT is taken from here on)
        if stop.is_set():
            raise KeyboardInterrupt
        try:
            args, kwargs = arguments.recv()
        except EOFError:  # the parent is gone before sending them: nothing to do
            return
        finally:
            arguments.close()
        tuner.tuner_id = tuner_id
        tuner._in_worker = True
        # no new trial once the parent stops the workers: a Ctrl-C that reached one of
        # them only interrupts the search as at a terminal (its own SIGINT comes after a
        # grace, to hand back the trial in hand)
        tuner._interrupted_elsewhere = stop.is_set  # type: ignore[method-assign]
        tuner._worker_says = bool(tuner.verbose)  # what only a worker knows (on stderr)
        tuner.verbose = 0  # the parent shows progress for everyone
        with terminated_as_ctrl_c():
            tuner._loop(args, kwargs)
        if started is not None:  # what fails from here (interpreter exit) holds no trial
            started[index] = _ENDED
    except KeyboardInterrupt:
        ignore_sigint()  # a second Ctrl-C must not print a traceback on the way out
        if says is not None:
            with contextlib.suppress(Exception):  # (the parent says less, no more)
                says.send(list(getattr(tuner, "_handed_back", [])))
        sys.exit(_INTERRUPTED_EXIT)
    except Exception as exc:
        ignore_sigint()
        if errors is None:
            raise
        _send_error(errors, exc, tuner_id)
        sys.exit(_RAISED_EXIT)
    ignore_sigint()


@contextlib.contextmanager
def terminated_as_ctrl_c() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, ``timeout``, ``docker stop``, a job scheduler
    preempting the job) stops the search as Ctrl-C does: the trial in hand is handed back
    (RUNNING -> IDLE), not left to be found interrupted as after ``kill -9``, which counts
    towards the three deaths that fail a trial. Only where SIGTERM has Python's default
    action, on the main thread: a handler of the program's own is kept."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    signal.signal(signal.SIGTERM, _sigterm_as_ctrl_c)
    try:
        yield
    finally:
        # a handler the program set meanwhile (a framework's own, in fit) stays
        if signal.getsignal(signal.SIGTERM) in (_sigterm_as_ctrl_c, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sigterm_as_ctrl_c(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _default_sigterm_in_child() -> None:
    """A process forked while the search runs (a ``multiprocessing.Pool`` of ``run_trial``'s)
    is not the search: its SIGTERM ends it, as without hpstore. ``Pool.terminate`` ends its
    workers so; raising KeyboardInterrupt in them printed tracebacks, and one that died
    holding its queue's lock hung the Pool, and the search with it. A SIGTERM held back
    across the fork (see _block_sigterm_before_fork) arrives once the default is back."""
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) is _sigterm_as_ctrl_c:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _unblock_sigterm_after_fork()


_blocked_for_fork = threading.local()


def _block_sigterm_before_fork() -> None:
    """While the search turns SIGTERM into Ctrl-C, hold SIGTERM back across fork: one that
    reaches the child before its handler is reset (a Pool's terminate() right after it
    started its workers) would otherwise be a KeyboardInterrupt there or be lost."""
    blocked = signal.getsignal(signal.SIGTERM) is _sigterm_as_ctrl_c
    _blocked_for_fork.on = blocked
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def _unblock_sigterm_after_fork() -> None:
    if getattr(_blocked_for_fork, "on", False):
        _blocked_for_fork.on = False
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


os.register_at_fork(before=_block_sigterm_before_fork,
                    after_in_parent=_unblock_sigterm_after_fork,
                    after_in_child=_default_sigterm_in_child)


def ignore_sigterm_as_ctrl_c() -> Any:
    """Ignore SIGTERM where ``terminated_as_ctrl_c`` made it a Ctrl-C (as ``ignore_sigint``
    does SIGINT while trials are handed back); returns the handler to restore, or None
    (a handler of the program's own, or off the main thread: left as it is)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not _sigterm_as_ctrl_c:
        return None
    return signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.contextmanager
def ctrl_c_ignored() -> Iterator[None]:
    """Within the block, Ctrl-C and a SIGTERM that ``terminated_as_ctrl_c`` made one are
    ignored, then their handlers come back: for the writes that follow a first Ctrl-C (a
    trial handed back), which a second one would cut, leaving the trial RUNNING."""
    previous = ignore_sigint()
    term = ignore_sigterm_as_ctrl_c()
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if term is not None:
            signal.signal(signal.SIGTERM, term)


def _follow_parent() -> None:
    """In a worker: stop as at Ctrl-C (the trial in hand handed back) once the process
    that started it is gone. A parent killed, or stopped by SIGTERM (``timeout``, ``kill``,
    a job scheduler), never gets to stop its workers, which would run the search on alone,
    unseen."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of their link closes: it is gone
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), signal.SIGINT)

    # No thread to be had (the limit on processes, ulimit -u, counts threads too): the
    # worker runs its trials all the same, as the parent waits for it, rather than
    # stopping the whole search; only a parent killed meanwhile goes unnoticed.
    with contextlib.suppress(RuntimeError):
        threading.Thread(target=watch, name="hpstore-parent-watch", daemon=True).start()


def _send_error(errors: Any, exc: Exception, tuner_id: str) -> None:
    """``exc`` to the parent, with where it was raised; as a FatalError in words when
    it cannot be pickled."""
    exc.add_note(f"(raised in the worker process {tuner_id}:\n"
                 f"{''.join(traceback.format_exception(exc)).rstrip()})")
    try:
        errors.put(exc)
    except Exception:  # (an exception carrying something that cannot be pickled)
        errors.put(FatalError(f"{type(exc).__name__} in the worker process {tuner_id}: "
                              f"{exc}"))


def run_workers(tuner: Tuner, workers: int, args: tuple[Any, ...], kwargs: dict[str, Any],
                progress: Progress) -> bool:
    """Run the search in ``workers`` spawned processes until they all end; whether one of
    them crashed (its trial may then wait to run again).

    Raises:
        FatalError: the workers could not start or be sent the tuner, the script starts
            its search while imported, or a worker stopped the search without an error
            that can be sent.
        Exception: what a worker's search raised (it stopped every worker).
        KeyboardInterrupt: Ctrl-C (every worker hands its trial back first).
    """
    interactive = _from_an_interactive_session(tuner)
    if interactive:
        raise FatalError(_interactive_message(workers, interactive))
    ctx = mp.get_context("spawn")
    pipes: list[tuple[Any, Any]] = []
    said: list[tuple[Any, Any]] = []  # what each worker a Ctrl-C stopped handed back
    try:
        stop = ctx.Event()
        for _ in range(workers):
            pipes.append(ctx.Pipe(duplex=False))
            said.append(ctx.Pipe(duplex=False))
        started = ctx.RawArray("b", workers)  # set by each worker once it runs
        errors = ctx.SimpleQueue()  # what a worker's search raised
    except OSError as exc:  # (out of descriptors: each pipe takes two)
        _close_pipes(pipes + said)
        raise FatalError(_cannot_start_message(workers, 0, exc)) from None
    procs = [ctx.Process(target=_worker_main, name=f"{tuner.tuner_id}-{i}",
                         args=(tuner, f"{tuner.tuner_id}-{i}", stop, reader, started, i - 1,
                               errors, says))
             for i, ((reader, _), (_, says)) in enumerate(zip(pipes, said), 1)]
    limits = thread_limits(workers)
    crashed: list[str] = []
    try:
        with _starting_workers(limits), _main_not_imported():
            for p in procs:
                try:
                    p.start()
                except (_PicklingError, AttributeError, TypeError) as exc:
                    _stop_workers(procs, stop, grace=0.0)
                    raise FatalError(_unpicklable_message(workers, exc)) from None
                except OSError as exc:  # the system refused: descriptors, processes
                    _stop_workers(procs, stop, grace=0.0)
                    _close_pipes(pipes)
                    raise FatalError(_cannot_start_message(
                        workers, sum(q.pid is not None for q in procs), exc)) from None
        for _, says in said:
            says.close()  # (each worker holds its own: one gone without a word reads EOF)
        threads = f", {next(iter(limits.values()))} BLAS/OpenMP threads each" \
            if limits else ""
        progress.message(f"Started {workers} worker processes on "
                         f"{tuner.oracle.store.location}{threads}.")
        # The arguments (often a data set) go through a pipe once the workers run, not
        # with the start: a large pickle would keep start() waiting, Ctrl-C ignored,
        # until each worker had imported the script and read it.
        for reader, writer in pipes:
            reader.close()
            with contextlib.suppress(OSError):  # a worker that already exited
                writer.send((args, kwargs))
            writer.close()
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(0.5 / workers)
            if any(p.exitcode == NO_MAIN_GUARD_EXIT for p in procs):
                _stop_workers(procs, stop, grace=0.0)
                raise FatalError(no_main_guard_message(workers))
            raised = next((p for p in procs if p.exitcode == _RAISED_EXIT), None)
            if raised is not None:
                # the search stops in every process, as in one: the others hand back
                # the trials they run, and search() raises what the worker raised
                progress.message(f"Worker {raised.name} stopped the search; stopping the "
                                 "other workers (their trials will run again).")
                _stop_workers(procs, stop, grace=0.0)
                if errors.empty():  # (it exits only after putting it)
                    raise FatalError(f"Worker {raised.name} stopped the search.")
                raise errors.get()
            if any(p.exitcode == _INTERRUPTED_EXIT for p in procs):
                # Ctrl-C reached a worker (this process may ignore it: a background job):
                # the search is interrupted, as at a terminal, not left to the others
                raise KeyboardInterrupt
            failed = [i for i, p in enumerate(procs)
                      if p.exitcode not in (None, 0) and not started[i]]
            if len(failed) == workers:  # none of them could run: say so, run nothing
                raise FatalError(_could_not_start_message(
                    workers, [procs[i].exitcode for i in failed]))
            progress.poll()
            for i, p in enumerate(procs):
                if p.exitcode in (None, 0, _INTERRUPTED_EXIT) or p.name in crashed or not (
                        started[i] or any(started)):  # (if none starts: said once, above)
                    continue
                crashed.append(p.name)
                progress.message(
                    f"Worker {p.name} exited with code {p.exitcode} after its search had "
                    "ended (it held no trial)." if started[i] == _ENDED else
                    f"Worker {p.name} exited with code {p.exitcode}; its trial will run "
                    "again." if started[i] else
                    f"Worker {p.name} could not start (exit code {p.exitcode}; its error "
                    "is printed above).")
        if any(p.exitcode == _INTERRUPTED_EXIT for p in procs):
            raise KeyboardInterrupt  # (interrupted after the loop's last look)
    except KeyboardInterrupt:  # (every worker hands its trial back, then says which)
        _stop_workers(procs, stop, grace=_STOP_GRACE)
        handed, tuner._unsaid = _handed_back(procs, said, started, crashed)
        tuner._handed_back = _as_now(tuner, handed)
        raise
    except BaseException:  # whatever stops this process stops its workers
        _stop_workers(procs, stop, grace=0.0)
        raise
    finally:
        _close_pipes(said)  # (each worker holds its own end)
    if crashed and len(crashed) == workers and not _search_is_over(tuner):
        # Every worker died (killed, out of memory): this process does not go on with the
        # whole search alone, silently, without the workers' thread limits. (Workers that
        # ended the search, then failed on their way out, leave nothing to do.)
        codes = ", ".join(str(p.exitcode) for p in procs)
        raise FatalError(f"All {workers} worker processes died (exit codes {codes}); their "
                         "trials will run again. Run the same command again to resume.")
    return bool(crashed)


def _handed_back(procs: list[Any], said: list[tuple[Any, Any]], started: Any,
                 crashed: list[str]) -> tuple[list[tuple[str, str]], int]:
    """Once the workers stopped after a Ctrl-C: the ``(trial_id, status)`` of each trial
    they handed back, and how many started workers said nothing (ended by force, holding
    a trial that runs again once found; one that crashed earlier was told of then)."""
    handed: list[tuple[str, str]] = []
    unsaid = 0
    for i, (p, (reader, _)) in enumerate(zip(procs, said)):
        told = None
        with contextlib.suppress(EOFError, OSError):  # (gone without a word)
            if reader.poll():
                told = reader.recv()
        if told is not None:
            handed.extend(told)
        elif started[i] == 1 and p.exitcode != 0 and p.name not in crashed:
            unsaid += 1
    return handed, unsaid


def _as_now(tuner: Tuner, handed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The trials the workers handed back, each with its status now: a worker still running
    as another handed a trial back may have taken that trial and ended it since."""
    now = []
    for trial_id, status in handed:
        with contextlib.suppress(Exception):  # (the status handed back, failing a read)
            status = tuner.oracle.get_trial(trial_id).status
        now.append((trial_id, status))
    return now


def _search_is_over(tuner: Tuner) -> bool:
    """Whether nothing of the search is left to run: no trial to start, none running,
    none waiting to run again."""
    oracle = tuner.oracle
    return (oracle.remaining_trials() == 0 and not oracle.project.running()
            and not oracle.project.creation_facts().queued)


def _stop_workers(procs: list[Any], stop: Any, grace: float) -> None:
    """Wait for worker processes to stop, each handing its trial back.

    ``stop`` is set first, for workers not yet taking Ctrl-C. A terminal sends Ctrl-C to
    the whole process group, so the running workers have it already: they get ``grace``
    seconds. Then SIGINT is forwarded to any still running (Ctrl-C may have been sent to
    this process alone), and after ``_STOP_DEADLINE`` seconds, or at a second Ctrl-C, the
    rest are terminated (their trials run again: a dead worker's trial is found by the next
    process that asks for one).
    """
    started = [p for p in procs if p.pid is not None]
    try:
        stop.set()
        deadline = time.monotonic() + grace
        for p in started:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in started:
            if p.is_alive():
                with contextlib.suppress(OSError):  # it ended in the meantime
                    os.kill(p.pid, signal.SIGINT)
        deadline = time.monotonic() + _STOP_DEADLINE
        for p in started:
            p.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting
    finally:
        for p in started:
            if p.is_alive():
                p.terminate()
                p.join(5)
