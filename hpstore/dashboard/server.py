"""The dashboard's web server: the standard library's threaded HTTP server, one reader thread.

Requests are taken by a thread each, but the search is read by one thread only, which
opened the store read-only and answers one request at a time: a sqlite3 connection belongs
to the thread that made it, and one reader at a time is all a search needs to be shown
(each answer is a few short queries; a slow client never holds the file). The server only
reads: GET and HEAD, a fixed set of paths, its own three files; no path of a request ever
reaches the file system.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hpstore import queries
from hpstore.dashboard.api import ENDPOINTS, Dashboard, explain, to_json
from hpstore.report.page import STYLE

#: the paths of the page (one page; its script shows what the path names)
PAGES = ("/", "/project", "/trial", "/compare")
#: the files the server serves, by path: everything it will ever send that is not an answer
ASSETS = {"/assets/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
          "/assets/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
SHELL = "index.html"
#: seconds an answer may take before the request gets a 503
ANSWER_TIMEOUT = 120.0
#: seconds a connection may wait to send its request, or to take in the answer, before it
#: is closed: each open connection holds a thread, and one that sends nothing (a client
#: gone without closing, or thousands opened on purpose) held it for good
IDLE_TIMEOUT = 60.0
#: query parameters a request may carry (a page sends a few; a plot draws at most five
#: selected trials)
MAX_FIELDS = 64
#: what the page may load and run: its own script and style, nothing inline but style
#: attributes (the plots' legends), no frames, no other site
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
          "frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def allowed_hosts(name: str) -> set[str]:
    """The host names a request to a server on this machine listening as ``name`` may be
    addressed to. Any port: a forward (``ssh -L 9000:127.0.0.1:8080``, an editor's or a
    container's) reaches it on a port of its own, and what keeps out a web page whose name
    was pointed at 127.0.0.1 (DNS rebinding) is the name, not the port."""
    return {"127.0.0.1", "localhost", "[::1]", name.lower()}


def host_name(header: str) -> str:
    """The host name of a Host header, its port left out ("[::1]:8080" is "[::1]")."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() else host


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_assets() -> dict[str, tuple[str, bytes]]:
    """(content type, bytes) of the page and its files, by path, read once from the
    package."""
    folder = resources.files("hpstore.dashboard") / "assets"
    shell = (folder / SHELL).read_bytes()
    out = {path: ("text/html; charset=utf-8", shell) for path in PAGES}
    for path, (name, kind) in ASSETS.items():
        out[path] = (kind, (folder / name).read_bytes())
    kind, own = out["/assets/dashboard.css"]  # the report's rules draw the plots and tables
    out["/assets/dashboard.css"] = (kind, STYLE.encode("utf-8") + own)
    return out


class _OneThread:
    """Calls run one at a time on a daemon thread of its own. A ThreadPoolExecutor's thread
    is joined as the interpreter ends: a Ctrl-C while the store opens (a server that does
    not answer) waited for its connect to time out, where every other tool stops at once."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hpstore-reader", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._calls.put((future, fn, args))
        return future

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn, args = call
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)

    def shutdown(self, *, wait: bool) -> None:
        """Cancel the calls not started, end the thread once its call in hand returns, and
        (``wait``) wait for that."""
        with contextlib.suppress(queue.Empty):
            while True:
                call = self._calls.get_nowait()
                if call is not None:
                    call[0].cancel()
        self._calls.put(None)
        if wait:
            self._thread.join()


class Reader:
    """The thread that holds the store: it opens it, answers every request in turn, and
    closes it.

    Raises (on creation):
        DatabaseError, NotAnHpstoreFileError: the search cannot be read.
        ProjectChoiceError: ``project`` is not in it.
    """

    def __init__(self, opener: Callable[[], Any], project: str | None) -> None:
        self._pool = _OneThread()
        try:
            self.dashboard: Dashboard = self._pool.submit(self._open, opener, project).result()
        except KeyboardInterrupt:
            self._pool.shutdown(wait=False)  # (the open in hand ends with the process)
            raise
        except BaseException:
            self._pool.shutdown(wait=True)
            raise

    @staticmethod
    def _open(opener: Callable[[], Any], project: str | None) -> Dashboard:
        store = opener()
        try:
            if project is not None:  # a wrong --project is an error now, not on every page
                queries.choose_project(store, project)
            return Dashboard(store, project, opener)
        except BaseException:
            store.close()
            raise

    def call(self, method: Callable[..., Any], *args: Any) -> Any:
        """``method(dashboard, *args)`` on the reader thread."""
        return self._pool.submit(self._answer, method, *args).result(ANSWER_TIMEOUT)

    def _answer(self, method: Callable[..., Any], *args: Any) -> Any:
        self.dashboard.renew()
        return method(self.dashboard, *args)

    def close(self) -> None:
        try:
            self._pool.submit(self.dashboard.store.close).result(ANSWER_TIMEOUT)
        finally:
            self._pool.shutdown(wait=True)


class Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "hpstore-dashboard"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(IDLE_TIMEOUT)

    def do_GET(self) -> None:
        self.answer(head=False)

    def do_HEAD(self) -> None:
        self.answer(head=True)

    def refuse_method(self) -> None:
        self.send(405, "text/plain; charset=utf-8",
                  b"The dashboard only reads: GET and HEAD.\n", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = refuse_method

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a request per second per page would drown the terminal

    def send(self, status: int, kind: str, body: bytes, *, head: bool = False,
             extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**HEADERS, "Content-Type": kind,
                            "Content-Length": str(len(body)), **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def answer(self, head: bool) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(head)  # (a page that went away before its answer needs none)

    def _answer(self, head: bool) -> None:
        if not self.server.host_allowed(self.headers.get("Host", "")):
            self.send(403, "text/plain; charset=utf-8",
                      b"This dashboard answers requests addressed to this machine's own "
                      b"names only (127.0.0.1, localhost, [::1]).\n", head=head)
            return
        parts = urlsplit(self.path)
        try:
            params = parse_qs(parts.query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError:  # more fields than any page sends
            self.send_error_json(400, f"More than {MAX_FIELDS} query parameters; the "
                                      "dashboard's pages send a few.", head)
            return
        asset = self.server.assets.get(parts.path)
        if asset is not None:
            self.send(200, asset[0], asset[1], head=head)
            return
        endpoint = ENDPOINTS.get(parts.path)
        if endpoint is None and parts.path != "/download":
            self.send(404, "text/plain; charset=utf-8", b"Not found.\n", head=head)
            return
        try:
            if endpoint is not None:
                body = to_json(self.server.reader.call(endpoint, params))
                self.send(200, "application/json; charset=utf-8", body, head=head)
                return
            name, kind, data = self.server.reader.call(Dashboard.download, params)
            self.send(200, f"{kind}; charset=utf-8", data, head=head, extra={
                "Content-Disposition": f'attachment; filename="{name}"'})
        except FutureTimeout:
            self.send_error_json(503, "The search took too long to read; try again.", head)
        except Exception as exc:  # every failure is an answer, never a dropped connection
            status, message = explain(exc)
            self.send_error_json(status, message, head)

    def send_error_json(self, status: int, message: str, head: bool) -> None:
        self.send(status, "application/json; charset=utf-8", to_json({"error": message}),
                  head=head)


class DashboardServer(ThreadingHTTPServer):
    """The HTTP server of one dashboard."""

    daemon_threads = True  # an open connection never keeps the process from stopping

    def __init__(self, host: str, port: int, reader: Reader) -> None:
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        except (socket.gaierror, UnicodeError) as exc:
            raise ValueError(f"Cannot listen on host {host!r}: {exc}. Give an address of "
                             "this machine, such as 127.0.0.1.") from None
        self.address_family = family
        self.reader = reader
        self.assets = load_assets()
        try:
            super().__init__((host, port), Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:  # the host is not this machine's
                raise ValueError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}; "
                                 "give an address of this machine as --host, such as "
                                 "127.0.0.1 (or 0.0.0.0 for every one).") from None
            raise ValueError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}; give "
                             "another --port (0 picks a free one).") from None
        self.port = int(self.server_address[1])
        self.loopback = is_loopback(host)
        name = f"[{host}]" if ":" in host else host
        self.url = f"http://{name}:{self.port}/"
        self.allowed = allowed_hosts(name)

    def host_allowed(self, host: str) -> bool:
        """Whether a request's Host header names this server. Bound to this machine only,
        the server answers its own names only, so that a web page whose name was pointed
        at 127.0.0.1 (DNS rebinding) cannot read the search through it."""
        return not self.loopback or host_name(host) in self.allowed


class Running:
    """A dashboard serving ``database`` on ``host``:``port`` (0: a free port).

    Raises:
        DatabaseError, NotAnHpstoreFileError: the search cannot be read.
        ProjectChoiceError: ``project`` is not in it.
        ValueError: the host or port cannot be listened on.
    """

    def __init__(self, opener: Callable[[], Any], *, host: str = "127.0.0.1", port: int = 8080,
                 project: str | None = None) -> None:
        self.reader = Reader(opener, project)
        try:
            self.server = DashboardServer(host, port, self.reader)
        except BaseException:
            self.reader.close()
            raise
        self.url = self.server.url
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        """Answer requests until :meth:`close` (or Ctrl-C in the calling thread)."""
        self.server.serve_forever(poll_interval=0.2)

    def start(self) -> Running:
        """Serve from a thread of its own (tests, notebooks)."""
        self._thread = threading.Thread(target=self.serve_forever, name="hpstore-dashboard",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering, then close the store."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()
        self.reader.close()

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
