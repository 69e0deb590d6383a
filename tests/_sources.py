"""The project's own source files, for the tests that read them (test_security.py,
test_sql_text.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: every Python file of the package and of the tools
SOURCES = sorted([*(ROOT / "hpstore").rglob("*.py"), *(ROOT / "tools").rglob("*.py")])


def rel(path: Path) -> str:
    """``path`` relative to the repository (a file outside it: its name)."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
