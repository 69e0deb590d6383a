"""hpstore retire DB TRIAL... --reason TEXT: take ended trials out of the results.

A retired trial keeps every row (values, metrics, status log), but no longer counts: not
among the best trials, not in the Bayesian oracle's model, not compared with by a stopping
rule, not ranked by the tools. The status log records who retired it, when and why;
`hpstore restore` brings it back.
"""

from __future__ import annotations

import sys

from hpstore.errors import TrialNotEndedError
from hpstore.oracle.steering import WORKER_GONE_TODO, worker_gone, worker_gone_text
from hpstore.tooling import attach_oracle, help_text, run_tool, writing_parser
from hpstore.trial import TrialStatus


def main(argv: list[str] | None = None, *, retired: bool = True) -> int:
    word = "retire" if retired else "restore"
    parser = writing_parser(word, help_text(__doc__, __file__) if retired else RESTORE_DOC)
    parser.add_argument("trials", nargs="+", metavar="TRIAL",
                        help="trial ids as `hpstore trials` lists them (07), or numbers (7)")
    parser.add_argument("--reason", help="why, for the status log")
    parser.add_argument("--by", help="who, for the status log (default: user@host)")
    args = parser.parse_args(argv)
    oracle = attach_oracle(args.database, args.project)
    try:
        from hpstore import queries

        found = [queries.find_trial(oracle.project, given) for given in args.trials]
        # a trial named twice (by id and by number, say) is changed and told once
        found = list({record.trial_id: record for record in found}.values())
        waiting = [r for r in found if r.status in (TrialStatus.RUNNING, TrialStatus.IDLE)]
        if waiting:  # every trial is found, and has ended, before any is changed
            gone = [r for r in waiting if worker_gone(oracle.store, r)]
            listed = ", ".join(
                f"{r.trial_id} ({r.status}, {worker_gone_text(r)})" if r in gone
                else f"{r.trial_id} ({r.status})" for r in waiting)
            them = "it" if len(waiting) == 1 else "them"
            todo = [] if len(gone) == len(waiting) else [
                f"Wait for {them} to end, or leave {them} out."]
            raise TrialNotEndedError(" ".join([
                f"Only a trial that has ended can be {word}d, and {listed} "
                f"{'has' if len(waiting) == 1 else 'have'} not: nothing was changed.",
                *todo, *([WORKER_GONE_TODO] if gone else [])]))
        for record in found:
            trial = (oracle.retire_trial if retired else oracle.restore_trial)(
                record.trial_id, args.reason, by=args.by)
            score = "-" if trial.score is None else f"{trial.score:.6g}"
            if record.retired == retired:
                print(f"trial {record.trial_id} was {word}d already; nothing changed" if retired
                      else f"trial {record.trial_id} is not retired; nothing changed",
                      file=sys.stderr)
            else:
                print(f"trial {record.trial_id} {word}d ({record.status}, score {score})",
                      file=sys.stderr)
    finally:
        oracle.close()
    return 0


RESTORE_DOC = """hpstore restore DB TRIAL... --reason TEXT: bring retired trials back into the
results, recorded in the status log like the retirement."""


if __name__ == "__main__":
    sys.exit(run_tool(main))
