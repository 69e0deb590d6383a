"""EpochRecorder: every epoch's logs into the search file, and the stop signal back."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import keras

from hpstore.trial import TrialStatus


def numeric_logs(logs: Mapping[str, Any] | None) -> dict[str, float]:
    """The entries of Keras ``logs`` that are real numbers (a scalar array or tensor
    counts); anything else a callback may have put there is left out."""
    out: dict[str, float] = {}
    for name, value in (logs or {}).items():
        if isinstance(value, bool) or not isinstance(name, str):
            continue
        if not isinstance(value, numbers.Real) and hasattr(value, "item"):
            try:
                value = value.item()
            except (TypeError, ValueError, RuntimeError):  # not a one-element array
                continue
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[name] = float(value)
    return out


class ProjectGuard(keras.callbacks.Callback):
    """First in the list: at each epoch's end, before any callback writes for it (the
    trial's checkpoint), the search must still be the project this process opened, and
    the trial still this process's run. Another process's ``overwrite=True`` starts a
    project whose trials number from 0 again, in the same folders; a worker cut off from
    the store past its liveness has its trial run (and ended) by another: a checkpoint
    written after either would replace the one of the run recorded, which
    ``get_best_models()`` loads.

    Raises (from ``fit``):
        ProjectRemovedError: the project was removed or replaced; TrialNotRunningError:
            the trial ended, or was handed to another worker (see
            :meth:`hpstore.Oracle.check_running`).
    """

    def __init__(self, oracle: Any, trial_id: str) -> None:
        super().__init__()
        self.oracle = oracle
        self.trial_id = trial_id

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        oracle = self.oracle.hpstore_oracle
        oracle.project.record()  # (two reads an epoch)
        oracle.check_running(self.trial_id)


class ScoredEpochsSaved(keras.callbacks.Callback):
    """KerasTuner's checkpoint callback (``SaveBestEpoch``), told to leave out an epoch
    whose logs lack the objective once one held it. KerasTuner's saves at every such epoch
    (an objective only ``run_trial`` returns never appears in the logs); with
    ``validation_freq=2`` the epochs in between replaced the best validated epoch's
    weights, and ``get_best_models()`` loaded the last epoch's, not those of the epoch the
    trial is scored on (a Hyperband trial promoted went on from them too). Whether one
    held it is kept on the checkpoint callback itself, which KerasTuner shares across a
    trial's executions, as its best value. A save that fails because another process's
    ``overwrite=True`` deleted the folder since the guard looked is said as that.

    Raises (from ``fit``):
        ProjectRemovedError: the save failed, and the project was removed or replaced.
    """

    def __init__(self, saver: Any, project: Any) -> None:
        super().__init__()
        self.saver = saver
        self.project = project

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        self.saver.set_model(model)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.saver.objective.has_value(logs or {}):
            self.saver.hpstore_scored_once = True
        elif getattr(self.saver, "hpstore_scored_once", False):
            return  # (not recorded either: see EpochRecorder)
        try:
            self.saver.on_epoch_end(epoch, logs)
        except OSError:
            self.project.record()  # (replaced meanwhile: said so, the failed save chained)
            raise


class EpochRecorder(keras.callbacks.Callback):
    """Records each epoch's logs as metric observations of ``trial_id`` (the epoch is the
    step), and stops training when the search has set the trial to STOPPED.

    An epoch whose logs lack the objective (``validation_freq`` > 1, say) cannot be
    recorded, since the oracle takes only reports that hold it, and is left out. A
    hypermodel whose ``fit`` trains more than once (a warm-up, then fine-tuning) counts the
    epochs of each later training on from the last step recorded, so that its curve is
    never averaged with the earlier one's (``phases`` counts the trainings).

    Args:
        oracle: the ``hpstore.keras.Oracle`` of the search.
        trial_id: the running trial.
    """

    def __init__(self, oracle: Any, trial_id: str) -> None:
        super().__init__()
        self.oracle = oracle
        self.trial_id = trial_id
        #: the trainings (``model.fit`` calls) this callback has seen
        self.phases = 0
        self._last: int | None = None  # the last step recorded
        self._offset = 0
        self._phase_begins = False
        #: whether the search has told this trial to stop (its status became STOPPED)
        self.stopped = False

    @property
    def last(self) -> int | None:
        """The last step recorded (None before any)."""
        return self._last

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self.phases += 1
        self._phase_begins = True

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        metrics = numeric_logs(logs)
        names = self.oracle.hpstore_oracle.objective.metric_names
        if not all(name in metrics for name in names):
            return
        step = int(epoch)
        if self._phase_begins:
            self._phase_begins = False
            # a later training counts on (one given initial_epoch past the last is kept)
            self._offset = 0 if self._last is None or step > self._last else (
                self._last + 1 - step)
        step += self._offset
        self._last = step
        updated = self.oracle.record_epoch(self.trial_id, metrics, step)
        if updated.status == TrialStatus.STOPPED:
            # scored on what it reached: the trial ends STOPPED, with these epochs
            self.stopped = True
            self.model.stop_training = True
