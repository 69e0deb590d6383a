"""What a Tuner tells of its search's results: the best trials and their values, and the
summaries KerasTuner's Tuner prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpstore.rendering import print_text, terminal_text

if TYPE_CHECKING:
    from hpstore.hyperparameters import HyperParameters
    from hpstore.oracle import Oracle
    from hpstore.trial import Trial


class ResultsMixin:
    """The results part of :class:`hpstore.Tuner`, read from its oracle's search."""

    oracle: Oracle

    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        """The best ``num_trials`` trials, best first, as ``oracle.get_best_trials`` gives
        them (the COMPLETED ones by score, then others to make up the number)."""
        return self.oracle.get_best_trials(num_trials)

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        """The hyperparameters of :meth:`get_best_trials`, each with its trial's values."""
        return [t.hyperparameters for t in self.oracle.get_best_trials(num_trials)]

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the best ``num_trials`` trials, best first."""
        print_text(self.results_summary_text(num_trials))

    def results_summary_text(self, num_trials: int = 10) -> str:
        """What :meth:`results_summary` prints: where the search is, its objective, and the
        best ``num_trials`` trials with their values and scores."""
        lines = ["Results summary", f"Results in {self.oracle.store.location} "
                 f"(project {self.oracle.project_name!r})",
                 f"Showing {num_trials} best trials", f"{self.oracle.objective}"]
        for trial in self.oracle.get_best_trials(num_trials):
            lines += ["", trial.summary_text()]
        return terminal_text("\n".join(lines), keep_newlines=True)  # (the file's names)

    def search_space_summary(self, extended: bool = False) -> None:
        """Print the search space: one line per hyperparameter, with its range or values
        and the conditions that make it active. ``extended`` is KerasTuner's, which
        prints the same either way."""
        del extended  # (taken so that a KerasTuner script's call runs; it changes nothing)
        print_text(self.search_space_summary_text())

    def search_space_summary_text(self) -> str:
        """What :meth:`search_space_summary` prints: the space's size, then one line per
        hyperparameter."""
        space = self.oracle.get_space()
        lines = ["Search space summary", f"Default search space size: {len(space.space)}"]
        lines += [hp.describe() for hp in space.space]
        return terminal_text("\n".join(lines), keep_newlines=True)
