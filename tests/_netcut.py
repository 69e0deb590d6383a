"""A TCP proxy between hpstore and the PostgreSQL server that cuts a connection at a chosen
moment: a network that fails while a statement or a COMMIT is on its way, or after the
server did it but before its answer came back (the case a client cannot tell from the
first without asking the server).
"""

from __future__ import annotations

import contextlib
import socket
import threading

READY = b"Z\x00\x00\x00\x05"  # ReadyForQuery: the server has answered a whole request


class Proxy:
    """Listens on 127.0.0.1 and relays every connection to ``port``.

    ``cut(pattern, deliver)`` arms a single cut: the first message from a client holding
    ``pattern`` is delivered to the server and its whole answer swallowed (``deliver``
    True), or dropped unsent (False); then that connection is closed both ways.
    """

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.pattern: bytes | None = None
        self.deliver = True
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._down = False
        self._links: list[_Link] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        """The server out of reach (restarting): every link cut, new ones refused."""
        with self._lock:
            self._down = True
            links, self._links = self._links, []
        for link in links:
            link.close()

    def up(self) -> None:
        """The server back: connections go through again."""
        with self._lock:
            self._down = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def cut(self, pattern: bytes, *, deliver: bool) -> None:
        with self._lock:
            self.pattern, self.deliver = pattern, deliver
            self.done.clear()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                down = self._down
            if down:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._upstream, args=(link,), daemon=True).start()
            threading.Thread(target=self._downstream, args=(link,), daemon=True).start()

    def _take(self, chunk: bytes) -> bool:
        with self._lock:
            if self.pattern is not None and self.pattern in chunk:
                self.pattern = None
                return True
        return False

    def _upstream(self, link: _Link) -> None:
        with contextlib.suppress(OSError):
            while chunk := link.client.recv(65536):
                if not self._take(chunk):
                    link.server.sendall(chunk)
                    continue
                if not self.deliver:
                    link.close()
                    self.done.set()
                    return
                link.swallow.set()  # before it is sent: its answer must not get through
                # what follows still goes through (a pipeline's Sync, sent on its own,
                # makes the server answer): only the answers are lost
                link.server.sendall(chunk)
        link.close()

    def _downstream(self, link: _Link) -> None:
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := link.server.recv(65536):
                if not link.swallow.is_set():
                    link.client.sendall(chunk)
                    continue
                answer += chunk
                if READY in answer:  # the server did it all, and answered: cut now
                    break
        link.close()
        if link.swallow.is_set():
            self.done.set()

    def close(self) -> None:
        """Stop taking connections: a new one is refused from now on."""
        self._closed = True
        # (closing alone leaves the socket listening while _accept waits in accept())
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


class _Link:
    """One relayed connection."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.swallow = threading.Event()

    def close(self) -> None:
        for s in (self.client, self.server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
