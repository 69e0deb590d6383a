"""Security: nothing a user typed is formatted into SQL text.

Every call that sends SQL (execute, executemany, executescript, query, stream) in hpstore
and tools/ has its SQL argument followed back to its constant pieces; what cannot be
followed must be listed below with the reason no user data can reach it.
"""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest
from _faults import digest
from _sources import ROOT, SOURCES, rel
from _workers import open_oracle

from hpstore.store import open_store


def fold_wal(path: Path) -> None:
    """Checkpoint the WAL into the main file, so the file alone is the whole search."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


SQL_SINKS = {"execute", "executemany", "executescript", "query", "stream", "ask_once"}

# Every dynamic piece of SQL text left after constants are followed, with why no user data
# can reach it. (file, function, source of the piece).
ALLOWED_SQL_PIECES = {
    ("hpstore/store/sqlite/database.py", "query", "sql"):
        "Database.query passes on its argument; its callers are sinks checked here too",
    ("hpstore/store/postgresql/liveness.py", "_take_new", "sql"):
        "the query function handed to diagnosis.lock_holders passes on its argument, that "
        "module's constant statements",
    ("hpstore/store/sqlite/database.py", "_migrate", "migration_script(path)"):
        "the text of hpstore's own numbered migration files in schema/",
    ("hpstore/store/sqlite/database.py", "_migrate", "migrations()"):
        "(number, path) of hpstore's migration files: the number is an int parsed from the "
        "file name",
    ("hpstore/store/sqlite/schema.py", "expected", "migration_script(path)"):
        "the text of hpstore's own migration files, run on an in-memory database to learn the "
        "schema they make",
    ("hpstore/store/sqlite/readonly.py", "_upgraded_copy",
     "migration_script(migration)"):
        "the text of hpstore's own migration files, run on an in-memory copy of an older file",
    ("hpstore/store/sqlite/readonly.py", "_upgraded_copy", "migrations()"):
        "(number, path) of hpstore's migration files: the number is an int parsed from the "
        "file name",
    ("hpstore/store/sqlite/readonly.py", "query", "sql"):
        "ReadOnlyDatabase.query passes on its argument; its callers are sinks checked here too",
    ("hpstore/store/sqlite/readonly.py", "run_user_sql", "query"):
        "hpstore sql runs the user's own query, on a mode=ro, query_only connection that "
        "cannot attach another file (test_sql_refuses_every_write)",
    ("hpstore/store/postgresql/database.py", "query", "sql"):
        "Database.query passes on its argument; its callers are sinks checked here too",
    ("hpstore/store/postgresql/database.py", "write", "sql"):
        "Database.write passes on its argument; its callers are sinks checked here too",
    ("hpstore/store/postgresql/database.py", "ask_once", "sql"):
        "Database.ask_once passes on its argument; its callers are sinks checked here too",
    **{("hpstore/store/postgresql/database.py", function, piece):
       "a statement handed to Database.transaction or Database.at_once by the engine's own "
       "modules: an opening statement, one sent ahead of its lock, or a Closing (sql, "
       "recover) built there from constants (deciding.py's _DECISION_FACTS, _RUNNING_LIVES, "
       "_INSERT_TRIAL and _INSERT_AHEAD), the "
       "values bound as parameters; _together sends those, with BEGIN, COMMIT and the lock "
       "statement written in _open, _run and at_once"
       for function, piece in (
           ("transaction", "*opening"), ("transaction", "*before"), ("transaction", "result.sql"),
           ("_run", "*result.recover"),
           ("landed", "*last.recover"), ("_together", "statements"))},
    ("hpstore/store/postgresql/schema.py", "apply", "path.read_text(encoding='utf-8')"):
        "the text of hpstore's own numbered PostgreSQL migration files in schema/postgresql/",
    ("hpstore/store/postgresql/usersql.py", "run_user_sql", "query"):
        "hpstore sql runs the user's own query as one statement (extended protocol) in a READ ONLY "
        "transaction of a read-only connection (test_postgresql_tools.py)",
    **{("hpstore/store/postgresql/admin.py", function, piece):
       "a schema or database name quoted as an identifier by psycopg.sql.Identifier"
       for function, piece in (
           ("create_database", "sql.SQL('CREATE DATABASE {}').format(_name(database))"),
           ("create_schema", "sql.SQL('CREATE SCHEMA {}').format(_name(schema))"),
           ("drop_database",
            "sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)').format(_name(database))"),
           ("drop_schema", "sql.SQL('DROP SCHEMA IF EXISTS {} CASCADE').format(_name(schema))"),
       )},
}


class _SqlText:
    """Follows the SQL argument of a call back to its constant pieces; what it cannot follow
    is a dynamic piece (recorded as its source text)."""

    def __init__(self, module: ast.Module) -> None:
        self.constants: dict[str, ast.expr] = {}
        #: names imported from another hpstore module: followed into that module
        self.imported: dict[str, tuple[str, str]] = {}
        for node in module.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hpstore"):
                for alias in node.names:
                    self.imported[alias.asname or alias.name] = (node.module or "", alias.name)
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.constants[target.id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                    and node.value is not None:
                self.constants[node.target.id] = node.value

    def pieces(self, node: ast.AST, func: ast.AST | None, seen: frozenset[str] = frozenset()
               ) -> set[str]:
        if isinstance(node, ast.Constant):
            return set()
        if isinstance(node, ast.JoinedStr):
            return set().union(set(), *(self.pieces(v, func, seen) for v in node.values))
        if isinstance(node, ast.FormattedValue):
            return self.pieces(node.value, func, seen)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            return self.pieces(node.left, func, seen) | self.pieces(node.right, func, seen)
        if isinstance(node, ast.IfExp):
            return self.pieces(node.body, func, seen) | self.pieces(node.orelse, func, seen)
        if isinstance(node, (ast.Tuple, ast.List)):
            return set().union(set(), *(self.pieces(e, func, seen) for e in node.elts))
        if isinstance(node, ast.Dict):
            return set().union(set(), *(self.pieces(v, func, seen) for v in node.values))
        if isinstance(node, ast.Subscript):  # one of a fixed table of texts
            return self.pieces(node.value, func, seen)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("int", "float", "len"):
            return set()  # a number cannot carry SQL
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "join" and isinstance(node.func.value, ast.Constant) \
                and len(node.args) == 1 and isinstance(node.args[0], ast.GeneratorExp) \
                and isinstance(node.args[0].elt, ast.Constant):
            return set()  # ", ".join("?" for _ in ...): placeholders only
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "join" and isinstance(node.func.value, ast.Constant) \
                and len(node.args) == 1 and not isinstance(node.args[0], ast.GeneratorExp):
            return self.pieces(node.args[0], func, seen)  # constant texts joined
        if isinstance(node, ast.Name) and node.id in self.imported and node.id not in seen \
                and self._bindings(node.id, func) is None:
            module, name = self.imported[node.id]
            other = _module_text(module)
            if other is not None and name in other.constants:
                return other.pieces(other.constants[name], None, frozenset({name}))
        if isinstance(node, ast.Name) and node.id not in seen:
            bound = self._bindings(node.id, func)
            if bound is not None:
                seen = seen | {node.id}
                return set().union(set(), *(self.pieces(b, func, seen) for b in bound))
        return {ast.unparse(node)}

    def _bindings(self, name: str, func: ast.AST | None) -> list[ast.AST] | None:
        """What ``name`` is bound to in ``func`` (or at module level); None when it is a
        parameter or bound by something this does not follow."""
        if func is not None:
            found: list[ast.AST] = []
            for node in ast.walk(func):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Name) and target.id == name:
                            found.append(node.value)
                        elif isinstance(target, ast.Tuple) and name in {
                                getattr(e, "id", None) for e in target.elts}:
                            index = [getattr(e, "id", None) for e in target.elts].index(name)
                            same = isinstance(node.value, ast.Tuple) and len(
                                node.value.elts) == len(target.elts)
                            found.append(node.value.elts[index] if same else node.value)
                elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) \
                        and node.target.id == name:
                    found.append(node.value)
                elif isinstance(node, (ast.For, ast.comprehension)) and name in {
                        n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}:
                    found.append(node.iter)  # an element of a constant table is constant
                elif isinstance(node, ast.arg) and node.arg == name:
                    return None
            if found:
                return found
        if name in self.constants:
            return [self.constants[name]]
        return None


def _module_text(module: str) -> _SqlText | None:
    """The constants of an hpstore module, read from its source."""
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    if not path.is_file():
        return None
    return _SqlText(ast.parse(path.read_text(encoding="utf-8")))


def dynamic_sql_pieces(path: Path) -> set[tuple[str, str, str]]:
    module = ast.parse(path.read_text(encoding="utf-8"))
    text = _SqlText(module)
    owner: dict[ast.AST, ast.AST] = {}
    for func in ast.walk(module):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                owner[node] = func  # innermost wins: ast.walk visits outer functions first
    found = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in SQL_SINKS and node.args:
            func = owner.get(node)
            name = getattr(func, "name", "<module>")
            for piece in text.pieces(node.args[0], func):
                found.add((rel(path), name, piece))
    return found


def test_sql_text_is_built_from_constants_only():
    found = set().union(*(dynamic_sql_pieces(p) for p in SOURCES))
    assert found - set(ALLOWED_SQL_PIECES) == set(), (
        "SQL text built from something not constant; use a bound parameter, or justify it in "
        "ALLOWED_SQL_PIECES")
    assert set(ALLOWED_SQL_PIECES) <= found, "an allowed piece is gone; drop it from the list"


def test_sql_scanner_sees_formatting(tmp_path):
    """The scanner above is not blind: each way of formatting text into SQL is caught."""
    source = tmp_path / "sample.py"
    source.write_text(
        "TABLE = 'trials'\n"
        "def f(conn, name, rows):\n"
        "    conn.execute(f'SELECT * FROM {TABLE} WHERE name = ?', (name,))\n"
        "    conn.execute(f'SELECT * FROM trials WHERE name = {name!r}')\n"
        "    conn.execute('SELECT * FROM trials WHERE name = %s' % name)\n"
        "    conn.execute('SELECT * FROM {}'.format(name))\n"
        "    sql = 'SELECT ' + name\n"
        "    conn.executemany(sql, rows)\n"
        "    where = 'x = ?' if rows else 'y = ?'\n"
        "    conn.execute(f'SELECT 1 WHERE {where}')\n"
        "    for column in rows:\n"
        "        conn.execute(f'SELECT {column} FROM trials')\n", encoding="utf-8")
    found = {piece for _, _, piece in dynamic_sql_pieces(source)}
    assert found == {"name", "'SELECT * FROM {}'.format(name)", "rows"}


def test_allowed_sql_pieces_refuse_user_text(tmp_path):
    """The pieces chosen from fixed tables refuse anything else, and the file is unchanged."""
    path = tmp_path / "search.db"
    open_oracle(str(path), max_trials=3).close()
    fold_wal(path)
    before = digest(path)
    store = open_store(str(path))
    project = store.open_project(store.projects()[0])
    with pytest.raises(TypeError):  # settings are named arguments, never SQL text
        project.update_settings(**{"max_trials = 0, seed": 1})
    with pytest.raises(ValueError, match="order must be one of"):
        project.trials(order="number; DROP TABLE trials")
    store.close()
    with pytest.raises(ValueError, match="durability"):
        open_store(str(path), durability="normal; DROP TABLE trials")
    fold_wal(path)
    assert digest(path) == before
