"""hpstore summary DB: the projects in a file, and for one: objective, counts per status,
best trial and search space."""

from __future__ import annotations

import json
import sys

from hpstore.inspection import choose_project, connect_readonly, projects, run_tool, tool_parser


def main(argv: list[str] | None = None) -> int:
    args = tool_parser("summary", __doc__).parse_args(argv)
    conn = connect_readonly(args.database)
    names = projects(conn)
    print(f"{args.database}: {len(names)} project(s): {', '.join(names) or '(none)'}")
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
    print(f"\nProject {name!r}: {cls}, objective {text}, max_trials "
          f"{max_trials if max_trials is not None else 'none'}, seed {seed}")
    search = json.loads(config).get("search") or {}
    if search:
        print("  settings: " + ", ".join(f"{k}={v}" for k, v in search.items()))
    counts = dict(conn.execute("SELECT status, count(*) FROM trials WHERE project_id = ? "
                               "GROUP BY status ORDER BY status", (pid,)))
    total = sum(counts.values())
    print(f"Trials: {total}" + ("".join(f", {s} {n}" for s, n in counts.items())))
    direction = "DESC" if objective.get("direction") == "max" and "objectives" not in objective \
        else "ASC"
    best = conn.execute(
        "SELECT trial_id, score, best_step, hp_values FROM trials WHERE project_id = ? AND "
        f"status = 'COMPLETED' AND score IS NOT NULL ORDER BY score {direction}, number "
        "LIMIT 1", (pid,)).fetchone()
    if best:
        print(f"Best: trial {best[0]}, score {best[1]:.6g} at step {best[2]}, values "
              f"{json.loads(best[3])}")
    print("Search space:")
    for hp_name, cls_name, hp_config in conn.execute(
            "SELECT name, class_name, config FROM hyperparameters WHERE project_id = ? "
            "ORDER BY position", (pid,)):
        cfg = json.loads(hp_config)
        cond = cfg.pop("conditions", [])
        cfg.pop("name", None)
        when = "".join(f" when {c['config']['name']} in {c['config']['values']}" for c in cond)
        details = ", ".join(f"{k}={v}" for k, v in cfg.items() if v is not None)
        print(f"  {hp_name} ({cls_name}): {details}{when}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
