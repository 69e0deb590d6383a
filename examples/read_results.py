"""Reading a search's results with the sqlite3 module, and with pandas when installed.

    python examples/read_results.py DB

The views trial_overview, trial_values, metric_history and status_log are made for this.
"""

import contextlib
import json
import sqlite3
import sys
from pathlib import Path


def main(db="basic.db"):
    if not Path(db).is_file():
        sys.exit(f"{db} is not a search file: run examples/basic_search.py first, or give "
                 "the path of one.")
    # read-only (a URI, so that any file name works): never blocks the workers; closed
    # when done (Python 3.13 warns of a connection left open)
    with contextlib.closing(sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro",
                                            uri=True)) as conn:
        show(conn)


def show(conn):
    print("best five trials:")
    for trial_id, score, values in conn.execute(
            "SELECT trial_id, score, hp_values FROM trial_overview "
            "WHERE status = 'COMPLETED' ORDER BY score LIMIT 5"):
        print(f"  {trial_id}: {score:.4f} {json.loads(values)}")
    print("status counts:", dict(conn.execute(
        "SELECT status, count(*) FROM trial_overview GROUP BY status")))
    try:
        import pandas as pd
    except ImportError:
        print("(pandas is not installed; skipping the DataFrame)")
        return
    frame = pd.read_sql_query("SELECT * FROM trial_overview", conn)
    values = pd.json_normalize(frame["hp_values"].map(json.loads))
    print(pd.concat([frame[["trial_id", "status", "score"]], values], axis=1).head())

if __name__ == "__main__":
    main(*sys.argv[1:2])
