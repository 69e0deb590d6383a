"""Hyperband: brackets of successive halving, KerasTuner's schedule, its state in the file."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Unpack

from hpstore.oracle import Oracle
from hpstore.oracle.base import OracleOptions
from hpstore.oracle.opening import check_int
from hpstore.oracle.values import values_key
from hpstore.store.records import BOOKKEEPING
from hpstore.trial import TrialStatus


def num_brackets(max_epochs: int, factor: int) -> int:
    """How many brackets a Hyperband iteration has: one per division of max_epochs by
    ``factor`` that stays at least one epoch."""
    epochs, count = float(max_epochs), 0
    while epochs >= 1:
        epochs /= factor
        count += 1
    return count


def bracket_size(max_epochs: int, factor: int, bracket: int, round_num: int) -> int:
    """Trials in round ``round_num`` of ``bracket`` (each bracket costs about the same)."""
    last_round_size = math.ceil(1 + math.log(max_epochs, factor)) / (bracket + 1)
    return math.ceil(last_round_size * factor ** (bracket - round_num))


def bracket_epochs(max_epochs: int, factor: int, bracket: int, round_num: int) -> int:
    """Epochs each trial of round ``round_num`` of ``bracket`` trains for."""
    return math.ceil(max_epochs / factor ** (bracket - round_num))


def schedule(max_epochs: int, factor: int) -> list[list[tuple[int, int]]]:
    """[(trials, epochs) per round] per bracket, the most aggressive bracket first."""
    top = num_brackets(max_epochs, factor) - 1
    return [[(bracket_size(max_epochs, factor, b, r), bracket_epochs(max_epochs, factor, b, r))
             for r in range(b + 1)] for b in range(top, -1, -1)]


class HyperbandOracle(Oracle):
    """Hyperband (Li et al., 2018) as KerasTuner runs it.

    Each bracket starts random trials trained for few epochs, then promotes the best of
    each round to train longer in the next. A trial's values carry ``tuner/epochs`` (train
    up to this epoch), ``tuner/initial_epoch`` (resume from here), ``tuner/bracket``,
    ``tuner/round`` and, for a promoted trial, ``tuner/trial_id`` (the trial whose model
    to continue). Brackets, rounds and promotions are stored with each trial they create,
    so several processes fill one bracket without promoting a trial twice, and a resumed
    search goes on exactly.

    Args:
        objective, seed, hyperparameters, ...: as for :class:`hpstore.Oracle`.
        max_epochs: the most epochs a trial trains for.
        factor: the reduction factor of each round (at least 2).
        hyperband_iterations: how many times the whole set of brackets runs.

    Raises:
        ValueError: ``factor`` below 2, or ``max_epochs`` / ``hyperband_iterations`` below 1.
    """

    decides_quickly = True  # no model to fit: decided inside the recording transaction

    def __init__(self, objective: Any = None, max_epochs: int = 100, factor: int = 3,
                 hyperband_iterations: int = 1, **kwargs: Unpack[OracleOptions]) -> None:
        # The base arguments (seed, hyperparameters, ...) are the Oracle's, declared there.
        self.max_epochs = check_int("max_epochs", max_epochs, 1)
        self.factor = check_int("factor", factor, 2)
        if hyperband_iterations is None or (type(hyperband_iterations) is int
                                            and hyperband_iterations == 0):
            # (KerasTuner's "no limit")
            raise ValueError(
                f"`hyperband_iterations` must be at least 1, received {hyperband_iterations!r}. "
                "KerasTuner takes 0 or None as no limit, a search that never ends: here give "
                "the number of times to run the whole Hyperband schedule (1, its default, "
                "or more).")
        self.hyperband_iterations = check_int("hyperband_iterations", hyperband_iterations, 1)
        super().__init__(objective=objective, **kwargs)

    def _search_config(self) -> dict[str, Any]:
        return {"max_epochs": self.max_epochs, "factor": self.factor,
                "hyperband_iterations": self.hyperband_iterations}

    def enqueue_plan(self, values: Mapping[str, Any], what: str = "enqueue_trial"
                     ) -> tuple[dict[str, Any], list[str]]:
        """As every oracle's, but the ``tuner/...`` values a Hyperband trial carries (its
        budget and bracket; a trial's values as the search or its export hands them back)
        are left out: an enqueued trial gets its own, below. Any other ``tuner/`` name is
        checked as any name is (a misspelt one is refused), and a ``tuner/epochs`` other
        than the full budget is warned of: the trial trains to ``max_epochs`` all the
        same.

        Raises:
            ValuesOutsideSpaceError: as every oracle's.
        """
        epochs = self.max_epochs
        if isinstance(values, Mapping):
            epochs = values.get("tuner/epochs", self.max_epochs)
            values = {k: v for k, v in values.items() if k not in BOOKKEEPING}
        full, earlier = super().enqueue_plan(values, what)
        if epochs != self.max_epochs:
            said = (f"an enqueued Hyperband trial runs outside the brackets with the full "
                    f"budget, tuner/epochs={self.max_epochs} (max_epochs); the "
                    f"tuner/epochs={epochs!r} given is not used")
            if self._project.has_values(values_key(full)):
                # (it said "full budget", and then nothing was enqueued: a bracket's
                # trial of these values is held already)
                said = (f"these values are held already (a trial of the brackets, say), so "
                        "they are enqueued again only with skip_if_exists=False (`hpstore "
                        f"enqueue --again`); {said}")
            warnings.warn(f"{what}: {said}.", UserWarning, stacklevel=3)
        return full, earlier

    def prepare_enqueued(self, values: dict[str, Any]) -> dict[str, Any]:
        """An enqueued trial runs outside the brackets, with the full budget: trained from
        epoch 0 to ``max_epochs``."""
        return {**values, "tuner/epochs": self.max_epochs, "tuner/initial_epoch": 0}

    def _size(self, bracket: int, round_num: int) -> int:
        return bracket_size(self.max_epochs, self.factor, bracket, round_num)

    def _epochs(self, bracket: int, round_num: int) -> int:
        return bracket_epochs(self.max_epochs, self.factor, bracket, round_num)

    def _round_size(self, bracket: dict[str, Any], round_num: int) -> int:
        """Trials in round ``round_num`` of ``bracket``: the schedule's, unless the space was
        used up while its first round filled ("closed": the trials it could start); then
        each later round keeps a ``factor``-th of the one before, at most the schedule's."""
        num, closed = bracket["bracket"], bracket.get("closed")
        if closed is None:
            return self._size(num, round_num)
        size = min(int(closed), self._size(num, 0))
        for later in range(1, round_num + 1):
            size = min(self._size(num, later), math.ceil(size / self.factor))
        return size

    def _done(self, bracket: dict[str, Any]) -> bool:
        """Whether the bracket's last round is full."""
        rounds = bracket["rounds"]
        return len(rounds[-1]) >= self._round_size(bracket, len(rounds) - 1)

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        top = num_brackets(self.max_epochs, self.factor) - 1
        state = self._state_object("hyperband") or {
            "bracket": top, "iteration": 0,
            "brackets": [{"bracket": top, "rounds": [[] for _ in range(top + 1)]}],
        }
        state["brackets"] = [b for b in state["brackets"] if not self._done(b)]
        used_up = False
        for bracket in state["brackets"]:
            rounds = bracket["rounds"]
            if len(rounds[0]) < self._round_size(bracket, 0):
                values = None if used_up else self.random_values()
                if values is not None:
                    return self._random_trial(trial_id, state, bracket, values)
                # The space is used up (KerasTuner stops here, promoting nothing): this
                # first round holds the trials it could start, and the later rounds still
                # promote the best of them to train longer. Only once no trial runs: a
                # running one may declare hyperparameters that grow the space (the first
                # trial of a space declared as it runs), and a round closed meanwhile
                # stayed closed, the bracket's 9 trials cut to that one.
                used_up = True
                if not self.decision.running:
                    bracket["closed"] = len(rounds[0])
            for round_num in range(1, len(rounds)):
                promoted = self._promote(trial_id, bracket, round_num)
                if promoted is not None:
                    self.set_state_value("hyperband", state)
                    return promoted
        last = state["bracket"] == 0 and state["iteration"] + 1 >= self.hyperband_iterations
        values = None if used_up or last else self.random_values()
        if values is None:
            # nothing left to start or promote now: IDLE while trials run (they may be
            # promoted when they end), STOPPED after
            self.set_state_value("hyperband", state)
            return self.exhausted()
        state["bracket"] -= 1
        if state["bracket"] < 0:
            state["bracket"] = top
            state["iteration"] += 1
        bracket = {"bracket": state["bracket"],
                   "rounds": [[] for _ in range(state["bracket"] + 1)]}
        state["brackets"].append(bracket)
        return self._random_trial(trial_id, state, bracket, values)

    def _promote(self, trial_id: str, bracket: dict[str, Any],
                 round_num: int) -> dict[str, Any] | None:
        num, rounds = bracket["bracket"], bracket["rounds"]
        this_round, past_round = rounds[round_num], rounds[round_num - 1]
        size = self._round_size(bracket, round_num)
        past_size = self._round_size(bracket, round_num - 1)
        if len(this_round) >= size:
            return None
        taken = {entry["past_id"] for entry in this_round}
        past_ids = [e["id"] for e in past_round if e["id"] not in taken]
        candidates = self.project.scores(past_ids)
        # A trial of the past round that FAILED, was stopped early or was retired from the
        # results is thrown out already.
        out = sum(1 for t in self.project.trials_by_id(past_ids).values()
                  if t.status in (TrialStatus.FAILED, TrialStatus.STOPPED) or t.retired)
        if len(past_round) < past_size and not self._can_grow(bracket, round_num - 1):
            # places of the past round no trial will take (its own past round thrown out
            # under early stopping, say) count as thrown out too: else this round waited
            # for them for ever, and the bracket's best never trained to its end
            out += past_size - len(past_round)
        # The best candidate (completed, not promoted yet) is sure to be among the best
        # ``size`` of the round once fewer trials are still to end than the places left:
        # past_size - taken - out - candidates < size - taken (KerasTuner's rule, with
        # the trials thrown out counted as ended).
        if not candidates or len(candidates) + out <= past_size - size:
            return None
        best_id, _ = sorted(candidates, key=lambda t: t[1],
                            reverse=self.objective.direction == "max")[0]
        values = dict(self.project.trial(best_id).values)
        values.update({"tuner/epochs": self._epochs(num, round_num),
                       "tuner/initial_epoch": self._epochs(num, round_num - 1),
                       "tuner/bracket": num, "tuner/round": round_num,
                       "tuner/trial_id": best_id})
        this_round.append({"past_id": best_id, "id": trial_id})
        return {"status": "RUNNING", "values": values}

    def _can_grow(self, bracket: dict[str, Any], round_num: int) -> bool:
        """Whether round ``round_num`` of ``bracket`` may still get trials: places left,
        and (after the first round) a trial of the round before that has not ended or a
        completed one not promoted yet, or a round before that may still grow."""
        rounds = bracket["rounds"]
        if len(rounds[round_num]) >= self._round_size(bracket, round_num):
            return False
        if round_num == 0:
            return True  # (started with random values until full, or closed)
        taken = {entry["past_id"] for entry in rounds[round_num]}
        for t in self.project.trials_by_id([e["id"] for e in rounds[round_num - 1]]).values():
            if t.retired:
                continue
            if t.status not in (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.STOPPED):
                return True  # running, or to run again
            if t.status == TrialStatus.COMPLETED and t.trial_id not in taken:
                return True
        return self._can_grow(bracket, round_num - 1)

    def _random_trial(self, trial_id: str, state: dict[str, Any], bracket: dict[str, Any],
                      values: dict[str, Any]) -> dict[str, Any]:
        num = bracket["bracket"]
        values.update({"tuner/epochs": self._epochs(num, 0), "tuner/initial_epoch": 0,
                       "tuner/bracket": num, "tuner/round": 0})
        bracket["rounds"][0].append({"past_id": None, "id": trial_id})
        self.set_state_value("hyperband", state)
        return {"status": "RUNNING", "values": values}
