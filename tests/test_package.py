"""The package itself: its public names, and what importing it loads.

``import hpstore`` loads only the errors; every other public name is imported on first use
(PEP 562), so the ``hpstore`` command starts without numpy or the oracles, and a Ctrl-C
while a tool's modules load meets the command's own handler.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import hpstore

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, *args: str, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


def test_importing_hpstore_loads_neither_the_oracles_nor_numpy() -> None:
    done = _python("import sys, hpstore\n"
                   "print(sorted(m for m in sys.modules if m.startswith('hpstore')))\n"
                   "print('numpy' in sys.modules)\n"
                   "hpstore.RandomSearchOracle\n"
                   "print('hpstore.oracles' in sys.modules)\n"
                   "print(hpstore.store.open_store.__module__)")
    assert done.returncode == 0, done.stderr
    loaded, numpy, oracles, submodule = done.stdout.splitlines()
    assert loaded == "['hpstore', 'hpstore.errors']" and numpy == "False"
    assert oracles == "True"  # the first use of a name imports its module
    assert submodule == "hpstore.store"  # and of a subpackage, that subpackage


def test_every_public_name_is_the_object_its_module_defines() -> None:
    for module, names in hpstore._LAZY_MODULES.items():
        for name in names:
            assert getattr(hpstore, name) is getattr(importlib.import_module(module), name)
    star: dict[str, object] = {}
    exec("from hpstore import *", star)
    assert set(hpstore.__all__) <= set(star) and set(hpstore.__all__) <= set(dir(hpstore))
    with pytest.raises(AttributeError, match="no attribute 'RandomOracle'"):
        hpstore.RandomOracle  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'os'"):
        hpstore.os  # noqa: B018  (only hpstore's own modules are reached)


def test_the_modules_an_eager_import_made_attributes_still_are() -> None:
    # (import hpstore used to import these; code may use hpstore.store.open_store)
    done = _python("import hpstore, sys\n"
                   "for name in sorted(hpstore._SUBMODULES):\n"
                   "    assert getattr(hpstore, name) is sys.modules['hpstore.' + name]\n"
                   "print(hasattr(hpstore, 'keras'), hasattr(hpstore, 'dashboard'))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]  # never imported by a mere look


def test_type_checkers_see_the_same_names_from_the_same_modules() -> None:
    tree = ast.parse((ROOT / "hpstore" / "__init__.py").read_text())
    checked = next(node for node in tree.body if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    seen = {alias.name: node.module for node in checked.body
            if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert seen == hpstore._LAZY
    eager = {alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
             and node.module == "hpstore.errors" for alias in node.names}
    assert eager | set(seen) | {"__version__"} == set(hpstore.__all__)


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("package") / "search.db"
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=hp, seed=1,
                                        database=str(path))
    while (trial := oracle.create_trial("t")).status == "RUNNING":
        oracle.update_trial(trial.trial_id, {"loss": trial.hyperparameters.get("x")})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()
    return path


@pytest.mark.parametrize("command", [["summary"], ["trials"], ["best"], ["history"],
                                     ["check"], ["report"], ["sql", "SELECT 1"]])
def test_a_reading_tool_loads_neither_the_oracles_nor_numpy(search: Path, tmp_path: Path,
                                                            command: list[str]) -> None:
    done = _python("import sys\nfrom hpstore.cli import main\n"
                   "code = main([sys.argv[1], sys.argv[2], *sys.argv[3:]])\n"
                   "print(code, 'numpy' in sys.modules, 'hpstore.oracles' in sys.modules, "
                   "file=sys.stderr)", command[0], str(search), *command[1:],
                   cwd=tmp_path)  # (report writes its page here)
    assert done.stderr.splitlines()[-1] == "0 False False", done.stderr
    # it did its work (report -o says on stderr what it wrote)
    assert done.stdout or (command[0] == "report" and done.stderr.startswith("Wrote "))


def test_ctrl_c_while_a_tools_modules_load_is_one_line_and_exit_130() -> None:
    # The tool's loading is held at a gate (a line on stdin) so that SIGINT lands inside it.
    code = ("import sys\nimport hpstore.cli as cli\nload = cli.load_tool\n"
            "def held(name):\n"
            "    print('@loading', flush=True)\n"
            "    sys.stdin.readline()\n"
            "    return load(name)\n"
            "cli.load_tool = held\n"
            "sys.exit(cli.main(['summary', 'x.db']))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == "@loading\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "hpstore: interrupted\n", err


def test_no_statement_binds_numbered_placeholders() -> None:
    # Python 3.12.0-3.12.3 warn (an error under -W error) for ?1, ?2 bound from a tuple
    found = []
    for path in sorted((ROOT / "hpstore").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(
                    r"\?\d", node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_python_the_readme_names_is_the_one_the_package_requires() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (version,) = re.findall(r'^requires-python = ">=(3\.\d+)"$', pyproject, re.M)
    assert f"Python {version} or newer" in readme
    assert sys.version_info >= tuple(int(p) for p in version.split("."))


def test_the_version_is_written_once_and_the_licence_ships_with_the_sources() -> None:
    # pyproject.toml and hpstore/__init__.py each said 0.1.0, free to drift apart; the
    # sdist and the wheel named Apache-2.0 and held no copy of it
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    source = ROOT / config["tool"]["hatch"]["version"]["path"]
    assert f'__version__ = "{hpstore.__version__}"' in source.read_text(encoding="utf-8")
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert {"/LICENSE", "/.ci"} <= set(config["tool"]["hatch"]["build"]["targets"]["sdist"]
                                       ["include"])


def test_every_public_class_and_function_has_a_docstring_of_its_own() -> None:
    # help(hpstore.Int) showed "The shared part of Int and Float": Int's docstring stood
    # below a class attribute, so it was no docstring, and the base class's was inherited
    undocumented = []
    for name in hpstore.__all__:
        value = getattr(hpstore, name)
        if isinstance(value, type) and value.__module__.startswith("hpstore"):
            if not value.__dict__.get("__doc__"):
                undocumented.append(name)
        elif callable(value) and not getattr(value, "__doc__", None):
            undocumented.append(name)
    assert undocumented == []


@pytest.mark.parametrize("name", ["Oracle", "RandomSearchOracle", "GridSearchOracle",
                                  "BayesianOptimizationOracle", "HyperbandOracle"])
def test_an_oracles_signature_shows_its_arguments_and_their_defaults(name: str) -> None:
    # inspect.signature (and so help() and an editor's hints) showed (*args, **kwargs)
    # for the oracles without an __init__ of their own: Oracle.__new__ records the
    # arguments, and inspect took its signature for the class's
    import inspect

    oracle_class = getattr(hpstore, name)
    parameters = inspect.signature(oracle_class).parameters
    assert "self" not in parameters
    assert parameters["objective"].default is None
    if name in ("Oracle", "RandomSearchOracle", "GridSearchOracle"):
        assert parameters["database"].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters["durability"].default == "normal"
        assert parameters["project_name"].default == "untitled_project"
        assert parameters["max_consecutive_failed_trials"].default == 3

    class Own(hpstore.RandomSearchOracle):  # a user's subclass keeps its own
        def __init__(self, database: str, budget: int = 6) -> None:
            super().__init__("loss", max_trials=budget, database=database)

    assert list(inspect.signature(Own).parameters) == ["database", "budget"]
