"""KerasTuner's Tuner and its four tuners, searching in an hpstore file.

These are KerasTuner's own classes (building, fitting, checkpointing the best epoch and
loading models are theirs, untouched), given an hpstore oracle instead of theirs, with
what a shared file needs instead of a chief process: each process its own tuner id, the
space discovered the way hpstore discovers it, every epoch recorded, a Ctrl-C that hands
the trial back, and no state files.
"""

from __future__ import annotations

import contextlib
import functools
import os
import traceback
import warnings
from typing import Any

import keras
import keras_tuner
from keras_tuner.src import backend as kt_backend
from keras_tuner.src import config as kt_config
from keras_tuner.src import utils as kt_utils
from keras_tuner.src.engine import tuner_utils

import hpstore
from hpstore.errors import (
    DatabaseError,
    HpStoreError,
    InvalidMetricError,
    NameTooLongError,
    NotAnOracleError,
    ProjectMismatchError,
    ProjectRemovedError,
    TrialLostError,
    TrialNotRunningError,
)
from hpstore.handing_back import (
    END_RAISED,
    RESUME_HINT,
    end_failed,
    give_back,
    interrupted_what,
)
from hpstore.hyperparameters.discover import (
    check_declared_again,
    declaration_key,
    discover_space,
    watch_declarations,
)
from hpstore.keras import oracles
from hpstore.keras._convert import (
    keras_build,
    to_hpstore_hyperparameters,
    to_keras_hyperparameters,
)
from hpstore.keras.callback import EpochRecorder, ProjectGuard, ScoredEpochsSaved
from hpstore.keras.oracle import Oracle, refuse_chief, say_state_hooks_go_uncalled
from hpstore.keras.returns import check_logged, histories_only, returned_metrics, validate_returned
from hpstore.oracle.opening import check_bool
from hpstore.rendering import print_text, terminal_text
from hpstore.trial import TrialStatus
from hpstore.tuner_ids import check_tuner_id, search_ended, search_started, tuner_id_of
from hpstore.workers import ctrl_c_ignored, sigint_deferred, terminated_as_ctrl_c

#: errors every trial would repeat, so the first stops the search (its trial FAILED): a
#: metric that is no number, or a name too long for the store, is a mistake in the code,
#: as in hpstore.Tuner; so is an objective the logs lack (MissingMetricError, a FatalError)
_FATAL = (keras_tuner.errors.FatalError, hpstore.FatalError, InvalidMetricError,
          NameTooLongError)
_FAILED = (keras_tuner.errors.FailedTrialError, hpstore.FailedTrialError)


def as_oracle(oracle: Any) -> Oracle:
    """The ``hpstore.keras.Oracle`` for what was passed as ``oracle=``.

    Raises:
        NotAnOracleError (a TypeError, and the ValueError KerasTuner raises): a KerasTuner
            oracle of KerasTuner's own, or anything else.
    """
    if isinstance(oracle, Oracle):
        return oracle
    if isinstance(oracle, hpstore.Oracle):
        return Oracle(oracle)
    raise NotAnOracleError(
        f"`oracle` must be one of hpstore.keras.oracles (or an hpstore Oracle), received "
        f"{oracle!r}. KerasTuner's own oracles keep their search in their own files; "
        "use hpstore.keras.oracles.RandomSearchOracle and its siblings instead.")


