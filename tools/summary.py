"""hpstore summary DB: the projects in a file, and for one: objective, counts per status,
best trial and search space."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from hpstore.inspection import choose_project, connect_readonly, projects, run_tool, tool_parser
from hpstore.rendering import terminal_text


def show_value(value: Any) -> str:
    """A hyperparameter value as a person writes it: 0.001, relu, True."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def show_values(values: Mapping[str, Any]) -> str:
    """name=value pairs, in the order stored."""
    return ", ".join(f"{k}={show_value(v)}" for k, v in values.items()) or "(none)"


def describe_hyperparameter(class_name: str, config: Mapping[str, Any]) -> str:
    """What a hyperparameter ranges over: ``1e-05 .. 0.1 (log)``, ``a, b, c`` or ``3``."""
    default = config.get("default")
    if class_name in ("Int", "Float"):
        lo, hi = config.get("min_value"), config.get("max_value")
        text = f"{show_value(lo)} .. {show_value(hi)}"
        if config.get("step") is not None and not (class_name == "Int" and
                                                    config["step"] == 1):
            text += f" step {show_value(config['step'])}"
        if config.get("sampling") not in (None, "linear"):
            text += f" ({config['sampling']})"
        if default is not None and default != lo:
            text += f", default {show_value(default)}"
        return text
    if class_name == "Choice":
        values = list(config.get("values") or [])
        text = ", ".join(show_value(v) for v in values)
        if values and default is not None and default != values[0]:
            text += f"; default {show_value(default)}"
        return text
    if class_name == "Boolean":
        return f"True, False; default {show_value(bool(default))}"
    if class_name == "Fixed":
        return show_value(config.get("value"))
    rest = {k: v for k, v in config.items() if k not in ("name", "conditions")}
    return ", ".join(f"{k}={show_value(v)}" for k, v in rest.items())


def describe_conditions(conditions: Any) -> str:
    """``when model in [mlp, cnn]`` for each condition, joined by "and"."""
    parts = []
    for cond in conditions if isinstance(conditions, list) else []:
        inner = cond.get("config", {}) if isinstance(cond, Mapping) else {}
        values = inner.get("values", [])
        listed = ", ".join(show_value(v) for v in (values if isinstance(values, list)
                                                    else [values]))
        parts.append(f"when {inner.get('name')} in [{listed}]")
    return " and ".join(parts)


def space_lines(rows: list[tuple[str, str, str]]) -> list[str]:
    """One aligned line per hyperparameter: name, class, range, conditions."""
    table = []
    for name, class_name, config_text in rows:
        config = json.loads(config_text)
        when = describe_conditions(config.get("conditions"))
        table.append([terminal_text(name), terminal_text(class_name),
                      terminal_text(describe_hyperparameter(class_name, config)),
                      terminal_text(when)])
    if not table:
        return ["  (no hyperparameters yet)"]
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, [*widths, 0])).rstrip()
            for r in table]


def main(argv: list[str] | None = None) -> int:
    args = tool_parser("summary", __doc__).parse_args(argv)
    conn = connect_readonly(args.database)
    names = projects(conn)
    print(terminal_text(f"{args.database}: {len(names)} project(s): "
                        f"{', '.join(names) or '(none)'}"))
    if len(names) > 1 and args.project is None:
        print("Choose one with --project NAME for its details.")
        return 0
    pid, name = choose_project(conn, args.project)
    cls, config, objective, max_trials, seed = conn.execute(
        "SELECT oracle_class, oracle_config, objective, max_trials, seed FROM projects "
        "WHERE project_id = ?", (pid,)).fetchone()
    objective = json.loads(objective)
    if "objectives" in objective:
        text = " + ".join(f"{o['name']} ({o['direction']})" for o in objective["objectives"])
    else:
        text = f"{objective['name']} ({objective['direction']})"
    print()
    print(terminal_text(f"Project {name!r}: {cls}, objective {text}, max_trials "
                        f"{max_trials if max_trials is not None else 'none'}, seed {seed}"))
    search = json.loads(config).get("search") or {}
    if search:
        print(terminal_text("  settings: " + show_values(search)))
    counts = dict(conn.execute("SELECT status, count(*) FROM trials WHERE project_id = ? "
                               "GROUP BY status ORDER BY status", (pid,)))
    total = sum(counts.values())
    print(terminal_text(f"Trials: {total}" + "".join(f", {s} {n}" for s, n in counts.items())))
    direction = "DESC" if objective.get("direction") == "max" and "objectives" not in objective \
        else "ASC"
    best = conn.execute(
        "SELECT trial_id, score, best_step, hp_values FROM trials WHERE project_id = ? AND "
        f"status = 'COMPLETED' AND score IS NOT NULL ORDER BY score {direction}, number "
        "LIMIT 1", (pid,)).fetchone()
    if best:
        print(terminal_text(f"Best: trial {best[0]}, score {best[1]:.6g} at step {best[2]}, "
                            f"values {show_values(json.loads(best[3]))}"))
    print("Search space:")
    rows = conn.execute("SELECT name, class_name, config FROM hyperparameters WHERE "
                        "project_id = ? ORDER BY position", (pid,)).fetchall()
    print("\n".join(space_lines(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
