"""psycopg, PostgreSQL URLs and the settings of hpstore's sessions, and what the server's
errors mean in words.

psycopg (version 3, ``pip install "hpstore[postgres]"``) is imported only when a
``postgresql://`` URL is used, so hpstore on SQLite never needs it. Every message shows the
URL without its password.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from hpstore.errors import (
    DatabaseError,
    EngineUnavailableError,
    ForeignSchemaError,
    HpStoreError,
    LockTimeoutError,
    ReadOnlyDatabaseError,
    ServerUnavailableError,
)

SCHEMES = ("postgresql://", "postgres://")

#: How soon each end of a connection notices the other has vanished (a machine switched
#: off, a cable pulled): TCP keepalive probes start after KEEPALIVE_IDLE seconds of silence
#: and are sent every KEEPALIVE_INTERVAL seconds; after KEEPALIVE_COUNT unanswered ones the
#: connection is dropped, and with it the worker's liveness lock. Unacknowledged data gives
#: up after the same time (tcp_user_timeout).
KEEPALIVE_IDLE = 5
KEEPALIVE_INTERVAL = 2
KEEPALIVE_COUNT = 3
VANISHED_AFTER = KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT  # seconds: 11
CONNECT_TIMEOUT = 10  # seconds one attempt to connect may take

#: a clock that only moves forward, whatever is done to the wall clock, and counts the
#: time the machine was suspended: CLOCK_BOOTTIME (Linux); CLOCK_MONOTONIC on another
#: Unix; time.monotonic where there is no clock_gettime (Windows, whose monotonic clock
#: counts suspended time)
if hasattr(time, "clock_gettime"):
    _STEADY_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)

    def steady() -> float:
        return time.clock_gettime(_STEADY_CLOCK)
else:  # pragma: no cover (Windows)
    steady = time.monotonic


def is_url(database: Any) -> bool:
    """Whether ``database`` names a PostgreSQL database (a libpq URL)."""
    return isinstance(database, str) and database.lower().startswith(SCHEMES)


#: query parameters of a URL that are never shown
_SECRETS = ("password", "sslpassword")


def _credentials(url: str) -> tuple[str | None, str]:
    """The URL's user info and what follows it, read as libpq reads them: the user info
    ends at the first "@" before the first "/" (so a password may hold a bare "#" or "?",
    which a URL parser takes for a fragment or the parameters); None when there is none.
    What follows leaves out any further "@" of the host part, and what precedes it (part
    of a password with a bare "@", which :func:`check_url_shape` refuses): never shown."""
    rest = url.split("://", 1)[-1]
    head = rest.split("/", 1)[0]
    userinfo, at, after = head.partition("@")
    if not at:
        return None, rest
    host, mark, params = after.partition("?")
    return userinfo, host.rpartition("@")[2] + mark + params + rest[len(head):]


def _second_at_in_host(url: str) -> bool:
    """Whether an "@" follows the user info's in the host part, or in a parameter that is
    no ``key=value`` (``me:a@b?c@host``): a password (or user name) holding a bare "@",
    part of which libpq would take for the host or its parameters."""
    userinfo, _ = _credentials(url)
    if userinfo is None:
        return False
    after = url.split("://", 1)[-1].split("/", 1)[0].partition("@")[2]
    host, _, params = after.partition("?")
    return "@" in host or any("@" in part and "=" not in part.partition("@")[0]
                              for part in params.split("&"))


def _password_cut_by_slash(url: str) -> bool:
    """Whether the URL may hold a password with a bare "/": an "@" after the first "/"
    with the user info before it (libpq ends the user info at a first "@" of the password,
    the host at its "/"), or with none, a ":" before it (outside an IPv6 address's
    brackets: libpq reads what follows as the port, a password's first part among them).
    A URL of a port and an "@" in a parameter (``db:5432/x?application_name=me@host``)
    reads so too: it is refused all the same, the "@" to be written %40, as a password
    can hold digits only."""
    rest = url.split("://", 1)[-1]
    if "/" not in rest:
        return False
    head, tail = rest.split("/", 1)
    if "@" not in tail:
        return False
    return "@" in head or ":" in re.sub(r"\[[^\]]*\]", "", head)


def redact(url: str, *, query: bool = False) -> str:
    """The URL without its password, for messages; ``query``: with its parameters (the
    schema chosen in ``options``, say) other than passwords, each as written."""
    if _password_cut_by_slash(url):
        return "postgresql://(a URL whose password may hold a bare '/')"
    if _second_at_in_host(url):  # the user name, and what follows the last "@"
        rest = url.split("://", 1)[-1]
        head = rest.split("/", 1)[0]
        name = head.partition("@")[0].split(":", 1)[0]
        url = f"postgresql://{name}@{head.rpartition('@')[2]}{rest[len(head):]}"
    try:
        userinfo, rest = _credentials(url)
        parts = urlsplit("postgresql://" + rest)
        # the hosts as written (several, with their ports, or an IPv6 address in brackets);
        # of the user info only the user name
        name = (userinfo or "").split(":", 1)[0]
        user = f"{name}@" if name else ""
        # each parameter as written: encoded again, a space would come back as "+",
        # which libpq reads as a plus sign (another schema in the options, say)
        kept = [part for part in parts.query.split("&")
                if part and unquote(part.split("=", 1)[0]).lower() not in _SECRETS
                ] if query else []
    except ValueError:
        return "postgresql://(an unreadable URL)"
    tail = "?" + "&".join(kept) if kept else ""
    return f"postgresql://{user}{parts.netloc}{parts.path}{tail}"


def check_url_shape(url: str) -> None:
    """Refuse a URL whose user name or password holds a bare "@" or "/": libpq would take
    part of it for the host, port or database (and its message would quote it).

    Raises:
        DatabaseError: saying to write it as %40 or %2F.
    """
    if _password_cut_by_slash(url):
        raise DatabaseError(
            "This PostgreSQL URL has an '@' after its first '/', as a password holding a "
            "bare '/' makes it (libpq would read part of the password as the host, port or "
            "database): write a '/' in a password as %2F (a/b as a%2Fb), and an '@' in a "
            "password or a parameter as %40, as URLs require.")
    if _second_at_in_host(url):
        raise DatabaseError(
            f"{redact(url)}: the user name or password in this URL holds an '@'; write it "
            "as %40 (a password a@b is written a%40b), as URLs require.")


def unquoted(text: str, url: str) -> str:
    """libpq's ``text`` about ``url`` without the parts of the URL it quotes (the whole
    URL, or a token of it: the password may be in either)."""
    def hide(found: re.Match[str]) -> str:
        part = found.group(1) if found.group(1) is not None else found.group(2)
        return '"(part of the URL)"' if len(part) > 2 and part in url else found.group(0)

    return re.sub(r'"([^"]*)"|\'([^\']*)\'', hide, text).strip()


def unknown_parameters(psycopg: Any, url: str) -> list[str]:
    """The names of the URL's query parameters libpq does not know, quoted; one that does
    not look like a keyword (a password typed where a name goes) is not shown."""
    try:
        known = {o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()}
        names = [k for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
    except (ValueError, AttributeError, psycopg.Error):
        return []
    return [repr(k) if re.fullmatch(r"[A-Za-z_]{1,40}", k) else "(a name not shown)"
            for k in names if k not in known]


def load_psycopg(url: str) -> Any:
    """The psycopg module.

    Raises:
        EngineUnavailableError: psycopg 3 (or the libpq it needs) is not installed.
    """
    try:
        import psycopg
    except ImportError as exc:
        raise EngineUnavailableError(
            f"{redact(url)} is a PostgreSQL database, which needs the driver psycopg 3: "
            'pip install "hpstore[postgres]" (and "psycopg[binary]" if this machine has no '
            f"libpq) ({exc}).") from None
    return psycopg


# What hpstore's own sessions set, whatever a role or a database sets for every session
# (Database.conninfo passes them on to connect_args). Timeouts a role or database may set,
# which would break hpstore's own connections: a liveness connection is idle between
# statements by design (closed after idle_session_timeout, its worker would be taken for
# dead and its trial run twice), the Bayesian oracle fits its model inside the decision's
# transaction, and a lock is waited for up to lock_timeout (statement_timeout would cut
# that wait short with no word of who holds it). Set for hpstore's sessions only; a URL's
# options may still set them.
# hpstore's write transactions also read what was committed before each of their
# statements (read committed: the state once its lock is held), whatever isolation a DBA
# made the default.
# Numbers come back as text: a role's or database's extra_float_digits of 0 or less (the
# default before PostgreSQL 12) would round every score, value and time hpstore reads,
# and a copy would store them rounded; 3 gives each float8 exactly.
# hpstore's schema is written for standard_conforming_strings (on since PostgreSQL 9.1): a
# database set off for an old application read its '\u0000' as a Unicode escape, and no
# worker could create the tables.
# hpstore.session, a setting of hpstore's own, says the options reached the server: a
# connection pooler may drop them (see POOLER).
SESSION_SETTINGS = ("-c statement_timeout=0", "-c idle_in_transaction_session_timeout=0",
                    "-c default_transaction_isolation=read\\ committed",
                    "-c extra_float_digits=3", "-c standard_conforming_strings=on",
                    "-c hpstore.session=on")
NO_IDLE_TIMEOUT = ("-c idle_session_timeout=0",)  # PostgreSQL 14 and newer


def connect_args(url: str, *, application: str, extra_options: tuple[str, ...] = ()) -> str:
    """The conninfo for ``url`` with hpstore's settings added where the URL sets none: TCP
    keepalives on both ends, a connect timeout, an application name naming this process.
    (A read-only store's sessions are made read-only once connected, not here: libpq's
    ``target_session_attrs=read-write`` would take a session made read-only by its
    options for a standby's, and refuse the primary.)

    Raises:
        DatabaseError: the URL cannot be read.
    """
    check_url_shape(url)
    psycopg = load_psycopg(url)
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        # libpq reads its schemes in lower case only; is_url takes any case
        scheme, rest = url.split("://", 1)
        params: dict[str, Any] = dict(conninfo_to_dict(f"{scheme.lower()}://{rest}"))
    except psycopg.ProgrammingError as exc:
        unknown = unknown_parameters(psycopg, url)
        if unknown:
            several = len(unknown) > 1
            raise DatabaseError(
                f"{redact(url)} is not a PostgreSQL URL libpq can read: it knows no "
                f"parameter{'s' if several else ''} {', '.join(unknown)}. A URL's "
                "parameters are libpq's connection keywords (sslmode, connect_timeout, "
                f"options, target_session_attrs, ...); correct or remove "
                f"{'them' if several else 'it'}.") from None
        raise DatabaseError(f"{redact(url)} is not a PostgreSQL URL libpq can read: "
                            f"{unquoted(str(exc), url)}.") from None
    client = {"keepalives": 1, "keepalives_idle": KEEPALIVE_IDLE,
              "keepalives_interval": KEEPALIVE_INTERVAL, "keepalives_count": KEEPALIVE_COUNT,
              "connect_timeout": CONNECT_TIMEOUT,
              "application_name": f"hpstore {application} {socket.gethostname()}:"
                                  f"{os.getpid()}"[:63]}
    if psycopg.pq.version() >= 120000:  # libpq knows tcp_user_timeout
        client["tcp_user_timeout"] = VANISHED_AFTER * 1000
    for key, value in client.items():
        params.setdefault(key, value)
    # hpstore's text is Unicode: a server's SQL_ASCII (psycopg would hand back bytes) or a
    # role's LATIN1 client encoding would break every session
    params["client_encoding"] = "UTF8"
    # The server's own end of the connection: its keepalives decide how soon a vanished
    # worker's liveness lock is released. Added after the URL's options, so it can still
    # set any of them.
    server = [f"-c tcp_keepalives_idle={KEEPALIVE_IDLE}",
              f"-c tcp_keepalives_interval={KEEPALIVE_INTERVAL}",
              f"-c tcp_keepalives_count={KEEPALIVE_COUNT}",
              f"-c tcp_user_timeout={VANISHED_AFTER * 1000}", *extra_options]
    given = str(params.get("options") or "")
    params["options"] = " ".join(o for o in [*server, given] if o)
    return str(make_conninfo(**params))


def storable(message: str | None) -> str | None:
    """A trial's message as PostgreSQL's text can hold it: the NUL character (a traceback
    quoting binary data, say) as the escape ``\\x00``, where a file keeps it as it is. A
    message is what the run said of itself: refusing it would leave the trial running. (A
    note copied from a file written before notes with a NUL were refused, too.)"""
    return message.replace("\x00", "\\x00") if message and "\x00" in message else message


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None)


def connection_lost(conn: Any, exc: BaseException) -> bool:
    """Whether ``exc`` means the connection itself is gone (dropped, server restarted or
    shut down, backend terminated), as opposed to an error in a statement."""
    import psycopg

    if conn is not None and (conn.closed or conn.broken):
        return True
    state = sqlstate(exc) or ""
    # 57P01..57P03: admin shutdown, crash shutdown, cannot connect now; 08xxx: connection
    return isinstance(exc, psycopg.OperationalError) and (
        state.startswith("08") or state in ("57P01", "57P02", "57P03") or not state)


#: what the server says of a connection refused for want of a free slot (SQLSTATE 53300)
_TOO_MANY = ("too many clients", "too many connections", "remaining connection slots")
#: ... and of one refused for now: starting up, shutting down, recovering (SQLSTATE 57P03)
_NOT_NOW = ("is starting up", "is shutting down", "in recovery mode", "not yet accepting")
#: ... and of one the URL's settings make impossible: no later try would succeed
_SETTINGS = ("does not support SSL", "SSL was required", "SSL is not enabled")
#: ... and of one whose SSL settings (or other keywords) are wrong: no wait mends a URL
_URL_WRONG = ("root certificate file", "does not match host name", "invalid sslmode",
              "certificate verify failed", "private key file", "certificate file",
              "invalid connection option", "invalid integer value", "invalid value for",
              "bad value for")
#: ... and of a connection pooler refusing the options hpstore's sessions are opened with
_POOLED = ("unsupported startup parameter",)
#: What hpstore needs of a session, and why a connection pooler cannot give it.
POOLER = (
    "hpstore needs a session of its own on the server: each worker holds a lock on an idle "
    "connection for as long as it lives (in a pool's transaction or statement mode that "
    "lock is left on whichever server connection ran it, and live workers were taken for "
    "dead), and opens its sessions with settings of its own (no statement or idle timeout "
    "cutting a worker off, TCP keepalives that drop a vanished worker's lock), which a "
    "pooler refuses or drops. Connect the workers to the server itself (its own port, "
    "often 5432), not through PgBouncer or a cloud provider's pooled endpoint.")


def explain_connect(exc: BaseException, where: str) -> HpStoreError:
    """A connection that could not be opened, in words: a ServerUnavailableError when
    the server was not reached, or said to come back later (it refused nothing)."""
    text = first_line(exc)
    if sqlstate(exc) or any(t in text for t in _TOO_MANY):
        return explain(exc, where)
    if any(t in text for t in _SETTINGS):  # the URL asks what this server does not do
        return DatabaseError(f"Cannot connect to {where}: {text}. Change the URL's sslmode "
                             "(or the server's SSL settings).")
    if any(t in text for t in _URL_WRONG):  # (not the server out of reach: the URL)
        return DatabaseError(f"Cannot connect to {where}: {text}. Correct the URL (its "
                             "sslmode, sslrootcert, or the host name the server's "
                             "certificate names): trying again would not change it.")
    if any(t in text for t in _POOLED):
        return DatabaseError(f"Cannot connect to {where}: {text} (a connection pooler "
                             f"refused hpstore's session settings). {POOLER}")
    if "FATAL:" not in text or any(t in text for t in _NOT_NOW):
        return ServerUnavailableError(f"Cannot connect to {where}: {text}.")
    return DatabaseError(f"Cannot connect to {where}: {text}.")  # refused: a role, a password


#: seconds a new connection waits for a server that said it is starting up or shutting
#: down (a restart under way), through the refusals of the moment it is down
RESTART_WAIT = 30.0


def connect(psycopg: Any, conninfo: str, where: str, stop: threading.Event | None = None
            ) -> Any:
    """A new autocommit connection. A server that says it is starting up or shutting down
    is restarting: it is waited for, up to RESTART_WAIT seconds (or until ``stop`` is
    set), as a dropped connection is (a worker started at that moment stopped at once).

    Raises:
        DatabaseError: the server refused it (ServerUnavailableError: it was not reached,
            or said to come back later, and was still out of reach after the wait).
    """
    deadline, pause = None, 0.05
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            error = explain_connect(exc, where)
            not_now = any(t in first_line(exc) for t in _NOT_NOW)
            if not not_now and _SERVER_SAID.search(first_line(exc)) and _refused_for_now(
                    psycopg, conninfo):
                not_now = True  # (said in the server's language: see _refused_for_now)
                error = ServerUnavailableError(
                    f"Cannot connect to {where}: {first_line(exc)}. (The server takes no "
                    "connection for now: it is starting up, shutting down or recovering.)")
            restarting = deadline is not None or not_now
            if not isinstance(error, ServerUnavailableError) or not restarting:
                raise error from None
            if deadline is None:
                deadline = time.monotonic() + RESTART_WAIT
            elif time.monotonic() >= deadline:
                raise error from None
            if stop is not None and stop.wait(pause):  # the caller is closing: no more
                raise error from None
        if stop is None:
            time.sleep(pause)  # the server restarting: try again shortly
        pause = min(pause * 2, 1.0)


#: a refusal the server sent: libpq writes "SEVERITY:  text" (two spaces), the severity in
#: the server's language too ("FATAL", but "ВАЖНО", "FATALE", "致命错误"...); a connection
#: that reached no server ("failed: Connection refused") has no such part
_SERVER_SAID = re.compile(r"(?:^|: )[^\s:][^:\n]*:  \S")


def _refused_for_now(psycopg: Any, conninfo: str) -> bool:
    """Whether the server refuses connections for now (SQLSTATE 57P03: starting up,
    shutting down, recovering). A refusal as a connection opens carries no SQLSTATE, only
    its text, which the server writes in the language of its lc_messages (initdb takes
    the machine's: "das Datenbanksystem startet"); libpq's ping reads the SQLSTATE."""
    ping = getattr(getattr(psycopg.pq, "PGconn", None), "ping", None)
    if ping is None:  # (an older psycopg)
        return False
    try:
        return bool(ping(conninfo.encode()) == psycopg.pq.Ping.REJECT)
    except Exception:
        return False


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: SQLSTATEs of a statement naming a table, column, function or schema that is not there
#: (undefined_table, undefined_column, undefined_function, invalid_schema_name): hpstore's
#: own statements meet them only in a schema changed by hand since it was checked at open
UNDEFINED = ("42P01", "42703", "42883", "3F000")


def schema_changed(what: str, why: str) -> ForeignSchemaError:
    """The refusal of one of hpstore's statements naming an object that is not there."""
    return ForeignSchemaError(
        f"{what} is not as hpstore writes it ({why.rstrip('.')}): a table, column or "
        "function of hpstore's was dropped or renamed by hand. Nothing of the failed step "
        "was recorded; restore it from a backup (pg_dump) and run again to resume.")


def lock_timeout_given(url: str, timeout: float) -> str | None:
    """What a lock timeout's message says when the URL's ``options`` (or the PGOPTIONS
    variable) set a lock_timeout, which wins over hpstore's own (``timeout`` seconds); None
    when neither sets one."""
    for options in (unquote(url.split("?", 1)[1]) if "?" in url else "",
                    os.environ.get("PGOPTIONS", "")):
        found = re.search(r"-c\s*lock_timeout\s*=\s*([^\s&]+)", options)
        if found:
            return (f"The URL's options (or PGOPTIONS) set lock_timeout to {found.group(1)}, "
                    f"where hpstore's sessions wait up to {timeout:g} s for a lock, then "
                    "name who holds it: remove it from the URL.")
    return None


def explain(exc: BaseException, where: str) -> HpStoreError:
    """A psycopg error as an hpstore error that says what happened and what to do."""
    state = sqlstate(exc) or ""
    text = first_line(exc)
    if state in UNDEFINED:
        return schema_changed(f"The schema of {where}", text)
    if state == "25006":  # read_only_sql_transaction
        return ReadOnlyDatabaseError(f"{where} is open read-only here: nothing is written "
                                     f"({text}).")
    if state == "57014":  # query_canceled: a cancel request, or a URL's statement_timeout
        why = ("the URL's options set statement_timeout, which hpstore's sessions otherwise "
               "turn off: remove it; a lock is waited for up to 60 s, then named"
               if "statement timeout" in text else "pg_cancel_backend, by an administrator "
               "or a tool")
        return DatabaseError(f"The server cancelled a statement of this process on {where} "
                             f"({text}; {why}). Nothing of the step it was part of was "
                             "recorded; run again to resume.")
    if state == "55P03":  # lock_not_available: lock_timeout
        return LockTimeoutError(f"Waiting for a lock on {where} took too long ({text}).")
    if state.startswith("42501") or state == "42501":
        return DatabaseError(f"The role connecting to {where} lacks a privilege hpstore "
                             f"needs ({text}). Grant it, or connect as the database's owner.")
    if state == "53100":
        return DatabaseError(f"The disk of the PostgreSQL server of {where} is full ({text}). "
                             "Nothing of the failed step was kept; free some space and run "
                             "again to resume.")
    # (a connection refused as it opens carries no SQLSTATE: its message says why)
    if state == "53300" or (not state and any(t in text for t in _TOO_MANY)):
        return ServerUnavailableError(
            f"{where} refused the connection: too many clients ({text}). Each hpstore "
            "worker process holds two connections (its work and its liveness lock); raise "
            "the server's max_connections (or the CONNECTION LIMIT of the role or "
            "database), or run fewer workers.")
    if state in ("3D000", "28000", "28P01") or state.startswith("08"):
        return DatabaseError(f"Cannot connect to {where}: {text}.")
    if state == "22P05":  # untranslatable_character: a name the encoding has not
        return DatabaseError(
            f"{where} cannot store a name or text given ({text.rstrip('.')}): the "
            "database's encoding has no such character. Use names written in characters it "
            "holds, or a "
            "database whose encoding is UTF8 (CREATE DATABASE name ENCODING 'UTF8' "
            "TEMPLATE template0). Nothing of the failed step was recorded.")
    if "NUL" in text and ("0x00" in text or "\\u0000" in text):
        return DatabaseError(
            f"PostgreSQL cannot store the NUL character (\\x00) in a text column ({text}): "
            "remove it from the name or text given. Nothing was recorded.")
    return DatabaseError(f"PostgreSQL failed on {where}: {text}.")