def checkpoints_folder(directory: str | None, oracle: hpstore.Oracle) -> str:
    """The folder under ``directory`` for the checkpoints of ``oracle``'s search, given
    to a Tuner without a ``project_name``: the search's own name, unless the search
    holds trials already and its checkpoints are in ``untitled_project``, where they went
    before (its trials' models stay loadable).

    Raises:
        ValueError: the search's name is not a folder name (``a/b``, ``..``, an absolute
            path): the checkpoints would go outside ``directory``, or deep inside it.
    """
    name = oracle.project_name
    if name in ("", ".", "..") or "\0" in name or any(
            sep and sep in name for sep in (os.sep, os.altsep)):
        raise ValueError(
            f"The search's project_name {name!r} is not a folder name, and a Tuner given no "
            "project_name keeps its checkpoints in <directory>/<the search's project_name>: "
            "give the Tuner a project_name= of its own for them.")
    base = directory or "."
    old = os.path.join(base, "untitled_project")
    if (name != "untitled_project" and not os.path.exists(os.path.join(base, name))
            and os.path.isdir(old) and any(
                os.path.isdir(os.path.join(old, f"trial_{trial_id}"))
                for trial_id in oracle.trials)):
        return "untitled_project"
    return name


class Tuner(keras_tuner.Tuner):
    """KerasTuner's ``Tuner`` on an hpstore oracle: subclass it as you would KerasTuner's.

    Takes KerasTuner's arguments, and these keyword-only ones for the oracle's file when
    the oracle was not given them: ``database`` (default ``<directory>/<project_name>.db``)
    and ``durability`` ("normal" or "full").

    Differences from KerasTuner's: the tuner id is ``KERASTUNER_TUNER_ID`` (or
    ``HPSTORE_TUNER_ID``) if set, else one per process; nothing is written to
    ``oracle.json`` or ``tuner0.json``; every epoch's logs are recorded; Ctrl-C hands the
    running trial back before it stops the search.

    Raises:
        HpStoreError: ``KERASTUNER_ORACLE_IP`` is set (there is no gRPC chief here).
        TypeError: ``oracle`` is not an hpstore oracle, or ``overwrite`` is not a bool.
        ValueError: ``database``, ``durability`` or ``overwrite=True`` given with an
            hpstore oracle already open on its own file (give them to that oracle).
        ProjectMismatchError: the file's search was made with other settings, or the
            hypermodel now defines a hyperparameter differently.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        say_state_hooks_go_uncalled(cls, "tuners")
        own = vars(cls).get("on_trial_end")
        if callable(own):
            cls.on_trial_end = _ends_the_trial(own)  # type: ignore[method-assign]

    def __init__(self, oracle: Any, hypermodel: Any = None, max_model_size: int | None = None,
                 optimizer: Any = None, loss: Any = None, metrics: Any = None,
                 distribution_strategy: Any = None, directory: str | None = None,
                 project_name: str | None = None, logger: Any = None,
                 tuner_id: str | None = None, overwrite: bool = False,
                 executions_per_trial: int = 1, *, database: Any = None,
                 durability: str | None = None, **kwargs: Any) -> None:
        refuse_chief()
        overwrite = check_bool("overwrite", overwrite)  # KerasTuner deletes on any truthy
        tuner_id = check_tuner_id(tuner_id)  # (before KerasTuner makes any folder)
        adapter = as_oracle(oracle)
        adapter._configure(database=database, durability=durability, overwrite=overwrite)
        if project_name is None and adapter._inner is not None:
            # An hpstore oracle opened on its own file names the checkpoints' folder: two
            # searches of one file under one directory must not share "untitled_project".
            project_name = checkpoints_folder(directory, adapter._inner)
        self._space_declared = False
        keras_tuner.Tuner.__init__(
            self, oracle=adapter, hypermodel=hypermodel, max_model_size=max_model_size,
            optimizer=optimizer, loss=loss, metrics=metrics,
            distribution_strategy=distribution_strategy, directory=directory,
            project_name=project_name, logger=logger, tuner_id=tuner_id, overwrite=overwrite,
            executions_per_trial=executions_per_trial, **kwargs)
        # KerasTuner calls every process "tuner0": here each needs its own.
        self.tuner_id = tuner_id
        #: the epoch recorders of the running trial, one per execution
        self._recorders: list[EpochRecorder] = []
        self._unended: Any = None  # the trial run and not ended yet
        self._last_fit: Any = None  # what the last execution's fit returned
        #: the trials this search() handed back after a Ctrl-C, with their status as ended
        self._handed_back: list[tuple[str, str]] = []
        if not self._space_declared:  # KerasTuner skips it when it finds its state files
            self._populate_initial_space()

    oracle: Oracle

    @property
    def tuner_id(self) -> str:
        """This worker's name: the one given, else ``default_tuner_id()`` of the process
        running the search (a tuner a fork Pool's processes inherit names each apart), and
        of its thread (see hpstore.tuner_ids: read outside a search, the name the last
        search of this process ran under)."""
        return tuner_id_of(self, getattr(self, "_tuner_id", None))

    @tuner_id.setter
    def tuner_id(self, value: str | None) -> None:
        self._tuner_id = check_tuner_id(value)

    @property
    def search_file(self) -> Any:
        """The path of the search file (None for a search kept in memory)."""
        store = self.oracle.hpstore_oracle.store
        return getattr(store, "path", None)

    # -- the space ------------------------------------------------------------------------------
    def _populate_initial_space(self, now: bool = False) -> None:
        # Every branch before the first trial, found as hpstore.Tuner finds it: built on the
        # given space (not the stored one) so a definition changed since is refused. For a
        # search that holds trials already, at search() (``now``), not as the tuner is
        # made: a script reopening a search to read its results (get_best_models) builds
        # nothing, as under KerasTuner, where a model with a large backbone made every
        # reopening cost the discovery's builds (13 of them, 32 s at 8 s a build).
        if self.hypermodel is not None and not now and self._holds_trials():
            self._discover_at_search = True
            return
        self._discover_at_search = False
        if self.hypermodel is not None:
            inner = self.oracle.hpstore_oracle
            given = to_keras_hyperparameters(inner.given_hyperparameters)
            self.hypermodel.declare_hyperparameters(given)
            space = discover_space(keras_build(self.hypermodel.build),
                                   to_hpstore_hyperparameters(given))
            inner.update_space(space)
            # checked here; a trial checks what else it declares (its fit's)
            self._declared = {declaration_key(hp) for hp in space.space}
            keras.backend.clear_session()  # the models built to find the space
        self._space_declared = True

    def _holds_trials(self) -> bool:
        """Whether the search file's project holds a trial already (it is resumed)."""
        return self.oracle.hpstore_oracle.project.count() > 0

    # -- one trial ------------------------------------------------------------------------------
    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        if self._recorders and any(r.stopped for r in self._recorders):
            # Stopped in an earlier execution (executions_per_trial > 1): the trial has
            # ended, so no model is trained for it; another execution's epochs would be
            # averaged into its curve and change the score its stop gave it. The last
            # execution's result stands for this one (the same epochs, recorded once).
            return self._last_fit
        # Last in the list: when an epoch is in the file, its checkpoint is on disk. The
        # guard first: no checkpoint is written for a project replaced meanwhile.
        recorder = EpochRecorder(self.oracle, trial.trial_id)
        self._recorders.append(recorder)
        kwargs["callbacks"] = [
            ProjectGuard(self.oracle, trial.trial_id),
            *(ScoredEpochsSaved(c, self.oracle.hpstore_oracle.project)
              if isinstance(c, tuner_utils.SaveBestEpoch) else c
              for c in kwargs.get("callbacks") or []),
            recorder]
        # KerasTuner's steps (build, fit, the build config its model loading reads), with
        # hpstore's check of what fit returned: KerasTuner's refuses a dict of the metrics
        # of a list of objectives, which the oracle scores
        hp = trial.hyperparameters
        model = self._try_build(hp)
        results = self.hypermodel.fit(hp, model, *args, **kwargs)
        if kt_backend.config.multi_backend():
            kt_utils.save_json(self._get_build_config_fname(trial.trial_id),
                               model.get_build_config())
        validate_returned(results, self.oracle, "HyperModel.fit()")
        self._last_fit = results
        return results

    def _check_declaration(self, hp: Any, stored: Any) -> None:
        def compare(class_name: str, config: dict[str, Any]) -> None:
            self.oracle.hpstore_oracle.update_space(to_hpstore_hyperparameters(
                keras_tuner.HyperParameters.from_config(
                    {"space": [{"class_name": class_name, "config": config}],
                     "values": {}})))

        check_declared_again(self, hp, stored, compare, self.oracle.hpstore_oracle.store)

    def _run_and_update_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> None:
        self._recorders = []
        with watch_declarations(trial.hyperparameters, self._check_declaration):
            results = self.run_trial(trial, *fit_args, **fit_kwargs)
        objective = self.oracle.objective
        if self.oracle.reported_itself(trial.trial_id):
            # run_trial reported through self.oracle.update_trial: as in KerasTuner, that
            # is the trial's result, and what run_trial returns is not used (and, as
            # there, a way on its way out)
            warnings.warn(
                "run_trial reported its metrics through self.oracle.update_trial, which "
                "KerasTuner deprecates: return them from run_trial instead (a dict, a "
                "number or the History of fit), and they are recorded the same.",
                DeprecationWarning, stacklevel=3)
            return
        if self.oracle.reported(trial.trial_id):
            lasts = [r.last for r in self._recorders]
            if (len(lasts) > 1 and None not in lasts and len(set(lasts)) > 1
                    and not any(r.stopped for r in self._recorders)):
                # executions stopped at different steps (an EarlyStopping of the script's):
                # scored where all of them are averaged, as KerasTuner's mean of each
                # execution's best is of every execution (past it, one alone scored it)
                self.oracle.score_up_to(trial.trial_id, min(x for x in lasts if x is not None))
            if results is None:
                return  # its epochs are in the file, the objective with them
            if histories_only(results) and all(r.phases <= 1 for r in self._recorders):
                self._tell_result(trial, results)
                return  # the same epochs, as they ran
            # A result of its own after the epochs (a test-set score, a mean over folds), or
            # the History of the last of several trainings in one fit: KerasTuner scores
            # the trial on what run_trial returns, and so does this.
            validate_returned(results, self.oracle, "Tuner.run_trial()")
            check_logged(results, self.oracle.hpstore_oracle.objective.metric_names)
            self.oracle.record_result(
                trial.trial_id, returned_metrics(results, objective))
            self._tell_result(trial, results)
            return
        validate_returned(results, self.oracle, "Tuner.run_trial()")
        check_logged(results, self.oracle.hpstore_oracle.objective.metric_names)
        self.oracle.update_trial(
            trial.trial_id, returned_metrics(results, objective),
            step=tuner_utils.get_best_step(results, objective))

    def _tell_result(self, trial: Any, results: Any) -> None:
        """Hand a trial's result to its oracle's own ``update_trial``, as KerasTuner hands
        it once the trial ran (a subclass's, counting or logging there, was never called:
        the epochs are recorded as they run). The epochs are in the file already: the
        oracle's own update_trial records nothing more then."""
        if type(self.oracle).update_trial is Oracle.update_trial:
            return
        objective = self.oracle.objective
        with self.oracle.result_told():
            self.oracle.update_trial(trial.trial_id, returned_metrics(results, objective),
                                     step=tuner_utils.get_best_step(results, objective))

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> Any:
        """KerasTuner's ``search``. Ctrl-C, wherever it lands, hands back the trial this
        process holds (training, just taken, or between KerasTuner's steps), prints one
        message saying what became of it and how to resume, and raises KeyboardInterrupt;
        one that lands while a finished trial's end is written waits for that write.
        SIGTERM (``kill``, ``timeout``, ``docker stop``, a job scheduler preempting the job)
        does as Ctrl-C does, as in ``hpstore.Tuner.search``, unless the program set a
        SIGTERM handler of its own.

        Raises:
            KeyboardInterrupt: on Ctrl-C or SIGTERM, once the trial is handed back.
            DatabaseError: the search's store failed as a trial recorded an epoch or its
                end (a full disk, a writer stopped past the lock timeout): the trial is
                handed back to run again; when the store refuses that too, the error says
                it stays RUNNING under this process and runs again from its start, in a
                run of its own, when the search resumes.
        """
        self._handed_back = []
        if getattr(self, "_discover_at_search", False):
            self._populate_initial_space(now=True)  # (raises before any trial runs)
        self._ran_here = 0
        search_started(self)
        with terminated_as_ctrl_c():
            try:
                done = super().search(*fit_args, **fit_kwargs)
                if not self._ran_here:
                    self._say_finished(
                        fit_kwargs.get("verbose", getattr(self.oracle, "verbose", 1)))
                return done
            except KeyboardInterrupt:
                self._interrupted()
                raise
            except DatabaseError:
                raise  # (the store failing: its trial was given back, or the error says)
            except Exception as exc:
                # raised between KerasTuner's steps (an on_trial_end or on_trial_begin of
                # the script's own, before the end was written): the trial this process
                # holds is handed back, not left RUNNING for other workers to wait on
                with contextlib.suppress(HpStoreError):  # (it is left to the next search)
                    self._hand_back_held(f"search() stopped on {type(exc).__name__} before "
                                         "this run ended; queued to run again.")
                raise
            finally:
                search_ended(self)

    def _say_finished(self, verbose: Any) -> None:
        """After a search() that ran no trial (its oracle had none left for it: the search
        was finished, by max_trials or by its oracle, or the last trials ran elsewhere), say
        so, with the best trial, as ``hpstore.Tuner``'s does (KerasTuner says "Reloading
        Tuner from ..." as a tuner is made on a search it finds, from a file hpstore keeps
        no copy of). Without a word, a script run again returned at once with results that
        read as its own run's."""
        if isinstance(verbose, (int, float)) and verbose < 1:
            return
        inner = self.oracle.hpstore_oracle
        more = ("Raise tuner.oracle.max_trials to run more, or give" if
                inner.remaining_trials() == 0 else "Give")
        print_text(terminal_text(
            f"The search is finished, and this process ran none of its trials: project "
            f"{inner.project_name!r} holds {inner.project.count()} trial(s). {more} "
            "overwrite=True (in one process) to start it afresh."), flush=True)
        best = inner.get_best_trials(1)
        if best and best[0].status == TrialStatus.COMPLETED:
            print_text("Best trial:")
            print_text(terminal_text(best[0].summary_text(), keep_newlines=True), flush=True)

    def _interrupted(self) -> None:
        """After Ctrl-C in search(): a trial the file still holds RUNNING for this worker
        goes back to run again (create_trial had recorded it when the Ctrl-C landed, before
        returning it; or it landed between KerasTuner's steps), and one message follows."""
        with ctrl_c_ignored():  # a second Ctrl-C would leave the trial RUNNING
            self._hand_back_held("Interrupted (Ctrl-C or SIGTERM); queued to run again.")
            what = interrupted_what(self._handed_back)
            print_text(f"\nSearch interrupted; {what}. {RESUME_HINT}", flush=True)

    def _hand_back_held(self, message: str) -> None:
        """Hand back, with ``message``, the trials the file holds RUNNING for this worker in
        this process (none once their ends are written)."""
        inner = self.oracle.hpstore_oracle
        session = inner.store.session()
        for record in inner.project.running():
            if record.tuner_id == self.tuner_id and record.session == session:
                self._hand_back(self.oracle.get_trial(record.trial_id), message)

    def _hand_back(self, trial: Any,
                   message: str = "Interrupted (Ctrl-C or SIGTERM); queued to run again."
                   ) -> None:
        """Hand the running ``trial`` (a KerasTuner Trial) back to run again, in one piece:
        a second Ctrl-C or SIGTERM meanwhile is ignored (the first one stops the search)."""
        with ctrl_c_ignored():
            trial.status = TrialStatus.IDLE
            trial.message = message
            try:
                self.oracle.end_trial(trial)
            except (TrialNotRunningError, TrialLostError):
                return  # taken over by another worker meanwhile: not this one's to hand back
            # (its status as ended: STOPPED when a stopping rule had stopped it)
            self._handed_back.append((trial.trial_id, trial.status))

    def _try_run_and_update_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> None:
        self._unended = trial  # (until on_trial_end ends it: see __init_subclass__)
        self._ran_here = getattr(self, "_ran_here", 0) + 1
        try:
            self._run_and_update_trial(trial, *fit_args, **fit_kwargs)
            trial.status = TrialStatus.COMPLETED
            return
        except KeyboardInterrupt:
            self._hand_back(trial)  # (the live trial: with what it declared as it ran)
            raise
        except SystemExit:  # (sys.exit: a SIGTERM handler's of the script's own, say)
            self._hand_back(trial, "The program exited (sys.exit) as it ran; queued to run "
                                   "again.")
            raise
        except ProjectRemovedError:
            raise  # the search was taken from this process (overwrite=True elsewhere)
        except ProjectMismatchError as exc:
            if not getattr(exc, "declared_in_trial", False):  # the user's own code's
                trial.status = TrialStatus.INVALID
                trial.message = traceback.format_exc()
                return
            # the script now declares a stored hyperparameter differently: every trial
            # would, so the search stops; this one ran on the stored values and runs again
            trial.status = TrialStatus.IDLE
            trial.message = ("The script declares a hyperparameter differently than the "
                             "search holds; queued to run again.")
            with contextlib.suppress(HpStoreError):
                self.oracle.end_trial(trial)
            raise
        except DatabaseError as exc:
            if not getattr(exc, "while_recording", False):  # the user's own code's
                if kt_config.DEBUG:
                    traceback.print_exc()
                trial.status = TrialStatus.INVALID
                trial.message = traceback.format_exc()
                return
            # the store failed as the trial reported (a writer stopped past the lock
            # timeout, a full disk, a server gone): not the trial's fault; it runs again,
            # and the search stops with the error
            trial.status = TrialStatus.IDLE
            trial.message = (f"The search's store failed during this run "
                             f"({type(exc).__name__}); queued to run again.")
            give_back(self.oracle.end_trial, trial, exc)
            raise
        except (TrialNotRunningError, TrialLostError):
            # handed to another worker meanwhile, ended elsewhere, or lost with a server's
            # last commits: on_trial_end says so
            trial.status = TrialStatus.INVALID
        except _FATAL:
            trial.status = TrialStatus.FAILED
            trial.message = traceback.format_exc()
            # recorded FAILED; too many failures in a row would say less than this error
            with contextlib.suppress(RuntimeError):
                self.oracle.end_trial(trial)
            raise
        except Exception as exc:
            if kt_config.DEBUG:
                traceback.print_exc()
            failed = isinstance(exc, _FAILED)
            trial.status = TrialStatus.FAILED if failed else TrialStatus.INVALID
            trial.message = traceback.format_exc()

    def on_trial_end(self, trial: Any) -> None:
        # a Ctrl-C now would leave the trial RUNNING, its result unrecorded, and hand it
        # back to run again: it waits for the end to be written, then stops the search
        self._unended = None
        with sigint_deferred():
            try:
                super().on_trial_end(trial)
            except (TrialNotRunningError, TrialLostError) as exc:
                # Handed to another worker while this one ran it (cut off from the server,
                # or frozen, long enough to look dead), ended by another process, or lost
                # with a server's last commits: this run is over and nothing of it is
                # recorded; the search goes on.
                print_text(f"{exc} Going on with the next trial.", flush=True)
            except DatabaseError as exc:
                if not getattr(exc, "while_recording", False):
                    self._end_raised(trial)
                    raise
                # The store failed as the end was written (a full disk): the trial is still
                # RUNNING, this run's epochs in the file. It runs again, afresh, when the
                # search resumes; the search stops with the error, which says so when the
                # trial cannot be handed back either.
                trial.status, trial.message = TrialStatus.IDLE, end_failed(exc)
                give_back(self.oracle.end_trial, trial, exc)
                raise
            except Exception:
                # end_trial raised (a score_trial of the user's oracle): search() stops
                # with that error, as KerasTuner's does; the trial is handed back, so that
                # the next search runs it afresh, where KerasTuner's would hand it out
                # again to run on top of this run's epochs
                self._end_raised(trial)
                raise

    def _end_raised(self, trial: Any) -> None:
        """Hand ``trial`` back after its end raised. A store that refuses leaves it RUNNING
        under this process, for the next search() here to queue again; the error the
        script sees stays the one end_trial raised."""
        trial.status, trial.message = TrialStatus.IDLE, END_RAISED
        with contextlib.suppress(Exception):
            self.oracle.end_trial(trial)

    # -- state: the file ------------------------------------------------------------------------
    def _get_tuner_fname(self) -> str:
        # No tuner state file is kept: a name that never names one, so that KerasTuner's
        # constructor does not say "Reloading Tuner from .../tuner0.json" for a project
        # imported from KerasTuner (whose file stays, and is not read)
        return os.path.join(self.project_dir, "hpstore-keeps-no-tuner-state")

    def load_model(self, trial: Any) -> Any:
        """KerasTuner's: the trial's model built and its checkpoint loaded, once the
        project is known to be the one read. Another process's ``overwrite=True`` deletes
        the folders and starts a project whose trials number from 0 again in them: a load
        that met it failed on a missing file (FileNotFoundError), or took a checkpoint of
        the new project's trial of the same id for this one's.

        Raises:
            ProjectRemovedError: the project was removed or replaced meanwhile.
        """
        project = self.oracle.hpstore_oracle.project
        try:
            model = super().load_model(trial)
        except OSError:
            project.record()  # (replaced meanwhile: said so, the missing file chained)
            raise
        project.record()
        return model

    def save(self) -> None:
        """Nothing to do: the search file holds the whole search as it happens."""

    def reload(self) -> None:
        """Nothing to do: the oracle reads the search file as it is now."""


def _ends_the_trial(own: Any) -> Any:
    """A subclass's ``on_trial_end``, after which the trial is ended if it did not call
    ``super().on_trial_end(trial)``, which ends it: the oracle then handed the tuner its
    own running trial again, run after run, forever (as under KerasTuner)."""
    @functools.wraps(own)
    def on_trial_end(self: Tuner, trial: Any) -> None:
        own(self, trial)
        unended: Any = getattr(self, "_unended", None)
        if unended is not None and unended is trial:
            if not getattr(self, "_said_unended", False):  # (once a tuner)
                self._said_unended = True
                print_text(terminal_text(
                    f"{type(self).__name__}.on_trial_end did not call super().on_trial_end("
                    f"trial), which ends the trial: hpstore.keras ends it (trial "
                    f"{trial.trial_id}, and each one after), where it would run again and "
                    "again. Call it in your on_trial_end."), flush=True)
            Tuner.on_trial_end(self, trial)

    return on_trial_end


class RandomSearch(Tuner, keras_tuner.RandomSearch):
    """KerasTuner's ``RandomSearch`` on :class:`hpstore.RandomSearchOracle`; ``database=``
    and ``durability=`` as for :class:`Tuner`. ``max_trials``: 10 for a new search, as
    KerasTuner's; a search opened again without it (to look at its results, say) keeps its
    own, so workers still running it are not cut short."""

    def __init__(self, hypermodel: Any = None, objective: Any = None, max_trials: int | None = None,
                 seed: int | None = None, hyperparameters: Any = None,
                 tune_new_entries: bool = True, allow_new_entries: bool = True,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3, *,
                 database: Any = None, durability: str = "normal", early_stopping: Any = None,
                 **kwargs: Any) -> None:
        self.seed = seed
        oracle = oracles.RandomSearchOracle(
            objective=objective, max_trials=max_trials, seed=seed,
            hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries, max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials, database=database,
            durability=durability, early_stopping=early_stopping)
        Tuner.__init__(self, oracle, hypermodel, **kwargs)


class GridSearch(Tuner, keras_tuner.GridSearch):
    """KerasTuner's ``GridSearch`` on :class:`hpstore.GridSearchOracle` (same order);
    ``database=`` and ``durability=`` as for :class:`Tuner`."""

    def __init__(self, hypermodel: Any = None, objective: Any = None,
                 max_trials: int | None = None, seed: int | None = None,
                 hyperparameters: Any = None, tune_new_entries: bool = True,
                 allow_new_entries: bool = True, max_retries_per_trial: int = 0,
                 max_consecutive_failed_trials: int = 3, *, database: Any = None,
                 durability: str = "normal", early_stopping: Any = None,
                 **kwargs: Any) -> None:
        self.seed = seed
        oracle = oracles.GridSearchOracle(
            objective=objective, max_trials=max_trials, seed=seed,
            hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries, max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials, database=database,
            durability=durability, early_stopping=early_stopping)
        Tuner.__init__(self, oracle, hypermodel, **kwargs)


class BayesianOptimization(Tuner, keras_tuner.BayesianOptimization):
    """KerasTuner's ``BayesianOptimization`` on :class:`hpstore.BayesianOptimizationOracle`;
    ``database=`` and ``durability=`` as for :class:`Tuner`. ``max_trials`` as for
    :class:`RandomSearch`."""

    def __init__(self, hypermodel: Any = None, objective: Any = None, max_trials: int | None = None,
                 num_initial_points: int | None = None, alpha: float = 1e-4,
                 beta: float = 2.6, seed: int | None = None, hyperparameters: Any = None,
                 tune_new_entries: bool = True, allow_new_entries: bool = True,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3, *,
                 database: Any = None, durability: str = "normal", early_stopping: Any = None,
                 **kwargs: Any) -> None:
        oracle = oracles.BayesianOptimizationOracle(
            objective=objective, max_trials=max_trials, num_initial_points=num_initial_points,
            alpha=alpha, beta=beta, seed=seed, hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials, database=database,
            durability=durability, early_stopping=early_stopping)
        Tuner.__init__(self, oracle, hypermodel, **kwargs)


class Hyperband(Tuner, keras_tuner.Hyperband):
    """KerasTuner's ``Hyperband`` on :class:`hpstore.HyperbandOracle` (same schedule); a
    promoted trial continues from the checkpoint its parent left under ``directory``,
    whichever process trained it. ``database=`` and ``durability=`` as for :class:`Tuner`."""

    def __init__(self, hypermodel: Any = None, objective: Any = None, max_epochs: int = 100,
                 factor: int = 3, hyperband_iterations: int = 1, seed: int | None = None,
                 hyperparameters: Any = None, tune_new_entries: bool = True,
                 allow_new_entries: bool = True, max_retries_per_trial: int = 0,
                 max_consecutive_failed_trials: int = 3, *, database: Any = None,
                 durability: str = "normal", early_stopping: Any = None,
                 **kwargs: Any) -> None:
        oracle = oracles.HyperbandOracle(
            objective, max_epochs=max_epochs, factor=factor,
            hyperband_iterations=hyperband_iterations, seed=seed,
            hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries, max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials, database=database,
            durability=durability, early_stopping=early_stopping)
        Tuner.__init__(self, oracle, hypermodel, **kwargs)
