"""A throwaway PostgreSQL server in a temporary folder: for tests and benchmarks.

``initdb`` and ``pg_ctl`` from the first place that has them: ``HPSTORE_PG_BIN``, Debian's
``/usr/lib/postgresql/*/bin`` (newest first), ``pg_config --bindir``, the ``PATH``, or the
``pgserver`` package (a PostgreSQL build shipped in a wheel; ``pip install
"hpstore[test]"`` brings it). The server listens on 127.0.0.1 on a free port and on a Unix
socket in its folder, trusts local connections, and is removed with its folder by
:meth:`Server.stop`. PostgreSQL refuses to run as root: as root, the server runs as the user
``postgres`` (or ``nobody``) through ``runuser``, with its binaries copied into its folder
when that user cannot reach them where they are installed.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from hpstore.errors import DatabaseError

#: settings of every throwaway server (-c name=value)
SETTINGS = {"listen_addresses": "127.0.0.1", "max_connections": "300",
            "shared_buffers": "64MB", "log_min_messages": "warning"}
#: what tests add: nothing they check needs the disk to be flushed
FAST = {"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"}


def find_binaries(only_package: bool = False) -> tuple[Path, Path | None]:
    """(the folder holding initdb, pg_ctl and postgres; the root of a pgserver install to
    copy along with it, or None). ``only_package``: pgserver's build, whatever else the
    machine has.

    Raises:
        DatabaseError: no PostgreSQL binaries were found, saying how to get them.
    """
    candidates = []
    if os.environ.get("HPSTORE_PG_BIN"):
        candidates.append(Path(os.environ["HPSTORE_PG_BIN"]))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                    else 0, reverse=True)
    candidates += [Path(p) for p in debian]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             encoding="utf-8", errors="replace", timeout=10,
                             check=True).stdout.strip()
        if out:
            candidates.append(Path(out))
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    for folder in [] if only_package else candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder, None
    spec = importlib.util.find_spec("pgserver")  # found without running its __init__
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        folder = package / "pginstall" / "bin"
        if (folder / "initdb").is_file():
            return folder, package.parent
    raise DatabaseError(
        "No PostgreSQL server binaries (initdb, pg_ctl) were found. Install the test extra "
        '(pip install -e ".[test]", which brings the pgserver package), PostgreSQL itself, '
        "or set HPSTORE_PG_BIN to the folder holding initdb.")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A PostgreSQL server of its own, started by :meth:`start`.

    Args:
        settings: more server settings (name -> value) on top of SETTINGS.
        only_package: run pgserver's build even where the machine has PostgreSQL.
    """

    def __init__(self, settings: dict[str, str] | None = None, *,
                 only_package: bool = False) -> None:
        self.settings = {**SETTINGS, **(settings or {})}
        self.only_package = only_package
        self.folder = Path(tempfile.mkdtemp(prefix="hpstore-pg-"))
        self.port = 0
        self.user: str | None = None  # the system user the server runs as (None: this one)
        self.bin = Path()
        self.started = False

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> str:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8",
                              errors="replace", timeout=timeout, cwd=self.folder,
                              check=False)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = (log.read_text(encoding="utf-8", errors="replace")[-2000:]
                    if log.exists() else "")
            raise DatabaseError(f"{args[0]} failed ({done.returncode}): "
                                f"{done.stderr.strip() or done.stdout.strip()}\n{tail}")
        return done.stdout

    def start(self) -> Server:
        """initdb, then pg_ctl start on a free port (tried again on another port when the
        one chosen was taken meanwhile).

        Raises:
            DatabaseError: the server could not be made or started.
        """
        binaries, package_root = find_binaries(self.only_package)
        self.bin = binaries
        if os.geteuid() == 0:
            self.user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if self.user is None:
                raise DatabaseError("PostgreSQL does not run as root, and neither the user "
                                    "postgres nor nobody exists to run it.")
            if package_root is not None or not _reachable(binaries, self.user):
                self.bin = _copy_install(binaries, package_root, self.folder / "install")
            uid = pwd.getpwnam(self.user).pw_uid
            os.chmod(self.folder, 0o755)
            os.chown(self.folder, uid, -1)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E",
                  "UTF8", "--no-sync", "--locale=C")
        for _ in range(5):
            self.port = free_port()
            try:
                self._pg_ctl("start")
                break
            except DatabaseError:
                if "could not bind" not in (self.folder / "server.log").read_text(
                        encoding="utf-8", errors="replace"):
                    raise
        else:
            raise DatabaseError("The throwaway PostgreSQL server found no free port.")
        self.started = True
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = " ".join([f"-p {self.port}", f"-k {self.folder}",
                            *(f"-c {k}={v}" for k, v in self.settings.items())])
        self._run("pg_ctl", action, "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-w", "-t", "60", "-o", options, *extra)

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m mode``: every connection is dropped, and the server is back
        when this returns."""
        self._pg_ctl("restart", "-m", mode)

    def stop(self) -> None:
        """Stop the server (dropping every connection) and remove its folder."""
        if self.started:
            with contextlib.suppress(DatabaseError, subprocess.SubprocessError):
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w",
                          timeout=60)
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _reachable(folder: Path, user: str) -> bool:
    """Whether ``user`` can run the binaries in ``folder`` (every folder above it must let
    others through)."""
    done = subprocess.run(["runuser", "-u", user, "--", str(folder / "pg_ctl"), "--version"],
                          capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def _copy_install(binaries: Path, package_root: Path | None, target: Path) -> Path:
    """Copy a PostgreSQL install where another user can run it; the new bin folder."""
    if package_root is not None:  # pgserver: its install and the libraries its RPATH names
        shutil.copytree(package_root / "pgserver" / "pginstall",
                        target / "pgserver" / "pginstall", symlinks=True)
        libs = package_root / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, target / "pgserver.libs", symlinks=True)
        copied = target / "pgserver" / "pginstall" / "bin"
    else:
        root = binaries.parent
        shutil.copytree(root, target / root.name, symlinks=True)
        copied = target / root.name / binaries.name
    for path in [target, *target.rglob("*")]:
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else
                       path.stat().st_mode | 0o444)
    return copied

